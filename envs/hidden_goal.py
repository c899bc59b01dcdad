"""``comm/hidden_goal``: navigation where nobody observes its own goal, as a ParallelEnv.

N agents (discs) each must reach their own goal in the walled arena of :mod:`envs.navigation`, with
the same physics, collisions and rewards, but agent i does *not* observe its goal ``g_i``. At reset
a random derangement (a permutation without fixed points) gives every goal a *holder*: an agent
other than its owner that observes it. Every agent thus holds exactly one other agent's goal and
can only learn its own from messages, so the task cannot be solved without communication.

Identity without one-hot ids
    At reset every agent draws a tag ``t_i`` uniform in ``[-1, 1]^2``. Agent i observes its own tag,
    and the holder of ``g_j`` observes ``(t_j, g_j)``: a receiver can match a message to itself by
    comparing the tag in it with its own (attention does this naturally; a mean over all messages
    blurs the right one with N - 1 wrong ones). Tags and holders are redrawn every episode, so no
    fixed identity or fixed messaging route can be memorised.

World
    As in navigation: half-width ``W = world_size``, by default ``max(1, sqrt(N / 3))``; agents,
    goals (and optional static obstacles, none by default) are scattered uniformly at reset without
    overlaps, with goals far enough apart that every agent can sit on its goal at once.

Physics
    Navigation's (MPE-like): the discrete action (no-op, -x, +x, -y, +y) is a force ``accel * u``,
    plus soft contact forces between overlapping bodies; damping, a speed cap and walls.

Observation of agent i (float32, length ``10 + 6 K`` with ``K = max_neighbours``; 22 by default)
    ====================  =====  =================================================================
    slice                 size   content
    ====================  =====  =================================================================
    ``[0:2]``             2      own velocity ``(vx, vy)``
    ``[2:4]``             2      own position ``(x, y)`` (world units)
    ``[4:6]``             2      own tag ``t_i``
    ``[6:8]``             2      tag of the held goal's owner, ``t_j`` with ``j = held(i) != i``
    ``[8:10]``            2      the held goal's position ``g_j`` (absolute, world units, so that a
                                 receiver can compare it with its own position)
    ``[10:10+3K]``        3K     K slots ``(present, dx, dy)`` for the nearest *other agents* whose
                                 centre is within ``sensing_radius``, nearest first; ``(dx, dy) =
                                 p_j - p_i``; empty slots are all zero (``present = 0``)
    ``[10+3K:10+6K]``     3K     same for the nearest *obstacles* (all zero without obstacles; the
                                 slots stay so that the size never depends on the options' counts)
    ====================  =====  =================================================================

Reward of agent i (per step), as navigation's
    ``-dist_coef * |p_i - g_i|`` (default 0.1) ``+ goal_reward`` (0.1) for every step within
    ``goal_radius`` of its goal ``- collision_penalty`` (0.5) per other agent or obstacle it overlaps;
    with ``shared_reward`` everyone gets the mean. The reward depends on the unobserved own goal, so
    without messages an agent can only hover where goals are likely (the arena's centre).

Episode
    Truncated after ``max_cycles`` steps (default 50), everyone at once; with
    ``terminate_on_success`` it terminates as soon as every agent is on its goal.

Info and metrics
    As navigation: ``infos[agent]`` has ``at_goal``, ``success`` (fraction of agents on their goals; at
    an episode's last step, its success), ``all_success``, ``collisions``, ``distance``.

``state()`` (the centralized critic's input; it *does* see every goal, which is fine for a critic
used only in training) is ``[x, y, vx, vy, gx, gy, tx, ty]`` per agent then ``[ox, oy]`` per obstacle
(``8 N + 2 n_obstacles`` floats). ``held`` (who holds whose goal) is not in it: given the goals and
the tags it changes nothing about the rewards to come except through the actors' messages.
``agent_positions()`` is ``[N, 2]``. ``set_state(...)`` places everything by hand.

:func:`steer` is the scripted controller of the reference numbers in the docs (drive to a point and
stay there): to the arena's centre without communication, to the true goal as an oracle.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces

from envs.constructors import pettingzoo_constructors
from envs.navigation import _DIRECTIONS, _SPAWN_MARGIN, NavigationEnv, _nearest_slots, _scatter

TAG_RANGE = 1.0  # tags are uniform in [-TAG_RANGE, TAG_RANGE]^2


def draw_derangement(rng: np.random.Generator, n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` with no fixed point (``n >= 2``), by rejection:
    a random permutation is a derangement with probability ~1/e, so ~2.7 draws on average."""
    if n < 2:
        raise ValueError(f"a derangement needs n >= 2 (got {n})")
    while True:
        perm = rng.permutation(n)
        if (perm != np.arange(n)).all():
            return perm


