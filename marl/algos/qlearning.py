"""Value-based MARL: ``iql`` (independent Q-learning), ``vdn`` (Sunehag et al. 2018) and ``qmix``
(Rashid et al. 2018), off-policy from a replay buffer of rollout segments.

The Q-network is the actor: its discrete action head's logits are the Q-values of the actions
(invalid, padded actions at -1e9, so neither the greedy choice nor a bootstrap max can pick one).
Everything that reads an actor (greedy evaluation, tournaments, ``marl.load_policy``, every sharing
scheme, communication, the GRU) therefore works on these policies unchanged.

Reads top to bottom: acting (epsilon-greedy) -> what each env step stores (what follows it) -> the
update (segments into the buffer, sampled batches, the unrolled Q-network, targets, the TD loss)
-> the target networks. The three algorithms differ only in ``td_pieces``: IQL regresses every
agent's Q_i on its own reward; VDN and QMIX regress Q_tot = mix(Q_1..Q_N) on the team reward, the
mean over the agents acting at the step of their rewards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from marl.algos import register_algorithm
from marl.algos.base import ActStep
from marl.algos.offpolicy import ReplayAlgorithm, ReplayConfig, polyak, segment_returns
from marl.communication import CommInputs
from marl.config import ConfigError
from marl.hooks import make_hooks, param_groups, trainable
from marl.ppo import masked_mean

__all__ = ["IQL", "QMIX", "VDN", "QMixer", "SumMixer", "next_action_values", "segment_returns"]


@dataclass
class QLearningConfig(ReplayConfig):
    """Off-policy Q-learning from a replay buffer of rollout segments (EPyMARL-like defaults)."""

    eps_start: float = 1.0  # epsilon-greedy exploration, annealed linearly in env steps ...
    eps_end: float = 0.05  # ... down to this value ...
    eps_anneal_steps: int = 50_000  # ... over this many env steps
    target_update_interval: int = 200  # gradient steps between hard copies into the target networks
    tau: float = 0.0  # > 0: soft (Polyak) target update by this fraction every gradient step instead
    double_q: bool = True  # the online network picks the bootstrap action, the target network values it
    loss: Literal["mse", "huber"] = "mse"  # the TD loss (huber: delta 1)
    optimizer: Literal["adam", "rmsprop"] = "adam"  # rmsprop: PyMARL's original QMIX optimizer (alpha 0.99)

    def validate(self) -> None:
        super().validate()
        if not self.target_update_interval > 0:
            raise ConfigError(f"target_update_interval must be > 0 (got {self.target_update_interval})")
        if self.eps_anneal_steps < 0:
            raise ConfigError(f"eps_anneal_steps must be >= 0 (got {self.eps_anneal_steps})")
        for key in ("eps_start", "eps_end", "tau"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1] (got {getattr(self, key)})")


# ---- targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextQ:
    """Every action's Q-value at what follows each step ``[T, B, N, A]``: the target network's, and
    the online network's (without gradient; only with double Q-learning)."""

    target: torch.Tensor
    online: torch.Tensor | None = None

    def values(self) -> torch.Tensor:
        """The value of what follows, per agent ``[T, B, N]`` (see :func:`next_action_values`)."""
        return next_action_values(self.target, self.online)


def next_action_values(target_q: torch.Tensor, online_q: torch.Tensor | None = None) -> torch.Tensor:
    """The value of what follows a step, per agent: ``max_a target_q``, or with ``online_q`` (double
    Q-learning) ``target_q`` at the online network's greedy action. Invalid actions hold -1e9 in
    both networks' outputs, so neither the max nor the argmax can pick one."""
    if online_q is None:
        return target_q.max(-1).values
    return target_q.gather(-1, online_q.argmax(-1, keepdim=True)).squeeze(-1)


# ---- mixers --------------------------------------------------------------------------------------


