"""Algorithms, registered by name: ``@register_algorithm("name")`` on an :class:`Algorithm`
subclass with a typed ``Config`` (the ``algo.*`` section). The trainer builds whichever
``algo=NAME`` selects and never names one; a plugin file can register its own.

Built-ins: ``mappo`` and ``ippo`` (PPO with a centralized / independent critic, ``marl/algos/ppo.py``)
and ``happo`` (sequential per-agent trust-region updates, ``marl/algos/happo.py``); the value-based
``iql``, ``vdn`` and ``qmix`` (off-policy Q-learning from a replay buffer of rollout segments, with no
mixer, a sum and a monotonic state-conditioned mixer: ``marl/algos/qlearning.py``) and ``res_qmix``
(QMIX with RES's softmax bootstrap and Monte Carlo anchor, ``marl/algos/res.py``); the off-policy
actor-critics with Q-critics ``maddpg``, ``iddpg``, ``matd3`` (``marl/algos/ddpg.py``) and ``masac``,
``isac`` (``marl/algos/sac.py``), which share ``marl/algos/qcritic.py`` and ``marl/algos/offpolicy.py``.
"""

from __future__ import annotations

import difflib

from marl.algos.base import Algorithm, EnvInfo, Progress
from marl.config import AlgoConfig, ConfigError

ALGORITHMS: dict[str, type[Algorithm]] = {}


def register_algorithm(name: str):
    """Class decorator: make an :class:`Algorithm` subclass selectable as ``algo=<name>``."""

    def deco(cls: type[Algorithm]) -> type[Algorithm]:
        if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
            raise TypeError(f"@register_algorithm({name!r}) decorates an Algorithm subclass, not {cls!r}")
        old = ALGORITHMS.get(name)
        same = old is not None and (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
        if old is not None and not same:
            raise ValueError(f"algorithm {name!r} is already registered (by {ALGORITHMS[name].__module__})")
        if not issubclass(cls.Config, AlgoConfig):
            raise TypeError(f"algorithm {name!r}: its Config must subclass marl.config.AlgoConfig")
        cls.name = name
        ALGORITHMS[name] = cls
        return cls

    return deco


def algo_names() -> list[str]:
    return sorted(ALGORITHMS)


def algorithm_class(name: str) -> type[Algorithm]:
    """The class registered as ``name``, or a one-line ConfigError naming the valid ones."""
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(str(name), algo_names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"algo={name!r} is not a registered algorithm.{hint} Valid: {', '.join(algo_names())} "
                          "(register your own with @register_algorithm in a plugins= file)")
    return ALGORITHMS[name]


def make_algorithm(cfg, env: EnvInfo) -> Algorithm:
    """The algorithm ``cfg.algo.name`` selects, built for the env ``env`` describes."""
    return algorithm_class(cfg.algo.name)(cfg, env)


# the built-ins register themselves on import
from marl.algos import ddpg as _ddpg  # noqa: E402,F401
from marl.algos import happo as _happo  # noqa: E402,F401
from marl.algos import ppo as _ppo  # noqa: E402,F401
from marl.algos import qlearning as _qlearning  # noqa: E402,F401
from marl.algos import res as _res  # noqa: E402,F401
from marl.algos import sac as _sac  # noqa: E402,F401

__all__ = ["ALGORITHMS", "Algorithm", "EnvInfo", "Progress", "algo_names", "algorithm_class", "make_algorithm",
           "register_algorithm"]