def draw_episode(rng: np.random.Generator, n: int, n_obstacles: int, world_size: float, agent_radius: float,
                 obstacle_radius: float) -> dict[str, np.ndarray]:
    """One episode's initial layout, in the order both backends draw it: obstacles, agents, goals
    (exactly navigation's draws), then who holds whose goal, then the tags."""
    w, ra, ro = world_size, agent_radius, obstacle_radius
    inner = w - max(ra, ro)
    obstacles = _scatter(rng, n_obstacles, w - ro, 2 * ro, what="obstacles").reshape(n_obstacles, 2)
    reach = ra + ro + _SPAWN_MARGIN  # an agent centred here touches no obstacle
    pos = _scatter(rng, n, inner, 2 * ra + _SPAWN_MARGIN, obstacles, reach, what="agents")
    goals = _scatter(rng, n, inner, 2 * ra + _SPAWN_MARGIN, obstacles, reach, what="goals")
    held = draw_derangement(rng, n)  # agent i observes goal held[i]
    tags = rng.uniform(-TAG_RANGE, TAG_RANGE, size=(n, 2))
    return {"pos": pos, "vel": np.zeros((n, 2)), "goals": goals, "obstacles": obstacles, "held": held,
            "tags": tags}


def steer(pos, vel, target, neighbours=None, gain: float = 6.0, keep_apart: float = 0.3, repulsion: float = 20.0,
          damping: float = 0.25, accel: float = 5.0, mass: float = 1.0, dt: float = 0.1,
          max_speed: float = 1.0) -> np.ndarray:
    """Scripted discrete actions ``[...]`` driving bodies at ``pos`` with velocity ``vel`` (``[..., 2]``)
    to ``target`` and keeping them there: the action whose next velocity (contact forces ignored) is
    nearest a desired one. That is ``gain * (target - pos)`` capped at ``max_speed`` (a P-controller:
    it brakes before the point; with a gain below ~4 it settles too far off to count as on a goal of
    radius 0.1), plus, given ``neighbours`` (``[..., K, 3]`` slots ``(present, dx, dy)`` as in the
    observation), ``repulsion * (keep_apart - d)`` away from each neighbour nearer than ``keep_apart``.
    The references in the docs use it on the observation alone (to the centre) and on the true goals."""
    pos, vel, target = (np.asarray(x, dtype=np.float64) for x in (pos, vel, target))
    want = gain * (target - pos)
    speed = np.linalg.norm(want, axis=-1, keepdims=True)
    want = want * np.minimum(1.0, max_speed / np.maximum(speed, 1e-12))
    if neighbours is not None:
        slots = np.asarray(neighbours, dtype=np.float64)
        offset = slots[..., 1:]
        dist = np.linalg.norm(offset, axis=-1)
        push = slots[..., 0] * repulsion * np.maximum(0.0, keep_apart - dist) / np.maximum(dist, 1e-9)
        want = want - (push[..., None] * offset).sum(axis=-2)
    nxt = vel[..., None, :] * (1.0 - damping) + accel * _DIRECTIONS / mass * dt  # [..., 5, 2]
    return np.argmin(np.linalg.norm(nxt - want[..., None, :], axis=-1), axis=-1)


