"""PPO for many agents: ``mappo`` (a centralized critic) and ``ippo`` (independent critics).

Reads top to bottom: what a step stores (log-probabilities) -> finishing a rollout (values and
truncation bootstraps) -> the update (GAE, value normaliser, epochs of minibatches, the clipped
loss in ``marl/ppo.py``). A recurrent actor trains on whole sequences of a subset of envs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from marl.algos import register_algorithm
from marl.algos.base import Algorithm
from marl.builders import build_critic
from marl.communication import CommInputs
from marl.config import AlgoConfig, ConfigError
from marl.guards import check_grad, check_loss
from marl.hooks import make_hooks, param_groups, trainable
from marl.ppo import Minibatch, ValueNorm, gae, masked_mean, ppo_loss


@dataclass
class PPOConfig(AlgoConfig):
    """Clipped-surrogate PPO with GAE, a value normaliser and advantage normalisation."""

    epochs: int = 10  # passes over each rollout
    minibatches: int = 1  # per epoch (whole sequences of E/minibatches envs for a recurrent actor)
    gamma: float = 0.95  # 25-step MPE episodes bootstrap at truncation: a horizon near theirs
    gae_lambda: float = 0.95  # GAE's lambda
    clip: float = 0.2  # the surrogate's ratio clip
    value_clip: float = 0.2  # 0 turns value clipping off
    ent_coef: float = 0.01  # entropy bonus
    vf_coef: float = 1.0  # weight of the value loss
    max_grad_norm: float = 10.0  # gradient-norm clip, per network
    value_norm: bool = True  # running mean/std of the returns
    adv_norm: bool = True  # normalise advantages over the rollout's acting agents
    lr_anneal: bool = False  # linear decay of the learning rates to 0

    def validate(self) -> None:
        super().validate()
        for key in ("epochs", "minibatches", "clip", "max_grad_norm"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0 (got {getattr(self, key)})")
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1] (got {getattr(self, key)})")
        for key in ("value_clip", "ent_coef", "vf_coef"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"{key} must be >= 0 (got {getattr(self, key)})")


class PPO(Algorithm):
    """One actor and one critic trained by PPO; the subclasses fix the kind of critic."""

    Config = PPOConfig

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        self.critic = build_critic(cfg, env, self.critic_kind(cfg))
        self.value_norm = ValueNorm() if cfg.algo.value_norm else None
        self.hooks = make_hooks(cfg, self.networks())
        self.actor_params = trainable(self.actor, self.hooks)
        # fused: one kernel per optimizer step instead of ~10 ops per parameter tensor (a third of the
        # time of a minibatch's step at E=16)
        self.actor_opt = torch.optim.Adam(param_groups(self.actor_params, cfg.lr, self.hooks), eps=1e-5, fused=True)
        self.critic_opt = torch.optim.Adam(param_groups(list(self.critic.parameters()), cfg.critic_lr or cfg.lr,
                                                        self.hooks), eps=1e-5, fused=True)
        # fuses the networks' elementwise work into compiled kernels: the first update pays the
        # compilation (~15 s on 2 cores), later ones run ~20% faster on CPU
        self._loss = torch.compile(self.minibatch_loss) if cfg.compile else self.minibatch_loss

    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_opt": self.actor_opt, "critic_opt": self.critic_opt, **super().optimizers()}

    # ---- acting: values and bootstraps -------------------------------------------------------------
    @torch.no_grad()
    def value(self, obs: torch.Tensor, state: torch.Tensor, inputs: CommInputs | None = None) -> torch.Tensor:
        v = self.critic(obs, state, inputs)
        return self.value_norm.denormalize(v) if self.value_norm is not None else v

    def on_step(self, ro, t: int, out) -> None:
        """Bootstrap a truncated episode from its last observation, not the reset one. Only
        ``truncated & ~terminated`` bootstraps: an env may report both on one step."""
        bootstrap = ro.field("bootstrap", out.reward)
        if out.truncated.any():
            final = CommInputs(out.final_positions, out.final_alive)
            bootstrap[t] = self.value(out.final_obs, out.final_state, final) * (out.truncated & ~out.terminated)

    def finish_rollout(self, ro, last) -> None:
        # the critic does not change during a rollout: one batched pass over all T steps costs far
        # less than T small ones
        flat = lambda x: None if x is None else x.flatten(0, 1)  # noqa: E731
        positions = ro.positions if "positions" in ro else None
        inputs = CommInputs(flat(positions), flat(ro.alive))
        if self.critic.ensemble == 1:
            values = self.value(flat(ro.obs), flat(ro.state), inputs)
        else:  # each member's own prediction is the centre of its value clip
            with torch.no_grad():
                members = self.critic.members(flat(ro.obs), flat(ro.state), inputs)  # [T*E, K, N]
            ro.data["old_members"] = members.view(ro.T, ro.n_envs, *members.shape[-2:])
            values = members.mean(-2)
            values = self.value_norm.denormalize(values) if self.value_norm is not None else values
        ro.data["values"] = values.view(ro.rewards.shape)
        ro.final["last_values"] = self.value(last.obs, last.state, CommInputs(last.positions, last.alive))

    @staticmethod
    def next_values(ro) -> torch.Tensor:
        """What follows each step: V(s_{t+1}) inside an episode, V(final obs) after a truncation,
        0 after a termination (or for an agent that was not acting)."""
        following = torch.cat([ro.values[1:], ro.final["last_values"].unsqueeze(0)])
        return torch.where(ro.ended, ro.bootstrap * (ro.truncated & ~ro.terminated), following)

    # ---- learning ----------------------------------------------------------------------------------
    def update(self, ro, progress) -> dict[str, float]:
        cfg = self.cfg.algo
        if cfg.lr_anneal:
            self.set_lr_fraction(1.0 - progress.fraction)
        data, explained = self.prepare(ro)
        totals = Averages()
        for epoch in range(cfg.epochs):
            # a hook may own this gradient step (the learned graph's bi-level epochs)
            owner = next((h for h in self.hooks if h.takes_update(epoch)), None)
            for b, (mb, env_idx) in enumerate(self.minibatches(data, ro)):
                loss, stats, terms = self._loss(mb, ro.carry0, ro.starts, env_idx)
                main = {"actor": stats["policy_loss"].abs() + cfg.ent_coef * stats["entropy"].abs(),
                        "critic": cfg.vf_coef * stats["value_loss"]}
                loss = loss + self.hook_losses(terms, mb.mask, main, stats)
                self.backward_and_step(loss, stats, epoch, b, owner, lambda: self.step_networks(epoch, b))
                totals.add(stats)
        out = totals.means()
        out["explained_variance"] = explained
        return out

    def backward_and_step(self, loss, stats: dict, epoch: int, minibatch: int, owner, step) -> None:
        """Check the loss, zero every gradient, backpropagate, then step the hook that owns this
        gradient step or else ``step()`` (the algorithm's own networks); statistics go into ``stats``."""
        check_loss(stats, loss, epoch, minibatch)
        for opt in self.optimizers().values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        stats.update(owner.step(epoch, minibatch) if owner is not None else step())

    def prepare(self, ro) -> tuple[Minibatch, float]:
        """Advantages and (normalised) returns for the whole rollout, as one Minibatch, and how much
        of the returns' variance the rollout's values explained (both in the returns' own units)."""
        cfg = self.cfg.algo
        adv, returns = gae(ro.rewards, ro.values, self.next_values(ro), ro.ended, cfg.gamma, cfg.gae_lambda)
        mask = ro.alive.float()
        explained = explained_variance(returns, ro.values, mask)
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
        positions = ro.positions if "positions" in ro else None
        data = Minibatch(ro.obs, ro.state, ro.actions, ro.logp, old_values, adv, returns, mask, positions,
                         ro.replay, ro.carry, ro.old_members if "old_members" in ro else None)
        return data, explained

    def minibatches(self, data: Minibatch, ro, whole: bool = False):
        """This epoch's minibatches: whole sequences of a subset of envs for a recurrent actor,
        any (t, e) pairs otherwise; one minibatch (or ``whole``) is the whole rollout in order."""
        n = 1 if whole else self.cfg.algo.minibatches
        T, E = ro.T, ro.n_envs
        if self.actor.recurrent:
            for idx in ([slice(None)] if n == 1 else torch.randperm(E).chunk(n)):
                yield data.select(lambda x: x[:, idx]), idx
        else:
            for idx in ([slice(None)] if n == 1 else torch.randperm(T * E).chunk(n)):
                yield data.select(lambda x: x.reshape(-1, *x.shape[2:])[idx]), None

    def minibatch_loss(self, mb: Minibatch, carry0: dict, starts: torch.Tensor, env_idx):
        """Both networks' forward passes over one minibatch and PPO's loss on them (the part that
        ``compile=true`` hands to torch.compile). Returns (loss, stats, the actor's terms)."""
        inputs = CommInputs(mb.positions, mb.mask > 0)
        params, terms = self.policy_params(mb, inputs, carry0, starts, env_idx)
        logp, entropy = self.actor.log_prob_entropy(params, mb.actions)
        # an ensemble trains every member on the same targets: [K, B..., N] against [B..., N]
        values = self.critic.members(mb.obs, mb.state, inputs).movedim(-2, 0)
        values = values[0] if self.critic.ensemble == 1 else values
        loss, stats = ppo_loss(logp, entropy, values, mb, self.cfg.algo)
        return loss, stats, terms

    def policy_params(self, mb: Minibatch, inputs: CommInputs, carry0: dict, starts: torch.Tensor, env_idx):
        """The actor's distribution parameters for the minibatch, replaying the rollout's decisions:
        in one pass over (t, e) pairs from the stored carries, or step by step over whole sequences
        (a recurrent actor) from the carry before the rollout."""
        if env_idx is None:
            params, _, aux = self.actor(mb.obs, mb.carry, inputs, mb.replay)
            return params, aux.terms
        carry = {k: v[env_idx] for k, v in carry0.items()}
        starts = starts[:, env_idx]
        out, terms = [], []
        for t in range(mb.obs.shape[0]):
            carry = self.actor.reset_carry(carry, starts[t])
            step = CommInputs(*(None if x is None else x[t] for x in (inputs.positions, inputs.alive)),
                              team=inputs.team)  # team [N] is the same every step
            params, carry, aux = self.actor(mb.obs[t], carry, step, {k: v[t] for k, v in mb.replay.items()})
            out.append(params)
            terms.append(aux.terms)
        stacked = {k: torch.stack([s[k] for s in terms]) for k in terms[0]} if terms else {}
        return torch.stack(out), stacked

    def step_networks(self, epoch: int, minibatch: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg.algo
        stats = {"actor_grad_norm": nn.utils.clip_grad_norm_(self.actor_params, cfg.max_grad_norm),
                 "critic_grad_norm": nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)}
        check_grad(stats["actor_grad_norm"], "actor", epoch, minibatch)
        check_grad(stats["critic_grad_norm"], "critic", epoch, minibatch)
        self.actor_opt.step()
        self.critic_opt.step()
        return stats

    def set_lr_fraction(self, frac: float) -> None:
        for opt in (self.actor_opt, self.critic_opt):
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * frac


class Averages:
    """Means of an update's statistics, each over the gradient steps that reported it."""

    def __init__(self):
        self.values: dict[str, list[float]] = {}

    def add(self, stats: dict) -> None:
        for k, v in stats.items():
            self.values.setdefault(k, []).append(float(v.detach() if torch.is_tensor(v) else v))

    def means(self) -> dict[str, float]:
        return {k: sum(v) / len(v) for k, v in self.values.items()}


@torch.no_grad()
def explained_variance(returns: torch.Tensor, predicted: torch.Tensor, mask: torch.Tensor) -> float:
    ret_var = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    err_var = masked_mean((returns - predicted - masked_mean(returns - predicted, mask)) ** 2, mask)
    return float(1 - err_var / ret_var) if ret_var > 0 else float("nan")


@register_algorithm("mappo")
class MAPPO(PPO):
    """PPO with a centralized critic V(s, agent) (Yu et al. 2022), or a GNN critic with critic=graph.

    The graph critic passes messages over all agents' observations instead of reading the state."""

    critics = ("centralized", "graph")


@register_algorithm("ippo")
class IPPO(PPO):
    """PPO with independent critics V(o_i), each agent's from its own observation (de Witt et al. 2020)."""

    critics = ("independent",)
