"""``nav/navigation``: InforMARL-style multi-agent navigation with local sensing, as a ParallelEnv.

N agents (discs) each drive to their own goal (agent i -> goal i) in a walled square arena
``[-W, W]^2``, optionally around ``n_obstacles`` static circular obstacles. Every agent senses only
what lies within ``sensing_radius`` of its centre, and its observation has a fixed size whatever N
is, so a policy trained with N agents runs unchanged (zero-shot) with more.

World
    Half-width ``W = world_size``; by default ``max(1, sqrt(N / 3))``, so N=3 plays in ``[-1, 1]^2``
    and the number of agents per unit area stays the same for larger N. Agents (radius
    ``agent_radius``), goals and obstacles (radius ``obstacle_radius``) are scattered uniformly at
    reset without overlaps; goals are far enough apart that every agent can sit on its goal at once.

Physics (as in MPE)
    Each step the action gives a force ``accel * u`` (discrete: ``u`` is one of no-op, -x, +x, -y,
    +y; continuous: ``u`` in ``[-1, 1]^2``), plus soft contact forces pushing overlapping bodies
    apart (agent-agent, agent-obstacle). ``v <- (1 - damping) v + F / mass * dt``, the speed is
    capped at ``max_speed``, ``p <- p + v dt`` with ``dt = 0.1``; the walls stop an agent (its centre
    stays within ``W - agent_radius`` and the velocity component into the wall is zeroed).

Observation of agent i (float32, length ``6 + 6 K`` with ``K = max_neighbours``; 24 by default)
    ====================  =====  =================================================================
    slice                 size   content
    ====================  =====  =================================================================
    ``[0:2]``             2      own velocity ``(vx, vy)``
    ``[2:4]``             2      own position ``(x, y)`` (world units)
    ``[4:6]``             2      own goal relative to itself, ``goal_i - p_i`` (always visible)
    ``[6:6+3K]``          3K     K slots ``(present, dx, dy)`` for the nearest *other agents* whose
                                 centre is within ``sensing_radius``, nearest first; ``(dx, dy) =
                                 p_j - p_i``; empty slots are all zero (``present = 0``)
    ``[6+3K:6+6K]``       3K     same for the nearest *obstacles* (centre within the radius)
    ====================  =====  =================================================================

Reward of agent i (per step)
    ``-dist_coef * |p_i - g_i|``  (default 0.1: dense, Markov in the observation, since the goal's
    relative position is observed; it is the InforMARL/MPE signal, so results compare)
    ``+ goal_reward`` for every step agent i's centre is within ``goal_radius`` of its goal
    (default 0.1 per step: a per-step bonus rather than a one-off, so it is Markov too and makes
    *staying* on the goal optimal, which is what the success metric measures)
    ``- collision_penalty`` (default 0.5) for each other agent or obstacle agent i overlaps.
    The ratio collision_penalty / dist_coef = 5 is InforMARL's. With ``shared_reward`` every agent
    gets the mean of these instead.

Episode
    Truncated after ``max_cycles`` steps (default 50: at the capped speed of 1 an agent crosses
    0.1 per step, so the arena's diagonal of 2.8 alone takes ~30 steps at N=3 and MPE's 25 would cut
    many episodes before the goals can be reached and held). With ``terminate_on_success`` the
    episode terminates for everyone as soon as every agent is on its goal.

Info and metrics
    ``infos[agent]``: ``at_goal`` (this agent), ``success`` (fraction of all agents on their goals;
    at the last step of an episode this is its success), ``all_success`` (every agent on its goal),
    ``collisions`` (this agent's overlaps this step), ``distance`` (to its goal).
    ``success_rate()`` is that fraction now; ``last_success_rate`` keeps it for the most recent
    episode that ended (it survives the next ``reset``, e.g. a vector env's auto-reset).

``state()`` is ``[x, y, vx, vy, gx, gy]`` per agent then ``[ox, oy]`` per obstacle, flattened
(``6 N + 2 n_obstacles`` floats). ``agent_positions()`` is ``[N, 2]`` (for communication graphs).
``set_state(...)`` places everything by hand (tests, demonstrations). ``render()`` with
``render_mode="rgb_array"`` draws an ``H x W x 3`` uint8 frame (pygame-ce on an off-screen surface).

The module also exposes PettingZoo's usual constructors ``parallel_env(**kw)``, ``env(**kw)`` (AEC,
order-enforced) and ``raw_env(**kw)`` (AEC, unwrapped), so ``pettingzoo.test.max_cycles_test(envs.
navigation)`` runs as on PettingZoo's own environments.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.constructors import pettingzoo_constructors

# discrete action -> direction of the force: no-op, -x, +x, -y, +y (MPE's order)
_DIRECTIONS = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
# minimum free space left between bodies scattered at reset
_SPAWN_MARGIN = 0.02


def default_world_size(n_agents: int) -> float:
    """Half-width of the arena that keeps N=3's agent density: ``max(1, sqrt(N / 3))``."""
    return max(1.0, math.sqrt(n_agents / 3.0))


