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
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from marl import checkpoint as ckpt
from marl.algos import register_algorithm
from marl.algos.base import ActStep, Algorithm
from marl.algos.ppo import Averages
from marl.communication import CommInputs
from marl.config import AlgoConfig, ConfigError
from marl.guards import NonFiniteError
from marl.hooks import make_hooks, param_groups, trainable
from marl.ppo import masked_mean
from marl.replay import SegmentBuffer

PER_STEP = ("obs", "state", "alive", "starts", "actions", "rewards", "truncated", "boot", "next_obs", "next_state",
            "next_alive")


@dataclass
class QLearningConfig(AlgoConfig):
    """Off-policy Q-learning from a replay buffer of rollout segments (EPyMARL-like defaults)."""

    rollout_len: int = 25  # env steps per env between updates: the length of a stored segment
    gamma: float = 0.99  # discount; truncated episodes bootstrap from their final observation
    buffer_segments: int = 5000  # replay capacity in segments of rollout_len steps of one env
    batch_size: int = 32  # segments per gradient step
    learning_starts: int = 1000  # env steps the buffer holds before the first gradient step
    # gradient steps per update (one collect of num_envs x rollout_len env steps); 16 at the default
    # num_envs=16 is one step per segment collected, as EPyMARL's one step per episode
    updates_per_rollout: int = 16
    eps_start: float = 1.0  # epsilon-greedy exploration, annealed linearly in env steps ...
    eps_end: float = 0.05  # ... down to this value ...
    eps_anneal_steps: int = 50_000  # ... over this many env steps
    target_update_interval: int = 200  # gradient steps between hard copies into the target networks
    tau: float = 0.0  # > 0: soft (Polyak) target update by this fraction every gradient step instead
    double_q: bool = True  # the online network picks the bootstrap action, the target network values it
    n_step: int = 1  # n-step returns within a segment (cut at episode ends and at the segment's end)
    td_lambda: float = 0.0  # > 0: TD(lambda) returns within a segment instead (needs n_step=1)
    loss: Literal["mse", "huber"] = "mse"  # the TD loss (huber: delta 1)
    max_grad_norm: float = 10.0  # gradient-norm clip over the Q-network and the mixer

    def validate(self) -> None:
        super().validate()
        for key in ("buffer_segments", "batch_size", "updates_per_rollout", "target_update_interval", "n_step",
                    "max_grad_norm"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0 (got {getattr(self, key)})")
        for key in ("learning_starts", "eps_anneal_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0 (got {getattr(self, key)})")
        for key in ("gamma", "eps_start", "eps_end", "tau", "td_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1] (got {getattr(self, key)})")
        if self.batch_size > self.buffer_segments:
            raise ConfigError(f"batch_size={self.batch_size} exceeds buffer_segments={self.buffer_segments}")
        if self.n_step > 1 and self.td_lambda > 0:
            raise ConfigError(f"n_step={self.n_step} and td_lambda={self.td_lambda} are two kinds of returns; "
                              "set one of them (n_step=1 or td_lambda=0)")
        if self.n_step > self.rollout_len:
            raise ConfigError(f"n_step={self.n_step} exceeds rollout_len={self.rollout_len}: returns stay within a "
                              "segment")


# ---- targets -------------------------------------------------------------------------------------


def segment_returns(rewards: torch.Tensor, next_values: torch.Tensor, boot: torch.Tensor, cont: torch.Tensor,
                    gamma: float, n_step: int = 1, td_lambda: float = 0.0) -> torch.Tensor:
    """TD targets ``[T, ...]`` for every step of a segment (time first).

    ``next_values[t]``: the target value of what follows step t (the next observation, or the final
    one of an episode truncated at t); ``boot[t]``: whether that value counts (False after a
    termination); ``cont[t]``: whether step t+1 of the segment continues the same episode, so a
    multi-step return may go on through it. n-step: ``r_t + ... + g^(m-1) r_(t+m-1) + g^m V_(t+m-1)``
    with m = n, or fewer at an episode end or the segment's end. TD(lambda): ``G_t = r_t + g *
    ((1-lambda) V_t + lambda G_(t+1))`` where the episode continues within the segment, ``r_t + g V_t``
    where it does not."""
    T = rewards.shape[0]
    values = next_values * boot.to(next_values.dtype)
    if td_lambda > 0:
        out = torch.empty_like(values)
        out[T - 1] = rewards[T - 1] + gamma * values[T - 1]
        for t in range(T - 2, -1, -1):
            tail = torch.where(cont[t], (1 - td_lambda) * values[t] + td_lambda * out[t + 1], values[t])
            out[t] = rewards[t] + gamma * tail
        return out

    def ahead(x: torch.Tensor, k: int, fill) -> torch.Tensor:  # ahead(x, k)[t] = x[t + k]
        if k == 0:
            return x
        pad = torch.full((k, *x.shape[1:]), fill, dtype=x.dtype, device=x.device)
        return torch.cat([x[k:], pad])

    inside = torch.ones_like(cont)
    out = torch.zeros_like(values)
    open_ = torch.ones_like(cont)  # still summing rewards
    for k in range(n_step):
        out = out + torch.where(open_, gamma**k * ahead(rewards, k, 0.0), 0.0)
        last = open_ & ((k == n_step - 1) | ~ahead(cont, k, False) | ~ahead(inside, k + 1, False))
        out = out + torch.where(last, gamma ** (k + 1) * ahead(values, k, 0.0), 0.0)
        open_ = open_ & ~last
    return out


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

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hyper_hidden: int = 64):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hyper_hidden), nn.ReLU(),
                                      nn.Linear(hyper_hidden, n_agents * embed))
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hyper_hidden), nn.ReLU(), nn.Linear(hyper_hidden, embed))
        self.value = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``qs`` [..., N], ``state`` [..., S] -> Q_tot [...]."""
        w1 = self.hyper_w1(state).abs().view(*state.shape[:-1], self.n_agents, self.embed)
        hidden = F.elu((qs.unsqueeze(-2) @ w1).squeeze(-2) + self.hyper_b1(state))
        w2 = self.hyper_w2(state).abs()
        return (hidden * w2).sum(-1) + self.value(state).squeeze(-1)


# ---- the algorithm -------------------------------------------------------------------------------


class QLearning(Algorithm):
    """The shared machinery; a subclass sets the mixer (none: IQL) and ``td_pieces``."""

    Config = QLearningConfig
    critics = ()
    action_spaces = ("discrete",)
    mixer_name = ""  # for describe()

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        a = cfg.algo
        self.mixer = self.build_mixer(cfg, env)
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False) if self.mixer is not None else None
        self.hooks = make_hooks(cfg, self.networks())
        mixer_params = list(self.mixer.parameters()) if self.mixer is not None else []
        self.params = trainable(self.actor, self.hooks) + mixer_params  # what q_opt moves and the clip covers
        self.q_opt = torch.optim.Adam(param_groups(self.params, cfg.lr, self.hooks), eps=1e-5)
        self.buffer = SegmentBuffer(a.buffer_segments)
        self.register_buffer("grad_steps", torch.zeros((), dtype=torch.long))  # checkpointed with the modules
        self.epsilon = a.eps_start

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.algo.buffer_segments < cfg.num_envs:
            raise ConfigError(f"algo.buffer_segments={cfg.algo.buffer_segments} is less than one collect's segments "
                              f"(num_envs={cfg.num_envs}); raise it")

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

    def on_step(self, ro, t: int, out) -> None:
        """What follows step t, for its target: the observation before any auto-reset (the next one
        inside an episode, the last one of an episode that ended), who acts in it, and ``boot``:
        whether the agent's future counts (it acted, did not terminate, and either its episode was
        truncated or it acts at the next step of the same episode)."""
        alive = ro.alive[t]
        done = out.done_env[:, None] if out.done_env is not None else torch.zeros_like(alive)
        boot = alive & ~out.terminated & (out.truncated | (out.alive & ~done))
        took_part = out.final_alive if out.final_alive is not None else alive
        next_alive = torch.where(done, took_part, out.alive) | boot
        final = lambda x, fallback: fallback if x is None else x  # noqa: E731
        ro.put(t, boot=boot, next_alive=next_alive, next_obs=final(out.final_obs, out.obs),
               next_state=final(out.final_state, out.state))
        if out.positions is not None:
            ro.put(t, next_positions=final(out.final_positions, out.positions))

    # ---- the buffer ----------------------------------------------------------------------------------
    @staticmethod
    def segments(ro) -> dict[str, torch.Tensor]:
        """The rollout as E segments: per-step fields ``[E, T, ...]``, the start carry ``[E, ...]``."""
        keys = PER_STEP + tuple(k for k in ("positions", "next_positions") if k in ro)
        out = {k: ro.data[k].transpose(0, 1) for k in keys}
        out.update({f"replay.{k}": v.transpose(0, 1) for k, v in ro.replay.items()})
        out.update({f"carry0.{k}": v for k, v in ro.carry0.items()})
        return out

    # ---- learning ------------------------------------------------------------------------------------
    def update(self, ro, progress) -> dict[str, float]:
        """Add the rollout's segments; once the buffer holds ``learning_starts`` env steps (and a
        batch), take ``updates_per_rollout`` gradient steps on sampled batches. Before that, the
        loss is evaluated on the new segments without a step, so every metric has a value (and a
        column in metrics.csv) from the first iteration."""
        a = self.cfg.algo
        new = self.segments(ro)
        self.buffer.add(new)
        totals = Averages()
        if self.buffer.size * ro.T < a.learning_starts or self.buffer.size < a.batch_size:
            with torch.no_grad():
                _, stats = self.loss(new)
            totals.add({**stats, "grad_norm": float("nan")})
        else:
            for _ in range(a.updates_per_rollout):
                totals.add(self.train_step(self.buffer.sample(a.batch_size)))
        out = totals.means()
        out.update({"epsilon": self.epsilon, "buffer_size": float(self.buffer.size)})
        return out

    def train_step(self, batch: dict) -> dict:
        step = int(self.grad_steps)
        owner = next((h for h in self.hooks if h.takes_update(step)), None)  # the learned graph's own steps
        loss, stats = self.loss(batch)
        if not torch.isfinite(loss):
            bad = [k for k, v in stats.items() if not math.isfinite(float(v))]
            raise NonFiniteError(f"non-finite loss in the {self.name.upper()} update (gradient step {step}): "
                                 f"{', '.join(bad) or 'the sum of finite terms overflowed'}; the run stops and keeps "
                                 "its last good checkpoint")
        for opt in self.optimizers().values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if owner is not None:
            stats.update(owner.step(step, 0))
        else:
            norm = nn.utils.clip_grad_norm_(self.params, self.cfg.algo.max_grad_norm)
            if not torch.isfinite(norm):
                raise NonFiniteError(f"non-finite gradient (norm {float(norm)}) in the {self.name.upper()} update "
                                     f"(gradient step {step}); the run stops and keeps its last good checkpoint")
            self.q_opt.step()
            stats["grad_norm"] = norm
        self.grad_steps += 1
        self.update_targets()
        return stats

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """The TD loss on a batch of segments (``[B, T, ...]``) plus the hooks' terms, and statistics."""
        a = self.cfg.algo
        b = {k: v if k.startswith("carry0.") else v.transpose(0, 1) for k, v in batch.items()}  # time first
        q, q_next, terms = self.q_values(self.actor, b, current=True, following=a.double_q)
        with torch.no_grad():
            _, target_next, _ = self.q_values(self.target_actor, b, current=bool(self.actor.carry_keys()),
                                              following=True)
            next_values = next_action_values(target_next, q_next if a.double_q else None)
        chosen = q.gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1)  # [T, B, N]
        pred, target, mask = self.td_pieces(chosen, next_values, b)
        err = pred - target.detach()
        per = F.huber_loss(err, torch.zeros_like(err), reduction="none", delta=1.0) if a.loss == "huber" else err**2
        mask = mask.to(err.dtype)
        td_loss = masked_mean(per, mask)
        stats = {"td_loss": td_loss.detach(), "q_mean": masked_mean(pred.detach(), mask),
                 "target_mean": masked_mean(target.detach(), mask)}
        alive = b["alive"].to(err.dtype)
        term_mask = alive if self.actor.carry_keys() else alive.reshape(-1, alive.shape[-1])
        total = td_loss + self.hook_losses(terms, term_mask, {"actor": td_loss}, stats)
        return total, stats

    def q_values(self, net, b: dict, current: bool, following: bool):
        """``net``'s Q-values ``[T, B, N, A]`` at every step of the segments (``current``, with
        gradient when ``net`` trains) and of what follows each step (``following``, without), and the
        actor's terms for the hooks. Every step replays the comm decisions it was acted with; what
        follows a step draws its own. A network without a carry takes all steps in one pass; one with
        a carry (a GRU, a delayed channel) is unrolled over the segment from the carry it started from,
        reset where an agent's episode starts, and what follows step t is taken from its carry after t."""
        T, B = b["obs"].shape[:2]
        replay = {k[len("replay."):]: v for k, v in b.items() if k.startswith("replay.")}
        pos, next_pos = b.get("positions"), b.get("next_positions")
        grad = net is not self.target_actor
        q = q_next = None
        if not net.carry_keys():
            flat = lambda x: None if x is None else x.reshape(T * B, *x.shape[2:])  # noqa: E731
            terms = {}
            if current:
                with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                    out, _, aux = net(flat(b["obs"]), None, CommInputs(flat(pos), flat(b["alive"])),
                                      {k: flat(v) for k, v in replay.items()})
                q, terms = out.view(T, B, *out.shape[1:]), aux.terms
            if following:
                with torch.no_grad():
                    out, _, _ = net(flat(b["next_obs"]), None, CommInputs(flat(next_pos), flat(b["next_alive"])))
                q_next = out.view(T, B, *out.shape[1:])
            return q, q_next, terms
        at = lambda x, t: None if x is None else x[t]  # noqa: E731
        carry = {k[len("carry0."):]: v for k, v in b.items() if k.startswith("carry0.")}
        qs, nexts, steps = [], [], []
        for t in range(T):
            carry = net.reset_carry(carry, b["starts"][t])
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                out, new, aux = net(b["obs"][t], carry, CommInputs(at(pos, t), b["alive"][t]),
                                    {k: v[t] for k, v in replay.items()})
            qs.append(out)
            steps.append(aux.terms)
            if following:
                with torch.no_grad():
                    nxt, _, _ = net(b["next_obs"][t], new, CommInputs(at(next_pos, t), b["next_alive"][t]))
                nexts.append(nxt)
            carry = new
        terms = {k: torch.stack([s[k] for s in steps]) for k in steps[0]} if steps else {}
        return torch.stack(qs), torch.stack(nexts) if following else None, terms

    def returns(self, rewards, next_values, boot, cont) -> torch.Tensor:
        a = self.cfg.algo
        return segment_returns(rewards, next_values, boot, cont, a.gamma, a.n_step, a.td_lambda)

    def td_pieces(self, chosen: torch.Tensor, next_values: torch.Tensor, b: dict):
        """(prediction, target, mask) of the TD loss from the chosen actions' Q ``[T, B, N]`` and the
        target values of what follows each step ``[T, B, N]``."""
        raise NotImplementedError

    # ---- target networks -----------------------------------------------------------------------------
    @torch.no_grad()
    def update_targets(self) -> None:
        """Soft (``tau`` > 0, every gradient step) or hard (every ``target_update_interval`` steps)."""
        a = self.cfg.algo
        pairs = [(self.target_actor, self.actor)]
        if self.mixer is not None:
            pairs.append((self.target_mixer, self.mixer))
        if a.tau > 0:
            for target, online in pairs:
                for (_, tv), (_, ov) in zip(target.state_dict().items(), online.state_dict().items()):
                    tv.lerp_(ov, a.tau) if tv.is_floating_point() else tv.copy_(ov)
        elif int(self.grad_steps) % a.target_update_interval == 0:
            for target, online in pairs:
                target.load_state_dict(online.state_dict())

    # ---- checkpoints -----------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "replay": self.buffer.state_dict()}

    def load_checkpoint_state(self, state: dict, path) -> None:
        super().load_checkpoint_state(state, path)
        if "replay" not in state:
            raise ckpt.CheckpointError(f"checkpoint {str(path)!r} holds no replay buffer for algo={self.name}")
        try:
            self.buffer.load_state_dict(state["replay"])
        except ValueError as exc:
            raise ckpt.CheckpointError(f"checkpoint {str(path)!r}: {exc}") from None


