"""VectorEnv: batched [E, N, ...] tensors, auto-reset with final observations, leaving agents,
heterogeneous padding and masks, subprocess workers and seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

import scenarios
from envs import Layout, SpaceError, VectorEnv
from envs.layout import encode_obs


def _fields(out) -> dict[str, torch.Tensor]:
    return {k: v for k, v in vars(out).items() if v is not None}


@pytest.fixture
def spread4():
    env = VectorEnv(scenarios.make("mpe/simple_spread", n_agents=4, max_cycles=6), num_envs=3, seed=11)
    yield env
    env.close()


# ---- shapes ----------------------------------------------------------------------------------


def test_shapes_on_simple_spread_with_four_agents(spread4):
    env = spread4
    E, N, OBS, S = 3, 4, env.obs_dim, env.state_dim
    assert env.n_agents == N
    sc = env.scenario
    assert OBS == sc.observation_spaces[sc.agents[0]].shape[0]  # homogeneous: no id one-hot
    out = env.reset()
    assert out.obs.shape == (E, N, OBS) and out.obs.dtype == torch.float32
    assert out.state.shape == (E, S)
    assert out.alive.shape == (E, N) and out.alive.dtype == torch.bool and out.alive.all()
    assert out.positions.shape == (E, N, 2)
    assert out.reward is None and out.done_env is None  # a reset has no step results

    out = env.step(env.random_actions(torch.Generator().manual_seed(0)))
    assert out.reward.shape == (E, N)
    assert out.terminated.shape == out.truncated.shape == (E, N)
    assert out.final_obs.shape == (E, N, OBS)
    assert out.final_state.shape == (E, S)
    assert out.done_env.shape == (E,)
    assert out.episode_return.shape == (E, N)
    assert out.episode_length.shape == (E,)
    assert out.positions.shape == (E, N, 2)
    # mpe2 reports no success: the field is absent on every step (not NaN-filled)
    assert not env.reports_success and out.episode_success is None


def test_obs_match_the_pettingzoo_env():
    """Row i of obs is agent i's own observation from a plain env reset with the same seed."""
    from envs.group import episode_seed

    sc = scenarios.make("mpe/simple_spread", n_agents=4)
    env = VectorEnv(sc, num_envs=2, seed=5)
    out = env.reset()
    env.close()
    for k in range(2):
        raw = sc.make_env()
        obs, _ = raw.reset(seed=episode_seed(5, k, 0))
        raw.close()
        expected = np.stack([obs[a] for a in sc.agents])
        np.testing.assert_array_equal(out.obs[k].numpy(), expected)


def test_positions_follow_the_agents(spread4):
    env = spread4
    out = env.reset()
    # observation of simple_spread starts with the agent's velocity (2) then its position (2)
    np.testing.assert_allclose(out.positions.numpy(), out.obs[..., 2:4].numpy(), rtol=0, atol=1e-6)
    out = env.step(env.random_actions(torch.Generator().manual_seed(1)))
    np.testing.assert_allclose(out.positions.numpy(), out.obs[..., 2:4].numpy(), rtol=0, atol=1e-6)


def test_positions_describe_the_next_step_after_auto_reset():
    # debug/scripted positions are [agent index, t] of the live env
    sc = scenarios.make("debug/scripted", n_agents=3, max_cycles=2)
    env = VectorEnv(sc, num_envs=2, seed=0)
    out = env.reset()
    assert out.positions.shape == (2, 3, 2)
    assert out.positions[..., 0].tolist() == [[0, 1, 2]] * 2 and out.positions[..., 1].eq(0).all()
    out = env.step(torch.zeros(2, 3, dtype=torch.long))
    assert out.positions[..., 1].eq(1).all()
    out = env.step(torch.zeros(2, 3, dtype=torch.long))
    env.close()
    assert out.done_env.all() and out.positions[..., 1].eq(0).all()  # the new episode's t


# ---- auto-reset and episode ends ------------------------------------------------------------


def test_auto_reset_after_max_cycles_keeps_final_obs(spread4):
    env = spread4
    out = env.reset()
    gen = torch.Generator().manual_seed(3)
    rewards, previous = [], out
    for t in range(6):
        out = env.step(env.random_actions(gen))
        rewards.append(out.reward.clone())
        if t < 5:
            assert not out.done_env.any()
            assert not out.truncated.any() and not out.terminated.any()
            torch.testing.assert_close(out.final_obs, out.obs, rtol=0, atol=0)  # nothing ended
            assert (out.episode_return == 0).all() and (out.episode_length == 0).all()
            previous = out
    # step 6 == max_cycles: every env truncated, and reset
    assert out.done_env.all()
    assert out.truncated.all() and not out.terminated.any()
    assert out.alive.all()  # the new episode's agents act next
    assert (out.episode_length == 6).all()
    torch.testing.assert_close(out.episode_return, torch.stack(rewards).sum(0).double(), rtol=1e-6, atol=1e-6)
    # final_obs is the last observation of the old episode: positions moved on from the step before
    # by at most the velocity integration, while obs is a fresh reset (zero velocity)
    assert not torch.equal(out.final_obs, out.obs)
    assert (out.obs[..., 0:2] == 0).all()  # reset velocity
    assert not (out.final_obs[..., 0:2] == 0).all()
    last_pos, prev_pos = out.final_obs[..., 2:4], previous.obs[..., 2:4]
    assert (last_pos - prev_pos).abs().max() < 0.5
    # the next step continues the new episode
    out = env.step(env.random_actions(gen))
    assert not out.done_env.any()


