"""One env of a batched simulator as a plain PettingZoo ``ParallelEnv`` (passes ``parallel_api_test``),
so batched scenarios work with any PettingZoo tool. Observations are each agent's own unpadded vector,
as its observation space says. ``reset(seed)`` draws the same initial state as the mpe2 env (or our
NavigationEnv) given the same seed; an unseeded reset continues the previous random stream."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from pettingzoo import ParallelEnv

from envs.batched.base import BatchedSim


class BatchedParallelEnv(ParallelEnv):
    metadata = {"render_modes": [], "is_parallelizable": True}

    def __init__(self, make_sim: Callable[..., BatchedSim], **options):
        self.sim = make_sim(num_envs=1, **options)
        self.metadata = {**self.metadata, "name": f"batched_{self.sim.name.replace('/', '_')}"}
        self.possible_agents = list(self.sim.agents)
        self.agents: list[str] = []
        self.render_mode = None
        self._rng = np.random.default_rng()
        self._done = True

    def observation_space(self, agent):
        return self.sim.observation_spaces[agent]

    def action_space(self, agent):
        return self.sim.action_spaces[agent]

    def _obs_dict(self) -> dict[str, np.ndarray]:
        obs = self.sim.observations()[0].cpu().numpy()
        return {a: obs[i, : self.sim.obs_lengths[i]].copy() for i, a in enumerate(self.possible_agents)}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.sim.reset_envs([0], [self._rng])
        self.agents = list(self.possible_agents)
        return self._obs_dict(), {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            return {}, {}, {}, {}, {}
        sim = self.sim
        if sim.discrete:
            row = torch.zeros(1, sim.n_agents, dtype=torch.long)
            for i, a in enumerate(self.possible_agents):
                if not self.action_space(a).contains(int(actions[a])):
                    raise ValueError(f"action {actions[a]!r} of {a} is outside its space {self.action_space(a)}")
                row[0, i] = int(actions[a])
        else:
            width = sim._act_low.shape[-1]
            row = torch.zeros(1, sim.n_agents, width, dtype=sim.dtype)
            for i, a in enumerate(self.possible_agents):
                act = np.asarray(actions[a], dtype=np.float64).reshape(-1)
                row[0, i, : act.shape[0]] = torch.as_tensor(act)
        reward, terminated, truncated = sim.step(row)
        obs = self._obs_dict()
        rewards = {a: float(r) for a, r in zip(self.possible_agents, reward[0].float().tolist())}
        terms = dict.fromkeys(self.possible_agents, bool(terminated[0]))
        truncs = dict.fromkeys(self.possible_agents, bool(truncated[0]))
        infos = {a: {} for a in self.possible_agents}
        if bool(terminated[0]) or bool(truncated[0]):
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        return self.sim.state()[0].cpu().numpy()

    def render(self):
        return None

    def close(self):
        pass
