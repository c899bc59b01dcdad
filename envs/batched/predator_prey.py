"""Batched ``comm/predator_prey``: the rules of :class:`envs.predator_prey.PredatorPreyEnv` (see its
module docstring) for E envs at once. Initial cells come from the same draws (``draw_cells``), so a
seed gives the same episode as the PettingZoo env. Cells are int64 tensors; the window's prey and
edge flags compare every window cell with the prey and the grid's bounds ([E, N, C]), and the
other predators per window cell are counted from the pairwise offsets [E, N, N] by one scatter-add.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.base import BatchedSim
from envs.predator_prey import COUNT_CLIP, MOVES, PREY_REWARD, STEP_PENALTY, PredatorPreyEnv, draw_cells


class PredatorPreySim(BatchedSim):
    name = "comm/predator_prey"
    state_fields = ("pos", "prey")

    def __init__(self, num_envs: int, device="cpu", dtype=torch.float64, **options):
        super().__init__(num_envs, device, dtype)
        ref = PredatorPreyEnv(**options)  # validates the options and resolves the preset
        self.params = ref
        self.n, self.grid_size, self.window = ref.n, ref.grid_size, ref.window
        self._spaces_from(ref)
        e, n = self.num_envs, self.n
        self.pos = torch.zeros(e, n, 2, dtype=torch.long, device=self.device)
        self.prey = torch.zeros(e, 2, dtype=torch.long, device=self.device)
        self._moves = torch.as_tensor(MOVES, device=self.device)
        self._offsets = torch.as_tensor(ref.offsets, device=self.device)  # [C, 2]
        self._seen = torch.as_tensor(ref.seen, device=self.device)  # [C]
        self._not_self = ~torch.eye(n, dtype=torch.bool, device=self.device)

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        pos, prey = draw_cells(rng, self.n, self.grid_size)
        return {"pos": pos, "prey": prey}

    # ---- rules ----------------------------------------------------------------------------------------
    def on_prey(self) -> torch.Tensor:
        """[E, N] bool: the predator is on its env's prey (and so stays there)."""
        return (self.pos == self.prey[:, None, :]).all(-1)

    def _advance(self, actions: torch.Tensor) -> None:
        moved = (self.pos + self._moves[actions]).clamp(0, self.grid_size - 1)
        self.pos = torch.where(self.on_prey()[..., None], self.pos, moved)

    def _rewards(self) -> torch.Tensor:
        on_prey = self.on_prey()
        self._on_prey = on_prey
        crowd = on_prey.sum(-1, keepdim=True).to(self.dtype)
        return torch.where(on_prey, PREY_REWARD * crowd, torch.full_like(crowd, -STEP_PENALTY))

    def _terminal(self) -> torch.Tensor | None:
        return self._on_prey.all(-1) if self.params.terminate_on_success else None

    def success(self) -> torch.Tensor:
        """[E] 1.0 where every predator is on the prey now, else 0.0."""
        return self.on_prey().all(-1).to(self.dtype)

    # ---- observations -------------------------------------------------------------------------------
    def _others_per_cell(self) -> torch.Tensor:
        """[E, N, C] other predators in each of predator i's window cells (unclipped counts)."""
        e, n, w = self.num_envs, self.n, self.window
        cells = self._offsets.shape[0]
        rel = self.pos[:, None, :, :] - self.pos[:, :, None, :]  # [E, N, N, 2]: p_j - p_i
        inside = (rel.abs().amax(-1) <= w) & self._not_self
        index = (rel[..., 1] + w) * (2 * w + 1) + (rel[..., 0] + w)
        index = torch.where(inside, index, torch.full_like(index, cells))  # pairs out of view -> a spare slot
        counts = torch.zeros(e, n, cells + 1, dtype=self.dtype, device=self.device)
        counts.scatter_add_(2, index, torch.ones_like(index, dtype=self.dtype))
        return counts[..., :cells]

    def observations(self) -> torch.Tensor:
        e, n, g = self.num_envs, self.n, self.grid_size
        cells = self.pos[:, :, None, :] + self._offsets  # [E, N, C, 2]
        prey_here = (cells == self.prey[:, None, None, :]).all(-1)
        outside = ((cells < 0) | (cells >= g)).any(-1)
        others = self._others_per_cell().clamp(max=COUNT_CLIP) / COUNT_CLIP
        window = torch.stack([prey_here.to(self.dtype), others, outside.to(self.dtype)], dim=-1)
        window = window * self._seen[:, None]
        own = torch.cat([self.pos.to(self.dtype) / (g - 1), self.on_prey()[..., None].to(self.dtype)], dim=-1)
        return torch.cat([own, window.reshape(e, n, -1)], dim=-1).float()

    def state(self, obs: torch.Tensor | None = None) -> torch.Tensor:
        scale = self.grid_size - 1
        return torch.cat([self.pos.reshape(self.num_envs, -1).to(self.dtype) / scale,
                          self.prey.to(self.dtype) / scale, self.on_prey().to(self.dtype)], dim=-1).float()

    @property
    def state_dim(self) -> int:
        return 3 * self.n + 2

    def positions(self) -> torch.Tensor:
        return self.pos.float()


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(PredatorPreySim, **options)
