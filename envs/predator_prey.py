"""``comm/predator_prey``: IC3Net's cooperative predator-prey with limited vision, as a ParallelEnv.

N predators (the agents) search a ``G x G`` grid for one stationary prey. Each predator sees only a
small window around itself, so whoever finds the prey has to tell the others where it is: without
communication the rest can only keep searching. A predator that reaches the prey's cell stays there
for the rest of the episode (as in IC3Net); the episode succeeds when every predator is on the prey.

Difficulty presets (``difficulty``, default ``"medium"``); any of ``n_agents``, ``grid_size``,
``vision``, ``max_cycles`` given explicitly (not ``None``) replaces the preset's value:

    ==========  ====  ==========  ======  ==========
    difficulty  G     predators   vision  max_cycles
    ==========  ====  ==========  ======  ==========
    easy        5     3           0       20
    medium      10    5           1       40
    hard        20    10          1       80
    ==========  ====  ==========  ======  ==========

Grid and moves
    Cells are ``(x, y)`` with ``0 <= x, y < G``. Actions (Discrete(5)): 0 stay, 1 up (``y + 1``),
    2 right (``x + 1``), 3 down (``y - 1``), 4 left (``x - 1``); a move off the grid is clipped (the
    predator stays on the edge). Predators may share cells. A predator on the prey's cell ignores its
    actions from then on (the prey never moves, so "on the prey" and "caught" are the same thing).

Reset
    The prey's cell is uniform over the grid; each predator's cell is uniform over the other
    ``G^2 - 1`` cells (one integer draw each, shifted past the prey's cell), so nobody starts on the
    prey. Draws, in order: ``rng.integers(G*G)`` for the prey, then ``rng.integers(G*G - 1, size=N)``.

Observation of a predator (float32, length ``3 + 3 (2w + 1)^2``; 30 with the default ``w = 1``)
    The window has radius ``w = window`` (default ``max(1, vision)``): every preset has the same
    observation size, so one policy runs on every difficulty and every N. Cells of the window farther
    than ``vision`` from the predator (Chebyshev distance) are not seen: all three of their entries are 0.

    ===================  ======  ==============================================================
    slice                size    content
    ===================  ======  ==============================================================
    ``[0:2]``            2       own cell normalised, ``(x, y) / (G - 1)``
    ``[2]``              1       1 if this predator is on the prey
    ``[3 + 3c + 0]``     1 each  window cell c: 1 if the prey is there
    ``[3 + 3c + 1]``     1 each  window cell c: number of *other* predators there, clipped at 3,
                                 divided by 3 (so 0, 1/3, 2/3, 1: the same meaning for any N)
    ``[3 + 3c + 2]``     1 each  window cell c: 1 if the cell lies outside the grid
    ===================  ======  ==============================================================

    Window cells are numbered row by row, ``c = (dy + w) (2w + 1) + (dx + w)`` for offsets
    ``dx, dy`` in ``-w..w`` (so ``dy = -w``, the row below, comes first; the predator's own cell is
    the centre, ``c = w (2w + 1) + w``).

Reward of a predator (per step, after the move)
    ``-0.05`` if it is not on the prey; ``+0.05 * k`` if it is, where ``k`` is the number of predators
    on the prey (IC3Net's cooperative mode: joining a crowd on the prey pays everyone in it more).

Success and infos
    ``infos[agent]``: ``success`` (1.0 once every predator is on the prey, else 0.0; they stay, so
    at the last step it is the episode's success), ``on_prey_fraction`` (fraction of predators on the
    prey) and ``on_prey`` (this predator).

Episode
    Truncated for everyone after ``max_cycles`` steps. With ``terminate_on_success`` the episode
    terminates for everyone as soon as every predator is on the prey.

``state()`` (float32, ``3 N + 2``): every predator's cell ``(x, y) / (G - 1)`` (``2 N``), then the
prey's cell ``/ (G - 1)`` (2), then each predator's on-prey flag (``N``). ``agent_positions()`` is
``[N, 2]`` cells ``(x, y)`` as floats (cell units). ``set_state(predators, prey)`` places everything by
hand. ``render()`` with ``render_mode="rgb_array"`` draws an ``H x W x 3`` uint8 frame (numpy only).

The module also exposes PettingZoo's usual constructors ``parallel_env(**kw)``, ``env(**kw)`` (AEC,
order-enforced) and ``raw_env(**kw)`` (AEC, unwrapped), so ``pettingzoo.test.max_cycles_test`` runs.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.constructors import pettingzoo_constructors

PRESETS = {
    "easy": {"grid_size": 5, "n_agents": 3, "vision": 0, "max_cycles": 20},
    "medium": {"grid_size": 10, "n_agents": 5, "vision": 1, "max_cycles": 40},
    "hard": {"grid_size": 20, "n_agents": 10, "vision": 1, "max_cycles": 80},
}
# action -> (dx, dy): stay, up, right, down, left
MOVES = np.array([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int64)
STEP_PENALTY = 0.05  # paid by every predator not on the prey, each step
PREY_REWARD = 0.05  # per predator on the prey, paid to each predator on it
COUNT_CLIP = 3  # other predators per window cell are counted up to this many
FEATURES_PER_CELL = 3
CELL_PIXELS = 24  # side of a grid cell in render()'s frame


def resolve_options(difficulty="medium", n_agents=None, grid_size=None, vision=None, max_cycles=None,
                    window=None) -> dict:
    """The preset of ``difficulty`` with the explicit (non-None) options replacing its values, checked."""
    if difficulty not in PRESETS:
        raise ValueError(f"difficulty must be one of {', '.join(PRESETS)} (got {difficulty!r})")
    given = {"n_agents": n_agents, "grid_size": grid_size, "vision": vision, "max_cycles": max_cycles}
    out = {**PRESETS[difficulty], **{k: int(v) for k, v in given.items() if v is not None}}
    out["window"] = max(1, out["vision"]) if window is None else int(window)
    if out["n_agents"] < 1:
        raise ValueError(f"n_agents must be >= 1 (got {out['n_agents']})")
    if out["grid_size"] < 2:
        raise ValueError(f"grid_size must be >= 2 (got {out['grid_size']})")
    if out["vision"] < 0 or out["max_cycles"] < 1:
        raise ValueError(f"vision must be >= 0 and max_cycles >= 1 (got {out['vision']}, {out['max_cycles']})")
    if out["window"] < out["vision"]:
        raise ValueError(f"window ({out['window']}) must be >= vision ({out['vision']}): the observation "
                         "has to hold every cell a predator sees")
    return out


def draw_cells(rng: np.random.Generator, n_agents: int, grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One episode's start: predators' cells [N, 2] and the prey's cell [2] (int64, ``(x, y)``).
    Shared by both backends so that a seed gives the same episode on either."""
    cells = grid_size * grid_size
    prey = int(rng.integers(cells))
    others = rng.integers(cells - 1, size=n_agents)
    predators = others + (others >= prey)  # skip the prey's cell: nobody starts on it
    return _cell_xy(predators, grid_size), _cell_xy(np.int64(prey), grid_size)