class SumMixer(nn.Module):
    """VDN: Q_tot = the sum of the agents' Q-values (the caller zeroes those who do not act)."""

    def forward(self, qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return qs.sum(-1)


class QMixer(nn.Module):
    """QMIX's monotonic mixer: hypernetworks on the global state give non-negative (abs) weights of
    a two-layer network over the agents' Q-values, so dQ_tot/dQ_i >= 0:
    ``Q_tot = |W2(s)| . elu(|W1(s)| q + b1(s)) + V(s)``, W1 and W2 from two-layer hypernetworks."""

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hyper_hidden: int = 64,
                 state_norm: bool = False):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        # a LayerNorm on the hypernetworks' input bounds the scale of the weights they can produce
        self.state_norm = nn.LayerNorm(state_dim) if state_norm else nn.Identity()
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hyper_hidden), nn.ReLU(),
                                      nn.Linear(hyper_hidden, n_agents * embed))
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hyper_hidden), nn.ReLU(), nn.Linear(hyper_hidden, embed))
        self.value = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``qs`` [..., K.., N], ``state`` [..., S] -> Q_tot [..., K..]. Dims of ``qs`` beyond the state's
        (K..) are several joint actions mixed at the same state: its hypernetworks run once."""
        lead, n = state.shape[:-1], self.n_agents
        joint = qs.shape[len(lead):-1]
        # one batch dim: bmm is much faster than a 4-d matmul
        state = self.state_norm(state.reshape(-1, state.shape[-1]))
        w1 = self.hyper_w1(state).abs().view(-1, n, self.embed)
        hidden = F.elu(torch.bmm(qs.reshape(len(state), -1, n), w1) + self.hyper_b1(state).unsqueeze(1))  # [., K, E]
        w2 = self.hyper_w2(state).abs().unsqueeze(1)
        return ((hidden * w2).sum(-1) + self.value(state)).view(*lead, *joint)


# ---- the algorithm -------------------------------------------------------------------------------


class QLearning(ReplayAlgorithm):
    """The shared machinery; a subclass sets the mixer (none: IQL) and ``td_pieces``."""

    Config = QLearningConfig
    critics = ()
    action_spaces = ("discrete",)
    mixer_name = ""  # for describe()

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        self.mixer = self.build_mixer(cfg, env)
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False) if self.mixer is not None else None
        self.hooks = make_hooks(cfg, self.networks())
        mixer_params = list(self.mixer.parameters()) if self.mixer is not None else []
        self.params = trainable(self.actor, self.hooks) + mixer_params  # what q_opt moves and the clip covers
        groups = param_groups(self.params, cfg.lr, self.hooks)
        self.q_opt = (torch.optim.RMSprop(groups, alpha=0.99, eps=1e-5) if cfg.algo.optimizer == "rmsprop"
                      else torch.optim.Adam(groups, eps=1e-5))
        self.epsilon = cfg.algo.eps_start

    def build_mixer(self, cfg, env) -> nn.Module | None:
        return None

    def networks(self) -> dict[str, nn.Module]:
        nets = {"actor": self.actor}
        if self.mixer is not None and any(True for _ in self.mixer.parameters()):
            nets["mixer"] = self.mixer
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"q_opt": self.q_opt, **super().optimizers()}

    def describe(self) -> str:
        return f"{self.mixer_name}, replay {self.cfg.algo.buffer_segments} segments"

    # ---- acting ------------------------------------------------------------------------------------
    def before_iteration(self, progress) -> None:
        a = self.cfg.algo
        frac = min(progress.env_steps / a.eps_anneal_steps, 1.0) if a.eps_anneal_steps else 1.0
        self.epsilon = a.eps_start + frac * (a.eps_end - a.eps_start)
        super().before_iteration(progress)

    def act(self, obs: torch.Tensor, carry: dict, inputs: CommInputs) -> ActStep:
        """Epsilon-greedy: the greedy action, or with probability epsilon one drawn uniformly from
        the agent's valid actions (both draws from torch's global RNG, on every step)."""
        q, carry, aux = self.actor(obs, carry, inputs)
        greedy = q.argmax(-1)
        explore = torch.rand(greedy.shape, device=q.device) < self.epsilon
        valid = (~self.actor.invalid).to(q.dtype).expand_as(q).reshape(-1, q.shape[-1])
        uniform = torch.multinomial(valid, 1).view(greedy.shape)
        action = torch.where(explore, uniform, greedy)
        # the acted Q-values (in the rollout only, not the buffer): what a replay of the step must give again
        return ActStep(action, {"q": q.gather(-1, action.unsqueeze(-1)).squeeze(-1)}, carry, aux)

    def replay_metrics(self) -> dict[str, float]:
        return {"epsilon": self.epsilon}

    # ---- learning ------------------------------------------------------------------------------------
    def train_step(self, b: dict) -> dict:
        step = int(self.grad_steps)
        owner = next((h for h in self.hooks if h.takes_update(step)), None)  # the learned graph's own steps
        loss, stats = self.td_loss(b)
        self.backward(loss, stats, step)
        if owner is not None:
            stats.update(owner.step(step, 0))
        else:
            stats["grad_norm"] = self.clip(self.params, step)
            self.q_opt.step()
        self.grad_steps += 1
        self.update_targets()
        return stats

    def loss(self, b: dict) -> dict:
        return {**self.td_loss(b)[1], "grad_norm": float("nan")}

    def td_loss(self, b: dict) -> tuple[torch.Tensor, dict]:
        """The TD loss on a batch of segments (time first) plus the hooks' terms, and statistics."""
        a = self.cfg.algo
        q, q_next, terms = self.unroll(self.actor, b, current=True, following=a.double_q, grad=True)
        with torch.no_grad():
            _, target_next, _ = self.unroll(self.target_actor, b, current=bool(self.actor.carry_keys()),
                                            following=True, grad=False)
        following = NextQ(target_next, q_next if a.double_q else None)
        chosen = q.gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1)  # [T, B, N]
        pred, target, mask = self.td_pieces(chosen, following, b)
        err = pred - target.detach()
        per = F.huber_loss(err, torch.zeros_like(err), reduction="none", delta=1.0) if a.loss == "huber" else err**2
        mask = mask.to(err.dtype)
        td_loss = masked_mean(per, mask)
        stats = {"td_loss": td_loss.detach(), "q_mean": masked_mean(pred.detach(), mask),
                 "target_mean": masked_mean(target.detach(), mask), **self.mixer_stats(chosen, pred, b, mask)}
        total = td_loss + self.value_penalty(pred, b, mask, stats)
        total = total + self.hook_losses(terms, self.term_mask(b), {"actor": td_loss}, stats)
        return total, stats

    def value_penalty(self, pred: torch.Tensor, b: dict, mask: torch.Tensor, stats: dict) -> torch.Tensor | float:
        """A term added to the TD loss on the predicted values (logging its parts in ``stats``); none here."""
        return 0.0

    def mixer_stats(self, chosen: torch.Tensor, pred: torch.Tensor, b: dict, mask: torch.Tensor) -> dict:
        """Statistics of the mixer, if any, at the batch's chosen Q-values and the prediction from them."""
        return {}

    def td_pieces(self, chosen: torch.Tensor, following: NextQ, b: dict):
        """(prediction, target, mask) of the TD loss from the chosen actions' Q ``[T, B, N]`` and every
        action's Q at what follows each step."""
        raise NotImplementedError

    # ---- target networks -----------------------------------------------------------------------------
    def update_targets(self) -> None:
        """Soft (``tau`` > 0, every gradient step) or hard (every ``target_update_interval`` steps)."""
        a = self.cfg.algo
        pairs = [(self.target_actor, self.actor)]
        if self.mixer is not None:
            pairs.append((self.target_mixer, self.mixer))
        if a.tau > 0:
            polyak(pairs, a.tau)
        elif int(self.grad_steps) % a.target_update_interval == 0:
            polyak(pairs, 1.0)


