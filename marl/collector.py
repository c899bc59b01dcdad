"""Collects rollouts: steps the envs with the current policy (and its communication graph) and
fills a ``Rollout``; keeps the env state, GRU state and finished-episode statistics across calls."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch

from envs import VectorEnv
from envs.vector import EnvOutput
from marl.communication import CommInputs
from marl.learner import Learner, Rollout


@dataclass
class Collector:
    """Steps the envs with the current policy and fills a Rollout; carries env state across calls."""

    env: VectorEnv  # or envs.batched.BatchedVectorEnv: the same interface
    learner: Learner
    rollout_len: int
    device: torch.device

    def __post_init__(self):
        self.out = self.env.reset()
        self.starts = torch.ones(self.env.num_envs, dtype=torch.bool, device=self.device)
        actor = self.learner.actor
        self.h = actor.initial_state(self.out.alive.shape, self.device) if actor.recurrent else None
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []
        self.edges = self.edge_slots = 0  # messages sent vs possible, for the "edges used" log
        self.env_restarts = 0  # envs recreated after raising (restart_failed_envs)
        lrn = self.learner
        self.uses_positions = self.env.has_positions and (lrn.actor.comm is not None or lrn.cfg.critic_kind == "graph")

    @torch.no_grad()
    def collect(self) -> tuple[Rollout, torch.Tensor]:
        env, learner = self.env, self.learner
        comm_module = learner.actor.comm
        pos_dim = env.pos_dim if self.uses_positions else 0
        gated = comm_module is not None and comm_module.gate is not None
        ro = Rollout.empty(self.rollout_len, env.num_envs, env.layout, env.state_dim, self.device, pos_dim, gated)
        if self.h is not None:
            ro.h0 = self.h.clone()
        out = self.out
        for t in range(self.rollout_len):
            if self.h is not None:
                self.h = self.h * (~self.starts).float()[:, None, None]
            inputs = CommInputs(out.positions if pos_dim else None, out.alive)
            action, logp, self.h = learner.actor.act(out.obs, self.h, inputs=inputs)
            ro.obs[t], ro.state[t], ro.alive[t], ro.starts[t] = out.obs, out.state, out.alive, self.starts
            ro.actions[t], ro.logp[t] = action, logp
            if pos_dim:
                ro.positions[t] = out.positions
            if gated:
                ro.gate[t] = comm_module.last_gate
            if comm_module is not None:  # counted as tensors: no device sync per step
                self.edges += comm_module.last_edges.num_edges
                self.edge_slots = self.edge_slots + out.alive.sum() * max(env.n_agents - 1, 1)

            out = env.step(action)
            ro.rewards[t], ro.terminated[t], ro.truncated[t] = out.reward, out.terminated, out.truncated
            if out.truncated.any():  # bootstrap from the last observation, not the reset one
                final = CommInputs(out.final_positions if pos_dim else None, out.final_alive)
                ro.bootstrap[t] = learner.value(out.final_obs, out.final_state, final) * out.truncated
            self.starts = out.done_env
            if out.done_env.any():
                self.env_restarts += int(out.dropped_env.sum())
                done = out.done_env & ~out.dropped_env
                self.finished_returns += out.episode_return[done].mean(-1).tolist()
                self.finished_lengths += out.episode_length[done].tolist()
        self.out = out
        # the critic does not change during a rollout: one batched pass over all T steps costs far
        # less than T small ones
        flat = lambda x: None if x is None else x.flatten(0, 1)  # noqa: E731
        values = learner.value(flat(ro.obs), flat(ro.state), CommInputs(flat(ro.positions), flat(ro.alive)))
        ro.values.copy_(values.view_as(ro.values))
        return ro, learner.value(out.obs, out.state, CommInputs(out.positions if pos_dim else None, out.alive))

    # ---- exact resume: what carries over from one collect() to the next --------------------
    def state_dict(self) -> dict:
        """The envs' replay log, the last env output the policy will act on, episode starts, the
        GRU state, the restart count and the delayed channel's previous features."""
        comm_module = self.learner.actor.comm
        # an env backend without snapshot() (one that cannot rebuild its state) resumes from fresh episodes
        return {
            "env": self.env.snapshot() if hasattr(self.env, "snapshot") else None,
            "out": {f.name: getattr(self.out, f.name) for f in fields(EnvOutput)},
            "starts": self.starts,
            "h": self.h,
            "env_restarts": self.env_restarts,
            "channel_previous": comm_module._previous if comm_module is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the envs' mid-episode state by replaying their actions, then continue exactly
        where the saved collector stopped. An env that does not replay to the saved observation
        (it ignores its reset seed) is named in a warning: the run resumes, but not bit-identically."""
        if state["env"] is None or not hasattr(self.env, "restore"):
            warnings.warn(f"{type(self.env).__name__} cannot snapshot its envs: they start fresh episodes on resume "
                          "(the run continues, not bit-identically)")
            self.env_restarts = state["env_restarts"]
            return
        replayed = self.env.restore(state["env"])
        self.out = EnvOutput(**{k: None if v is None else v.to(self.device) for k, v in state["out"].items()})
        raw = self.out.obs[..., : replayed.shape[-1]]
        differs = [k for k in range(self.env.num_envs) if not torch.equal(replayed[k], raw[k])]
        if differs:
            warnings.warn(f"envs {differs} did not replay to their checkpointed observations (does the scenario "
                          "honour its reset seed?); resuming from the replayed state, not bit-identically")
            self.out.obs = torch.cat([replayed, self.out.obs[..., replayed.shape[-1]:]], dim=-1)
        self.starts = state["starts"].to(self.device)
        self.h = None if state["h"] is None else state["h"].to(self.device)
        self.env_restarts = state["env_restarts"]
        if self.learner.actor.comm is not None:
            previous = state["channel_previous"]
            self.learner.actor.comm._previous = None if previous is None else previous.to(self.device)

    def pop_comm_stats(self) -> dict[str, float]:
        if self.learner.actor.comm is None:
            return {}
        steps = self.rollout_len * self.env.num_envs
        slots = max(float(self.edge_slots), 1.0)
        stats = {"edges_used_frac": self.edges / slots, "messages_per_step": self.edges / steps}
        self.edges = self.edge_slots = 0
        return stats

    def pop_episode_stats(self) -> dict[str, float]:
        r, self.finished_returns = self.finished_returns, []
        self.finished_lengths = []
        if not r:
            return {"episode_return_mean": float("nan"), "episode_return_std": float("nan"), "episodes": 0}
        return {"episode_return_mean": float(np.mean(r)), "episode_return_std": float(np.std(r)), "episodes": len(r)}
