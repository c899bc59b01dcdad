"""``res_qmix``: QMIX with Pan et al. 2021's regularised softmax (RES) against its overestimation.

Two changes to QMIX's loss, nothing else. The bootstrap of what follows a step is a softmax
(inverse temperature ``softmax_beta``) over the joint actions one agent's deviation away from the
greedy one, weighted by the online mixer and valued by the target mixer, instead of the greedy joint
action's value alone. And Q_tot is pulled towards the Monte Carlo return of the rest of the episode,
``mc_penalty`` x (Q_tot - G_t)^2, an anchor that no bootstrap can inflate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from marl.algos import register_algorithm
from marl.algos.offpolicy import segment_returns
from marl.algos.qlearning import QMIX, NextQ, QMIXConfig
from marl.config import ConfigError
from marl.ppo import masked_mean

__all__ = ["RESQMIX", "RESQMIXConfig", "monte_carlo_returns", "one_deviation_joint_values"]


@dataclass
class RESQMIXConfig(QMIXConfig):
    """QMIX plus the softmax bootstrap and the Monte Carlo anchor (RES's MPE settings by default)."""

    softmax_beta: float = 0.05  # inverse temperature of the bootstrap's softmax (0: their mean; large: the max)
    mc_penalty: float = 0.05  # weight of (Q_tot - the Monte Carlo return)^2 next to the TD loss

    def validate(self) -> None:
        super().validate()
        for key in ("softmax_beta", "mc_penalty"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"{key} must be >= 0 (got {getattr(self, key)})")


def one_deviation_joint_values(q: torch.Tensor, greedy: torch.Tensor) -> torch.Tensor:
    """Per-agent value vectors of the joint actions that differ from ``greedy`` in at most one agent's
    action: ``q`` ``[..., N, A]``, ``greedy`` ``[..., N]`` (indices) -> ``[..., N, A, N]``, where entry
    ``[i, a]`` is every agent's Q at its greedy action except agent i's, at ``a``."""
    n = q.shape[-2]
    at_greedy = q.gather(-1, greedy.unsqueeze(-1)).squeeze(-1)  # [..., N]
    deviating = torch.eye(n, dtype=torch.bool, device=q.device).unsqueeze(1)  # [i, 1, j]: j is the deviator i
    return torch.where(deviating, q.unsqueeze(-1), at_greedy[..., None, None, :])


def monte_carlo_returns(rewards: torch.Tensor, cont: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted returns ``[T, ...]`` of the rewards from each step to its episode's end (``cont[t]``:
    step t+1 continues the episode), or to the segment's end where the episode goes on past it: the
    TD(1) return of a segment with nothing to bootstrap from."""
    nothing = torch.zeros_like(rewards)
    return segment_returns(rewards, nothing, nothing.bool(), cont, gamma, td_lambda=1.0)


@register_algorithm("res_qmix")
class RESQMIX(QMIX):
    """RES-QMIX (Pan et al. 2021): QMIX with a softmax bootstrap over one-agent deviations from the
    greedy joint action and a penalty towards the Monte Carlo return."""

    Config = RESQMIXConfig
    mixer_name = "QMIX mixer, RES softmax bootstrap and Monte Carlo anchor"

    def next_team_value(self, following: NextQ, b: dict) -> torch.Tensor:
        """``sum_u softmax(beta Q_tot(s', u)) Q_tot^target(s', u)`` over the N x A joint actions u one
        agent's deviation from the greedy one: the online network and mixer weigh, the target ones
        value (with double Q off, the target network weighs too). Invalid actions take no weight."""
        weigher = following.online if following.online is not None else following.target
        greedy = weigher.argmax(-1)
        counts = b["boot"].to(weigher.dtype)[..., None, None, :]  # agents whose future does not count enter as 0
        state = b["next_state"]  # the mixers broadcast it over the N x A joint actions
        invalid = self.actor.invalid  # [N, A]: padded actions
        weights = self.mixer(one_deviation_joint_values(weigher, greedy) * counts, state)  # [T, B, N, A]
        weights = (self.cfg.algo.softmax_beta * weights).masked_fill(invalid, float("-inf"))
        weights = torch.softmax(weights.flatten(-2), -1)
        values = self.target_mixer(one_deviation_joint_values(following.target, greedy) * counts, state)
        return (weights * values.masked_fill(invalid, 0.0).flatten(-2)).sum(-1)

    def value_penalty(self, pred, b, mask, stats):
        """``mc_penalty`` x the mean square of Q_tot's distance from the team's Monte Carlo return."""
        cont = (b["boot"] & ~b["truncated"]).any(-1)
        mc = monte_carlo_returns(self.team_reward(b), cont, self.cfg.algo.gamma)
        gap = masked_mean((pred - mc) ** 2, mask.to(pred.dtype))
        stats.update(mc_return_mean=masked_mean(mc, mask.to(pred.dtype)), mc_gap=gap.detach())
        return self.cfg.algo.mc_penalty * gap
