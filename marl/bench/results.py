"""Reads a bench folder back: each cell's final score, its random policy's score and its learning
curve, plus which cells failed or have not run.

The score of a run is its final greedy evaluation (``summary.json`` ``final_eval.return_mean``; the
same number as the last ``eval_return_mean`` row of ``metrics.csv`` when the run evaluates during
training). Learning curves are the ``eval_return_mean`` rows when every run has them, else the
training return ``episode_return_mean``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from marl.bench.suite import BenchError


@dataclass
class RunRecord:
    name: str
    task: str
    method: str
    seed: int
    status: str  # done | failed | missing
    score: float = math.nan
    random_score: float = math.nan
    error: str | None = None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # column -> (steps, values)


@dataclass
class BenchResults:
    bench_dir: Path
    suite: dict
    tasks: list[str]
    methods: list[str]
    method_axes: dict[str, dict]
    runs: list[RunRecord]
    curve_column: str

    def done(self, task: str | None = None, method: str | None = None) -> list[RunRecord]:
        return [r for r in self.runs if r.status == "done" and (task is None or r.task == task)
                and (method is None or r.method == method)]


CURVE_COLUMNS = ("eval_return_mean", "episode_return_mean")


def read_curves(metrics_csv: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """column -> (env steps, values) over the rows where the column holds a finite number."""
    out = {c: ([], []) for c in CURVE_COLUMNS}
    if not metrics_csv.is_file():
        return {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            for column in CURVE_COLUMNS:
                try:
                    value = float(row.get(column) or "nan")
                except ValueError:
                    continue
                if math.isfinite(value):
                    out[column][0].append(float(row["env_steps"]))
                    out[column][1].append(value)
    return {c: (np.array(x), np.array(y)) for c, (x, y) in out.items() if x}


def load_results(bench_dir: str | Path) -> BenchResults:
    bench_dir = Path(bench_dir)
    plan_path = bench_dir / "plan.json"
    if not plan_path.is_file():
        raise BenchError(f"{bench_dir} is not a bench folder (no plan.json); expected runs/bench-<suite>-<time>/")
    plan = json.loads(plan_path.read_text())
    suite = yaml.safe_load((bench_dir / "suite.yaml").read_text())
    runs, tasks, methods, axes = [], [], [], {}
    for cell in plan["cells"]:
        if cell["task"] not in tasks:
            tasks.append(cell["task"])
        if cell["method"] not in methods:
            methods.append(cell["method"])
            axes[cell["method"]] = cell["axes"]
        folder = bench_dir / cell["name"]
        rec = RunRecord(cell["name"], cell["task"], cell["method"], cell["seed"], "missing")
        if (folder / "summary.json").is_file():
            summary = json.loads((folder / "summary.json").read_text())
            rec.status = "done"
            rec.score = float(summary["final_eval"]["return_mean"])
            rec.random_score = float(summary["random_policy"]["return_mean"])
            rec.curves = read_curves(folder / "metrics.csv")
        elif (folder / "failed.json").is_file():
            rec.status = "failed"
            rec.error = json.loads((folder / "failed.json").read_text()).get("error")
        runs.append(rec)
    done = [r for r in runs if r.status == "done"]
    column = "eval_return_mean" if done and all("eval_return_mean" in r.curves for r in done) else "episode_return_mean"
    return BenchResults(bench_dir, suite, tasks, methods, axes, runs, column)
