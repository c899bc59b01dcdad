"""A rollout: T steps of E envs, every per-agent tensor ``[T, E, N, ...]``.

The collector fills what every algorithm sees (``obs``, ``state``, ``alive``, ``starts``, ``actions``,
``rewards``, ``terminated``, ``truncated`` and ``positions`` where the scenario has them); an
algorithm adds its own per-step fields (``logp``, ``values``, ``bootstrap``, ...) with ``put`` or
``field``. ``replay`` holds the actor's stochastic decisions per step and ``carry`` the carry each
step started from, both as the update needs them to see exactly what the rollout saw;
``carry0`` is the carry before step 0 and ``final`` holds per-rollout values without a time axis.
"""

from __future__ import annotations

import torch


class Rollout:
    def __init__(self, T: int, n_envs: int, device: torch.device | str = "cpu"):
        self.T, self.n_envs, self.device = T, n_envs, torch.device(device)
        self.data: dict[str, torch.Tensor] = {}
        self.replay: dict[str, torch.Tensor] = {}
        self.carry: dict[str, torch.Tensor] = {}
        self.carry0: dict[str, torch.Tensor] = {}
        self.final: dict[str, torch.Tensor] = {}

    def __getattr__(self, name: str) -> torch.Tensor:
        data = self.__dict__.get("data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(f"the rollout holds no {name!r} (it holds: {', '.join(sorted(data or {}))})")

    def __contains__(self, name: str) -> bool:
        return name in self.data

    @staticmethod
    def _write(store: dict, T: int, t: int, name: str, value: torch.Tensor) -> None:
        buf = store.get(name)
        if buf is None:  # allocated on first write, from the value's shape and dtype
            buf = store[name] = torch.zeros(T, *value.shape, dtype=value.dtype, device=value.device)
        buf[t] = value

    def put(self, t: int, **values: torch.Tensor) -> None:
        """Write step ``t`` of each named per-step field."""
        for name, value in values.items():
            self._write(self.data, self.T, t, name, value)

    def put_replay(self, t: int, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self._write(self.replay, self.T, t, name, value)

    def put_carry(self, t: int, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self._write(self.carry, self.T, t, name, value)

    def field(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The per-step field ``name`` (zeros shaped ``[T, *like.shape]`` if not written yet)."""
        if name not in self.data:
            self.data[name] = torch.zeros(self.T, *like.shape, dtype=like.dtype, device=like.device)
        return self.data[name]

    @property
    def ended(self) -> torch.Tensor:
        """``[T, E, N]``: the agent's episode ended at t (terminated, truncated, it was not acting, or it
        leaves play after t while its env goes on: a Traffic Junction car that drove off the grid)."""
        ended = self.terminated | self.truncated | ~self.alive
        if "alive" in self.final:  # who acts at the step after the rollout's last
            following = torch.cat([self.alive[1:], self.final["alive"].unsqueeze(0)])
            ended = ended | (self.alive & ~following)
        return ended


def agent_starts(out, alive_before: torch.Tensor) -> torch.Tensor:
    """``[E, N]``: whose carry starts afresh at the step ``out`` leads to: every agent of an env
    whose episode ended, and an agent that enters play while its env goes on (a new car in a free
    Traffic Junction slot must not inherit the memory of the car that left)."""
    return out.done_env[:, None] | (out.alive & ~alive_before)
