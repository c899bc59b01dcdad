"""Does communication help where the literature says it must? MAPPO with each communication method on
the tasks built for it, several seeds, success rate and return with 95% confidence intervals.

Tasks (``--tasks``): ``tj`` Traffic Junction medium (10 cars, vision 0), ``pp`` Predator-Prey medium
(5 predators, vision 1), ``hg`` hidden-goal navigation at N=5, ``spread6`` mpe/simple_spread N=6.
Methods (``--methods``): ``none``, ``commnet``, ``ic3net``, ``tarmac``, ``dgn`` and ``commformer``
(``comm.method=...``), ``knn_gat`` and ``radius_gat`` (a scene graph with GAT messages), and
``complete_tf`` (commformer's messages over the complete graph: what learning a sparse graph saves).

Each (task, method, seed) is an ordinary ``marl train`` run in ``OUT/<task>-<method>-s<seed>``, up to
``--parallel`` at once; finished runs are skipped, so the script can be stopped and restarted. A run's
final greedy evaluation (``summary.json``, ``--eval-episodes`` episodes) gives its success and return;
``metrics.csv`` gives the messages delivered per step and the floats received per agent per step over
its last quarter. Then the zero-shot rows: Traffic Junction policies trained on medium evaluated on
hard, hidden-goal policies trained at N=5 evaluated at N=10 (a learned graph cannot change N and is
left out). Writes ``benchmarks/results/comm_learning.md`` and ``.json`` and a bar chart per task.

    .venv/bin/python benchmarks/comm_learning.py [--tasks pp,tj,hg,spread6] [--methods none,commnet,...]
        [--seeds 0,1,2] [--steps pp=200000,tj=200000] [--parallel 2] [--out runs/bench-comm-tasks]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._runs import mean_ci95, run_parallel, summary  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# task -> (scenario arguments, steps, what success means, random and reference numbers for the table)
TASKS = {
    "tj": (["scenario=comm/traffic_junction", "difficulty=medium"], 200_000),
    "pp": (["scenario=comm/predator_prey", "difficulty=medium"], 200_000),
    "hg": (["scenario=comm/hidden_goal", "n_agents=5"], 200_000),
    "spread6": (["scenario=mpe/simple_spread", "n_agents=6"], 200_000),
}
TASK_TITLE = {"tj": "Traffic Junction medium (10 cars, vision 0)", "pp": "Predator-Prey medium (5, vision 1)",
              "hg": "hidden-goal navigation, N=5", "spread6": "mpe/simple_spread, N=6"}
# references measured with scripted policies (docs/scenarios.md, docs/results.md)
REFERENCES = {
    "tj": "random 0.0% success; always gas 3.7%; a scripted yield rule that sees every car 100%",
    "pp": "random 0.1% success; sweep without communication 41%; sweep sharing the first sighting 98%",
    "hg": "random 0.4% success, return -7.07; no communication (centre, keep apart) -4.89; oracle 2.02, 98.9%",
    "spread6": "random -39.09; assignment heuristic -15.10",
}
# scene-graph radii in each task's position units (grid cells for tj/pp, world units otherwise)
RADIUS = {"tj": 3.0, "pp": 3.0, "hg": 1.0, "spread6": 1.0}


def method_args(method: str, task: str) -> list[str]:
    if method == "knn_gat":
        return ["comm.graph=knn", "comm.k=3", "comm.layer=gat"]
    if method == "radius_gat":
        return ["comm.graph=radius", f"comm.radius={RADIUS[task]}", "comm.layer=gat"]
    if method == "complete_tf":  # commformer's messages over the complete graph: what learning the graph saves
        return ["comm.graph=complete", "comm.layer=transformer", "comm.heads=4", "comm.rounds=1",
                "comm.edge_features=false"]
    return [f"comm.method={method}"]


COMMON = ["backend=batched", "num_envs=32", "algo.epochs=5", "checkpoint_every=50000"]


def run_dir(out: Path, task: str, method: str, seed: int) -> Path:
    return out / f"{task}-{method}-s{seed}"


def last_quarter_mean(run: Path, column: str) -> float:
    path = run / "metrics.csv"
    if not path.is_file():
        return float("nan")
    with open(path, newline="") as f:
        values = [float(r[column]) for r in csv.DictReader(f) if r.get(column) not in (None, "")]
    values = [v for v in values if np.isfinite(v)]
    return statistics.fmean(values[-max(1, len(values) // 4):]) if values else 0.0


def fmt(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    values = [v * scale for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    mean, half = mean_ci95(values)
    return f"{mean:.{digits}f} ± {half:.{digits}f}" if np.isfinite(half) else f"{mean:.{digits}f}"


@torch.no_grad()
def zero_shot(run: Path, episodes: int, **scenario_args) -> dict:
    """Greedy success and return of a run's final policy on the same task with other options."""
    import marl

    policy = marl.load_policy(run)
    res = marl.evaluate(policy, episodes=episodes, seed=0, **scenario_args)
    return {"return": res.mean, "success": res.success_mean}


