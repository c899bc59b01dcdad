"""Batched nav/navigation agrees with NavigationEnv (our PettingZoo env) on every step of several
auto-reset episodes: same seeds, same actions, same EnvOutput."""

from __future__ import annotations

import pytest
import torch
from test_batched_mpe import _assert_outputs_equal

import scenarios
from envs.factory import make_vector_env
from envs.vector import VectorEnv


@pytest.mark.parametrize("options", [
    {},
    {"n_agents": 12, "n_obstacles": 4, "sensing_radius": 0.7, "max_neighbours": 2},
    {"n_agents": 5, "continuous_actions": True, "shared_reward": True, "max_neighbours": 6},
    {"n_agents": 2, "world_size": 0.45, "terminate_on_success": True},
    {"n_agents": 1},
], ids=["default", "crowd-obstacles", "continuous-shared", "tiny-world-terminate", "one-agent"])
def test_batched_navigation_matches_navigation_env(options):
    sc = scenarios.make("nav/navigation", **{**options, "max_cycles": 12})
    reference = VectorEnv(sc, 3, seed=5)
    batched = make_vector_env(sc, 3, seed=5, backend="batched")
    assert batched.state_dim == reference.state_dim and batched.obs_dim == reference.obs_dim
    _assert_outputs_equal(reference.reset(), batched.reset(), "reset")
    gen = torch.Generator().manual_seed(2)
    for step in range(30):
        actions = reference.random_actions(gen)
        _assert_outputs_equal(reference.step(actions), batched.step(actions), f"step {step + 1}")
    reference.close()
