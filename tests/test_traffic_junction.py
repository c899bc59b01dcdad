"""``comm/traffic_junction``: PettingZoo's API, seed and max-cycles tests; the road layouts; the rules
(moves, collisions, time penalty, leaving, spawning, vision) on hand-placed cars; seeding; training
through the registry; the batched simulator against the PettingZoo env, step for step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test
from test_batched_mpe import assert_backends_agree

import scenarios
from envs import traffic_junction
from envs.batched.traffic_junction import TrafficJunctionSim
from envs.batched.traffic_junction import parallel_env as batched_parallel_env
from envs.traffic_junction import DIFFICULTIES, HEADINGS, OWN_OBS, TURNS, TrafficJunctionEnv, layout_of

NAME = "comm/traffic_junction"


def _route(env, entry: int, turn: str, which: int = 0) -> int:
    """Id of the ``which``-th route of ``entry`` with that turn."""
    ids = [int(r) for r in env.layout.entry_routes[entry] if env.layout.routes[r].turn == TURNS.index(turn)]
    return ids[which]


def _cell(env, route: int, progress: int) -> tuple[int, int]:
    return tuple(int(c) for c in env.layout.routes[route].cells[progress])


def _step(env, *actions):
    obs, rew, terms, truncs, infos = env.step({a: act for a, act in zip(env.possible_agents, actions)})
    return obs, np.array([rew[a] for a in env.possible_agents]), infos


# ---- PettingZoo's own tests ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {}, {"difficulty": "easy", "vision": 1}, {"difficulty": "hard", "vision": 1}, {"n_agents": 1, "add_rate": 1.0},
    {"difficulty": "easy", "max_cycles": 3, "add_rate": 0.0},
], ids=["medium", "easy-vision", "hard-vision", "one-slot-full-rate", "no-cars"])
def test_parallel_api_test(kwargs):
    parallel_api_test(TrafficJunctionEnv(**kwargs), num_cycles=100)


@pytest.mark.parametrize("kwargs", [{}, {"difficulty": "hard", "vision": 2, "add_rate": 0.3}])
def test_parallel_seed_test(kwargs):
    parallel_seed_test(lambda: TrafficJunctionEnv(**kwargs), num_cycles=100)


def test_pettingzoo_max_cycles_test():
    max_cycles_test(traffic_junction)
    aec = traffic_junction.raw_env(difficulty="easy", max_cycles=3)
    aec.reset(seed=0)
    assert aec.possible_agents == [f"agent_{i}" for i in range(5)]


def test_the_batched_parallel_env_passes_the_api_test():
    parallel_api_test(batched_parallel_env(difficulty="easy", vision=1), num_cycles=50)


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_everyone_stays_until_all_are_truncated_at_max_cycles(difficulty):
    env = TrafficJunctionEnv(difficulty=difficulty)
    env.reset(seed=1)
    for t in range(1, env.max_cycles + 1):
        assert env.agents == env.possible_agents  # empty slots stay in the episode
        _, _, terms, truncs, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert not any(terms.values())
        assert all(truncs.values()) == any(truncs.values()) == (t == env.max_cycles)
    assert env.agents == []


# ---- presets, options, layouts ------------------------------------------------------------------


@pytest.mark.parametrize(("difficulty", "grid", "n", "cycles", "rate", "entries", "routes"), [
    ("easy", 6, 5, 20, 0.3, 2, 2), ("medium", 14, 10, 40, 0.2, 4, 12), ("hard", 18, 20, 80, 0.05, 8, 40)])
def test_presets(difficulty, grid, n, cycles, rate, entries, routes):
    env = TrafficJunctionEnv(difficulty=difficulty)
    assert (env.grid, env.n, env.max_cycles, env.add_rate) == (grid, n, cycles, rate)
    assert len(env.possible_agents) == n
    assert env.layout.n_entries == entries and len(env.layout.routes) == routes
    other = TrafficJunctionEnv(difficulty=difficulty, n_agents=3, max_cycles=7, add_rate=0.5)
    assert (other.n, other.max_cycles, other.add_rate, other.grid) == (3, 7, 0.5, grid)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="difficulty must be one of easy, medium, hard"):
        TrafficJunctionEnv(difficulty="extreme")
    with pytest.raises(ValueError, match="add_rate"):
        TrafficJunctionEnv(add_rate=1.5)
    with pytest.raises(ValueError, match="n_agents and max_cycles"):
        TrafficJunctionEnv(n_agents=0)
    with pytest.raises(ValueError, match="vision"):
        TrafficJunctionEnv(vision=-1)
    with pytest.raises(ValueError, match="actions are 0"):
        env = TrafficJunctionEnv()
        env.reset(seed=0)
        env.step({"agent_0": 2})


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_routes_are_connected_paths_from_an_entry_to_the_edge(difficulty):
    lay = layout_of(difficulty)
    g = lay.grid
    for r in lay.routes:
        c = r.cells
        assert tuple(c[0]) == tuple(lay.entry_cells[r.entry])
        assert np.abs(np.diff(c, axis=0)).sum(axis=1).tolist() == [1] * (len(c) - 1)  # one cell per move
        assert len({tuple(x) for x in c}) == len(c)  # no cell twice
        assert (c >= 0).all() and (c < g).all()
        assert {0, g - 1} & {int(c[0, 0]), int(c[0, 1])} and {0, g - 1} & {int(c[-1, 0]), int(c[-1, 1])}
        # the heading of a cell is the step to the next one; the last cell keeps the last step
        assert (HEADINGS[r.headings[:-1]] == np.diff(c, axis=0)).all() and r.headings[-1] == r.headings[-2]
        turns = int((np.diff(r.headings) != 0).sum())
        assert turns == (0 if TURNS[r.turn] == "straight" else 1)
    turns_per_entry = [sorted(TURNS[lay.routes[i].turn] for i in ids) for ids in lay.entry_routes]
    expected = {"easy": ["straight"], "medium": ["left", "right", "straight"],
                "hard": ["left", "left", "right", "right", "straight"]}[difficulty]
    assert turns_per_entry == [expected] * lay.n_entries


def test_easy_has_two_one_way_roads_and_medium_drives_on_the_right():
    easy = layout_of("easy")
    assert [tuple(r.cells[0]) + tuple(r.cells[-1]) for r in easy.routes] == [(0, 3, 5, 3), (3, 0, 3, 5)]
    env = TrafficJunctionEnv(difficulty="medium")
    right, left = _route(env, 0, "right"), _route(env, 0, "left")
    # entering on the left edge (row 7, moving +x): a right turn goes down (+y) at column 6, the
    # shorter way; a left turn crosses to column 7 and goes up (-y)
    assert _cell(env, right, -1) == (6, 13) and _cell(env, left, -1) == (7, 0)
    assert len(env.layout.routes[right].cells) < len(env.layout.routes[left].cells)
    junction_cells = {(x, y) for x in (6, 7) for y in (6, 7)}
    lanes = {tuple(c) for r in env.layout.routes for c in r.cells}
    assert junction_cells <= lanes and len(lanes) == 4 * 14 - 4
    hard = layout_of("hard")
    assert len({tuple(c) for r in hard.routes for c in r.cells}) == 8 * 18 - 16  # 8 lanes, 16 crossings


def test_observation_size_does_not_depend_on_difficulty_or_number_of_cars():
    for vision, size in ((0, OWN_OBS), (1, OWN_OBS + 9), (2, OWN_OBS + 25)):
        spaces_seen = set()
        for difficulty in DIFFICULTIES:
            for n in (1, 4, None):
                env = TrafficJunctionEnv(difficulty=difficulty, n_agents=n, vision=vision)
                obs, _ = env.reset(seed=0)
                assert {o.shape for o in obs.values()} == {(size,)}
                assert all(o.dtype == np.float32 and env.observation_space(a).contains(o) for a, o in obs.items())
                spaces_seen.add(repr(env.observation_space("agent_0")))
                assert env.state().shape == (env.n * size,)
        assert len(spaces_seen) == 1  # the same space everywhere: one policy plays them all


# ---- rules on hand-placed cars ------------------------------------------------------------------


def _junction_pair(vision=0):
    """Medium: car 0 one cell left of the junction (row 7, moving +x), car 1 one cell above it
    (column 6, moving +y); both reach cell (6, 7) with gas."""
    env = TrafficJunctionEnv(difficulty="medium", n_agents=2, vision=vision)
    env.reset(seed=0)
    east, south = _route(env, 0, "straight"), _route(env, 1, "straight")
    env.set_state(route=[east, south], progress=[5, 6])
    assert _cell(env, east, 6) == _cell(env, south, 7) == (6, 7)
    return env


def test_two_cars_entering_one_cell_collide_and_the_episode_is_no_longer_a_success():
    env = _junction_pair()
    _, rew, infos = _step(env, 1, 1)
    assert rew == pytest.approx([-10.01, -10.01])  # time penalty (tau = 1) and the crash
    assert [infos[a]["collided"] for a in env.possible_agents] == [True, True]
    assert infos["agent_0"]["success"] == infos["agent_1"]["success"] == 0.0
    _, rew, infos = _step(env, 1, 1)  # they part: no new crash, but the episode stays failed
    assert rew == pytest.approx([-0.02, -0.02])
    assert not infos["agent_0"]["collided"] and infos["agent_0"]["success"] == 0.0
    assert env.agent_positions().tolist() == [[7, 7], [6, 8]]


def test_braking_lets_the_other_car_through():
    env = _junction_pair()
    _, rew, infos = _step(env, 1, 0)
    assert rew == pytest.approx([-0.01, -0.01])
    assert infos["agent_0"]["success"] == 1.0 and env.success() == 1.0
    assert env.agent_positions().tolist() == [[6, 7], [6, 6]]
    _, rew, infos = _step(env, 1, 1)
    assert rew == pytest.approx([-0.02, -0.02]) and infos["agent_1"]["success"] == 1.0


def test_a_car_moving_into_a_braking_car_collides_with_it():
    env = TrafficJunctionEnv(difficulty="easy", n_agents=3)
    env.reset(seed=0)
    env.set_state(route=[0, 0, 1], progress=[2, 1, 0], tau=[4, 2, 0])
    _, rew, infos = _step(env, 0, 1, 1)
    assert rew == pytest.approx([-0.05 - 10, -0.03 - 10, -0.01])
    assert [infos[a]["collided"] for a in env.possible_agents] == [True, True, False]
    assert [infos[a]["tau"] for a in env.possible_agents] == [5, 3, 1]


def _index_of(env, route: int, cell) -> int:
    return int(np.flatnonzero((env.layout.routes[route].cells == cell).all(axis=1))[0])


def test_three_cars_in_one_cell_each_pay_the_collision_once():
    env = TrafficJunctionEnv(difficulty="medium", n_agents=3)
    env.reset(seed=0)
    south, west = _route(env, 1, "straight"), _route(env, 2, "straight")
    # car 0 brakes on junction cell (6, 6); car 1 (-x lane) and car 2 (behind car 0) drive into it
    at_south, at_west = _index_of(env, south, (6, 6)), _index_of(env, west, (6, 6))
    env.set_state(route=[south, west, south], progress=[at_south, at_west - 1, at_south - 1])
    _, rew, infos = _step(env, 0, 1, 1)
    assert rew == pytest.approx([-10.01] * 3)
    assert env.agent_positions().tolist() == [[6, 6]] * 3


def test_time_penalty_grows_with_the_time_on_the_road():
    env = TrafficJunctionEnv(difficulty="easy", n_agents=2, max_cycles=10)
    env.reset(seed=0)
    env.set_state(route=[0, 0], progress=[0, 0], active=[True, False])
    for t in range(1, 5):
        obs, rew, _ = _step(env, t % 2, 1)  # the empty slot's gas does nothing
        assert rew == pytest.approx([-0.01 * t, 0.0])
        assert obs["agent_0"][12] == pytest.approx(t / 10) and obs["agent_0"][1] == t % 2
        assert not obs["agent_1"].any() and not env.active_agents()[1]
    assert env.progress[0] == 2  # gas on steps 1 and 3


def test_a_car_leaves_after_its_last_cell_and_its_slot_is_reused_from_the_next_step():
    env = TrafficJunctionEnv(difficulty="easy", n_agents=3, max_cycles=10)
    env.reset(seed=0)
    spawn_u = np.ones((10, 2))
    spawn_u[1:3, 0] = 0.0  # a car enters at the left after steps 1 and 2
    env.set_state(route=[0, 0, 0], progress=[5, 0, 3], tau=[7, 0, 1], active=[True, False, True], spawn_u=spawn_u)
    obs, rew, infos = _step(env, 1, 1, 0)
    assert rew == pytest.approx([-0.08, 0.0, -0.02])  # the leaving car still pays for its last step
    # slot 0 was emptied in this step, so the new car takes slot 1
    assert env.active_agents().tolist() == [False, True, True] and not obs["agent_0"].any()
    assert [infos[a]["active"] for a in env.possible_agents] == [False, True, True]
    assert env.agent_positions().tolist() == [[-100, -100], [0, 3], [3, 3]]
    assert env.agent_positions()[0].tolist() != env.agent_positions()[1].tolist()
    assert obs["agent_1"][:4] == pytest.approx([1, 0, 0, 0.6])  # fresh car: active, no action yet, at (0, 3)
    _, rew, infos = _step(env, 1, 1, 1)
    assert env.active_agents().tolist() == [True, True, True]  # slot 0 is free again
    assert rew == pytest.approx([0.0, -0.01, -0.03]) and infos["agent_0"]["success"] == 1.0
    assert env.agent_positions().tolist() == [[0, 3], [1, 3], [4, 3]]


def test_a_car_entering_onto_a_car_on_the_entry_is_a_collision():
    """Cars enter whatever stands on the entry cell, so parking there does not stop the traffic."""
    env = TrafficJunctionEnv(difficulty="easy", n_agents=2, max_cycles=10)
    env.reset(seed=0)
    spawn_u = np.ones((10, 2))
    spawn_u[1, 0] = 0.0
    env.set_state(route=[0, 0], progress=[0, 0], tau=[2, 0], active=[True, False], spawn_u=spawn_u)
    _, rew, infos = _step(env, 0, 0)
    # the parked car pays; the new car has not acted yet, but the episode has had its crash
    assert rew == pytest.approx([-10.03, 0.0])
    assert [infos[a]["collided"] for a in env.possible_agents] == [True, True]
    assert infos["agent_1"]["success"] == 0.0 and env.active_agents().all()
    _, rew, infos = _step(env, 1, 1)  # moving on together, they crash again
    assert rew == pytest.approx([-10.04, -10.01]) and env.agent_positions().tolist() == [[1, 3], [1, 3]]


def test_new_cars_take_the_lowest_free_slots_in_entry_order_with_their_drawn_routes():
    env = TrafficJunctionEnv(difficulty="medium", n_agents=4, max_cycles=5)
    env.reset(seed=0)
    spawn_u = np.ones((5, 4))
    spawn_u[1] = [0.1, 0.5, 0.0, 0.19]  # entries 0, 2 and 3 are below add_rate 0.2 after step 1
    spawn_route = np.zeros((5, 4), dtype=np.int64)
    spawn_route[1] = [2, 0, 1, 0]
    east = _route(env, 0, "straight")
    env.set_state(route=[0, east, 0, 0], progress=[0, 3, 0, 0], active=[False, True, False, False],
                  spawn_u=spawn_u, spawn_route=spawn_route)
    _step(env, 1, 1, 1, 1)
    lay = env.layout
    assert env.active_agents().tolist() == [True, True, True, True]
    assert env.route.tolist() == [lay.entry_routes[0, 2], east, lay.entry_routes[2, 1], lay.entry_routes[3, 0]]
    assert env.progress.tolist() == [0, 4, 0, 0] and env.tau.tolist() == [0, 1, 0, 0]
    # with one slot free only the first spawning entry gets a car
    env.set_state(route=[east, east, east, 0], progress=[1, 2, 3, 0], active=[True, True, True, False],
                  spawn_u=spawn_u, spawn_route=spawn_route)
    _step(env, 1, 1, 1, 1)
    assert env.route[3] == lay.entry_routes[0, 2]


@pytest.mark.parametrize(("add_rate", "cars"), [(0.0, 0), (1.0, 4)])
def test_add_rate_bounds(add_rate, cars):
    env = TrafficJunctionEnv(difficulty="medium", add_rate=add_rate)
    env.reset(seed=3)
    assert env.active_agents().sum() == cars  # one car per entry at the start with rate 1
    assert env.active_agents()[:cars].all()
    for _ in range(env.max_cycles):
        _, rew, infos = _step(env, *[1] * env.n)
    if add_rate == 0.0:
        assert not env.active_agents().any() and rew.tolist() == [0.0] * env.n and infos["agent_0"]["success"] == 1.0


def test_observation_of_a_turning_car():
    env = TrafficJunctionEnv(difficulty="medium", n_agents=2, max_cycles=40)
    env.reset(seed=0)
    left = _route(env, 0, "left")
    obs = env.set_state(route=[left, 0], progress=[7, 0], tau=[8, 0], last_action=[1, 0], active=[True, False])
    o = obs["agent_0"]
    assert _cell(env, left, 7) == (7, 7)
    assert o[0] == 1 and o[1] == 1
    assert o[2:4] == pytest.approx([7 / 13, 7 / 13])
    assert o[4:8].tolist() == [0, 0, 0, 1]  # it turns here: its next move is -y
    assert o[8:11].tolist() == [0, 1, 0]  # a left turn
    assert o[11] == pytest.approx(7 / 14) and o[12] == pytest.approx(8 / 40)
    assert not obs["agent_1"].any()
    assert np.array_equal(env.state(), np.concatenate([obs["agent_0"], obs["agent_1"]]))


def test_vision_counts_other_cars_in_the_window():
    env = TrafficJunctionEnv(difficulty="medium", n_agents=4, vision=1)
    env.reset(seed=0)
    east, south, west = _route(env, 0, "straight"), _route(env, 1, "straight"), _route(env, 2, "straight")
    # car 0 at (6, 7); car 1 above it at (6, 6); car 2 at (7, 7) on its right; car 3 at the top-left
    # corner of its window, (5, 6), on the -x lane
    obs = env.set_state(route=[east, south, east, west], progress=[6, 6, 7, 8])
    assert [_cell(env, r, p) for r, p in zip([east, south, east, west], [6, 6, 7, 8])] == \
        [(6, 7), (6, 6), (7, 7), (5, 6)]
    assert obs["agent_0"][OWN_OBS:].reshape(3, 3).tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert obs["agent_3"][OWN_OBS:].reshape(3, 3).tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 1]]
    # a crash: two cars in one cell see each other in the centre
    env.set_state(route=[east, east, south, west], progress=[0, 0, 0, 0])
    o = env._observations()  # noqa: SLF001
    assert o[0, OWN_OBS:].reshape(3, 3).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]  # x = -1 is off the grid


def test_vision_zero_sees_only_itself():
    env = _junction_pair(vision=0)
    obs = env._observations()  # noqa: SLF001
    assert obs.shape == (2, OWN_OBS)


def test_render_draws_the_grid():
    env = TrafficJunctionEnv(difficulty="easy", render_mode="rgb_array", cell_pixels=10)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (60, 60, 3) and frame.dtype == np.uint8
    assert env.to_pixels([[0, 0]]).tolist() == [[5.0, 5.0]]
    assert TrafficJunctionEnv().render() is None


# ---- seeding ------------------------------------------------------------------------------------


def _trajectory(env, seed):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [np.stack(list(obs.values()))]
    while env.agents:
        obs, rew, *_ = env.step({a: int(rng.integers(2)) for a in env.agents})
        out.append(np.stack(list(obs.values())))
        out.append(np.array(list(rew.values()), dtype=np.float32)[:, None].repeat(out[-1].shape[1], 1))
    return np.stack(out)


def test_same_seed_same_episode_and_unseeded_resets_continue_the_generator():
    a, b = TrafficJunctionEnv(difficulty="hard", add_rate=0.2), TrafficJunctionEnv(difficulty="hard", add_rate=0.2)
    assert np.array_equal(_trajectory(a, 7), _trajectory(b, 7))
    assert not np.array_equal(_trajectory(a, 7), _trajectory(a, 8))
    a.reset(seed=5)
    b.reset(seed=5)
    a.reset()
    b.reset()
    assert np.array_equal(a.spawn_u, b.spawn_u) and np.array_equal(a.spawn_route, b.spawn_route)
    assert a.spawn_u.shape == (80, 8) and a.spawn_route.max() <= 4


# ---- the registry, the vector env and training --------------------------------------------------


def test_registered_spec():
    spec = scenarios.spec(NAME)
    assert spec.family == "comm" and spec.kind == "cooperative" and spec.has_batched and spec.has_positions
    assert spec.overrides == {"difficulty": "medium", "n_agents": None, "max_cycles": None, "add_rate": None,
                              "vision": 0}
    sc = scenarios.make(NAME, difficulty="easy", vision=1)
    assert sc.n_agents == 5 and sc.observation_spaces["agent_0"].shape == (OWN_OBS + 9,)
    env = sc.make_env()
    env.reset(seed=0)
    assert spec.active(env.unwrapped).tolist() == env.active_agents().tolist()
    assert spec.positions(env.unwrapped).shape == (5, 2)
    assert scenarios.make(NAME, n_agents=3).n_agents == 3


@pytest.mark.parametrize("backend", ["batched", "pettingzoo"])
def test_trains_through_the_registry(tmp_path, backend):
    from marl import train

    run = train(scenario=NAME, difficulty="easy", backend=backend, total_steps=120, num_envs=2, eval_episodes=1,
                progress=False, out=str(tmp_path / backend), **{"algo.rollout_len": 20, "algo.epochs": 1})
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 120 and summary["final_eval"]["episodes"] == 1


def test_trains_with_a_communication_graph(tmp_path):
    from marl import train

    run = train(scenario=NAME, difficulty="medium", vision=1, total_steps=80, num_envs=2, eval_episodes=1,
                progress=False, out=str(tmp_path / "comm"),
                **{"algo.rollout_len": 40, "algo.epochs": 1, "comm.graph": "knn", "comm.k": 2})
    assert json.loads((run / "summary.json").read_text())["env_steps"] >= 80


# ---- the batched simulator ----------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {},
    {"difficulty": "easy", "vision": 1},
    {"difficulty": "hard", "vision": 1, "add_rate": 0.3},
    {"difficulty": "medium", "n_agents": 3, "add_rate": 0.6, "max_cycles": 9, "vision": 2},
    {"difficulty": "easy", "n_agents": 1, "add_rate": 1.0},
], ids=["medium", "easy-vision", "hard-busy", "crowded-short", "one-slot"])
def test_batched_vector_env_matches_the_pettingzoo_vector_env(options):
    """Same seed, same actions: every EnvOutput field (alive and episode_success included) agrees
    over several auto-reset episodes."""
    # 100 steps: two or more episodes, except on hard
    _, batched = assert_backends_agree(scenarios.make(NAME, **options), steps=100)
    assert type(batched).__name__ == "BatchedVectorEnv"


def _load(sim: TrafficJunctionSim, k: int, env: TrafficJunctionEnv) -> None:
    """Env ``k`` of ``sim`` takes the PettingZoo env's current state."""
    sim.route[k] = torch.as_tensor(env.route)
    sim.progress[k] = torch.as_tensor(env.progress)
    sim.on_road[k] = torch.as_tensor(env.active)
    sim.tau[k] = torch.as_tensor(env.tau)
    sim.last_action[k] = torch.as_tensor(env.last_action)
    sim.crashed[k] = env.crashed
    sim.spawn_u[k] = torch.as_tensor(env.spawn_u)
    sim.spawn_route[k] = torch.as_tensor(env.spawn_route)
    sim.t[k] = env.t


