"""Registers ``comm/predator_prey`` (IC3Net's cooperative predator-prey with limited vision)."""

from __future__ import annotations

import importlib
from typing import Any

from scenarios.registry import register
from scenarios.spec import ScenarioSpec


def _predator_prey(**kwargs: Any):
    from envs.predator_prey import PredatorPreyEnv

    return PredatorPreyEnv(**kwargs)


def _batched(**kwargs: Any):
    return importlib.import_module("envs.batched.predator_prey").PredatorPreySim(**kwargs)


register(
    "comm/predator_prey",
    _predator_prey,
    ScenarioSpec(
        family="comm",
        kind="cooperative",
        description="N predators on a GxG grid find one stationary prey; each sees only a (2*vision+1)^2 window, "
        "so finders must tell the others where it is. difficulty=easy|medium|hard (G 5/10/20, N 3/5/10, "
        "vision 0/1/1, max_cycles 20/40/80); the observation size is the same on every difficulty and N",
        reward="per predator per step: -0.05 off the prey; +0.05 * (predators on the prey) on it "
        "(IC3Net's cooperative mode); predators on the prey stay there",
        # None: from the difficulty's preset (window: max(1, vision))
        overrides={"difficulty": "medium", "n_agents": None, "grid_size": None, "vision": None,
                   "max_cycles": None, "window": None, "terminate_on_success": False},
        positions=lambda env: env.agent_positions(),
        pixels=lambda env, positions: env.to_pixels(positions),
        batched=_batched,
    ),
)
