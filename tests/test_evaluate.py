"""Evaluation against debug/scripted's known rewards: agent i gets (i + 1) * reward_scale per step
it acts, so every episode's return is known in advance whatever the policy does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scenarios
from envs import VectorEnv
from marl.evaluation import evaluate
from marl.nets import Actor


@pytest.mark.parametrize("episodes, num_envs", [(1, 8), (3, 8), (5, 2), (7, 3)])
def test_random_policy_returns_are_the_known_ones(episodes, num_envs):
    sc = scenarios.make("debug/scripted", n_agents=2, max_cycles=5, reward_scale=0.5)
    res = evaluate(sc, None, episodes=episodes, seed=3, num_envs=num_envs)
    assert res.agent_returns.shape == (episodes, 2)
    np.testing.assert_allclose(res.agent_returns, np.tile([2.5, 5.0], (episodes, 1)))
    np.testing.assert_allclose(res.returns, np.full(episodes, 3.75))  # mean over agents
    assert res.lengths.tolist() == [5] * episodes
    assert res.mean == pytest.approx(3.75) and res.std == pytest.approx(0.0)
    assert res.as_dict("eval_") == {"eval_return_mean": pytest.approx(3.75), "eval_return_std": 0.0,
                                    "eval_episodes": episodes}  # no success_mean: the env reports none
    assert res.success.shape == (episodes,) and np.isnan(res.success).all()


def test_leaving_and_terminating_agents_returns():
    # agent 0 leaves after step 2, the episode terminates for everyone after step 4
    sc = scenarios.make("debug/scripted", n_agents=3, max_cycles=9, terminate_at=4, leave_at={0: 2})
    torch.manual_seed(0)
    env = VectorEnv(sc, 1)
    actor = Actor(env.layout, hidden=8, layers=1)
    env.close()
    for policy in (None, actor):
        res = evaluate(sc, policy, episodes=4, seed=0, num_envs=2)
        np.testing.assert_allclose(res.agent_returns, np.tile([2.0, 8.0, 12.0], (4, 1)))
        assert res.lengths.tolist() == [4] * 4


def test_greedy_evaluation_is_deterministic_and_seeded():
    sc = scenarios.make("mpe/simple_spread", n_agents=2, max_cycles=10)
    torch.manual_seed(0)
    env = VectorEnv(sc, 1)
    actor = Actor(env.layout, hidden=16, layers=1)
    env.close()
    a = evaluate(sc, actor, episodes=3, seed=1, num_envs=2)
    b = evaluate(sc, actor, episodes=3, seed=1, num_envs=2)
    c = evaluate(sc, actor, episodes=3, seed=2, num_envs=2)
    np.testing.assert_array_equal(a.agent_returns, b.agent_returns)
    assert not np.array_equal(a.agent_returns, c.agent_returns)
