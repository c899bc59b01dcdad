"""Run many training runs as subprocesses, a few at a time, and read their results back.

Each job is a run folder plus ``marl train`` arguments. A folder with ``summary.json`` is finished
and skipped; one with a checkpoint but no summary is resumed; so a benchmark can be stopped and
started again without losing finished work. Output of each run goes to ``<run>/train.log``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# two-sided 95% Student-t quantiles by degrees of freedom (n - 1), for CIs over a few seeds
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def command(run_dir: Path, train_args: list[str]) -> list[str]:
    base = [sys.executable, "-m", "marl.cli"]
    if (run_dir / "config.yaml").is_file() and any((run_dir / "checkpoints").glob("*")):
        return base + ["resume", str(run_dir), "progress=false"]
    return base + ["train", *train_args, f"out={run_dir}", "progress=false"]


def run_parallel(jobs: list[tuple[Path, list[str]]], parallel: int) -> dict[Path, int]:
    """Runs the jobs, ``parallel`` at a time; returns each folder's exit code (0 when skipped)."""
    codes = {d: 0 for d, _ in jobs if (d / "summary.json").is_file()}
    pending = [(d, a) for d, a in jobs if d not in codes]
    print(f"{len(jobs)} runs: {len(codes)} finished already, {len(pending)} to run, {parallel} at a time",
          file=sys.stderr)
    running: list[tuple[subprocess.Popen, Path, object, float]] = []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                d, args = pending.pop(0)
                d.mkdir(parents=True, exist_ok=True)
                log = open(d / "train.log", "a")
                proc = subprocess.Popen(command(d, args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                running.append((proc, d, log, time.perf_counter()))
            time.sleep(0.5)
            for item in [r for r in running if r[0].poll() is not None]:
                proc, d, log, t0 = item
                log.close()
                codes[d] = proc.returncode
                left = len(pending) + len(running) - 1
                print(f"done {d.name} (exit {proc.returncode}, {time.perf_counter() - t0:.0f} s; {left} left)",
                      file=sys.stderr)
                running.remove(item)
    finally:  # interrupted: stop what this script started (their checkpoints allow a resume)
        for proc, _, log, _ in running:
            proc.terminate()
            proc.wait()
            log.close()
    return codes


def summary(run_dir: Path) -> dict | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def curve(run_dir: Path, column: str = "episode_return_mean") -> tuple[list[float], list[float]]:
    """(env steps, column) over a run's metrics.csv rows where the column is a number."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return [], []
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                y = float(row[column])
            except (KeyError, ValueError):
                continue
            if math.isfinite(y):
                xs.append(float(row["env_steps"]))
                ys.append(y)
    return xs, ys


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t confidence interval (nan for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    t = T95.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))
