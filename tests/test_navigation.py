"""``nav/navigation``: PettingZoo's API, seed and max-cycles tests; local sensing; rewards; seeding;
the scenario through the registry and the vector env; rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test

import scenarios
from envs import VectorEnv, navigation
from envs.navigation import NavigationEnv

K = 3
OWN = 6  # velocity, position, goal offset


def _agent_slots(obs: np.ndarray, k: int = K) -> np.ndarray:
    return obs[OWN : OWN + 3 * k].reshape(k, 3)


def _obstacle_slots(obs: np.ndarray, k: int = K) -> np.ndarray:
    return obs[OWN + 3 * k : OWN + 6 * k].reshape(k, 3)


# ---- PettingZoo's own tests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_agents": 1}, {"n_agents": 6, "n_obstacles": 4}, {"continuous_actions": True, "n_obstacles": 2},
     {"terminate_on_success": True, "shared_reward": True}],
    ids=["default", "one-agent", "six+obstacles", "continuous", "terminate+shared"],
)
def test_parallel_api_test(kwargs):
    parallel_api_test(NavigationEnv(**kwargs), num_cycles=60)


@pytest.mark.parametrize("kwargs", [{}, {"n_agents": 5, "n_obstacles": 3, "continuous_actions": True}])
def test_parallel_seed_test(kwargs):
    parallel_seed_test(lambda: NavigationEnv(**kwargs), num_cycles=60)


def test_pettingzoo_max_cycles_test():
    """The module exposes parallel_env/env/raw_env like PettingZoo's envs, so the real test runs."""
    max_cycles_test(navigation)
    aec = navigation.raw_env(max_cycles=3)
    aec.reset(seed=0)
    assert aec.possible_agents == ["agent_0", "agent_1", "agent_2"]


@pytest.mark.parametrize("max_cycles", [1, 7, 50])
def test_truncates_everyone_after_max_cycles(max_cycles):
    env = NavigationEnv(n_agents=4, max_cycles=max_cycles)
    env.reset(seed=3)
    for t in range(1, max_cycles + 1):
        assert env.agents == env.possible_agents
        _, _, terms, truncs, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert not any(terms.values())
        assert all(truncs.values()) == any(truncs.values()) == (t == max_cycles)
    assert env.agents == []


def test_terminate_on_success_ends_the_episode_when_all_are_on_their_goals():
    env = NavigationEnv(n_agents=2, terminate_on_success=True)
    env.reset(seed=0)
    env.set_state([[0.0, 0.0], [0.5, 0.5]], goal_pos=[[0.02, 0.0], [0.5, 0.45]])
    _, rew, terms, truncs, infos = env.step({a: 0 for a in env.agents})
    assert all(terms.values()) and not any(truncs.values())
    assert env.agents == []
    assert infos["agent_0"]["success"] == 1.0 and infos["agent_1"]["all_success"]
    assert env.success_rate() == 1.0 and env.last_success_rate == 1.0


# ---- observations ------------------------------------------------------------------------------


