"""``comm/traffic_junction``: the Traffic Junction task of CommNet / IC3Net / TarMAC, as a ParallelEnv.

Cars enter a grid of one-cell-wide lanes, follow a fixed route through one or more junctions and
leave. Each car only chooses between braking and moving on; it sees (almost) only itself, so avoiding
crashes in the junctions needs the cars to tell each other where they are and where they go.

Grid and coordinates
    A ``G x G`` grid of cells ``(x, y)``, ``x`` the column, ``y`` the row; ``y`` grows downward, so
    "top -> bottom" means ``+y``. Every lane is one row or column driven in one direction; two-way roads
    are two adjacent lanes with right-hand traffic (a car moving ``+x`` drives on the lower of the two
    rows). ``difficulty`` picks the preset; ``n_agents``, ``max_cycles`` and ``add_rate`` override it.

    ==========  =====  ======  ==========  ========  ================================================
    difficulty  G      N cars  max_cycles  add_rate  roads, entries and routes
    ==========  =====  ======  ==========  ========  ================================================
    easy        6      5       20          0.3       one-way row 3 (``+x``) and one-way column 3
                                                     (``+y``): 2 entries, straight routes only (2)
    medium      14     10      40          0.2       two-way rows 6/7 and columns 6/7: 4 entries,
                                                     each straight, left or right (12 routes)
    hard        18     20      80          0.05      two-way rows 5/6, 11/12, columns 5/6, 11/12:
                                                     4 junctions, 8 entries, each straight or one
                                                     turn onto any crossing lane (40 routes)
    ==========  =====  ======  ==========  ========  ================================================

    A route is the list of cells from its entry (the lane's first cell, on the grid's edge) to its exit
    (a last cell on the edge); a turning route follows its lane up to the crossing lane and that lane
    from there. Entries, and each entry's routes, are in a fixed order (``layout``).

Cars and slots
    The N agents are car *slots*. Each step, after the cars have moved, each entry in turn (in their
    order) lets a new car in with probability ``add_rate`` if a slot is free; the car takes the lowest
    free slot and a route of that entry drawn uniformly. It enters even if a car stands on the entry
    cell (as in IC3Net), which is then a collision: parking on the entry does not stop the traffic. A
    slot whose car left in this step is free again only from the next step, so every car's life in a
    slot is separated from the next car's by at least one step off the road (the alive mask sees where
    cars change). The whole episode's random numbers are drawn at ``reset``: uniforms ``[max_cycles,
    entries]`` (row 0 spawns the cars present at the start, row t those entering after step t) and
    route choices of the same shape, so both backends play the same episode from a seed.

Actions
    ``Discrete(2)``: 0 = brake (stay), 1 = gas (move one cell along the route). A car that moves past
    its route's last cell leaves the grid and its slot becomes free. Slots without a car ignore their
    action (a missing action counts as brake).

Observation of each slot (float32, ``13`` values, ``13 + (2v+1)^2`` with ``vision = v >= 1``)
    =================  =====  ========================================================================
    slice              size   content
    =================  =====  ========================================================================
    ``[0]``            1      active: 1 if the slot has a car on the road
    ``[1]``            1      the car's last action (0 on its first step)
    ``[2:4]``          2      its cell ``(x, y) / (G - 1)``
    ``[4:8]``          4      heading one-hot, the direction of its next move: ``+x, +y, -x, -y``
                              (on the route's last cell: the direction it leaves in)
    ``[8:11]``         3      its route's turn one-hot: straight, left, right
    ``[11]``           1      progress along the route, ``cell index / (route length - 1)``
    ``[12]``           1      ``tau / max_cycles``, tau = steps since the car entered
    ``[13:]``          W      with ``vision >= 1``: the number of *other* cars in each cell of the
                              ``(2v+1) x (2v+1)`` window centred on the car, rows (``dy``) then
                              columns (``dx``) from ``-v`` to ``+v``; cells off the grid count 0
    =================  =====  ========================================================================

    A slot without a car observes all zeros: its flag says it is off the road, and its action does not
    matter. Nothing depends on G or N, so one policy plays every difficulty and car count.

Reward of each slot (per step)
    ``-0.01 * tau`` for a car on the road during the step (tau = 1 on its first step; a car leaving in
    this step still pays it), and ``-10`` more if, in the state reached (after the moves and the new
    arrivals), its cell holds another car: a collision (the cars carry on). A slot without a car during
    the step gets 0, including a car that has just entered (it has not acted yet; its crash still
    counts for success, and the car standing on the entry pays for it).

Success and episode
    ``infos[agent]["success"]`` is 1.0 until the first collision of the episode and 0.0 from then on.
    All agents are truncated together after ``max_cycles`` steps; nothing terminates early.
    ``infos[agent]`` also has ``active`` (the slot has a car now), ``collided`` (its car shares a cell
    with another in the state reached) and ``tau``.

``state()`` concatenates every slot's observation (``N * obs_dim`` floats). ``agent_positions()`` is
each car's cell ``(x, y)``; slot i without a car sits at ``(-100 (i + 1), -100)``, far from the grid and
from the other empty slots, so radius graphs never link it (knn only when fewer than k other cars are
on the road; the alive mask drops those edges). ``active_agents()`` is the bool ``[N]`` of slots with a
car on the road now. ``set_state(...)`` places cars by hand (tests).
``render()`` with ``render_mode="rgb_array"`` draws the grid (numpy only).

The module also exposes PettingZoo's usual constructors ``parallel_env(**kw)``, ``env(**kw)`` (AEC,
order-enforced) and ``raw_env(**kw)`` (AEC, unwrapped), so ``pettingzoo.test.max_cycles_test(envs.
traffic_junction)`` runs as on PettingZoo's own environments.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.constructors import pettingzoo_constructors

# grid size, number of car slots, episode length, spawn probability per entry and step
DIFFICULTIES = {
    "easy": {"grid": 6, "n_agents": 5, "max_cycles": 20, "add_rate": 0.3},
    "medium": {"grid": 14, "n_agents": 10, "max_cycles": 40, "add_rate": 0.2},
    "hard": {"grid": 18, "n_agents": 20, "max_cycles": 80, "add_rate": 0.05},
}
# heading ids: +x, +y, -x, -y (y grows downward)
HEADINGS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
TURNS = ("straight", "left", "right")
TIME_PENALTY = 0.01
COLLISION_PENALTY = 10.0
OWN_OBS = 13
# where an empty slot i "is": far from the grid and from the other empty slots
OFF_ROAD = -100.0


@dataclass(frozen=True)
class Route:
    entry: int
    turn: int  # index into TURNS
    cells: np.ndarray  # [L, 2] int (x, y)
    headings: np.ndarray  # [L] heading id of each cell (route_headings)


def _route(entry: int, turn: int, cells: np.ndarray) -> Route:
    return Route(entry, turn, cells, route_headings(cells))


@dataclass(frozen=True)
class RoadLayout:
    """The roads of one difficulty: entries (cells), and routes grouped by entry."""

    grid: int
    entry_cells: np.ndarray  # [K, 2]
    routes: tuple[Route, ...]
    entry_routes: np.ndarray  # [K, M] route ids, M routes per entry

    @property
    def n_entries(self) -> int:
        return len(self.entry_cells)

    @property
    def road_cells(self) -> np.ndarray:
        """[G, G] bool (indexed [y, x]): the cells some route passes."""
        road = np.zeros((self.grid, self.grid), dtype=bool)
        for r in self.routes:
            road[r.cells[:, 1], r.cells[:, 0]] = True
        return road

    def route_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Padded per-route arrays: cells [R, L_max, 2] (padded with the last cell), lengths [R],
        heading ids [R, L_max] and turn ids [R]."""
        longest = max(len(r.cells) for r in self.routes)
        cells = np.zeros((len(self.routes), longest, 2), dtype=np.int64)
        heading = np.zeros((len(self.routes), longest), dtype=np.int64)
        for k, r in enumerate(self.routes):
            cells[k, : len(r.cells)] = r.cells
            cells[k, len(r.cells):] = r.cells[-1]
            heading[k, : len(r.cells)] = r.headings
            heading[k, len(r.cells):] = heading[k, len(r.cells) - 1]
        lengths = np.array([len(r.cells) for r in self.routes], dtype=np.int64)
        turns = np.array([r.turn for r in self.routes], dtype=np.int64)
        return cells, lengths, heading, turns


