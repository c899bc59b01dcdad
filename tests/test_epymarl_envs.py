"""Level-Based Foraging and the multi-robot warehouse (the ``epymarl`` extra) through our own
ParallelEnv adapters: PettingZoo's API and seed tests, the named tasks reproduced exactly,
episode ends, training and the vector env. Skipped where the packages are not installed, except
the test of the error a missing package gives."""

from __future__ import annotations

import importlib
import json
import sys
import warnings

import numpy as np
import pytest
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test

import envs
import scenarios
from scenarios import ScenarioError

LBF = ["lbf/foraging-8x8-2p-2f-coop", "lbf/foraging-8x8-2p-3f", "lbf/foraging-10x10-3p-3f"]
RWARE = ["rware/tiny-2ag", "rware/tiny-4ag", "rware/small-4ag"]
# our scenario -> the package's own Gymnasium registration of the same task
GYM_IDS = {
    "lbf/foraging-8x8-2p-2f-coop": "Foraging-8x8-2p-2f-coop-v3",
    "lbf/foraging-8x8-2p-3f": "Foraging-8x8-2p-3f-v3",
    "lbf/foraging-10x10-3p-3f": "Foraging-10x10-3p-3f-v3",
    "rware/tiny-2ag": "rware-tiny-2ag-v2",
    "rware/tiny-4ag": "rware-tiny-4ag-v2",
    "rware/small-4ag": "rware-small-4ag-v2",
}


def _need(name: str) -> None:
    pytest.importorskip("lbforaging" if name.startswith("lbf/") else "rware")


def _random_episode(env, seed: int, action_seed: int, max_steps: int | None = None):
    """(observations, rewards, terminations, truncations) of one episode with seeded random actions."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    trace = [(obs, None, None, None)]
    n = env.action_space(env.possible_agents[0]).n
    while env.agents and (max_steps is None or len(trace) <= max_steps):
        obs, rew, term, trunc, _ = env.step({a: int(rng.integers(n)) for a in env.agents})
        trace.append((obs, rew, term, trunc))
    return trace


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    return bool(np.array_equal(a, b))


# ---- registration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LBF + RWARE)
def test_spec_of_each_task(name):
    _need(name)
    assert name in scenarios.list()
    spec = scenarios.spec(name)
    assert spec.family == name.split("/")[0]
    assert "Papoudakis et al. 2021" in spec.description
    assert spec.has_positions and spec.reward
    assert {"n_agents", "max_cycles"} <= set(spec.overrides)
    coop = name.endswith("-coop") or name.startswith("rware/")
    assert spec.kind == ("cooperative" if coop else "mixed")
    sc = scenarios.make(name)
    assert sc.agents == tuple(f"agent_{i}" for i in range(spec.overrides["n_agents"]))
    assert sc.episode_length == spec.overrides["max_cycles"]
    assert not sc.heterogeneous


@pytest.mark.parametrize("name", ["lbf/foraging-8x8-2p-2f-coop", "rware/tiny-2ag"])
def test_missing_package_is_a_one_line_error_naming_the_extra(name, monkeypatch):
    """Runs with or without the packages: a None in sys.modules makes their import fail."""
    package = "lbforaging" if name.startswith("lbf/") else "rware"
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ScenarioError) as info:
        scenarios.make(name)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and package in msg
    assert "pip install 'mosaic-marl[epymarl]'" in msg
    assert name not in scenarios.list()  # left out of listings (and of tests over every scenario)
    assert scenarios.spec(name).family == name.split("/")[0]  # the static facts are still there


def test_the_epymarl_module_imports_without_the_packages(monkeypatch, isolated_registry):
    for package in ("lbforaging", "rware"):
        monkeypatch.setitem(sys.modules, package, None)
    for name in LBF + RWARE:  # registered again below, into the test's private registry
        isolated_registry._REGISTRY.pop(name)
    monkeypatch.delitem(sys.modules, "scenarios.benchmarks_epymarl", raising=False)
    importlib.import_module("scenarios.benchmarks_epymarl")
    assert set(LBF + RWARE) <= set(isolated_registry._REGISTRY)
    assert not set(LBF + RWARE) & set(scenarios.list())


# ---- the PettingZoo API ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", LBF + RWARE)
def test_parallel_api_and_seed_tests(name):
    _need(name)
    sc = scenarios.make(name)
    env = sc.make_env()
    try:
        parallel_api_test(env, num_cycles=60)
    finally:
        env.close()
    parallel_seed_test(sc.make_env, num_cycles=60)


@pytest.mark.parametrize("name", LBF + RWARE)
def test_same_seed_same_episode(name):
    _need(name)
    sc = scenarios.make(name)
    one, two = sc.make_env(), sc.make_env()
    a = _random_episode(one, seed=7, action_seed=1, max_steps=80)
    _random_episode(two, seed=123, action_seed=5, max_steps=10)  # an unrelated episode first
    b = _random_episode(two, seed=7, action_seed=1, max_steps=80)
    assert len(a) == len(b)
    for (oa, ra, ta, ua), (ob, rb, tb, ub) in zip(a, b):
        assert _same(oa, ob) and _same(ra, rb) and _same(ta, tb) and _same(ua, ub)
    other = _random_episode(one, seed=8, action_seed=1, max_steps=0)
    assert not _same(a[0][0], other[0][0])
    for obs, *_ in a:
        for agent, o in obs.items():
            assert o.dtype == np.float32 and one.observation_space(agent).contains(o)


@pytest.mark.parametrize("name", LBF + RWARE)
def test_defaults_reproduce_the_named_task(name):
    """Step by step, the same observations and rewards as the package's ``gym.make(<task>)``."""
    _need(name)
    import gymnasium as gym

    env = scenarios.make(name).make_env()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gym.make(GYM_IDS[name]).unwrapped
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    ref_obs, _ = ref.reset(seed=3)
    n = env.action_space("agent_0").n
    steps = 0
    while True:
        assert all(np.array_equal(obs[a], ref_obs[i]) for i, a in enumerate(env.possible_agents))
        if not env.agents or steps == 120:
            break
        joint = rng.integers(n, size=len(env.possible_agents))
        obs, rew, _, _, _ = env.step({a: joint[i] for i, a in enumerate(env.possible_agents)})
        ref_obs, ref_rew, _, _, _ = ref.step([int(x) for x in joint])
        assert [rew[a] for a in env.possible_agents] == [float(r) for r in ref_rew]
        steps += 1


