"""An env that raises mid-rollout: a named error by default, a restart with restart_failed_envs."""

from __future__ import annotations

import csv

import pytest
import torch

import scenarios
from envs import EnvStepError, VectorEnv
from envs.scripted import ScriptedEnv
from marl.config import build_config
from marl.trainer import train

NAME = "debug/crashing_for_tests"


class CrashingEnv(ScriptedEnv):
    """Raises on the 3rd step of every 2nd episode of the env whose reset seed is odd."""

    def reset(self, seed=None, options=None):
        self.crash = seed is not None and seed % 2 == 1
        return super().reset(seed, options)

    def step(self, actions):
        if self.crash and self.t == 2:
            raise ValueError("simulated physics blow-up")
        return super().step(actions)


@pytest.fixture(autouse=True)
def crashing_scenario():
    scenarios.register(NAME, lambda **kw: CrashingEnv(**kw),
                       scenarios.ScenarioSpec(family="debug", kind="cooperative", description="crashes",
                                              reward="as debug/scripted", overrides={"max_cycles": 5}),
                       replace=True)
    yield


def test_env_that_raises_names_scenario_env_and_step():
    env = VectorEnv(scenarios.make(NAME), 4, seed=0)
    env.reset()
    with pytest.raises(EnvStepError,
                       match=r"scenario 'debug/crashing_for_tests': env \d raised ValueError at step 3") as info:
        for _ in range(10):
            env.step(torch.zeros(4, 2, dtype=torch.long))
    assert isinstance(info.value.__cause__, ValueError)  # the original traceback is chained
    assert "simulated physics blow-up" in str(info.value)


def test_restarted_env_drops_its_partial_episode():
    env = VectorEnv(scenarios.make(NAME), 4, seed=0, restart_failed=True)
    env.reset()
    dropped = finished = 0
    for _ in range(30):
        out = env.step(torch.zeros(4, 2, dtype=torch.long))
        dropped += int(out.dropped_env.sum())
        done = out.done_env & ~out.dropped_env
        finished += int(done.sum())
        # a dropped episode ends in termination (nothing to bootstrap from) and counts no return
        assert torch.all(out.terminated[out.dropped_env])
        assert torch.all(out.episode_length[done] == 5)
    assert dropped > 0 and finished > 0


def test_training_with_restarts_finishes_and_logs_them(tmp_path):
    cfg = build_config({"scenario": NAME, "total_steps": 400, "num_envs": 4, "algo": {"rollout_len": 25, "epochs": 1},
                        "eval_episodes": 2, "progress": False, "out": str(tmp_path / "run"),
                        "restart_failed_envs": True})
    run = train(cfg)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert sum(int(r["env_restarts"]) for r in rows) > 0
    assert (run / "summary.json").is_file()
