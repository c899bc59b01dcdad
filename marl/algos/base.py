"""The interface every algorithm implements, and what it is built from.

An algorithm is a class with a typed ``Config`` (the ``algo.*`` section) and five duties, which the
generic trainer and collector call in this order each iteration::

    before_iteration(progress)                       hooks: freeze a graph, anneal a learning rate
    act(obs, carry, inputs) -> ActStep               per step: action, what to store, next carry, aux
    on_step(rollout, t, out)                         per step, after the env moved (e.g. bootstraps)
    finish_rollout(rollout, last)                    once per rollout (e.g. values in one batched pass)
    update(rollout, progress) -> metrics             learn from the rollout
    after_iteration(progress) -> metrics             hooks: mask resets, statistics

plus ``optimizers()`` for checkpoints and ``artifacts(run_dir, title)`` at the end of a run. Every
algorithm has an ``actor`` (``marl.nets.Actor``): it is what evaluation, tournaments and
``marl.load_policy`` use, without the rest of the algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from envs.layout import Layout
from marl import checkpoint as ckpt
from marl import sharing
from marl.builders import build_actor
from marl.communication import CommInputs, StepAux
from marl.config import AlgoConfig, ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What the networks are built from: the padded per-agent layout, the global state's size,
    the positions' size (0: the scenario has none), the scenario's name (for messages) and the
    seats' teams (communication stays within a team)."""

    layout: Layout
    state_dim: int
    pos_dim: int = 0
    scenario: str = ""
    teams: tuple | None = None  # team id per seat in a competitive scenario (Scenario.team_ids), else None
    entities: tuple | None = None  # the observation's entity groups (Scenario.entities), where the scenario names them

    @property
    def n_agents(self) -> int:
        return self.layout.n_agents

    @property
    def has_positions(self) -> bool:
        return self.pos_dim > 0

    @staticmethod
    def from_env(env, scenario: str) -> "EnvInfo":
        return EnvInfo(env.layout, env.state_dim, env.pos_dim if env.has_positions else 0, scenario,
                       env.scenario.team_ids, env.scenario.entities)


@dataclass(frozen=True)
class Progress:
    """Where training stands: ``env_steps`` done of ``total_steps``; after an iteration,
    ``previous`` is the count before it."""

    env_steps: int
    total_steps: int
    previous: int | None = None

    @property
    def fraction(self) -> float:
        return self.env_steps / self.total_steps if self.total_steps else 1.0


@dataclass
class ActStep:
    """One step of acting: the env action, per-step tensors the algorithm stores in the rollout
    (e.g. ``logp``), the next carry and the actor's aux (edges, decisions to replay, terms)."""

    action: torch.Tensor
    store: dict[str, torch.Tensor]
    carry: dict[str, torch.Tensor]
    aux: StepAux = field(default_factory=StepAux)