class TeamQLearning(QLearning):
    """VDN and QMIX: one TD error per env step, on Q_tot of the agents acting at the step against
    the team reward (the mean over those agents of their rewards) plus the target mixer's value of
    what follows; agents that do not act (or whose future does not count) enter the mixer as 0."""

    def td_pieces(self, chosen, next_values, b):
        alive, boot = b["alive"], b["boot"]
        af = alive.to(chosen.dtype)
        q_tot = self.mixer(chosen * af, b["state"])
        with torch.no_grad():
            next_tot = self.target_mixer(next_values * boot.to(chosen.dtype), b["next_state"])
        team_reward = (b["rewards"] * af).sum(-1) / af.sum(-1).clamp(min=1.0)
        target = self.returns(team_reward, next_tot, boot.any(-1), (boot & ~b["truncated"]).any(-1))
        return q_tot, target, alive.any(-1)


@dataclass
class IQLConfig(QLearningConfig):
    """Independent Q-learning: each agent's Q_i learns from its own reward."""


@dataclass
class VDNConfig(QLearningConfig):
    """VDN: Q_tot is the sum of the acting agents' Q_i, learnt from the team reward."""


@dataclass
class QMIXConfig(QLearningConfig):
    """QMIX: Q_tot is a monotonic mix of the acting agents' Q_i, conditioned on the global state."""

    mixing_embed: int = 32  # the mixing network's hidden width
    hypernet_hidden: int = 64  # the hidden width of the hypernetworks producing its weights

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

    def td_pieces(self, chosen, next_values, b):
        boot = b["boot"]
        target = self.returns(b["rewards"], next_values, boot, boot & ~b["truncated"])
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
        return QMixer(env.n_agents, env.state_dim, cfg.algo.mixing_embed, cfg.algo.hypernet_hidden)