class HiddenGoalEnv(NavigationEnv):
    """Navigation with hidden own goals, each held by another agent. See the module docstring.
    ``physics``: navigation's other keywords (``agent_radius``, ``goal_radius``, ``dist_coef``,
    ``goal_reward``, ``collision_penalty``, ``accel``, ..., ``render_mode``), same defaults."""

    metadata = {"name": "hidden_goal_v0", "render_modes": ["rgb_array"], "is_parallelizable": True,
                "render_fps": 10}

    def __init__(self, n_agents: int = 5, n_obstacles: int = 0, sensing_radius: float = 1.0, max_neighbours: int = 2,
                 max_cycles: int = 50, world_size: float | None = None, terminate_on_success: bool = False,
                 shared_reward: bool = False, **physics):
        if n_agents < 2:
            raise ValueError(f"n_agents must be >= 2: every goal is held by another agent (got {n_agents})")
        if "continuous_actions" in physics:
            raise TypeError("hidden_goal has discrete actions only")
        super().__init__(n_agents=n_agents, n_obstacles=n_obstacles, sensing_radius=sensing_radius,
                         max_neighbours=max_neighbours, max_cycles=max_cycles, world_size=world_size,
                         terminate_on_success=terminate_on_success, shared_reward=shared_reward, **physics)
        self.obs_dim = 10 + 6 * self.max_neighbours
        self.held = (np.arange(self.n) + 1) % self.n  # replaced at reset
        self.tags = np.zeros((self.n, 2))

    # ---- spaces -------------------------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        w, s, r, k, t = self.world_size, self.max_speed, self.sensing_radius, self.max_neighbours, TAG_RANGE
        slot_lo, slot_hi = [0.0, -r, -r], [1.0, r, r]
        low = np.array([-s, -s, -w, -w, -t, -t, -t, -t, -w, -w] + slot_lo * (2 * k))
        high = np.array([s, s, w, w, t, t, t, t, w, w] + slot_hi * (2 * k))
        pad = 1e-3 * np.maximum(1.0, np.abs(high))  # float round-off on the speed cap and the walls
        return spaces.Box((low - pad).astype(np.float32), (high + pad).astype(np.float32), dtype=np.float32)

    def _make_state_space(self) -> spaces.Box:
        w, s, t = self.world_size + 1e-3, self.max_speed + 1e-3, TAG_RANGE + 1e-3
        high = np.array([w, w, s, s, w, w, t, t] * self.n + [w, w] * self.n_obstacles, dtype=np.float32)
        return spaces.Box(-high, high, dtype=np.float32)

    # ---- reset --------------------------------------------------------------------------------
    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        drawn = draw_episode(self._rng, self.n, self.n_obstacles, self.world_size, self.agent_radius,
                             self.obstacle_radius)
        self.pos, self.vel, self.goals = drawn["pos"], drawn["vel"], drawn["goals"]
        self.obstacles, self.held, self.tags = drawn["obstacles"], drawn["held"], drawn["tags"]
        self.t = 0
        self.agents = list(self.possible_agents)
        geo = self._geometry()
        return self._as_dict(self._observations(geo)), self._infos(*self._evaluate(geo))

    # ---- observations and state ---------------------------------------------------------------
    def _observations(self, geo=None) -> np.ndarray:
        """All agents' observations as one [N, 10 + 6K] float32 array (layout in the module docstring)."""
        k, r = self.max_neighbours, self.sensing_radius
        rel, dist, rel_o, dist_o = self._geometry() if geo is None else geo
        agent_slots = _nearest_slots(rel, np.where(dist <= r, dist, np.inf), k)
        obstacle_slots = _nearest_slots(rel_o, np.where(dist_o <= r, dist_o, np.inf), k)
        obs = np.concatenate(
            [self.vel, self.pos, self.tags, self.tags[self.held], self.goals[self.held],
             agent_slots.reshape(self.n, -1), obstacle_slots.reshape(self.n, -1)],
            axis=1,
        )
        return obs.astype(np.float32)

    def state(self) -> np.ndarray:
        per_agent = np.concatenate([self.pos, self.vel, self.goals, self.tags], axis=1)
        return np.concatenate([per_agent.reshape(-1), self.obstacles.reshape(-1)]).astype(np.float32)

    def set_state(self, agent_pos, agent_vel=None, goal_pos=None, obstacle_pos=None, held=None, tags=None) -> dict:
        """As navigation's, plus ``held`` ([N] ints, a derangement: agent i observes goal ``held[i]``)
        and ``tags`` ([N, 2]). Starts an episode at t=0 in that state and returns the observations."""
        if held is not None:
            held = np.array(held, dtype=np.int64).reshape(self.n)
            if sorted(held.tolist()) != list(range(self.n)) or (held == np.arange(self.n)).any():
                raise ValueError(f"held must be a permutation of 0..{self.n - 1} without fixed points (got {held})")
            self.held = held
        if tags is not None:
            self.tags = np.array(tags, dtype=np.float64).reshape(self.n, 2)
        return super().set_state(agent_pos, agent_vel, goal_pos, obstacle_pos)

    def holders(self) -> np.ndarray:
        """[N] ints: ``holders()[i]`` is the agent that observes agent i's goal (the inverse of ``held``)."""
        return np.argsort(self.held)


# ---- PettingZoo-style module constructors (e.g. for pettingzoo.test.max_cycles_test) -------------
parallel_env, raw_env, env = pettingzoo_constructors(HiddenGoalEnv)
