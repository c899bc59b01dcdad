"""Batched ``comm/hidden_goal``: the rules of :class:`envs.hidden_goal.HiddenGoalEnv` (see its module
docstring) for E envs at once. The physics, rewards and success are navigation's, so this is
:class:`envs.batched.navigation.NavigationSim` with two more state tensors (who holds whose goal, and
the tags) and the hidden-goal observation; initial states come from the PettingZoo env's own
``draw_episode`` with the same random stream, so a seed gives the same episode on either backend.
"""

from __future__ import annotations

import torch

from envs.batched.navigation import NavigationSim
from envs.hidden_goal import HiddenGoalEnv, draw_episode


class HiddenGoalSim(NavigationSim):
    name = "comm/hidden_goal"
    state_fields = ("pos", "vel", "goals", "obstacles", "held", "tags")

    reference_env = HiddenGoalEnv

    def __init__(self, num_envs: int, device="cpu", dtype=torch.float64, **options):
        super().__init__(num_envs, device, dtype, **options)
        e, n = self.num_envs, self.n
        self.held = (torch.arange(n, device=self.device) + 1).remainder(n).expand(e, n).clone()  # set at reset
        self.tags = torch.zeros(e, n, 2, dtype=dtype, device=self.device)

    def _initial_state(self, rng):
        p = self.params
        return draw_episode(rng, self.n, self.m, p.world_size, p.agent_radius, p.obstacle_radius)

    def observations(self) -> torch.Tensor:
        e, n, r = self.num_envs, self.n, self.params.sensing_radius
        dist, dist_o = self._geometry()
        inf = torch.tensor(float("inf"), dtype=self.dtype, device=self.device)
        agents = self._nearest_slots(self.pos, torch.where(dist <= r, dist, inf))
        obstacles = self._nearest_slots(self.obstacles, torch.where(dist_o <= r, dist_o, inf))
        index = self.held[..., None].expand(e, n, 2)
        obs = torch.cat([self.vel, self.pos, self.tags, torch.gather(self.tags, 1, index),
                         torch.gather(self.goals, 1, index), agents.reshape(e, n, -1),
                         obstacles.reshape(e, n, -1)], dim=-1)
        return obs.float()

    def state(self, obs: torch.Tensor | None = None) -> torch.Tensor:
        per_agent = torch.cat([self.pos, self.vel, self.goals, self.tags], dim=-1).reshape(self.num_envs, -1)
        return torch.cat([per_agent, self.obstacles.reshape(self.num_envs, -1)], dim=-1).float()

    @property
    def state_dim(self) -> int:
        return 8 * self.n + 2 * self.m


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(HiddenGoalSim, **options)
