"""PSRO vs fictitious play vs self-play on repeated rock-paper-scissors, at the same compute.

For each meta-strategy (``nash`` = PSRO, ``uniform`` = fictitious play, ``last`` = self-play) and
seed, ``marl league`` grows a population from the same initial members for ``--generations``
generations, each best response trained for ``--steps`` env steps (so every method gets the same
compute). Then every member of every league, and the initial members, play a round robin: the
*union pool*. Each league's meta-strategy after each generation is scored by its NashConv in that
pool (how much the best pool member gains against it, both sides summed), which compares methods
on a common yardstick; the within-league NashConv of the mixture each response was trained against
is reported too. Leagues and pool matches are resumable: rerunning the script finishes what is
missing.

    .venv/bin/python benchmarks/league_rrps.py --initial rock --name selfplay-from-rock
    .venv/bin/python benchmarks/league_rrps.py --initial all-bots --name vs-bots
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import T95  # noqa: E402
from marl.league.loop import LeagueConfig, run_league  # noqa: E402
from marl.league.meta import nash_conv_in_pool  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = {"nash": "PSRO (Nash)", "uniform": "fictitious play (uniform)", "last": "self-play (last)"}


def league_config(args, meta: str, seed: int, out: Path) -> LeagueConfig:
    initial = "all" if args.initial == "all-bots" else args.initial
    train = {"total_steps": args.steps, "algo": {"name": args.algo}, "eval_episodes": 4, "threads": 1}
    return LeagueConfig(scenario="classic/rrps", meta=meta, generations=args.generations, initial=initial,
                        train=train, episodes=args.episodes, seed=seed, workers=0, out=str(out), progress=False,
                        overrides={"num_throws": args.throws})


def _run_one(job) -> tuple[str, float]:
    import torch

    torch.set_num_threads(1)
    args, meta, seed, out = job
    start = time.perf_counter()
    resume = (out / "league.json").is_file()
    run_league(league_config(args, meta, seed, out), resume=resume)
    return out.name, time.perf_counter() - start


def run_leagues(args, folder: Path) -> dict[str, float]:
    jobs = [(args, m, s, folder / f"{m}-s{s}") for m in args.methods for s in args.seeds]
    walls = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for name, wall in pool.map(_run_one, jobs):
            walls[name] = wall
            print(f"league {name}: {wall:.0f} s", file=sys.stderr, flush=True)
    return walls


def union_pool(args, folder: Path, leagues: dict[str, dict]):
    """Every distinct member of every league; plays the missing round-robin matches."""
    import scenarios
    from marl.tournament.backends import make_backend
    from marl.tournament.matches import schedule
    from marl.tournament.payoff import build_payoff
    from marl.tournament.population import PlayerSpec
    from marl.tournament.run import roles_and_seats
    from marl.tournament.store import ResultStore

    players, index = [], {}  # pool name -> position
    for league, state in leagues.items():
        for m in state["members"][0]:
            name = m["name"] if m["generation"] == 0 else f"{league}/{m['name']}"
            if name not in index:
                index[name] = len(players)
                players.append(PlayerSpec(name, m["kind"], m["source"] if m["kind"] != "random" else ""))
    overrides = {"num_throws": args.throws}
    _, seats = roles_and_seats(scenarios.make("classic/rrps", **overrides))
    store = ResultStore(folder / "pool")
    done = store.results()
    todo = [t for t in schedule(players, "classic/rrps", overrides, seats, args.episodes, args.pool_seed)
            if t.key not in done]
    print(f"union pool: {len(players)} players, {len(todo)} matches to play", file=sys.stderr, flush=True)
    start = time.perf_counter()
    backend = make_backend("local", args.workers)
    for task, status, payload in backend.run(todo):
        if status != "ok":
            raise RuntimeError(f"match {task.key} failed: {payload}")
        store.add(payload)
    wall = time.perf_counter() - start
    Z = build_payoff([p.name for p in players], store.results()).antisymmetric()
    return Z, index, wall


def _ci(values: list[float]) -> tuple[float, float]:
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(T95[len(x) - 1] * x.std(ddof=1) / math.sqrt(len(x)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="selfplay-from-rock")
    p.add_argument("--initial", default="rock", help="initial members: bot names, random, or all-bots")
    p.add_argument("--methods", default="nash,uniform,last")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--generations", type=int, default=6)
    p.add_argument("--steps", type=int, default=30_000, help="env steps per best response")
    p.add_argument("--algo", default="mappo")
    p.add_argument("--throws", type=int, default=100)
    p.add_argument("--episodes", type=int, default=8, help="episodes per match")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pool-seed", type=int, default=12345)
    args = p.parse_args()
    args.methods = args.methods.split(",")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    folder = RESULTS / f"league_rrps_{args.name}"
    folder.mkdir(parents=True, exist_ok=True)

    walls = run_leagues(args, folder)
    leagues = {f"{m}-s{s}": json.loads((folder / f"{m}-s{s}" / "league.json").read_text())
               for m in args.methods for s in args.seeds}
    Z, index, pool_wall = union_pool(args, folder, leagues)

    curves: dict[str, dict[str, list[float]]] = {}
    for league, state in leagues.items():
        names = [m["name"] if m["generation"] == 0 else f"{league}/{m['name']}" for m in state["members"][0]]
        idx = [index[n] for n in names]
        gens = state["generations"]
        # generation 0: the initial meta-strategy (what generation 1 trained against)
        sigmas = [np.asarray(gens[0]["trained_against"][0])] + [np.asarray(g["meta_strategy"][0]) for g in gens]
        curves[league] = {
            "pool": [nash_conv_in_pool(Z, idx[: len(s)], s) for s in sigmas],
            "within": [g["nash_conv_trained_against"] for g in gens],
            "train_s": sum(g["train_s"] for g in gens),
        }
    summary = {"settings": {k: v for k, v in vars(args).items()}, "league_wall_s": walls, "pool_wall_s": pool_wall,
               "pool_players": len(index), "curves": curves, "methods": {}}
    for m in args.methods:
        per_seed = [curves[f"{m}-s{s}"] for s in args.seeds]
        summary["methods"][m] = {
            "pool": [_ci([c["pool"][g] for c in per_seed]) for g in range(args.generations + 1)],
            "within": [_ci([c["within"][g] for c in per_seed]) for g in range(args.generations)],
        }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, args, folder / "nash_conv.png")
    write_markdown(summary, args, folder / "report.md")
    print((folder / "report.md").read_text())


def plot(summary: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for m, label in METHODS.items():
        if m not in summary["methods"]:
            continue
        for ax, key, start in ((axes[0], "pool", 0), (axes[1], "within", 1)):
            mean, half = np.array(summary["methods"][m][key]).T
            g = np.arange(start, start + len(mean))
            ax.plot(g, mean, "o-", label=label)
            ax.fill_between(g, mean - half, mean + half, alpha=0.2)
    axes[0].set_title("NashConv of the meta-strategy in the union pool", fontsize=10)
    axes[1].set_title("NashConv of the mixture trained against (own population)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("generation")
        ax.set_ylabel(f"NashConv (return over {args.throws} throws)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(fontsize=8)
    fig.suptitle(f"classic/rrps, initial {args.initial}: mean and 95% t-interval over seeds {args.seeds}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(summary: dict, args, path: Path) -> None:
    g = args.generations
    lines = [f"# League on classic/rrps from `{args.initial}`: PSRO vs fictitious play vs self-play", "",
             f"{len(args.seeds)} seeds, {g} generations, {args.steps:,} env steps per best response ({args.algo}), "
             f"{args.throws} throws per episode, {args.episodes} episodes per match; union pool of "
             f"{summary['pool_players']} players ({summary['pool_wall_s']:.0f} s of matches).", "",
             "NashConv in the union pool of the meta-strategy after each generation (mean ± 95% t-interval):", "",
             "| method | " + " | ".join(f"gen {i}" for i in range(g + 1)) + " |",
             "|---|" + "---:|" * (g + 1)]
    for m, label in METHODS.items():
        if m in summary["methods"]:
            lines.append(f"| {label} | " + " | ".join(f"{a:.1f} ± {b:.1f}" for a, b in summary["methods"][m]["pool"])
                         + " |")
    lines += ["", "NashConv of the mixture each response was trained against, in the league's own population "
              "(the response's measured gain):", "",
              "| method | " + " | ".join(f"gen {i}" for i in range(1, g + 1)) + " |", "|---|" + "---:|" * g]
    for m, label in METHODS.items():
        if m in summary["methods"]:
            lines.append(f"| {label} | " + " | ".join(f"{a:.1f} ± {b:.1f}" for a, b in
                                                     summary["methods"][m]["within"]) + " |")
    lines += ["", "![NashConv](nash_conv.png)", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
