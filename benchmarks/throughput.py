"""Env steps per second on ``mpe/simple_spread`` (N=3): the raw env limit against our collection and
full MAPPO training, for several numbers of envs E. One env step = one step of one env (all agents).

(a) raw: E plain mpe2 ParallelEnvs stepped in a Python loop with pre-generated random actions,
    reset when ``env.agents`` is empty - the physical limit of a single process;
(b) collect: ``VectorEnv`` + actor and critic inference, ``marl.trainer.Collector.collect()`` repeatedly;
(c) train: ``marl.trainer.train`` (MAPPO, default hyper-parameters); the median of the ``steps_per_s``
    column of ``metrics.csv`` (collect + update per iteration), the first iteration left out.

Measurements are interleaved (for each repeat, for each E: a, b, c) and the median over repeats is
reported. Single-threaded torch (``torch.set_num_threads(1)``), as the trainer's default.

    .venv/bin/python benchmarks/throughput.py [--envs 1,8,16,32] [--repeats 3] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from envs import VectorEnv  # noqa: E402
from marl.config import build_config  # noqa: E402
from marl.learner import Learner  # noqa: E402
from marl.trainer import Collector, train  # noqa: E402

SCENARIO = "mpe/simple_spread"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_E, TARGET_RATIO = 16, 0.5


def raw_env_rate(num_envs: int, seconds: float, seed: int = 0) -> float:
    """Steps/s of E plain mpe2 ParallelEnvs in a Python loop (actions made before the clock starts)."""
    from mpe2 import simple_spread_v3

    envs = [simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=False) for _ in range(num_envs)]
    rng = np.random.default_rng(seed)
    table = [[{a: int(x) for a, x in zip(env.possible_agents, rng.integers(0, 5, len(env.possible_agents)))}
              for _ in range(64)] for env in envs]
    for k, env in enumerate(envs):
        env.reset(seed=seed + k)
    episodes, steps, t = num_envs, 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for k, env in enumerate(envs):
            env.step(table[k][t % 64])
            if not env.agents:
                env.reset(seed=seed + episodes)
                episodes += 1
        steps += num_envs
        t += 1
    elapsed = time.perf_counter() - start
    for env in envs:
        env.close()
    return steps / elapsed


def collect_rate(num_envs: int, seconds: float, seed: int = 0) -> float:
    """Steps/s of ``Collector.collect()`` (VectorEnv stepping + actor sampling + critic values)."""
    cfg = build_config({"scenario": SCENARIO, "num_envs": num_envs, "seed": seed})
    torch.manual_seed(seed)
    env = VectorEnv(scenarios.make(SCENARIO), num_envs, seed=seed)
    learner = Learner(cfg, env.layout, env.state_dim)
    collector = Collector(env, learner, cfg.ppo.rollout_len, torch.device("cpu"))
    try:
        collector.collect()  # warm-up
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            collector.collect()
            steps += num_envs * cfg.ppo.rollout_len
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def train_rate(num_envs: int, iterations: int, seed: int = 0) -> float:
    """Median ``steps_per_s`` of a short MAPPO run's iterations after the first (warm-up)."""
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        cfg = build_config({
            "scenario": SCENARIO, "algo": "mappo", "seed": seed, "num_envs": num_envs, "threads": 1,
            "total_steps": num_envs * 50 * iterations, "ppo": {"rollout_len": 50}, "progress": False,
            "out": tmp, "checkpoint_every": 10**12, "eval_every": 0, "eval_episodes": 1,
        })
        with contextlib.redirect_stdout(io.StringIO()):  # train() prints its own summary
            train(cfg)
        with open(Path(tmp) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    rates = [float(r["steps_per_s"]) for r in rows[1:]]
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", default="1,8,16,32", help="comma-separated numbers of envs E")
    p.add_argument("--repeats", type=int, default=3, help="measurements per (E, kind); medians are reported")
    p.add_argument("--seconds", type=float, default=1.0, help="duration of one raw / collect measurement")
    p.add_argument("--train-iters", type=int, default=6, help="iterations per training measurement (1 warm-up)")
    args = p.parse_args(argv)
    if args.train_iters < 2:
        p.error("--train-iters must be >= 2 (the first iteration is left out)")
    env_counts = [int(x) for x in args.envs.split(",") if x.strip()]
    torch.set_num_threads(1)

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    runs: dict[int, dict[str, list[float]]] = {e: {"raw": [], "collect": [], "train": []} for e in env_counts}
    for r in range(args.repeats):
        for e in env_counts:
            runs[e]["raw"].append(raw_env_rate(e, args.seconds, seed=r))
            runs[e]["collect"].append(collect_rate(e, args.seconds, seed=r))
            runs[e]["train"].append(train_rate(e, args.train_iters, seed=r))
            print(f"  repeat {r + 1}/{args.repeats} E={e}: raw {runs[e]['raw'][-1]:.0f}, collect "
                  f"{runs[e]['collect'][-1]:.0f}, train {runs[e]['train'][-1]:.0f} steps/s", file=sys.stderr)
    wall = time.perf_counter() - t0

    results = {}
    for e, m in runs.items():
        med = {k: statistics.median(v) for k, v in m.items()}
        results[e] = {**{f"{k}_steps_per_s": v for k, v in med.items()},
                      "collect_over_raw": med["collect"] / med["raw"], "train_over_raw": med["train"] / med["raw"],
                      "samples": m}
    lines = [
        f"## Throughput on {SCENARIO} (N=3), env steps/s, median of {args.repeats}",
        "",
        "| E | raw mpe2 loop | collect (VectorEnv + actor) | full MAPPO training | collect / raw | training / raw |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for e, r in results.items():
        lines.append(f"| {e} | {r['raw_steps_per_s']:,.0f} | {r['collect_steps_per_s']:,.0f} | "
                     f"{r['train_steps_per_s']:,.0f} | {r['collect_over_raw']:.2f} | {r['train_over_raw']:.2f} |")
    lines.append("")
    if TARGET_E in results:
        ratio = results[TARGET_E]["train_over_raw"]
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        lines.append(f"target: full MAPPO training at E={TARGET_E} ≥ {TARGET_RATIO:.0%} of the raw env rate: "
                     f"{verdict} ({ratio:.0%})")
    else:
        verdict = None
        lines.append(f"target: full MAPPO training at E={TARGET_E} ≥ {TARGET_RATIO:.0%} of the raw env rate: "
                     f"not measured (E={TARGET_E} not in --envs)")
    load_after = os.getloadavg()[0]
    lines.append(f"torch threads 1, {os.cpu_count()} CPUs, 1-min load average {load_before:.1f} before / "
                 f"{load_after:.1f} after, {wall:.0f} s in all")
    text = "\n".join(lines)
    print(text)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"scenario": SCENARIO, "n_agents": 3, "repeats": args.repeats, "seconds": args.seconds,
           "train_iters": args.train_iters, "results": {str(e): r for e, r in results.items()},
           "target": {"envs": TARGET_E, "min_train_over_raw": TARGET_RATIO, "verdict": verdict},
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "loadavg_before": load_before,
           "loadavg_after": load_after, "wall_time_s": wall}
    (RESULTS / "throughput.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "throughput.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
