"""Env steps per second of the communication tasks (``comm/``): the PettingZoo backend (E envs stepped
in a loop) against the batched simulator, random actions, the whole vector-env adapter (auto-reset,
EnvOutput) included. One env step = one step of one env (all agents). Median of ``--repeats``
interleaved measurements, single-threaded torch.

    .venv/bin/python benchmarks/comm_tasks_throughput.py [--envs 16,256] [--repeats 3] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from envs.factory import make_vector_env  # noqa: E402

CASES = [
    ("comm/traffic_junction", {"difficulty": "easy"}), ("comm/traffic_junction", {"difficulty": "medium"}),
    ("comm/traffic_junction", {"difficulty": "hard"}), ("comm/traffic_junction", {"difficulty": "medium", "vision": 1}),
    ("comm/predator_prey", {"difficulty": "easy"}), ("comm/predator_prey", {"difficulty": "medium"}),
    ("comm/predator_prey", {"difficulty": "hard"}),
    ("comm/hidden_goal", {"n_agents": 5}), ("comm/hidden_goal", {"n_agents": 10}),
]
RESULTS = Path(__file__).resolve().parent / "results"


def rate(env, seconds: float) -> float:
    """Env steps per second over about ``seconds`` of random steps (actions drawn beforehand)."""
    gen = torch.Generator().manual_seed(0)
    actions = [env.random_actions(gen) for _ in range(64)]
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(actions[steps % len(actions)])
        steps += 1
    return steps * env.num_envs / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", default="16,256")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    envs = [int(e) for e in args.envs.split(",")]
    measured: dict = {}
    for _ in range(args.repeats):
        for name, options in CASES:
            sc = scenarios.make(name, **options)
            for backend in ("pettingzoo", "batched"):
                for E in envs:
                    if backend == "pettingzoo" and E > 16:  # a Python loop over envs: E does not change its rate
                        continue
                    env = make_vector_env(sc, E, seed=0, backend=backend)
                    measured.setdefault((name, str(options), backend, E), []).append(rate(env, args.seconds))
                    env.close()
    lines = ["| scenario | options | N | backend | E | env steps/s |", "|---|---|---:|---|---:|---:|"]
    for name, options in CASES:
        n = scenarios.make(name, **options).n_agents
        for (nm, opts, backend, E), values in measured.items():
            if nm == name and opts == str(options):
                lines.append(f"| {name} | {options} | {n} | {backend} | {E} | {statistics.median(values):,.0f} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "comm_tasks_throughput.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
