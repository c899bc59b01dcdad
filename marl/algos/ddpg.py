"""Deterministic policy gradients with Q-critics: ``maddpg`` (Lowe et al. 2017: a centralized
Q_i(s, a_1..a_N) per agent), ``iddpg`` (independent Q_i(o_i, a_i)) and ``matd3`` (Ackermann et al.
2019: MADDPG with TD3's twin critics, target policy smoothing and delayed actor updates).

Reads top to bottom: acting (the squashed deterministic action plus Gaussian noise, uniform
actions until learning starts) -> the critic's target (the target actor's smoothed action at what
follows, the members' minimum) -> the actor's loss (-Q of its own fresh action, the other agents
keeping theirs from the buffer). Continuous actions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from marl.algos import register_algorithm
from marl.algos.base import ActStep
from marl.algos.qcritic import QCriticAlgorithm, QCriticConfig
from marl.config import ConfigError
from marl.ppo import masked_mean


@dataclass
class DDPGConfig(QCriticConfig):
    """MADDPG's deterministic actor with Gaussian exploration."""

    exploration_noise: float = 0.1  # std of the acting noise, as a fraction of each action dim's half-range
    target_noise: float = 0.0  # TD3's target policy smoothing: noise std on the target action (fraction) ...
    target_noise_clip: float = 0.5  # ... clipped to this (fraction of the half-range)
    action_l2: float = 1e-3  # penalty on the actor's pre-squash output (keeps tanh out of saturation)

    def validate(self) -> None:
        super().validate()
        for key in ("exploration_noise", "target_noise", "target_noise_clip", "action_l2"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"{key} must be >= 0 (got {getattr(self, key)})")


@dataclass
class MATD3Config(DDPGConfig):
    """TD3's defaults: twin critics, smoothed targets, an actor step every second critic step."""

    n_critics: int = 2
    policy_delay: int = 2
    target_noise: float = 0.2


class DDPG(QCriticAlgorithm):
    Config = DDPGConfig
    action_spaces = ("continuous",)
    squashed_actions = True

    def act(self, obs, carry, inputs) -> ActStep:
        u, carry, aux = self.actor(obs, carry, inputs)
        if self.random_actions:
            action = self.uniform_actions(u)
        else:
            a = self.actor
            action = a.clip_to_box(a.to_box(u) + self.cfg.algo.exploration_noise * a.box_half * torch.randn_like(u))
        # the actor's output (in the rollout only): what a replay of the step must give again
        return ActStep(action, {"policy_out": u}, carry, aux)

    def next_values(self, b):
        a, cfg = self.target_actor, self.cfg.algo
        _, u_next, _ = self.unroll(a, b, current=bool(a.carry_keys()), following=True, grad=False)
        action = a.to_box(u_next)
        if cfg.target_noise > 0:
            clip = cfg.target_noise_clip * a.box_half
            noise = cfg.target_noise * a.box_half * torch.randn_like(action)
            action = a.clip_to_box(action + torch.clamp(noise, -clip, clip))
        return self.q(self.target_critic, b, action, None, nxt=True).min(-2).values

    def actor_loss(self, b):
        u, _, terms = self.unroll(self.actor, b, current=True, following=False, grad=True)
        q = self.q(self.critic, b, self.actor.to_box(u), b["actions"])[..., 0, :]  # member 0, as TD3's actor
        alive = b["alive"].float()
        pg = -masked_mean(q, alive)
        reg = masked_mean((u**2 * self.actor.dim_mask).sum(-1), alive)
        loss = pg + self.cfg.algo.action_l2 * reg
        stats = {"actor_loss": pg.detach(), "action_l2": reg.detach()}
        return loss + self.hook_losses(terms, self.term_mask(b), {"actor": pg.abs()}, stats), stats


@register_algorithm("maddpg")
class MADDPG(DDPG):
    """MADDPG (Lowe et al. 2017): deterministic actors, a centralized Q_i(s, a_1..a_N) per agent, replay."""

    critics = ("centralized",)


@register_algorithm("iddpg")
class IDDPG(DDPG):
    """Independent DDPG: deterministic actors, each agent's Q_i(o_i, a_i) from its own observation and action."""

    critics = ("independent",)


@register_algorithm("matd3")
class MATD3(DDPG):
    """MATD3 (Ackermann et al. 2019): MADDPG with twin critics, target smoothing and delayed actor updates.

    ``critic=independent`` gives independent TD3 agents."""

    Config = MATD3Config
    critics = ("centralized", "independent")
