"""The Ray backend (a real local Ray) gives the same payoff matrix as the local pool."""

from __future__ import annotations

import numpy as np
import pytest

from marl.tournament.run import TournamentConfig, run_tournament

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_and_local_backends_give_identical_payoffs(tmp_path):
    def cfg(backend, out):
        return TournamentConfig(scenario="classic/rrps", bots="noisy_frequency,biased,random,mixed_experts,pattern",
                                episodes=4, overrides={"num_throws": 50}, backend=backend, workers=2,
                                out=str(tmp_path / out), progress=False)

    local = run_tournament(cfg("local", "local"))
    ray_run = run_tournament(cfg("ray", "ray"))
    assert ray_run["played"] == local["played"] == 20 and not ray_run["failed"]
    np.testing.assert_array_equal(ray_run["payoff"].mean, local["payoff"].mean)
    np.testing.assert_array_equal(ray_run["payoff"].std, local["payoff"].std)
