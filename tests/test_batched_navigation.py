"""Batched nav/navigation agrees with NavigationEnv (our PettingZoo env) on every step of several
auto-reset episodes: same seeds, same actions, same EnvOutput."""

from __future__ import annotations

import pytest
from test_batched_mpe import assert_backends_agree

import scenarios


@pytest.mark.parametrize("options", [
    {},
    {"n_agents": 12, "n_obstacles": 4, "sensing_radius": 0.7, "max_neighbours": 2},
    {"n_agents": 5, "continuous_actions": True, "shared_reward": True, "max_neighbours": 6},
    {"n_agents": 2, "world_size": 0.45, "terminate_on_success": True},
    {"n_agents": 1},
], ids=["default", "crowd-obstacles", "continuous-shared", "tiny-world-terminate", "one-agent"])
def test_batched_navigation_matches_navigation_env(options):
    assert_backends_agree(scenarios.make("nav/navigation", **{**options, "max_cycles": 12}), steps=30)
