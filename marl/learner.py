"""The learner: actor + critic + value normaliser + optimisers, the rollout they fill, and one
PPO update over it (GAE, then epochs of minibatches; whole sequences when the actor is a GRU)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from envs.layout import Layout
from marl.config import TrainConfig
from marl.nets import Actor, make_critic
from marl.ppo import Minibatch, ValueNorm, gae, masked_mean, ppo_loss


@dataclass
class Rollout:
    """T steps of E envs; every per-agent tensor is [T, E, N, ...]."""

    obs: torch.Tensor
    state: torch.Tensor  # [T, E, S]
    alive: torch.Tensor  # bool, the agent acted at t
    actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor  # critic's (denormalised) value of s_t
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    bootstrap: torch.Tensor  # V(final obs) where truncated at t, else 0
    starts: torch.Tensor  # [T, E] bool, a new episode starts at t (GRU state reset)
    h0: torch.Tensor | None  # [E, N, H] GRU state before step 0

    @staticmethod
    def empty(T: int, E: int, layout: Layout, state_dim: int, device) -> "Rollout":
        N = layout.n_agents
        z = lambda *s, dtype=torch.float32: torch.zeros(*s, dtype=dtype, device=device)  # noqa: E731
        act_shape = (T, E, N) if layout.discrete else (T, E, N, layout.action_dim)
        return Rollout(
            obs=z(T, E, N, layout.obs_dim),
            state=z(T, E, state_dim),
            alive=z(T, E, N, dtype=torch.bool),
            actions=z(*act_shape, dtype=torch.long if layout.discrete else torch.float32),
            logp=z(T, E, N),
            values=z(T, E, N),
            rewards=z(T, E, N),
            terminated=z(T, E, N, dtype=torch.bool),
            truncated=z(T, E, N, dtype=torch.bool),
            bootstrap=z(T, E, N),
            starts=z(T, E, dtype=torch.bool),
            h0=None,
        )

    def next_values(self, last_values: torch.Tensor) -> torch.Tensor:
        """What follows each step: V(s_{t+1}) inside an episode, V(final obs) after a truncation,
        0 after a termination (or for an agent that was not acting)."""
        following = torch.cat([self.values[1:], last_values.unsqueeze(0)])
        ended = self.ended
        return torch.where(ended, self.bootstrap * self.truncated, following)

    @property
    def ended(self) -> torch.Tensor:
        return self.terminated | self.truncated | ~self.alive


class Learner(nn.Module):
    def __init__(self, cfg: TrainConfig, layout: Layout, state_dim: int):
        super().__init__()
        self.cfg = cfg
        self.layout = layout
        a, c = cfg.actor, cfg.critic
        self.actor = Actor(layout, a.hidden, a.layers, a.activation, a.recurrent, a.layer_norm)
        self.critic = make_critic(cfg.critic_kind, layout, state_dim, c.hidden, c.layers, a.activation, c.layer_norm)
        self.value_norm = ValueNorm() if cfg.ppo.value_norm else None
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr or cfg.lr, eps=1e-5)

    # ---- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def value(self, obs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        v = self.critic(obs, state)
        return self.value_norm.denormalize(v) if self.value_norm is not None else v

    def set_lr_fraction(self, frac: float) -> None:
        for opt, base in ((self.actor_opt, self.cfg.lr), (self.critic_opt, self.cfg.critic_lr or self.cfg.lr)):
            for group in opt.param_groups:
                group["lr"] = base * frac

    # ---- learning ----------------------------------------------------------------------------
    def update(self, ro: Rollout, last_values: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg.ppo
        adv, returns = gae(ro.rewards, ro.values, ro.next_values(last_values), ro.ended, cfg.gamma, cfg.gae_lambda)
        mask = ro.alive.float()
        old_values = ro.values
        if self.value_norm is not None:
            # old values in the normaliser's units they were predicted in, so the value clip is
            # centred on the critic's own outputs; targets in the updated units
            old_values = self.value_norm.normalize(old_values)
            self.value_norm.update(returns[ro.alive])
            returns = self.value_norm.normalize(returns)
        if cfg.adv_norm:
            mean = masked_mean(adv, mask)
            std = masked_mean((adv - mean) ** 2, mask).sqrt()
            adv = (adv - mean) / (std + 1e-8)

        data = Minibatch(ro.obs, ro.state, ro.actions, ro.logp, old_values, adv, returns, mask)
        T, E = ro.rewards.shape[:2]
        totals: dict[str, float] = {}
        n_updates = 0
        for _ in range(cfg.epochs):
            if self.actor.recurrent:  # whole sequences of a subset of envs
                chunks = torch.randperm(E).chunk(cfg.minibatches)
                batches = [(self._select_envs(data, idx), idx) for idx in chunks]
            else:  # any (t, e) pairs
                chunks = torch.randperm(T * E).chunk(cfg.minibatches)
                batches = [(self._select_steps(data, idx), None) for idx in chunks]
            for mb, env_idx in batches:
                params = self._policy_params(mb, ro, env_idx)
                logp, entropy = self.actor.log_prob_entropy(params, mb.actions)
                values = self.critic(mb.obs, mb.state)
                loss, stats = ppo_loss(logp, entropy, values, mb, cfg)
                self.actor_opt.zero_grad(set_to_none=True)
                self.critic_opt.zero_grad(set_to_none=True)
                loss.backward()
                stats["actor_grad_norm"] = nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
                stats["critic_grad_norm"] = nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                self.actor_opt.step()
                self.critic_opt.step()
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
                n_updates += 1
        out = {k: v / n_updates for k, v in totals.items()}
        with torch.no_grad():
            ret_var = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
            err_var = masked_mean((returns - old_values - masked_mean(returns - old_values, mask)) ** 2, mask)
            out["explained_variance"] = float(1 - err_var / ret_var) if ret_var > 0 else float("nan")
        return out

    @staticmethod
    def _select_steps(d: Minibatch, idx: torch.Tensor) -> Minibatch:
        flat = lambda x: x.reshape(-1, *x.shape[2:])[idx]  # noqa: E731
        return Minibatch(*(flat(getattr(d, f)) for f in Minibatch.__dataclass_fields__))

    @staticmethod
    def _select_envs(d: Minibatch, idx: torch.Tensor) -> Minibatch:
        return Minibatch(*(getattr(d, f)[:, idx] for f in Minibatch.__dataclass_fields__))

    def _policy_params(self, mb: Minibatch, ro: Rollout, env_idx: torch.Tensor | None) -> torch.Tensor:
        if env_idx is None:
            return self.actor(mb.obs)[0]
        h = ro.h0[env_idx]
        starts = ro.starts[:, env_idx]
        out = []
        for t in range(mb.obs.shape[0]):
            h = h * (~starts[t]).float()[:, None, None]
            params, h = self.actor(mb.obs[t], h)
            out.append(params)
        return torch.stack(out)