def _cell_xy(index, grid_size: int) -> np.ndarray:
    """Flat cell indices ``y * G + x`` -> ``(x, y)`` int64 ([..., 2])."""
    return np.stack([index % grid_size, index // grid_size], axis=-1).astype(np.int64)


def window_offsets(window: int) -> np.ndarray:
    """[C, 2] offsets ``(dx, dy)`` of the window's cells, row by row (dy outer, dx inner)."""
    span = np.arange(-window, window + 1)
    dy, dx = np.meshgrid(span, span, indexing="ij")
    return np.stack([dx.reshape(-1), dy.reshape(-1)], axis=1).astype(np.int64)


class PredatorPreyEnv(ParallelEnv):
    """N predators, one stationary prey, limited vision. See the module docstring."""

    metadata = {"name": "predator_prey_v0", "render_modes": ["rgb_array"], "is_parallelizable": True,
                "render_fps": 5}

    def __init__(self, difficulty: str = "medium", n_agents: int | None = None, grid_size: int | None = None,
                 vision: int | None = None, max_cycles: int | None = None, window: int | None = None,
                 terminate_on_success: bool = False, render_mode: str | None = None):
        opts = resolve_options(difficulty, n_agents, grid_size, vision, max_cycles, window)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None "
                             f"(got {render_mode!r})")
        self.difficulty = difficulty
        self.n = opts["n_agents"]
        self.grid_size = opts["grid_size"]
        self.vision = opts["vision"]
        self.max_cycles = opts["max_cycles"]
        self.window = opts["window"]
        self.terminate_on_success = bool(terminate_on_success)
        self.render_mode = render_mode

        self.possible_agents = [f"predator_{i}" for i in range(self.n)]
        self.agents: list[str] = []
        self.offsets = window_offsets(self.window)
        self.seen = np.abs(self.offsets).max(axis=1) <= self.vision  # [C] window cells within vision
        self.obs_dim = 3 + FEATURES_PER_CELL * len(self.offsets)
        self.state_space = spaces.Box(0.0, 1.0, shape=(3 * self.n + 2,), dtype=np.float32)
        self._rng = np.random.default_rng()
        self.t = 0
        self.pos = np.zeros((self.n, 2), dtype=np.int64)
        self.prey = np.zeros(2, dtype=np.int64)

    # ---- spaces -------------------------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, shape=(self.obs_dim,), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return spaces.Discrete(len(MOVES))

    # ---- reset / step -------------------------------------------------------------------------
    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.pos, self.prey = draw_cells(self._rng, self.n, self.grid_size)
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._as_dict(self._observations()), self._infos(self.on_prey())

    def step(self, actions):
        if not self.agents:
            return {}, {}, {}, {}, {}
        choice = np.zeros(self.n, dtype=np.int64)  # a missing (or None) action stays
        for i, a in enumerate(self.possible_agents):
            if actions.get(a) is not None:
                choice[i] = int(actions[a])
        if ((choice < 0) | (choice >= len(MOVES))).any():
            raise ValueError(f"actions must be in 0..{len(MOVES) - 1} (got {choice.tolist()})")
        caught = self.on_prey()
        moved = np.clip(self.pos + MOVES[choice], 0, self.grid_size - 1)
        self.pos = np.where(caught[:, None], self.pos, moved)
        self.t += 1

        on_prey = self.on_prey()
        reward = np.where(on_prey, PREY_REWARD * on_prey.sum(), -STEP_PENALTY)
        done = self.terminate_on_success and bool(on_prey.all())
        out_of_time = not done and self.t >= self.max_cycles
        obs = self._as_dict(self._observations())
        rewards = {a: float(r) for a, r in zip(self.possible_agents, reward)}
        terms = dict.fromkeys(self.possible_agents, done)
        truncs = dict.fromkeys(self.possible_agents, out_of_time)
        infos = self._infos(on_prey)
        if done or out_of_time:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    # ---- rules --------------------------------------------------------------------------------
    def on_prey(self) -> np.ndarray:
        """[N] bool: the predator is on the prey's cell (and so stays there)."""
        return (self.pos == self.prey).all(axis=1)

    def _observations(self) -> np.ndarray:
        """All predators' observations as one [N, obs_dim] float32 array (layout in the module docstring)."""
        g, w = self.grid_size, self.window
        cells = self.pos[:, None, :] + self.offsets[None]  # [N, C, 2]
        prey_here = (cells == self.prey).all(axis=2)
        outside = ((cells < 0) | (cells >= g)).any(axis=2)
        # other predators per window cell: each pair (i, j) within the window adds one to i's cell
        rel = self.pos[None, :, :] - self.pos[:, None, :]  # [N, N, 2]: p_j - p_i
        inside = (np.abs(rel).max(axis=2) <= w) & ~np.eye(self.n, dtype=bool)
        cell_index = (rel[..., 1] + w) * (2 * w + 1) + (rel[..., 0] + w)
        counts = np.zeros((self.n, len(self.offsets)))
        rows, cols = np.nonzero(inside)
        np.add.at(counts, (rows, cell_index[rows, cols]), 1.0)
        others = np.minimum(counts, COUNT_CLIP) / COUNT_CLIP
        window = np.stack([prey_here, others, outside], axis=2) * self.seen[None, :, None]
        own = np.concatenate([self.pos / (g - 1), self.on_prey()[:, None]], axis=1)
        return np.concatenate([own, window.reshape(self.n, -1)], axis=1).astype(np.float32)

    def _as_dict(self, obs: np.ndarray) -> dict:
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    def _infos(self, on_prey: np.ndarray) -> dict:
        success = float(on_prey.all())
        fraction = float(on_prey.mean())
        return {a: {"success": success, "on_prey_fraction": fraction, "on_prey": bool(on_prey[i])}
                for i, a in enumerate(self.possible_agents)}

    # ---- queries ------------------------------------------------------------------------------
    def success_rate(self) -> float:
        """1.0 if every predator is on the prey now (at an episode's end: its success), else 0.0."""
        return float(self.on_prey().all())

    def agent_positions(self) -> np.ndarray:
        """Predators' cells ``[N, 2]`` ``(x, y)`` as float32, in the order of ``possible_agents``."""
        return self.pos.astype(np.float32)

    def state(self) -> np.ndarray:
        scale = self.grid_size - 1
        return np.concatenate([self.pos.reshape(-1) / scale, self.prey / scale,
                               self.on_prey().astype(np.float64)]).astype(np.float32)

    def set_state(self, predators, prey) -> dict:
        """Place the predators ([N, 2] cells) and the prey ([2]) by hand; starts an episode at t=0 there
        and returns the observations."""
        pos = np.array(predators, dtype=np.int64).reshape(self.n, 2)
        prey = np.array(prey, dtype=np.int64).reshape(2)
        if (pos < 0).any() or (pos >= self.grid_size).any() or (prey < 0).any() or (prey >= self.grid_size).any():
            raise ValueError(f"cells must lie in 0..{self.grid_size - 1}")
        self.pos, self.prey = pos, prey
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._as_dict(self._observations())

    # ---- rendering ----------------------------------------------------------------------------
    def to_pixels(self, points) -> np.ndarray:
        """Cells ``(x, y)`` [..., 2] -> pixel centres ``(column, row)`` of ``render()``'s frame (y up)."""
        p = np.asarray(points, dtype=np.float64)
        c = CELL_PIXELS
        return np.stack([(p[..., 0] + 0.5) * c, (self.grid_size - 0.5 - p[..., 1]) * c], axis=-1)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        g, c = self.grid_size, CELL_PIXELS
        frame = np.full((g * c, g * c, 3), 255, dtype=np.uint8)

        def cell_box(x, y, inset=0):
            row = (g - 1 - y) * c  # y grows upwards
            return slice(row + inset, row + c - inset), slice(x * c + inset, x * c + c - inset)

        for x, y in self.pos:  # faint vision windows
            v = self.vision
            top, bottom = (g - 1 - min(g - 1, y + v)) * c, (g - max(0, y - v)) * c
            left, right = max(0, x - v) * c, (min(g - 1, x + v) + 1) * c
            region = frame[top:bottom, left:right]
            region[:] = np.minimum(region, np.array([225, 235, 250], dtype=np.uint8))
        frame[::c, :] = 200  # grid lines
        frame[:, ::c] = 200
        rows, cols = cell_box(*self.prey, inset=2)
        frame[rows, cols] = (220, 40, 40)
        inset = max(1, c // 4)
        for x, y in self.pos:
            rows, cols = cell_box(x, y, inset=inset)
            frame[rows, cols] = (40, 90, 200)
        return frame

    def close(self):
        pass


# ---- PettingZoo-style module constructors (e.g. for pettingzoo.test.max_cycles_test) -------------
parallel_env, raw_env, env = pettingzoo_constructors(PredatorPreyEnv)