class Algorithm(nn.Module):
    """Base class; see the module docstring for the interface. Subclasses set ``Config`` and the
    capability flags, build their networks and optimizers in ``__init__`` and implement ``update``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    # critic kinds the algorithm trains with, its default first; () = it has no critic
    critics: ClassVar[tuple[str, ...]] = ()
    # action spaces it supports
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "continuous")
    # continuous actions squashed into the action box by the actor (tanh), rather than clipped by the env
    squashed_actions: ClassVar[bool] = False

    def __init__(self, cfg, env: EnvInfo):
        super().__init__()
        self.cfg, self.env_info = cfg, env
        self.check_env(env)
        self.actor = build_actor(cfg, env)
        self.hooks: list = []  # marl.hooks.TrainingHook, attached by the subclass once its networks exist

    # ---- what the algorithm accepts ----------------------------------------------------------
    @classmethod
    def check_config(cls, cfg) -> None:
        """Reject settings that contradict the algorithm (a ConfigError, one line)."""
        chosen = cfg.critic.name
        if not cls.critics and chosen != "auto":
            raise ConfigError(f"algo={cls.name} has no critic; remove critic={chosen}")
        if cls.critics and chosen not in ("auto", *cls.critics):
            others = [n for n, c in _registry().items() if chosen in c.critics and _family(c) is _family(cls)]
            an = lambda w: f"an {w}" if w[0] in "aeiou" else f"a {w}"  # noqa: E731
            alt = f"; for {an(chosen)} critic use algo={' or algo='.join(others)}" if others else ""
            raise ConfigError(f"algo={cls.name} trains {an(' or '.join(cls.critics))} critic, not "
                              f"critic={chosen}{alt}")

    @classmethod
    def critic_kind(cls, cfg) -> str | None:
        if not cls.critics:
            return None
        return cls.critics[0] if cfg.critic.name == "auto" else cfg.critic.name

    def check_env(self, env: EnvInfo) -> None:
        kind = "discrete" if env.layout.discrete else "continuous"
        if kind not in self.action_spaces:
            raise ConfigError(f"algo={self.name} supports {' and '.join(self.action_spaces)} actions; scenario "
                              f"{env.scenario!r} has {kind} ones")

    @property
    def rollout_len(self) -> int:
        return self.cfg.algo.rollout_len

    def describe(self) -> str:
        kind = self.critic_kind(self.cfg)
        return f"{kind} critic" if kind else "no critic"

    # ---- acting --------------------------------------------------------------------------------
    def act(self, obs: torch.Tensor, carry: dict, inputs: CommInputs) -> ActStep:
        """Sample from the actor and store each action's log-probability."""
        action, logp, carry, aux = self.actor.act(obs, carry, inputs=inputs)
        return ActStep(action, {"logp": logp}, carry, aux)

    def on_step(self, rollout, t: int, out) -> None:
        """After the env took step ``t`` (``out``: its EnvOutput)."""

    def finish_rollout(self, rollout, last) -> None:
        """After the last step (``last``: the EnvOutput the next rollout starts from)."""

    def update(self, rollout, progress: Progress) -> dict[str, float]:  # pragma: no cover - interface
        raise NotImplementedError

    # ---- around an iteration: the training hooks -----------------------------------------------
    def before_iteration(self, progress: Progress) -> None:
        for hook in self.hooks:
            hook.before_iteration(progress)

    def after_iteration(self, progress: Progress) -> dict[str, float]:
        out: dict[str, float] = {}
        for hook in self.hooks:
            out.update(hook.after_iteration(progress))
            out.update(hook.metrics())
        return out

    def hook_losses(self, terms: dict, mask: torch.Tensor, main: dict, stats: dict) -> torch.Tensor:
        """The sum of the hooks' loss terms (their statistics go into ``stats``)."""
        total = torch.zeros((), device=mask.device)
        for hook in self.hooks:
            extra, hook_stats = hook.loss(terms, mask, main)
            stats.update(hook_stats)
            if extra is not None:
                total = total + extra
        return total

    # ---- checkpoints and the end of a run --------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer, by a stable name (checkpointed): the algorithm's and its hooks'."""
        out = {}
        for hook in self.hooks:
            out.update(hook.optimizers())
        return out

    def checkpoint_state(self) -> dict:
        return {"modules": self.state_dict(), "optimizers": {n: o.state_dict() for n, o in self.optimizers().items()}}

    def load_checkpoint_state(self, state: dict, path: Path) -> None:
        ckpt.load_state(self, state["modules"], "model", path)
        for name, opt in self.optimizers().items():
            if name not in state["optimizers"]:
                raise ckpt.CheckpointError(f"checkpoint {str(path)!r} holds no state for optimizer {name!r}")
            ckpt.load_state(opt, state["optimizers"][name], f"optimizer {name!r}", path)

    def networks(self) -> dict[str, nn.Module]:
        """The networks by role; hooks (masks, diversity) and parameter counts go through these."""
        return {"actor": self.actor}

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        return {name: sharing.parameter_counts(net) for name, net in self.networks().items()}

    def artifacts(self, run_dir: Path, title: str) -> dict[str, str]:
        """Pictures and files the hooks make at the end of a run, by summary key."""
        out: dict[str, str] = {}
        for hook in self.hooks:
            out.update(hook.artifacts(Path(run_dir), title))
        return out


def _family(cls) -> type:
    """The config class just below AlgoConfig in ``cls.Config``'s ancestry (PPO's, the replay algorithms')."""
    return next((k for k in cls.Config.__mro__ if AlgoConfig in k.__bases__), AlgoConfig)


def _registry() -> dict:
    from marl.algos import ALGORITHMS

    return ALGORITHMS