class TeamQLearning(QLearning):
    """VDN and QMIX: one TD error per env step, on Q_tot of the agents acting at the step against
    the team reward (the mean over those agents of their rewards) plus the target mixer's value of
    what follows; agents that do not act (or whose future does not count) enter the mixer as 0."""

    def td_pieces(self, chosen, following, b):
        alive, boot = b["alive"], b["boot"]
        q_tot = self.mixer(chosen * alive.to(chosen.dtype), b["state"])
        with torch.no_grad():
            next_tot = self.next_team_value(following, b)
        target = self.returns(self.team_reward(b), next_tot, boot.any(-1), (boot & ~b["truncated"]).any(-1))
        return q_tot, target, alive.any(-1)

    def next_team_value(self, following: NextQ, b: dict) -> torch.Tensor:
        """Q_tot of what follows each step ``[T, B]``: the target mixer at every agent's bootstrap value
        (0 for an agent whose future does not count)."""
        return self.target_mixer(following.values() * b["boot"].to(following.target.dtype), b["next_state"])

    def team_reward(self, b: dict) -> torch.Tensor:
        """One reward per step ``[T, B]`` from the acting agents' rewards (their mean, or their sum)."""
        af = b["alive"].to(b["rewards"].dtype)
        total = (b["rewards"] * af).sum(-1)
        return total / af.sum(-1).clamp(min=1.0) if self.cfg.algo.team_reward == "mean" else total

    @torch.no_grad()
    def mixer_stats(self, chosen, pred, b, mask):
        """``mixer_gain``: how much Q_tot rises when every acting agent's Q_i rises by 1 (the sum of
        dQ_tot/dQ_i along that line; VDN: the number acting). A gain that keeps growing while the
        Q_i stay small is how QMIX's overestimation shows before Q_tot runs away."""
        af = b["alive"].to(chosen.dtype)
        gain = self.mixer((chosen + 1.0) * af, b["state"]) - pred  # pred: Q_tot at chosen * af
        return {"mixer_gain": masked_mean(gain, mask)}


