"""Batched simulators behind the two faces the rest of the code sees: PettingZoo's ParallelEnv API
(one env) and the trainer's vector env (backend choice, seeding, resuming)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

import scenarios
from envs.factory import make_vector_env, resolve_backend

BATCHED = ["mpe/simple_spread", "mpe/simple_reference", "mpe/simple_speaker_listener", "mpe/simple_tag",
           "nav/navigation", "comm/predator_prey", "comm/traffic_junction", "comm/hidden_goal"]
VIEW_CASES = [
    ("simple_spread", {}), ("simple_spread", {"n_agents": 5, "continuous_actions": True}),
    ("simple_reference", {}), ("simple_speaker_listener", {}), ("simple_tag", {}),
    ("simple_tag", {"num_good": 2, "continuous_actions": True}),
    ("navigation", {}), ("navigation", {"n_agents": 6, "n_obstacles": 2, "continuous_actions": True}),
]


def _view(module: str, options: dict):
    return importlib.import_module(f"envs.batched.{module}").parallel_env(**options)


def test_registry_marks_batched_scenarios():
    marked = [name for name in scenarios.list() if scenarios.spec(name).has_batched]
    assert marked == sorted(BATCHED)


@pytest.mark.parametrize(("module", "options"), VIEW_CASES, ids=[f"{m}-{len(o)}" for m, o in VIEW_CASES])
def test_parallel_view_passes_pettingzoo_api_and_seed_tests(module, options):
    parallel_api_test(_view(module, options), num_cycles=30)
    parallel_seed_test(lambda: _view(module, options))


@pytest.mark.parametrize(("module", "name"), [("simple_spread", "mpe/simple_spread"), ("navigation", "nav/navigation"),
                                              ("simple_tag", "mpe/simple_tag")])
def test_parallel_view_plays_the_same_episode_as_the_pettingzoo_env(module, name):
    sc = scenarios.make(name)
    theirs, ours = sc.make_env(), _view(module, {})
    obs_a, _ = theirs.reset(seed=42)
    obs_b, _ = ours.reset(seed=42)
    rng = np.random.default_rng(0)
    while theirs.agents:
        for a in sc.agents:
            np.testing.assert_allclose(obs_b[a], obs_a[a], atol=1e-5)
        actions = {a: int(rng.integers(theirs.action_space(a).n)) for a in theirs.agents}
        obs_a, rew_a, term_a, trunc_a, _ = theirs.step(actions)
        obs_b, rew_b, term_b, trunc_b, _ = ours.step(actions)
        assert rew_b == pytest.approx(rew_a, abs=1e-5) and term_a == term_b and trunc_a == trunc_b
        np.testing.assert_allclose(ours.state(), theirs.state(), atol=1e-5)
    assert not ours.agents


def test_parallel_view_rejects_out_of_range_discrete_actions():
    env = _view("simple_spread", {})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action 5 of agent_0 is outside its space Discrete"):
        env.step({"agent_0": 5, "agent_1": 0, "agent_2": 0})


def test_backend_resolution_and_errors():
    spread, pursuit = scenarios.make("mpe/simple_spread"), scenarios.make("mpe/simple_push")
    assert resolve_backend(spread) == "batched"
    assert resolve_backend(spread, "pettingzoo") == "pettingzoo"
    assert resolve_backend(spread, "auto", workers=2) == "pettingzoo"  # workers serve PettingZoo envs only
    assert resolve_backend(pursuit) == "pettingzoo"
    with pytest.raises(ValueError, match="'mpe/simple_push' has no batched simulator"):
        resolve_backend(pursuit, "batched")
    with pytest.raises(ValueError, match="backend='fast' is not valid. Valid: auto, batched, pettingzoo"):
        resolve_backend(spread, "fast")
    with pytest.raises(ValueError, match="workers=2 applies to the pettingzoo backend only"):
        resolve_backend(spread, "batched", workers=2)
    env = make_vector_env(pursuit, 2)
    assert env.backend == "pettingzoo"
    env.close()


def _rollout(env, steps: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    outs = [env.reset()]
    for _ in range(steps):
        outs.append(env.step(env.random_actions(gen)))
    return outs


def test_same_seed_same_episodes_and_envs_are_seeded_apart():
    sc = scenarios.make("mpe/simple_spread", max_cycles=5)
    a = _rollout(make_vector_env(sc, 4, seed=3), 12, 0)
    b = _rollout(make_vector_env(sc, 4, seed=3), 12, 0)
    for x, y in zip(a, b):
        assert torch.equal(x.obs, y.obs) and torch.equal(x.state, y.state)
    first = a[0].positions
    assert not torch.equal(first[0], first[1])  # each env draws its own episode
    other = make_vector_env(sc, 4, seed=4).reset()
    assert not torch.equal(other.positions, first)
    # env k's episodes do not depend on how many envs run beside it
    alone = make_vector_env(sc, 1, seed=3).reset()
    assert torch.equal(alone.obs[0], a[0].obs[0])


def test_episode_counts_replay_episodes_for_resuming():
    sc = scenarios.make("nav/navigation", n_agents=4, max_cycles=6)
    env = make_vector_env(sc, 3, seed=1)
    outs = _rollout(env, 13, 0)  # episodes end at steps 6 and 12
    assert outs[6].done_env.all() and outs[12].done_env.all()
    counts = env.episode_counts()
    assert counts.tolist() == [3, 3, 3]
    replay = make_vector_env(sc, 3, seed=1)
    replay.set_episode_counts(counts - 1)  # the episode in progress, from its start
    assert torch.equal(replay.reset().obs, outs[12].obs)


def test_nav_terminates_when_every_agent_sits_on_its_goal():
    sc = scenarios.make("nav/navigation", n_agents=3, terminate_on_success=True)
    env = make_vector_env(sc, 2, seed=0)
    env.reset()
    sim = env.sim
    sim.pos[0] = sim.goals[0]  # env 0: everyone on the goal; env 1 as drawn
    out = env.step(torch.zeros(2, 3, dtype=torch.long))
    assert out.terminated[0].all() and not out.truncated[0].any() and out.done_env.tolist() == [True, False]
    assert out.episode_length.tolist() == [1, 0]
    # the on-goal bonus is in the returned reward: -0.1 * 0 distance + 0.1
    assert torch.allclose(out.reward[0], torch.full((3,), 0.1))
    assert torch.equal(out.episode_return[0], out.reward[0].double())
    assert not torch.equal(out.obs[0], out.final_obs[0])  # env 0 was reset, final_obs keeps its last state


def test_batched_env_runs_on_the_requested_device_dtype():
    sc = scenarios.make("mpe/simple_spread")
    env = make_vector_env(sc, 2, device="cpu")
    out = env.step(env.random_actions()) if env.reset() is not None else None
    assert out.obs.dtype == torch.float32 and out.episode_return.dtype == torch.float64
    assert out.episode_length.dtype == torch.int64 and out.alive.dtype == torch.bool


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", BATCHED)
def test_batched_env_on_cuda_matches_cpu(name):
    sc = scenarios.make(name)
    cpu, gpu = make_vector_env(sc, 8, seed=2), make_vector_env(sc, 8, seed=2, device="cuda")
    a, b = cpu.reset(), gpu.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        actions = cpu.random_actions(gen)
        a, b = cpu.step(actions), gpu.step(actions.cuda())
        assert b.obs.is_cuda
        torch.testing.assert_close(b.obs.cpu(), a.obs, atol=1e-5, rtol=0)
        torch.testing.assert_close(b.reward.cpu(), a.reward, atol=1e-5, rtol=0)
        assert torch.equal(b.done_env.cpu(), a.done_env)
