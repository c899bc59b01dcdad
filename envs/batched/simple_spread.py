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

from envs.batched.base import others_index
from envs.batched.mpe import MPESim, uniform_points

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
        self._others = others_index(n, self.device)

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = self.n_agents
        pos = uniform_points(rng, n)  # agents first, then landmarks, as mpe2 draws them
        return {"pos": pos, "vel": np.zeros((n, 2)), "comm": np.zeros((n, self.dim_c)),
                "landmarks": uniform_points(rng, n)}

    def _agent_distances(self) -> torch.Tensor:
        rel = self.agent_offsets()
        return torch.sqrt((rel * rel).sum(-1))  # [E, N, N]

    def _rewards(self) -> torch.Tensor:
        to_landmarks = self.landmark_offsets()  # [E, N, L, 2]
        nearest = torch.sqrt((to_landmarks * to_landmarks).sum(-1)).min(dim=1).values  # [E, L]
        global_reward = -nearest.sum(-1, keepdim=True)  # [E, 1]
        overlap = self._agent_distances() < 2 * AGENT_SIZE
        overlap.diagonal(dim1=1, dim2=2).fill_(False)
        local = -overlap.sum(-1).to(self.dtype)  # [E, N]
        return global_reward * (1 - self.local_ratio) + local * self.local_ratio

    def observations(self) -> torch.Tensor:
        e, n = self.num_envs, self.n_agents
        landmarks = self.landmark_offsets().reshape(e, n, -1)
        others = self.agent_offsets()[:, torch.arange(n, device=self.device)[:, None], self._others]  # [E, N, N-1, 2]
        words = self.comm[:, self._others]  # [E, N, N-1, dim_c]
        obs = torch.cat([self.vel, self.pos, landmarks, others.reshape(e, n, -1), words.reshape(e, n, -1)], dim=-1)
        return obs.float()


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(SimpleSpreadSim, **options)
