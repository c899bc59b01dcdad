"""Batched mpe2 scenarios agree with mpe2 itself to 1e-5 on every step of whole episodes.

Two routes: (1) copy the state a live mpe2 env reached after ``reset(seed)`` into one env of a
batched simulator (several such envs stepped together), then step both with the same random actions;
(2) the trainer-facing adapters, ``VectorEnv`` over mpe2 and ``BatchedVectorEnv``, fed the same
seed and actions over several auto-reset episodes, produce the same ``EnvOutput`` field by field.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch

import scenarios
from envs.factory import make_vector_env
from envs.vector import VectorEnv

TOL = 1e-5

CASES = [
    ("mpe/simple_spread", {}),
    ("mpe/simple_spread", {"n_agents": 2}),
    ("mpe/simple_spread", {"n_agents": 7, "local_ratio": 0.2}),
    ("mpe/simple_spread", {"n_agents": 4, "continuous_actions": True}),
    ("mpe/simple_reference", {}),
    ("mpe/simple_reference", {"local_ratio": 0.9, "continuous_actions": True}),
    ("mpe/simple_speaker_listener", {}),
    ("mpe/simple_speaker_listener", {"continuous_actions": True}),
    ("mpe/simple_tag", {}),
    ("mpe/simple_tag", {"num_good": 2, "num_adversaries": 4, "num_obstacles": 3}),
    ("mpe/simple_tag", {"num_good": 3, "num_adversaries": 1, "num_obstacles": 0, "continuous_actions": True}),
]
IDS = [f"{name.split('/')[1]}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for name, kw in CASES]


def _sample(space, rng: np.random.Generator):
    if hasattr(space, "n"):
        return int(rng.integers(space.n))
    return rng.uniform(space.low, space.high).astype(np.float32)


@pytest.mark.parametrize(("name", "overrides"), CASES, ids=IDS)
def test_copied_mpe2_state_steps_like_mpe2(name, overrides):
    """Each batched env starts from the state an mpe2 env reached after reset(seed) and follows it
    for a whole episode: observations, rewards, state and endings agree on every step."""
    seeds = [0, 11, 2024]
    sc = scenarios.make(name, **overrides)
    mpe_envs = [sc.make_env() for _ in seeds]
    sim = sc.spec.batched(num_envs=len(seeds), **sc.overrides)
    rng = np.random.default_rng(5)
    obs = []
    for k, (env, seed) in enumerate(zip(mpe_envs, seeds)):
        o, _ = env.reset(seed=seed)
        obs.append(o)
        sim.load_mpe_world(k, env.unwrapped.world)

    def check(step, mpe_obs, mpe_rewards=None, batched_rewards=None):
        ours = sim.observations().numpy()
        state = sim.state().numpy()
        for k, env in enumerate(mpe_envs):
            for i, agent in enumerate(sc.agents):
                width = sim.obs_lengths[i]
                np.testing.assert_allclose(ours[k, i, :width], mpe_obs[k][agent], atol=TOL,
                                           err_msg=f"obs {agent} env {k} step {step}")
                assert not ours[k, i, width:].any()  # padding stays zero
                if mpe_rewards is not None:
                    assert abs(batched_rewards[k, i] - mpe_rewards[k][agent]) <= TOL, (
                        f"reward {agent} env {k} step {step}")
            np.testing.assert_allclose(state[k], env.state(), atol=TOL, err_msg=f"state env {k} step {step}")

    check(0, obs)
    for step in range(1, sc.episode_length + 1):
        actions = [{a: _sample(env.action_space(a), rng) for a in env.agents} for env in mpe_envs]
        results = [env.step(act) for env, act in zip(mpe_envs, actions)]
        if sim.discrete:
            batch = torch.tensor([[act[a] for a in sc.agents] for act in actions])
        else:
            width = max(sim.action_spaces[a].shape[0] for a in sc.agents)
            batch = torch.zeros(len(seeds), sim.n_agents, width, dtype=torch.float64)
            for k, act in enumerate(actions):
                for i, a in enumerate(sc.agents):
                    batch[k, i, : len(act[a])] = torch.as_tensor(act[a], dtype=torch.float64)
        reward, terminated, truncated = sim.step(batch)
        check(step, [r[0] for r in results], [r[1] for r in results], reward.numpy())
        for k, r in enumerate(results):
            assert bool(truncated[k]) == all(r[3].values()) and bool(terminated[k]) == any(r[2].values())
    assert truncated.all()  # the episode ran to its end on both sides
    for env in mpe_envs:
        env.close()


def _assert_outputs_equal(a, b, where: str) -> None:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x is None or y is None:
            assert x is None and y is None, f"{f.name} present on one backend only ({where})"
            continue
        assert x.shape == y.shape and x.dtype == y.dtype, (
            f"{f.name}: {x.shape}/{x.dtype} vs {y.shape}/{y.dtype} ({where})")
        if x.dtype == torch.bool or not x.is_floating_point():
            assert torch.equal(x, y), f"{f.name} differs ({where})"
        else:
            torch.testing.assert_close(y, x, atol=TOL, rtol=0, msg=f"{f.name} differs ({where})")


def assert_backends_agree(sc, steps: int, num_envs: int = 3, seed: int = 5, action_seed: int = 2, each_step=None):
    """Both backends of scenario ``sc`` from one seed, stepped ``steps`` times with the same random
    actions: same sizes, and every EnvOutput field agrees at reset and after every step.
    ``each_step(reference, batched, step)`` adds checks of its own. Returns (reference, batched)."""
    reference = VectorEnv(sc, num_envs, seed=seed)
    batched = make_vector_env(sc, num_envs, seed=seed, backend="batched")
    assert batched.state_dim == reference.state_dim and batched.obs_dim == reference.obs_dim
    try:
        _assert_outputs_equal(reference.reset(), batched.reset(), "reset")
        gen = torch.Generator().manual_seed(action_seed)
        for step in range(1, steps + 1):
            actions = reference.random_actions(gen)
            _assert_outputs_equal(reference.step(actions), batched.step(actions), f"step {step}")
            if each_step is not None:
                each_step(reference, batched, step)
    finally:
        reference.close()
    return reference, batched


@pytest.mark.parametrize(("name", "overrides"), CASES[::2], ids=IDS[::2])
def test_batched_vector_env_matches_pettingzoo_vector_env(name, overrides):
    """Same seed, same actions: every EnvOutput field agrees over several auto-reset episodes, so the
    backends are interchangeable (and reset to the same episodes)."""
    sc = scenarios.make(name, **{**overrides, "max_cycles": 10})
    reference = VectorEnv(sc, 3, seed=7)
    batched = make_vector_env(sc, 3, seed=7, backend="batched")
    assert batched.backend == "batched" and type(batched).__name__ == "BatchedVectorEnv"
    for attr in ("n_agents", "obs_dim", "state_dim", "pos_dim", "has_positions", "num_envs"):
        assert getattr(batched, attr) == getattr(reference, attr), attr
    for f in fields(reference.layout):
        mine, theirs = getattr(batched.layout, f.name), getattr(reference.layout, f.name)
        assert np.array_equal(mine, theirs) if isinstance(mine, np.ndarray) else mine == theirs, f.name
    _assert_outputs_equal(reference.reset(), batched.reset(), "reset")
    gen = torch.Generator().manual_seed(1)
    for step in range(25):  # two and a half episodes
        actions = reference.random_actions(gen)
        _assert_outputs_equal(reference.step(actions), batched.step(actions), f"step {step + 1}")
    np.testing.assert_array_equal(reference.episode_counts(), batched.episode_counts())
    reference.close()


def _assert_spread_episode_matches_mpe2(n_agents: int, seed: int) -> None:
    """One whole simple_spread episode, mpe2 against the batched simulator, same seed and actions."""
    assert_backends_agree(scenarios.make("mpe/simple_spread", n_agents=n_agents), steps=25, num_envs=1, seed=seed,
                          action_seed=0)


def test_spread_at_thirty_agents_matches_mpe2():
    """Many overlapping agents (stiff contact forces) stay within tolerance over a whole episode."""
    _assert_spread_episode_matches_mpe2(30, seed=3)


@pytest.mark.parametrize(("name", "overrides"), [CASES[2], CASES[9]], ids=[IDS[2], IDS[9]])
def test_large_batch_contact_path_matches_mpe2(name, overrides, monkeypatch):
    """The path large batches take (far pairs skip the exp; normally from 50,000 pairs) also agrees."""
    import envs.batched.mpe as mpe

    monkeypatch.setattr(mpe, "_SPARSE_FROM", 0)
    test_copied_mpe2_state_steps_like_mpe2(name, overrides)


@pytest.mark.slow
def test_spread_at_a_hundred_agents_matches_mpe2():
    """N=100 (mpe2 needs ~3 s for the episode)."""
    _assert_spread_episode_matches_mpe2(100, seed=8)
