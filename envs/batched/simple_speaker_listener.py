"""Batched mpe2 ``simple_speaker_listener_v4``: a static speaker sees the goal landmark's colour
and says one of 3 words; a silent listener hears it and moves.

Speaker observes the goal's colour (3 floats); the listener observes ``[v, landmark_l - p for every
l, the speaker's word]`` (11 floats). Both get ``-|p_listener - goal|^2``. Nothing collides.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.mpe import MPESim, uniform_points

LANDMARK_COLOURS = ((0.65, 0.15, 0.15), (0.15, 0.65, 0.15), (0.15, 0.15, 0.65))


class SimpleSpeakerListenerSim(MPESim):
    name = "mpe/simple_speaker_listener"
    state_fields = MPESim.state_fields + ("goal",)

    def __init__(self, num_envs: int, max_cycles: int = 25, continuous_actions: bool = False, device="cpu",
                 dtype=torch.float64):
        super().__init__(
            num_envs, agents=["speaker_0", "listener_0"], n_landmarks=3, dim_c=3, agent_size=[0.075] * 2,
            landmark_size=[0.04] * 3, agent_collide=[False] * 2, landmark_collide=[False] * 3,
            movable=[False, True], silent=[False, True], accel=[None, None], max_speed=[None, None],
            obs_dims=[3, 11], max_cycles=max_cycles, continuous_actions=continuous_actions,
            device=device, dtype=dtype,
        )
        self.goal = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._colours = self.tensor(LANDMARK_COLOURS)

    def _initial_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        goal = np.array(int(rng.integers(3)))  # drawn first, as in mpe2
        return {"goal": goal, "pos": uniform_points(rng, 2), "vel": np.zeros((2, 2)),
                "comm": np.zeros((2, self.dim_c)), "landmarks": uniform_points(rng, 3)}

    def _rewards(self) -> torch.Tensor:
        target = self.landmarks[torch.arange(self.num_envs, device=self.device), self.goal]  # [E, 2]
        diff = self.pos[:, 1] - target
        return (-(diff * diff).sum(-1, keepdim=True)).expand(self.num_envs, 2)

    def observations(self) -> torch.Tensor:
        e = self.num_envs
        speaker = torch.zeros(e, 11, dtype=self.dtype, device=self.device)
        speaker[:, :3] = self._colours[self.goal]
        listener = torch.cat([self.vel[:, 1], (self.landmarks - self.pos[:, 1:2]).reshape(e, -1), self.comm[:, 0]], -1)
        return torch.stack([speaker, listener], dim=1).float()

    def load_mpe_world(self, k: int, world) -> None:
        super().load_mpe_world(k, world)
        self.goal[k] = world.landmarks.index(world.agents[0].goal_b)


def parallel_env(**options):
    from envs.batched.parallel import BatchedParallelEnv

    return BatchedParallelEnv(SimpleSpeakerListenerSim, **options)
