"""Two-role scenarios are rated by duplicate outcomes: a player is compared with another in the same
seat on the same episodes, not with whoever sits in the other role (issue: ratings decided by the seat)."""

from __future__ import annotations

import numpy as np
import pytest

from marl.tournament.matches import schedule
from marl.tournament.payoff import build_payoff
from marl.tournament.population import PlayerSpec
from marl.tournament.report import compute_ratings

SKILL = {"weak": 0.0, "fair": 1.0, "strong": 2.0}
EPISODES = 6


def _results(noise: float = 0.0) -> dict:
    """A tiny two-role game with known returns: the hunter seat scores 10 + skill, the prey seat
    -10 + skill (+ episode noise shared by both seatings, as duplicate seeds make it). The hunter
    seat outscores the prey seat in every episode, whoever plays."""
    rng = np.random.default_rng(0)
    deal = rng.normal(0, noise, size=(EPISODES, 2))
    out = {}
    for row in SKILL:
        for col in SKILL:
            if row != col:
                out[f"{row} vs {col}"] = {"row": row, "col": col,
                                          "row_returns": (10 + SKILL[row] + deal[:, 0]).tolist(),
                                          "col_returns": (-10 + SKILL[col] + deal[:, 1]).tolist()}
    return out


def test_seat_outcomes_rate_every_player_the_same_and_duplicate_ones_order_them():
    players = list(SKILL)
    seat = compute_ratings(build_payoff(players, _results()), ["hunter", "prey"], distinct_roles=True)
    elos = {r["player"]: r["elo"] for r in seat}
    assert max(elos.values()) - min(elos.values()) < 1e-6  # the hunter seat won every episode: all equal
    dup_payoff = build_payoff(players, _results(noise=0.3), "duplicate")
    assert dup_payoff.rule == "duplicate" and dup_payoff.games[0, 1] == EPISODES
    rows = compute_ratings(dup_payoff, ["hunter", "prey"], distinct_roles=True)
    assert [r["player"] for r in rows] == ["strong", "fair", "weak"]
    for role in ("hunter", "prey"):  # each seat's own comparisons agree with the per-role payoffs
        assert [r["player"] for r in sorted(rows, key=lambda r: -r[f"elo_as_{role}"])] == ["strong", "fair", "weak"]
    assert rows[0]["openskill_mu"] > rows[-1]["openskill_mu"]


def test_a_draw_is_a_tie_in_both_seats_or_one_seat_each():
    players = ["a", "b"]
    results = {"a vs b": {"row": "a", "col": "b", "row_returns": [5.0, 5.0, 1.0], "col_returns": [0.0, -1.0, -1.0]},
               "b vs a": {"row": "b", "col": "a", "row_returns": [5.0, 4.0, 2.0], "col_returns": [0.0, 0.0, 0.0]}}
    p = build_payoff(players, results, "duplicate")
    # episode 0: ties in both seats -> draw; 1: a better in both -> a wins; 2: b better first, a better second
    assert [s for _, _, s in p.outcomes] == [0.5, 1.0, 0.5]
    assert p.wins[0, 1] == 2.0 and p.wins[1, 0] == 1.0 and p.games[0, 1] == 3
    assert p.role_wins[0][0, 1] == 0.5 + 1.0 + 0.0  # first seat: tie, win, loss
    assert p.role_wins[1][0, 1] == 0.5 + 1.0 + 1.0  # second seat: tie, win, win


def test_duplicate_schedules_play_both_seatings_on_the_same_episodes():
    players = [PlayerSpec(name=n, kind="random") for n in ("x", "y", "z")]
    dup = {t.key: t.seed for t in schedule(players, "mpe/simple_tag", {}, ((0,), (1,)), 4, 7, duplicate=True)}
    seat = {t.key: t.seed for t in schedule(players, "mpe/simple_tag", {}, ((0,), (1,)), 4, 7)}
    assert dup["x vs y"] == dup["y vs x"] and dup["x vs z"] != dup["x vs y"]
    assert seat["x vs y"] != seat["y vs x"]


def test_an_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="seat or duplicate"):
        build_payoff(["a", "b"], {}, "pairs")


def test_the_rule_follows_whether_the_sides_differ():
    import scenarios
    from marl.tournament.run import outcome_rule

    assert outcome_rule(scenarios.make("mpe/simple_tag")) == "duplicate"
    assert outcome_rule(scenarios.make("mpe/simple_push")) == "duplicate"
    assert outcome_rule(scenarios.make("classic/rrps")) == "seat"
