"""A batched simulator as the trainer's vector env: the same ``reset``/``step`` -> ``EnvOutput``
(fields, shapes, dtypes and meanings) and the same attributes as :class:`envs.VectorEnv`.

Each env's episode e is reset from ``episode_seed(seed, env, e)``, as ``VectorEnv`` resets its
PettingZoo envs, and the simulators draw their initial states exactly as the PettingZoo envs do: the
same seed gives the same episodes on either backend.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.batched.base import BatchedSim
from envs.group import episode_seed
from envs.layout import Layout
from envs.vector import EnvOutput, VectorEnv


class BatchedVectorEnv:
    backend = "batched"
    has_positions = True

    def __init__(self, scenario, sim: BatchedSim, seed: int = 0, compile: bool = False):
        self.scenario = scenario
        self.sim = sim
        self.num_envs = sim.num_envs
        self.device = sim.device
        self.seed = int(seed)
        self.layout = Layout.from_spaces(sim.agents, sim.observation_spaces, sim.action_spaces)
        if self.layout.raw_obs_dim != sim.obs_width:
            raise ValueError(f"{sim.name}: padded observation width {sim.obs_width} "
                             f"!= layout's {self.layout.raw_obs_dim}")
        self.state_dim = sim.state_dim
        self.pos_dim = 2
        e, n = self.num_envs, self.layout.n_agents
        self._episodes = np.zeros(e, dtype=np.int64)
        self._returns = torch.zeros(e, n, dtype=torch.float64, device=self.device)
        self._lengths = torch.zeros(e, dtype=torch.int64, device=self.device)
        # alive as of the last output: all ones (no agent leaves mid-episode) unless the sim says
        # which agents are in play (active()); the next step's final_alive is this mask
        self._alive = torch.ones(e, n, dtype=torch.bool, device=self.device)
        # success() defined: episode_success on every step, as VectorEnv where the env reports it
        self.reports_success = type(sim).success is not BatchedSim.success
        self._agent_id = torch.eye(n, device=self.device).expand(e, n, n) if self.layout.agent_id else None
        self.scored = torch.ones(n, dtype=torch.bool, device=self.device)  # as VectorEnv.scored
        # the part of a step that is the same every step, as one compiled program: at small E a step
        # is ~100 tiny tensor ops, and their dispatch, not the arithmetic, is what costs
        self.compiled = bool(compile)
        self._move = torch.compile(self._move_eager, dynamic=False) if compile else self._move_eager

    n_agents = VectorEnv.n_agents  # both read the layout
    obs_dim = VectorEnv.obs_dim

    # ---- episodes and seeds -----------------------------------------------------------------------
    def _reset_envs(self, env_ids: list[int]) -> None:
        rngs = [np.random.default_rng(episode_seed(self.seed, k, int(self._episodes[k]))) for k in env_ids]
        self._episodes[env_ids] += 1
        self.sim.reset_envs(env_ids, rngs)
        idx = torch.as_tensor(env_ids, dtype=torch.long, device=self.device)
        self._returns[idx] = 0.0
        self._lengths[idx] = 0

    def episode_counts(self) -> np.ndarray:
        """Episodes started so far by each env (they fix the next reset seeds)."""
        return self._episodes.copy()

    def set_episode_counts(self, counts) -> None:
        """Make the next resets use the seeds of episode ``counts[k]`` of env k (for resuming)."""
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} episode counts, got shape {counts.shape}")
        self._episodes[:] = counts

    # ---- exact resume: the state tensors are the whole state, so they are saved as they are ----------
    def snapshot(self) -> dict:
        return {"sim": self.sim.snapshot(), "episodes": self._episodes.copy(), "returns": self._returns.clone(),
                "lengths": self._lengths.clone()}

    def restore(self, snapshot: dict) -> torch.Tensor:
        """Set every env to ``snapshot``'s state; returns the observations there [E, N, O_raw]."""
        if len(snapshot.get("episodes", ())) != self.num_envs or "sim" not in snapshot:
            raise ValueError(f"the snapshot does not hold {self.num_envs} batched envs (was it saved by another "
                             "backend? resume with the backend the run was trained on)")
        self.sim.restore(snapshot["sim"])
        self._episodes[:] = snapshot["episodes"]
        self._returns.copy_(snapshot["returns"].to(self.device))
        self._lengths.copy_(snapshot["lengths"].to(self.device))
        self._update_alive()
        return self.sim.observations()

    # ---- API --------------------------------------------------------------------------------------
    def _update_alive(self) -> bool:
        """Read the sim's in-play agents in its current state (after any reset) into ``_alive``;
        False (``_alive`` untouched) where the sim has no ``active()``."""
        active = self.sim.active()
        if active is None:
            return False
        self._alive = active.to(device=self.device, dtype=torch.bool).clone()
        return True

    def _with_id(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self._agent_id is None else torch.cat([obs, self._agent_id], dim=-1)

    def reset(self) -> EnvOutput:
        self._reset_envs(list(range(self.num_envs)))
        self._update_alive()
        obs = self.sim.observations()
        return EnvOutput(obs=self._with_id(obs), state=self.sim.state(obs), alive=self._alive.clone(),
                         positions=self.sim.positions())

    def _move_eager(self, actions: torch.Tensor) -> EnvOutput:
        """Every env one step on, read in the state reached (before any auto-reset): the whole step
        but the resets, the success read-out and who is in play afterwards (``step`` adds those)."""
        reward, terminated, truncated = self.sim.step(actions)
        e, n = self.num_envs, self.n_agents
        reward = reward.float()
        self._returns += reward  # float32 rewards summed in float64, as the PettingZoo adapter does
        self._lengths += 1
        final_obs = self.sim.observations()
        final_state = self.sim.state(final_obs)
        final_positions = self.sim.positions()
        done = terminated | truncated
        took_part = self._alive.clone()
        return EnvOutput(
            obs=final_obs, state=final_state, alive=took_part, reward=reward,
            terminated=terminated[:, None].expand(e, n).clone(), truncated=truncated[:, None].expand(e, n).clone(),
            final_obs=self._with_id(final_obs), final_state=final_state, done_env=done,
            dropped_env=torch.zeros(e, dtype=torch.bool, device=self.device),
            episode_return=torch.where(done[:, None], self._returns, torch.zeros_like(self._returns)),
            episode_length=torch.where(done, self._lengths, torch.zeros_like(self._lengths)),
            positions=final_positions, final_positions=final_positions,
            final_alive=took_part.clone(),
        )

    def step(self, actions: torch.Tensor) -> EnvOutput:
        """``actions``: [E, N] ints (discrete) or [E, N, A] floats (continuous)."""
        out = self._move(actions)
        done = out.done_env
        any_done = bool(done.any())
        if self.reports_success:  # 0 where no episode ended (see EnvOutput.episode_success)
            success = torch.zeros(self.num_envs, device=self.device)
            if any_done:  # read in the state just reached, before the auto-reset
                value = self.sim.success()
                value = torch.full_like(success, float("nan")) if value is None else value.float()
                success = torch.where(done, value, success)
            out.episode_success = success
        ended = torch.nonzero(done).flatten().tolist() if any_done else []
        if ended:
            self._reset_envs(ended)
            out.obs = self.sim.observations()
            out.state = self.sim.state(out.obs)
            out.positions = self.sim.positions()
        if self._update_alive():  # who is in play in the state reached (after any reset)
            out.alive = self._alive.clone()
        out.obs = self._with_id(out.obs)
        return out

    random_actions = VectorEnv.random_actions  # needs only layout and num_envs

    def render(self, k: int = 0):
        raise NotImplementedError("the batched backend does not render; use backend=pettingzoo to record episodes")

    def raw_env(self, k: int = 0):
        raise NotImplementedError("the batched backend has no PettingZoo env per index; use backend=pettingzoo")

    def keep_final_frames(self):
        raise NotImplementedError("the batched backend does not render; use backend=pettingzoo to record episodes")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
