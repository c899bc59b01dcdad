"""Registers ``comm/traffic_junction`` (the Traffic Junction task of CommNet / IC3Net / TarMAC)."""

from __future__ import annotations

import importlib
from typing import Any

from scenarios.registry import register
from scenarios.spec import ScenarioSpec


def _traffic_junction(**kwargs: Any):
    from envs.traffic_junction import TrafficJunctionEnv

    return TrafficJunctionEnv(**kwargs)


def _batched(**kwargs: Any):
    # imported on first use, so listing scenarios does not load torch code
    return importlib.import_module("envs.batched.traffic_junction").TrafficJunctionSim(**kwargs)


register(
    "comm/traffic_junction",
    _traffic_junction,
    ScenarioSpec(
        family="comm",
        kind="cooperative",
        description="cars (agent slots) enter a road grid at random, follow fixed routes through junctions and "
        "only choose gas or brake; they see almost only themselves, so crossing safely needs communication "
        "(difficulty easy/medium/hard: 6x6 one junction, 14x14 two-way junction, 18x18 four junctions)",
        reward="per car: -0.01 * steps since it entered, -10 when it shares a cell with another car; "
        "0 for slots without a car",
        # None: the difficulty preset's value
        overrides={"difficulty": "medium", "n_agents": None, "max_cycles": None, "add_rate": None, "vision": 0},
        positions=lambda env: env.agent_positions(),
        # slots without a car stay in env.agents but are not in play: out of the loss and the graphs
        active=lambda env: env.active_agents(),
        pixels=lambda env, positions: env.unwrapped.to_pixels(positions),
        batched=_batched,
    ),
)
