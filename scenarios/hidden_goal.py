"""``comm/hidden_goal``: navigation where each agent's goal is observed only by another agent
(:mod:`envs.hidden_goal`), so reaching it needs messages. Imported at the end of ``scenarios.builtin``."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from scenarios.registry import register
from scenarios.spec import ScenarioSpec


def _hidden_goal(**kwargs: Any):
    from envs.hidden_goal import HiddenGoalEnv

    return HiddenGoalEnv(**kwargs)


def _positions(env) -> np.ndarray:
    return env.agent_positions()


def _batched(**kwargs: Any):
    # imported on first use, so listing scenarios does not import torch's simulators
    return importlib.import_module("envs.batched.hidden_goal").HiddenGoalSim(**kwargs)


register(
    "comm/hidden_goal",
    _hidden_goal,
    ScenarioSpec(
        family="comm",
        kind="cooperative",
        description="N agents each reach their own goal, which only another agent observes (a random derangement "
        "at reset), tagged with the owner's random tag: unsolvable without messages; observation size independent "
        "of N",
        reward="per agent: -0.1 * distance to own (unobserved) goal, +0.1 each step on it, -0.5 per collision; "
        "the mean of these with shared_reward",
        overrides={"n_agents": 5, "n_obstacles": 0, "sensing_radius": 1.0, "max_neighbours": 2, "max_cycles": 50,
                   "world_size": None, "terminate_on_success": False, "shared_reward": False},
        positions=_positions,
        # the world is [-W, W]^2 with W = max(1, sqrt(N / 3)) unless world_size is given: sqrt(5/3) at N=5;
        # a live env's own extent is env.unwrapped.render_extent
        render_extent=float(np.sqrt(5 / 3)),
        pixels=lambda env, positions: env.unwrapped.to_pixels(positions),
        batched=_batched,
    ),
)
