"""MPE physics on tensors, shared by the batched mpe2 scenarios.

The rules follow mpe2's ``World.step`` (``mpe2/_mpe_utils/core.py``) and ``SimpleEnv._set_action``:

- an action becomes a force ``u * sensitivity`` (sensitivity = the agent's ``accel``, else 5);
  discrete movement is one of no-op, -x, +x, -y, +y; continuous movement is
  ``(a[2] - a[1], a[4] - a[3])``; a discrete action of a moving, speaking agent is
  ``move + 5 * word``;
- every pair of colliding entities pushes apart with ``contact_force * d / |d| * pen``, where
  ``pen = margin * log(1 + exp((size_a + size_b - |d|) / margin))`` (a softened penetration depth);
  only movable entities feel it;
- integration: ``p += v dt`` with the *old* velocity, then ``v = v (1 - damping) + F / m dt``, then
  the speed is capped at ``max_speed`` where the entity has one;
- an agent's utterance ``c`` becomes its action's word (one-hot; the raw values when continuous),
  zeros for silent agents.

Only agents move in the scenarios built here (landmarks are fixed), so agents and landmarks live
in separate tensors: ``pos``/``vel`` [E, N, 2], ``landmarks`` [E, L, 2], ``comm`` [E, N, dim_c].
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from envs.batched.base import BatchedSim

DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 100.0
CONTACT_MARGIN = 1e-3
DEFAULT_SENSITIVITY = 5.0
# discrete movement -> direction: no-op, -x, +x, -y, +y
DIRECTIONS = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))


class MPESim(BatchedSim):
    """N agents and L fixed landmarks under mpe2's physics. Per-agent properties are sequences of
    length N; ``max_speed`` entries of ``None`` mean no cap."""

    state_fields = ("pos", "vel", "comm", "landmarks")

    def __init__(
        self,
        num_envs: int,
        agents: Sequence[str],
        n_landmarks: int,
        dim_c: int,
        agent_size: Sequence[float],
        landmark_size: Sequence[float],
        agent_collide: Sequence[bool],
        landmark_collide: Sequence[bool],
        movable: Sequence[bool],
        silent: Sequence[bool],
        accel: Sequence[float | None],
        max_speed: Sequence[float | None],
        obs_dims: Sequence[int],
        max_cycles: int,
        continuous_actions: bool,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__(num_envs, device, dtype)
        self.agents = tuple(agents)
        n, e = len(self.agents), self.num_envs
        self.n_landmarks, self.dim_c = int(n_landmarks), int(dim_c)
        self.max_cycles = int(max_cycles)
        self.continuous = bool(continuous_actions)
        self.movable = torch.as_tensor(list(movable), dtype=torch.bool, device=self.device)
        self.silent = torch.as_tensor(list(silent), dtype=torch.bool, device=self.device)
        sens = [DEFAULT_SENSITIVITY if a is None else float(a) for a in accel]
        self.sensitivity = self.tensor(sens)[None, :, None]  # [1, N, 1]
        caps = [math.inf if s is None else float(s) for s in max_speed]
        self.max_speed = self.tensor(caps)[None, :]  # [1, N]
        self.has_speed_cap = any(s is not None for s in max_speed)
        self.agent_size = self.tensor(list(agent_size))
        self.landmark_size = self.tensor(list(landmark_size))

        # contact pairs: rows are movable colliding agents, columns every colliding entity
        # (agents first, then landmarks); forces only act on movable entities in mpe2
        a_col = [i for i in range(n) if agent_collide[i]]
        self._rows = torch.as_tensor([i for i in a_col if movable[i]], dtype=torch.long, device=self.device)
        self._col_agents = torch.as_tensor(a_col, dtype=torch.long, device=self.device)
        self._col_landmarks = torch.as_tensor(
            [j for j in range(self.n_landmarks) if landmark_collide[j]], dtype=torch.long, device=self.device)
        sizes = torch.cat([self.agent_size[self._col_agents], self.landmark_size[self._col_landmarks]])
        self._contact_min = self.agent_size[self._rows][:, None] + sizes[None, :]  # [R, C]
        cols = torch.cat([self._col_agents, n + self._col_landmarks])
        self._not_self = self._rows[:, None] != cols[None, :]  # [R, C]
        self._contacts = len(self._rows) > 0 and len(cols) > 1

        self.pos = torch.zeros(e, n, 2, dtype=dtype, device=self.device)
        self.vel = torch.zeros(e, n, 2, dtype=dtype, device=self.device)
        self.comm = torch.zeros(e, n, self.dim_c, dtype=dtype, device=self.device)
        self.landmarks = torch.zeros(e, self.n_landmarks, 2, dtype=dtype, device=self.device)
        self._directions = self.tensor(DIRECTIONS)
        self._eye_c = self.tensor(np.eye(max(self.dim_c, 1)))

        # spaces exactly as mpe2's SimpleEnv builds them
        self.observation_spaces, self.action_spaces = {}, {}
        for i, agent in enumerate(self.agents):
            if movable[i]:
                size = 2 * 2 + 1
            else:
                size = 0 if self.continuous else 1
            if not silent[i]:
                size = size + self.dim_c if self.continuous else size * self.dim_c
            self.action_spaces[agent] = (spaces.Box(low=0, high=1, shape=(size,)) if self.continuous
                                         else spaces.Discrete(size))
            self.observation_spaces[agent] = spaces.Box(
                low=-np.float32(np.inf), high=+np.float32(np.inf), shape=(int(obs_dims[i]),), dtype=np.float32)
        self._finish_spaces()
        if self.continuous:
            # where each agent's words start in its action vector: after the 5 movement entries
            start = torch.where(self.movable, 5, 0)
            self._comm_index = start[:, None] + torch.arange(self.dim_c, device=self.device)[None, :]

    # ---- actions -> force and words ---------------------------------------------------------------
    def _decode(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscaled movement [E, N, 2] and words [E, N, dim_c] from the agents' actions."""
        if self.continuous:
            move = torch.stack([actions[..., 2] - actions[..., 1], actions[..., 4] - actions[..., 3]], dim=-1)
            width = actions.shape[-1]
            words = torch.take_along_dim(actions, self._comm_index.clamp(max=width - 1).expand(
                actions.shape[0], -1, -1), dim=-1) if self.dim_c else actions[..., :0]
        else:
            move = self._directions[torch.where(self.movable, actions % 5, 0)]
            word = torch.where(self.movable, actions // 5, actions)
            words = self._eye_c[word][..., : self.dim_c]
        move = move * self.movable[None, :, None]
        words = words * (~self.silent)[None, :, None]
        return move, words

    # ---- physics ------------------------------------------------------------------------------------
    def _contact_forces(self) -> torch.Tensor:
        """[E, N, 2] soft contact forces on the agents: ``sum_j mag_ij (p_i - p_j)``, computed as
        ``p_i * sum_j mag_ij - sum_j mag_ij p_j`` (a batched matmul, no [E, R, C, 2] temporary)."""
        force = torch.zeros_like(self.pos)
        if not self._contacts:
            return force
        others = torch.cat([self.pos[:, self._col_agents], self.landmarks[:, self._col_landmarks]], dim=1)
        rows = self.pos[:, self._rows]
        dist = pair_distances(rows, others).masked_fill(~self._not_self, 1.0)  # [E, R, C]; 1: no 0/0 on self
        pen = soft_penetration(dist, self._contact_min, CONTACT_MARGIN)
        mag = (CONTACT_FORCE * pen / dist).masked_fill(~self._not_self, 0.0)
        force[:, self._rows] = rows * mag.sum(-1, keepdim=True) - torch.bmm(mag, others)
        return force

    def _advance(self, actions: torch.Tensor) -> None:
        move, words = self._decode(actions)
        force = move * self.sensitivity + self._contact_forces()
        moving = self.movable[None, :, None]
        new_pos = self.pos + self.vel * DT  # mpe2 moves with the old velocity first
        vel = self.vel * (1 - DAMPING) + force * DT  # every body has mass 1 in these scenarios
        if self.has_speed_cap:
            speed = torch.sqrt(vel[..., 0] * vel[..., 0] + vel[..., 1] * vel[..., 1])
            too_fast = speed > self.max_speed
            vel = torch.where(too_fast[..., None], vel / speed[..., None] * self.max_speed[..., None], vel)
        self.pos = torch.where(moving, new_pos, self.pos)
        self.vel = torch.where(moving, vel, self.vel)
        self.comm = words

    # ---- geometry helpers ---------------------------------------------------------------------------
    def landmark_offsets(self) -> torch.Tensor:
        """[E, N, L, 2]: landmark l relative to agent i."""
        return self.landmarks[:, None, :, :] - self.pos[:, :, None, :]

    def agent_offsets(self) -> torch.Tensor:
        """[E, N, N, 2]: agent j relative to agent i."""
        return self.pos[:, None, :, :] - self.pos[:, :, None, :]

    def positions(self) -> torch.Tensor:
        return self.pos.float()

    # ---- exactness tests: copy a live mpe2 world into env k -----------------------------------------
    def load_mpe_world(self, k: int, world) -> None:
        """Set env ``k`` to the state of an mpe2 ``World`` (positions, velocities, utterances)."""
        self.pos[k] = self.tensor(np.stack([a.state.p_pos for a in world.agents]))
        self.vel[k] = self.tensor(np.stack([a.state.p_vel for a in world.agents]))
        self.comm[k] = self.tensor(np.stack([a.state.c for a in world.agents]))
        if self.n_landmarks:
            self.landmarks[k] = self.tensor(np.stack([lm.state.p_pos for lm in world.landmarks]))
        self.t[k] = 0


# Beyond this many margins apart, the softened penetration margin * log(1 + exp(-gap / margin)) is
# below margin * 4e-18: taken as exactly 0, which lets large worlds skip the (slow) exp for far pairs.
FAR_GAPS = 40.0
_SPARSE_FROM = 50_000  # pairs; below this, evaluating every pair is cheaper than selecting


def soft_penetration(dist: torch.Tensor, min_dist, margin: float) -> torch.Tensor:
    """MPE's smoothed penetration depth ``margin * log(1 + exp((min_dist - dist) / margin))``,
    evaluated only for pairs closer than ``min_dist + FAR_GAPS * margin`` in large batches."""
    if dist.numel() < _SPARSE_FROM:
        return F.softplus((min_dist - dist) / margin) * margin
    gap = min_dist - dist
    close = gap > -FAR_GAPS * margin
    pen = torch.zeros_like(dist)
    pen[close] = F.softplus(gap[close] / margin) * margin
    return pen


def pair_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[E, P, Q] Euclidean distances between [E, P, 2] and [E, Q, 2] points, computed directly (not
    through the matmul expansion, which loses precision) and far faster than broadcasting and summing
    a size-2 axis."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def uniform_points(rng: np.random.Generator, count: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """``count`` 2-d points drawn one after another, as mpe2's reset loops draw them
    (``uniform(size=2)`` per entity reads the same stream as one draw of ``2 * count``)."""
    return rng.uniform(low, high, 2 * count).reshape(count, 2)
