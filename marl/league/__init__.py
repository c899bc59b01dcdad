"""Population training (PSRO, fictitious play, self-play): meta-strategy solvers and NashConv in
``meta``, fixed opponents for ``marl train`` in ``opponents``, the generations loop in ``loop``."""

from marl.league.loop import LeagueConfig, LeagueError, run_league  # noqa: E402
from marl.league.meta import (
    MetaSolver,
    exploitability_symmetric,
    exploitability_two_sided,
    make_meta_solver,
    meta_solver_names,
    nash_conv_in_pool,
    nash_conv_symmetric,
    nash_conv_two_sided,
    nash_conv_two_sided_in_pool,
    register_meta_solver,
    zero_sum_payoff,
)
from marl.league.opponents import OpponentError, Opponents, OpponentSeats, resolve_opponents  # noqa: E402

# errors caused by the user's input: the CLI prints them as one line (exit 2)
USER_ERRORS = (OpponentError, LeagueError)

__all__ = [
    "USER_ERRORS",
    "LeagueConfig",
    "LeagueError",
    "run_league",
    "OpponentError",
    "OpponentSeats",
    "Opponents",
    "resolve_opponents",
    "MetaSolver",
    "exploitability_symmetric",
    "exploitability_two_sided",
    "make_meta_solver",
    "meta_solver_names",
    "nash_conv_in_pool",
    "nash_conv_symmetric",
    "nash_conv_two_sided",
    "nash_conv_two_sided_in_pool",
    "register_meta_solver",
    "zero_sum_payoff",
]
