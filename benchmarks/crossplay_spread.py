"""Cooperative cross-play on simple_spread: do independently trained teams play together?

Trains teams that differ in seed and algorithm (MAPPO and IPPO, three seeds each), then plays every
pair seat by seat (``marl crossplay``: in cell [a, b] one agent is team a's, the others team b's):
the self-play diagonal against the cross-play cells, as a table and a heatmap.

    .venv/bin/python benchmarks/crossplay_spread.py [--steps 300000] [--episodes 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import run_parallel  # noqa: E402
from marl.tournament.crossplay import run_crossplay  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RANDOM, HEURISTIC = -26.98, -9.15  # simple_spread N=3 per-agent returns (docs/results.md)


def normalised(x: float) -> float:
    return (x - RANDOM) / (HEURISTIC - RANDOM)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--name", default="crossplay_spread", help="results folder under benchmarks/results/")
    args = p.parse_args()
    folder = RESULTS / args.name
    jobs = [(folder / "runs" / f"{algo}-s{seed}", ["scenario=mpe/simple_spread", f"algo={algo}", f"seed={seed}",
                                                  f"total_steps={args.steps}", "eval_episodes=10"])
            for algo in ("mappo", "ippo") for seed in (int(s) for s in args.seeds.split(","))]
    codes = run_parallel(jobs, args.workers)
    if any(codes.values()):
        raise SystemExit(f"training failed: {[d.name for d, c in codes.items() if c]}")
    summary = run_crossplay("mpe/simple_spread", [str(d) for d, _ in jobs], episodes=args.episodes, seed=0,
                            workers=args.workers, out=str(folder / "crossplay"))
    names, M = summary["teams"], np.asarray(summary["matrix"])
    lines = ["# simple_spread N=3: self-play vs cross-play", "",
             f"{len(names)} teams trained {args.steps:,} env steps each (MAPPO and IPPO, seeds {args.seeds}); "
             f"{args.episodes} episodes per cell and seat, greedy actions. Cell [a, b]: one agent of team a, the "
             "others of team b, mean per-agent return (normalised: random 0, heuristic 1).", "",
             "| team \\ partners | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for i, a in enumerate(names):
        lines.append(f"| {a} | " + " | ".join(f"{M[i, j]:.2f} ({normalised(M[i, j]):.2f})" for j in range(len(names)))
                     + " |")
    lines += ["", f"Self-play (diagonal) {summary['self_play']:.2f} ({normalised(summary['self_play']):.2f}), "
              f"cross-play {summary['cross_play']:.2f} ({normalised(summary['cross_play']):.2f}), gap "
              f"{summary['gap']:.2f} per agent.", "", "![cross-play](crossplay/crossplay.png)", ""]
    (folder / "report.md").write_text("\n".join(lines))
    (folder / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "failed"}, indent=2,
                                                    default=str))
    print((folder / "report.md").read_text())


if __name__ == "__main__":
    main()
