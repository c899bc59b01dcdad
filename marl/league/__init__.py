"""Population training (PSRO, fictitious play, self-play): meta-strategy solvers and NashConv in ``meta``."""

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

__all__ = [
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
