"""HAPPO (Kuba et al., ICLR 2022, "Trust Region Policy Optimisation in Multi-Agent Reinforcement
Learning"): agents are updated one after another, in a fresh random order each update; agent
i_m's clipped surrogate weighs the advantage by M = the product of the probability ratios
pi_new/pi_old of the agents updated before it in this order, so each agent improves the joint
objective given its predecessors' new policies. The critic is centralized and trained as MAPPO's.

Per-agent parameters: agent i's turn moves only agent i's slice of every per-agent tensor
(``AgentAdam``), plus the parameters all agents share. ``sharing=none`` gives N separate actors (the
paper's setting). Every other scheme is the shared-parameter variant (HARL's ``share_param``): the
shared weights move on every agent's turn, each on that agent's data and surrogate; under ``masks``
each agent's thresholds move only on its own turn; under ``full`` / ``full_id`` the one network moves
N times per update. The agents still differ in what they were updated on, not in what they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from marl import sharing
from marl.algos import register_algorithm
from marl.algos.ppo import PPO, Averages, PPOConfig
from marl.communication import CommInputs
from marl.guards import check_grad, check_loss
from marl.hooks import param_groups
from marl.ppo import masked_mean, value_loss


@dataclass
class HAPPOConfig(PPOConfig):
    """PPO's options, plus how the agents share one advantage."""

    team_advantage: bool = True  # every agent's surrogate uses the mean over alive agents of the advantages


