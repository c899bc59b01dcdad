"""Rating methods on payoff matrices whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from marl.tournament.ratings import agent_vs_task, alpharank, fit_elo, fit_openskill, nash_averaging, population_metrics
from marl.tournament.ratings.alpharank import transition_matrix

RPS = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=float)
TRANSITIVE = np.array([[0, 1, 1], [-1, 0, 1], [-1, -1, 0]], dtype=float)  # 0 > 1 > 2


def with_copy(A: np.ndarray, i: int) -> np.ndarray:
    """The meta-game with a copy of player i appended (it ties with i)."""
    idx = list(range(A.shape[0])) + [i]
    return A[np.ix_(idx, idx)]


def test_nash_averaging_is_uniform_on_rps():
    res = nash_averaging(RPS)
    np.testing.assert_allclose(res.weights, [1 / 3] * 3, atol=1e-7)
    np.testing.assert_allclose(res.skill, 0.0, atol=1e-7)


def test_nash_averaging_on_a_transitive_game_puts_all_mass_on_the_best():
    res = nash_averaging(TRANSITIVE)
    np.testing.assert_allclose(res.weights, [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(res.skill, [0, -1, -1], atol=1e-9)


@pytest.mark.parametrize("copied", [0, 1, 3])
def test_adding_a_copy_leaves_every_other_players_skill_unchanged(copied):
    # an RPS cycle plus a fourth player that beats rock weakly: a non-trivial equilibrium
    A = np.array([[0, -1, 1, -0.5], [1, 0, -1, 0.2], [-1, 1, 0, 0.3], [0.5, -0.2, -0.3, 0]])
    base = nash_averaging(A)
    more = nash_averaging(with_copy(A, copied))
    np.testing.assert_allclose(more.skill[:4], base.skill, atol=1e-6)
    assert more.skill[4] == pytest.approx(base.skill[copied], abs=1e-6)
    # the copies share their mass equally (maximum entropy)
    assert more.weights[copied] == pytest.approx(more.weights[4], abs=1e-5)
    # unlike the plain average payoff, which copies do change
    assert not np.allclose(with_copy(A, copied).mean(axis=1)[:4], A.mean(axis=1))


def test_copies_split_the_mass_of_a_unique_equilibrium():
    more = nash_averaging(with_copy(RPS, 0))
    np.testing.assert_allclose(more.weights, [1 / 6, 1 / 3, 1 / 3, 1 / 6], atol=1e-6)
    np.testing.assert_allclose(more.skill, 0.0, atol=1e-7)


@pytest.mark.parametrize("seed", range(5))
def test_copy_invariance_on_random_games(seed):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(6, 6))
    A = M - M.T
    base = nash_averaging(A)
    copied = int(rng.integers(6))
    more = nash_averaging(with_copy(with_copy(A, copied), copied))  # two copies
    np.testing.assert_allclose(more.skill[:6], base.skill, atol=1e-6)
    np.testing.assert_allclose(more.weights[[copied, 6, 7]].sum(), base.weights[copied], atol=1e-5)


def test_nash_averaging_rejects_a_non_antisymmetric_matrix():
    with pytest.raises(ValueError, match="antisymmetric"):
        nash_averaging(np.ones((2, 2)))


def test_agent_vs_task_on_matching_pennies_and_a_dominated_task():
    # tasks 0 and 1 form matching pennies for the agents; task 2 is easy (every agent scores 1)
    S = np.array([[1, -1, 1], [-1, 1, 1]], dtype=float)
    res = agent_vs_task(S)
    assert res.value == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(res.agent_weights, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(res.task_weights, [0.5, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.agent_skill, [0, 0], atol=1e-6)
    assert res.task_difficulty[2] < -0.9  # the easy task is far from the equilibrium's difficulty


def test_alpharank_transitive_puts_all_mass_on_the_dominant_player():
    np.testing.assert_allclose(alpharank(TRANSITIVE, alpha=100.0), [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(alpharank(TRANSITIVE, alpha=np.inf, epsilon=1e-8), [1, 0, 0], atol=1e-5)


def test_alpharank_is_uniform_on_rps():
    for alpha in (0.1, 10.0, 100.0, np.inf):
        np.testing.assert_allclose(alpharank(RPS, alpha=alpha), [1 / 3] * 3, atol=1e-9)


def test_alpharank_small_alpha_approaches_uniform_and_rows_are_stochastic():
    C = transition_matrix(TRANSITIVE, alpha=1e-6, m=50)
    np.testing.assert_allclose(C.sum(axis=1), 1.0)
    assert (C >= 0).all()
    np.testing.assert_allclose(alpharank(TRANSITIVE, alpha=1e-6), [1 / 3] * 3, atol=1e-4)
    # large alpha does not overflow
    assert np.isfinite(transition_matrix(TRANSITIVE * 1000, alpha=1e4)).all()


def test_alpharank_rejects_bad_parameters():
    with pytest.raises(ValueError, match="population size m"):
        alpharank(RPS, m=1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        alpharank(RPS, alpha=0)


def transitive_results(strengths, games=40, seed=0):
    """Episode wins drawn from Bradley-Terry with the given strengths."""
    rng = np.random.default_rng(seed)
    n = len(strengths)
    wins, count = np.zeros((n, n)), np.zeros((n, n))
    outcomes = []
    for i in range(n):
        for j in range(i + 1, n):
            p = 1 / (1 + np.exp(strengths[j] - strengths[i]))
            for _ in range(games):
                win = float(rng.random() < p)
                wins[i, j] += win
                wins[j, i] += 1 - win
                count[i, j] += 1
                count[j, i] += 1
                outcomes.append((i, j, win))
    return wins, count, outcomes


def test_maximum_likelihood_elo_ranks_a_transitive_population_in_order():
    strengths = [2.0, 1.0, 0.0, -1.0, -2.0]
    wins, games, _ = transitive_results(strengths, games=60)
    elo = fit_elo(wins, games)
    assert list(np.argsort(-elo.rating)) == [0, 1, 2, 3, 4]
    assert elo.rating.mean() == pytest.approx(1500.0)
    assert (elo.stderr > 0).all()


def test_elo_of_a_player_that_always_wins_stays_finite():
    wins = np.array([[0, 10.0], [0, 0]])
    games = np.array([[0, 10.0], [10, 0]])
    elo = fit_elo(wins, games)
    assert np.isfinite(elo.rating).all() and elo.rating[0] > elo.rating[1] + 400


def test_elo_is_independent_of_result_order():
    _, _, outcomes = transitive_results([1.0, 0.0, -1.0], games=30, seed=1)
    rng = np.random.default_rng(5)
    results = []
    for order in (outcomes, [outcomes[k] for k in rng.permutation(len(outcomes))]):
        wins, games = np.zeros((3, 3)), np.zeros((3, 3))
        for i, j, win in order:
            wins[i, j] += win
            wins[j, i] += 1 - win
            games[i, j] += 1
            games[j, i] += 1
        results.append(fit_elo(wins, games).rating)
    np.testing.assert_array_equal(results[0], results[1])


def test_openskill_orders_a_transitive_population():
    _, _, outcomes = transitive_results([2.0, 0.0, -2.0], games=30)
    names = ["a", "b", "c"]
    res = fit_openskill(names, [(names[i], names[j], w) for i, j, w in outcomes])
    assert list(np.argsort(-res.mu)) == [0, 1, 2]
    assert (res.sigma < 25 / 3).all()


def test_population_metrics():
    P = np.array([[0, 2, -1], [-2, 0, 3], [1, -3, 0]], dtype=float)
    m = population_metrics(P)
    np.testing.assert_allclose(m.average_return, [0.5, 0.5, -1.0])
    np.testing.assert_allclose(m.worst_case_return, [-1, -2, -3])
    np.testing.assert_allclose(m.exploitability, [1, 2, 3])  # zero-sum: minus the worst case
    assert m.best_responder == [2, 0, 1]
    only_first_two = population_metrics(P, opponents=np.array([True, True, False]))
    np.testing.assert_allclose(only_first_two.average_return, [2, -2, -1])
