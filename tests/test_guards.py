"""Numerical guards: a NaN reward stops the run naming the agent and step, and the last good
checkpoint survives."""

from __future__ import annotations

import csv
import math
import re

import pytest
import torch

import scenarios
from envs.scripted import ScriptedEnv
from marl import checkpoint as ckpt
from marl.cli import main
from marl.guards import NonFiniteError, check_grad, check_loss

NAME = "debug/nan_reward_for_tests"


class NaNRewardEnv(ScriptedEnv):
    """Agent 1's reward becomes NaN on step 3 once 40 episodes have been played (after a checkpoint)."""

    episodes = 0

    def reset(self, seed=None, options=None):
        NaNRewardEnv.episodes += 1
        return super().reset(seed, options)

    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        if NaNRewardEnv.episodes > 40 and self.t == 3:
            rew["agent_1"] = math.nan
        return obs, rew, term, trunc, info


@pytest.fixture(autouse=True)
def nan_scenario():
    NaNRewardEnv.episodes = 0
    scenarios.register(NAME, lambda **kw: NaNRewardEnv(**kw),
                       scenarios.ScenarioSpec(family="debug", kind="cooperative", description="NaN rewards",
                                              reward="as debug/scripted", overrides={"max_cycles": 5}),
                       replace=True)
    yield


def test_nan_reward_stops_the_run_naming_agent_and_step_and_keeps_the_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", f"scenario={NAME}", "total_steps=2000", "num_envs=2", "algo.rollout_len=20",
                 "checkpoint_every=40", "algo.epochs=1", "eval_episodes=2", "progress=false", f"out={run}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "non-finite reward" in err and "agent 'agent_1'" in err and "env step" in err and "last action" in err
    kept = ckpt.list_checkpoints(run / "checkpoints")
    assert kept, "the last good checkpoint must survive"
    payload = ckpt.load_checkpoint(kept[-1])
    assert all(torch.isfinite(v).all() for v in payload["algorithm"]["modules"].values() if v.is_floating_point())
    # the kept checkpoint is from before the bad step, and nothing after it was written
    bad_step = int(re.search(r"env step ([\d,]+)", err).group(1).replace(",", ""))
    assert payload["env_steps"] < bad_step
    assert max(int(r["env_steps"]) for r in csv.DictReader(open(run / "metrics.csv"))) < bad_step


def test_loss_and_gradient_guards_name_the_term():
    stats = {"policy_loss": torch.tensor(0.1), "value_loss": torch.tensor(float("nan")), "entropy": torch.tensor(1.0)}
    with pytest.raises(NonFiniteError, match="value_loss"):
        check_loss(stats, stats["value_loss"] + 1, epoch=2, minibatch=0)
    check_loss(stats, torch.tensor(1.0), 0, 0)  # finite: no error
    with pytest.raises(NonFiniteError, match="critic gradient"):
        check_grad(torch.tensor(float("inf")), "critic", 0, 1)
