"""What every off-policy algorithm shares: a replay buffer of rollout segments and its config, what
each env step stores for a bootstrap, multi-step targets within a segment, and unrolling a network
over sampled segments so the update sees each step as it was acted (comm decisions replayed, a
GRU's carry rebuilt from the segment's start).

The value-based algorithms (``marl/algos/qlearning.py``) and the actor-critics with Q-critics
(``marl/algos/qcritic.py``) subclass :class:`ReplayAlgorithm` and implement ``train_step`` (one
gradient step on a sampled batch) and ``loss`` (evaluated without a step before learning starts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from marl import checkpoint as ckpt
from marl.algos.base import Algorithm
from marl.algos.ppo import Averages
from marl.communication import CommInputs
from marl.config import AlgoConfig, ConfigError
from marl.guards import NonFiniteError
from marl.replay import SegmentBuffer

PER_STEP = ("obs", "state", "alive", "starts", "actions", "rewards", "truncated", "boot", "next_obs", "next_state",
            "next_alive")


@dataclass
class ReplayConfig(AlgoConfig):
    """A replay buffer of rollout segments and the updates drawn from it."""

    rollout_len: int = 25  # env steps per env between updates: the length of a stored segment
    gamma: float = 0.99  # discount; truncated episodes bootstrap from their final observation
    buffer_segments: int = 5000  # replay capacity in segments of rollout_len steps of one env
    batch_size: int = 32  # segments per gradient step
    learning_starts: int = 1000  # env steps the buffer holds before the first gradient step
    # gradient steps per update (one collect of num_envs x rollout_len env steps); 16 at the default
    # num_envs=16 is one step per segment collected, as EPyMARL's one step per episode
    updates_per_rollout: int = 16
    n_step: int = 1  # n-step returns within a segment (cut at episode ends and at the segment's end)
    td_lambda: float = 0.0  # > 0: TD(lambda) returns within a segment instead (needs n_step=1)
    max_grad_norm: float = 10.0  # gradient-norm clip, per network
    # EPyMARL's standardise_rewards: the losses see (r - mean) / std, the running moments of every acting
    # agent's reward collected so far (the mean's shift changes what a termination is worth)
    standardise_rewards: bool = False

    def validate(self) -> None:
        super().validate()
        for key in ("buffer_segments", "batch_size", "updates_per_rollout", "n_step", "max_grad_norm"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0 (got {getattr(self, key)})")
        if self.learning_starts < 0:
            raise ConfigError(f"learning_starts must be >= 0 (got {self.learning_starts})")
        for key in ("gamma", "td_lambda"):
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


class RunningMoments:
    """The count, mean and variance of every value seen so far (Chan et al.'s pairwise update, in
    float64), for standardising rewards; before any value it standardises nothing (mean 0, std 1)."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values: torch.Tensor) -> None:
        n = values.numel()
        if n == 0:
            return
        v = values.detach().double()
        mean, m2 = v.mean().item(), ((v - v.mean()) ** 2).sum().item()
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        return max((self.m2 / self.count) ** 0.5, 1e-4) if self.count else 1.0

    def standardise(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.std

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean, self.m2 = int(state["count"]), float(state["mean"]), float(state["m2"])


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


class ReplayAlgorithm(Algorithm):
    """Rollout segments into a replay buffer; ``updates_per_rollout`` gradient steps on sampled
    batches once it holds ``learning_starts`` env steps. Subclasses implement ``train_step`` and
    ``loss`` and may add metrics with ``replay_metrics``."""

    Config = ReplayConfig

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        self.buffer = SegmentBuffer(cfg.algo.buffer_segments)
        self.reward_moments = RunningMoments() if cfg.algo.standardise_rewards else None
        self.register_buffer("grad_steps", torch.zeros((), dtype=torch.long))  # checkpointed with the modules

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.algo.buffer_segments < cfg.num_envs:
            raise ConfigError(f"algo.buffer_segments={cfg.algo.buffer_segments} is less than one collect's segments "
                              f"(num_envs={cfg.num_envs}); raise it")

    # ---- what each env step stores -----------------------------------------------------------------
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
        if self.reward_moments is not None:
            self.reward_moments.update(new["rewards"][new["alive"]])
        totals = Averages()
        if self.buffer.size * ro.T < a.learning_starts or self.buffer.size < a.batch_size:
            with torch.no_grad():
                totals.add(self.loss(self.as_batch(new)))
        else:
            for _ in range(a.updates_per_rollout):
                totals.add(self.train_step(self.as_batch(self.buffer.sample(a.batch_size))))
        return {**totals.means(), **self.replay_metrics(), "buffer_size": float(self.buffer.size)}

    def as_batch(self, segments: dict) -> dict:
        """Segments ``[B, T, ...]`` as the losses take them: time first, rewards standardised if asked."""
        b = time_first(segments)
        if self.reward_moments is not None:
            b["rewards"] = self.reward_moments.standardise(b["rewards"])
        return b

    def train_step(self, b: dict) -> dict:  # pragma: no cover - interface
        """One gradient step on a batch ``b`` (time first: ``[T, B, ...]``); returns its statistics."""
        raise NotImplementedError

    def loss(self, b: dict) -> dict:  # pragma: no cover - interface
        """The statistics ``train_step`` would report on ``b``, without a step (before learning starts)."""
        raise NotImplementedError

    def replay_metrics(self) -> dict[str, float]:
        return {}

    # ---- a gradient step's guards ----------------------------------------------------------------------
    def backward(self, loss: torch.Tensor, stats: dict, step: int, which: str = "") -> None:
        """Stop at a non-finite loss (naming the non-finite statistics), else zero every optimizer's
        gradients and backpropagate ``loss``."""
        if not torch.isfinite(loss):
            bad = [k for k, v in stats.items() if not torch.isfinite(torch.as_tensor(v))]
            raise NonFiniteError(f"non-finite {which + ' ' if which else ''}loss in the {self.name.upper()} update "
                                 f"(gradient step {step}): {', '.join(bad) or 'the sum of finite terms overflowed'}; "
                                 "the run stops and keeps its last good checkpoint")
        for opt in self.optimizers().values():
            opt.zero_grad(set_to_none=True)
        loss.backward()

    def clip(self, params, step: int, which: str = "") -> torch.Tensor:
        """Clip the gradient norm at ``algo.max_grad_norm``; stop at a non-finite one."""
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.algo.max_grad_norm)
        if not torch.isfinite(norm):
            raise NonFiniteError(f"non-finite {which + ' ' if which else ''}gradient (norm {float(norm)}) in the "
                                 f"{self.name.upper()} update (gradient step {step}); the run stops and keeps its "
                                 "last good checkpoint")
        return norm

    def returns(self, rewards, next_values, boot, cont) -> torch.Tensor:
        a = self.cfg.algo
        return segment_returns(rewards, next_values, boot, cont, a.gamma, a.n_step, a.td_lambda)

    def unroll(self, net, b: dict, current: bool, following: bool, grad: bool):
        """``net``'s outputs ``[T, B, N, ...]`` at every step of the segments (``current``; with
        gradient if ``grad``) and at what follows each step (``following``; without), and the
        actor's terms for the hooks. Every step replays the comm decisions it was acted with; what
        follows a step draws its own. A network without a carry takes all steps in one pass; one with
        a carry (a GRU, a delayed channel) is unrolled over the segment from the carry it started from,
        reset where an agent's episode starts, and what follows step t is taken from its carry after t."""
        T, B = b["obs"].shape[:2]
        replay = {k[len("replay."):]: v for k, v in b.items() if k.startswith("replay.")}
        pos, next_pos = b.get("positions"), b.get("next_positions")
        grad = grad and torch.is_grad_enabled()
        now = nxt = None
        if not net.carry_keys():
            flat = lambda x: None if x is None else x.reshape(T * B, *x.shape[2:])  # noqa: E731
            terms = {}
            if current:
                with torch.set_grad_enabled(grad):
                    out, _, aux = net(flat(b["obs"]), None, CommInputs(flat(pos), flat(b["alive"])),
                                      {k: flat(v) for k, v in replay.items()})
                now, terms = out.view(T, B, *out.shape[1:]), aux.terms
            if following:
                with torch.no_grad():
                    out, _, _ = net(flat(b["next_obs"]), None, CommInputs(flat(next_pos), flat(b["next_alive"])))
                nxt = out.view(T, B, *out.shape[1:])
            return now, nxt, terms
        at = lambda x, t: None if x is None else x[t]  # noqa: E731
        carry = {k[len("carry0."):]: v for k, v in b.items() if k.startswith("carry0.")}
        nows, nexts, steps = [], [], []
        for t in range(T):
            carry = net.reset_carry(carry, b["starts"][t])
            with torch.set_grad_enabled(grad):
                out, new, aux = net(b["obs"][t], carry, CommInputs(at(pos, t), b["alive"][t]),
                                    {k: v[t] for k, v in replay.items()})
            nows.append(out)
            steps.append(aux.terms)
            if following:
                with torch.no_grad():
                    after, _, _ = net(b["next_obs"][t], new, CommInputs(at(next_pos, t), b["next_alive"][t]))
                nexts.append(after)
            carry = new
        terms = {k: torch.stack([s[k] for s in steps]) for k in steps[0]} if steps else {}
        return torch.stack(nows), torch.stack(nexts) if following else None, terms

    def term_mask(self, b: dict) -> torch.Tensor:
        """The mask the hooks' per-step terms are averaged under (the shape the actor's terms have)."""
        alive = b["alive"].float()
        return alive if self.actor.carry_keys() else alive.reshape(-1, alive.shape[-1])

    # ---- checkpoints -----------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        state = {**super().checkpoint_state(), "replay": self.buffer.state_dict()}
        if self.reward_moments is not None:
            state["reward_moments"] = self.reward_moments.state_dict()
        return state

    def load_checkpoint_state(self, state: dict, path) -> None:
        super().load_checkpoint_state(state, path)
        if "replay" not in state:
            raise ckpt.CheckpointError(f"checkpoint {str(path)!r} holds no replay buffer for algo={self.name}")
        try:
            self.buffer.load_state_dict(state["replay"])
        except ValueError as exc:
            raise ckpt.CheckpointError(f"checkpoint {str(path)!r}: {exc}") from None
        if self.reward_moments is not None:
            if "reward_moments" not in state:
                raise ckpt.CheckpointError(f"checkpoint {str(path)!r} holds no reward moments: it was saved without "
                                           "algo.standardise_rewards=true")
            self.reward_moments.load_state_dict(state["reward_moments"])


def time_first(batch: dict) -> dict:
    """Sampled segments ``[B, T, ...]`` as ``[T, B, ...]`` (the start carry keeps ``[B, ...]``)."""
    return {k: v if k.startswith("carry0.") else v.transpose(0, 1) for k, v in batch.items()}


@torch.no_grad()
def polyak(pairs, tau: float) -> None:
    """Move each target towards its online network by ``tau`` (1: a hard copy); integer buffers are copied."""
    for target, online in pairs:
        for tv, ov in zip(target.state_dict().values(), online.state_dict().values()):
            tv.lerp_(ov, tau) if tv.is_floating_point() and tau < 1 else tv.copy_(ov)
