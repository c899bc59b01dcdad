"""classic/rrps: the env's rules, PettingZoo's API tests, and the scripted bot population."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import scenarios
from envs import rrps_bots
from envs.rrps import RepeatedRPSEnv, RRPSVersusBots, decode_last


def play(bot_a: str, bot_b: str, throws: int = 300, seed: int = 0) -> float:
    """Player 0's return in one match between two bots."""
    env = RepeatedRPSEnv(num_throws=throws)
    rng = np.random.default_rng(seed)
    a, b = rrps_bots.make(bot_a, rng), rrps_bots.make(bot_b, rng)
    env.reset(seed=seed)
    total = 0.0
    while env.agents:
        ta, tb = a.act(), b.act()
        _, rew, *_ = env.step({"player_0": ta, "player_1": tb})
        a.observe(ta, tb)
        b.observe(tb, ta)
        total += rew["player_0"]
    return total


def test_passes_pettingzoo_api_and_seed_tests():
    parallel_api_test(RepeatedRPSEnv(num_throws=30, history=3), num_cycles=40)
    parallel_api_test(RRPSVersusBots(num_throws=30), num_cycles=40)
    parallel_seed_test(lambda: RRPSVersusBots(num_throws=30, opponents="biased,noisy_frequency"))


def test_rules_rewards_and_observed_history():
    env = RepeatedRPSEnv(num_throws=3, history=2)
    obs, _ = env.reset(seed=0)
    assert obs["player_0"].sum() == 0 and decode_last(obs["player_0"]) is None
    obs, rew, term, trunc, _ = env.step({"player_0": 1, "player_1": 0})  # paper beats rock
    assert rew == {"player_0": 1.0, "player_1": -1.0}
    assert decode_last(obs["player_0"]) == (1, 0) and decode_last(obs["player_1"]) == (0, 1)
    obs, rew, *_ = env.step({"player_0": 2, "player_1": 0})  # rock beats scissors
    assert rew["player_0"] == -1.0
    # most recent first: (scissors, rock), then (paper, rock)
    assert np.flatnonzero(obs["player_0"]).tolist() == [2, 3, 7, 9]
    _, _, term, trunc, _ = env.step({"player_0": 0, "player_1": 0})
    assert trunc == {"player_0": True, "player_1": True} and not any(term.values()) and env.agents == []
    with pytest.raises(ValueError, match="valid throws"):
        env.reset()
        env.step({"player_0": 3, "player_1": 0})


def test_population_has_at_least_15_distinct_bots():
    assert len(rrps_bots.names()) >= 15
    # distinct behaviour: against two probe opponents (one adaptive, one random), no two bots throw
    # the same sequences
    sequences = set()
    for name in rrps_bots.names():
        seqs = []
        for probe_name in ("pattern", "biased"):
            bot, probe = rrps_bots.make(name, 0), rrps_bots.make(probe_name, 1)
            seq = []
            for _ in range(250):
                t, p = bot.act(), probe.act()
                bot.observe(t, p)
                probe.observe(p, t)
                seq.append(t)
            seqs.append(tuple(seq))
        sequences.add(tuple(seqs))
    assert len(sequences) == len(rrps_bots.names())


def test_bots_behave_as_described():
    assert play("paper", "rock") == 300
    assert play("frequency", "rock") >= 290  # learns to throw paper after one throw
    assert play("beat_last", "reverse_cycle") <= -290  # reverse cycle throws what beats beat_last
    assert play("pattern", "cycle") >= 280
    assert play("markov", "reverse_cycle") >= 280
    assert abs(play("uniform", "pattern", throws=1000)) < 120  # nobody exploits uniform random
    assert play("win_stay_lose_shift", "paper") >= 296  # loses at most twice, then stays on scissors


def test_bots_are_replayable_from_their_seed():
    assert play("noisy_frequency", "mixed_experts", seed=3) == play("noisy_frequency", "mixed_experts", seed=3)


def test_unknown_bot_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown rrps bot 'rok'.*rock"):
        rrps_bots.resolve("rok,paper")


def test_versus_bots_draws_the_opponent_from_the_seed():
    env = RRPSVersusBots(num_throws=5, opponents="rock,paper,scissors")
    seen = {env.reset(seed=s)[1]["player_0"]["opponent"] for s in range(30)}
    assert seen == {"rock", "paper", "scissors"}
    _, info = env.reset(seed=7)
    _, info2 = env.reset(seed=7)
    assert info == info2


def test_registered_scenarios():
    sc = scenarios.make("classic/rrps", num_throws=10)
    assert sc.agents == ("player_0", "player_1") and list(sc.teams) == ["player_0", "player_1"]
    solo = scenarios.make("classic/rrps_vs_bots", num_throws=10, opponents="rock")
    assert solo.agents == ("player_0",)
    assert solo.observation_spaces["player_0"] == sc.observation_spaces["player_0"]
