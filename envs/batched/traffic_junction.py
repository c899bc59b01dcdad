"""Batched ``comm/traffic_junction``: the rules of :class:`envs.traffic_junction.TrafficJunctionEnv`
(see its module docstring) for E envs at once.

A car is a route id and a cell index on it; the routes live in one padded table ``[R, L_max, 2]``, so
every car's cell is one gather. Collisions and the vision windows read a per-env occupancy grid
``[E, G * G]`` built by scatter-adding the cars (the windows on one with a margin of v empty cells),
and new cars take the free slots in order by matching the rank of each spawning entry (a cumsum over
the entries) with the rank of each free slot (a cumsum over the slots), with no loop. Initial states
come from the PettingZoo env's own reset code with the same random stream; the episode's spawn
schedule is drawn there and kept in the state, so a seed gives the same episode on either backend and
a snapshot of the state tensors resumes it exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.base import BatchedSim
from envs.traffic_junction import COLLISION_PENALTY, OFF_ROAD, TIME_PENALTY, TrafficJunctionEnv


class TrafficJunctionSim(BatchedSim):
    name = "comm/traffic_junction"
    state_fields = ("route", "progress", "on_road", "tau", "last_action", "crashed", "spawn_u", "spawn_route")

    def __init__(self, num_envs: int, device="cpu", dtype=torch.float64, **options):
        super().__init__(num_envs, device, dtype)
        ref = TrafficJunctionEnv(**options)  # validates the options; draws the initial states
        self.ref = ref
        self.n, self.add_rate, self.vision = ref.n, ref.add_rate, ref.vision
        self.grid = ref.grid
        self._spaces_from(ref)

        layout = ref.layout
        cells, lengths, heading, turns = layout.route_table()
        dev, long = self.device, torch.long
        self._cells = torch.as_tensor(cells, dtype=long, device=dev)  # [R, L_max, 2]
        self._lengths = torch.as_tensor(lengths, dtype=long, device=dev)
        self._heading = torch.as_tensor(heading, dtype=long, device=dev)
        self._turn = torch.as_tensor(turns, dtype=long, device=dev)
        self._entry_routes = torch.as_tensor(layout.entry_routes, dtype=long, device=dev)  # [K, M]
        self.n_entries = layout.n_entries
        self._entry_ids = torch.arange(self.n_entries, device=dev)
        self._eye4 = torch.eye(4, dtype=dtype, device=dev)
        self._eye3 = torch.eye(3, dtype=dtype, device=dev)
        v = self.vision
        dy, dx = torch.meshgrid(torch.arange(-v, v + 1, device=dev), torch.arange(-v, v + 1, device=dev),
                                indexing="ij")
        self._window_offsets = (dy * (self.grid + 2 * v) + dx).reshape(-1)  # on the grid with a margin of v
        slot = torch.arange(self.n, dtype=dtype, device=dev)
        self._off_road = torch.stack([OFF_ROAD * (slot + 1), torch.full_like(slot, OFF_ROAD)], dim=-1)

        e, n, t, k = self.num_envs, self.n, self.max_cycles, self.n_entries
        self.route = torch.zeros(e, n, dtype=long, device=dev)
        self.progress = torch.zeros(e, n, dtype=long, device=dev)
        self.on_road = torch.zeros(e, n, dtype=torch.bool, device=dev)  # the slot has a car
        self.tau = torch.zeros(e, n, dtype=long, device=dev)
        self.last_action = torch.zeros(e, n, dtype=long, device=dev)
        self.crashed = torch.zeros(e, dtype=torch.bool, device=dev)
        self.spawn_u = torch.ones(e, t, k, dtype=torch.float64, device=dev)
        self.spawn_route = torch.zeros(e, t, k, dtype=long, device=dev)
        self._env_ids = torch.arange(e, device=dev)
        self._reward = torch.zeros(e, n, dtype=dtype, device=dev)
        self.collided = torch.zeros(e, n, dtype=torch.bool, device=dev)  # of the last step (not state)

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        ref = self.ref
        ref.start_episode(rng)
        return {"route": ref.route.copy(), "progress": ref.progress.copy(), "on_road": ref.active.copy(),
                "tau": ref.tau.copy(), "last_action": ref.last_action.copy(), "crashed": np.array(ref.crashed),
                "spawn_u": ref.spawn_u.copy(), "spawn_route": ref.spawn_route.copy()}

    def reset_envs(self, env_ids, rngs) -> None:
        super().reset_envs(env_ids, rngs)
        if len(env_ids):
            self.collided[torch.as_tensor(list(env_ids), dtype=torch.long, device=self.device)] = False

    # ---- geometry -----------------------------------------------------------------------------------
    def car_cells(self) -> torch.Tensor:
        """[E, N, 2] long (x, y) of each slot's car (meaningless for empty slots: mask with ``on_road``)."""
        return self._cells[self.route, self.progress]

    def _flat_cells(self, cells: torch.Tensor) -> torch.Tensor:
        return cells[..., 1] * self.grid + cells[..., 0]

    def occupancy(self, flat: torch.Tensor | None = None) -> torch.Tensor:
        """[E, G * G] long: cars per cell (index ``y * G + x``)."""
        flat = self._flat_cells(self.car_cells()) if flat is None else flat
        counts = torch.zeros(self.num_envs, self.grid * self.grid, dtype=torch.long, device=self.device)
        return counts.scatter_add_(1, flat, self.on_road.long())

    # ---- step ---------------------------------------------------------------------------------------
    def _advance(self, actions: torch.Tensor) -> None:
        was_on = self.on_road
        gas = was_on & (actions == 1)
        progress = self.progress + gas.long()
        leaving = was_on & (progress >= self._lengths[self.route])
        tau = torch.where(was_on, self.tau + 1, 0)
        time_cost = -TIME_PENALTY * tau.to(self.dtype)
        active = was_on & ~leaving
        self.on_road = active
        self.progress = torch.where(active, progress, 0)
        self.tau = torch.where(active, tau, 0)
        self.route = torch.where(active, self.route, 0)
        self.last_action = torch.where(active, actions, 0)

        self._spawn(free=~was_on)  # a slot emptied in this step stays free until the next

        flat = self._flat_cells(self.car_cells())
        self.collided = self.on_road & (self.occupancy(flat).gather(1, flat) >= 2)
        crash_cost = COLLISION_PENALTY * (self.collided & was_on).to(self.dtype)  # new cars have not acted
        self._reward = torch.where(was_on, time_cost, 0.0) - crash_cost
        self.crashed = self.crashed | self.collided.any(-1)

    def _spawn(self, free: torch.Tensor) -> None:
        """Schedule row t + 1 (the step counter is incremented after ``_advance``): every entry whose
        draw is below ``add_rate`` takes the next free slot, in entry order."""
        row = self.t + 1
        has_row = row < self.max_cycles
        row = row.clamp(max=self.max_cycles - 1)
        envs = self._env_ids
        want = (self.spawn_u[envs, row] < self.add_rate) & has_row[:, None]  # [E, K]
        want_rank = want.long().cumsum(-1) - 1
        free_rank = free.long().cumsum(-1) - 1
        match = want[:, :, None] & free[:, None, :] & (want_rank[:, :, None] == free_rank[:, None, :])  # [E, K, N]
        spawned = match.any(1)
        entry = (match.long() * self._entry_ids[:, None]).sum(1)  # [E, N] the entry each new car comes from
        new_route = self._entry_routes[self._entry_ids, self.spawn_route[envs, row]]  # [E, K]
        self.route = torch.where(spawned, new_route.gather(1, entry), self.route)
        self.on_road = self.on_road | spawned

    def _rewards(self) -> torch.Tensor:
        return self._reward

    def success(self) -> torch.Tensor:
        """[E] float: 1 while the episode has had no collision, else 0."""
        return (~self.crashed).to(self.dtype)

    def active(self) -> torch.Tensor:
        """[E, N] bool: slots with a car on the road now (they act in the next step)."""
        return self.on_road.clone()

    # ---- observations -------------------------------------------------------------------------------
    def observations(self) -> torch.Tensor:
        cells = self.car_cells()
        mask = self.on_road.to(self.dtype)[..., None]
        own = torch.cat([
            mask,
            self.last_action.to(self.dtype)[..., None],
            cells.to(self.dtype) / (self.grid - 1),
            self._eye4[self._heading[self.route, self.progress]],
            self._eye3[self._turn[self.route]],
            (self.progress.to(self.dtype) / (self._lengths[self.route] - 1).to(self.dtype))[..., None],
            (self.tau.to(self.dtype) / self.max_cycles)[..., None],
        ], dim=-1) * mask
        if self.vision == 0:
            return own.float()
        return torch.cat([own, self._window(cells) * mask], dim=-1).float()

    def _window(self, cells: torch.Tensor) -> torch.Tensor:
        """[E, N, (2v+1)^2] other cars in each window cell; cells off the grid count 0. The cars are
        counted on a grid with a margin of v empty cells, so every window is one gather."""
        e, n, v = self.num_envs, self.n, self.vision
        wide = self.grid + 2 * v
        centre = (cells[..., 1] + v) * wide + cells[..., 0] + v  # [E, N]
        counts = torch.zeros(e, wide * wide, dtype=torch.long, device=self.device)
        counts.scatter_add_(1, centre, self.on_road.long())
        window = counts.gather(1, (centre[..., None] + self._window_offsets).reshape(e, -1)).reshape(e, n, -1)
        window[..., window.shape[-1] // 2] -= 1  # the car itself
        return window.to(self.dtype)

    def positions(self) -> torch.Tensor:
        return torch.where(self.on_road[..., None], self.car_cells().to(self.dtype), self._off_road).float()


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(TrafficJunctionSim, **options)
