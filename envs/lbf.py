"""Level-Based Foraging (``lbforaging`` 2.0.0) as a PettingZoo ParallelEnv of our own.

The ``lbforaging`` package is a Gymnasium env with tuple observations and actions, one entry per
player. :class:`LBFParallelEnv` builds the package's own ``ForagingEnv`` and turns it into a
ParallelEnv with agents ``agent_0 .. agent_{n-1}`` (agent i is the package's player i).

Spaces and dynamics are the package's:

- **Actions**: ``Discrete(6)``: 0 none, 1 north (row - 1), 2 south (row + 1), 3 west (col - 1),
  4 east (col + 1), 5 load. An action the package deems invalid (a move into food or off the
  field, a load with no adjacent food) becomes "none", as in the package.
- **Observations**: the package's vector observation, ``Box`` float32 of length
  ``3 * max_food + 3 * n_agents``: ``(row, col, level)`` of each food the player sees, then of each
  player it sees (itself first), in the coordinates of its ``sight`` window; ``(-1, -1, 0)`` for
  food and players it does not see. ``sight >= field_size`` sees the whole field. (The package's
  grid observation mode fails to build under Gymnasium 1.x, so it is not offered.)
- **Rewards**: per agent. A food of level L loaded by players of total level S pays each of them
  ``level * L``, divided by ``S * (sum of the food levels spawned)`` when ``normalize_reward``
  (then a team that clears the field earns 1 in total). A failed load costs ``penalty``.
- **Episode end**: ``terminations`` when the last food is loaded (the task is done),
  ``truncations`` at ``max_cycles`` steps with food left; every agent ends together.

``infos[agent]`` carries ``success`` (1.0 once every food is loaded) and ``food_collected`` (the
fraction of the spawned food levels loaded so far). ``state()`` is the whole field in absolute
coordinates: ``(row, col, level)`` of every food slot (``(-1, -1, 0)`` once loaded), then of every
player in agent order. ``agent_positions()`` gives each player's ``(col, row)``. ``render()`` with
``render_mode="rgb_array"`` draws a frame with numpy (no display); ``"human"`` is the package's
own pyglet window and needs a display.

``reset(seed=s)`` seeds the package env's RNG, so an episode is a function of its seed and the
actions.
"""

from __future__ import annotations

import warnings

import numpy as np
from gymnasium import spaces

from envs.constructors import pettingzoo_constructors
from envs.grid_adapter import GridPackageEnv

N_ACTIONS = 6
CELL_PIXELS = 32  # side of a field cell in render()'s frame
AGENT_COLOURS = np.array([(40, 90, 200), (220, 120, 30), (150, 60, 170), (30, 150, 150), (200, 60, 90),
                          (110, 110, 40), (90, 160, 60), (120, 80, 50), (70, 70, 70)], dtype=np.uint8)


def field_shape(field_size) -> tuple[int, int]:
    """``(rows, cols)`` from an int (a square field) or a pair."""
    if isinstance(field_size, (int, np.integer)):
        return int(field_size), int(field_size)
    rows, cols = field_size
    return int(rows), int(cols)


