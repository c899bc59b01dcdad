"""The multi-robot warehouse (``rware`` 2.0.0) as a PettingZoo ParallelEnv of our own.

The ``rware`` package is a Gymnasium env with tuple observations and actions, one entry per robot.
:class:`RWAREParallelEnv` builds the package's own ``Warehouse`` and turns it into a ParallelEnv with
agents ``agent_0 .. agent_{n-1}`` (agent i is the package's robot i).

Robots drive around shelf blocks, pick up the currently requested shelves, carry them to the goal
cells at the bottom, and bring them back to any free shelf cell. Spaces and dynamics are the
package's:

- **Actions**: ``Discrete(5)``: 0 no-op, 1 forward, 2 turn left, 3 turn right, 4 toggle load
  (pick up the shelf under the robot / put the carried one down, not on a corridor). With
  ``msg_bits = b > 0`` each robot also writes b message bits that its neighbours observe; the
  package's ``MultiDiscrete([5, 2, ..., 2])`` action is flattened here into
  ``Discrete(5 * 2**b)``: action ``a`` is the move ``a % 5`` and the bits of ``a // 5``, lowest bit
  first.
- **Observations**: the package's *flattened* vector observation (``ObservationType.FLATTENED``,
  the one the named ``rware-*-v2`` tasks use), ``Box`` float32. For robot i: its ``(x, y)`` cell
  (x is the column, y the row from the top; divided by the grid's width/height - 1 with
  ``normalised_coordinates``), carrying a shelf (0/1), its direction one-hot (up, down, left,
  right), on a corridor (0/1); then for each of the ``(2 * sensor_range + 1)**2`` cells around it,
  row by row: a robot there (0/1), that robot's direction one-hot (``[1, 0, 0, 0]`` when none), its
  message bits (with ``msg_bits``), a shelf there (0/1), that shelf requested (0/1). Length
  ``8 + 7 * 9 = 71`` at the defaults. The package declares unbounded bounds; ours are the true ones
  (coordinates up to the grid size, everything else in [0, 1]).
- **Rewards**: ``reward_type="individual"`` (the named tasks'): +1 to the robot that delivers a
  requested shelf to a goal; ``"global"``: +1 to every robot for each delivery; ``"two_stage"``:
  +0.5 for the delivery and +0.5 for putting that shelf back afterwards. A delivered shelf is
  replaced in the request queue by one drawn uniformly from the others.
- **Episode end**: the task never ends on its own: every agent is truncated at ``max_cycles``. With
  ``max_inactivity_steps = k`` the episode also ends after k steps without a delivery; that is a
  termination (the rule ends the task, and nothing more can be earned).

``infos[agent]`` is an empty dict. There is no ``state()``
(the trainer's critic then takes the concatenated observations). ``agent_positions()`` gives each
robot's ``(x, y)`` cell. ``render()`` with ``render_mode="rgb_array"`` draws a frame with numpy (no
display); ``"human"`` is the package's own pyglet window and needs a display.

``reset(seed=s)`` seeds the package env's RNG (robot cells and headings, the request queue and its
refills), so an episode is a function of its seed and the actions.
"""

from __future__ import annotations

import warnings

import numpy as np
from gymnasium import spaces

from envs.constructors import pettingzoo_constructors
from envs.grid_adapter import GridPackageEnv

N_MOVES = 5
REWARD_TYPES = ("individual", "global", "two_stage")
CELL_PIXELS = 24  # side of a grid cell in render()'s frame
# robots in cool colours, shelves in warm ones (requested: red), so a robot on a shelf stands out
AGENT_COLOURS = np.array([(40, 90, 200), (130, 60, 180), (20, 140, 150), (60, 150, 60), (90, 90, 120),
                          (10, 60, 110), (170, 80, 170), (30, 110, 90)], dtype=np.uint8)
SHELF_COLOUR, REQUESTED_COLOUR = (235, 205, 150), (215, 50, 45)


