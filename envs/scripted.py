"""``debug/scripted``: a tiny deterministic ParallelEnv with known rewards, for checking the
adapter and the learner (bootstrapping, agents leaving mid-episode) against hand-computed values.

Agent i observes ``[t, i, last action]`` and gets reward ``(i + 1) * reward_scale`` every step it
acts. Agent i leaves (terminated) after step ``leave_at[i]`` when given. The episode terminates for
everyone after step ``terminate_at`` if set, else is truncated after ``max_cycles`` steps.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class ScriptedEnv(ParallelEnv):
    metadata = {"name": "scripted_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        n_agents: int = 2,
        max_cycles: int = 5,
        terminate_at: int | None = None,
        leave_at: dict[int, int] | None = None,
        reward_scale: float = 1.0,
        n_actions: int = 3,
        render_mode: str | None = None,
    ):
        if n_agents < 1:
            raise ValueError(f"n_agents must be >= 1 (got {n_agents})")
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.max_cycles = max_cycles
        self.terminate_at = terminate_at
        self.leave_at = {int(k): int(v) for k, v in (leave_at or {}).items()}
        self.reward_scale = reward_scale
        self.n_actions = n_actions
        self.render_mode = render_mode
        self.agents: list[str] = []
        self.t = 0
        self._last = np.zeros(n_agents, dtype=np.float32)
        self._offset = 0.0

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return spaces.Discrete(self.n_actions)

    def _obs(self, agent: str) -> np.ndarray:
        i = self.possible_agents.index(agent)
        return np.array([self.t + self._offset, i, self._last[i]], dtype=np.float32)

    def reset(self, seed=None, options=None):
        # the seed shifts the time stamp in the observation, so seeding is visible to tests
        self._offset = 0.0 if seed is None else float(np.random.default_rng(seed).integers(0, 1000))
        self.agents = list(self.possible_agents)
        self.t = 0
        self._last[:] = 0
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        for a, act in actions.items():
            self._last[self.possible_agents.index(a)] = float(act)
        rewards = {a: (self.possible_agents.index(a) + 1) * self.reward_scale for a in self.agents}
        ends_all_term = self.terminate_at is not None and self.t >= self.terminate_at
        ends_all_trunc = not ends_all_term and self.t >= self.max_cycles
        terms = {a: ends_all_term or self.leave_at.get(self.possible_agents.index(a)) == self.t for a in self.agents}
        truncs = {a: ends_all_trunc and not terms[a] for a in self.agents}
        obs = {a: self._obs(a) for a in self.agents}
        infos = {a: {} for a in self.agents}
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        alive = [float(a in self.agents) for a in self.possible_agents]
        return np.array([self.t + self._offset, *alive], dtype=np.float32)

    def render(self):
        if self.render_mode == "rgb_array":
            img = np.zeros((32, 32, 3), dtype=np.uint8)
            img[:, : min(32, self.t * 4)] = 255
            return img
        return None

    def close(self):
        pass