def draw_pips(frame: np.ndarray, top: int, left: int, size: int, count: int, colour=(255, 255, 255)) -> None:
    """``count`` small squares in a row inside the square cell at (top, left): a level, drawn without text."""
    count = int(min(count, 6))
    if count <= 0:
        return
    pip = max(2, size // 10)
    gap = pip
    width = count * pip + (count - 1) * gap
    x0 = left + (size - width) // 2
    y0 = top + (size - pip) // 2
    for k in range(count):
        x = x0 + k * (pip + gap)
        frame[y0:y0 + pip, x:x + pip] = colour


class LBFParallelEnv(GridPackageEnv):
    """See the module docstring. Options are the package's, named as in our registry:
    ``n_agents`` (players), ``field_size`` (int or (rows, cols)), ``max_food`` (max_num_food),
    ``sight`` (None: the whole field), ``max_cycles`` (max_episode_steps)."""

    cell_pixels = CELL_PIXELS
    metadata = {"name": "lbf_v3", "render_modes": ["rgb_array", "human"], "is_parallelizable": True,
                "render_fps": 5}

    def __init__(self, n_agents: int = 2, field_size=8, max_food: int = 2, sight: int | None = None,
                 max_cycles: int = 50, force_coop: bool = False, min_player_level=1, max_player_level=2,
                 min_food_level=1, max_food_level=None, penalty: float = 0.0, normalize_reward: bool = True,
                 observe_agent_levels: bool = True, render_mode: str | None = None):
        from lbforaging.foraging.environment import ForagingEnv

        self._set_render_mode(render_mode)
        if n_agents < 1:
            raise ValueError(f"n_agents must be >= 1 (got {n_agents})")
        if max_food < 1:
            raise ValueError(f"max_food must be >= 1 (got {max_food})")
        if max_cycles < 1:
            raise ValueError(f"max_cycles must be >= 1 (got {max_cycles})")
        rows, cols = field_shape(field_size)
        if min(rows, cols) < 3:
            raise ValueError(f"field_size must be at least 3x3 (food spawns away from the edges; got {field_size})")
        self.field_size = (rows, cols)
        self.sight = int(max(rows, cols) if sight is None else sight)
        if self.sight < 1:
            raise ValueError(f"sight must be >= 1 or None (got {sight})")
        self.max_cycles = int(max_cycles)
        with warnings.catch_warnings():  # the package builds its Box from int lists: "precision lowered"
            warnings.simplefilter("ignore", UserWarning)
            self.env = ForagingEnv(
                players=n_agents,
                min_player_level=min_player_level,
                max_player_level=max_player_level,
                min_food_level=min_food_level,
                max_food_level=max_food_level,
                field_size=(rows, cols),
                max_num_food=max_food,
                sight=self.sight,
                max_episode_steps=self.max_cycles,
                force_coop=force_coop,
                normalize_reward=normalize_reward,
                grid_observation=False,
                observe_agent_levels=observe_agent_levels,
                penalty=penalty,
                render_mode="human" if render_mode == "human" else None,
            )
        self.max_food = int(max_food)
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        box = self.env.observation_space[0]
        self._obs_space = spaces.Box(np.asarray(box.low, np.float32), np.asarray(box.high, np.float32),
                                     dtype=np.float32)
        self._obs_spaces = {a: self._obs_space for a in self.possible_agents}
        self._act_spaces = {a: spaces.Discrete(N_ACTIONS) for a in self.possible_agents}
        levels = max(np.max(self.env.max_player_level), 1)
        food_high = (np.max(self.env.max_food_level) if self.env.max_food_level is not None
                     else np.sum(np.sort(self.env.max_player_level)[:3]))
        slots = self.max_food + n_agents
        high = np.tile(np.array([rows - 1, cols - 1, 0], np.float32), slots)
        high[2::3] = [food_high] * self.max_food + [levels] * n_agents
        self.state_space = spaces.Box(np.full(3 * slots, -1, np.float32), high, dtype=np.float32)
        self._food_slots = np.full((self.max_food, 3), (-1, -1, 0), dtype=np.float32)
        self.steps = 0

    # ---- episode ---------------------------------------------------------------------------------

    def reset(self, seed=None, options=None):
        nobs, _ = self.env.reset(seed=seed)
        self.steps = 0
        self.agents = list(self.possible_agents)
        # fixed food slots for state(): where each food spawned, in spawn-scan order
        rows, cols = np.nonzero(self.env.field)
        self._food_slots[:] = (-1, -1, 0)
        for k, (r, c) in enumerate(zip(rows, cols)):
            self._food_slots[k] = (r, c, self.env.field[r, c])
        return self._as_dict(nobs), self._infos()

    def step(self, actions):
        self._check_step(actions)
        joint = []
        for a in self.possible_agents:
            act = int(actions[a])
            if not 0 <= act < N_ACTIONS:
                raise ValueError(f"{a} chose action {act!r}; valid actions are 0..{N_ACTIONS - 1}")
            joint.append(act)
        nobs, rewards, done, _, _ = self.env.step(joint)
        self.steps += 1
        cleared = bool(self.env.field.sum() == 0)
        timeout = bool(done and not cleared)
        for slot in self._food_slots:
            if slot[2] > 0 and self.env.field[int(slot[0]), int(slot[1])] == 0:
                slot[:] = (-1, -1, 0)
        obs = self._as_dict(nobs)
        rew = {a: float(r) for a, r in zip(self.possible_agents, rewards)}
        terms = {a: cleared for a in self.agents}
        truncs = {a: timeout for a in self.agents}
        infos = self._infos()
        if done:
            self.agents = []
        return obs, rew, terms, truncs, infos

    def food_collected(self) -> float:
        spawned = float(self.env._food_spawned)  # noqa: SLF001  (the package keeps it private)
        return 1.0 - float(self.env.field.sum()) / spawned if spawned > 0 else 1.0

    def _infos(self) -> dict:
        collected = self.food_collected()
        info = {"success": float(self.env.field.sum() == 0), "food_collected": collected}
        return {a: dict(info) for a in self.possible_agents}

    # ---- global views ----------------------------------------------------------------------------

    def state(self) -> np.ndarray:
        players = np.array([(*p.position, p.level) for p in self.env.players], dtype=np.float32)
        return np.concatenate([self._food_slots.reshape(-1), players.reshape(-1)])

    def agent_positions(self) -> np.ndarray:
        """Each player's ``(col, row)`` cell, [N, 2] in agent order."""
        return np.array([(p.position[1], p.position[0]) for p in self.env.players], dtype=np.float32)

    def draw(self) -> np.ndarray:
        rows, cols = self.field_size
        c = CELL_PIXELS
        frame = np.full((rows * c, cols * c, 3), 255, dtype=np.uint8)
        frame[::c, :] = 210  # grid lines
        frame[:, ::c] = 210
        for r, col in zip(*np.nonzero(self.env.field)):
            top, left = r * c, col * c
            frame[top + 3:top + c - 2, left + 3:left + c - 2] = (60, 170, 70)
            draw_pips(frame, top, left, c, self.env.field[r, col])
        if self.env.players[0].position is not None:
            for i, p in enumerate(self.env.players):
                top, left = p.position[0] * c, p.position[1] * c
                inset = c // 6
                frame[top + inset:top + c - inset, left + inset:left + c - inset] = AGENT_COLOURS[
                    i % len(AGENT_COLOURS)]
                draw_pips(frame, top, left, c, p.level)
        return frame


# ---- PettingZoo-style module constructors (e.g. for pettingzoo.test.max_cycles_test) -------------
parallel_env, raw_env, env = pettingzoo_constructors(LBFParallelEnv)