class RWAREParallelEnv(GridPackageEnv):
    """See the module docstring. Options are the package's ``Warehouse`` arguments; ``max_cycles`` is
    its ``max_steps``, and ``request_queue_size=None`` is ``n_agents`` (the named tasks' "normal"
    difficulty; their ``-easy`` is ``2 * n_agents``, ``-hard`` is ``n_agents // 2``)."""

    cell_pixels = CELL_PIXELS
    metadata = {"name": "rware_v2", "render_modes": ["rgb_array", "human"], "is_parallelizable": True,
                "render_fps": 10}

    def __init__(self, n_agents: int = 2, shelf_columns: int = 3, shelf_rows: int = 1, column_height: int = 8,
                 request_queue_size: int | None = None, sensor_range: int = 1, msg_bits: int = 0,
                 max_cycles: int = 500, max_inactivity_steps: int | None = None, reward_type: str = "individual",
                 normalised_coordinates: bool = False, layout: str | None = None, render_mode: str | None = None):
        from rware.warehouse import ObservationType, RewardType, Warehouse

        self._set_render_mode(render_mode)
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type must be one of {', '.join(REWARD_TYPES)} (got {reward_type!r})")
        if n_agents < 1:
            raise ValueError(f"n_agents must be >= 1 (got {n_agents})")
        if max_cycles < 1:
            raise ValueError(f"max_cycles must be >= 1 (got {max_cycles})")
        if shelf_columns % 2 != 1 and layout is None:
            # the package removes the bottom-middle block for the goal queue: an even count has none
            raise ValueError(f"shelf_columns must be odd (got {shelf_columns})")
        if msg_bits < 0:
            raise ValueError(f"msg_bits must be >= 0 (got {msg_bits})")
        if max_inactivity_steps is not None and max_inactivity_steps < 1:
            raise ValueError(f"max_inactivity_steps must be >= 1 or None (got {max_inactivity_steps})")
        queue = n_agents if request_queue_size is None else int(request_queue_size)
        self.max_cycles = int(max_cycles)
        self.msg_bits = int(msg_bits)
        with warnings.catch_warnings():  # with normalised_coordinates the package casts a float64 Box: "precision"
            warnings.simplefilter("ignore", UserWarning)
            self.env = Warehouse(
                shelf_columns=shelf_columns,
                column_height=column_height,
                shelf_rows=shelf_rows,
                n_agents=n_agents,
                msg_bits=self.msg_bits,
                sensor_range=sensor_range,
                request_queue_size=queue,
                max_inactivity_steps=max_inactivity_steps,
                max_steps=self.max_cycles,
                reward_type={"individual": RewardType.INDIVIDUAL, "global": RewardType.GLOBAL,
                             "two_stage": RewardType.TWO_STAGE}[reward_type],
                layout=layout,
                observation_type=ObservationType.FLATTENED,
                normalised_coordinates=normalised_coordinates,
                render_mode="human" if render_mode == "human" else None,
            )
        n_shelves = int((1 - self.env.highways).sum())
        if not 1 <= queue < n_shelves:
            raise ValueError(f"request_queue_size must be in 1..{n_shelves - 1} for this warehouse (got {queue})")
        if n_agents > self.env.grid_size[0] * self.env.grid_size[1]:
            raise ValueError(f"{n_agents} robots do not fit on a {self.env.grid_size} grid")
        self.request_queue_size = queue
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        height, width = self.env.grid_size
        dim = int(self.env.observation_space[0].shape[0])
        high = np.ones(dim, dtype=np.float32)
        if not normalised_coordinates:
            high[0], high[1] = width - 1, height - 1
        obs_space = spaces.Box(np.zeros(dim, np.float32), high, dtype=np.float32)
        self._obs_spaces = {a: obs_space for a in self.possible_agents}
        self._act_spaces = {a: spaces.Discrete(N_MOVES * 2 ** self.msg_bits) for a in self.possible_agents}
        self.steps = 0

    # ---- episode ---------------------------------------------------------------------------------

    def reset(self, seed=None, options=None):
        nobs, _ = self.env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        self.steps = 0
        return self._as_dict(nobs), {a: {} for a in self.agents}

    def _package_action(self, agent: str, action) -> int | np.ndarray:
        act = int(action)
        n = self._act_spaces[agent].n
        if not 0 <= act < n:
            raise ValueError(f"{agent} chose action {act!r}; valid actions are 0..{n - 1}")
        if not self.msg_bits:
            return act
        code = act // N_MOVES
        return np.array([act % N_MOVES, *((code >> k) & 1 for k in range(self.msg_bits))])

    def step(self, actions):
        self._check_step(actions)
        joint = [self._package_action(a, actions[a]) for a in self.possible_agents]
        nobs, rewards, done, _, _ = self.env.step(joint)
        self.steps += 1
        timeout = bool(done and self.steps >= self.env.max_steps)
        inactive = bool(done and not timeout)
        obs = self._as_dict(nobs)
        rew = {a: float(r) for a, r in zip(self.possible_agents, rewards)}
        terms = {a: inactive for a in self.agents}
        truncs = {a: timeout for a in self.agents}
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rew, terms, truncs, infos

    # ---- global views ----------------------------------------------------------------------------

    def agent_positions(self) -> np.ndarray:
        """Each robot's ``(x, y)`` cell (column, row from the top), [N, 2] in agent order."""
        return np.array([(r.x, r.y) for r in self.env.agents], dtype=np.float32)

    def draw(self) -> np.ndarray:
        height, width = self.env.grid_size
        c = CELL_PIXELS
        frame = np.full((height * c, width * c, 3), 255, dtype=np.uint8)
        frame[::c, :] = 215  # grid lines
        frame[:, ::c] = 215
        for x, y in self.env.goals:
            frame[y * c + 1:(y + 1) * c, x * c + 1:(x + 1) * c] = (60, 60, 60)
        requested = {id(s) for s in self.env.request_queue}
        for s in self.env.shelfs:
            colour = REQUESTED_COLOUR if id(s) in requested else SHELF_COLOUR
            frame[s.y * c + 3:(s.y + 1) * c - 2, s.x * c + 3:(s.x + 1) * c - 2] = colour
        inset = c // 4
        for i, r in enumerate(self.env.agents):
            top, left = r.y * c, r.x * c
            frame[top + inset - 1:top + c - inset + 1, left + inset - 1:left + c - inset + 1] = 0  # outline
            frame[top + inset:top + c - inset, left + inset:left + c - inset] = AGENT_COLOURS[i % len(AGENT_COLOURS)]
            # heading: a dark tick on the side the robot faces (Direction: up, down, left, right)
            mid, t = c // 2, max(2, c // 8)
            d = r.dir.value
            if d == 0:
                frame[top + inset:top + inset + t, left + mid - t:left + mid + t] = 0
            elif d == 1:
                frame[top + c - inset - t:top + c - inset, left + mid - t:left + mid + t] = 0
            elif d == 2:
                frame[top + mid - t:top + mid + t, left + inset:left + inset + t] = 0
            else:
                frame[top + mid - t:top + mid + t, left + c - inset - t:left + c - inset] = 0
        return frame


# ---- PettingZoo-style module constructors (e.g. for pettingzoo.test.max_cycles_test) -------------
parallel_env, raw_env, env = pettingzoo_constructors(RWAREParallelEnv)
