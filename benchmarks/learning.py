"""Learning benchmark: MAPPO and IPPO on ``mpe/simple_spread`` (N=3, max_cycles=25, discrete actions).

Each (algo, seed) is an ordinary training run, ``python -m marl.cli train ...`` in a subprocess, up to
``--parallel`` at once, in ``OUT/<algo>-s<seed>``. A run whose ``summary.json`` exists is skipped and
one with a checkpoint but no summary is resumed, so the benchmark can be stopped and restarted.
Measures each run's final greedy return (mean over agents, ``eval_episodes`` episodes), its
normalised score (0 = random, 1 = hand-coded heuristic; see ``spread_heuristic.py``) and its wall
time, and plots greedy-eval return against env steps for every run.

    .venv/bin/python benchmarks/learning.py [--algos mappo,ippo] [--seeds 0,1,2] [--total-steps 1000000]
                                            [--parallel 2] [--out runs/bench-learning]
                                            [--backend pettingzoo|batched] [--set KEY=VALUE ...]
                                            [--name NAME]

``--backend batched`` trains on the batched simulator (same task, same episodes per seed) and writes
``results/learning_batched.*`` instead of ``results/learning.*``. ``--set`` adds training options
(e.g. ``--set threads=2 --set compile=true``); ``--name`` then keeps those results apart
(``results/learning_<name>.*``, runs in ``runs/bench-learning-<name>``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import run_parallel  # noqa: E402
from benchmarks.spread_heuristic import HEURISTIC_RETURN, RANDOM_RETURN, normalised_score  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLORS = {"mappo": "tab:blue", "ippo": "tab:orange"}
MIN_SCORE, GOAL_SCORE, MAX_MINUTES = 0.7, 0.8, 10.0


def train_args(algo: str, seed: int, total: int, eval_episodes: int, backend: str = "pettingzoo",
               extra: list[str] = ()) -> list[str]:
    return [
        "scenario=mpe/simple_spread", f"algo={algo}", f"seed={seed}", f"total_steps={total}",
        "n_agents=3", "max_cycles=25", "continuous_actions=false",
        f"eval_every={max(total // 10, 1)}", f"eval_episodes={eval_episodes}", f"backend={backend}", *extra,
    ]


def eval_curve(run_dir: Path) -> tuple[list[float], list[float]]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return [], []
    with open(path, newline="") as f:
        pts = [(float(r["env_steps"]), float(r["eval_return_mean"])) for r in csv.DictReader(f)
               if r.get("eval_return_mean") not in (None, "")]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for row in rows:
        x, y = eval_curve(Path(row["run_dir"]))
        if x:
            ax.plot(x, y, "o-", ms=3, lw=1.3, color=COLORS.get(row["algo"], "tab:gray"), alpha=0.85,
                    label=f"{row['algo'].upper()} seed {row['seed']}")
    ax.axhline(HEURISTIC_RETURN, ls="--", lw=1, color="tab:green", label=f"heuristic ({HEURISTIC_RETURN})")
    ax.axhline(RANDOM_RETURN, ls="--", lw=1, color="tab:red", label=f"random ({RANDOM_RETURN})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy eval return (mean over agents)")
    ax.set_title("simple_spread N=3: MAPPO vs IPPO")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", default="mappo,ippo")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--parallel", type=int, default=2, help="runs at once")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--out", default=None, help="default runs/bench-learning (runs/bench-learning-batched)")
    p.add_argument("--backend", default="pettingzoo", choices=["pettingzoo", "batched"],
                   help="env backend of the training runs (evaluation always uses the mpe2 envs)")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="another training option for every run (repeatable)")
    p.add_argument("--name", default=None, help="results/learning_<name>.* (default: the backend's name)")
    args = p.parse_args(argv)
    suffix = f"_{args.name}" if args.name else ("" if args.backend == "pettingzoo" else f"_{args.backend}")
    args.out = args.out or ("runs/bench-learning" + suffix.replace("_", "-"))
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out).resolve()
    jobs = [(a, s, out / f"{a}-s{s}") for a in algos for s in seeds]
    codes = run_parallel([(d, train_args(a, s, args.total_steps, args.eval_episodes, args.backend, args.extra))
                          for a, s, d in jobs], max(args.parallel, 1))

    rows = []
    for algo, seed, d in jobs:
        row = {"algo": algo, "seed": seed, "run_dir": str(d), "exit_code": codes.get(d)}
        if (d / "summary.json").is_file():
            s = json.loads((d / "summary.json").read_text())
            ret = s["final_eval"]["return_mean"]
            row.update(final_return=ret, score=normalised_score(ret), wall_min=s["wall_time_s"] / 60,
                       steps_per_s=s["steps_per_s"], env_steps=s["env_steps"])
        rows.append(row)

    options = f", {' '.join(args.extra)}" if args.extra else ""
    lines = [f"## Learning on mpe/simple_spread (N=3, {args.backend} envs{options}), {args.total_steps:,} env steps "
             f"per run, {args.eval_episodes} greedy eval episodes", "",
             "| algo | seed | final greedy return | normalised score | wall time (min) | steps/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "score" in r:
            lines.append(f"| {r['algo']} | {r['seed']} | {r['final_return']:.2f} | {r['score']:.3f} | "
                         f"{r['wall_min']:.1f} | {r['steps_per_s']:.0f} |")
        else:
            lines.append(f"| {r['algo']} | {r['seed']} | failed (exit {r['exit_code']}, see train.log) | - | - | - |")
    lines += ["", "| algo | runs | return mean ± std | score mean ± std | min score | max wall (min) |",
              "|---|---:|---:|---:|---:|---:|"]
    summary = {}
    for algo in algos:
        ok = [r for r in rows if r["algo"] == algo and "score" in r]
        if not ok:
            continue
        std = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        rets, scores = [r["final_return"] for r in ok], [r["score"] for r in ok]
        summary[algo] = {"runs": len(ok), "return_mean": statistics.mean(rets), "return_std": std(rets),
                         "score_mean": statistics.mean(scores), "score_std": std(scores), "score_min": min(scores),
                         "wall_min_max": max(r["wall_min"] for r in ok)}
        a = summary[algo]
        lines.append(f"| {algo} | {a['runs']} | {a['return_mean']:.2f} ± {a['return_std']:.2f} | "
                     f"{a['score_mean']:.3f} ± {a['score_std']:.3f} | {a['score_min']:.3f} | {a['wall_min_max']:.1f} |")

    mappo = [r for r in rows if r["algo"] == "mappo"]
    if mappo:
        passed = all("score" in r and r["score"] >= MIN_SCORE and r["wall_min"] < MAX_MINUTES for r in mappo)
        goal = all("score" in r and r["score"] >= GOAL_SCORE for r in mappo)
        verdict = "PASS" if passed else "FAIL"
        detail = f"; goal {'met' if goal else 'not met'}"
    else:
        verdict, detail = "not measured (mappo not in --algos)", ""
    lines += ["", f"target: MAPPO ≥ {MIN_SCORE} on every seed (goal ≥ {GOAL_SCORE}), < {MAX_MINUTES:.0f} min per run: "
              f"{verdict}{detail}",
              f"score = (R - ({RANDOM_RETURN})) / (({HEURISTIC_RETURN}) - ({RANDOM_RETURN})); "
              f"wall time: summary.json wall_time_s (training loop incl. periodic evals, not the final eval), "
              f"{args.parallel} runs at once"]
    text = "\n".join(lines)
    print(text)

    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(rows, RESULTS / f"learning{suffix}.png")
    result = {"scenario": "mpe/simple_spread", "backend": args.backend, "options": args.extra, "n_agents": 3,
              "max_cycles": 25, "total_steps": args.total_steps,
              "eval_episodes": args.eval_episodes, "parallel": args.parallel, "out": str(out), "runs": rows,
              "per_algo": summary, "target": {"min_score": MIN_SCORE, "goal_score": GOAL_SCORE,
                                              "max_minutes": MAX_MINUTES, "verdict": verdict},
              "references": {"random_return": RANDOM_RETURN, "heuristic_return": HEURISTIC_RETURN}}
    (RESULTS / f"learning{suffix}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"learning{suffix}.md").write_text(text + "\n")
    print(f"\nplot: {RESULTS / f'learning{suffix}.png'}")
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
