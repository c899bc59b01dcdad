"""How per-agent PettingZoo spaces map onto one padded tensor layout with an agent axis.

Observations become flat float vectors of a common length (padded; plus an agent-id one-hot
when agents differ). Actions are either discrete (common ``n`` with a per-agent validity mask)
or continuous (common length with per-agent bounds). Mixing the two cannot be padded: error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces


class SpaceError(ValueError):
    """Spaces that cannot be put on one padded layout."""


def flat_obs_dim(space: spaces.Space) -> int:
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape))
    raise SpaceError(f"observation space {space} is not supported (use Box, Discrete or MultiBinary)")


def encode_obs(space: spaces.Space, obs) -> np.ndarray:
    """One agent's observation as a flat float32 vector."""
    if isinstance(space, spaces.Discrete):
        out = np.zeros(space.n, dtype=np.float32)
        out[int(obs) - space.start] = 1.0
        return out
    arr = np.asarray(obs)
    if arr.dtype == np.uint8:  # pixels
        return arr.reshape(-1).astype(np.float32) / 255.0
    return arr.reshape(-1).astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class Layout:
    agents: tuple[str, ...]
    obs_dim: int  # padded flat observation length, agent-id one-hot included
    raw_obs_dim: int  # padded flat observation length, without the id
    agent_id: bool  # whether an agent-id one-hot is appended to observations
    discrete: bool
    n_actions: int  # discrete: common number of choices
    action_dim: int  # continuous: common action length
    action_mask: np.ndarray  # [N, n_actions] bool, valid discrete actions per agent
    action_low: np.ndarray  # [N, action_dim]
    action_high: np.ndarray  # [N, action_dim]
    obs_spaces: tuple[spaces.Space, ...]
    act_spaces: tuple[spaces.Space, ...]

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    def __eq__(self, other) -> bool:
        """Field by field, arrays by value (the generated ``==`` would compare arrays elementwise)."""
        if not isinstance(other, Layout):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                        and np.array_equal(a, b)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = object.__hash__

    @staticmethod
    def from_spaces(agents, obs_spaces: dict, act_spaces: dict, agent_id: bool | None = None) -> "Layout":
        agents = tuple(agents)
        o_spaces = tuple(obs_spaces[a] for a in agents)
        a_spaces = tuple(act_spaces[a] for a in agents)
        shapes = {getattr(s, "shape", None) for s in o_spaces if isinstance(s, spaces.Box)}
        ndims = {len(s) for s in shapes if s is not None}
        if len(ndims) > 1:
            raise SpaceError(
                f"cannot pad observations of different ranks {sorted(shapes)} onto one layout; "
                "wrap the env so all agents observe vectors (or images of one shape)"
            )
        kinds = {type(s) for s in a_spaces}
        discrete = all(isinstance(s, spaces.Discrete) for s in a_spaces)
        continuous = all(isinstance(s, spaces.Box) for s in a_spaces)
        if not (discrete or continuous):
            raise SpaceError(
                f"agents mix action space types {sorted(k.__name__ for k in kinds)}; padding needs all "
                "Discrete or all Box (supported: Discrete, Box)"
            )
        heterogeneous = len(set(map(repr, o_spaces))) > 1 or len(set(map(repr, a_spaces))) > 1
        agent_id = heterogeneous if agent_id is None else agent_id
        raw = max(flat_obs_dim(s) for s in o_spaces)
        n = len(agents)
        if discrete:
            n_act = max(int(s.n) for s in a_spaces)
            mask = np.zeros((n, n_act), dtype=bool)
            for i, s in enumerate(a_spaces):
                mask[i, : s.n] = True
            low = high = np.zeros((n, 0), dtype=np.float32)
            a_dim = 0
        else:
            if any(len(s.shape) != 1 for s in a_spaces):
                raise SpaceError("continuous actions must be vectors (Box with a 1-d shape)")
            a_dim = max(s.shape[0] for s in a_spaces)
            low = np.zeros((n, a_dim), dtype=np.float32)
            high = np.zeros((n, a_dim), dtype=np.float32)
            for i, s in enumerate(a_spaces):
                low[i, : s.shape[0]] = s.low
                high[i, : s.shape[0]] = s.high
            n_act, mask = 0, np.zeros((n, 0), dtype=bool)
        return Layout(
            agents=agents,
            obs_dim=raw + (n if agent_id else 0),
            raw_obs_dim=raw,
            agent_id=agent_id,
            discrete=discrete,
            n_actions=n_act,
            action_dim=a_dim,
            action_mask=mask,
            action_low=low,
            action_high=high,
            obs_spaces=o_spaces,
            act_spaces=a_spaces,
        )

    def env_action(self, i: int, action):
        """Agent i's padded action as its env expects it."""
        space = self.act_spaces[i]
        if self.discrete:
            return int(action)
        a = np.asarray(action, dtype=np.float32)[: space.shape[0]]
        return np.clip(a, space.low, space.high).astype(space.dtype)
