"""The trainer takes the batched backend without knowing it: same config keys, same run folder."""

from __future__ import annotations

import json

import pytest

from marl.config import ConfigError, build_config
from marl.trainer import train


def _cfg(run_dir, **extra):
    data = {"total_steps": 400, "num_envs": 4, "algo": {"rollout_len": 25, "epochs": 2}, "eval_episodes": 2,
            "progress": False, "out": str(run_dir), **extra}
    return build_config(data)


def test_backend_config_validation():
    assert build_config({}).backend == "auto"
    with pytest.raises(ConfigError, match="backend='gpu' is not valid. Valid: auto, batched, pettingzoo"):
        build_config({"backend": "gpu"})
    with pytest.raises(ConfigError, match="scenario 'mpe/simple_push' has no batched simulator"):
        build_config({"backend": "batched", "scenario": "mpe/simple_push"})
    with pytest.raises(ConfigError, match="workers=2 applies to backend=pettingzoo only"):
        build_config({"backend": "batched", "workers": 2})


def test_training_on_the_batched_backend_is_reproducible(tmp_path, capsys):
    first = train(_cfg(tmp_path / "a", backend="batched", n_agents=4))
    assert "(batched envs)" in capsys.readouterr().out
    second = train(_cfg(tmp_path / "b", backend="batched", n_agents=4))
    a, b = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert a["env_steps"] == 400 and a["final_eval"] == b["final_eval"]
    assert (first / "metrics.csv").read_text().splitlines()[1].split(",")[3:5] == \
        (second / "metrics.csv").read_text().splitlines()[1].split(",")[3:5]


def test_both_backends_train_the_same_first_iteration(tmp_path):
    """Same seed: the batched and the PettingZoo backends collect the same episodes, so the first
    iteration's logged episode returns agree."""
    rows = []
    for backend in ("batched", "pettingzoo"):
        run = train(_cfg(tmp_path / backend, backend=backend, total_steps=100))
        header, first = (run / "metrics.csv").read_text().splitlines()[:2]
        rows.append(dict(zip(header.split(","), first.split(","))))
    assert rows[0]["episode_return_mean"] == rows[1]["episode_return_mean"]
    for key in ("policy_loss", "value_loss", "entropy"):
        assert float(rows[0][key]) == pytest.approx(float(rows[1][key]), abs=1e-5), key


def test_graph_comm_and_nav_train_on_the_batched_backend(tmp_path):
    run = train(_cfg(tmp_path / "nav", scenario="nav/navigation", backend="batched", n_agents=5,
                     comm={"graph": "knn", "k": 2}, critic="graph"))
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 400
