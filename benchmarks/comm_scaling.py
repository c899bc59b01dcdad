"""How the communicating actor's forward cost grows with the number of agents.

For N = 3, 10, 30, 100 agents (E = 16 envs, nav/navigation observations, random positions in the
scenario's arena) and the graphs ``knn`` (k=4) and ``complete``, times one actor forward pass per env
step (graph construction + message passing + head, no gradient) and prints it next to the number of
edges: the cost should grow with the edges, not faster.

    .venv/bin/python benchmarks/comm_scaling.py [--agents 3,10,30,100] [--envs 16] [--layer gat] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from envs import VectorEnv  # noqa: E402
from marl.algos import EnvInfo, make_algorithm  # noqa: E402
from marl.communication import CommInputs  # noqa: E402
from marl.config import build_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


@torch.no_grad()
def time_forward(n_agents: int, graph: str, envs: int, layer: str, rounds: int, repeats: int) -> dict:
    cfg = build_config({"scenario": "nav/navigation", "n_agents": n_agents,
                        "comm": {"graph": graph, "k": 4, "layer": layer, "rounds": rounds}})
    sc = scenarios.make("nav/navigation", n_agents=n_agents)
    env = VectorEnv(sc, envs, seed=0)
    out = env.reset()  # real observations and positions of E fresh episodes
    info = EnvInfo.from_env(env, cfg.scenario)
    env.close()
    actor = make_algorithm(cfg, info).actor.eval()
    inputs = CommInputs(out.positions, out.alive)
    for _ in range(3):
        actor(out.obs, None, inputs)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        _, _, aux = actor(out.obs, None, inputs)
        times.append(time.perf_counter() - t)
    edges = aux.edges.num_edges
    return {"n_agents": n_agents, "graph": graph, "edges": edges, "ms": 1e3 * statistics.median(times)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", default="3,10,30,100")
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--layer", default="gat")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [time_forward(n, g, args.envs, args.layer, args.rounds, args.repeats)
            for g in ("knn", "complete") for n in map(int, args.agents.split(","))]
    lines = [f"Actor forward per env step, E={args.envs}, {args.layer} x {args.rounds} rounds (median of "
             f"{args.repeats}; one thread)", "",
             "| graph | N | edges (all envs) | forward ms | µs per edge | ms per agent |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        per_edge = 1e3 * r["ms"] / r["edges"] if r["edges"] else float("nan")
        lines.append(f"| {r['graph']} | {r['n_agents']} | {r['edges']:,} | {r['ms']:.2f} | {per_edge:.2f} | "
                     f"{r['ms'] / (r['n_agents'] * args.envs):.4f} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "comm_scaling.md").write_text(table + "\n")
    (RESULTS / "comm_scaling.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
