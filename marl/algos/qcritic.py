"""Actor-critics that learn Q-critics off-policy: the critic network and what MADDPG / MATD3
(``marl/algos/ddpg.py``) and MASAC / ISAC (``marl/algos/sac.py``) share.

A Q-critic gives every agent i the value of an action from a context: centralized, the global
state and i's one-hot id (Lowe et al. 2017: Q_i(s, a_1..a_N)); independent, i's own observation.
For continuous actions the context is joined by the actions (centralized: every agent's, as seen
from agent i, so an actor update can put i's fresh action in its own slot while the others keep
what they did); for discrete actions the critic outputs one value per own action, given the other
agents' actions (centralized) or nothing else (independent). An ensemble of K members (TD3's and
SAC's twin critics) is K networks under ``critic.sharing=full``, or K x N masked views of one
network under ``masks`` (Kaleidoscope's critic ensemble), per-unit weights under ``none``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from marl.algos.base import ActStep
from marl.algos.offpolicy import ReplayAlgorithm, ReplayConfig, polyak
from marl.builders import sharing_spec
from marl.communication import CommInputs
from marl.config import ConfigError
from marl.hooks import make_hooks, param_groups, trainable
from marl.nets import head, mlp, with_ids
from marl.ppo import masked_mean
from marl.sharing import ONE_NETWORK


class QCritic(nn.Module):
    """K members of a per-agent value network: inputs ``[..., N, F]`` -> ``[..., K, N, out]``."""

    def __init__(self, inp: int, out: int, n_agents: int, members: int, hidden: int, layers: int, activation: str,
                 layer_norm: bool, spec):
        super().__init__()
        self.n_agents, self.ensemble = n_agents, members
        copies = members if spec.name in ONE_NETWORK else 1
        spec = spec if copies > 1 or members == 1 else dataclasses.replace(spec, units=members * n_agents)
        self.nets = nn.ModuleList(nn.Sequential(mlp(inp, hidden, layers, activation, layer_norm, spec),
                                                head(hidden, out, 1.0, spec)) for _ in range(copies))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.nets) > 1 or self.ensemble == 1:
            return torch.stack([net(x) for net in self.nets], dim=-3)
        y = self.nets[0](x.repeat(*([1] * (x.dim() - 2)), self.ensemble, 1))  # unit k*N + i: member k, agent i
        return y.view(*x.shape[:-2], self.ensemble, self.n_agents, y.shape[-1])


def joint_views(actions: torch.Tensor, fresh: torch.Tensor | None = None) -> torch.Tensor:
    """``[..., N, A]`` -> ``[..., N, N*A]``: row i holds every agent's action; with ``fresh``, agent
    i's own slot holds ``fresh[i]`` (the others keep ``actions``)."""
    N, A = actions.shape[-2:]
    views = actions.unsqueeze(-3).expand(*actions.shape[:-2], N, N, A)
    if fresh is not None:
        own = torch.eye(N, dtype=torch.bool, device=actions.device).unsqueeze(-1)
        views = torch.where(own, fresh.unsqueeze(-2), views)
    return views.reshape(*actions.shape[:-2], N, N * A)


