"""Fixed opponents (``opponents.*``, ``marl.league.OpponentSeats``): the seats of the roles that do
not learn are played by a policy or bot drawn per episode; the learner sees them as not alive, is
scored on its own seats only, and a run with opponents is deterministic and resumes bit-identically."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

import scenarios
from envs import VectorEnv
from envs.factory import make_vector_env
from marl.cli import main
from marl.evaluation import evaluate
from marl.league.opponents import OpponentError, OpponentSeats, resolve_opponents
from tests.test_batched_mpe import _assert_outputs_equal
from tests.test_reliability import assert_same, comparable_rows, final_state

RRPS = scenarios.make("classic/rrps", num_throws=6)


def test_opponent_seats_play_the_drawn_bot_and_the_learner_sees_only_its_own_seats():
    opponents = resolve_opponents(RRPS, "player_0", "rock,paper", weights=[1, 0])
    env = OpponentSeats(VectorEnv(RRPS, 3, seed=0), opponents, seed=0)
    try:
        out = env.reset()
        assert env.scored.tolist() == [True, False]
        assert out.alive.tolist() == [[True, False]] * 3
        paper = torch.ones(3, 2, dtype=torch.long)  # the learner throws paper; the opponent seat's entry is ignored
        for _ in range(6):
            out = env.step(paper)
            assert out.reward[:, 0].tolist() == [1.0] * 3  # paper beats the rock bot every throw
            assert not out.alive[:, 1].any()
        assert out.done_env.all() and out.episode_return[:, 0].tolist() == [6.0] * 3
    finally:
        env.close()


def _assignments(seed: int, weights, episodes_per_env: int = 40) -> list[tuple[int, ...]]:
    opponents = resolve_opponents(RRPS, "player_0", ["rock", "paper", "scissors"], weights=weights)
    env = OpponentSeats(VectorEnv(scenarios.make("classic/rrps", num_throws=1), 4, seed=0), opponents, seed=seed)
    seen = []
    try:
        env.reset()
        for _ in range(episodes_per_env):
            seen.append(tuple(env.assigned.tolist()))
            env.step(torch.zeros(4, 2, dtype=torch.long))  # every step ends an episode
    finally:
        env.close()
    return seen


def test_each_episode_draws_its_opponent_from_the_weights_by_its_own_seed():
    a, b, c = _assignments(1, [0.25, 0.75, 0]), _assignments(1, [0.25, 0.75, 0]), _assignments(2, [0.25, 0.75, 0])
    assert a == b and a != c
    counts = Counter(i for row in a for i in row)
    assert counts[2] == 0  # weight 0: never drawn
    assert 0.6 < counts[1] / sum(counts.values()) < 0.9


def test_evaluation_scores_only_the_learning_seats():
    opponents = resolve_opponents(RRPS, "player_0", ["rock"])
    res = evaluate(RRPS, None, episodes=4, seed=0, opponents=opponents)
    assert res.agent_returns.shape == (4, 1)
    # zero-sum: were the rock bot's seat counted too, every episode's mean would be 0
    assert np.any(res.returns != 0)


def test_bad_opponent_settings_are_one_line_errors():
    with pytest.raises(OpponentError, match="not a role of classic/rrps; valid: player_0, player_1"):
        resolve_opponents(RRPS, "wolf", ["rock"])
    with pytest.raises(OpponentError, match="bots of classic/rrps: random, rock"):
        resolve_opponents(RRPS, "player_0", ["rockbot"])
    with pytest.raises(OpponentError, match="must be 2 nonnegative numbers"):
        resolve_opponents(RRPS, "player_0", ["rock", "paper"], weights=[1, -1])
    assert main(["train", "scenario=classic/rrps", "opponents.learn=player_0"]) != 0


@pytest.fixture(scope="module")
def tag_policy(tmp_path_factory):
    """A (barely) trained simple_tag policy: an opponent with communication over knn."""
    out = tmp_path_factory.mktemp("tag") / "run"
    assert main(["train", "scenario=mpe/simple_tag", "total_steps=40", "num_envs=2", "algo.rollout_len=10",
                 "algo.epochs=1", "actor.hidden=16", "critic.hidden=16", "eval_episodes=1", "progress=false",
                 "comm.graph=knn", "comm.k=2", f"out={out}"]) == 0
    return out


def test_opponent_seats_agree_across_backends(tag_policy):
    """The same opponents on the batched simulator and on PettingZoo envs: same outputs step by step."""
    sc = scenarios.make("mpe/simple_tag", max_cycles=12)
    opponents = resolve_opponents(sc, "adversary", [str(tag_policy), "random"], greedy=True)
    envs = [OpponentSeats(make_vector_env(sc, 3, seed=4, backend=b), opponents, seed=4)
            for b in ("pettingzoo", "batched")]
    try:
        _assert_outputs_equal(*(e.reset() for e in envs), "reset")
        gen = torch.Generator().manual_seed(0)
        for step in range(30):  # two and a half episodes: opponents are drawn again at each reset
            actions = envs[0].random_actions(gen)
            reference, batched = (e.step(actions) for e in envs)
            _assert_outputs_equal(reference, batched, f"step {step}")
            assert np.array_equal(envs[0].assigned, envs[1].assigned)
        assert (envs[0].episodes == 3).all()
    finally:
        for e in envs:
            e.close()


SMALL_RRPS = ["scenario=classic/rrps", "num_throws=7", "num_envs=2", "algo.rollout_len=5", "algo.epochs=2",
              "actor.hidden=16", "critic.hidden=16", "eval_episodes=2", "progress=false", "opponents.learn=player_0"]


@pytest.fixture(scope="module")
def recurrent_rrps(tmp_path_factory):
    out = tmp_path_factory.mktemp("gru") / "run"
    assert main(["train", *SMALL_RRPS[:-1], "actor.recurrent=true", "total_steps=20", f"out={out}"]) == 0
    return out


def test_a_run_against_opponents_is_deterministic_and_resumes_bit_identically(tmp_path, recurrent_rrps):
    """Opponents with memory (a GRU policy, a frequency-counting bot) mid-episode at the checkpoint."""
    args = [*SMALL_RRPS, f"opponents.players=[{recurrent_rrps},frequency,random]", "opponents.weights=[2,1,1]"]
    whole, again, split = tmp_path / "whole", tmp_path / "again", tmp_path / "split"
    for out in (whole, again):
        assert main(["train", *args, "total_steps=60", "checkpoint_every=30", f"out={out}"]) == 0
    assert main(["train", *args, "total_steps=30", "checkpoint_every=30", f"out={split}"]) == 0
    assert main(["resume", str(split), "total_steps=60"]) == 0
    assert comparable_rows(whole) == comparable_rows(again) == comparable_rows(split)
    assert_same(final_state(split), final_state(whole))
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["opponents"]["players"] == ["run", "frequency", "random"]
    assert summary["opponents"]["weights"] == [0.5, 0.25, 0.25]


def test_a_short_run_learns_to_beat_fixed_bots(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "scenario=classic/rrps", "num_throws=20", "opponents.learn=player_0",
                 "opponents.players=rock,paper", "total_steps=12000", "eval_episodes=10", "progress=false",
                 f"out={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # the opponent seat is not scored: a zero-sum mean over both seats would be 0
    assert summary["final_eval"]["return_mean"] > 0.8 * 20 > summary["random_policy"]["return_mean"]


@pytest.mark.parametrize("opponents", [False, True])
def test_a_competitive_scenario_keeps_messages_within_teams_when_acting_and_updating(opponents):
    """simple_tag's seats carry their teams into the actor built for it, so the rollout and the
    update build the same within-team graph: at identical parameters the PPO ratio is exactly 1."""
    from marl.algos import EnvInfo, Progress, make_algorithm
    from marl.collector import Collector
    from marl.communication import CommInputs
    from marl.config import build_config

    torch.manual_seed(0)
    cfg = build_config({"scenario": "mpe/simple_tag", "num_envs": 3, "actor": {"hidden": 16},
                        "critic": {"hidden": 16}, "algo": {"epochs": 1, "minibatches": 1},
                        "comm": {"graph": "learned", "gating": True}})
    sc = scenarios.make(cfg.scenario)
    env = VectorEnv(sc, 3, seed=0)
    if opponents:
        env = OpponentSeats(env, resolve_opponents(sc, "agent", ["random"]), seed=0)
    algo = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    assert sc.team_ids == (0, 0, 0, 1) and algo.actor.comm.teams.tolist() == [0, 0, 0, 1]
    ro = Collector(env, algo, 12, torch.device("cpu")).collect()
    env.close()
    data, _ = algo.prepare(ro)
    mb, env_idx = next(iter(algo.minibatches(data, ro)))
    with torch.no_grad():
        params, _ = algo.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, env_idx)
        logp, _ = algo.actor.log_prob_entropy(params, mb.actions)
    assert (logp - mb.old_logp).abs().max() < 1e-4
    assert algo.update(ro, Progress(0, 1000))["clip_frac"] == 0.0


def test_a_loaded_policy_knows_its_seats_teams_also_from_a_checkpoint_written_before_teams(tag_policy, tmp_path):
    from marl import checkpoint as ckpt
    from marl.policy import load_policy
    from marl.tournament.population import load_actor

    assert load_policy(tag_policy).actor.comm.teams.tolist() == [0, 0, 0, 1]
    assert load_actor(str(ckpt.latest_checkpoint(tag_policy)), "mpe/simple_tag", ()).comm.teams.tolist() == [0, 0, 0, 1]
    payload = ckpt.load_checkpoint(ckpt.latest_checkpoint(tag_policy))
    del payload["env_info"]["teams"]
    torch.save(payload, tmp_path / "old.pt")
    assert load_policy(tmp_path / "old.pt").actor.comm.teams.tolist() == [0, 0, 0, 1]
    spread = scenarios.make("mpe/simple_spread")
    assert spread.team_ids is None  # cooperative: everyone may talk
