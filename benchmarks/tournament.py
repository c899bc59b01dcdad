"""The repeated rock-paper-scissors population benchmark, and tournament throughput.

1. Trains a recurrent (GRU) IPPO agent on ``classic/rrps_vs_bots`` against samples of a
   15-bot population (a few minutes on 2 cores), unless ``--run`` names an existing run.
2. Plays the full round robin of the 16-player population (15 bots + the agent) on
   ``classic/rrps``: every ordered pair, ``--episodes`` matches of ``--throws`` throws, with the
   local process pool and with a local Ray, and checks both give the same payoff matrix.
3. Reports matches per second and round-robin wall time per backend, the agent's population
   metrics (average return, worst-case return, within-population exploitability) and its ratings.

    .venv/bin/python benchmarks/tournament.py [--steps 250000] [--throws 100] [--episodes 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from marl.config import config_from_args  # noqa: E402
from marl.tournament.run import TournamentConfig, run_tournament  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
POPULATION = ("rock,paper,scissors,cycle,reverse_cycle,copy_opponent,beat_last,beat_beat_own,frequency,"
              "recent_frequency,noisy_frequency,markov,pattern,joint_pattern,win_stay_lose_shift")


def train_agent(out: Path, steps: int, throws: int, seed: int) -> tuple[Path, float]:
    from marl.trainer import train

    cfg = config_from_args([
        "scenario=classic/rrps_vs_bots", f"num_throws={throws}", f"opponents={POPULATION}",
        "actor.recurrent=true", "algo=ippo", f"total_steps={steps}", "num_envs=16", "checkpoint_every=50000",
        "eval_episodes=30", "progress=false", f"seed={seed}", f"out={out}",
    ])
    start = time.perf_counter()
    train(cfg)
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="an existing classic/rrps_vs_bots run (skips training)")
    p.add_argument("--steps", type=int, default=250_000)
    p.add_argument("--throws", type=int, default=100)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/bench-tournament")
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()

    work = Path(args.work)
    train_s = None
    if args.run:
        run = Path(args.run)
    else:
        run = work / f"rrps-gru-s{args.seed}"
        if run.exists():
            shutil.rmtree(run)
        run, train_s = train_agent(run, args.steps, args.throws, args.seed)
        print(f"trained {run} in {train_s:.0f}s")

    timings = {}
    summaries = {}
    for backend in ("local",) + (() if args.skip_ray else ("ray",)):
        out = work / f"tournament-{backend}"
        if out.exists():
            shutil.rmtree(out)
        cfg = TournamentConfig(scenario="classic/rrps", players=str(run), bots=POPULATION, episodes=args.episodes,
                               overrides={"num_throws": args.throws}, backend=backend, workers=args.workers,
                               out=str(out), seed=args.seed, progress=False)
        start = time.perf_counter()
        s = run_tournament(cfg)
        wall = time.perf_counter() - start
        assert not s["failed"], s["failed"]
        summaries[backend] = s
        timings[backend] = {"matches": s["matches"], "wall_s": wall, "matches_per_s": s["matches"] / wall,
                            "match_phase_s": s["wall_s"]}
        print(f"{backend}: {s['matches']} matches in {wall:.1f}s ({s['matches'] / wall:.2f} matches/s; "
              f"playing alone {s['wall_s']:.1f}s)")
    if "ray" in summaries:
        same = bool(np.array_equal(summaries["ray"]["payoff"].mean, summaries["local"]["payoff"].mean, equal_nan=True))
        print(f"Ray and local payoff matrices identical: {same}")
    else:
        same = None

    s = summaries["local"]
    agent = run.name
    rows = s["ratings"]
    me = next(r for r in rows if r["player"] == agent)
    rank = [r["player"] for r in rows].index(agent) + 1
    result = {
        "population": POPULATION.split(","), "agent": {k: me[k] for k in me}, "train_steps": args.steps,
        "train_s": train_s, "throws": args.throws, "episodes": args.episodes, "workers": args.workers,
        "timings": timings, "identical_payoffs_ray_vs_local": same, "agent_elo_rank": rank, "ratings": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tournament.json").write_text(json.dumps(result, indent=2, default=float))
    out = Path(s["out"])
    shutil.copy(out / "payoff.png", RESULTS / "tournament_payoff.png")
    shutil.copy(out / "ratings.png", RESULTS / "tournament_ratings.png")
    md = [f"# classic/rrps population benchmark ({args.throws} throws, {args.episodes} episodes per match)", "",
          "| backend | matches | wall s | matches/s |", "|---|---:|---:|---:|"]
    md += [f"| {b} ({args.workers} workers) | {t['matches']} | {t['wall_s']:.1f} | {t['matches_per_s']:.2f} |"
           for b, t in timings.items()]
    md += ["", f"Agent `{agent}`: Elo rank {rank}/{len(rows)}, average return {me['avg_return']:.2f}, "
           f"worst-case return {me['worst_case_return']:.2f} (vs its best responder `{me['best_responder']}`), "
           f"within-population exploitability {me['exploitability']:.2f}, Nash skill {me['nash_skill']:.3g}.", "",
           (out / "ratings.md").read_text()]
    (RESULTS / "tournament.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