# ---- episode ends, infos, state, rendering ---------------------------------------------------------


def test_lbf_truncates_at_max_cycles_and_terminates_when_the_field_is_cleared():
    pytest.importorskip("lbforaging")
    from envs.lbf import LBFParallelEnv

    env = LBFParallelEnv(n_agents=2, field_size=8, max_food=2, max_cycles=7)
    trace = _random_episode(env, seed=0, action_seed=0)
    assert len(trace) == 8  # reset + 7 steps
    *_, (_, _, term, trunc) = trace
    assert trunc == {"agent_0": True, "agent_1": True} and not any(term.values())
    assert env.agents == []

    # a 3x3 field has its one food in the centre, next to a lone player at any edge cell: loading clears it
    env = LBFParallelEnv(n_agents=1, field_size=3, max_food=1, max_cycles=20)
    seed = next(s for s in range(50) if env.reset(seed=s) and env.env.players[0].position != (1, 1))
    _, infos = env.reset(seed=seed)  # a player spawned in the centre leaves no room for the food
    assert infos["agent_0"]["success"] == 0.0 and infos["agent_0"]["food_collected"] == 0.0
    row, col = env.env.players[0].position
    if (row, col) != (1, 1) and abs(row - 1) + abs(col - 1) == 2:  # a corner: step next to the food first
        env.step({"agent_0": 2 if row == 0 else 1})
    _, rew, term, trunc, infos = env.step({"agent_0": 5})
    assert term == {"agent_0": True} and trunc == {"agent_0": False}
    assert rew["agent_0"] == pytest.approx(1.0)  # normalised: the whole field is worth 1
    assert infos["agent_0"]["success"] == 1.0 and infos["agent_0"]["food_collected"] == 1.0
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"agent_0": 0})