def route_headings(cells: np.ndarray) -> np.ndarray:
    """Heading id of each cell of a route: the step to the next cell; the last cell repeats the
    previous step (the car leaves the grid in that direction)."""
    steps = np.diff(cells, axis=0)
    steps = np.concatenate([steps, steps[-1:]], axis=0)
    return np.array([int(np.flatnonzero((HEADINGS == s).all(axis=1))[0]) for s in steps], dtype=np.int64)


def _lane_cells(grid: int, heading: int, line: int) -> np.ndarray:
    """All cells of a lane driven in direction ``heading`` along row/column ``line``, in driving order."""
    along = np.arange(grid) if HEADINGS[heading].sum() > 0 else np.arange(grid)[::-1]
    fixed = np.full(grid, line)
    horizontal = HEADINGS[heading][0] != 0
    return np.stack([along, fixed] if horizontal else [fixed, along], axis=1)


def _turn_kind(heading_in: int, heading_out: int) -> int:
    # with y downward a positive cross product is a clockwise turn, i.e. to the right
    a, b = HEADINGS[heading_in], HEADINGS[heading_out]
    cross = a[0] * b[1] - a[1] * b[0]
    return TURNS.index("straight" if cross == 0 else ("right" if cross > 0 else "left"))


def build_layout(difficulty: str) -> RoadLayout:
    """The lanes of a difficulty and every route: straight along each lane and (except on easy) one
    turn onto each crossing lane."""
    grid = DIFFICULTIES[difficulty]["grid"]
    if difficulty == "easy":
        mid = grid // 2
        lanes = [(0, mid), (1, mid)]  # +x along row mid, +y along column mid
        turning = False
    else:
        # right-hand traffic with y downward: +x on the lower row, -x on the upper; +y on the left
        # column, -y on the right one
        pairs = [grid // 2 - 1] if difficulty == "medium" else [5, 11]
        lanes = [(0, p + 1) for p in pairs] + [(1, p) for p in pairs] + [(2, p) for p in pairs] \
            + [(3, p + 1) for p in pairs]
        turning = True
    routes: list[Route] = []
    entry_cells, entry_routes = [], []
    for entry, (heading, line) in enumerate(lanes):
        cells = _lane_cells(grid, heading, line)
        entry_cells.append(cells[0])
        ids = [len(routes)]
        routes.append(_route(entry, TURNS.index("straight"), cells))
        if turning:
            for other_heading, other_line in lanes:
                if HEADINGS[other_heading] @ HEADINGS[heading] != 0:
                    continue  # parallel lane
                other = _lane_cells(grid, other_heading, other_line)
                at, join = np.argwhere((cells[:, None, :] == other[None, :, :]).all(-1))[0]  # the crossing cell
                ids.append(len(routes))
                routes.append(_route(entry, _turn_kind(heading, other_heading),
                                     np.concatenate([cells[: at + 1], other[join + 1:]], axis=0)))
        entry_routes.append(ids)
    return RoadLayout(grid, np.array(entry_cells, dtype=np.int64), tuple(routes),
                      np.array(entry_routes, dtype=np.int64))


@functools.lru_cache(maxsize=None)
def layout_of(difficulty: str) -> RoadLayout:
    return build_layout(difficulty)


def resolve_options(difficulty: str, n_agents, max_cycles, add_rate, vision) -> tuple[int, int, float, int]:
    """The preset's values where an option is None; checks every option."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)} (got {difficulty!r})")
    preset = DIFFICULTIES[difficulty]
    n = preset["n_agents"] if n_agents is None else int(n_agents)
    cycles = preset["max_cycles"] if max_cycles is None else int(max_cycles)
    rate = preset["add_rate"] if add_rate is None else float(add_rate)
    if n < 1 or cycles < 1:
        raise ValueError(f"n_agents and max_cycles must be >= 1 (got {n}, {cycles})")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"add_rate must be in [0, 1] (got {rate})")
    if int(vision) != vision or vision < 0:
        raise ValueError(f"vision must be an integer >= 0 (got {vision!r})")
    return n, cycles, rate, int(vision)


def draw_schedule(rng: np.random.Generator, max_cycles: int, layout: RoadLayout) -> tuple[np.ndarray, np.ndarray]:
    """The episode's spawn uniforms and route choices, ``[max_cycles, entries]`` each (one draw order
    shared by both backends)."""
    shape = (max_cycles, layout.n_entries)
    spawn_u = rng.random(shape)
    spawn_route = rng.integers(0, layout.entry_routes.shape[1], size=shape)
    return spawn_u, spawn_route


def observation_dim(vision: int) -> int:
    return OWN_OBS + ((2 * vision + 1) ** 2 if vision > 0 else 0)


class TrafficJunctionEnv(ParallelEnv):
    """N car slots on the roads of a difficulty preset. See the module docstring."""

    metadata = {"name": "traffic_junction_v0", "render_modes": ["rgb_array"], "is_parallelizable": True,
                "render_fps": 5}

    def __init__(self, difficulty: str = "medium", n_agents: int | None = None, max_cycles: int | None = None,
                 add_rate: float | None = None, vision: int = 0, render_mode: str | None = None,
                 cell_pixels: int = 24):
        self.n, self.max_cycles, self.add_rate, self.vision = resolve_options(
            difficulty, n_agents, max_cycles, add_rate, vision)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None "
                             f"(got {render_mode!r})")
        self.difficulty = difficulty
        self.layout = layout_of(difficulty)
        self.grid = self.layout.grid
        self.render_mode = render_mode
        self.cell_pixels = int(cell_pixels)
        self.obs_dim = observation_dim(self.vision)
        self.possible_agents = [f"agent_{i}" for i in range(self.n)]
        self.agents: list[str] = []
        self.state_space = spaces.Box(
            np.tile(self.observation_space(None).low, self.n), np.tile(self.observation_space(None).high, self.n),
            dtype=np.float32)
        self._rng = np.random.default_rng()
        self._set_empty()
        self.last_success = float("nan")  # success of the most recent episode that ended

    def _set_empty(self) -> None:
        n = self.n
        self.route = np.zeros(n, dtype=np.int64)
        self.progress = np.zeros(n, dtype=np.int64)
        self.active = np.zeros(n, dtype=bool)
        self.tau = np.zeros(n, dtype=np.int64)
        self.last_action = np.zeros(n, dtype=np.int64)
        self.collided = np.zeros(n, dtype=bool)
        self.crashed = False
        self.t = 0
        self.spawn_u = np.ones((self.max_cycles, self.layout.n_entries))
        self.spawn_route = np.zeros((self.max_cycles, self.layout.n_entries), dtype=np.int64)

    # ---- spaces -------------------------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        # window counts are bounded only by N; an unbounded high keeps the space the same for every N
        high = np.concatenate([np.ones(OWN_OBS), np.full(self.obs_dim - OWN_OBS, np.inf)])
        return spaces.Box(np.zeros(self.obs_dim, dtype=np.float32), high.astype(np.float32), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return spaces.Discrete(2)

    # ---- reset / step -------------------------------------------------------------------------
    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.start_episode(self._rng)
        self.agents = list(self.possible_agents)
        return self._as_dict(self._observations()), self._infos()

    def start_episode(self, rng: np.random.Generator) -> None:
        """The draws of ``reset``: the episode's schedule, then the cars of its row 0."""
        self._set_empty()
        self.spawn_u, self.spawn_route = draw_schedule(rng, self.max_cycles, self.layout)
        self._spawn(0, blocked=np.zeros(self.n, dtype=bool))

    def _actions(self, actions) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.int64)
        for i, a in enumerate(self.possible_agents):
            act = actions.get(a)
            if act is None:
                continue
            if int(act) not in (0, 1):
                raise ValueError(f"actions are 0 (brake) or 1 (gas); {a} got {act!r}")
            out[i] = int(act)
        return out

    def step(self, actions):
        if not self.agents:
            return {}, {}, {}, {}, {}
        act = self._actions(actions)
        on_road = self.active.copy()  # the cars that take part in this step
        lengths = np.array([len(self.layout.routes[r].cells) for r in self.route])
        self.progress = self.progress + (on_road & (act == 1))
        leaving = on_road & (self.progress >= lengths)
        self.tau = np.where(on_road, self.tau + 1, 0)
        reward = np.where(on_road, -TIME_PENALTY * self.tau, 0.0)
        self.active = on_road & ~leaving
        self.last_action = np.where(self.active, act, 0)
        self.progress[~self.active] = 0
        self.tau[~self.active] = 0
        self.route[~self.active] = 0
        self.t += 1
        if self.t < self.max_cycles:
            self._spawn(self.t, blocked=leaving)

        counts = self._occupancy()
        cells = self._cells()
        self.collided = self.active & (counts[cells[:, 1], cells[:, 0]] >= 2)
        reward = reward - COLLISION_PENALTY * (self.collided & on_road)
        self.crashed = self.crashed or bool(self.collided.any())

        out_of_time = self.t >= self.max_cycles
        obs = self._as_dict(self._observations())
        rewards = {a: float(r) for a, r in zip(self.possible_agents, reward)}
        terms = dict.fromkeys(self.possible_agents, False)
        truncs = dict.fromkeys(self.possible_agents, out_of_time)
        infos = self._infos()
        if out_of_time:
            self.last_success = self.success()
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _spawn(self, row: int, blocked: np.ndarray) -> None:
        """Row ``row`` of the schedule: each entry in order may let one car in (module docstring)."""
        for entry in range(self.layout.n_entries):
            if self.spawn_u[row, entry] >= self.add_rate:
                continue
            free = np.flatnonzero(~self.active & ~blocked)
            if len(free) == 0:
                return
            slot = free[0]
            self.active[slot] = True
            self.route[slot] = self.layout.entry_routes[entry, self.spawn_route[row, entry]]
            self.progress[slot] = 0
            self.tau[slot] = 0
            self.last_action[slot] = 0

    # ---- derived quantities -------------------------------------------------------------------
    def _cells(self) -> np.ndarray:
        """[N, 2] (x, y) of each slot's car (route 0's first cell for empty slots: mask with active)."""
        return np.array([self.layout.routes[r].cells[p] for r, p in zip(self.route, self.progress)],
                        dtype=np.int64).reshape(self.n, 2)

    def _occupancy(self) -> np.ndarray:
        """[G, G] number of cars in each cell (indexed [y, x])."""
        counts = np.zeros((self.grid, self.grid), dtype=np.int64)
        cells = self._cells()[self.active]
        np.add.at(counts, (cells[:, 1], cells[:, 0]), 1)
        return counts

    def _observations(self) -> np.ndarray:
        """All slots' observations as one [N, obs_dim] float32 array (layout in the module docstring)."""
        obs = np.zeros((self.n, self.obs_dim))
        cells = self._cells()
        counts = self._occupancy()
        v = self.vision
        for i in np.flatnonzero(self.active):
            route = self.layout.routes[self.route[i]]
            p = self.progress[i]
            x, y = cells[i]
            obs[i, 0] = 1.0
            obs[i, 1] = self.last_action[i]
            obs[i, 2:4] = cells[i] / (self.grid - 1)
            obs[i, 4 + route.headings[p]] = 1.0
            obs[i, 8 + route.turn] = 1.0
            obs[i, 11] = p / (len(route.cells) - 1)
            obs[i, 12] = self.tau[i] / self.max_cycles
            if v > 0:
                window = [counts[y + dy, x + dx] if 0 <= x + dx < self.grid and 0 <= y + dy < self.grid else 0
                          for dy in range(-v, v + 1) for dx in range(-v, v + 1)]
                window[len(window) // 2] -= 1  # the car itself
                obs[i, OWN_OBS:] = window
        return obs.astype(np.float32)

    def _as_dict(self, obs: np.ndarray) -> dict:
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    def _infos(self) -> dict:
        success = self.success()
        return {a: {"success": success, "active": bool(self.active[i]), "collided": bool(self.collided[i]),
                    "tau": int(self.tau[i])}
                for i, a in enumerate(self.possible_agents)}

    # ---- queries ------------------------------------------------------------------------------
    def success(self) -> float:
        """1.0 while the episode has had no collision, else 0.0."""
        return 0.0 if self.crashed else 1.0

    def active_agents(self) -> np.ndarray:
        """[N] bool: the slots with a car on the road now (they act in the next step)."""
        return self.active.copy()

    def agent_positions(self) -> np.ndarray:
        """[N, 2] float32 cell (x, y) of each car; empty slot i at ``(-100 (i + 1), -100)``."""
        off = np.stack([OFF_ROAD * (np.arange(self.n) + 1), np.full(self.n, OFF_ROAD)], axis=1)
        return np.where(self.active[:, None], self._cells(), off).astype(np.float32)

    def state(self) -> np.ndarray:
        return self._observations().reshape(-1)

    def set_state(self, route, progress, active=None, tau=None, last_action=None, spawn_u=None, spawn_route=None,
                  t: int = 0) -> dict:
        """Place cars by hand: per slot a route id and a cell index on it (``active`` defaults to all
        slots, ``tau``/``last_action`` to 0). The spawn schedule defaults to no spawns. Starts an
        episode at step ``t`` without collisions and returns the observations."""
        n = self.n
        self.active = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool).reshape(n)
        self.route = np.where(self.active, np.asarray(route, dtype=np.int64).reshape(n), 0)
        self.progress = np.where(self.active, np.asarray(progress, dtype=np.int64).reshape(n), 0)
        self.tau = np.where(self.active, 0 if tau is None else np.asarray(tau, dtype=np.int64).reshape(n), 0)
        self.last_action = np.where(
            self.active, 0 if last_action is None else np.asarray(last_action, dtype=np.int64).reshape(n), 0)
        shape = (self.max_cycles, self.layout.n_entries)
        self.spawn_u = np.ones(shape) if spawn_u is None else np.asarray(spawn_u, dtype=np.float64).reshape(shape)
        self.spawn_route = (np.zeros(shape, dtype=np.int64) if spawn_route is None
                            else np.asarray(spawn_route, dtype=np.int64).reshape(shape))
        self.collided = np.zeros(n, dtype=bool)
        self.crashed = False
        self.t = int(t)
        self.agents = list(self.possible_agents)
        return self._as_dict(self._observations())

    # ---- rendering ----------------------------------------------------------------------------
    def to_pixels(self, points) -> np.ndarray:
        """Cell coordinates [..., 2] -> pixel (x, y) of the cell centres in ``render()``'s frame."""
        return (np.asarray(points, dtype=np.float64) + 0.5) * self.cell_pixels

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        c = self.cell_pixels
        cells = np.where(self.layout.road_cells[..., None], np.uint8(200), np.uint8(255))
        cells = np.broadcast_to(cells, (self.grid, self.grid, 3)).copy()
        for (x, y) in self.layout.entry_cells:
            cells[y, x] = (170, 210, 170)
        frame = np.repeat(np.repeat(cells, c, axis=0), c, axis=1)
        frame[::c, :] = 150  # cell borders
        frame[:, ::c] = 150
        pos = self._cells()
        for i in np.flatnonzero(self.active):
            x, y = pos[i]
            colour = (220, 30, 30) if self.collided[i] else self._colour(i)
            m = max(1, c // 5)
            frame[y * c + m: (y + 1) * c - m + 1, x * c + m: (x + 1) * c - m + 1] = colour
        return frame

    def _colour(self, i: int) -> tuple[int, int, int]:
        """Distinct colours by the golden-ratio hue walk (kept off pure red, which marks crashes)."""
        import colorsys

        r, g, b = colorsys.hsv_to_rgb((0.1 + i * 0.618033988749895) % 1.0, 0.6, 0.8)
        return int(r * 255), int(g * 255), int(b * 255)

    def close(self):
        pass


# ---- PettingZoo-style module constructors (e.g. for pettingzoo.test.max_cycles_test) -------------
parallel_env, raw_env, env = pettingzoo_constructors(TrafficJunctionEnv)
