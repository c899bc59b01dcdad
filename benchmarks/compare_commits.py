"""Batched MAPPO training speed of this checkout against another commit, measured in one run.

The other commit is checked out into a temporary git worktree; both are run as ordinary
``python -m marl.cli train`` subprocesses with the same interpreter and packages (``PYTHONPATH``
points at each tree), interleaved (A, B, A, B, ...) so that machine noise hits both alike. Each
measurement is the median ``steps_per_s`` of a run's iterations after the first (warm-up); the
report gives the median over repeats and the ratio this / other.

    .venv/bin/python benchmarks/compare_commits.py --against HEAD~1 [--cases 16:1,512:2] [--repeats 3]
        [--iters 8]

Only keys both versions understand are passed (scenario, backend, num_envs, threads, total_steps,
eval_episodes, checkpoint_every, progress, out), so any two commits of the batched era compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def rate(tree: Path, envs: int, threads: int, iters: int, out: Path) -> float:
    args = ["scenario=mpe/simple_spread", "backend=batched", f"num_envs={envs}", f"threads={threads}",
            f"total_steps={envs * 50 * iters}", "eval_episodes=1", "checkpoint_every=0", "progress=false", f"out={out}"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-m", "marl.cli", "train", *args], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return statistics.median(float(r["steps_per_s"]) for r in rows[1:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, help="the other commit (any git revision)")
    p.add_argument("--cases", default="16:1,512:2", help="NUM_ENVS:THREADS pairs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iters", type=int, default=8, help="iterations per run (the first is warm-up)")
    args = p.parse_args(argv)
    cases = [tuple(int(x) for x in c.split(":")) for c in args.cases.split(",")]
    this = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), args.against], cwd=ROOT, check=True)
        try:
            other_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=other, capture_output=True,
                                       text=True).stdout.strip()
            rates: dict = {c: {"this": [], "other": []} for c in cases}
            for rep in range(args.repeats):
                for c in cases:
                    for name, tree in (("this", ROOT), ("other", other)):
                        r = rate(tree, c[0], c[1], args.iters, Path(tmp) / f"{name}-{c[0]}-{c[1]}-{rep}")
                        rates[c][name].append(r)
                        print(f"repeat {rep}, E={c[0]} threads={c[1]}, {name}: {r:,.0f} steps/s", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT)
    lines = [f"## Batched MAPPO training, mpe/simple_spread N=3: {this} (this) vs {other_rev} (other)", "",
             f"median steps/s over {args.repeats} interleaved repeats of {args.iters}-iteration runs "
             "(first iteration left out)", "",
             "| E | threads | this | other | this / other |", "|---:|---:|---:|---:|---:|"]
    out = []
    for c in cases:
        a, b = statistics.median(rates[c]["this"]), statistics.median(rates[c]["other"])
        lines.append(f"| {c[0]} | {c[1]} | {a:,.0f} | {b:,.0f} | {a / b:.3f} |")
        out.append({"num_envs": c[0], "threads": c[1], "this": rates[c]["this"], "other": rates[c]["other"],
                    "ratio_of_medians": a / b})
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare_commits.md").write_text(text + "\n")
    (RESULTS / "compare_commits.json").write_text(json.dumps({"this": this, "other": other_rev, "cases": out},
                                                             indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