def others_views(actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Discrete ``[..., N]`` -> ``[..., N, N*A]``: row i holds the others' one-hot actions, its own slot zero."""
    N = actions.shape[-1]
    onehot = F.one_hot(actions, n_actions).to(torch.float32)
    views = onehot.unsqueeze(-3).expand(*actions.shape, N, n_actions)
    own = torch.eye(N, dtype=torch.bool, device=actions.device).unsqueeze(-1)
    return views.masked_fill(own, 0.0).reshape(*actions.shape, N * n_actions)


@dataclass
class QCriticConfig(ReplayConfig):
    """Replay, soft targets and twin critics for the off-policy actor-critics."""

    gamma: float = 0.95  # 25-step MPE episodes bootstrap at truncation (as MADDPG's and our PPO's default)
    tau: float = 0.01  # soft (Polyak) target update at each actor update
    n_critics: int = 1  # critic ensemble members; the target takes their minimum (TD3's clipped double Q)
    policy_delay: int = 1  # critic steps per actor (and target) update
    loss: str = "mse"  # the critic's TD loss: mse or huber (delta 1)

    def validate(self) -> None:
        super().validate()
        for key in ("n_critics", "policy_delay"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0 (got {getattr(self, key)})")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"tau must be in (0, 1] (got {self.tau})")
        if self.loss not in ("mse", "huber"):
            raise ConfigError(f"loss={self.loss!r} is not a TD loss; valid: mse, huber")


class QCriticAlgorithm(ReplayAlgorithm):
    """An actor and a K-member Q-critic with target copies. A subclass gives ``next_values`` (the
    target value of what follows each step) and ``actor_loss``; the critic regresses every member
    on the n-step / TD(lambda) return of its own agent's reward."""

    Config = QCriticConfig
    critics = ("centralized",)
    uses_target_actor = True  # DDPG/TD3 bootstrap from a target actor; SAC from the online one

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        layout, c = env.layout, cfg.critic
        self.centralized = self.critic_kind(cfg) == "centralized"
        self.n_actions = layout.n_actions if layout.discrete else layout.action_dim
        N = layout.n_agents
        if self.centralized:
            inp = env.state_dim + N + (N * self.n_actions)
        else:
            inp = layout.obs_dim + (N if c.sharing == "full_id" else 0) + (0 if layout.discrete else self.n_actions)
        out = self.n_actions if layout.discrete else 1
        K = cfg.algo.n_critics
        self.critic = QCritic(inp, out, N, K, c.hidden, c.layers, cfg.actor.activation, c.layer_norm,
                              sharing_spec(cfg, c.sharing, K * N))
        self.register_buffer("eye", torch.eye(N), persistent=False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False) if self.uses_target_actor else None
        self.hooks = make_hooks(cfg, self.networks())
        self.actor_params = trainable(self.actor, self.hooks)
        self.actor_opt = torch.optim.Adam(param_groups(self.actor_params, cfg.lr, self.hooks), eps=1e-5)
        self.critic_opt = torch.optim.Adam(param_groups(list(self.critic.parameters()), cfg.critic_lr or cfg.lr,
                                                        self.hooks), eps=1e-5)
        self.random_actions = cfg.algo.learning_starts > 0  # uniform actions until learning starts

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.critic.ensemble != 1:
            raise ConfigError(f"algo={cls.name} sizes its critic ensemble with algo.n_critics (the target is the "
                              f"members' minimum); leave critic.ensemble at 1 (got {cfg.critic.ensemble})")

    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_opt": self.actor_opt, "critic_opt": self.critic_opt, **super().optimizers()}

    def describe(self) -> str:
        kind = "centralized" if self.centralized else "independent"
        members = f" x{self.cfg.algo.n_critics}" if self.cfg.algo.n_critics > 1 else ""
        return f"{kind} Q-critic{members}, replay {self.cfg.algo.buffer_segments} segments"

    def before_iteration(self, progress) -> None:
        self.random_actions = progress.env_steps < self.cfg.algo.learning_starts
        super().before_iteration(progress)

    def uniform_actions(self, like: torch.Tensor) -> torch.Tensor:
        """Continuous actions drawn uniformly from the action box (a padded dim stays at its bound)."""
        a = self.actor
        return a.box_centre + a.box_half * (2 * torch.rand(like.shape, device=like.device) - 1)

    # ---- the critic ------------------------------------------------------------------------------
    def q(self, net: QCritic, b: dict, own: torch.Tensor | None, others: torch.Tensor | None, nxt: bool = False):
        """``net``'s members at the steps (or, ``nxt``, at what follows them): ``[T, B, K, N]`` for
        continuous actions (``own`` [T, B, N, A]: each agent's action in its own slot; ``others``: the
        other agents' actions, default ``own``), ``[T, B, K, N, A]`` for discrete ones (``others``
        [T, B, N] long: the other agents' actions; unused by an independent critic)."""
        obs, state = (b["next_obs"], b["next_state"]) if nxt else (b["obs"], b["state"])
        if self.centralized:
            N = obs.shape[-2]
            context = torch.cat([state.unsqueeze(-2).expand(*state.shape[:-1], N, state.shape[-1]),
                                 self.eye.expand(*state.shape[:-1], N, N)], dim=-1)
        else:
            context = with_ids(obs, self.eye if self.cfg.critic.sharing == "full_id" else None)
        if self.env_info.layout.discrete:
            parts = [context, others_views(others, self.n_actions)] if self.centralized else [context]
            return net(torch.cat(parts, dim=-1))
        if self.centralized:
            acts = joint_views(own if others is None else others, None if others is None else own)
        else:
            acts = own
        return net(torch.cat([context, acts], dim=-1)).squeeze(-1)

    def critic_loss(self, b: dict) -> tuple[torch.Tensor, dict]:
        """Every member's TD error on its agent's own reward, summed over members (TD3's sum of the
        twins' losses), averaged over the agents that acted."""
        with torch.no_grad():
            next_values = self.next_values(b)  # [T, B, N]
            boot = b["boot"]
            target = self.returns(b["rewards"], next_values, boot, boot & ~b["truncated"])
        if self.env_info.layout.discrete:
            members = self.q(self.critic, b, None, b["actions"])
            acted = b["actions"][:, :, None, :, None].expand(*members.shape[:-1], 1)
            pred = members.gather(-1, acted).squeeze(-1)
        else:
            pred = self.q(self.critic, b, b["actions"], None)
        err = pred - target.unsqueeze(-2)
        per = F.huber_loss(err, torch.zeros_like(err), reduction="none") if self.cfg.algo.loss == "huber" else err**2
        alive = b["alive"].float().unsqueeze(-2)
        loss = masked_mean(per, alive) * self.cfg.algo.n_critics
        stats = {"critic_loss": loss.detach(), "q_mean": masked_mean(pred.detach(), alive),
                 "target_mean": masked_mean(target, alive.squeeze(-2))}
        return loss, stats

    # ---- the algorithm's two pieces ----------------------------------------------------------------
    def next_values(self, b: dict) -> torch.Tensor:  # pragma: no cover - interface
        """The target value ``[T, B, N]`` of what follows each step (before discounting and boot)."""
        raise NotImplementedError

    def actor_loss(self, b: dict) -> tuple[torch.Tensor, dict]:  # pragma: no cover - interface
        """The actor's loss (plus the hooks' terms) and statistics."""
        raise NotImplementedError

    def after_actor_step(self, stats: dict, step: bool = True) -> dict:
        """After the actor's step (``stats``: its loss's statistics), e.g. SAC's temperature step;
        ``step=False`` reports the statistics without stepping (before learning starts)."""
        return {}

    # ---- a gradient step ------------------------------------------------------------------------------
    def train_step(self, b: dict) -> dict:
        step = int(self.grad_steps)
        loss, stats = self.critic_loss(b)
        loss = loss + self.hook_losses({}, self.term_mask(b), {"critic": loss}, stats)
        self.backward(loss, stats, step, "critic")
        stats["critic_grad_norm"] = self.clip(self.critic.parameters(), step, "critic")
        self.critic_opt.step()
        if step % self.cfg.algo.policy_delay == 0:
            owner = next((h for h in self.hooks if h.takes_update(step)), None)  # the learned graph's own steps
            loss, actor_stats = self.actor_loss(b)
            self.backward(loss, actor_stats, step, "actor")
            if owner is not None:
                actor_stats.update(owner.step(step, 0))
            else:
                actor_stats["actor_grad_norm"] = self.clip(self.actor_params, step, "actor")
                self.actor_opt.step()
            stats.update(actor_stats)
            stats.update(self.after_actor_step(actor_stats))
            self.update_targets()
        self.grad_steps += 1
        return stats

    def loss(self, b: dict) -> dict:
        _, stats = self.critic_loss(b)
        _, actor_stats = self.actor_loss(b)
        nan = float("nan")
        return {**stats, **actor_stats, **self.after_actor_step(actor_stats, step=False), "critic_grad_norm": nan,
                "actor_grad_norm": nan}

    def update_targets(self) -> None:
        pairs = [(self.target_critic, self.critic)]
        if self.target_actor is not None:
            pairs.append((self.target_actor, self.actor))
        polyak(pairs, self.cfg.algo.tau)

    # ---- acting -------------------------------------------------------------------------------------
    def act(self, obs: torch.Tensor, carry: dict, inputs: CommInputs) -> ActStep:  # pragma: no cover - interface
        raise NotImplementedError
