"""What a simple_spread return is made of, for scripted players and trained policies: the per-step sum
over landmarks of the distance to the closest agent (the shared term), collisions per agent and
episode (the local term) and the return, normalised against the fixed references of
``benchmarks/time_to_score.py``. It tells a policy that covers no landmarks from one that collides.

Scripted players (each from its own observation, steered by spread_heuristic's damped controller):
``nearest`` (its nearest landmark, no coordination), ``fixed`` (agent i to landmark i: needs the
agent's index, which the observation does not hold; an upper reference for an id-conditioned
convention), ``heuristic`` (the min-cost assignment of spread_heuristic.py).

    .venv/bin/python benchmarks/spread_scaling.py --n 3,4,6 [--runs RUN_DIR ...] [--episodes 200]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from spread_heuristic import K_POS, K_VEL, MOVES, heuristic_actions  # noqa: E402
from time_to_score import REFERENCE, normalised  # noqa: E402

import scenarios  # noqa: E402
from envs.batched.mpe import pair_distances  # noqa: E402
from envs.factory import make_vector_env  # noqa: E402

SCRIPTED = ("nearest", "fixed", "heuristic")
AGENT_SIZE = 0.15  # mpe2 simple_spread's agents: two collide closer than 2 * size


def scripted_actions(kind: str, obs: torch.Tensor) -> torch.Tensor:
    if kind == "heuristic":
        return heuristic_actions(obs)
    E, N, _ = obs.shape
    o = obs.reshape(E * N, -1)
    vel, landmarks = o[:, :2], o[:, 4 : 4 + 2 * N].reshape(-1, N, 2)
    pick = torch.arange(N).repeat(E) if kind == "fixed" else landmarks.norm(dim=-1).argmin(-1)
    desired = K_POS * landmarks[torch.arange(E * N), pick] - K_VEL * vel
    return torch.cdist(desired[:, None], MOVES[None].expand(E * N, -1, -1)).squeeze(1).argmin(1).view(E, N)


@torch.no_grad()
def decompose(n: int, act, episodes: int, seed: int) -> dict:
    """Whole episodes of ``act(obs) -> actions`` on the batched env, all envs in step."""
    env = make_vector_env(scenarios.make("mpe/simple_spread", n_agents=n), episodes, seed=seed, backend="batched")
    out, sim = env.reset(), env.sim
    coverage, collisions = 0.0, torch.zeros(episodes)
    for t in range(sim.max_cycles):
        out = env.step(act(out.obs))
        if t < sim.max_cycles - 1:  # the last step's state was reset away already: read the others
            coverage += float(pair_distances(sim.pos, sim.landmarks).min(1).values.sum(-1).mean())
        close = (pair_distances(sim.pos, sim.pos) < 2 * AGENT_SIZE) & ~torch.eye(n, dtype=torch.bool)
        collisions += close.sum((-1, -2)).float() / n
    ret = float(out.episode_return.mean())
    return {"distance_sum": coverage / (sim.max_cycles - 1), "collisions": float(collisions.mean()), "return": ret,
            "normalised": normalised(ret, n) if n in REFERENCE else float("nan")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", default="3,4,6")
    p.add_argument("--runs", nargs="*", default=[], help="trained run folders (greedy actions; their own N)")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=123)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in [int(x) for x in args.n.split(",") if x]:
        for kind in SCRIPTED:
            rows.append((kind, n, decompose(n, lambda obs, k=kind: scripted_actions(k, obs), args.episodes, args.seed)))
    for run in args.runs:
        from marl.policy import load_policy

        policy = load_policy(run)
        n = policy.env.n_agents
        greedy = lambda obs, a=policy.actor: a.act(obs, {}, deterministic=True)[0]  # noqa: E731
        rows.append((Path(run).name, n, decompose(n, greedy, args.episodes, args.seed)))
    print("| policy | N | distance sum per step | collisions per agent and episode | return | normalised |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name, n, r in rows:
        print(f"| {name} | {n} | {r['distance_sum']:.2f} | {r['collisions']:.2f} | {r['return']:.2f} | "
              f"{r['normalised']:.2f} |")
    print(f"\n{args.episodes} episodes per row, batched backend, seed {args.seed}; normalised against the fixed "
          "references of benchmarks/time_to_score.py")


if __name__ == "__main__":
    main()
