"""Batched mpe2 ``simple_tag_v3``: adversaries (predators) chase faster good agents (prey) around
fixed obstacles.

Agents are ordered ``adversary_0..A-1, agent_0..G-1``. Agent i observes ``[v_i, p_i, obstacle_l -
p_i for every l, p_j - p_i for j != i, v_j for every good j != i]``, so adversaries see one velocity
more than prey (padded onto one layout by the adapter). Rewards: each adversary gets +10 for every
(prey, adversary) pair in contact; each prey gets -10 per adversary touching it and a penalty for
leaving the arena, per coordinate ``0`` below 0.9, ``10 (x - 0.9)`` up to 1, then
``min(exp(2x - 2), 10)``. Everything collides: agents with each other and with the obstacles.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.base import others_index
from envs.batched.mpe import MPESim, uniform_points

ADVERSARY = {"size": 0.075, "accel": 3.0, "max_speed": 1.0}
PREY = {"size": 0.05, "accel": 4.0, "max_speed": 1.3}
OBSTACLE_SIZE = 0.2


class SimpleTagSim(MPESim):
    name = "mpe/simple_tag"

    def __init__(self, num_envs: int, num_good: int = 1, num_adversaries: int = 3, num_obstacles: int = 2,
                 max_cycles: int = 25, continuous_actions: bool = False, device="cpu", dtype=torch.float64):
        if num_good < 1 or num_adversaries < 1 or num_obstacles < 0:
            raise ValueError("simple_tag needs num_good >= 1, num_adversaries >= 1 and num_obstacles >= 0 "
                             f"(got {num_good}, {num_adversaries}, {num_obstacles})")
        g, a, m = int(num_good), int(num_adversaries), int(num_obstacles)
        n = g + a
        self.num_good, self.num_adversaries = g, a
        kinds = [ADVERSARY] * a + [PREY] * g
        # others' positions for everyone; others' velocities only of prey
        obs_dims = [4 + 2 * m + 2 * (n - 1) + 2 * (g - (0 if i < a else 1)) for i in range(n)]
        super().__init__(
            num_envs, agents=[f"adversary_{i}" for i in range(a)] + [f"agent_{i}" for i in range(g)],
            n_landmarks=m, dim_c=2, agent_size=[k["size"] for k in kinds], landmark_size=[OBSTACLE_SIZE] * m,
            agent_collide=[True] * n, landmark_collide=[True] * m, movable=[True] * n, silent=[True] * n,
            accel=[k["accel"] for k in kinds], max_speed=[k["max_speed"] for k in kinds], obs_dims=obs_dims,
            max_cycles=max_cycles, continuous_actions=continuous_actions, device=device, dtype=dtype,
        )
        self._others = others_index(n, self.device)
        self._each = torch.arange(n, device=self.device)[:, None]
        # for agent i, the prey other than itself, in order, padded with a dummy slot that is masked out
        prey = list(range(a, n))
        slots = [[j for j in prey if j != i] for i in range(n)]
        width = g
        self._prey_slots = torch.as_tensor([s + [0] * (width - len(s)) for s in slots], device=self.device)
        self._prey_slot_used = torch.as_tensor([[1.0] * len(s) + [0.0] * (width - len(s)) for s in slots],
                                               dtype=self.dtype, device=self.device)
        self._is_adversary = torch.arange(n, device=self.device) < a
        sizes = self.agent_size
        self._touch = sizes[:, None] + sizes[None, :]  # [N, N] contact distance

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = self.n_agents
        return {"pos": uniform_points(rng, n), "vel": np.zeros((n, 2)), "comm": np.zeros((n, self.dim_c)),
                "landmarks": uniform_points(rng, self.n_landmarks, -0.9, 0.9)}

    def _rewards(self) -> torch.Tensor:
        a = self.num_adversaries
        rel = self.agent_offsets()
        caught = torch.sqrt((rel * rel).sum(-1)) < self._touch  # [E, N, N]
        pairs = caught[:, a:, :a]  # [E, G, A]: prey touched by adversary
        adversary_reward = 10.0 * pairs.sum((1, 2)).to(self.dtype)  # [E], the same for every adversary
        x = self.pos[:, a:].abs()  # [E, G, 2]
        bound = torch.where(x < 0.9, torch.zeros_like(x),
                            torch.where(x < 1.0, (x - 0.9) * 10, torch.clamp(torch.exp(2 * x - 2), max=10.0)))
        prey_reward = -10.0 * pairs.sum(-1).to(self.dtype) - bound.sum(-1)  # [E, G]
        return torch.cat([adversary_reward[:, None].expand(-1, a), prey_reward], dim=1)

    def observations(self) -> torch.Tensor:
        e, n = self.num_envs, self.n_agents
        landmarks = self.landmark_offsets().reshape(e, n, -1)
        others = self.agent_offsets()[:, self._each, self._others].reshape(e, n, -1)
        prey_vel = self.vel[:, self._prey_slots] * self._prey_slot_used[None, :, :, None]  # [E, N, G, 2]
        obs = torch.cat([self.vel, self.pos, landmarks, others, prey_vel.reshape(e, n, -1)], dim=-1)
        return obs.float()  # prey rows end with one zero (padding) slot: the layout's padding


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(SimpleTagSim, **options)