class AgentAdam(torch.optim.Adam):
    """Adam whose ``step(unit)`` updates only slice ``unit`` of the parameters in groups marked
    ``per_unit`` (a leading agent axis), and all of every other group. Each slice keeps its own
    moments and step count, so an agent's weights move only on its own turns."""

    @torch.no_grad()
    def step(self, unit: int | None = None):  # noqa: D102 - see the class docstring
        for group in self.param_groups:
            b1, b2 = group["betas"]
            per_unit = group.get("per_unit", False)
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros(p.shape[0] if per_unit else ())
                    st["exp_avg"], st["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
                if per_unit and unit is not None:  # one agent's slice: views, updated in place
                    param, grad, m, v = p[unit], p.grad[unit], st["exp_avg"][unit], st["exp_avg_sq"][unit]
                    st["step"][unit] += 1
                    k = st["step"][unit]
                else:
                    param, grad, m, v = p, p.grad, st["exp_avg"], st["exp_avg_sq"]
                    st["step"] += 1
                    k = st["step"].view(-1, *([1] * (p.dim() - 1))) if per_unit else st["step"]
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                denom = (v.sqrt() / (1 - b2**k).sqrt()).add_(group["eps"])
                param.add_(-(group["lr"] / (1 - b1**k)) * m / denom)


@register_algorithm("happo")
class HAPPO(PPO):
    """Heterogeneous-agent PPO (Kuba et al. 2022): agents updated in turn, each weighted by its predecessors' ratios.

    A centralized critic, trained as MAPPO's."""

    Config = HAPPOConfig
    critics = ("centralized", "graph")

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        per_unit = {id(p) for p in sharing.per_unit_parameters(self.actor)}
        groups = []
        for group in param_groups(self.actor_params, cfg.lr, self.hooks):
            for flag in (True, False):
                ps = [p for p in group["params"] if (id(p) in per_unit) == flag]
                if ps:
                    groups.append({**group, "params": ps, "per_unit": flag})
        self.actor_opt = AgentAdam(groups, eps=1e-5)

    def update(self, ro, progress) -> dict[str, float]:
        cfg = self.cfg.algo
        if cfg.lr_anneal:
            self.set_lr_fraction(1.0 - progress.fraction)
        data, explained = self.prepare(ro)
        adv = data.advantages
        if cfg.team_advantage:
            adv = (masked_mean_over_agents(adv, data.mask)).expand_as(adv)
        factor = torch.ones_like(adv[..., :1])  # M: [T, E, 1], the ratios of the agents updated so far
        totals = Averages()  # actor statistics over the agents' turns, critic ones over the critic's steps

        for agent in torch.randperm(self.env_info.n_agents).tolist():
            turn = replace(data, advantages=factor * adv)
            for epoch in range(cfg.epochs):
                owner = next((h for h in self.hooks if h.takes_update(epoch)), None)
                for b, (mb, env_idx) in enumerate(self.minibatches(turn, ro)):
                    loss, stats, terms = self.agent_loss(mb, ro, env_idx, agent)
                    main = {"actor": stats["policy_loss"].abs() + cfg.ent_coef * stats["entropy"].abs()}
                    loss = loss + self.hook_losses(terms, mb.mask, main, stats)
                    self.backward_and_step(loss, stats, epoch, b, owner, lambda: self.step_agent(agent, epoch, b))
                    totals.add(stats)
            with torch.no_grad():  # this agent's new policy joins M for the agents after it
                ratio = self.new_ratio(data, ro, agent)
                factor = factor * torch.where(data.mask[..., agent : agent + 1] > 0, ratio, torch.ones_like(ratio))
        for epoch in range(cfg.epochs):
            for b, (mb, _) in enumerate(self.minibatches(data, ro)):
                totals.add(self.critic_step(mb, epoch, b))
        out = totals.means()
        out["explained_variance"] = explained
        out["happo_factor_std"] = float(factor[data.mask.amax(-1, keepdim=True) > 0].std())
        return out

    def step_agent(self, agent: int, epoch: int, minibatch: int) -> dict:
        """Clip the actor's gradient and move agent ``agent``'s slice (and the shared weights)."""
        norm = nn.utils.clip_grad_norm_(self.actor_params, self.cfg.algo.max_grad_norm)
        check_grad(norm, "actor", epoch, minibatch)
        self.actor_opt.step(agent)
        return {"actor_grad_norm": norm}

    def new_ratio(self, data, ro, agent: int) -> torch.Tensor:
        """``[T, E, 1]``: agent ``agent``'s probability ratio pi_new / pi_old on the whole rollout."""
        mb, env_idx = next(iter(self.minibatches(data, ro, whole=True)))
        params, _ = self.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, env_idx)
        logp, _ = self.actor.log_prob_entropy(params, mb.actions)
        return (logp - mb.old_logp)[..., agent : agent + 1].exp().view(*data.old_logp.shape[:-1], 1)

    def agent_loss(self, mb, ro, env_idx, agent: int):
        """Agent ``agent``'s clipped surrogate (advantages already weighted by M) and entropy bonus."""
        cfg = self.cfg.algo
        params, terms = self.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, env_idx)
        logp, entropy = self.actor.log_prob_entropy(params, mb.actions)
        mask = mb.mask[..., agent]
        ratio = (logp - mb.old_logp)[..., agent].exp()
        adv = mb.advantages[..., agent]
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
        policy_loss = -masked_mean(surrogate, mask)
        entropy_mean = masked_mean(entropy[..., agent], mask)
        with torch.no_grad():
            log_ratio = (logp - mb.old_logp)[..., agent]
            stats = {"policy_loss": policy_loss, "entropy": entropy_mean,
                     "approx_kl": masked_mean((ratio - 1) - log_ratio, mask),
                     "clip_frac": masked_mean(((ratio - 1).abs() > cfg.clip).float(), mask)}
        return policy_loss - cfg.ent_coef * entropy_mean, stats, terms

    def critic_step(self, mb, epoch: int, b: int) -> dict:
        cfg = self.cfg.algo
        values = self.critic.members(mb.obs, mb.state, CommInputs(mb.positions, mb.mask > 0)).movedim(-2, 0)
        values = values[0] if self.critic.ensemble == 1 else values
        vloss = value_loss(values, mb, cfg)
        stats = {"value_loss": vloss}
        loss = cfg.vf_coef * vloss + self.hook_losses({}, mb.mask, {"critic": cfg.vf_coef * vloss}, stats)
        check_loss(stats, loss, epoch, b)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        stats["critic_grad_norm"] = nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        check_grad(stats["critic_grad_norm"], "critic", epoch, b)
        self.critic_opt.step()
        return stats


def masked_mean_over_agents(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[..., N] -> [..., 1]``: the mean over the agents that acted (0 where none did)."""
    return (x * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
