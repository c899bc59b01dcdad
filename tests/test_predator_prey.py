"""``comm/predator_prey``: PettingZoo's API, seed and max-cycles tests; presets; moves, capture, rewards,
vision and success on hand-placed states; seeding; training through the registry; the batched
simulator against the PettingZoo env step for step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test
from test_batched_mpe import assert_backends_agree

import marl
import scenarios
from envs import predator_prey
from envs.batched import predator_prey as batched_predator_prey
from envs.predator_prey import PredatorPreyEnv

STAY, UP, RIGHT, DOWN, LEFT = range(5)
OWN = 3  # x, y, on-prey


def _window(obs: np.ndarray, window: int = 1) -> np.ndarray:
    """[2w+1, 2w+1, 3] window of one observation, indexed [dy + w, dx + w, feature]."""
    side = 2 * window + 1
    return obs[OWN:].reshape(side, side, 3)


def _step(env, actions):
    return env.step({a: act for a, act in zip(env.possible_agents, actions)})


# ---- PettingZoo's own tests ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {}, {"difficulty": "easy"}, {"difficulty": "hard"}, {"n_agents": 1, "grid_size": 2},
    {"difficulty": "easy", "terminate_on_success": True, "grid_size": 2}, {"vision": 2, "window": 3},
], ids=["medium", "easy", "hard", "one-agent", "terminate", "vision2"])
def test_parallel_api_test(kwargs):
    parallel_api_test(PredatorPreyEnv(**kwargs), num_cycles=100)


@pytest.mark.parametrize("kwargs", [{}, {"difficulty": "hard"}])
def test_parallel_seed_test(kwargs):
    parallel_seed_test(lambda: PredatorPreyEnv(**kwargs), num_cycles=100)


def test_pettingzoo_max_cycles_test():
    max_cycles_test(predator_prey)


def test_batched_module_as_a_parallel_env_passes_the_api_test():
    parallel_api_test(batched_predator_prey.parallel_env(difficulty="easy"), num_cycles=50)


# ---- presets and options -----------------------------------------------------------------------


@pytest.mark.parametrize(("difficulty", "grid", "n", "vision", "cycles"), [
    ("easy", 5, 3, 0, 20), ("medium", 10, 5, 1, 40), ("hard", 20, 10, 1, 80)])
def test_presets(difficulty, grid, n, vision, cycles):
    env = PredatorPreyEnv(difficulty=difficulty)
    assert (env.grid_size, env.n, env.vision, env.max_cycles, env.window) == (grid, n, vision, cycles, 1)
    assert len(env.possible_agents) == n and env.state().shape == (3 * n + 2,)


def test_explicit_options_replace_the_preset_and_bad_ones_are_refused():
    env = PredatorPreyEnv(difficulty="hard", n_agents=4, grid_size=7, vision=0, max_cycles=9)
    assert (env.grid_size, env.n, env.vision, env.max_cycles, env.window) == (7, 4, 0, 9, 1)
    assert PredatorPreyEnv(vision=3).window == 3
    for bad in ({"difficulty": "insane"}, {"grid_size": 1}, {"n_agents": 0}, {"vision": -1},
                {"vision": 2, "window": 1}, {"max_cycles": 0}):
        with pytest.raises(ValueError):
            PredatorPreyEnv(**bad)


def test_observation_size_is_the_same_for_every_difficulty_and_n():
    shapes = set()
    for kwargs in ({"difficulty": "easy"}, {"difficulty": "medium"}, {"difficulty": "hard"},
                   {"difficulty": "hard", "n_agents": 17, "grid_size": 33}, {"n_agents": 1}):
        env = PredatorPreyEnv(**kwargs)
        obs, _ = env.reset(seed=0)
        assert all(env.observation_space(a).contains(o) for a, o in obs.items())
        shapes |= {o.shape for o in obs.values()}
    assert shapes == {(OWN + 3 * 9,)}
    assert PredatorPreyEnv(window=0, vision=0).observation_space("predator_0").shape == (OWN + 3,)
    assert PredatorPreyEnv(vision=2).observation_space("predator_0").shape == (OWN + 3 * 25,)


# ---- reset ------------------------------------------------------------------------------------------


def test_reset_places_everyone_on_the_grid_and_nobody_on_the_prey():
    env = PredatorPreyEnv(difficulty="easy")
    shared = 0
    prey_cells = set()
    for seed in range(300):
        _, infos = env.reset(seed=seed)
        assert ((env.pos >= 0) & (env.pos < 5)).all() and ((env.prey >= 0) & (env.prey < 5)).all()
        assert not env.on_prey().any()
        assert all(info["success"] == 0.0 and info["on_prey_fraction"] == 0.0 for info in infos.values())
        shared += len({tuple(p) for p in env.pos}) < env.n
        prey_cells.add(tuple(env.prey))
    assert shared > 0  # predators may start on one cell
    assert len(prey_cells) == 25  # the prey can start anywhere


def test_same_seed_same_episode_and_unseeded_resets_continue_the_generator():
    a, b = PredatorPreyEnv(), PredatorPreyEnv()
    rng = np.random.default_rng(0)
    actions = rng.integers(5, size=(40, 5))
    for env in (a, b):
        env.reset(seed=11)
    for row in actions:
        oa, ra, *_ = _step(a, row)
        ob, rb, *_ = _step(b, row)
        assert all(np.array_equal(oa[k], ob[k]) for k in oa) and ra == rb
    a.reset(seed=3)
    b.reset(seed=3)
    a.reset()
    b.reset()
    assert np.array_equal(a.state(), b.state())
    first = a.state()
    a.reset()
    assert not np.array_equal(a.state(), first)


# ---- moves and capture ------------------------------------------------------------------------------


def test_moves_and_clipping_at_the_edges():
    env = PredatorPreyEnv(n_agents=5, grid_size=4)
    env.reset(seed=0)
    env.set_state([[1, 1]] * 5, prey=[3, 3])
    _step(env, [STAY, UP, RIGHT, DOWN, LEFT])
    assert env.pos.tolist() == [[1, 1], [1, 2], [2, 1], [1, 0], [0, 1]]
    env.set_state([[0, 0], [0, 3], [3, 0], [0, 0], [2, 2]], prey=[3, 3])
    _step(env, [LEFT, UP, RIGHT, DOWN, STAY])
    assert env.pos.tolist() == [[0, 0], [0, 3], [3, 0], [0, 0], [2, 2]]


def test_a_predator_on_the_prey_stays_there():
    env = PredatorPreyEnv(n_agents=2, grid_size=5)
    env.reset(seed=0)
    env.set_state([[2, 1], [0, 0]], prey=[2, 2])
    _step(env, [UP, STAY])  # predator 0 reaches the prey
    assert env.pos[0].tolist() == [2, 2] and env.on_prey().tolist() == [True, False]
    for action in (UP, RIGHT, DOWN, LEFT):
        _step(env, [action, STAY])
        assert env.pos[0].tolist() == [2, 2]


# ---- rewards, success, episode ------------------------------------------------------------------------


def test_rewards_follow_ic3net_cooperative_mode():
    env = PredatorPreyEnv(n_agents=3, grid_size=5)
    env.reset(seed=0)
    env.set_state([[0, 0], [1, 0], [4, 4]], prey=[0, 0])  # predator 0 starts on the prey
    _, rew, _, _, infos = _step(env, [STAY, STAY, STAY])
    assert rew == pytest.approx({"predator_0": 0.05, "predator_1": -0.05, "predator_2": -0.05})
    assert infos["predator_0"]["on_prey"] and not infos["predator_1"]["on_prey"]
    assert infos["predator_1"]["on_prey_fraction"] == pytest.approx(1 / 3) and infos["predator_1"]["success"] == 0.0
    _, rew, _, _, infos = _step(env, [STAY, LEFT, STAY])  # two on the prey: 0.05 * 2 each
    assert rew == pytest.approx({"predator_0": 0.1, "predator_1": 0.1, "predator_2": -0.05})
    assert infos["predator_2"]["on_prey_fraction"] == pytest.approx(2 / 3) and infos["predator_2"]["success"] == 0.0
    env.set_state([[0, 0], [0, 0], [0, 1]], prey=[0, 0])
    _, rew, terms, truncs, infos = _step(env, [RIGHT, UP, DOWN])  # everyone on it: 0.05 * 3 each
    assert rew == pytest.approx(dict.fromkeys(env.possible_agents, 0.15))
    assert all(i["success"] == 1.0 and i["on_prey_fraction"] == 1.0 for i in infos.values())
    assert not any(terms.values()) and not any(truncs.values())  # no early end by default
    assert env.success_rate() == 1.0


@pytest.mark.parametrize("max_cycles", [1, 6])
def test_everyone_is_truncated_at_max_cycles_and_success_holds_once_reached(max_cycles):
    env = PredatorPreyEnv(n_agents=2, grid_size=3, max_cycles=max_cycles)
    env.reset(seed=0)
    env.set_state([[1, 1], [1, 0]], prey=[1, 1])
    for t in range(1, max_cycles + 1):
        assert env.agents == env.possible_agents
        _, _, terms, truncs, infos = _step(env, [LEFT, UP])
        assert not any(terms.values()) and all(truncs.values()) == any(truncs.values()) == (t == max_cycles)
        assert infos["predator_0"]["success"] == 1.0  # both on the prey from the first step on
    assert env.agents == []


def test_terminate_on_success_ends_the_episode_for_everyone():
    env = PredatorPreyEnv(n_agents=2, grid_size=5, terminate_on_success=True)
    env.reset(seed=0)
    env.set_state([[2, 2], [2, 0]], prey=[2, 2])
    _, _, terms, truncs, infos = _step(env, [STAY, UP])
    assert not any(terms.values()) and env.agents
    _, _, terms, truncs, infos = _step(env, [STAY, UP])
    assert all(terms.values()) and not any(truncs.values()) and env.agents == []
    assert infos["predator_1"]["success"] == 1.0


# ---- vision -----------------------------------------------------------------------------------------


def test_window_shows_prey_other_predators_and_the_edge():
    env = PredatorPreyEnv(n_agents=5, grid_size=10, vision=1)
    env.reset(seed=0)
    obs = env.set_state([[0, 0], [0, 1], [0, 1], [5, 5], [1, 0]], prey=[1, 1])
    o = obs["predator_0"]
    assert o[:OWN].tolist() == [0.0, 0.0, 0.0]
    win = _window(o)
    # rows dy = -1, 0, 1 (below, level, above); columns dx = -1, 0, 1
    assert win[..., 0].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]  # prey up-right
    assert np.allclose(win[..., 1], [[0, 0, 0], [0, 0, 1 / 3], [0, 2 / 3, 0]])  # self not counted
    assert win[..., 2].tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]  # left column and bottom row off the grid
    # predator 3 at (5, 5) sees nothing and is away from the edges
    assert not obs["predator_3"][OWN:].any()
    assert np.allclose(obs["predator_3"][:OWN], [5 / 9, 5 / 9, 0.0])
    # predator 1 shares its cell with predator 2, and predator 0 is below it
    win1 = _window(obs["predator_1"])
    assert np.isclose(win1[1, 1, 1], 1 / 3) and np.isclose(win1[0, 1, 1], 1 / 3) and win1[1, 2, 0] == 1


def test_counts_are_clipped_at_three():
    env = PredatorPreyEnv(n_agents=6, grid_size=5, vision=1)
    env.reset(seed=0)
    obs = env.set_state([[2, 2]] + [[3, 2]] * 5, prey=[0, 0])
    assert _window(obs["predator_0"])[1, 2, 1] == 1.0
    assert _window(obs["predator_1"])[1, 1, 1] == 1.0  # four others on its own cell: clipped
    assert np.isclose(_window(obs["predator_1"])[1, 0, 1], 1 / 3)


def test_vision_zero_sees_only_its_own_cell():
    env = PredatorPreyEnv(difficulty="easy")  # vision 0 in a radius-1 window
    env.reset(seed=0)
    obs = env.set_state([[0, 0], [1, 0], [0, 0]], prey=[0, 1])
    win = _window(obs["predator_0"])
    assert np.isclose(win[1, 1, 1], 1 / 3)  # predator 2 on its cell
    win[1, 1] = 0
    assert not win.any()  # the prey above, predator 1 to the right and the edges are unseen
    obs = env.set_state([[0, 1], [1, 0], [0, 0]], prey=[0, 1])
    assert obs["predator_0"][2] == 1.0 and _window(obs["predator_0"])[1, 1, 0] == 1.0
    exact = PredatorPreyEnv(difficulty="easy", window=0)  # IC3Net's own 1x1 window
    exact.reset(seed=0)
    o = exact.set_state([[0, 1], [0, 1], [0, 0]], prey=[0, 1])["predator_0"]
    assert np.allclose(o, [0.0, 0.25, 1.0, 1.0, 1 / 3, 0.0])


def test_larger_vision_sees_farther():
    env = PredatorPreyEnv(n_agents=2, grid_size=9, vision=2)
    env.reset(seed=0)
    obs = env.set_state([[4, 4], [6, 2]], prey=[2, 6])
    win = _window(obs["predator_0"], window=2)
    assert win[4, 0, 0] == 1.0 and win[0, 4, 1] == pytest.approx(1 / 3) and win.sum() == pytest.approx(4 / 3)
    # a window wider than the vision leaves its outer ring unseen
    env = PredatorPreyEnv(n_agents=2, grid_size=9, vision=1, window=2)
    env.reset(seed=0)
    obs = env.set_state([[0, 4], [2, 4]], prey=[1, 5])
    win = _window(obs["predator_0"], window=2)
    assert win[3, 3, 0] == 1.0 and win[:, 1, 2].tolist() == [0, 1, 1, 1, 0]
    assert win[2, 4, 1] == 0.0  # predator 1 sits two cells away: beyond vision 1


# ---- state and positions ---------------------------------------------------------------------------


def test_state_and_agent_positions():
    env = PredatorPreyEnv(n_agents=3, grid_size=5)
    env.reset(seed=0)
    env.set_state([[0, 4], [2, 2], [4, 1]], prey=[2, 2])
    assert np.allclose(env.state(), [0, 1, 0.5, 0.5, 1, 0.25, 0.5, 0.5, 0, 1, 0])
    assert env.agent_positions().dtype == np.float32
    assert env.agent_positions().tolist() == [[0, 4], [2, 2], [4, 1]]
    assert env.state_space.contains(env.state())


def test_render_draws_the_prey_and_the_predators():
    env = PredatorPreyEnv(difficulty="easy", render_mode="rgb_array")
    env.reset(seed=0)
    env.set_state([[0, 0], [4, 4], [1, 3]], prey=[2, 2])
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (5 * 24, 5 * 24, 3)
    x, y = np.round(env.to_pixels(env.agent_positions())).astype(int).T
    assert all(tuple(frame[r, c]) == (40, 90, 200) for r, c in zip(y, x))
    px, py = np.round(env.to_pixels(env.prey)).astype(int)
    assert tuple(frame[py, px]) == (220, 40, 40)
    assert PredatorPreyEnv().render() is None


# ---- registry, training, batched backend ------------------------------------------------------------


def test_registered_with_every_option():
    spec = scenarios.spec("comm/predator_prey")
    assert spec.family == "comm" and spec.kind == "cooperative" and spec.has_positions and spec.has_batched
    assert spec.overrides == {"difficulty": "medium", "n_agents": None, "grid_size": None, "vision": None,
                              "max_cycles": None, "window": None, "terminate_on_success": False}
    sc = scenarios.make("comm/predator_prey", difficulty="hard", n_agents=6)
    assert sc.n_agents == 6 and sc.agents[0] == "predator_0"


@pytest.mark.parametrize("backend", ["pettingzoo", "batched"])
def test_trains_through_the_registry(tmp_path, backend):
    run = marl.train(scenario="comm/predator_prey", difficulty="easy", backend=backend, total_steps=200,
                     num_envs=2, eval_episodes=1, progress=False, out=str(tmp_path / backend),
                     **{"algo.rollout_len": 50, "algo.epochs": 1})
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 200 and summary["final_eval"]["episodes"] == 1


@pytest.mark.parametrize("options", [
    {"difficulty": "easy"},
    {},
    {"difficulty": "hard", "max_cycles": 15},
    {"difficulty": "easy", "grid_size": 2, "n_agents": 4, "terminate_on_success": True},
    {"n_agents": 7, "grid_size": 6, "vision": 2, "window": 3},
    {"n_agents": 1, "grid_size": 3, "window": 0, "vision": 0},
], ids=["easy", "medium", "hard", "tiny-terminate", "vision2-window3", "one-agent"])
def test_batched_predator_prey_matches_the_pettingzoo_env(options):
    def success_agrees(reference, batched, step):
        raw = reference._group._raw  # noqa: SLF001
        expected = torch.tensor([env.success_rate() for env in raw], dtype=torch.float64)
        assert torch.equal(batched.sim.success(), expected), f"success, step {step}"

    sc = scenarios.make("comm/predator_prey", **{"max_cycles": 12, **options})
    assert_backends_agree(sc, steps=40, each_step=success_agrees)
