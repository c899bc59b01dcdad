"""Cooperative cross-play between independently trained teams on mpe/simple_spread."""

from __future__ import annotations

import json

import numpy as np
import pytest

from marl.cli import main
from marl.config import config_from_args
from marl.tournament.crossplay import run_crossplay


@pytest.fixture(scope="module")
def teams(tmp_path_factory):
    import torch

    from marl.trainer import train

    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("spread-runs")
    for seed in (0, 1):
        train(config_from_args(["scenario=mpe/simple_spread", "max_cycles=10", "total_steps=200", "num_envs=2",
                                "algo.rollout_len=10", "algo.epochs=1", "eval_episodes=1", "checkpoint_every=200",
                                "progress=false", f"seed={seed}", f"out={root / f'spread-s{seed}'}"]))
    torch.set_num_threads(threads)
    return root


def test_crossplay_matrix_and_gap(teams, tmp_path):
    s = run_crossplay("mpe/simple_spread", str(teams / "spread-*"), episodes=2, workers=0,
                      out=str(tmp_path / "cp"), overrides={"max_cycles": 10})
    m = np.asarray(s["matrix"])
    assert s["teams"] == ["spread-s0", "spread-s1"] and m.shape == (2, 2) and np.isfinite(m).all()
    assert s["self_play"] == pytest.approx(np.mean(np.diag(m)))
    assert s["gap"] == pytest.approx(s["self_play"] - s["cross_play"])
    assert m[0, 1] != m[1, 0]  # seat-by-seat mixes differ with who leads
    saved = json.loads((tmp_path / "cp" / "crossplay.json").read_text())
    assert saved["gap"] == pytest.approx(s["gap"])
    assert (tmp_path / "cp" / "crossplay.png").is_file() and (tmp_path / "cp" / "crossplay.csv").is_file()
    again = run_crossplay("mpe/simple_spread", str(teams / "spread-*"), episodes=2, workers=0,
                          overrides={"max_cycles": 10})
    assert again["matrix"] == s["matrix"]  # seeded: replays exactly


def test_crossplay_cli(teams, tmp_path, capsys):
    assert main(["crossplay", "scenario=mpe/simple_spread", f"teams={teams / 'spread-*'}", "episodes=1",
                 "max_cycles=10", "workers=0", f"out={tmp_path / 'cli'}"]) == 0
    assert "self-play" in capsys.readouterr().out
    assert main(["crossplay", "scenario=mpe/simple_spread", f"teams={teams / 'spread-s0'}"]) == 2
    assert "at least 2 trained teams" in capsys.readouterr().err
