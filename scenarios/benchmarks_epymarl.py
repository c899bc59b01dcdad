"""Registers the Level-Based Foraging (``lbf/``) and multi-robot warehouse (``rware/``) tasks of
Papoudakis et al. 2021's benchmark (EPyMARL), through our own ParallelEnv adapters
(``envs/lbf.py``, ``envs/rware.py``).

``lbforaging`` and ``rware`` are optional (the ``epymarl`` extra): they are imported inside the
factories only, and while they are missing these scenarios are not listed and ``make`` says what to
install.
"""

from __future__ import annotations

from typing import Any

from scenarios.registry import ScenarioError, register
from scenarios.spec import ScenarioSpec

INSTALL = "pip install 'mosaic-marl[epymarl]' (in a checkout: pip install -c constraints.txt -e '.[epymarl]')"
PAPER = "Papoudakis et al. 2021's benchmark (EPyMARL)"


def _needs(package: str) -> ScenarioError:
    return ScenarioError(f"this scenario needs the {package} package, which is not installed: {INSTALL}")


def _lbf(**kwargs: Any):
    try:
        import lbforaging  # noqa: F401
    except ImportError as exc:
        raise _needs("lbforaging") from exc
    from envs.lbf import LBFParallelEnv

    return LBFParallelEnv(**kwargs)


def _rware(**kwargs: Any):
    try:
        import rware  # noqa: F401
    except ImportError as exc:
        raise _needs("rware") from exc
    from envs.rware import RWAREParallelEnv

    return RWAREParallelEnv(**kwargs)


def _positions(env):
    return env.agent_positions()


def _pixels(env, positions):
    return env.to_pixels(positions)


# ---- lbf -------------------------------------------------------------------------------------------

LBF_REWARD = ("per agent: a food of level L loaded by adjacent players of total level S >= L pays each loader "
              "its level * L / (S * total food level spawned), so clearing the field pays the team 1 in total; "
              "-penalty per failed load")

# name, players, field size, food, force_coop
_LBF = [
    ("foraging-8x8-2p-2f-coop", 2, 8, 2, True),
    ("foraging-8x8-2p-3f", 2, 8, 3, False),
    ("foraging-10x10-3p-3f", 3, 10, 3, False),
]

for _name, _players, _size, _food, _coop in _LBF:
    _task = f"Foraging-{_size}x{_size}-{_players}p-{_food}f{'-coop' if _coop else ''}-v3"
    _what = ("every food needs all players to load it together (force_coop)" if _coop else
             "a food needs loaders whose levels add up to its level: alone or together, so players may also "
             "compete for food (general-sum)")
    register(
        f"lbf/{_name}",
        _lbf,
        ScenarioSpec(
            family="lbf",
            kind="cooperative" if _coop else "mixed",
            description=f"Level-Based Foraging ({_task}, from {PAPER}): {_players} levelled players on a "
            f"{_size}x{_size} grid load up to {_food} levelled foods; {_what}. Observations: (row, col, level) of "
            "the food and players within `sight` (None: the whole field); Discrete(6): none, N, S, W, E, load. "
            "The episode ends when all food is loaded (termination) or at max_cycles (truncation); "
            "infos: success (all food loaded) and food_collected",
            reward=LBF_REWARD,
            overrides={"n_agents": _players, "field_size": _size, "max_food": _food, "sight": None,
                       "max_cycles": 50, "force_coop": _coop, "min_player_level": 1, "max_player_level": 2,
                       "min_food_level": 1, "max_food_level": None, "penalty": 0.0, "normalize_reward": True,
                       "observe_agent_levels": True},
            positions=_positions,
            pixels=_pixels,
        ),
        requires=("lbforaging",),
        install=INSTALL,
    )


# ---- rware -----------------------------------------------------------------------------------------

RWARE_REWARD = ("reward_type=individual: +1 to the robot that delivers a requested shelf to a goal cell; global: "
                "+1 to every robot per delivery; two_stage: +0.5 for the delivery, +0.5 for returning the shelf")

# name, robots, shelf rows, shelf columns (the package's size presets: tiny 1x3, small 2x3, medium 2x5, large 3x5)
_RWARE = [
    ("tiny-2ag", 2, 1, 3),
    ("tiny-4ag", 4, 1, 3),
    ("small-4ag", 4, 2, 3),
]

for _name, _agents, _rows, _cols in _RWARE:
    register(
        f"rware/{_name}",
        _rware,
        ScenarioSpec(
            family="rware",
            kind="cooperative",
            description=f"multi-robot warehouse (rware-{_name}-v2, from {PAPER}): {_agents} robots fetch the "
            f"requested shelves ({_rows}x{_cols} blocks of shelves, column_height high), carry them to the goals "
            "and put them back; request_queue_size requests at once (None: n_agents). Observations: the package's "
            "flattened vector (own cell, heading, load, and the robots and shelves within sensor_range); "
            "Discrete(5): no-op, forward, left, right, toggle load (x 2**msg_bits with message bits). No "
            "termination: truncated at max_cycles (sparse reward, near 0 for a random policy)",
            reward=RWARE_REWARD,
            overrides={"n_agents": _agents, "shelf_columns": _cols, "shelf_rows": _rows, "column_height": 8,
                       "request_queue_size": None, "sensor_range": 1, "msg_bits": 0, "max_cycles": 500,
                       "max_inactivity_steps": None, "reward_type": "individual", "normalised_coordinates": False,
                       "layout": None},
            positions=_positions,
            pixels=_pixels,
        ),
        requires=("rware",),
        install=INSTALL,
    )
