"""Soft actor-critic with Q-critics: ``masac`` (a centralized Q_i per agent) and ``isac``
(independent Q_i), for discrete and continuous actions (Haarnoja et al. 2018; the discrete form of
Christodoulou 2019), with twin critics and automatic entropy tuning.

Reads top to bottom: acting (a sample of the policy; a squashed Gaussian for continuous actions)
-> the critic's target (the online policy at what follows: the members' minimum minus alpha log pi;
for discrete actions the expectation over the agent's own actions, exactly) -> the actor's loss
(alpha log pi - Q, the other agents keeping their buffer actions) -> the temperature's loss, which
moves the policies' entropy towards ``target_entropy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from marl.algos import register_algorithm
from marl.algos.base import ActStep
from marl.algos.qcritic import QCriticAlgorithm, QCriticConfig
from marl.config import ConfigError
from marl.ppo import masked_mean


@dataclass
class SACConfig(QCriticConfig):
    """Twin critics, soft targets every gradient step and a learned temperature alpha."""

    n_critics: int = 2
    init_alpha: float = 0.2  # the temperature's start (it weighs entropy against reward)
    autotune: bool = True  # learn alpha so the policies' entropy tracks target_entropy; False: alpha stays
    # the entropy alpha aims at, per agent: discrete, this fraction of the uniform policy's entropy log(valid
    # actions) (at 0.98, Christodoulou's choice, the policies stayed near uniform on MPE); continuous, this many
    # nats per action dim (-1: SAC's -dim(A))
    target_entropy_discrete: float = 0.5
    target_entropy_continuous: float = -1.0
    alpha_lr: float = 3e-4  # the temperature's learning rate

    def validate(self) -> None:
        super().validate()
        for key in ("init_alpha", "alpha_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0 (got {getattr(self, key)})")
        if not 0 <= self.target_entropy_discrete <= 1:
            raise ConfigError(f"target_entropy_discrete is a fraction of log(valid actions), in [0, 1] "
                              f"(got {self.target_entropy_discrete})")


class SAC(QCriticAlgorithm):
    Config = SACConfig
    uses_target_actor = False
    squashed_actions = True

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        a, layout = cfg.algo, env.layout
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(a.init_alpha)), requires_grad=a.autotune)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=a.alpha_lr, eps=1e-5)
        if layout.discrete:
            valid = torch.as_tensor(layout.action_mask).sum(-1).float()
            target = a.target_entropy_discrete * valid.log()
        else:
            dims = torch.as_tensor(layout.action_high != layout.action_low).sum(-1).float()
            target = a.target_entropy_continuous * dims
        self.register_buffer("target_entropy", target, persistent=False)  # [N], from the layout

    def optimizers(self):
        return {**super().optimizers(), "alpha_opt": self.alpha_opt}

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def act(self, obs, carry, inputs) -> ActStep:
        params, carry, aux = self.actor(obs, carry, inputs)
        if self.env_info.layout.discrete:
            action = torch.multinomial(params.softmax(-1).reshape(-1, params.shape[-1]), 1).view(params.shape[:-1])
        elif self.random_actions:
            action = self.uniform_actions(params)
        else:
            action = self.actor.to_box(params + self.actor.log_std.exp() * torch.randn_like(params))
        # the actor's output (in the rollout only): what a replay of the step must give again
        return ActStep(action, {"policy_out": params}, carry, aux)

    def sample(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised squashed-Gaussian action and its log-density (continuous actions)."""
        u = params + self.actor.log_std.exp() * torch.randn_like(params)
        return self.actor.to_box(u), self.actor.squashed_log_prob(params, u)

    def next_values(self, b):
        _, params, _ = self.unroll(self.actor, b, current=bool(self.actor.carry_keys()), following=True, grad=False)
        if self.env_info.layout.discrete:
            logp = params.log_softmax(-1)
            others = torch.multinomial(logp.exp().reshape(-1, logp.shape[-1]), 1).view(logp.shape[:-1])
            q = self.q(self.target_critic, b, None, others, nxt=True).min(-3).values  # [T, B, N, A]
            return (logp.exp() * (q - self.alpha * logp)).sum(-1)
        action, logp = self.sample(params)
        return self.q(self.target_critic, b, action, None, nxt=True).min(-2).values - self.alpha * logp

    def actor_loss(self, b):
        params, _, terms = self.unroll(self.actor, b, current=True, following=False, grad=True)
        alive = b["alive"].float()
        if self.env_info.layout.discrete:
            logp = params.log_softmax(-1)
            with torch.no_grad():  # the expectation over own actions is exact: no gradient through Q needed
                q = self.q(self.critic, b, None, b["actions"]).min(-3).values
            probs = logp.exp()
            per = (probs * (self.alpha * logp - q)).sum(-1)
            entropy = -(probs * logp).sum(-1)
        else:
            action, logp = self.sample(params)
            q = self.q(self.critic, b, action, b["actions"]).min(-2).values
            per = self.alpha * logp - q
            entropy = -logp
        loss = masked_mean(per, alive)
        stats = {"actor_loss": loss.detach(), "entropy": masked_mean(entropy.detach(), alive), "alpha": self.alpha,
                 "entropy_gap": masked_mean(entropy.detach() - self.target_entropy, alive)}
        return loss + self.hook_losses(terms, self.term_mask(b), {"actor": loss.abs()}, stats), stats

    def after_actor_step(self, stats: dict, step: bool = True) -> dict:
        """The temperature's loss ``log alpha x (entropy - target)``: a step moves alpha down while the
        policies' entropy (``stats["entropy_gap"]`` above its target) is high and up while it is low."""
        loss = self.log_alpha * stats["entropy_gap"]
        if step and self.cfg.algo.autotune:
            self.alpha_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.alpha_opt.step()
        return {"alpha_loss": loss.detach()}


@register_algorithm("masac")
class MASAC(SAC):
    """MASAC: soft actor-critic with a centralized Q_i(s, a) per agent, twin critics, learned temperature."""

    critics = ("centralized",)


@register_algorithm("isac")
class ISAC(SAC):
    """ISAC: soft actor-critic with each agent's Q_i(o_i, a_i) from its own observation, learned temperature."""

    critics = ("independent",)
