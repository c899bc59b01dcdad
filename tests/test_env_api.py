"""Every env the project ships passes PettingZoo's own ``parallel_api_test``."""

from __future__ import annotations

import pytest
from pettingzoo.test import parallel_api_test

import scenarios
from envs.scripted import ScriptedEnv

# Scenarios whose defaults make episodes long; the API test only needs a few cycles of each.
NUM_CYCLES = 12


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"n_agents": 1},
        {"leave_at": {0: 2}},
        {"n_agents": 3, "leave_at": {0: 1, 2: 3}, "max_cycles": 6},
        {"terminate_at": 3},
        {"n_agents": 3, "terminate_at": 4, "leave_at": {1: 2}, "n_actions": 5, "reward_scale": -0.5},
    ],
    ids=["default", "one-agent", "leave", "two-leave", "terminate", "terminate+leave"],
)
def test_scripted_env_passes_parallel_api_test(kwargs):
    parallel_api_test(ScriptedEnv(**kwargs), num_cycles=20)


@pytest.mark.parametrize("name", scenarios.list())
def test_registered_scenario_passes_parallel_api_test(name):
    sc = scenarios.make(name)
    env = sc.make_env()
    try:
        parallel_api_test(env, num_cycles=NUM_CYCLES)
    finally:
        env.close()


def test_scripted_env_known_rewards_and_endings():
    """The reference env behaves as documented: agent i gets (i+1)*scale, leaves at leave_at[i]."""
    env = ScriptedEnv(n_agents=3, max_cycles=4, leave_at={1: 2}, reward_scale=0.5)
    obs, _ = env.reset(seed=None)
    assert obs["agent_2"].tolist() == [0.0, 2.0, 0.0]
    seen = []
    while env.agents:
        obs, rew, term, trunc, _ = env.step({a: 2 for a in env.agents})
        seen.append((env.t, rew, term, trunc))
    assert [t for t, *_ in seen] == [1, 2, 3, 4]
    assert seen[0][1] == {"agent_0": 0.5, "agent_1": 1.0, "agent_2": 1.5}
    assert seen[1][2] == {"agent_0": False, "agent_1": True, "agent_2": False}
    assert "agent_1" not in seen[2][1]
    assert seen[3][3] == {"agent_0": True, "agent_2": True}
    assert seen[3][2] == {"agent_0": False, "agent_2": False}
    assert obs["agent_0"].tolist() == [4.0, 0.0, 2.0]
