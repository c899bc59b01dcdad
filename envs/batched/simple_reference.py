"""Batched mpe2 ``simple_reference_v3``: two agents, three landmarks; each agent knows the goal
landmark of the *other* agent and must tell it (10-word channel).

Agent i observes ``[v_i, landmark_l - p_i for every l, colour of its own goal landmark b_i,
the other agent's utterance]`` (21 floats). Its own reward term is ``-|p_other - b_i|``; every agent
gets ``(1 - local_ratio) * mean of both terms + local_ratio * own term``. Discrete actions are
``move + 5 * word`` (50 choices). Nothing collides.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.mpe import MPESim, uniform_points

LANDMARK_COLOURS = ((0.75, 0.25, 0.25), (0.25, 0.75, 0.25), (0.25, 0.25, 0.75))


class SimpleReferenceSim(MPESim):
    name = "mpe/simple_reference"
    state_fields = MPESim.state_fields + ("goal",)

    def __init__(self, num_envs: int, local_ratio: float = 0.5, max_cycles: int = 25,
                 continuous_actions: bool = False, device="cpu", dtype=torch.float64):
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio must be in [0, 1] (got {local_ratio})")
        super().__init__(
            num_envs, agents=["agent_0", "agent_1"], n_landmarks=3, dim_c=10, agent_size=[0.05] * 2,
            landmark_size=[0.05] * 3, agent_collide=[False] * 2, landmark_collide=[False] * 3,
            movable=[True, True], silent=[False, False], accel=[None, None], max_speed=[None, None],
            obs_dims=[21, 21], max_cycles=max_cycles, continuous_actions=continuous_actions,
            device=device, dtype=dtype,
        )
        self.local_ratio = float(local_ratio)
        self.goal = torch.zeros(self.num_envs, 2, dtype=torch.long, device=self.device)  # landmark index per agent
        self._colours = self.tensor(LANDMARK_COLOURS)

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        goal = np.array([int(rng.integers(3)), int(rng.integers(3))])  # drawn first, as in mpe2
        return {"goal": goal, "pos": uniform_points(rng, 2), "vel": np.zeros((2, 2)),
                "comm": np.zeros((2, self.dim_c)), "landmarks": uniform_points(rng, 3)}

    def _goal_positions(self) -> torch.Tensor:
        """[E, 2, 2]: the position of each agent's goal landmark."""
        return torch.take_along_dim(self.landmarks, self.goal[..., None].expand(-1, -1, 2), dim=1)

    def _rewards(self) -> torch.Tensor:
        other = self.pos.flip(1)  # agent i's goal is for the other agent to reach
        diff = other - self._goal_positions()
        own = -torch.sqrt((diff * diff).sum(-1))  # [E, 2]
        shared = own.sum(-1, keepdim=True) / 2
        return shared * (1 - self.local_ratio) + own * self.local_ratio

    def observations(self) -> torch.Tensor:
        e = self.num_envs
        landmarks = self.landmark_offsets().reshape(e, 2, -1)
        colour = self._colours[self.goal]  # [E, 2, 3]
        heard = self.comm.flip(1)
        return torch.cat([self.vel, landmarks, colour, heard], dim=-1).float()

    def load_mpe_world(self, k: int, world) -> None:
        super().load_mpe_world(k, world)
        self.goal[k] = torch.as_tensor([world.landmarks.index(a.goal_b) for a in world.agents])


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(SimpleReferenceSim, **options)