def _nearest_slots(rel: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """The k nearest visible entities per row as ``[rows, k, 3]`` slots ``(present, dx, dy)``.

    ``rel``: [rows, M, 2] relative positions; ``dist``: [rows, M] distances with ``inf`` for entities
    that are not visible. Ties are broken by entity index (stable sort), so results are deterministic.
    """
    rows, m = dist.shape
    if k == 0 or m == 0:
        return np.zeros((rows, k, 3))
    if m < k:  # fewer entities than slots: pad with invisible ones
        dist = np.concatenate([dist, np.full((rows, k - m), np.inf)], axis=1)
        rel = np.concatenate([rel, np.zeros((rows, k - m, 2))], axis=1)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    row = np.arange(rows)[:, None]
    present = np.isfinite(dist[row, idx])
    near = np.where(present[:, :, None], rel[row, idx], 0.0)
    return np.concatenate([present[:, :, None].astype(np.float64), near], axis=2)


def _pairwise(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rel[i, j] = b[j] - a[i]`` ([len(a), len(b), 2]) and its norms."""
    rel = b[None, :, :] - a[:, None, :]
    return rel, np.sqrt(np.einsum("ijk,ijk->ij", rel, rel))


def _scatter(rng, n, half, gap, fixed=None, fixed_gap=0.0, what="entities", max_rounds=2000) -> np.ndarray:
    """``n`` uniform points in ``[-half, half]^2``, at least ``gap`` apart from each other and
    ``fixed_gap`` from every point of ``fixed``; conflicting points are redrawn (vectorised)."""
    pts = rng.uniform(-half, half, size=(n, 2))
    if n == 0:
        return pts
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    for _ in range(max_rounds):
        bad = np.zeros(n, dtype=bool)
        if fixed is not None and len(fixed):
            bad |= (_pairwise(pts, fixed)[1] < fixed_gap).any(axis=1)
        if n > 1:
            # of each pair too close, the later point is redrawn
            bad |= ((_pairwise(pts, pts)[1] < gap) & upper).any(axis=0)
        if not bad.any():
            return pts
        pts[bad] = rng.uniform(-half, half, size=(int(bad.sum()), 2))
    raise ValueError(
        f"could not place {n} {what} without overlaps in a world of half-width {half:.2f}; "
        "use a larger world_size or fewer agents/obstacles"
    )


class NavigationEnv(ParallelEnv):
    """N agents, N goals, optional obstacles; local sensing. See the module docstring."""

    metadata = {"name": "navigation_v0", "render_modes": ["rgb_array"], "is_parallelizable": True, "render_fps": 10}

    def __init__(
        self,
        n_agents: int = 3,
        n_obstacles: int = 0,
        sensing_radius: float = 1.0,
        max_neighbours: int = 3,
        max_cycles: int = 50,
        continuous_actions: bool = False,
        world_size: float | None = None,
        terminate_on_success: bool = False,
        shared_reward: bool = False,
        agent_radius: float = 0.1,
        obstacle_radius: float = 0.1,
        goal_radius: float = 0.1,
        dist_coef: float = 0.1,
        goal_reward: float = 0.1,
        collision_penalty: float = 0.5,
        max_speed: float = 1.0,
        accel: float = 5.0,
        damping: float = 0.25,
        mass: float = 1.0,
        contact_force: float = 100.0,
        contact_margin: float = 1e-3,
        dt: float = 0.1,
        render_mode: str | None = None,
        render_size: int = 400,
    ):
        if n_agents < 1:
            raise ValueError(f"n_agents must be >= 1 (got {n_agents})")
        if n_obstacles < 0 or max_neighbours < 0:
            raise ValueError(f"n_obstacles and max_neighbours must be >= 0 (got {n_obstacles}, {max_neighbours})")
        if sensing_radius < 0 or max_speed <= 0 or dt <= 0 or mass <= 0:
            raise ValueError("sensing_radius must be >= 0; max_speed, dt and mass must be > 0")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None "
                             f"(got {render_mode!r})")
        self.n = int(n_agents)
        self.n_obstacles = int(n_obstacles)
        self.sensing_radius = float(sensing_radius)
        self.max_neighbours = int(max_neighbours)
        self.max_cycles = int(max_cycles)
        self.continuous_actions = bool(continuous_actions)
        self.world_size = float(world_size) if world_size is not None else default_world_size(self.n)
        self.terminate_on_success = bool(terminate_on_success)
        self.shared_reward = bool(shared_reward)
        self.agent_radius = float(agent_radius)
        self.obstacle_radius = float(obstacle_radius)
        self.goal_radius = float(goal_radius)
        self.dist_coef = float(dist_coef)
        self.goal_reward = float(goal_reward)
        self.collision_penalty = float(collision_penalty)
        self.max_speed = float(max_speed)
        self.accel = float(accel)
        self.damping = float(damping)
        self.mass = float(mass)
        self.contact_force = float(contact_force)
        self.contact_margin = float(contact_margin)
        self.dt = float(dt)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        if self.world_size <= self.agent_radius:
            raise ValueError(f"world_size {self.world_size} must exceed agent_radius {self.agent_radius}")

        self.possible_agents = [f"agent_{i}" for i in range(self.n)]
        self.agents: list[str] = []
        self.obs_dim = 6 + 6 * self.max_neighbours
        self.state_space = self._make_state_space()
        self._rng = np.random.default_rng()
        self.t = 0
        self.pos = np.zeros((self.n, 2))
        self.vel = np.zeros((self.n, 2))
        self.goals = np.zeros((self.n, 2))
        self.obstacles = np.zeros((self.n_obstacles, 2))
        self.last_success_rate = float("nan")  # success of the most recent episode that ended
        self._surface = None

    # ---- spaces -------------------------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        w, s, r, k = self.world_size, self.max_speed, self.sensing_radius, self.max_neighbours
        slot_lo, slot_hi = [0.0, -r, -r], [1.0, r, r]
        low = np.array([-s, -s, -w, -w, -2 * w, -2 * w] + slot_lo * (2 * k))
        high = np.array([s, s, w, w, 2 * w, 2 * w] + slot_hi * (2 * k))
        pad = 1e-3 * np.maximum(1.0, np.abs(high))  # float round-off on the speed cap and the walls
        return spaces.Box((low - pad).astype(np.float32), (high + pad).astype(np.float32), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        if self.continuous_actions:
            return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        return spaces.Discrete(len(_DIRECTIONS))

    def _make_state_space(self) -> spaces.Box:
        w, s = self.world_size + 1e-3, self.max_speed + 1e-3
        per_agent = [w, w, s, s, w, w]
        high = np.array(per_agent * self.n + [w, w] * self.n_obstacles, dtype=np.float32)
        return spaces.Box(-high, high, dtype=np.float32)

    # ---- reset / step -------------------------------------------------------------------------
    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        rng, w, ra, ro = self._rng, self.world_size, self.agent_radius, self.obstacle_radius
        inner = w - max(ra, ro)
        self.obstacles = _scatter(rng, self.n_obstacles, w - ro, 2 * ro, what="obstacles")
        reach = ra + ro + _SPAWN_MARGIN  # an agent centred here touches no obstacle
        self.pos = _scatter(rng, self.n, inner, 2 * ra + _SPAWN_MARGIN, self.obstacles, reach, what="agents")
        self.goals = _scatter(rng, self.n, inner, 2 * ra + _SPAWN_MARGIN, self.obstacles, reach, what="goals")
        self.vel = np.zeros((self.n, 2))
        self.t = 0
        self.agents = list(self.possible_agents)
        geo = self._geometry()
        return self._as_dict(self._observations(geo)), self._infos(*self._evaluate(geo))

    def step(self, actions):
        if not self.agents:
            return {}, {}, {}, {}, {}
        force = self.accel * self._action_forces(actions) + self._contact_forces(self._geometry())
        vel = self.vel * (1.0 - self.damping) + force / self.mass * self.dt
        speed = np.sqrt(np.einsum("ij,ij->i", vel, vel))
        vel *= np.minimum(1.0, self.max_speed / np.maximum(speed, 1e-12))[:, None]
        pos = self.pos + vel * self.dt
        lim = self.world_size - self.agent_radius
        hit = np.abs(pos) > lim
        self.pos = np.clip(pos, -lim, lim)
        vel[hit] = 0.0
        self.vel = vel
        self.t += 1

        geo = self._geometry()  # shared by the reward and the observations
        dist, at_goal, hits = self._evaluate(geo)
        reward = -self.dist_coef * dist + self.goal_reward * at_goal - self.collision_penalty * hits
        if self.shared_reward:
            reward = np.full(self.n, reward.mean())
        done = self.terminate_on_success and bool(at_goal.all())
        out_of_time = not done and self.t >= self.max_cycles
        obs = self._as_dict(self._observations(geo))
        rewards = {a: float(r) for a, r in zip(self.possible_agents, reward)}
        terms = dict.fromkeys(self.possible_agents, done)
        truncs = dict.fromkeys(self.possible_agents, out_of_time)
        infos = self._infos(dist, at_goal, hits)
        if done or out_of_time:
            self.last_success_rate = float(at_goal.mean())
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _action_forces(self, actions) -> np.ndarray:
        """[N, 2] unit-scale forces; agents without an action (or with ``None``) do nothing."""
        u = np.zeros((self.n, 2))
        given = [(i, actions[a]) for i, a in enumerate(self.possible_agents) if actions.get(a) is not None]
        if not given:
            return u
        idx = np.fromiter((i for i, _ in given), dtype=np.int64, count=len(given))
        if self.continuous_actions:
            u[idx] = np.clip(np.asarray([np.asarray(a, dtype=np.float64).reshape(2) for _, a in given]), -1.0, 1.0)
        else:
            choice = np.fromiter((int(a) for _, a in given), dtype=np.int64, count=len(given))
            if ((choice < 0) | (choice >= len(_DIRECTIONS))).any():
                raise ValueError(f"discrete actions must be in 0..{len(_DIRECTIONS) - 1} (got {choice.tolist()})")
            u[idx] = _DIRECTIONS[choice]
        return u

    def _soft_overlap(self, dist: np.ndarray, min_dist) -> np.ndarray:
        """MPE's smoothed penetration depth ``k log(1 + exp((min_dist - dist) / k))``."""
        k = self.contact_margin
        return k * np.logaddexp(0.0, (min_dist - dist) / k)

    def _geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Agent-agent offsets [N, N, 2] (``p_j - p_i``) and distances [N, N] (``inf`` on the
        diagonal), agent-obstacle offsets [N, M, 2] and distances [N, M], in the current state."""
        rel, dist = _pairwise(self.pos, self.pos)
        np.fill_diagonal(dist, np.inf)
        rel_o, dist_o = _pairwise(self.pos, self.obstacles)
        return rel, dist, rel_o, dist_o

    def _contact_forces(self, geo) -> np.ndarray:
        """[N, 2] soft repulsion between overlapping agents and from obstacles (vectorised)."""
        f = np.zeros((self.n, 2))
        if self.contact_force == 0.0:
            return f
        rel, dist, rel_o, dist_o = geo
        if self.n > 1:
            mag = self._soft_overlap(dist, 2 * self.agent_radius) / np.maximum(dist, 1e-9)
            f -= self.contact_force * np.einsum("ij,ijk->ik", mag, rel)  # pushed away from every j
        if self.n_obstacles:
            mag = self._soft_overlap(dist_o, self.agent_radius + self.obstacle_radius) / np.maximum(dist_o, 1e-9)
            f -= self.contact_force * np.einsum("ij,ijk->ik", mag, rel_o)
        return f

    def _evaluate(self, geo=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distances to goals [N], on-goal flags [N], and collision counts [N] in the current state."""
        _, dist_a, _, dist_o = self._geometry() if geo is None else geo
        diff = self.goals - self.pos
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        at_goal = dist <= self.goal_radius
        hits = (dist_a < 2 * self.agent_radius).sum(axis=1)
        if self.n_obstacles:
            hits = hits + (dist_o < self.agent_radius + self.obstacle_radius).sum(axis=1)
        return dist, at_goal, hits

    def _observations(self, geo=None) -> np.ndarray:
        """All agents' observations as one [N, 6 + 6K] float32 array (layout in the module docstring)."""
        k, r = self.max_neighbours, self.sensing_radius
        rel, dist, rel_o, dist_o = self._geometry() if geo is None else geo
        agent_slots = _nearest_slots(rel, np.where(dist <= r, dist, np.inf), k)
        obstacle_slots = _nearest_slots(rel_o, np.where(dist_o <= r, dist_o, np.inf), k)
        obs = np.concatenate(
            [self.vel, self.pos, self.goals - self.pos, agent_slots.reshape(self.n, -1),
             obstacle_slots.reshape(self.n, -1)],
            axis=1,
        )
        return obs.astype(np.float32)

    def _as_dict(self, obs: np.ndarray) -> dict:
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    def _infos(self, dist, at_goal, hits) -> dict:
        frac = float(at_goal.mean())
        every = bool(at_goal.all())
        return {
            a: {"at_goal": bool(at_goal[i]), "success": frac, "all_success": every,
                "collisions": int(hits[i]), "distance": float(dist[i])}
            for i, a in enumerate(self.possible_agents)
        }

    # ---- queries ------------------------------------------------------------------------------
    def success_rate(self) -> float:
        """Fraction of agents on their goals now (after the last step of an episode: its success)."""
        return float(self._evaluate()[1].mean())

    def agent_positions(self) -> np.ndarray:
        """Agent positions ``[N, 2]`` (float32) in the order of ``possible_agents``."""
        return self.pos.astype(np.float32)

    @property
    def render_extent(self) -> float:
        """Half-width of the world the renderer draws (``[-W, W]^2`` fills the frame)."""
        return self.world_size

    def state(self) -> np.ndarray:
        per_agent = np.concatenate([self.pos, self.vel, self.goals], axis=1)
        return np.concatenate([per_agent.reshape(-1), self.obstacles.reshape(-1)]).astype(np.float32)

    def set_state(self, agent_pos, agent_vel=None, goal_pos=None, obstacle_pos=None) -> dict:
        """Place agents (and optionally velocities, goals, obstacles) by hand; starts an episode
        at t=0 in that state and returns the observations. Arrays are [N, 2] (obstacles [M, 2])."""
        self.pos = np.array(agent_pos, dtype=np.float64).reshape(self.n, 2)
        self.vel = (np.zeros((self.n, 2)) if agent_vel is None
                    else np.array(agent_vel, dtype=np.float64).reshape(self.n, 2))
        if goal_pos is not None:
            self.goals = np.array(goal_pos, dtype=np.float64).reshape(self.n, 2)
        if obstacle_pos is not None:
            self.obstacles = np.array(obstacle_pos, dtype=np.float64).reshape(self.n_obstacles, 2)
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._as_dict(self._observations())

    # ---- rendering ----------------------------------------------------------------------------
    def to_pixels(self, points) -> np.ndarray:
        """World coordinates [..., 2] -> pixel coordinates (x right, y down) of ``render()``'s frame."""
        p = np.asarray(points, dtype=np.float64)
        size = self.render_size
        x = (p[..., 0] / self.world_size + 1.0) * 0.5 * (size - 1)
        y = (1.0 - p[..., 1] / self.world_size) * 0.5 * (size - 1)
        return np.stack([x, y], axis=-1)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: only off-screen surfaces are used
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        size = self.render_size
        scale = (size - 1) / (2.0 * self.world_size)
        if self._surface is None:
            self._surface = pygame.Surface((size, size))
        surf = self._surface
        surf.fill((255, 255, 255))
        colours = [self._colour(i) for i in range(self.n)]
        agents_px, goals_px = self.to_pixels(self.pos), self.to_pixels(self.goals)

        halo = pygame.Surface((size, size), pygame.SRCALPHA)  # faint sensing discs
        sense_px = max(1, int(round(self.sensing_radius * scale)))
        for (x, y), c in zip(agents_px, colours):
            pygame.draw.circle(halo, (*c, 22), (int(round(x)), int(round(y))), sense_px)
        surf.blit(halo, (0, 0))
        for (x, y) in self.to_pixels(self.obstacles):
            pygame.draw.circle(surf, (90, 90, 90), (int(round(x)), int(round(y))),
                               max(1, int(round(self.obstacle_radius * scale))))
        goal_px = max(2, int(round(self.goal_radius * scale)))
        for (x, y), c in zip(goals_px, colours):
            pygame.draw.circle(surf, c, (int(round(x)), int(round(y))), goal_px, width=2)
            pygame.draw.line(surf, c, (int(x) - 3, int(y)), (int(x) + 3, int(y)))
            pygame.draw.line(surf, c, (int(x), int(y) - 3), (int(x), int(y) + 3))
        agent_px = max(2, int(round(self.agent_radius * scale)))
        for (x, y), c in zip(agents_px, colours):
            pygame.draw.circle(surf, c, (int(round(x)), int(round(y))), agent_px)
            pygame.draw.circle(surf, (30, 30, 30), (int(round(x)), int(round(y))), agent_px, width=1)
        pygame.draw.rect(surf, (0, 0, 0), pygame.Rect(0, 0, size, size), width=1)
        # surfarray is indexed [x, y]; frames are [row, column]
        return np.ascontiguousarray(pygame.surfarray.array3d(surf).transpose(1, 0, 2), dtype=np.uint8)

    def _colour(self, i: int) -> tuple[int, int, int]:
        """Distinct colours by the golden-ratio hue walk."""
        import colorsys

        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.65, 0.9)
        return int(r * 255), int(g * 255), int(b * 255)

    def close(self):
        self._surface = None


# ---- PettingZoo-style module constructors (e.g. for pettingzoo.test.max_cycles_test) -------------
parallel_env, raw_env, env = pettingzoo_constructors(NavigationEnv)