@pytest.mark.parametrize("options", [{"difficulty": "medium", "vision": 1, "add_rate": 0.4},
                                     {"difficulty": "hard", "add_rate": 0.5, "n_agents": 12}])
def test_batched_sim_follows_pettingzoo_envs_through_whole_episodes(options):
    """Envs at different steps (one hand-placed mid-episode) step together; every step agrees on
    observations, rewards, state, positions, active slots, collisions, success and truncation."""
    envs = [TrafficJunctionEnv(**options) for _ in range(3)]
    sim = TrafficJunctionSim(num_envs=3, **options)
    for k, env in enumerate(envs):
        env.reset(seed=k)
    east = _route(envs[2], 0, "straight")
    envs[2].set_state(route=[east] * envs[2].n, progress=np.arange(envs[2].n) % 5, t=4,
                      spawn_u=np.random.default_rng(0).random((envs[2].max_cycles, envs[2].layout.n_entries)))
    for k, env in enumerate(envs):
        _load(sim, k, env)
    rng = np.random.default_rng(1)

    def check(where):
        np.testing.assert_array_equal(sim.observations().numpy(), np.stack([e._observations() for e in envs]),
                                      err_msg=where)
        np.testing.assert_array_equal(sim.state().numpy(), np.stack([e.state() for e in envs]), err_msg=where)
        np.testing.assert_array_equal(sim.positions().numpy(), np.stack([e.agent_positions() for e in envs]))
        np.testing.assert_array_equal(sim.active().numpy(), np.stack([e.active_agents() for e in envs]))
        np.testing.assert_array_equal(sim.success().numpy(), [e.success() for e in envs])

    check("start")
    for step in range(envs[0].max_cycles - 4):
        actions = rng.integers(0, 2, size=(3, sim.n))
        results = [e.step(dict(zip(e.possible_agents, a.tolist()))) for e, a in zip(envs, actions)]
        reward, terminated, truncated = sim.step(torch.as_tensor(actions))
        where = f"step {step + 1}"
        check(where)
        for k, (env, r) in enumerate(zip(envs, results)):
            np.testing.assert_allclose(reward[k].numpy(), [r[1][a] for a in env.possible_agents], atol=1e-12,
                                       err_msg=where)
            assert bool(truncated[k]) == all(r[3].values()) and not bool(terminated[k])
            assert sim.collided[k].tolist() == [r[4][a]["collided"] for a in env.possible_agents]
            assert float(sim.success()[k]) == np.mean([r[4][a]["success"] for a in env.possible_agents])
    assert bool(truncated[2]) and not bool(truncated[0])  # the mid-episode env ended first


def test_batched_snapshot_resumes_exactly():
    sim = TrafficJunctionSim(num_envs=4, difficulty="hard", add_rate=0.3, vision=1)
    sim.reset_envs(range(4), [np.random.default_rng(s) for s in range(4)])
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        sim.step(torch.randint(0, 2, (4, sim.n), generator=gen))
    snap = sim.snapshot()
    actions = [torch.randint(0, 2, (4, sim.n), generator=gen) for _ in range(20)]
    first = [(sim.step(a)[0].clone(), sim.observations().clone()) for a in actions]
    sim.restore(snap)
    again = [(sim.step(a)[0].clone(), sim.observations().clone()) for a in actions]
    for (r1, o1), (r2, o2) in zip(first, again):
        assert torch.equal(r1, r2) and torch.equal(o1, o2)
    assert set(snap) == {*TrafficJunctionSim.state_fields, "t"}