@dataclass
class IQLConfig(QLearningConfig):
    """Independent Q-learning: each agent's Q_i learns from its own reward."""


@dataclass
class TeamQConfig(QLearningConfig):
    """A team Q-learner: Q_tot regressed on one team reward per step."""

    # the team reward from the acting agents' rewards: their mean, or their sum (EPyMARL's
    # reward_scalarisation=sum; N times the scale, which changes what a learning rate means to Adam)
    team_reward: Literal["mean", "sum"] = "mean"


@dataclass
class VDNConfig(TeamQConfig):
    """VDN: Q_tot is the sum of the acting agents' Q_i, learnt from the team reward."""


@dataclass
class QMIXConfig(TeamQConfig):
    """QMIX: Q_tot is a monotonic mix of the acting agents' Q_i, conditioned on the global state."""

    mixing_embed: int = 32  # the mixing network's hidden width
    hypernet_hidden: int = 64  # the hidden width of the hypernetworks producing its weights
    # the state as the hypernetworks see it: raw (the paper's), or through a LayerNorm, which keeps QMIX
    # from diverging at EPyMARL's lr 5e-4 on simple_spread (docs/results.md)
    state_norm: Literal["none", "layernorm"] = "none"

    def validate(self) -> None:
        super().validate()
        for key in ("mixing_embed", "hypernet_hidden"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0 (got {getattr(self, key)})")


@register_algorithm("iql")
class IQL(QLearning):
    """Independent Q-learning (Tan 1993): per-agent Q_i from each agent's own reward, replay buffer, target network.

    The loss is over the agents that acted at each step."""

    Config = IQLConfig
    mixer_name = "independent Q (no mixer)"

    def td_pieces(self, chosen, following, b):
        boot = b["boot"]
        target = self.returns(b["rewards"], following.values(), boot, boot & ~b["truncated"])
        return chosen, target, b["alive"]


@register_algorithm("vdn")
class VDN(TeamQLearning):
    """VDN (Sunehag et al. 2018): Q_tot = sum of the agents' Q_i, trained on the team reward."""

    Config = VDNConfig
    mixer_name = "VDN sum"

    def build_mixer(self, cfg, env):
        return SumMixer()


@register_algorithm("qmix")
class QMIX(TeamQLearning):
    """QMIX (Rashid et al. 2018): Q_tot = monotonic state-conditioned mix of the agents' Q_i, on the team reward."""

    Config = QMIXConfig
    mixer_name = "QMIX mixer"

    def build_mixer(self, cfg, env):
        a = cfg.algo
        return QMixer(env.n_agents, env.state_dim, a.mixing_embed, a.hypernet_hidden, a.state_norm == "layernorm")