def test_final_obs_equals_plain_env_replay():
    """final_obs at the truncation step is what PettingZoo itself returns for the same seed and actions."""
    from envs.group import episode_seed

    sc = scenarios.make("mpe/simple_spread", n_agents=3, max_cycles=4)
    env = VectorEnv(sc, num_envs=2, seed=21)
    env.reset()
    gen = torch.Generator().manual_seed(5)
    actions = []
    for _ in range(4):
        actions.append(env.random_actions(gen))
        out = env.step(actions[-1])
    env.close()
    assert out.done_env.all()
    for k in range(2):
        raw = sc.make_env()
        raw.reset(seed=episode_seed(21, k, 0))
        for a in actions:
            obs, rew, term, trunc, _ = raw.step({agent: int(a[k, i]) for i, agent in enumerate(sc.agents)})
        raw.close()
        np.testing.assert_array_equal(out.final_obs[k].numpy(), np.stack([obs[x] for x in sc.agents]))
        np.testing.assert_array_equal(out.reward[k].numpy(), np.array([rew[x] for x in sc.agents], np.float32))
        assert out.truncated[k].tolist() == [trunc[x] for x in sc.agents]


def test_reset_obs_after_auto_reset_is_the_seeded_reset():
    """The auto-reset is seeded like an explicit reset of that episode would be."""
    from envs.group import episode_seed

    sc = scenarios.make("mpe/simple_spread", n_agents=2, max_cycles=2)
    env = VectorEnv(sc, num_envs=2, seed=4)
    env.reset()
    for _ in range(2):
        out = env.step(env.random_actions(torch.Generator().manual_seed(0)))
    env.close()
    assert out.done_env.all()
    for k in range(2):
        raw = sc.make_env()
        obs, _ = raw.reset(seed=episode_seed(4, k, 1))  # the second episode of env k
        raw.close()
        np.testing.assert_array_equal(out.obs[k].numpy(), np.stack([obs[a] for a in sc.agents]))


