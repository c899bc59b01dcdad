"""The one prepared check for a lent GPU machine, under 10 minutes: the tests marked ``cuda``, then
batched MAPPO training on ``device=cuda`` at E = 1,024 / 4,096 / 16,384 (mpe/simple_spread N=3),
eager and ``compile=true``, reporting training env-steps/s and where an iteration's time goes.

The split: ``env`` is the batched simulator alone (random actions, the same E, timed separately on the
device), ``inference`` is the rest of collection (the actor's forward and sampling, the rollout
writes, the critic's values), ``update`` is PPO's epochs. The issue's target on one H200:
>= 1,000,000 training env-steps/s at the largest E.

Each training cell is an ordinary ``train()`` run of ``--iterations`` iterations with JaxMARL's IPPO
hyper-parameters (rollout 128, 4 epochs, 4 minibatches, as ``training_throughput.py`` uses on CPU);
its rate is the median over the iterations after the first two (compilation, recompilation). Cells
run while ``--budget-s`` lasts and results are written after every cell, so a cut-short run keeps
what it measured.

    .venv/bin/python benchmarks/gpu.py                       # on the GPU machine
    .venv/bin/python benchmarks/gpu.py --device cpu --envs 64,128 --compile no --skip-tests  # the script itself

Results: ``benchmarks/results/gpu.md`` and ``.json`` (``--out`` to write elsewhere, e.g. ``$OUT``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from benchmarks.training_throughput import JAXMARL_HYPERPARAMETERS as HYPERPARAMETERS  # noqa: E402
from benchmarks.training_throughput import cell  # noqa: E402
from envs.factory import make_vector_env  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 1_000_000  # training env-steps/s at the largest E on one H200


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_cuda_tests(timeout: int) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", "tests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else "",
            "seconds": time.perf_counter() - start, "tail": "\n".join(lines[-30:])}


def env_step_seconds(num_envs: int, device: torch.device, compile_: bool, steps: int = 50) -> float:
    """Median seconds of one batched simulator step (auto-resets included) at ``num_envs``, random actions."""
    env = make_vector_env(scenarios.make("mpe/simple_spread"), num_envs, seed=0, backend="batched", device=device,
                          compile=compile_)
    env.reset()
    n_actions = env.layout.n_actions
    actions = torch.randint(0, n_actions, (steps + 10, num_envs, env.n_agents), device=device)
    times = []
    for t in range(steps + 10):
        sync(device)
        t0 = time.perf_counter()
        env.step(actions[t])
        sync(device)
        if t >= 10:  # the first steps pay compilation and allocator warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def training_cell(num_envs: int, device: torch.device, compile_: bool, iterations: int) -> dict:
    out = cell("mappo", num_envs, 1, compile_, iterations, seed=0, device=str(device))
    return {**out, "iterations": out["env_steps"] // (num_envs * HYPERPARAMETERS["rollout_len"])}


def markdown(device_name: str, tests: dict | None, cells: list[dict], args) -> str:
    lines = [f"## Batched MAPPO training on {device_name}", ""]
    if tests is not None:
        lines += [f"tests marked cuda: `{tests['summary']}` ({tests['seconds']:.0f} s, "
                  f"exit code {tests['returncode']})", ""]
    lines += ["| E | compile | training env-steps/s | iteration (s) | env (s) | inference (s) | update (s) | "
              "env / inference / update |",
              "|---:|:---:|---:|---:|---:|---:|---:|---|"]
    for c in cells:
        iteration = c["collect_s"] + c["update_s"]
        env = min(c["env_s"], c["collect_s"])
        inference = c["collect_s"] - env
        share = " / ".join(f"{100 * x / iteration:.0f}%" for x in (env, inference, c["update_s"]))
        lines.append(f"| {c['envs']:,} | {'yes' if c['compile'] else 'no'} | {c['steps_per_s']:,.0f} | "
                     f"{iteration:.3f} | {env:.3f} | {inference:.3f} | {c['update_s']:.3f} | {share} |")
    if cells:
        largest = max(c["envs"] for c in cells)
        best = max(c["steps_per_s"] for c in cells if c["envs"] == largest)
        lines += ["", f"target: >= {TARGET:,} training env-steps/s at E={largest:,}: "
                  f"{'met' if best >= TARGET else 'not met'} ({best:,.0f})"]
    lines += ["", f"rollout {HYPERPARAMETERS['rollout_len']}, {HYPERPARAMETERS['epochs']} epochs, "
              f"{HYPERPARAMETERS['minibatches']} minibatches; medians over iterations 3..{args.iterations}; env: the "
              "simulator alone at the same E (median step x rollout length); inference: collection minus env.",
              f"command: `.venv/bin/python benchmarks/gpu.py {' '.join(sys.argv[1:])}`", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--envs", default="1024,4096,16384")
    p.add_argument("--compile", default="no,yes")
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--budget-s", type=float, default=540.0, help="start no new cell after this many seconds")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--name", default="gpu")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here (torch.cuda.is_available() is False); on a machine without one, check "
                         "the script itself with --device cpu --envs 64,128 --compile no --skip-tests")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tests = None if args.skip_tests else run_cuda_tests(timeout=int(args.budget_s / 2))
    if tests is not None:
        print(f"tests marked cuda: {tests['summary']} ({tests['seconds']:.0f} s)\n{tests['tail']}", file=sys.stderr)
    cells: list[dict] = []
    for e in [int(x) for x in args.envs.split(",")]:
        for compile_ in [x == "yes" for x in args.compile.split(",")]:
            if time.perf_counter() - start > args.budget_s:
                print(f"budget of {args.budget_s:.0f} s spent: E={e} compile={compile_} not run", file=sys.stderr)
                continue
            cell = {"envs": e, "compile": compile_, "env_s": env_step_seconds(e, device, compile_)
                    * HYPERPARAMETERS["rollout_len"], **training_cell(e, device, compile_, args.iterations)}
            cells.append(cell)
            print(f"E={e} compile={compile_}: {cell['steps_per_s']:,.0f} env-steps/s "
                  f"({time.perf_counter() - start:.0f} s so far)", file=sys.stderr)
            report = markdown(device_name, tests, cells, args)
            (out / f"{args.name}.md").write_text(report)
            (out / f"{args.name}.json").write_text(json.dumps({"device": device_name, "tests": tests, "cells": cells},
                                                              indent=2))
    print(markdown(device_name, tests, cells, args))


if __name__ == "__main__":
    main()
