"""Episode success (``infos[agent]["success"]`` / ``BatchedSim.success``) and agents in play
(``ScenarioSpec.active`` / ``BatchedSim.active``): through both vector envs, the collector, evaluation
and the trainer's metrics, summary and results table.

``debug/blinking`` is a toy written for these tests: 2 agents; agent 1 is in play only when the step
count t is even; agent i reports success ``((t + i) % 3) / 2``, so the episode's success is a mean
over agents that differ. It has a PettingZoo env and a batched simulator that must agree.
"""

from __future__ import annotations

import csv
import functools
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv
from test_batched_mpe import _assert_outputs_equal, assert_backends_agree

import scenarios
from envs import VectorEnv
from envs.batched import BatchedVectorEnv
from envs.batched.base import BatchedSim
from envs.factory import make_vector_env
from marl.config import build_config
from marl.evaluation import evaluate
from marl.trainer import train
from scenarios import ScenarioSpec, registry

NAME = "debug/blinking"


def _success(t, n: int = 2):
    """Agent i's reported success at step count t."""
    return [((t + i) % 3) / 2 for i in range(n)]


class BlinkingEnv(ParallelEnv):
    metadata = {"name": "blinking_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, max_cycles: int = 5, report_success: bool = True, final_success: bool = True):
        self.possible_agents = ["agent_0", "agent_1"]
        self.max_cycles = max_cycles
        self.report_success = report_success
        self.final_success = final_success  # False: the last step's infos carry no success
        self.agents: list[str] = []
        self.t = 0

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return spaces.Discrete(2)

    def _obs(self):
        return {a: np.array([self.t, i], dtype=np.float32) for i, a in enumerate(self.possible_agents)}

    def _infos(self, last: bool):
        if not self.report_success or (last and not self.final_success):
            return {a: {} for a in self.possible_agents}
        return {a: {"success": s} for a, s in zip(self.possible_agents, _success(self.t))}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._obs(), self._infos(False)

    def step(self, actions):
        self.t += 1
        last = self.t >= self.max_cycles
        rewards = {a: float(i + 1) for i, a in enumerate(self.possible_agents)}
        terms = dict.fromkeys(self.possible_agents, False)
        truncs = dict.fromkeys(self.possible_agents, last)
        out = self._obs(), rewards, terms, truncs, self._infos(last)
        if last:
            self.agents = []
        return out

    def in_play(self) -> np.ndarray:
        return np.array([True, self.t % 2 == 0])

    def positions(self) -> np.ndarray:
        return np.array([[self.t, 0.0], [self.t, 1.0]], dtype=np.float32)


class BlinkingSim(BatchedSim):
    """BlinkingEnv as tensors: the whole state is the step counter ``t`` of the base class."""

    name = NAME

    def __init__(self, num_envs: int, device="cpu", dtype=torch.float64, max_cycles: int = 5, **_):
        super().__init__(num_envs, device, dtype)
        self.agents = ("agent_0", "agent_1")
        ref = BlinkingEnv()
        self.observation_spaces = {a: ref.observation_space(a) for a in self.agents}
        self.action_spaces = {a: ref.action_space(a) for a in self.agents}
        self.max_cycles = max_cycles
        self._finish_spaces()

    def _initial_state(self, rng):
        return {}

    def _advance(self, actions):
        pass

    def _rewards(self):
        return self.tensor([1.0, 2.0]).expand(self.num_envs, 2)

    def observations(self):
        t = self.t.to(torch.float32)[:, None].expand(-1, 2)
        return torch.stack([t, torch.arange(2, dtype=torch.float32).expand_as(t)], dim=-1)

    positions = observations  # [t, i] as BlinkingEnv.positions

    def success(self):
        return torch.stack([((self.t + i) % 3).to(self.dtype) / 2 for i in range(2)], dim=-1).mean(-1)

    def active(self):
        return torch.stack([torch.ones_like(self.t, dtype=torch.bool), self.t % 2 == 0], dim=-1)


@pytest.fixture
def blinking(monkeypatch):
    """Registers debug/blinking for one test (the registry entry is removed afterwards)."""
    scenarios.list()  # load the built-ins first, so they are not registered inside the patch
    spec = ScenarioSpec(family="debug", kind="cooperative", description="agent 1 in play on even steps",
                        reward="i + 1 per step", overrides={"max_cycles": 5, "report_success": True,
                                                            "final_success": True},
                        positions=lambda env: env.positions(), active=lambda env: env.in_play(),
                        batched=BlinkingSim)
    monkeypatch.setitem(registry._REGISTRY, NAME, (BlinkingEnv, spec))
    return scenarios.make


# ---- the vector envs -----------------------------------------------------------------------------


def test_alive_follows_the_agents_in_play(blinking):
    """alive (acts in the next step) is ANDed with spec.active, read after each step and after the
    auto-reset; final_alive keeps 'took part in the step': who was in play during it."""
    env = VectorEnv(blinking(NAME), 3, seed=0)
    out = env.reset()
    assert out.alive.all()  # t = 0: both in play
    t = 0
    for _ in range(12):
        before = out.alive.clone()
        out = env.step(torch.zeros(3, 2, dtype=torch.long))
        t += 1
        assert torch.equal(out.final_alive, before)
        in_episode = t % 5  # the env's own step count (0: just auto-reset, after 5 steps)
        assert out.alive[:, 0].all()
        assert torch.equal(out.alive[:, 1], torch.full((3,), in_episode % 2 == 0)), t
    env.close()


def test_episode_success_is_the_mean_over_agents_of_the_last_step(blinking):
    env = VectorEnv(blinking(NAME, max_cycles=4), 2, seed=0)
    assert env.reports_success
    env.reset()
    for step in range(1, 9):
        out = env.step(torch.zeros(2, 2, dtype=torch.long))
        assert out.episode_success.shape == (2,) and out.episode_success.dtype == torch.float32
        expected = np.mean(_success(4)) if step % 4 == 0 else 0.0  # 0 where no episode ended
        np.testing.assert_allclose(out.episode_success.numpy(), [expected] * 2)
    env.close()


def test_episode_success_is_nan_where_the_last_step_reports_none(blinking):
    env = VectorEnv(blinking(NAME, max_cycles=3, final_success=False), 2, seed=0)
    assert env.reports_success  # seen on the reset's infos
    env.reset()
    for step in range(1, 4):
        out = env.step(torch.zeros(2, 2, dtype=torch.long))
    assert out.done_env.all() and torch.isnan(out.episode_success).all()
    env.close()


def test_scenarios_without_success_have_no_field():
    for backend in ("pettingzoo", "batched"):
        env = make_vector_env(scenarios.make("mpe/simple_spread", n_agents=2, max_cycles=2), 2, backend=backend)
        assert not env.reports_success
        env.reset()
        for _ in range(2):
            out = env.step(env.random_actions(torch.Generator().manual_seed(0)))
            assert out.episode_success is None
        assert out.done_env.all()
        env.close()
    env = VectorEnv(scenarios.make("debug/scripted"), 2)
    assert not env.reports_success
    env.close()


def test_workers_give_the_same_alive_and_success(blinking):
    sc = blinking(NAME)
    local, forked = VectorEnv(sc, 4, seed=1), VectorEnv(sc, 4, seed=1, workers=2)
    _assert_outputs_equal(local.reset(), forked.reset(), "reset")
    for step in range(11):
        actions = torch.ones(4, 2, dtype=torch.long)
        _assert_outputs_equal(local.step(actions), forked.step(actions), f"step {step + 1}")
    local.close()
    forked.close()


def test_batched_sim_agrees_with_its_pettingzoo_env(blinking):
    """BatchedVectorEnv reads success() before the auto-reset and active() after it, as VectorEnv
    reads the infos and spec.active: every field agrees, alive and final_alive included."""
    _, batched = assert_backends_agree(blinking(NAME), steps=12, seed=2, action_seed=0)
    assert isinstance(batched, BatchedVectorEnv) and batched.reports_success


def test_batched_sim_without_active_keeps_every_agent_alive():
    sc = scenarios.make("nav/navigation", n_agents=3, max_cycles=4)
    env = make_vector_env(sc, 2, backend="batched")
    assert env.reset().alive.all()
    for _ in range(5):
        out = env.step(env.random_actions())
        assert out.alive.all() and out.final_alive.all()


def test_snapshot_restore_keeps_the_in_play_mask(blinking):
    """A restored env's next final_alive is who was in play at the checkpoint."""
    sc = blinking(NAME)
    env = VectorEnv(sc, 2, seed=0)
    env.reset()
    for _ in range(3):  # t = 3: agent 1 out of play
        out = env.step(torch.zeros(2, 2, dtype=torch.long))
    assert not out.alive[:, 1].any()
    fresh = VectorEnv(sc, 2, seed=0)
    fresh.restore(env.snapshot())
    a, b = env.step(torch.zeros(2, 2, dtype=torch.long)), fresh.step(torch.zeros(2, 2, dtype=torch.long))
    _assert_outputs_equal(a, b, "after restore")
    assert not b.final_alive[:, 1].any() and b.alive[:, 1].all()
    env.close()
    fresh.close()


@pytest.mark.parametrize("options", [{"max_cycles": 12}, {"n_agents": 2, "world_size": 0.45,
                                                          "terminate_on_success": True, "max_cycles": 12}],
                         ids=["default", "tiny-world-terminate"])
def test_navigation_success_agrees_on_both_backends(options):
    """nav/navigation: infos "success" (fraction of agents on their goals) on the PettingZoo side,
    success() on the batched side: the same episode_success for the same seed and actions."""
    sc = scenarios.make("nav/navigation", **options)
    reference = VectorEnv(sc, 3, seed=5)
    batched = make_vector_env(sc, 3, seed=5, backend="batched")
    assert reference.reports_success and batched.reports_success
    reference.reset()
    batched.reset()
    gen = torch.Generator().manual_seed(2)
    ended, best = 0, 0.0
    for _ in range(30):
        actions = reference.random_actions(gen)
        a, b = reference.step(actions), batched.step(actions)
        assert torch.equal(a.done_env, b.done_env)
        torch.testing.assert_close(b.episode_success, a.episode_success, atol=1e-6, rtol=0)
        for k in torch.nonzero(a.done_env).flatten().tolist():
            ended += 1
            best = max(best, float(a.episode_success[k]))
            assert a.episode_success[k] == pytest.approx(reference.raw_env(k).last_success_rate, abs=1e-6)
        assert torch.all(a.episode_success[~a.done_env] == 0)
    assert ended >= 3
    if options.get("terminate_on_success"):  # the tiny world's episodes end on success: not all zeros
        assert best > 0
    reference.close()


# ---- evaluation, collector, trainer --------------------------------------------------------------


def test_evaluation_reports_success(blinking):
    res = evaluate(blinking(NAME, max_cycles=4), None, episodes=5, seed=0, num_envs=2)
    np.testing.assert_allclose(res.success, np.full(5, np.mean(_success(4))))
    assert res.as_dict("eval_")["eval_success_mean"] == pytest.approx(np.mean(_success(4)))
    none = evaluate(blinking(NAME, max_cycles=4, final_success=False), None, episodes=3, seed=0, num_envs=2)
    assert np.isnan(none.success).all() and np.isnan(none.success_mean)
    assert "success_mean" not in none.as_dict()


@pytest.mark.parametrize("backend", ["pettingzoo", "batched"])
def test_training_logs_success_and_masks_agents_out_of_play(blinking, tmp_path, capsys, backend):
    """episode_success_mean and eval_success_mean are columns from the first row; the summary and the
    results table get success; the loss runs with alive varying per step (agent 1 blinks)."""
    cfg = build_config({"scenario": NAME, "total_steps": 200, "num_envs": 4, "algo": {"rollout_len": 25, "epochs": 1},
                        "eval_every": 100, "eval_episodes": 2, "progress": False, "backend": backend,
                        "out": str(tmp_path / "run")})
    run = train(cfg)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 2
    for row in rows:
        assert float(row["episode_success_mean"]) == pytest.approx(0.5)  # (t=5: 1.0 and 0.0)
        assert float(row["eval_success_mean"]) == pytest.approx(0.5)
        assert np.isfinite(float(row["policy_loss"]))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_eval"]["success_mean"] == pytest.approx(0.5)
    assert summary["random_policy"]["success_mean"] == pytest.approx(0.5)
    assert "success_definition" in summary
    table = capsys.readouterr().out
    assert "| success |" in table and "| 0.50    |" in table


def test_training_without_success_has_no_success_columns(tmp_path, capsys):
    cfg = build_config({"scenario": "debug/scripted", "total_steps": 100, "num_envs": 2,
                        "algo": {"rollout_len": 25, "epochs": 1}, "eval_episodes": 2, "progress": False,
                        "out": str(tmp_path / "run")})
    run = train(cfg)
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "success" not in header
    summary = json.loads((run / "summary.json").read_text())
    assert "success_mean" not in summary["final_eval"] and "success_definition" not in summary
    assert "| success" not in capsys.readouterr().out


# ---- leaving and entering play in training ---------------------------------------------------------


def test_leaving_play_ends_the_agents_episode_and_entering_it_starts_a_fresh_carry(blinking):
    """Agent 1 leaves play after each even step: its advantage must not flow back from (and it must
    not bootstrap on) the untrained value of a step where it does not act; when it comes back, its
    GRU state starts from zeros, as a new car in a Traffic Junction slot must."""
    from marl.algos import EnvInfo, make_algorithm
    from marl.collector import Collector

    torch.manual_seed(0)
    cfg = build_config({"scenario": NAME, "num_envs": 2, "actor": {"recurrent": True, "hidden": 8}})
    env = VectorEnv(blinking(NAME), 2, seed=0)
    algo = make_algorithm(cfg, EnvInfo.from_env(env, NAME))
    ro = Collector(env, algo, 8, torch.device("cpu")).collect()
    env.close()
    acting = ro.alive[:, 0, 1].tolist()  # even steps of each 5-step episode; the env resets after t = 4
    assert acting == [True, False, True, False, True, True, False, True]
    # out of play at the next step (and not at t = 4, where its env truncates anyway): ended
    assert ro.ended[:, 0, 1].all() and not ro.ended[:4, 0, 0].any()
    assert (algo.next_values(ro)[[0, 2], 0, 1] == 0).all()
    # it (re)enters at t = 2, 4, 7; t = 5 is an env reset (both start); agent 0 only at resets
    assert ro.starts[:, 0, 1].tolist() == [True, False, True, False, True, True, False, True]
    assert ro.starts[:, 0, 0].tolist() == [True, False, False, False, False, True, False, False]
    h = ro.carry["h"][:, 0, 1]
    assert (h[[2, 4, 7]] == 0).all() and (h[[1, 3, 6]] != 0).any()