def test_final_state_is_the_last_state_not_the_reset_one():
    sc = scenarios.make("mpe/simple_spread", n_agents=3, max_cycles=3)
    env = VectorEnv(sc, num_envs=2, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        out = env.step(env.random_actions(gen))
    env.close()
    assert out.done_env.all()
    raw = env.layout.raw_obs_dim
    if not env.state_from_env:  # the state is the concatenated observations
        torch.testing.assert_close(out.state, out.obs[..., :raw].reshape(2, -1), rtol=0, atol=0)
        torch.testing.assert_close(out.final_state, out.final_obs[..., :raw].reshape(2, -1), rtol=0, atol=0)
    assert not torch.equal(out.final_state, out.state)


def test_terminated_not_truncated_on_scripted_terminate_at():
    sc = scenarios.make("debug/scripted", n_agents=2, max_cycles=10, terminate_at=3)
    env = VectorEnv(sc, num_envs=2, seed=0)
    out = env.reset()
    for t in range(1, 4):
        out = env.step(torch.zeros(2, 2, dtype=torch.long))
        assert bool(out.done_env.all()) == (t == 3)
    env.close()
    assert out.terminated.all() and not out.truncated.any()
    # reward of agent i is i + 1 per step: 3 steps
    torch.testing.assert_close(out.episode_return, torch.tensor([[3.0, 6.0], [3.0, 6.0]], dtype=torch.float64))
    assert out.episode_length.tolist() == [3, 3]
    # final obs carries t = 3 (plus the seed's offset), the reset obs t = 0 (plus a new offset)
    assert torch.equal(out.final_obs[..., 0] - out.final_obs[:, :1, 0], torch.zeros(2, 2))
    assert not torch.equal(out.final_obs, out.obs)
    # state from ScriptedEnv.state(): [t + offset, alive...]; final state has everyone gone
    assert env.state_from_env
    assert out.final_state[:, 1:].eq(0).all() and out.state[:, 1:].eq(1).all()


def test_scripted_truncation_final_obs_holds_last_time_step():
    sc = scenarios.make("debug/scripted", n_agents=2, max_cycles=4)
    env = VectorEnv(sc, num_envs=1, seed=9)
    first = env.reset()
    offset = first.obs[0, 0, 0]
    for _ in range(4):
        out = env.step(torch.tensor([[2, 1]]))
    env.close()
    assert out.done_env.all() and out.truncated.all() and not out.terminated.any()
    # [t + offset, i, last action]
    torch.testing.assert_close(out.final_obs[0], torch.stack([
        torch.tensor([4.0, 0.0, 2.0]) + torch.tensor([offset, 0, 0]),
        torch.tensor([4.0, 1.0, 1.0]) + torch.tensor([offset, 0, 0]),
    ]))
    assert out.obs[0, :, 2].eq(0).all() and out.obs[0, :, 1].tolist() == [0.0, 1.0]


def test_agent_leaving_mid_episode():
    sc = scenarios.make("debug/scripted", n_agents=2, max_cycles=5, leave_at={0: 2})
    env = VectorEnv(sc, num_envs=2, seed=1)
    out = env.reset()
    assert out.alive.all()
    history = []
    for t in range(1, 6):
        out = env.step(torch.ones(2, 2, dtype=torch.long))
        history.append(out)
    env.close()
    # step 1: both act
    assert history[0].alive.all() and history[0].reward[:, 0].eq(1).all()
    # step 2: agent 0 terminates (its reward counts), it will not act again
    s2 = history[1]
    assert s2.terminated[:, 0].all() and not s2.terminated[:, 1].any() and not s2.truncated.any()
    assert s2.reward[:, 0].eq(1).all()
    assert not s2.alive[:, 0].any() and s2.alive[:, 1].all()
    assert not s2.done_env.any()
    assert s2.final_obs[:, 0, 1].eq(0).all() and s2.final_obs[:, 0, 2].eq(1).all()  # its last obs kept
    # steps 3 and 4: agent 0 is gone: no reward, zero observation, not alive, no flags
    for s in history[2:4]:
        assert not s.alive[:, 0].any() and s.alive[:, 1].all()
        assert s.reward[:, 0].eq(0).all() and s.reward[:, 1].eq(2).all()
        assert s.obs[:, 0].eq(0).all()
        assert not s.terminated[:, 0].any() and not s.truncated[:, 0].any()
    # step 5: agent 1 truncated, the env resets and both are back
    s5 = history[4]
    assert s5.done_env.all() and s5.truncated[:, 1].all() and not s5.truncated[:, 0].any()
    assert s5.alive.all()
    torch.testing.assert_close(s5.episode_return, torch.tensor([[2.0, 10.0], [2.0, 10.0]], dtype=torch.float64))


# ---- heterogeneous agents -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mpe/simple_speaker_listener", "mpe/simple_tag"])
def test_heterogeneous_obs_padded_with_agent_id(name):
    sc = scenarios.make(name)
    env = VectorEnv(sc, num_envs=2, seed=0)
    lay = env.layout
    N = env.n_agents
    dims = [int(np.prod(sc.observation_spaces[a].shape)) for a in sc.agents]
    assert lay.agent_id and lay.raw_obs_dim == max(dims) and env.obs_dim == max(dims) + N
    out = env.reset()
    env.close()
    assert out.obs.shape == (2, N, max(dims) + N)
    ids = out.obs[..., lay.raw_obs_dim:]
    torch.testing.assert_close(ids, torch.eye(N).expand(2, N, N))
    for i, d in enumerate(dims):
        assert out.obs[:, i, d : lay.raw_obs_dim].eq(0).all()  # padding after the agent's own obs


def test_speaker_listener_discrete_action_mask():
    sc = scenarios.make("mpe/simple_speaker_listener")
    env = VectorEnv(sc, num_envs=64, seed=0)
    lay = env.layout
    n = [sc.action_spaces[a].n for a in sc.agents]
    assert lay.discrete and lay.n_actions == max(n) and len(set(n)) > 1
    for i, ni in enumerate(n):
        assert lay.action_mask[i].tolist() == [True] * ni + [False] * (lay.n_actions - ni)
    gen = torch.Generator().manual_seed(0)
    env.reset()
    seen = torch.zeros(env.n_agents, lay.n_actions, dtype=torch.bool)
    for _ in range(20):
        a = env.random_actions(gen)
        assert a.shape == (64, env.n_agents) and a.dtype == torch.long
        seen[torch.arange(env.n_agents).expand(64, -1), a] = True
        env.step(a)  # the envs accept them
    env.close()
    assert torch.equal(seen, torch.as_tensor(lay.action_mask))  # every valid action, no invalid one


def test_random_continuous_actions_within_bounds():
    sc = scenarios.make("sisl/multiwalker")
    env = VectorEnv(sc, num_envs=2, seed=0)
    a = env.random_actions(torch.Generator().manual_seed(0))
    env.close()
    lay = env.layout
    assert not lay.discrete and a.shape == (2, env.n_agents, lay.action_dim)
    assert (a >= torch.as_tensor(lay.action_low)).all() and (a <= torch.as_tensor(lay.action_high)).all()


def test_mixed_discrete_and_continuous_actions_raise_space_error():
    obs = {"a": spaces.Box(-1, 1, (3,)), "b": spaces.Box(-1, 1, (3,))}
    act = {"a": spaces.Discrete(4), "b": spaces.Box(-1, 1, (2,))}
    with pytest.raises(SpaceError, match="Discrete") as info:
        Layout.from_spaces(["a", "b"], obs, act)
    assert "Box" in str(info.value)


def test_observations_of_different_ranks_raise_space_error():
    obs = {"a": spaces.Box(0, 1, (4, 4)), "b": spaces.Box(0, 1, (3,))}
    act = {"a": spaces.Discrete(2), "b": spaces.Discrete(2)}
    with pytest.raises(SpaceError, match="ranks"):
        Layout.from_spaces(["a", "b"], obs, act)


def test_layout_continuous_bounds_and_padding():
    obs = {"a": spaces.Box(-1, 1, (3,)), "b": spaces.Discrete(5)}
    act = {"a": spaces.Box(-2, 2, (2,)), "b": spaces.Box(0, 1, (3,))}
    lay = Layout.from_spaces(["a", "b"], obs, act)
    assert not lay.discrete and lay.action_dim == 3 and lay.raw_obs_dim == 5 and lay.agent_id
    assert lay.action_low.tolist() == [[-2, -2, 0], [0, 0, 0]]
    assert lay.action_high.tolist() == [[2, 2, 0], [1, 1, 1]]
    # env_action crops the padding and clips to the agent's own bounds
    np.testing.assert_array_equal(lay.env_action(0, np.array([5.0, -5.0, 9.0])), np.array([2.0, -2.0], np.float32))
    assert encode_obs(obs["b"], 3).tolist() == [0, 0, 0, 1, 0]


# ---- workers and seeding --------------------------------------------------------------------


def _trajectory(sc, workers: int, seed: int, steps: int, num_envs: int = 4):
    env = VectorEnv(sc, num_envs=num_envs, seed=seed, workers=workers)
    gen = torch.Generator().manual_seed(123)
    outs = [_fields(env.reset())]
    try:
        for _ in range(steps):
            outs.append(_fields(env.step(env.random_actions(gen))))
    finally:
        env.close()
    return outs


def test_subprocess_workers_match_in_process():
    sc = scenarios.make("mpe/simple_spread", n_agents=3, max_cycles=4)
    local = _trajectory(sc, workers=0, seed=7, steps=9)
    remote = _trajectory(sc, workers=2, seed=7, steps=9)
    assert len(local) == len(remote)
    for t, (a, b) in enumerate(zip(local, remote)):
        assert a.keys() == b.keys(), t
        for key in a:
            assert a[key].dtype == b[key].dtype, (t, key)
            assert torch.equal(a[key], b[key]), (t, key)
    assert any(o.get("done_env", torch.zeros(1)).any() for o in local)  # auto-resets were covered


def test_subprocess_worker_error_surfaces_in_parent():
    sc = scenarios.make("debug/scripted", n_actions=3)
    env = VectorEnv(sc, num_envs=2, seed=0, workers=1)
    try:
        env.reset()
        with pytest.raises(RuntimeError, match="env worker failed"):
            env.step(torch.zeros(1, 2, dtype=torch.long))  # wrong env count: the worker raises
    finally:
        env.close()


def test_same_seed_same_resets_different_seed_different():
    sc = scenarios.make("mpe/simple_spread", n_agents=3)
    a = _trajectory(sc, workers=0, seed=1, steps=2, num_envs=2)
    b = _trajectory(sc, workers=0, seed=1, steps=2, num_envs=2)
    c = _trajectory(sc, workers=0, seed=2, steps=2, num_envs=2)
    for x, y in zip(a, b):
        for key in x:
            assert torch.equal(x[key], y[key]), key
    assert not torch.equal(a[0]["obs"], c[0]["obs"])
    # envs of one vector get different episodes
    assert not torch.equal(a[0]["obs"][0], a[0]["obs"][1])


def test_invalid_num_envs_and_workers():
    sc = scenarios.make("debug/scripted")
    with pytest.raises(ValueError, match="num_envs"):
        VectorEnv(sc, num_envs=0)
    with pytest.raises(ValueError, match="workers"):
        VectorEnv(sc, num_envs=2, workers=3)