def test_lbf_state_positions_and_frames():
    pytest.importorskip("lbforaging")
    sc = scenarios.make("lbf/foraging-10x10-3p-3f")
    env = sc.make_env(render_mode="rgb_array")
    env.reset(seed=4)
    state = env.state()
    assert state.shape == (3 * (3 + 3),) and env.state_space.contains(state)
    pos = sc.spec.positions(env.unwrapped)
    assert pos.shape == (3, 2)
    assert [tuple(p) for p in pos] == [(p.position[1], p.position[0]) for p in env.env.players]
    assert state[9:].reshape(3, 3)[:, :2].tolist() == [[p.position[0], p.position[1]] for p in env.env.players]
    frame = env.render()
    assert frame.shape == (320, 320, 3) and frame.dtype == np.uint8
    assert sc.spec.pixels(env.unwrapped, pos).shape == (3, 2)
    assert scenarios.make("lbf/foraging-8x8-2p-3f").make_env().render() is None
    with pytest.raises(ScenarioError, match="n_agents must be >= 1"):
        scenarios.make("lbf/foraging-8x8-2p-3f", n_agents=0)
    small = scenarios.make("lbf/foraging-8x8-2p-2f-coop", sight=2, n_agents=3, field_size=6)
    assert small.n_agents == 3 and small.make_env().sight == 2


def test_rware_truncates_at_max_cycles_and_ends_on_inactivity():
    pytest.importorskip("rware")
    from envs import rware as rware_module
    from envs.rware import RWAREParallelEnv

    max_cycles_test(rware_module)  # every agent truncated at exactly max_cycles
    env = RWAREParallelEnv(n_agents=2, max_cycles=50, max_inactivity_steps=5)
    trace = _random_episode(env, seed=0, action_seed=0)
    *_, (_, _, term, trunc) = trace
    # random robots deliver nothing in 5 steps: the inactivity rule ends the episode, a termination
    assert len(trace) == 6 and all(term.values()) and not any(trunc.values())


def test_rware_message_bits_are_part_of_the_action():
    pytest.importorskip("rware")
    from envs.rware import RWAREParallelEnv

    env = RWAREParallelEnv(n_agents=2, msg_bits=2)
    assert env.action_space("agent_0").n == 5 * 4
    env.reset(seed=0)
    env.step({"agent_0": 2 + 5 * 1, "agent_1": 0 + 5 * 3})  # (left, bits 1 0), (no-op, bits 1 1)
    assert env.env.agents[0].message.tolist() == [1, 0]
    assert env.env.agents[1].message.tolist() == [1, 1]
    with pytest.raises(ValueError, match="valid actions"):
        env.step({"agent_0": 20, "agent_1": 0})


def test_rware_options_positions_and_frames():
    pytest.importorskip("rware")
    sc = scenarios.make("rware/small-4ag", request_queue_size=2, reward_type="global", max_cycles=30)
    env = sc.make_env(render_mode="rgb_array")
    env.reset(seed=1)
    assert env.env.request_queue_size == 2 and env.env.max_steps == 30
    pos = sc.spec.positions(env.unwrapped)
    assert pos.shape == (4, 2) and [tuple(p) for p in pos] == [(r.x, r.y) for r in env.env.agents]
    height, width = env.env.grid_size
    assert env.render().shape == (height * 24, width * 24, 3)
    assert scenarios.make("rware/tiny-4ag").make_env().env.request_queue_size == 4  # None: n_agents
    with pytest.raises(ScenarioError, match="reward_type"):
        scenarios.make("rware/tiny-2ag", reward_type="shared")


# ---- the platform over them -------------------------------------------------------------------------


@pytest.mark.parametrize("name", LBF + RWARE)
def test_vector_env_steps_with_random_actions(name):
    _need(name)
    import torch

    sc = scenarios.make(name)
    venv = envs.VectorEnv(sc, 2)
    out = venv.reset()
    n = sc.n_agents
    assert out.obs.shape[:2] == (2, n) and out.positions.shape == (2, n, 2)
    total = torch.zeros(2, n)
    steps = 60 if name.startswith("lbf/") else 30
    for _ in range(steps):
        out = venv.step(venv.random_actions())
        assert torch.isfinite(out.reward).all() and torch.isfinite(out.obs).all()
        total += out.reward
    assert torch.isfinite(total).all()
    if name.startswith("lbf/"):  # 50-step episodes: each env finished one and reset itself
        assert venv.reports_success
    venv.close()


@pytest.mark.parametrize("name", ["lbf/foraging-8x8-2p-2f-coop", "rware/tiny-2ag"])
def test_short_training_run(tmp_path, name):
    _need(name)
    from marl.cli import main

    run = tmp_path / "run"
    assert main(["train", f"scenario={name}", "total_steps=400", "num_envs=2", "algo.rollout_len=20",
                 "eval_episodes=1", "progress=false", f"out={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 400 and summary["final_eval"]["episodes"] == 1
