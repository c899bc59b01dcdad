"""``marl league``: generations of meta-strategy -> best response -> missing matches, on a symmetric
game (rrps: one population) and a two-sided one (simple_tag: one population per side); a league
resumed after it stopped equals the uninterrupted one; the Ray backend equals the local pool."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from marl import checkpoint as ckpt
from marl.cli import main
from marl.league.loop import LeagueConfig, LeagueError, config_from_items, meta_game, run_league

TRAIN = {"total_steps": 4000, "num_envs": 8, "algo": {"rollout_len": 10}, "eval_episodes": 2, "actor": {"hidden": 32},
         "critic": {"hidden": 32}}


def rrps(out, generations=2, meta="nash", workers=0, **kw) -> LeagueConfig:
    return LeagueConfig(scenario="classic/rrps", meta=meta, generations=generations, initial="rock", train=TRAIN,
                        episodes=4, seed=3, workers=workers, out=str(out), progress=False,
                        overrides={"num_throws": 10}, **kw)


def numbers(state: dict) -> list[dict]:
    """The per-generation results without the wall-clock times."""
    return [{k: v for k, v in g.items() if not k.endswith("_s")} for g in state["generations"]]


def weights(state: dict) -> list[dict]:
    return [ckpt.load_checkpoint(m["source"])["algorithm"]["modules"] for m in state["members"][0] if m["generation"]]


@pytest.fixture(scope="module")
def league(tmp_path_factory):
    out = tmp_path_factory.mktemp("league") / "psro"
    return run_league(rrps(out)), out


def test_a_symmetric_league_grows_one_population_and_plays_every_match(league):
    state, out = league
    members = state["members"]
    assert len(members) == 1 and [m["name"] for m in members[0]] == ["rock", "g1", "g2"]
    results = [json.loads(line) for line in (out / "matches" / "results.jsonl").read_text().splitlines()]
    assert len(results) == 6 and len({r["key"] for r in results}) == 6  # every ordered pair once, none twice
    g1, g2 = state["generations"]
    assert g1["trained_against"] == [[1.0]]  # the only member
    Z = meta_game(_game(out), members, {r["key"]: r for r in results})
    assert np.allclose(Z, -Z.T)
    assert Z[1, 0] > 5  # g1, the response to rock, throws paper: it wins most of the 10 throws
    # PSRO: the next meta-strategy is the Nash of the grown game, so its NashConv there is 0
    assert abs(g1["nash_conv"]) < 1e-6 and abs(g2["nash_conv"]) < 1e-6
    assert g1["nash_conv_trained_against"] == pytest.approx(2 * Z[:2, 0].max())  # rock exploited by g1
    for g in (g1, g2):
        assert np.isclose(sum(g["nash"][0]), 1) and np.isclose(sum(g["meta_strategy"][0]), 1)
    for name in ("report.md", "nash_conv.png", "nash_weights.png", "payoff.png", "ratings.csv"):
        assert (out / name).is_file(), name
    assert "| 2 |" in (out / "report.md").read_text()


def _game(out):
    from marl.league.loop import Game

    return Game.of(rrps(out))


def test_a_league_that_stopped_resumes_to_the_same_results(tmp_path, league):
    state, _ = league
    part = run_league(rrps(tmp_path / "part", generations=1))
    assert len(part["generations"]) == 1
    with pytest.raises(LeagueError, match="already holds a league; pass --resume"):
        run_league(rrps(tmp_path / "part"))
    with pytest.raises(LeagueError, match="cannot resume .*meta='nash' there vs 'uniform' now"):
        run_league(rrps(tmp_path / "part", meta="uniform"), resume=True)
    resumed = run_league(rrps(tmp_path / "part"), resume=True)
    assert numbers(resumed) == numbers(state)
    for a, b in zip(weights(resumed), weights(state)):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_each_meta_strategy_answers_its_own_mixture(tmp_path):
    last = run_league(rrps(tmp_path / "last", meta="last"))
    assert last["generations"][1]["trained_against"] == [[0.0, 1.0]]  # self-play: the newest member
    uniform = run_league(rrps(tmp_path / "fp", meta="uniform"))
    assert uniform["generations"][1]["trained_against"] == [[0.5, 0.5]]  # fictitious play
    run = json.loads((tmp_path / "fp" / "runs" / "g2-player_0" / "summary.json").read_text())
    assert run["opponents"]["weights"] == [0.5, 0.5] and run["opponents"]["players"][0] == "rock"


def test_a_two_sided_league_trains_a_response_per_side(tmp_path):
    cfg = LeagueConfig(scenario="mpe/simple_tag", generations=1, initial="random",
                       train={**TRAIN, "total_steps": 200, "comm": {"graph": "knn", "k": 2}}, episodes=2,
                       workers=2, out=str(tmp_path / "tag"), progress=False, overrides={"max_cycles": 10})
    state = run_league(cfg)
    assert [[m["name"] for m in side] for side in state["members"]] == [["adversary.random", "adversary.g1"],
                                                                         ["agent.random", "agent.g1"]]
    results = (tmp_path / "tag" / "matches" / "results.jsonl").read_text().splitlines()
    assert len(results) == 4  # 2 x 2: each adversary member against each agent member
    g = state["generations"][0]
    assert len(g["nash"]) == 2 and len(g["nash"][0]) == 2 and g["nash_conv"] >= 0
    run = json.loads((tmp_path / "tag" / "runs" / "g1-agent" / "summary.json").read_text())
    assert run["opponents"] == {"learn": "agent", "players": ["random"], "weights": [1.0]}


def test_bad_league_settings_are_one_line_errors(tmp_path):
    with pytest.raises(LeagueError, match="meta='nsah' is not a meta-strategy solver; valid: alpharank, last, nash"):
        config_from_items({"scenario": "classic/rrps", "meta": "nsah"})
    with pytest.raises(LeagueError, match="train.seed is set by the league itself"):
        config_from_items({"scenario": "classic/rrps", "train": {"seed": 1}})
    with pytest.raises(LeagueError, match="two sides"):
        run_league(LeagueConfig(scenario="mpe/simple_spread", out=str(tmp_path / "x"), progress=False))
    with pytest.raises(LeagueError, match="train: .*algo.epochs"):
        run_league(LeagueConfig(scenario="classic/rrps", train={"algo": {"epochs": 0}}, out=str(tmp_path / "y"),
                                progress=False))
    assert main(["league", "scenario=classic/rrps", "num_throw=3"]) == 2


@pytest.mark.slow
def test_ray_gives_the_same_league_as_the_local_pool(tmp_path, league):
    pytest.importorskip("ray")
    state, _ = league
    on_ray = run_league(rrps(tmp_path / "ray", backend="ray", workers=2))
    assert numbers(on_ray) == numbers(state)
    for a, b in zip(weights(on_ray), weights(state)):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_league_killed_while_a_response_trains_resumes_to_the_same_results(tmp_path, league):
    """SIGKILL `marl league` after the second response's first checkpoint; --resume finishes it from
    that checkpoint (matches of generation 1 kept) and the league equals the uninterrupted one."""
    import signal
    import time

    from tests.test_reliability import cli, finish

    state, _ = league
    out = tmp_path / "killed"
    args = ["scenario=classic/rrps", "meta=nash", "generations=2", "initial=rock", "episodes=4", "seed=3",
            "workers=0", f"out={out}", "progress=false", "num_throws=10", "train.total_steps=4000",
            "train.num_envs=8", "train.algo.rollout_len=10", "train.eval_episodes=2", "train.actor.hidden=32",
            "train.critic.hidden=32", "train.checkpoint_every=800"]
    proc = cli("league", *args)
    second = out / "runs" / "g2-player_0" / "checkpoints"
    deadline = time.monotonic() + 180
    while not (second.is_dir() and ckpt.list_checkpoints(second)):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "runs" / "g2-player_0" / "summary.json").exists(), "killed while the response trained"
    finish(cli("league", *args, "--resume"))
    resumed = json.loads((out / "league.json").read_text())
    assert "resuming" in (out / "runs" / "g2-player_0" / "train.log").read_text()
    assert numbers(resumed) == numbers(state)
    for a, b in zip(weights(resumed), weights(state)):
        assert all(torch.equal(a[k], b[k]) for k in a)