def bar_chart(rows: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "success" if any(np.isfinite(r["success"]).any() for r in rows) else "return"
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, r in enumerate(rows):
        vals = np.asarray(r[key], dtype=float)
        vals = vals[np.isfinite(vals)] * (100 if key == "success" else 1)
        if not len(vals):
            continue
        mean, half = mean_ci95(list(vals))
        ax.bar(i, mean, yerr=0 if not np.isfinite(half) else half, capsize=4, color="C0" if i else "C7")
        ax.scatter(np.full(len(vals), i), vals, color="k", s=8, zorder=3)
    ax.set_xticks(range(len(rows)), [r["method"] for r in rows], rotation=20)
    ax.set_ylabel("greedy success (%)" if key == "success" else "greedy return")
    ax.set_title(TASK_TITLE[task], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="pp,tj,hg,spread6")
    p.add_argument("--methods", default="none,commnet,ic3net,tarmac,dgn,knn_gat,radius_gat,commformer",
                   help="one list for every task, or per task: pp=none,tarmac;tj=none,commnet")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", default="", help="per-task env steps, e.g. pp=200000,tj=300000")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--out", default="runs/bench-comm-tasks")
    p.add_argument("--report-only", action="store_true", help="tabulate the runs that finished; train nothing")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    tasks = args.tasks.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    steps = {t: TASKS[t][1] for t in tasks} | {k: int(v) for k, v in
                                              (kv.split("=") for kv in args.steps.split(",") if kv)}
    if "=" in args.methods:
        per_task = dict(part.split("=", 1) for part in args.methods.split(";"))
        methods = {t: per_task.get(t, "none").split(",") for t in tasks}
    else:
        methods = {t: args.methods.split(",") for t in tasks}

    jobs = [(run_dir(out, t, m, s), [*TASKS[t][0], *COMMON, *method_args(m, t), f"seed={s}",
                                     f"total_steps={steps[t]}", f"eval_episodes={args.eval_episodes}"])
            for s in seeds for t in tasks for m in methods[t]]  # seed-major: every cell gets seed 0 first
    if not args.report_only:
        run_parallel(jobs, args.parallel)

    lines = [f"MAPPO (feed-forward actor, {COMMON}), each method's messages after a 2-layer encoder; "
             f"seeds {args.seeds}; greedy evaluation over {args.eval_episodes} episodes at the end of training; "
             "mean ± 95% CI (Student t) over seeds. Messages and floats: per env step and per agent per step, "
             "over the last quarter of training.", ""]
    results: dict = {"tasks": {}, "zero_shot": {}}
    for t in tasks:
        rows = []
        for m in methods[t]:
            runs = [run_dir(out, t, m, s) for s in seeds]
            done = [(d, summary(d)) for d in runs if summary(d) is not None]
            if not done:
                continue
            evals = [s["final_eval"] for _, s in done]
            rows.append({"method": m, "seeds": len(done),
                         "success": [e.get("success_mean", float("nan")) for e in evals],
                         "return": [e["return_mean"] for e in evals],
                         "messages": [last_quarter_mean(d, "messages_per_step") for d, _ in done],
                         "floats": [last_quarter_mean(d, "message_floats_per_agent_step") for d, _ in done],
                         "wall_min": [s["wall_time_s"] / 60 for _, s in done]})
        if not rows:
            continue
        results["tasks"][t] = rows
        lines += [f"### {TASK_TITLE[t]}, {steps[t]:,} env steps", "", f"References: {REFERENCES[t]}.", "",
                  "| method | seeds | success (%) | return | messages / step | floats / agent / step | "
                  "wall (min) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['method']} | {r['seeds']} | {fmt(r['success'], 1, 100)} | {fmt(r['return'])} | "
                         f"{fmt(r['messages'], 0)} | {fmt(r['floats'], 0)} | {statistics.fmean(r['wall_min']):.1f} |")
        lines.append("")
        RESULTS.mkdir(exist_ok=True)
        bar_chart(rows, t, RESULTS / f"comm_learning_{t}.png")
        lines += [f"![{TASK_TITLE[t]}](../benchmarks/results/comm_learning_{t}.png)", ""]

    transfers = [("tj", {"difficulty": "hard"}, "Traffic Junction: trained on medium, evaluated on hard"),
                 ("hg", {"n_agents": 10}, "hidden goal: trained at N=5, evaluated at N=10")]
    for t, extra, title in transfers:
        if t not in results["tasks"]:
            continue
        lines += [f"### Zero-shot: {title}", "", "| method | success (%) | return |", "|---|---:|---:|"]
        for r in results["tasks"][t]:
            if r["method"] == "commformer":
                continue
            evals = [zero_shot(run_dir(out, t, r["method"], s), args.eval_episodes, **extra) for s in seeds
                     if summary(run_dir(out, t, r["method"], s)) is not None]
            results["zero_shot"].setdefault(t, []).append({"method": r["method"], **extra, "evals": evals})
            lines.append(f"| {r['method']} | {fmt([e['success'] for e in evals], 1, 100)} | "
                         f"{fmt([e['return'] for e in evals])} |")
        lines.append("")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "comm_learning.md").write_text(table + "\n")
    (RESULTS / "comm_learning.json").write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
