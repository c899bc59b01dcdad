"""Batched mpe2 ``simple_spread_v3``: N agents cover N landmarks without colliding.

Agent i observes ``[v_i, p_i, landmark_l - p_i for every l, p_j - p_i for j != i, c_j for j != i]``
(6N floats; the agents are silent, so the utterances are zeros). Reward of agent i:
``(1 - local_ratio) * (-sum over landmarks of the closest agent's distance)
+ local_ratio * (-number of other agents it overlaps)``. Agents (radius 0.15) push each other
apart; landmarks do not collide.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.base import off_diagonal
from envs.batched.mpe import MPESim, pair_distances, uniform_points

AGENT_SIZE = 0.15


class SimpleSpreadSim(MPESim):
    name = "mpe/simple_spread"

    def __init__(self, num_envs: int, n_agents: int = 3, local_ratio: float = 0.5, max_cycles: int = 25,
                 continuous_actions: bool = False, device="cpu", dtype=torch.float64):
        if n_agents < 2:
            raise ValueError(f"simple_spread needs n_agents >= 2 (got {n_agents})")
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio must be in [0, 1] (got {local_ratio})")
        n = int(n_agents)
        super().__init__(
            num_envs, agents=[f"agent_{i}" for i in range(n)], n_landmarks=n, dim_c=2,
            agent_size=[AGENT_SIZE] * n, landmark_size=[0.05] * n, agent_collide=[True] * n,
            landmark_collide=[False] * n, movable=[True] * n, silent=[True] * n, accel=[None] * n,
            max_speed=[None] * n, obs_dims=[6 * n] * n, max_cycles=max_cycles,
            continuous_actions=continuous_actions, device=device, dtype=dtype,
        )
        self.local_ratio = float(local_ratio)
        self._not_me = ~torch.eye(n, dtype=torch.bool, device=self.device)

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = self.n_agents
        pos = uniform_points(rng, n)  # agents first, then landmarks, as mpe2 draws them
        return {"pos": pos, "vel": np.zeros((n, 2)), "comm": np.zeros((n, self.dim_c)),
                "landmarks": uniform_points(rng, n)}

    def _rewards(self) -> torch.Tensor:
        nearest = pair_distances(self.pos, self.landmarks).min(dim=1).values  # [E, L]: closest agent
        global_reward = -nearest.sum(-1, keepdim=True)  # [E, 1]
        overlap = (pair_distances(self.pos, self.pos) < 2 * AGENT_SIZE) & self._not_me
        local = -overlap.sum(-1).to(self.dtype)  # [E, N]
        return global_reward * (1 - self.local_ratio) + local * self.local_ratio

    def observations(self) -> torch.Tensor:
        e, n = self.num_envs, self.n_agents
        # written piece by piece into one float32 buffer: no float64 concatenation of [E, N, 6N]
        obs = torch.zeros(e, n, 6 * n, dtype=torch.float32, device=self.device)
        obs[..., 0:2] = self.vel
        obs[..., 2:4] = self.pos
        obs[..., 4 : 4 + 2 * n] = self.landmark_offsets().reshape(e, n, 2 * n)
        others = off_diagonal(self.agent_offsets())
        obs[..., 4 + 2 * n : 6 * n - 2 * (n - 1)] = others.reshape(e, n, 2 * (n - 1))
        # the agents are silent: their utterances (the last 2 (N-1) entries) stay zero
        return obs

def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(SimpleSpreadSim, **options)
