"""Every built-in scenario trains end to end: Box and Discrete actions, heterogeneous agents, agents
removed mid-episode, pixel observations. The slow ones (pixels, large N) run with `make test-all`."""

from __future__ import annotations

import json

import pytest

import scenarios
from marl.cli import main

FAST = {"mpe/simple_spread", "mpe/simple_speaker_listener", "mpe/simple_tag", "sisl/multiwalker", "classic/rps",
        "debug/scripted", "nav/navigation"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in scenarios.list()],
)
def test_scenario_trains(tmp_path, name):
    run = tmp_path / "run"
    code = main(["train", f"scenario={name}", "total_steps=200", "num_envs=2", "algo.rollout_len=50", "algo.epochs=1",
                 "eval_episodes=1", "progress=false", f"out={run}"])
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 200 and summary["final_eval"]["episodes"] == 1


def test_continuous_mpe_trains(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "continuous_actions=true", "total_steps=200", "num_envs=2", "algo.rollout_len=50",
                 "eval_episodes=1", "progress=false", f"out={run}"]) == 0
