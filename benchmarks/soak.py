"""Soak test: (1) resident memory of a small training run over many updates stays flat after warm-up
and rollout tensors never keep autograd graphs; (2) a training subprocess SIGKILLed at random moments
again and again always resumes, finishes, and ends bit-identical to an uninterrupted run.

(1) runs ``marl.trainer.train`` in this process (mpe/simple_spread, 2 envs x 10 steps per update,
    a checkpoint every 50 updates) with ``PPO.update`` wrapped to sample RSS (``/proc/self/statm``)
    after every update and to check that no rollout tensor requires grad or has a ``grad_fn``. The
    slope is a least-squares fit of RSS against update index after the first ``--warmup`` fraction.
(2) runs ``python -m marl.cli train ... resume=true`` in a loop, SIGKILLing each attempt after a random
    delay (some land in checkpoint writes, some before training starts) until ``--kills`` kills are done,
    then lets it finish. Checks metrics.csv has every iteration exactly once and that every column but
    the wall-clock ones, and every tensor of the final checkpoint, equal an uninterrupted reference run.
    Time lost = wall time of all attempts - wall time of the uninterrupted run.

    .venv/bin/python benchmarks/soak.py [--updates 2000] [--kills 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from marl import checkpoint as ckpt  # noqa: E402
from marl.algos.ppo import PPO  # noqa: E402
from marl.config import config_from_args  # noqa: E402
from marl.trainer import train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SMALL = ["scenario=mpe/simple_spread", "num_envs=2", "algo.rollout_len=10", "algo.epochs=2", "actor.hidden=16",
         "critic.hidden=16", "eval_episodes=2", "progress=false"]
WALL_CLOCK = {"wall_time_s", "steps_per_s", "collect_s", "update_s"}
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


# ---- (1) memory ------------------------------------------------------------------------------------


def memory_soak(updates: int, warmup: float, workdir: Path) -> dict:
    samples: list[float] = []
    graphs_kept = 0
    original = PPO.update

    def update(self, ro, progress):
        nonlocal graphs_kept
        tensors = [v for d in (ro.data, ro.replay, ro.carry, ro.carry0, ro.final) for v in d.values()]
        graphs_kept += sum(bool(t.requires_grad or t.grad_fn is not None) for t in tensors)
        out = original(self, ro, progress)
        samples.append(rss_mb())
        return out

    steps = 20 * updates
    cfg = config_from_args([*SMALL, f"total_steps={steps}", "checkpoint_every=1000", f"out={workdir / 'memory'}"])
    PPO.update = update
    try:
        t0 = time.perf_counter()
        train(cfg)
        wall = time.perf_counter() - t0
    finally:
        PPO.update = original
    x = np.arange(len(samples))
    start = int(len(samples) * warmup)
    slope, _ = np.polyfit(x[start:], np.asarray(samples[start:]), 1)
    return {
        "updates": len(samples),
        "rss_mb_after_first_update": samples[0],
        "rss_mb_at_warmup_end": samples[start],
        "rss_mb_final": samples[-1],
        "rss_mb_max": max(samples),
        "slope_kb_per_update_after_warmup": slope * 1024,
        "growth_mb_after_warmup": samples[-1] - samples[start],
        "rollout_tensors_with_autograd_graph": graphs_kept,
        "wall_s": wall,
    }


# ---- (2) kills and resumes -------------------------------------------------------------------------


def _cli(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "marl.cli", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if dataclasses.is_dataclass(a):  # the checkpoint's env layout (its fields hold arrays)
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a == b


def _final(run: Path) -> dict:
    payload = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    return {k: v for k, v in payload.items() if k not in ("config", "metadata", "wall_time_s", "wandb_id")}


def kill_soak(kills: int, updates: int, seed: int, workdir: Path) -> dict:
    rng = random.Random(seed)
    args = [*SMALL, f"total_steps={20 * updates}", "checkpoint_every=100", "keep_checkpoints=2"]
    reference, run = workdir / "reference", workdir / "killed"
    t0 = time.perf_counter()
    proc = _cli(["train", *args, f"out={reference}"])
    if proc.wait() != 0:
        raise RuntimeError(proc.stderr.read())
    reference_wall = time.perf_counter() - t0

    attempts, done_kills, in_write, before_first_row = 0, 0, 0, 0
    killed_at_rows = []
    total_wall = 0.0
    while True:
        attempts += 1
        slow_write = done_kills < kills and done_kills % 3 == 1  # every third kill lands inside a checkpoint write
        proc = _cli(["train", *args, f"out={run}", "resume=true"],
                    env={ckpt.SLOW_WRITE_ENV: "0.3"} if slow_write else None)
        t0 = time.perf_counter()
        if done_kills < kills:
            # a random moment (some before training starts); or, for a slow write, inside the write
            deadline = t0 + (math.inf if slow_write else rng.uniform(0.5, 0.6 * reference_wall))
            while time.perf_counter() < deadline and proc.poll() is None:
                if slow_write and list((run / "checkpoints").glob(".step_*.tmp-*")):
                    in_write += 1
                    break
                time.sleep(0.01)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                done_kills += 1
                n = len(_rows(run)) if (run / "metrics.csv").exists() else 0
                before_first_row += n == 0
                killed_at_rows.append(n)
                total_wall += time.perf_counter() - t0
                continue
        code = proc.wait()
        total_wall += time.perf_counter() - t0
        if code != 0:
            raise RuntimeError(f"attempt {attempts} failed: {proc.stderr.read()[-2000:]}")
        break

    got, want = _rows(run), _rows(reference)
    iterations = [int(r["iteration"]) for r in got]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]  # noqa: E731
    return {
        "kills": done_kills,
        "kills_during_checkpoint_write": in_write,
        "kills_before_the_first_row": before_first_row,
        "rows_logged_when_killed": killed_at_rows,
        "resumes": attempts - 1,
        "updates": updates,
        "rows_ok": iterations == list(range(1, updates + 1)),
        "metrics_identical_to_uninterrupted": strip(got) == strip(want),
        "final_checkpoint_identical_to_uninterrupted": _same(_final(run), _final(reference)),
        "uninterrupted_wall_s": reference_wall,
        "all_attempts_wall_s": total_wall,
        "time_lost_s": total_wall - reference_wall,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=2000, help="updates of the memory soak")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of updates left out of the slope")
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--kill-updates", type=int, default=150, help="updates of the killed run")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="marl-soak-") as tmp:
        memory = memory_soak(args.updates, args.warmup, Path(tmp))
        print(f"\nmemory: {memory['updates']} updates in {memory['wall_s']:.0f} s; "
              f"RSS {memory['rss_mb_after_first_update']:.1f}"
              f" MB after the first update, {memory['rss_mb_at_warmup_end']:.1f} MB after warm-up, "
              f"{memory['rss_mb_final']:.1f} MB at the end; slope after warm-up "
              f"{memory['slope_kb_per_update_after_warmup']:+.3f} KB/update; rollout tensors with an autograd "
              f"graph: {memory['rollout_tensors_with_autograd_graph']}")
        kills = kill_soak(args.kills, args.kill_updates, args.seed, Path(tmp))
    print(f"kills: {kills['kills']} SIGKILLs ({kills['kills_during_checkpoint_write']} inside a checkpoint write, "
          f"{kills['kills_before_the_first_row']} before the first row), {kills['resumes']} resumes; "
          f"rows 1..{kills['updates']}"
          f" each once: {kills['rows_ok']}; metrics identical to the uninterrupted run: "
          f"{kills['metrics_identical_to_uninterrupted']}; final checkpoint identical: "
          f"{kills['final_checkpoint_identical_to_uninterrupted']}; time lost {kills['time_lost_s']:.1f} s "
          f"({kills['all_attempts_wall_s']:.1f} s over all attempts vs "
          f"{kills['uninterrupted_wall_s']:.1f} s uninterrupted)")
    RESULTS.mkdir(exist_ok=True)
    result = {"config": SMALL, "memory": memory, "kills": kills, "torch": torch.__version__}
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    ok = (kills["rows_ok"] and kills["metrics_identical_to_uninterrupted"]
          and kills["final_checkpoint_identical_to_uninterrupted"]
          and memory["rollout_tensors_with_autograd_graph"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
