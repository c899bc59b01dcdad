"""Does communication help? MAPPO with graphs none / complete / radius / learned, several seeds.

Each (scenario, graph, seed) is an ordinary training run (``python -m marl.cli train``) in
``OUT/<scenario>-<graph>-s<seed>``, up to ``--parallel`` at once; finished runs are skipped, so the
script can be stopped and restarted. Then every run's final policy is evaluated greedily (return, and
on nav/navigation the fraction of agents on their goal at the end of an episode), and the policies
trained at N=3 on nav/navigation are evaluated zero-shot at N=6 and N=10 (the observation size does
not depend on N; a learned adjacency cannot transfer, so ``learned`` is skipped there).

    .venv/bin/python benchmarks/comm_navigation.py [--scenarios nav/navigation,mpe/simple_spread]
        [--graphs none,complete,radius,learned] [--seeds 0,1,2] [--total-steps 300000] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from benchmarks._runs import run_parallel  # noqa: E402
from envs import VectorEnv  # noqa: E402
from marl.evaluation import EVAL_SEED_OFFSET, comm_inputs, eval_mode  # noqa: E402
from marl.policy import load_policy  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GRAPH_ARGS = {"none": [], "complete": ["comm.graph=complete"], "radius": ["comm.graph=radius", "comm.radius=1.0"],
              "learned": ["comm.graph=learned", "comm.sparsity=0.4"]}


def run_dir(out: Path, scenario: str, graph: str, seed: int) -> Path:
    return out / f"{scenario.replace('/', '-')}-{graph}-s{seed}"


@torch.no_grad()
def evaluate_run(d: Path, episodes: int, n_agents: int | None = None) -> dict:
    """Greedy return and (on navigation) success of a run's final policy, optionally at another N."""
    policy = load_policy(d)  # the run's latest checkpoint
    overrides = dict(policy.scenario_args, **({"n_agents": n_agents} if n_agents else {}))
    sc = scenarios.make(policy.scenario, **overrides)
    env = VectorEnv(sc, 10, seed=EVAL_SEED_OFFSET)
    # rebuilt for another N; not for the same one: Layout's == raises on its array fields
    same = env.layout.agents == policy.env.layout.agents
    actor = policy.actor if same else policy.for_layout(env.layout).actor
    returns, success = [], []
    out = env.reset()
    carry = actor.initial_carry(out.alive.shape)
    with eval_mode(actor):
        while len(returns) < episodes:
            action, _, carry, _ = actor.act(out.obs, carry, deterministic=True, inputs=comm_inputs(out))
            out = env.step(action)
            carry = actor.reset_carry(carry, out.done_env)
            for k in torch.nonzero(out.done_env).flatten().tolist():
                returns.append(float(out.episode_return[k].mean()))
                raw = env.raw_env(k)
                if hasattr(raw, "last_success_rate"):
                    success.append(float(raw.last_success_rate))
    env.close()
    return {"return": float(np.mean(returns[:episodes])),
            "success": float(np.mean(success[:episodes])) if success else float("nan")}


def mean_ci(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"{xs[0]:.2f}" if xs else "-"
    m, s = statistics.mean(xs), statistics.stdev(xs)
    return f"{m:.2f} ± {1.96 * s / len(xs) ** 0.5:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default="nav/navigation")
    p.add_argument("--graphs", default="none,complete,radius,learned")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--total-steps", type=int, default=300_000)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--out", default="runs/bench-comm")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    jobs = [(s, g, seed, run_dir(out, s, g, seed)) for s in args.scenarios.split(",")
            for g in args.graphs.split(",") for seed in map(int, args.seeds.split(","))]
    run_parallel([(d, [f"scenario={s}", f"seed={seed}", f"total_steps={args.total_steps}", "eval_episodes=50",
                       "comm.layer=gat", *GRAPH_ARGS[g]]) for s, g, seed, d in jobs], args.parallel)

    lines = [f"MAPPO, {args.total_steps:,} env steps per run, seeds {args.seeds}; greedy evaluation over "
             f"{args.episodes} episodes; mean ± 95% CI over seeds", "",
             "| scenario | graph | return | success | wall time (min) |", "|---|---|---:|---:|---:|"]
    results = []
    for s in args.scenarios.split(","):
        for g in args.graphs.split(","):
            runs = [run_dir(out, s, g, seed) for seed in map(int, args.seeds.split(","))]
            evals = [evaluate_run(d, args.episodes) for d in runs]
            walls = [json.loads((d / "summary.json").read_text())["wall_time_s"] / 60 for d in runs]
            results.append({"scenario": s, "graph": g, "evals": evals, "wall_min": walls})
            succ = [e["success"] for e in evals if not np.isnan(e["success"])]
            lines.append(f"| {s} | {g} | {mean_ci([e['return'] for e in evals])} | "
                         f"{mean_ci(succ) if succ else '-'} | {statistics.mean(walls):.1f} |")
    if "nav/navigation" in args.scenarios:
        lines += ["", "Zero-shot transfer: trained at N=3 on nav/navigation, evaluated at larger N", "",
                  "| graph | N | return | success |", "|---|---:|---:|---:|"]
        for g in [g for g in args.graphs.split(",") if g != "learned"]:
            runs = [run_dir(out, "nav/navigation", g, seed) for seed in map(int, args.seeds.split(","))]
            for n in (3, 6, 10):
                evals = [evaluate_run(d, args.episodes, n_agents=n) for d in runs]
                results.append({"zero_shot": g, "n_agents": n, "evals": evals})
                lines.append(f"| {g} | {n} | {mean_ci([e['return'] for e in evals])} | "
                             f"{mean_ci([e['success'] for e in evals])} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    slug = "_".join(sc.split("/")[-1] for sc in args.scenarios.split(","))
    (RESULTS / f"comm_learning_{slug}.md").write_text(table + "\n")
    (RESULTS / f"comm_learning_{slug}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
