"""The batched-simulator interface: one object holds the state of E envs x N agents as tensors
and steps them all with array operations.

A subclass (one module per scenario) describes its agents and spaces exactly as the PettingZoo env
does, draws one env's initial state from a numpy ``Generator`` (the same draws, in the same order,
as the PettingZoo env's ``reset(seed)``, so a seed gives the same episode on either backend), and
implements the step on ``[E, ...]`` tensors. Generic code wraps a simulator as the trainer's
vector env (:mod:`envs.batched.vector`) or as a one-env PettingZoo ParallelEnv
(:mod:`envs.batched.parallel`).

Physics run in float64 by default (as mpe2 does in numpy): MPE's stiff contact forces amplify
round-off, and float32 would drift from mpe2 by more than 1e-5 within an episode. Observations,
states, rewards and positions come out as float32, as the PettingZoo adapter produces them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from gymnasium import spaces


class BatchedSim:
    """E envs of one scenario as tensors. Subclasses set, in ``__init__`` (after calling
    ``super().__init__``): ``agents``, ``observation_spaces``, ``action_spaces``, ``max_cycles`` and
    their state tensors, and implement ``_initial_state``, ``_advance``, ``_rewards``,
    ``observations`` and ``positions``; optionally ``_terminal``, ``success`` and ``active``."""

    name: str = ""
    agents: tuple[str, ...]
    observation_spaces: dict[str, spaces.Space]
    action_spaces: dict[str, spaces.Space]
    max_cycles: int
    # state tensors filled from ``_initial_state``'s dict at reset (names of attributes)
    state_fields: tuple[str, ...] = ()

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.dtype = dtype
        self.t = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)  # steps taken per env

    # ---- to implement ---------------------------------------------------------------------------
    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One env's initial state (arrays keyed by ``state_fields``), drawn from ``rng`` exactly as
        the PettingZoo env draws it in ``reset``."""
        raise NotImplementedError

    def _advance(self, actions: torch.Tensor) -> None:
        """Move every env one step with ``actions`` (discrete [E, N] long; continuous [E, N, A]
        clipped to each agent's bounds)."""
        raise NotImplementedError

    def _rewards(self) -> torch.Tensor:
        """[E, N] rewards (float64) of the step just taken, in the state it reached."""
        raise NotImplementedError

    def _terminal(self) -> torch.Tensor | None:
        """[E] bool: the episode ended early in the state just reached (``None``: never)."""
        return None

    def observations(self) -> torch.Tensor:
        """[E, N, O] float32 observations, each agent's own vector zero-padded to the longest."""
        raise NotImplementedError

    def positions(self) -> torch.Tensor:
        """[E, N, 2] float32 agent positions."""
        raise NotImplementedError

    def success(self) -> torch.Tensor | None:
        """[E] float success in [0, 1] of each env's episode in the state just reached (read on an
        episode's last step, before the auto-reset: ``EnvOutput.episode_success``); it must equal the
        mean over agents of the PettingZoo env's ``infos[agent]["success"]``. ``None``: the scenario
        has no success signal."""
        return None

    def active(self) -> torch.Tensor | None:
        """[E, N] bool: the agents in play in the current state (``ScenarioSpec.active`` of the
        PettingZoo env), ANDed into ``EnvOutput.alive``. ``None``: every agent is always in play."""
        return None

    def state(self, obs: torch.Tensor | None = None) -> torch.Tensor:
        """[E, S] float32 global state. Default: every agent's unpadded observation, concatenated,
        which is what mpe2's ``state()`` returns (pass ``obs`` to reuse computed observations)."""
        obs = self.observations() if obs is None else obs
        if self._state_is_flat_obs:  # no padding: the state is a view of the observations
            return obs.reshape(self.num_envs, -1)
        return obs.reshape(self.num_envs, -1)[:, self._state_index]

    # ---- shared ---------------------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return len(self.agents)

    def _spaces_from(self, ref) -> None:
        """Agents, spaces and ``max_cycles`` read off ``ref``, the PettingZoo env of the same scenario and
        options (its spaces are the contract both backends share), then ``_finish_spaces``."""
        self.agents = tuple(ref.possible_agents)
        self.observation_spaces = {a: ref.observation_space(a) for a in self.agents}
        self.action_spaces = {a: ref.action_space(a) for a in self.agents}
        self.max_cycles = ref.max_cycles
        self._finish_spaces()

    def _finish_spaces(self) -> None:
        """Call once agents and spaces are set: derives the padded obs width and the state index."""
        lengths = [int(np.prod(self.observation_spaces[a].shape)) for a in self.agents]
        self.obs_lengths = tuple(lengths)
        self.obs_width = max(lengths)
        self._state_is_flat_obs = min(lengths) == self.obs_width
        self._state_index = torch.as_tensor(
            [i * self.obs_width + j for i, n in enumerate(lengths) for j in range(n)], device=self.device
        )
        discrete = isinstance(self.action_spaces[self.agents[0]], spaces.Discrete)
        self.discrete = discrete
        if not discrete:
            width = max(self.action_spaces[a].shape[0] for a in self.agents)
            low = np.zeros((self.n_agents, width))
            high = np.zeros((self.n_agents, width))
            for i, a in enumerate(self.agents):
                box = self.action_spaces[a]
                low[i, : box.shape[0]], high[i, : box.shape[0]] = box.low, box.high
            self._act_low = torch.as_tensor(low, dtype=self.dtype, device=self.device)
            self._act_high = torch.as_tensor(high, dtype=self.dtype, device=self.device)

    @property
    def state_dim(self) -> int:
        return int(self._state_index.numel())

    def tensor(self, data) -> torch.Tensor:
        return torch.as_tensor(data, dtype=self.dtype, device=self.device)

    def reset_envs(self, env_ids: Sequence[int], rngs: Sequence[np.random.Generator]) -> None:
        """Start a new episode in envs ``env_ids``, drawing env ``env_ids[k]``'s state from ``rngs[k]``.
        The per-env loop only draws numbers; the tensors are written once per field."""
        if len(env_ids) == 0:
            return
        drawn = [self._initial_state(rng) for rng in rngs]
        idx = torch.as_tensor(list(env_ids), dtype=torch.long, device=self.device)
        for name in self.state_fields:
            target = getattr(self, name)
            values = torch.as_tensor(np.stack([d[name] for d in drawn]), device=self.device).to(target.dtype)
            target[idx] = values
        self.t[idx] = 0

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of every state tensor and the step counters: the whole mid-episode state."""
        return {name: getattr(self, name).clone() for name in (*self.state_fields, "t")}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        for name in (*self.state_fields, "t"):
            target = getattr(self, name)
            if snapshot[name].shape != target.shape:
                raise ValueError(f"{self.name}: snapshot field {name!r} has shape {tuple(snapshot[name].shape)}, "
                                 f"this simulator needs {tuple(target.shape)}")
            target.copy_(snapshot[name].to(device=target.device, dtype=target.dtype))

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step all envs. Returns float64 rewards [E, N], terminated [E] and truncated [E].

        Termination wins over truncation on the last step (neither happens in mpe2's scenarios with
        their default options)."""
        actions = torch.as_tensor(actions, device=self.device)
        if self.discrete:
            actions = actions.long()
        else:
            actions = torch.minimum(torch.maximum(actions.to(self.dtype), self._act_low), self._act_high)
        self._advance(actions)
        self.t += 1
        reward = self._rewards()
        terminal = self._terminal()
        out_of_time = self.t >= self.max_cycles
        if terminal is None:
            return reward, torch.zeros_like(out_of_time), out_of_time
        return reward, terminal, out_of_time & ~terminal


def off_diagonal(pairs: torch.Tensor) -> torch.Tensor:
    """[E, N, N, ...] -> [E, N, N-1, ...]: drops the diagonal, keeping j != i in increasing order.
    Flattened, the diagonal entries sit every N+1 places, so after dropping the first entry each row
    of N+1 ends with one; this needs reshapes and one copy instead of a gather."""
    e, n = pairs.shape[:2]
    tail = pairs.shape[3:]
    flat = pairs.reshape(e, n * n, *tail)[:, 1:]
    return flat.reshape(e, n - 1, n + 1, *tail)[:, :, :n].reshape(e, n, n - 1, *tail)


def others_index(n: int, device) -> torch.Tensor:
    """[N, N-1]: for each agent i, the other agents j != i in increasing order (mpe2's order)."""
    idx = torch.arange(n, device=device).expand(n, n)
    keep = ~torch.eye(n, dtype=torch.bool, device=device)
    return idx[keep].reshape(n, n - 1)
