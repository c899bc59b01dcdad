"""Registers ``classic/rrps`` (repeated rock-paper-scissors) and ``classic/rrps_vs_bots``."""

from __future__ import annotations

from typing import Any

from scenarios.registry import register
from scenarios.spec import ScenarioSpec


def _rrps(**kwargs: Any):
    from envs.rrps import RepeatedRPSEnv

    return RepeatedRPSEnv(**kwargs)


def _rrps_vs_bots(**kwargs: Any):
    from envs.rrps import RRPSVersusBots

    return RRPSVersusBots(**kwargs)


register(
    "classic/rrps",
    _rrps,
    ScenarioSpec(
        family="classic",
        kind="competitive",
        description="repeated rock-paper-scissors, num_throws per match; each player sees the last `history` "
        "throws of both (a recurrent policy sees the whole match)",
        reward="zero-sum per throw: +1 win, -1 loss, 0 tie",
        overrides={"num_throws": 1000, "history": 5},
        role=lambda agent: agent,  # one seat per player
    ),
)

register(
    "classic/rrps_vs_bots",
    _rrps_vs_bots,
    ScenarioSpec(
        family="classic",
        kind="competitive",
        description="one player of classic/rrps against a scripted bot drawn per episode from `opponents` "
        "(for training against a population)",
        reward="+1 win, -1 loss, 0 tie per throw against the bot",
        overrides={"num_throws": 1000, "history": 5, "opponents": "all"},
        role=lambda agent: agent,
    ),
)
