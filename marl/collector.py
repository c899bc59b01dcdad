"""Collects rollouts: steps the envs with the algorithm's policy and fills a ``Rollout``; keeps
the env state, the actor's carry and finished-episode statistics across calls.

Generic over algorithms: the algorithm chooses actions and says what to store (``act``), may
look at each env step (``on_step``) and finishes the rollout (``finish_rollout``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch

from envs import VectorEnv
from envs.vector import EnvOutput
from marl.communication import CommInputs
from marl.rollout import Rollout, agent_starts


@dataclass
class Collector:
    env: VectorEnv  # or envs.batched.BatchedVectorEnv: the same interface
    algo: "marl.algos.Algorithm"  # noqa: F821
    rollout_len: int
    device: torch.device

    def __post_init__(self):
        self.out = self.env.reset()
        self.starts = torch.ones(self.out.alive.shape, dtype=torch.bool, device=self.device)  # [E, N]
        self.carry = self.algo.actor.initial_carry(self.out.alive.shape, self.device)
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []
        self.finished_success: list[float] = []  # NaN for an episode whose env reported none
        # decided once (not from the episodes seen), so the metrics columns are fixed from the first row
        self.reports_success = bool(getattr(self.env, "reports_success", False))
        self.edges = self.edge_slots = 0  # messages delivered vs possible, for the "edges used" log
        self.message_floats = 0  # floats those messages carried
        self.env_restarts = 0  # envs recreated after raising (restart_failed_envs)

    @torch.no_grad()
    def collect(self) -> Rollout:
        env, algo, actor = self.env, self.algo, self.algo.actor
        ro = Rollout(self.rollout_len, env.num_envs, self.device)
        out = self.out
        for t in range(self.rollout_len):
            self.carry = actor.reset_carry(self.carry, self.starts)
            if t == 0:
                ro.carry0 = {k: v.clone() for k, v in self.carry.items()}
            step = algo.act(out.obs, self.carry, CommInputs(out.positions, out.alive))
            ro.put(t, obs=out.obs, state=out.state, alive=out.alive, starts=self.starts, actions=step.action)
            if out.positions is not None:
                ro.put(t, positions=out.positions)
            ro.put(t, **step.store)
            ro.put_replay(t, step.aux.replay)
            ro.put_carry(t, self.carry)
            if step.aux.edges is not None:  # counted as tensors: no device sync per step
                self.edges += step.aux.edges.num_edges
                self.message_floats += step.aux.edges.num_edges * step.aux.message_floats
                self.edge_slots = self.edge_slots + out.alive.sum() * max(env.n_agents - 1, 1)
            self.carry = step.carry

            out = env.step(step.action)
            ro.put(t, rewards=out.reward, terminated=out.terminated, truncated=out.truncated)
            algo.on_step(ro, t, out)
            self.starts = agent_starts(out, ro.alive[t])
            if out.done_env.any():
                self.env_restarts += int(out.dropped_env.sum())
                done = out.done_env & ~out.dropped_env
                self.finished_returns += out.episode_return[done][:, env.scored].mean(-1).tolist()
                self.finished_lengths += out.episode_length[done].tolist()
                if out.episode_success is not None:
                    self.finished_success += out.episode_success[done].tolist()
        self.out = out
        ro.final["alive"] = out.alive
        algo.finish_rollout(ro, out)
        return ro

    # ---- exact resume: what carries over from one collect() to the next --------------------
    def state_dict(self) -> dict:
        """The envs' replay log, the last env output the policy will act on, episode starts, the
        actor's carry and the restart count."""
        # an env backend without snapshot() (one that cannot rebuild its state) resumes from fresh episodes
        return {
            "env": self.env.snapshot() if hasattr(self.env, "snapshot") else None,
            "out": {f.name: getattr(self.out, f.name) for f in fields(EnvOutput)},
            "starts": self.starts,
            "carry": self.carry,
            "env_restarts": self.env_restarts,
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
        starts = state["starts"].to(self.device)
        # a checkpoint of round 13 kept one flag per env
        self.starts = starts[:, None].expand(self.out.alive.shape).clone() if starts.dim() == 1 else starts
        self.carry = {k: v.to(self.device) for k, v in state["carry"].items()}
        self.env_restarts = state["env_restarts"]

    def pop_comm_stats(self) -> dict[str, float]:
        if not self.edge_slots:
            return {}
        steps = self.rollout_len * self.env.num_envs
        slots = max(float(self.edge_slots), 1.0)
        stats = {"edges_used_frac": self.edges / slots, "messages_per_step": self.edges / steps,
                 "message_floats_per_agent_step": self.message_floats / (steps * self.env.n_agents)}
        self.edges = self.edge_slots = self.message_floats = 0
        return stats

    def pop_episode_stats(self) -> dict[str, float]:
        r, self.finished_returns = self.finished_returns, []
        self.finished_lengths = []
        success, self.finished_success = self.finished_success, []
        if not r:
            stats = {"episode_return_mean": float("nan"), "episode_return_std": float("nan"), "episodes": 0}
        else:
            stats = {"episode_return_mean": float(np.mean(r)), "episode_return_std": float(np.std(r)),
                     "episodes": len(r)}
        if self.reports_success:  # only then: metrics of scenarios without success stay as they were
            reported = [v for v in success if not np.isnan(v)]
            stats["episode_success_mean"] = float(np.mean(reported)) if reported else float("nan")
        return stats
