"""Tournaments end to end on the real envs: outputs, determinism, resume after a kill, retries,
checkpoint players, roles from the scenario spec, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from marl.cli import main
from marl.config import config_from_args
from marl.tournament import population
from marl.tournament.population import BotFamily, PlayerSpec, PopulationError
from marl.tournament.run import TournamentConfig, TournamentError, run_tournament

REPO = Path(__file__).resolve().parents[1]
BOTS = "rock,paper,scissors,pattern,frequency,uniform"


def rrps(out, **kw) -> TournamentConfig:
    base = dict(scenario="classic/rrps", bots=BOTS, episodes=3, overrides={"num_throws": 60}, out=str(out),
                workers=0, progress=False)
    base.update(kw)
    return TournamentConfig(**base)


def test_rrps_bot_tournament_writes_every_output_with_known_payoffs(tmp_path):
    s = run_tournament(rrps(tmp_path / "t"))
    assert s["played"] == 30 and s["matches"] == 30 and not s["failed"]  # 6 players, ordered pairs
    out = tmp_path / "t"
    for name in ("payoff.csv", "ratings.csv", "ratings.md", "report.md", "payoff.png", "ratings.png",
                 "results.jsonl", "tournament.json"):
        assert (out / name).is_file(), name
    p = s["payoff"]
    i = {n: k for k, n in enumerate(p.players)}
    assert p.mean[i["paper"], i["rock"]] == 60 and p.std[i["paper"], i["rock"]] == 0
    assert p.n[i["paper"], i["rock"]] == 6  # both seatings, 3 episodes each
    np.testing.assert_allclose(p.mean, -p.mean.T)  # zero-sum, pooled over seatings
    names = [r["player"] for r in s["ratings"]]
    assert names.index("rock") > names.index("pattern")  # the adaptive bots rank above the constants
    assert names.index("paper") > names.index("frequency")
    rows = (out / "payoff.csv").read_text().splitlines()
    assert rows[0] == "player,opponent,mean,std,n,stderr" and len(rows) == 31
    assert "## Ratings" in (out / "report.md").read_text() and "Outcomes (seat)" in (out / "report.md").read_text()


def test_same_seed_same_payoff_with_a_process_pool_and_in_process(tmp_path):
    a = run_tournament(rrps(tmp_path / "a", workers=0, bots="noisy_frequency,biased,random,mixed_experts"))
    b = run_tournament(rrps(tmp_path / "b", workers=2, bots="noisy_frequency,biased,random,mixed_experts"))
    np.testing.assert_array_equal(a["payoff"].mean, b["payoff"].mean)
    c = run_tournament(rrps(tmp_path / "c", seed=1, bots="noisy_frequency,biased,random,mixed_experts"))
    assert not np.array_equal(a["payoff"].mean, c["payoff"].mean)


def test_killed_tournament_resumes_and_plays_only_the_missing_matches(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "marl.cli", "tournament", "scenario=classic/rrps", f"bots={BOTS}", "episodes=3",
           "num_throws=400", f"out={out}", "workers=0", "progress=false"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if results.is_file() and len(results.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = len([ln for ln in results.read_text().splitlines() if ln.strip()])
    assert 4 <= stored < 30, "the tournament should have been killed mid-way"
    with open(results, "a") as f:
        f.write('{"key": "cut short by the kil')  # a half-written line must not break resuming
    cfg = rrps(out, overrides={"num_throws": 400})
    with pytest.raises(TournamentError, match="--resume"):
        run_tournament(cfg)
    s = run_tournament(cfg, resume=True)
    assert s["skipped"] == stored and s["played"] == 30 - stored
    full = run_tournament(rrps(tmp_path / "full", overrides={"num_throws": 400}))
    np.testing.assert_array_equal(s["payoff"].mean, full["payoff"].mean)
    with pytest.raises(TournamentError, match="episodes=3 there vs 4 now"):
        run_tournament(rrps(out, overrides={"num_throws": 400}, episodes=4), resume=True)


class FlakyBot:
    """Raises on its first match in this process, then plays rock."""

    failures_left = 1

    def __init__(self, always: bool):
        self.always = always
        if always or FlakyBot.failures_left > 0:
            FlakyBot.failures_left -= 1
            raise RuntimeError("flaky bot crashed")

    def act(self):
        return 0

    def observe(self, own, opp):
        pass


def test_failed_matches_are_retried_then_reported_never_dropped(tmp_path, monkeypatch):
    from envs import rrps_bots

    def family():
        def make(name, rng):
            if name in ("flaky", "broken"):
                return FlakyBot(always=name == "broken")
            return rrps_bots.make(name, rng)

        return BotFamily(lambda: ["flaky", "broken", "rock", "paper"], make, lambda bot, obs: None)

    monkeypatch.setitem(population.BOT_FAMILIES, "classic/rrps", family)
    FlakyBot.failures_left = 1
    s = run_tournament(rrps(tmp_path / "f", bots="flaky,rock,broken", retries=1))
    failed = sorted(f["key"] for f in s["failed"])
    assert failed == ["broken vs flaky", "broken vs rock", "flaky vs broken", "rock vs broken"]
    assert all(f["attempts"] == 2 and "flaky bot crashed" in f["error"] for f in s["failed"])
    stored = [json.loads(ln) for ln in (tmp_path / "f" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in stored) == ["flaky vs rock", "rock vs flaky"]
    assert max(r["attempts"] for r in stored) == 2  # the flaky match needed its retry
    assert "broken vs rock" in (tmp_path / "f" / "failures.jsonl").read_text()
    assert "Failed matches" in (tmp_path / "f" / "report.md").read_text()


def test_roles_come_from_the_scenario_spec_on_simple_tag(tmp_path):
    cfg = TournamentConfig(scenario="mpe/simple_tag", bots="random,random", episodes=2, out=str(tmp_path / "tag"),
                           workers=0, progress=False, overrides={"max_cycles": 10})
    s = run_tournament(cfg)
    assert s["matches"] == 2 and json.loads((tmp_path / "tag" / "tournament.json").read_text())["roles"] == [
        "adversary", "agent"]
    assert {"nash_as_adversary", "nash_as_agent", "elo_as_adversary", "elo_as_agent"} <= set(s["ratings"][0])
    # the two sides differ: duplicate outcomes, both seatings on the same episode seeds, and the report says so
    saved = json.loads((tmp_path / "tag" / "tournament.json").read_text())
    assert saved["outcome"] == "duplicate" and "Outcomes (duplicate)" in (tmp_path / "tag" / "report.md").read_text()
    results = [json.loads(line) for line in (tmp_path / "tag" / "results.jsonl").read_text().splitlines()]
    assert len({r["seed"] for r in results}) == 1
    with pytest.raises(TournamentError, match="two sides"):
        run_tournament(TournamentConfig(scenario="mpe/simple_spread", bots="random,random", out=str(tmp_path / "x")))


@pytest.fixture(scope="module")
def rrps_checkpoint(tmp_path_factory):
    """A tiny recurrent policy trained on classic/rrps_vs_bots (it fits classic/rrps's spaces)."""
    import torch

    from marl.trainer import train

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("runs") / "rrps-gru"
    cfg = config_from_args(["scenario=classic/rrps_vs_bots", "num_throws=20", "opponents=rock,paper",
                            "actor.recurrent=true", "algo=ippo", "total_steps=200", "num_envs=2",
                            "algo.rollout_len=20", "algo.epochs=1", "eval_episodes=2", "checkpoint_every=200",
                            "progress=false", f"out={out}"])
    train(cfg)
    torch.set_num_threads(threads)
    return out


def test_a_trained_checkpoint_plays_against_bots(tmp_path, rrps_checkpoint):
    s = run_tournament(rrps(tmp_path / "ck", players=str(rrps_checkpoint.parent / "rrps-*"), bots="rock,paper",
                            overrides={"num_throws": 20}))
    assert "rrps-gru" in s["payoff"].players and not s["failed"]
    assert not any(k.startswith("nash_as_") for k in s["ratings"][0])  # rrps's two seats are alike
    # sampled policy actions replay exactly, whichever process loads the actor first
    pool = run_tournament(rrps(tmp_path / "ck2", players=str(rrps_checkpoint), bots="rock,paper,uniform",
                               overrides={"num_throws": 20}, workers=2))
    alone = run_tournament(rrps(tmp_path / "ck3", players=str(rrps_checkpoint), bots="rock,paper,uniform",
                                overrides={"num_throws": 20}, workers=0))
    np.testing.assert_array_equal(pool["payoff"].mean, alone["payoff"].mean)


def test_a_checkpoint_that_does_not_fit_is_named_with_the_mismatch(tmp_path, rrps_checkpoint):
    with pytest.raises(PopulationError, match=r"player 'rrps-gru' .* does not fit scenario 'classic/rrps'.*size"):
        run_tournament(rrps(tmp_path / "bad", players=str(rrps_checkpoint), overrides={"num_throws": 20,
                                                                                       "history": 2}))
    assert main(["tournament", "scenario=classic/rrps", f"players={rrps_checkpoint}", "bots=rock", "history=2",
                 f"out={tmp_path / 'bad2'}"]) == 2
    with pytest.raises(PopulationError, match="matches no run folder"):
        population.checkpoint_players(str(tmp_path / "nothing-*"))


def test_cli_tournament_and_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["tournament", "scenario=classic/rrps", "bots=rock,paper,cycle", "episodes=2", "num_throws=30",
            f"out={out}", "workers=0", "progress=false"]
    assert main(args) == 0
    assert "6 matches played" in capsys.readouterr().out
    assert main(args + ["--resume"]) == 0
    assert "0 matches played, 6 already stored" in capsys.readouterr().out
    assert main(["tournament", "scenario=classic/rrps", "bots=all", "backend=slurm"]) == 2
    assert "unknown backend 'slurm'" in capsys.readouterr().err


def test_player_specs_from_run_folders(tmp_path):
    for name in ("run-a", "run-b"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "checkpoints" / "step_000000000100.pt").write_bytes(b"x")
    (tmp_path / "notes").mkdir()
    players = population.checkpoint_players(str(tmp_path / "*"))
    assert [p.name for p in players] == ["run-a", "run-b"]
    assert population.unique_names([PlayerSpec("a", "random"), PlayerSpec("a", "random")])[1].name == "a#2"
