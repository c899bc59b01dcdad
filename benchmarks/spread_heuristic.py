"""A decentralized hand-coded reference player for ``mpe/simple_spread`` and the normalised score.

Measures the mean-over-agents episode return (the definition of ``marl/evaluation.py``) of

* the heuristic: every agent, from its own observation only, solves the agent<->landmark assignment
  (minimum total distance over all permutations) and steers to its landmark with a damped controller;
* the uniformly random policy (``marl.evaluation.evaluate(scenario, None, ...)``);

and prints them with the normalised score ``(R - R_random) / (R_heuristic - R_random)`` computed from
the fixed references ``RANDOM_RETURN`` and ``HEURISTIC_RETURN`` (N=3, max_cycles=25).

    .venv/bin/python benchmarks/spread_heuristic.py [--episodes 200] [--seed 0] [--n-agents 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scenarios  # noqa: E402
from envs import VectorEnv  # noqa: E402
from marl.evaluation import EVAL_SEED_OFFSET, EvalResult, evaluate  # noqa: E402

SCENARIO = "mpe/simple_spread"
RESULTS = Path(__file__).resolve().parent / "results"

# Fixed references (N=3, max_cycles=25, mean over agents of each agent's episode return).
RANDOM_RETURN = -26.98
HEURISTIC_RETURN = -9.15

# Controller gains: desired acceleration = K_POS * (target - pos) - K_VEL * vel (grid-tuned on eval seed 7).
K_POS = 12.0
K_VEL = 3.0
# Discrete moves of mpe2: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (unit force directions).
MOVES = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def normalised_score(ret: float) -> float:
    """0 = uniformly random, 1 = the hand-coded heuristic (fixed references above)."""
    return (ret - RANDOM_RETURN) / (HEURISTIC_RETURN - RANDOM_RETURN)


@lru_cache(maxsize=None)
def permutation_table(n: int) -> torch.Tensor:
    """[n!, n] long: row p assigns agent a to landmark table[p, a]."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)


def heuristic_actions(obs: torch.Tensor, k_pos: float = K_POS, k_vel: float = K_VEL) -> torch.Tensor:
    """Actions [E, N] (long) from observations [E, N, O]; each agent uses its own row only.

    Observation of one agent (mpe2 simple_spread, full observability):
    ``[self_vel(2), self_pos(2), landmark_rel(2N), other_agents_rel(2(N-1)), comm(2(N-1)), (agent id)]``.
    """
    E, N, _ = obs.shape
    o = obs.reshape(E * N, -1).float()
    vel = o[:, 0:2]
    landmarks = o[:, 4 : 4 + 2 * N].reshape(-1, N, 2)  # relative to self
    others = o[:, 4 + 2 * N : 4 + 2 * N + 2 * (N - 1)].reshape(-1, N - 1, 2)
    agents = torch.cat([torch.zeros_like(others[:, :1]), others], dim=1)  # self is local agent 0
    cost = torch.cdist(agents, landmarks)  # [B, agent, landmark]
    perms = permutation_table(N).to(obs.device)  # [P, N]
    # total[b, p] = sum_a cost[b, a, perms[p, a]]
    total = cost[:, torch.arange(N, device=obs.device)[None, :], perms].sum(-1)  # [B, P]
    mine = perms[total.argmin(dim=1), 0]  # landmark of local agent 0 (= self)
    target = landmarks[torch.arange(E * N, device=obs.device), mine]  # [B, 2]
    desired = k_pos * target - k_vel * vel
    # the move whose force is closest to the desired acceleration (no-op when it is small)
    moves = MOVES.to(obs.device)
    action = torch.cdist(desired[:, None, :], moves[None].expand(E * N, -1, -1)).squeeze(1).argmin(dim=1)
    return action.view(E, N)


@torch.no_grad()
def evaluate_heuristic(episodes: int = 200, seed: int = 0, n_agents: int = 3, num_envs: int = 8,
                       k_pos: float = K_POS, k_vel: float = K_VEL) -> EvalResult:
    """Whole episodes of the heuristic through VectorEnv, seeded as ``marl.evaluation.evaluate``."""
    scenario = scenarios.make(SCENARIO, n_agents=n_agents)
    env = VectorEnv(scenario, num_envs=min(num_envs, episodes), seed=seed + EVAL_SEED_OFFSET)
    out = env.reset()
    returns, lengths = [], []
    try:
        while len(returns) < episodes:
            out = env.step(heuristic_actions(out.obs, k_pos, k_vel))
            for k in torch.nonzero(out.done_env).flatten().tolist():
                returns.append(out.episode_return[k].numpy())
                lengths.append(int(out.episode_length[k]))
    finally:
        env.close()
    agent_returns = np.stack(returns[:episodes])
    return EvalResult(agent_returns.mean(axis=1), agent_returns, np.array(lengths[:episodes]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-agents", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    heur = evaluate_heuristic(args.episodes, args.seed, args.n_agents)
    rand = evaluate(scenarios.make(SCENARIO, n_agents=args.n_agents), None, args.episodes, seed=args.seed)
    wall = time.perf_counter() - t0
    rows = [("uniform random", rand), ("heuristic (assignment + damped controller)", heur)]
    sem = lambda r: r.std / np.sqrt(len(r.returns))  # noqa: E731
    lines = [
        f"## simple_spread reference players (N={args.n_agents}, {args.episodes} episodes, seed {args.seed})",
        "",
        "| policy | return mean | ± s.e. | return std | normalised score |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r.mean:.2f} | {sem(r):.2f} | {r.std:.2f} | {normalised_score(r.mean):.3f} |")
    lines += [
        "",
        f"score = (R - R_random) / (R_heuristic - R_random), fixed references R_random = {RANDOM_RETURN}, "
        f"R_heuristic = {HEURISTIC_RETURN} (N=3, max_cycles=25)",
    ]
    if args.n_agents != 3:
        lines.append("note: the fixed references are for N=3; the score column is not meaningful here")
    text = "\n".join(lines)
    print(text)

    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "scenario": SCENARIO, "n_agents": args.n_agents, "episodes": args.episodes, "seed": args.seed,
        "gains": {"k_pos": K_POS, "k_vel": K_VEL},
        "heuristic": {**heur.as_dict(), "score": normalised_score(heur.mean)},
        "random": {**rand.as_dict(), "score": normalised_score(rand.mean)},
        "references": {"random_return": RANDOM_RETURN, "heuristic_return": HEURISTIC_RETURN},
        "return_definition": "mean over agents of each agent's episode return",
        "wall_time_s": wall,
    }
    (RESULTS / "spread_heuristic.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "spread_heuristic.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