def test_observation_size_does_not_depend_on_the_number_of_agents():
    shapes = set()
    for n in (3, 6, 10):
        env = NavigationEnv(n_agents=n, n_obstacles=n // 3)
        obs, _ = env.reset(seed=n)
        assert len(obs) == n
        shapes |= {o.shape for o in obs.values()} | {env.observation_space(a).shape for a in env.agents}
        assert all(env.observation_space(a).contains(o) for a, o in obs.items())
        assert env.state().shape == (6 * n + 2 * (n // 3),)
    assert shapes == {(OWN + 6 * K,)}


def test_an_agent_sees_nothing_beyond_its_sensing_radius():
    env = NavigationEnv(n_agents=3, n_obstacles=2, sensing_radius=0.5, world_size=2.0)
    env.reset(seed=0)
    obs = env.set_state(
        [[-1.5, -1.5], [1.5, 1.5], [1.5, 1.1]],  # agent 0 alone; agents 1 and 2 are 0.4 apart
        goal_pos=[[1.8, 1.8], [0.0, 0.0], [-1.0, 1.0]],  # a far goal is still observed
        obstacle_pos=[[-1.5, -0.9], [1.0, 1.5]],  # 0.6 from agent 0 (out); 0.5 from agent 1 (in)
    )
    o0, o1, o2 = obs["agent_0"], obs["agent_1"], obs["agent_2"]
    assert np.allclose(o0[:6], [0, 0, -1.5, -1.5, 3.3, 3.3], atol=1e-6)
    assert not _agent_slots(o0).any() and not _obstacle_slots(o0).any()  # nothing within 0.5: all zero
    # agent 1 sees agent 2 (0.4 below) in its first slot, the rest empty, and one obstacle 0.5 to its left
    assert np.allclose(_agent_slots(o1), [[1, 0, -0.4], [0, 0, 0], [0, 0, 0]], atol=1e-6)
    assert np.allclose(_obstacle_slots(o1), [[1, -0.5, 0], [0, 0, 0], [0, 0, 0]], atol=1e-6)
    # agent 2 sees agent 1 but not the obstacle (0.64 away)
    assert np.allclose(_agent_slots(o2)[0], [1, 0, 0.4], atol=1e-6) and not _agent_slots(o2)[1:].any()
    assert not _obstacle_slots(o2).any()


def test_neighbour_slots_hold_the_k_nearest_in_order():
    env = NavigationEnv(n_agents=6, sensing_radius=1.0, max_neighbours=2, world_size=2.0)
    env.reset(seed=0)
    obs = env.set_state([[0, 0], [0.3, 0], [0, -0.1], [0.9, 0], [0.0, 0.2], [1.5, 0]])
    slots = _agent_slots(obs["agent_0"], k=2)
    assert np.allclose(slots, [[1, 0, -0.1], [1, 0, 0.2]], atol=1e-6)
    assert obs["agent_0"].shape == (OWN + 6 * 2,)


# ---- rewards -----------------------------------------------------------------------------------


def _first_reward(env, pos, goals, obstacles=None):
    env.set_state(pos, goal_pos=goals, obstacle_pos=obstacles)
    _, rew, *_ = env.step({a: 0 for a in env.agents})
    return rew


def test_reward_decreases_with_distance_to_the_goal():
    env = NavigationEnv(n_agents=1, world_size=2.0)
    env.reset(seed=0)
    rewards = [_first_reward(env, [[0.0, 0.0]], [[d, 0.0]])["agent_0"] for d in (0.05, 0.3, 0.8, 1.5)]
    assert all(a > b for a, b in zip(rewards, rewards[1:]))
    assert rewards[0] == pytest.approx(-0.1 * 0.05 + 0.1)  # on the goal: the bonus
    assert rewards[2] == pytest.approx(-0.1 * 0.8)


def test_collisions_with_agents_and_obstacles_are_penalised():
    # no contact forces and no-op actions: nobody moves, so rewards differ only by the collisions
    env = NavigationEnv(n_agents=3, n_obstacles=1, world_size=2.0, contact_force=0.0)
    env.reset(seed=0)
    offsets = np.array([[0.6, 0.3], [-0.4, 0.5], [0.2, 0.7]])  # each agent's goal, relative to it
    apart = np.array([[0.0, 0.0], [0.8, 0.0], [-0.8, 0.0]])
    crash = np.array([[0.0, 0.0], [0.15, 0.0], [-0.8, -1.35]])  # 0 and 1 overlap; 2 touches the obstacle
    r_apart = _first_reward(env, apart, apart + offsets, [[0.0, -1.5]])
    info_apart = env._infos(*env._evaluate())  # noqa: SLF001
    env.set_state(crash, goal_pos=crash + offsets, obstacle_pos=[[-0.8, -1.5]])
    _, r_crash, *_, infos = env.step({a: 0 for a in env.agents})
    assert [info_apart[a]["collisions"] for a in env.possible_agents] == [0, 0, 0]
    assert [infos[a]["collisions"] for a in env.possible_agents] == [1, 1, 1]
    for i, a in enumerate(env.possible_agents):
        assert r_apart[a] == pytest.approx(-0.1 * np.linalg.norm(offsets[i]))
        assert r_crash[a] == pytest.approx(r_apart[a] - 0.5)
    # two overlaps at once cost twice
    env.set_state([[0.0, 0.0], [0.15, 0.0], [-0.15, 0.0]], goal_pos=offsets, obstacle_pos=[[1.5, 1.5]])
    _, r3, *_, infos = env.step({a: 0 for a in env.agents})
    assert infos["agent_0"]["collisions"] == 2 and infos["agent_1"]["collisions"] == 1
    assert r3["agent_0"] == pytest.approx(-0.1 * np.linalg.norm(offsets[0] - [0.0, 0.0]) - 1.0)


def test_contact_forces_push_overlapping_agents_apart():
    env = NavigationEnv(n_agents=2, world_size=2.0)
    env.reset(seed=0)
    env.set_state([[0, 0], [0.1, 0]], goal_pos=[[1, 1], [-1, -1]])
    for _ in range(5):
        env.step({a: 0 for a in env.agents})
    assert np.linalg.norm(env.pos[0] - env.pos[1]) > 0.15
    assert env.pos[0, 0] < 0 < 0.1 < env.pos[1, 0]


def test_walls_and_speed_cap():
    env = NavigationEnv(n_agents=1, max_cycles=40)
    env.reset(seed=0)
    for _ in range(40):
        env.step({"agent_0": 2})  # +x all the way
        assert np.linalg.norm(env.vel[0]) <= env.max_speed + 1e-9
    assert env.pos[0, 0] == pytest.approx(1.0 - env.agent_radius)


# ---- seeding -----------------------------------------------------------------------------------


def _trajectory(env, seed, steps=30):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [np.stack(list(obs.values()))]
    for _ in range(steps):
        obs, rew, *_ = env.step({a: int(rng.integers(5)) for a in env.agents})
        out.append(np.stack(list(obs.values())))
        out.append(np.array(list(rew.values()), dtype=np.float32)[:, None].repeat(out[-1].shape[1], 1))
    return np.stack(out)


def test_same_seed_same_trajectory_and_unseeded_resets_continue_the_generator():
    a = NavigationEnv(n_agents=4, n_obstacles=2)
    b = NavigationEnv(n_agents=4, n_obstacles=2)
    assert np.array_equal(_trajectory(a, 7), _trajectory(b, 7))
    assert not np.array_equal(_trajectory(a, 7), _trajectory(a, 8))
    a.reset(seed=5)
    b.reset(seed=5)
    sa, sb = a.reset()[0], b.reset()[0]  # unseeded: continue each env's own (equal) generator
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(a.reset()[0]["agent_0"], sa["agent_0"])


# ---- through the registry and the vector env ----------------------------------------------------


def test_registered_scenario_through_vector_env():
    sc = scenarios.make("nav/navigation", n_agents=6)
    assert sc.n_agents == 6 and sc.spec.has_positions and sc.spec.kind == "cooperative"
    assert sc.episode_length == 50
    E, N = 3, 6
    venv = VectorEnv(sc, num_envs=E, seed=0)
    try:
        assert venv.state_from_env and venv.state_dim == 6 * N
        out = venv.reset()
        assert out.obs.shape == (E, N, OWN + 6 * K)
        assert out.state.shape == (E, 6 * N)
        assert out.positions.shape == (E, N, 2)
        raw = venv._group._raw  # noqa: SLF001
        for k in range(E):
            assert torch.allclose(out.positions[k], torch.from_numpy(raw[k].agent_positions()))
            assert torch.allclose(out.obs[k, :, 2:4], out.positions[k])  # own position in the obs
        for _ in range(3):
            out = venv.step(venv.random_actions(torch.Generator().manual_seed(0)))
        assert out.reward.shape == (E, N) and out.positions.shape == (E, N, 2)
        # world of half-width sqrt(6/3): every agent inside it
        assert out.positions.abs().max() <= np.sqrt(2.0)
    finally:
        venv.close()


# ---- rendering ---------------------------------------------------------------------------------


def test_render_returns_a_uint8_frame():
    env = NavigationEnv(n_agents=3, n_obstacles=2, render_mode="rgb_array", render_size=128)
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == (128, 128, 3)
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 4  # agents, goals, obstacles, halos drawn
    # an agent is drawn where to_pixels puts it
    x, y = np.round(env.to_pixels(env.pos[0])).astype(int)
    assert tuple(frame[y, x]) == env._colour(0)  # noqa: SLF001
    env.step({a: 1 for a in env.agents})
    assert env.render().shape == (128, 128, 3)
    assert NavigationEnv().render() is None  # no render mode
    env.close()
