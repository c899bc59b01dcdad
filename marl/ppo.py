"""PPO's building blocks, shared by the PPO-family algorithms (``marl/algos/``): advantages
(GAE), the value normaliser, masked means, the minibatch and the clipped loss.

Every tensor is ``[T, E, N]`` (time, env, agent); dead agents are masked out of every mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    ended: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over ``[T, ...]``.

    ``next_values[t]`` is the value of what follows step t: V(s_{t+1}) inside an episode,
    V(final obs) where the episode was truncated at t, and 0 where it terminated.
    ``ended[t]`` stops the advantage from flowing back across an episode boundary.
    Returns (advantages, returns = advantages + values).
    """
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    not_ended = 1.0 - ended.float()
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] - values[t]
        running = delta + gamma * lam * not_ended[t] * running
        adv[t] = running
    return adv, adv + values


class ValueNorm(nn.Module):
    """Mean/variance of value targets as debiased exponential moving averages over updates; the
    critic learns normalised targets. An EMA, not a running total, because targets drift early in
    training (bootstrapped values grow towards their horizon) and a cumulative mean lags behind."""

    def __init__(self, beta: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.beta, self.eps = beta, eps
        self.register_buffer("ema_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("ema_sq", torch.zeros((), dtype=torch.float64))
        self.register_buffer("debias", torch.zeros((), dtype=torch.float64))
        # the debiased statistics, refreshed on update (read on every step of a rollout)
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        if x.numel() == 0:
            return
        x = x.double()
        b = self.beta
        self.ema_mean.mul_(b).add_((1 - b) * x.mean())
        self.ema_sq.mul_(b).add_((1 - b) * (x**2).mean())
        self.debias.mul_(b).add_(1 - b)
        mean = self.ema_mean / self.debias
        self.mean.copy_(mean)
        self.std.copy_((self.ema_sq / self.debias - mean**2).clamp(min=1e-4).sqrt())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` where ``mask`` is 1; ``x`` may carry extra leading axes (a critic ensemble)."""
    return (x * mask).sum() / mask.expand_as(x).sum().clamp(min=1.0)


@dataclass
class Minibatch:
    obs: torch.Tensor  # [B..., N, O]
    state: torch.Tensor  # [B..., S]
    actions: torch.Tensor
    old_logp: torch.Tensor  # [B..., N]
    old_values: torch.Tensor  # normalised, [B..., N]
    advantages: torch.Tensor
    returns: torch.Tensor  # normalised
    mask: torch.Tensor  # float, 1 where the agent acted
    positions: torch.Tensor | None = None  # [B..., N, d] for graphs built from the scene
    replay: dict = field(default_factory=dict)  # the actor's stochastic decisions, [B..., ...] each
    carry: dict = field(default_factory=dict)  # the carry each step started from, [B..., N, ...] each
    old_members: torch.Tensor | None = None  # a critic ensemble's own old predictions, normalised, [B..., K, N]

    def select(self, pick) -> "Minibatch":
        """The minibatch with ``pick`` applied to every tensor (and to those in the dicts)."""
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, dict):
                out[name] = {k: pick(v) for k, v in value.items()}
            else:
                out[name] = None if value is None else pick(value)
        return Minibatch(**out)


def value_loss(values: torch.Tensor, mb: Minibatch, cfg) -> torch.Tensor:
    """Half the squared error to the returns; with ``value_clip`` the larger of it and the error of
    the prediction clipped to within ``value_clip`` of the old one. ``values`` [K, B..., N] (an
    ensemble) clips each member around its own old prediction, not the members' mean: a member away
    from the mean would otherwise get no gradient towards a target beyond it."""
    value_err = (values - mb.returns) ** 2
    if cfg.value_clip > 0:
        old = mb.old_values if mb.old_members is None else mb.old_members.movedim(-2, 0)
        clipped = old + (values - old).clamp(-cfg.value_clip, cfg.value_clip)
        value_err = torch.max(value_err, (clipped - mb.returns) ** 2)
    return 0.5 * masked_mean(value_err, mb.mask)


def ppo_loss(logp, entropy, values, mb: Minibatch, cfg) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate, the (optionally clipped) value loss and the entropy bonus."""
    ratio = (logp - mb.old_logp).exp()
    surrogate = torch.min(ratio * mb.advantages, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * mb.advantages)
    policy_loss = -masked_mean(surrogate, mb.mask)

    vloss = value_loss(values, mb, cfg)
    entropy_mean = masked_mean(entropy, mb.mask)
    loss = policy_loss + cfg.vf_coef * vloss - cfg.ent_coef * entropy_mean
    with torch.no_grad():
        log_ratio = logp - mb.old_logp
        stats = {
            "policy_loss": policy_loss,
            "value_loss": vloss,
            "entropy": entropy_mean,
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mb.mask),
            "clip_frac": masked_mean(((ratio - 1).abs() > cfg.clip).float(), mb.mask),
        }
    return loss, stats
