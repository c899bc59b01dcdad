"""Batched ``nav/navigation``: the rules of :class:`envs.navigation.NavigationEnv` (see its module
docstring) for E envs at once. Initial states come from the same rejection sampler with the same
random stream, so a seed gives the same episode as the PettingZoo env; the step, the rewards and the
local-sensing observations (the K nearest visible agents and obstacles) are
tensor operations over ``[E, N, N]`` and ``[E, N, M]`` distances.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.base import BatchedSim
from envs.batched.mpe import pair_distances, soft_penetration
from envs.navigation import _DIRECTIONS, _SPAWN_MARGIN, NavigationEnv, _scatter


class NavigationSim(BatchedSim):
    name = "nav/navigation"
    state_fields = ("pos", "vel", "goals", "obstacles")
    reference_env = NavigationEnv  # the PettingZoo env whose rules, spaces and options this simulator takes

    def __init__(self, num_envs: int, device="cpu", dtype=torch.float64, **options):
        super().__init__(num_envs, device, dtype)
        ref = self.reference_env(**options)  # validates the options; its spaces and constants are ours
        self.params = ref
        self.n, self.m, self.k = ref.n, ref.n_obstacles, ref.max_neighbours
        self._spaces_from(ref)
        e, n, m = self.num_envs, self.n, self.m
        self.pos = torch.zeros(e, n, 2, dtype=dtype, device=self.device)
        self.vel = torch.zeros(e, n, 2, dtype=dtype, device=self.device)
        self.goals = torch.zeros(e, n, 2, dtype=dtype, device=self.device)
        self.obstacles = torch.zeros(e, m, 2, dtype=dtype, device=self.device)
        self._directions = self.tensor(_DIRECTIONS)
        self._self_pair = torch.eye(n, dtype=torch.bool, device=self.device)
        self._geo_key = None

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        p = self.params
        w, ra, ro = p.world_size, p.agent_radius, p.obstacle_radius
        inner = w - max(ra, ro)
        obstacles = _scatter(rng, self.m, w - ro, 2 * ro, what="obstacles")
        reach = ra + ro + _SPAWN_MARGIN
        pos = _scatter(rng, self.n, inner, 2 * ra + _SPAWN_MARGIN, obstacles, reach, what="agents")
        goals = _scatter(rng, self.n, inner, 2 * ra + _SPAWN_MARGIN, obstacles, reach, what="goals")
        return {"pos": pos, "vel": np.zeros((self.n, 2)), "goals": goals, "obstacles": obstacles.reshape(self.m, 2)}

    # ---- geometry -----------------------------------------------------------------------------------
    def _geometry(self):
        """Agent-agent distances [E, N, N] (inf on the diagonal) and agent-obstacle distances [E, N, M].
        Computed once per state: a step's rewards and observations and the next step's contact forces
        share them (the key notices new or in-place-modified position tensors)."""
        # the key holds the tensors themselves (not their ids, which Python may reuse once freed)
        key = (self.pos, self.pos._version, self.obstacles, self.obstacles._version)
        old = self._geo_key
        if old is None or not (old[0] is key[0] and old[1] == key[1] and old[2] is key[2] and old[3] == key[3]):
            dist = pair_distances(self.pos, self.pos).masked_fill(self._self_pair, float("inf"))
            self._geo, self._geo_key = (dist, pair_distances(self.pos, self.obstacles)), key
        return self._geo

    def _soft_overlap(self, dist: torch.Tensor, min_dist: float) -> torch.Tensor:
        return soft_penetration(dist, min_dist, self.params.contact_margin)

    def _push(self, dist: torch.Tensor, others: torch.Tensor, min_dist: float) -> torch.Tensor:
        """[E, N, 2] sum over j of ``overlap_ij / d_ij * (p_j - p_i)``, as a batched matmul."""
        mag = self._soft_overlap(dist, min_dist) / dist.clamp(min=1e-9)
        return torch.bmm(mag, others) - self.pos * mag.sum(-1, keepdim=True)

    def _advance(self, actions: torch.Tensor) -> None:
        p = self.params
        u = actions if p.continuous_actions else self._directions[actions]
        force = p.accel * u
        if p.contact_force != 0.0:
            dist, dist_o = self._geometry()
            if self.n > 1:
                force = force - p.contact_force * self._push(dist, self.pos, 2 * p.agent_radius)
            if self.m:
                force = force - p.contact_force * self._push(dist_o, self.obstacles, p.agent_radius + p.obstacle_radius)
        vel = self.vel * (1.0 - p.damping) + force / p.mass * p.dt
        speed = torch.sqrt(vel[..., 0] * vel[..., 0] + vel[..., 1] * vel[..., 1])
        vel = vel * torch.clamp(p.max_speed / speed.clamp(min=1e-12), max=1.0)[..., None]
        pos = self.pos + vel * p.dt
        lim = p.world_size - p.agent_radius
        hit = pos.abs() > lim
        self.pos = pos.clamp(-lim, lim)
        self.vel = vel.masked_fill(hit, 0.0)

    def _evaluate(self, geo):
        p = self.params
        dist_a, dist_o = geo
        diff = self.goals - self.pos
        dist = torch.sqrt((diff * diff).sum(-1))
        at_goal = dist <= p.goal_radius
        hits = (dist_a < 2 * p.agent_radius).sum(-1)
        if self.m:
            hits = hits + (dist_o < p.agent_radius + p.obstacle_radius).sum(-1)
        return dist, at_goal, hits

    def _rewards(self) -> torch.Tensor:
        p = self.params
        dist, at_goal, hits = self._evaluate(self._geometry())
        self._at_goal = at_goal
        reward = (-p.dist_coef * dist + p.goal_reward * at_goal.to(self.dtype)
                  - p.collision_penalty * hits.to(self.dtype))
        if p.shared_reward:
            reward = reward.mean(-1, keepdim=True).expand(-1, self.n)
        return reward

    def _terminal(self) -> torch.Tensor | None:
        return self._at_goal.all(-1) if self.params.terminate_on_success else None

    def success(self) -> torch.Tensor:
        """[E] fraction of agents on their goals now."""
        return self._evaluate(self._geometry())[1].to(self.dtype).mean(-1)

    # ---- observations -------------------------------------------------------------------------------
    def _nearest_slots(self, points: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """[E, N, K, 3] slots (present, dx, dy) of the K nearest visible entities among ``points``
        [E, C, 2], given distances [E, N, C] (inf = not visible); ties go to the lower index."""
        e, n, count = dist.shape
        k = self.k
        if k == 0 or count == 0:
            return torch.zeros(e, n, k, 3, dtype=self.dtype, device=self.device)
        if count < k:  # fewer entities than slots: pad with invisible ones
            dist = torch.cat([dist, dist.new_full((e, n, k - count), float("inf"))], dim=-1)
            points = torch.cat([points, points.new_zeros(e, k - count, 2)], dim=1)
            count = k
        # the k smallest, nearest first; among exactly equal distances topk may pick either, which
        # changes nothing for invisible entities (their slots are zero) and has probability zero otherwise
        idx = torch.topk(dist, k, dim=-1, largest=False, sorted=True).indices  # [E, N, K]
        present = torch.isfinite(torch.gather(dist, -1, idx))
        chosen = torch.take_along_dim(points[:, None].expand(e, n, count, 2), idx[..., None], dim=2)
        near = (chosen - self.pos[:, :, None, :]) * present[..., None]
        return torch.cat([present[..., None].to(self.dtype), near], dim=-1)

    def observations(self) -> torch.Tensor:
        e, n, r = self.num_envs, self.n, self.params.sensing_radius
        dist, dist_o = self._geometry()
        inf = torch.tensor(float("inf"), dtype=self.dtype, device=self.device)
        agents = self._nearest_slots(self.pos, torch.where(dist <= r, dist, inf))
        obstacles = self._nearest_slots(self.obstacles, torch.where(dist_o <= r, dist_o, inf))
        obs = torch.cat([self.vel, self.pos, self.goals - self.pos, agents.reshape(e, n, -1),
                         obstacles.reshape(e, n, -1)], dim=-1)
        return obs.float()

    def state(self, obs: torch.Tensor | None = None) -> torch.Tensor:
        per_agent = torch.cat([self.pos, self.vel, self.goals], dim=-1).reshape(self.num_envs, -1)
        return torch.cat([per_agent, self.obstacles.reshape(self.num_envs, -1)], dim=-1).float()

    @property
    def state_dim(self) -> int:
        return 6 * self.n + 2 * self.m

    def positions(self) -> torch.Tensor:
        return self.pos.float()


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(NavigationSim, **options)
