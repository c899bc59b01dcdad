"""Slow end-to-end checks that training actually learns (run with ``pytest -m slow``)."""

from __future__ import annotations

import json

import pytest
import torch

import scenarios
from envs import VectorEnv
from marl.algos import EnvInfo, make_algorithm
from marl.config import build_config
from marl.evaluation import evaluate
from marl.trainer import train

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("algo", ["mappo", "ippo"])
def test_short_training_beats_random_and_untrained_policy_on_mpe_simple(run_dir, algo):
    cfg = build_config({
        "scenario": "mpe/simple",
        "algo": algo,
        "total_steps": 24_000,
        "num_envs": 8,
        "eval_episodes": 16,
        "checkpoint_every": 0,
        "progress": False,
        "out": str(run_dir),
    })
    # the same algorithm, untrained (same seed and construction order as train())
    torch.manual_seed(cfg.seed)
    sc = scenarios.make(cfg.scenario)
    env = VectorEnv(sc, 1)
    actor = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario)).actor
    untrained = evaluate(sc, actor, cfg.eval_episodes, seed=cfg.seed)
    env.close()

    train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    trained, random_ = summary["final_eval"]["return_mean"], summary["random_policy"]["return_mean"]
    assert trained > random_ + 10.0, summary
    assert trained > untrained.mean + 5.0, (trained, untrained.mean)
