"""``comm/hidden_goal``: PettingZoo's API, seed and max-cycles tests; who observes which goal; tags;
rewards, success and sensing on hand-placed states; seeding; the scripted references (the task is
unsolvable without the hidden information); training through the registry; the batched simulator
against the PettingZoo env step for step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test
from test_batched_mpe import assert_backends_agree

import marl
import scenarios
from envs import hidden_goal
from envs.batched.hidden_goal import HiddenGoalSim
from envs.hidden_goal import HiddenGoalEnv, draw_derangement, steer
from envs.navigation import NavigationEnv
from envs.vector import VectorEnv

K = 2
OWN = 10  # velocity, position, own tag, held goal's owner tag, held goal


def _agent_slots(obs: np.ndarray, k: int = K) -> np.ndarray:
    return obs[OWN : OWN + 3 * k].reshape(k, 3)


def _still(env) -> dict:
    return {a: 0 for a in env.possible_agents}


# ---- PettingZoo's own tests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_agents": 2}, {"n_agents": 8, "n_obstacles": 3, "max_neighbours": 4},
     {"terminate_on_success": True, "shared_reward": True}],
    ids=["default", "two-agents", "eight+obstacles", "terminate+shared"],
)
def test_parallel_api_test(kwargs):
    parallel_api_test(HiddenGoalEnv(**kwargs), num_cycles=60)


@pytest.mark.parametrize("kwargs", [{}, {"n_agents": 7, "n_obstacles": 2}])
def test_parallel_seed_test(kwargs):
    parallel_seed_test(lambda: HiddenGoalEnv(**kwargs), num_cycles=60)


def test_pettingzoo_max_cycles_test():
    max_cycles_test(hidden_goal)
    aec = hidden_goal.raw_env(max_cycles=3)
    aec.reset(seed=0)
    assert aec.possible_agents == [f"agent_{i}" for i in range(5)]


@pytest.mark.parametrize("max_cycles", [1, 9, 50])
def test_everyone_is_truncated_together_after_max_cycles(max_cycles):
    env = HiddenGoalEnv(n_agents=4, max_cycles=max_cycles)
    env.reset(seed=1)
    for t in range(1, max_cycles + 1):
        assert env.agents == env.possible_agents
        _, _, terms, truncs, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert not any(terms.values())
        assert all(truncs.values()) == any(truncs.values()) == (t == max_cycles)
    assert env.agents == []


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="n_agents must be >= 2"):
        HiddenGoalEnv(n_agents=1)
    with pytest.raises(TypeError, match="discrete"):
        HiddenGoalEnv(continuous_actions=True)
    env = HiddenGoalEnv(n_agents=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="without fixed points"):
        env.set_state(env.pos, held=[1, 0, 2])  # agent 2 would hold its own goal
    with pytest.raises(ValueError, match="without fixed points"):
        env.set_state(env.pos, held=[1, 1, 0])  # not a permutation


# ---- who holds which goal ------------------------------------------------------------------------


def test_derangements_have_no_fixed_point_and_cover_all_of_them():
    rng = np.random.default_rng(0)
    assert draw_derangement(rng, 2).tolist() == [1, 0]
    seen = {tuple(draw_derangement(rng, 3)) for _ in range(200)}
    assert seen == {(1, 2, 0), (2, 0, 1)}  # the only two derangements of 3
    counts: dict[tuple, int] = {}
    for _ in range(4400):
        d = tuple(draw_derangement(rng, 4))
        counts[d] = counts.get(d, 0) + 1
    assert len(counts) == 9  # the 9 derangements of 4, each about equally often
    assert min(counts.values()) > 400 and max(counts.values()) < 600
    with pytest.raises(ValueError):
        draw_derangement(rng, 1)


@pytest.mark.parametrize("n", [2, 5, 13])
def test_every_agent_holds_exactly_one_other_agents_goal(n):
    env = HiddenGoalEnv(n_agents=n)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        assert sorted(env.held.tolist()) == list(range(n))
        assert (env.held != np.arange(n)).all()
        assert (env.held[env.holders()] == np.arange(n)).all()
        for i, a in enumerate(env.possible_agents):
            j = env.held[i]
            assert np.allclose(obs[a][6:8], env.tags[j]) and np.allclose(obs[a][8:10], env.goals[j])


def test_tags_are_uniform_in_the_square_and_redrawn_every_episode():
    env = HiddenGoalEnv(n_agents=10)
    env.reset(seed=0)
    tags, helds = [], []
    for _ in range(200):
        env.reset()
        tags.append(env.tags.copy())
        helds.append(tuple(env.held))
    tags = np.concatenate(tags)
    assert np.abs(tags).max() <= 1.0 and np.abs(tags.mean(0)).max() < 0.05
    assert np.allclose(tags.std(0), 1 / np.sqrt(3), atol=0.03)  # the std of U(-1, 1)
    assert len(set(helds)) == 200  # a new assignment every episode


def test_own_goal_is_not_observed_but_the_holder_sees_it():
    env = HiddenGoalEnv(n_agents=3, world_size=2.0)
    env.reset(seed=0)
    pos = [[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0]]
    tags = [[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]]
    held = [2, 0, 1]  # agent 0 holds agent 2's goal, 1 holds 0's, 2 holds 1's
    goals = np.array([[0.0, 0.5], [-0.5, 0.0], [1.5, 1.5]])
    obs = env.set_state(pos, goal_pos=goals, held=held, tags=tags)
    assert np.allclose(obs["agent_0"][:10], [0, 0, -1, -1, 0.1, 0.2, 0.5, -0.6, 1.5, 1.5])
    assert np.allclose(obs["agent_1"][:10], [0, 0, 1, 1, -0.3, 0.4, 0.1, 0.2, 0.0, 0.5])
    assert np.allclose(obs["agent_2"][:10], [0, 0, 1, -1, 0.5, -0.6, -0.3, 0.4, -0.5, 0.0])
    assert env.holders().tolist() == [1, 2, 0]
    # moving agent 0's goal changes only its holder's (agent 1's) observation
    moved = env.set_state(pos, goal_pos=goals + [[0.7, -0.9], [0, 0], [0, 0]])
    assert np.array_equal(moved["agent_0"], obs["agent_0"]) and np.array_equal(moved["agent_2"], obs["agent_2"])
    assert np.allclose(moved["agent_1"][8:10], [0.7, -0.4])
    # ... but agent 0's reward follows its own goal
    _, far, *_ = env.step(_still(env))
    env.set_state(pos, goal_pos=goals)
    _, near, *_ = env.step(_still(env))
    assert far["agent_0"] == pytest.approx(-0.1 * np.hypot(1.7, 0.6))
    assert near["agent_0"] == pytest.approx(-0.1 * np.hypot(1.0, 1.5))


# ---- observation layout, sensing, state -------------------------------------------------------


def test_observation_size_does_not_depend_on_the_number_of_agents():
    shapes = set()
    for n in (2, 5, 10, 20):
        env = HiddenGoalEnv(n_agents=n)
        obs, _ = env.reset(seed=n)
        assert env.world_size == pytest.approx(max(1.0, np.sqrt(n / 3)))
        shapes |= {o.shape for o in obs.values()} | {env.observation_space(a).shape for a in env.agents}
        assert all(env.observation_space(a).contains(o) and o.dtype == np.float32 for a, o in obs.items())
        assert env.state().shape == (8 * n,) and env.state_space.contains(env.state())
        assert env.agent_positions().shape == (n, 2)
    assert shapes == {(OWN + 6 * K,)}


def test_neighbour_slots_hold_the_k_nearest_within_the_sensing_radius():
    env = HiddenGoalEnv(n_agents=5, sensing_radius=0.5, world_size=2.0)
    env.reset(seed=0)
    obs = env.set_state([[0, 0], [0.3, 0], [0, -0.2], [0, 0.4], [1.5, 1.5]])
    assert np.allclose(_agent_slots(obs["agent_0"]), [[1, 0, -0.2], [1, 0.3, 0]], atol=1e-6)
    assert not _agent_slots(obs["agent_4"]).any()  # nobody within 0.5
    assert not obs["agent_0"][OWN + 3 * K :].any()  # no obstacles: their slots stay zero


def test_obstacles_are_sensed_and_collide():
    env = HiddenGoalEnv(n_agents=2, n_obstacles=1, world_size=2.0, contact_force=0.0)
    env.reset(seed=0)
    obs = env.set_state([[0, 0], [1.5, 1.5]], goal_pos=[[0, 0], [1.5, 1.5]], obstacle_pos=[[0.15, 0]])
    assert np.allclose(obs["agent_0"][OWN + 3 * K : OWN + 3 * K + 3], [1, 0.15, 0], atol=1e-6)
    _, rew, *_, infos = env.step(_still(env))
    assert infos["agent_0"]["collisions"] == 1 and rew["agent_0"] == pytest.approx(0.1 - 0.5)


def test_state_holds_positions_velocities_goals_and_tags():
    env = HiddenGoalEnv(n_agents=3, n_obstacles=1)
    env.reset(seed=4)
    env.step({a: 2 for a in env.agents})
    state = env.state().reshape(-1)
    per_agent = state[:24].reshape(3, 8)
    assert np.allclose(per_agent[:, 0:2], env.pos) and np.allclose(per_agent[:, 2:4], env.vel)
    assert np.allclose(per_agent[:, 4:6], env.goals) and np.allclose(per_agent[:, 6:8], env.tags)
    assert np.allclose(state[24:], env.obstacles.reshape(-1))
    assert np.allclose(env.agent_positions(), env.pos)


# ---- rewards and success ----------------------------------------------------------------------


def test_rewards_distance_goal_bonus_collisions_and_success():
    env = HiddenGoalEnv(n_agents=4, world_size=2.0, contact_force=0.0)
    env.reset(seed=0)
    pos = np.array([[0.0, 0.0], [0.15, 0.0], [-1.0, 1.0], [1.0, -1.0]])  # agents 0 and 1 overlap
    goals = pos + [[0.05, 0.0], [0.6, 0.8], [0.0, 0.0], [0.0, 1.0]]
    env.set_state(pos, goal_pos=goals)
    _, rew, terms, truncs, infos = env.step(_still(env))
    assert rew["agent_0"] == pytest.approx(-0.1 * 0.05 + 0.1 - 0.5)
    assert rew["agent_1"] == pytest.approx(-0.1 * 1.0 - 0.5)
    assert rew["agent_2"] == pytest.approx(0.1)
    assert rew["agent_3"] == pytest.approx(-0.1)
    assert [infos[a]["at_goal"] for a in env.possible_agents] == [True, False, True, False]
    assert [infos[a]["collisions"] for a in env.possible_agents] == [1, 1, 0, 0]
    assert all(info["success"] == 0.5 and not info["all_success"] for info in infos.values())
    assert not any(terms.values()) and not any(truncs.values())

    shared = HiddenGoalEnv(n_agents=4, world_size=2.0, contact_force=0.0, shared_reward=True)
    shared.reset(seed=0)
    shared.set_state(pos, goal_pos=goals)
    _, rew_shared, *_ = shared.step(_still(shared))
    assert all(r == pytest.approx(np.mean(list(rew.values()))) for r in rew_shared.values())


def test_success_at_the_last_step_is_the_episode_success():
    env = HiddenGoalEnv(n_agents=2, world_size=2.0, max_cycles=2)
    env.reset(seed=0)
    env.set_state([[0.0, 0.0], [1.0, 1.0]], goal_pos=[[0.0, 0.0], [-1.0, -1.0]])
    _, _, _, truncs, infos = env.step(_still(env))
    _, _, _, truncs, infos = env.step(_still(env))
    assert all(truncs.values()) and infos["agent_0"]["success"] == 0.5 and env.last_success_rate == 0.5


def test_terminate_on_success_ends_the_episode_when_everyone_is_on_their_goal():
    env = HiddenGoalEnv(n_agents=2, terminate_on_success=True)
    env.reset(seed=0)
    env.set_state([[0.0, 0.0], [0.5, 0.5]], goal_pos=[[0.02, 0.0], [0.5, 0.45]])
    _, _, terms, truncs, infos = env.step(_still(env))
    assert all(terms.values()) and not any(truncs.values()) and env.agents == []
    assert infos["agent_0"]["success"] == 1.0 and infos["agent_1"]["all_success"]


# ---- seeding ------------------------------------------------------------------------------------


def _trajectory(env, seed, steps=20):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [np.stack(list(obs.values()))]
    for _ in range(steps):
        obs, rew, *_ = env.step({a: int(rng.integers(5)) for a in env.agents})
        out.append(np.stack(list(obs.values())))
        out.append(np.array(list(rew.values()), dtype=np.float32)[:, None].repeat(out[-1].shape[1], 1))
    return np.stack(out)


def test_same_seed_same_episode_and_the_layout_is_navigations():
    a, b = HiddenGoalEnv(n_agents=6, n_obstacles=2), HiddenGoalEnv(n_agents=6, n_obstacles=2)
    assert np.array_equal(_trajectory(a, 7), _trajectory(b, 7))
    assert not np.array_equal(_trajectory(a, 7), _trajectory(a, 8))
    # agents, goals and obstacles are navigation's draws for the same seed (the rest is drawn after them)
    nav = NavigationEnv(n_agents=6, n_obstacles=2, world_size=a.world_size)
    a.reset(seed=11)
    nav.reset(seed=11)
    assert np.array_equal(a.pos, nav.pos) and np.array_equal(a.goals, nav.goals)
    assert np.array_equal(a.obstacles, nav.obstacles)


# ---- the task needs the hidden information: scripted references ---------------------------------


def _scripted(policy: str, n: int, episodes: int = 40) -> tuple[float, float]:
    """Mean per-agent return and final success of a scripted policy on the batched simulator."""
    sim = HiddenGoalSim(num_envs=episodes, n_agents=n)
    sim.reset_envs(list(range(episodes)), [np.random.default_rng(k) for k in range(episodes)])
    total = torch.zeros(episodes, n, dtype=torch.float64)
    for _ in range(sim.max_cycles):
        obs = sim.observations().double().numpy()
        slots = obs[..., OWN : OWN + 3 * K].reshape(episodes, n, K, 3)
        if policy == "centre":  # from the observation alone
            action = steer(obs[..., 2:4], obs[..., 0:2], np.zeros((episodes, n, 2)), slots, keep_apart=0.4)
        else:  # the oracle: the true own goal
            action = steer(obs[..., 2:4], obs[..., 0:2], sim.goals.numpy(), slots)
        reward, _, _ = sim.step(torch.as_tensor(action))
        total += reward
    return float(total.mean()), float(sim.success().mean())


def test_without_the_hidden_goal_nobody_succeeds_and_with_it_everyone_does():
    no_comm, oracle = _scripted("centre", 5), _scripted("oracle", 5)
    assert no_comm[1] < 0.05 and oracle[1] > 0.9
    assert oracle[0] > no_comm[0] + 5.0


# ---- through the registry -----------------------------------------------------------------------


def test_registered_scenario_through_vector_env():
    sc = scenarios.make("comm/hidden_goal", n_agents=6)
    assert sc.n_agents == 6 and sc.spec.has_positions and sc.spec.has_batched
    assert sc.spec.family == "comm" and sc.spec.kind == "cooperative" and sc.episode_length == 50
    assert set(sc.spec.overrides) >= {"n_agents", "max_neighbours", "sensing_radius", "shared_reward"}
    venv = VectorEnv(sc, num_envs=3, seed=0)
    try:
        out = venv.reset()
        assert out.obs.shape == (3, 6, OWN + 6 * K) and out.state.shape == (3, 8 * 6)
        assert torch.allclose(out.obs[..., 2:4], out.positions)
    finally:
        venv.close()


@pytest.mark.parametrize("backend", ["pettingzoo", "batched"])
def test_trains_with_message_passing_through_the_registry(tmp_path, backend):
    run = marl.train(scenario="comm/hidden_goal", n_agents=3, total_steps=200, num_envs=2, eval_episodes=1,
                     progress=False, backend=backend, out=str(tmp_path / "run"),
                     **{"algo.rollout_len": 50, "algo.epochs": 1, "comm.graph": "complete"})
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 200 and summary["final_eval"]["episodes"] == 1


# ---- the batched simulator -----------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {},
    {"n_agents": 2},
    {"n_agents": 12, "n_obstacles": 4, "sensing_radius": 0.7, "max_neighbours": 3},
    {"n_agents": 3, "world_size": 0.6, "terminate_on_success": True, "shared_reward": True},
    {"n_agents": 4, "max_neighbours": 0},
], ids=["default", "two-agents", "crowd-obstacles", "tiny-world-terminate-shared", "no-neighbours"])
def test_batched_hidden_goal_matches_the_pettingzoo_env(options):
    assert_backends_agree(scenarios.make("comm/hidden_goal", **{**options, "max_cycles": 12}), steps=30)


def test_batched_success_snapshot_and_resume():
    env, sim = HiddenGoalEnv(n_agents=5), HiddenGoalSim(num_envs=2, n_agents=5)
    env.reset(seed=3)
    sim.reset_envs([0, 1], [np.random.default_rng(3), np.random.default_rng(4)])
    assert sim.held.dtype == torch.long and torch.equal(sim.held[0], torch.as_tensor(env.held))
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        actions = torch.randint(0, 5, (2, 5), generator=gen)
        _, _, _, _, infos = env.step({a: int(actions[0, i]) for i, a in enumerate(env.possible_agents)})
        sim.step(actions)
        assert sim.success()[0].item() == pytest.approx(infos["agent_0"]["success"])
    saved = sim.snapshot()
    assert set(saved) == {"pos", "vel", "goals", "obstacles", "held", "tags", "t"}
    actions = torch.randint(0, 5, (2, 5), generator=gen)
    first = (sim.step(actions)[0], sim.observations(), sim.state())
    sim.restore(saved)
    again = (sim.step(actions)[0], sim.observations(), sim.state())
    assert all(torch.equal(x, y) for x, y in zip(first, again))


def test_render_returns_a_uint8_frame():
    env = HiddenGoalEnv(n_agents=4, render_mode="rgb_array", render_size=96)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (96, 96, 3)
    env.close()
