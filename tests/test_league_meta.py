"""Meta-game maths for population training: the meta-strategy solvers and NashConv, on games whose
equilibria are computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from marl.league import (
    MetaSolver,
    exploitability_symmetric,
    exploitability_two_sided,
    make_meta_solver,
    meta_solver_names,
    nash_conv_in_pool,
    nash_conv_symmetric,
    nash_conv_two_sided,
    nash_conv_two_sided_in_pool,
    register_meta_solver,
    zero_sum_payoff,
)
from marl.league.meta import META_SOLVERS, NashSolver, symmetrise_two_sided

RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
# weighted RPS: paper beats rock by 1, rock beats scissors by 2, scissors beats paper by 1 -> Nash (1, 2, 1) / 4
WEIGHTED_RPS = np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -1.0], [-2.0, 1.0, 0.0]])
# matching pennies plus a column that always pays the row side 2, shifted by 3 so the value (3) is not 0
PENNIES_PLUS = np.array([[4.0, 2.0, 5.0], [2.0, 4.0, 5.0]])


def random_antisymmetric(n, seed):
    a = np.random.default_rng(seed).normal(size=(n, n))
    return a - a.T


def duplicate(Z, k):
    """The meta-game with a copy of member k appended (it plays exactly like k)."""
    order = list(range(len(Z))) + [k]
    return Z[np.ix_(order, order)]


@pytest.fixture
def own_solver():
    @register_meta_solver("test_softmax")
    class Softmax(MetaSolver):
        """Weight by how well each member does against the population on average."""

        def __init__(self, temperature=1.0):
            self.temperature = temperature

        def solve_symmetric(self, Z):
            w = np.exp(Z.mean(axis=1) / self.temperature)
            return w / w.sum()

    yield Softmax
    del META_SOLVERS["test_softmax"]


def test_builtin_solvers_are_registered():
    assert meta_solver_names() == ["alpharank", "last", "nash", "uniform"]


def test_nash_of_rps_is_uniform_and_unexploitable():
    sigma = make_meta_solver("nash").solve(RPS)
    np.testing.assert_allclose(sigma, [1 / 3] * 3, atol=1e-7)
    assert nash_conv_symmetric(RPS, sigma) == pytest.approx(0.0, abs=1e-7)


def test_pure_rock_has_nash_conv_two():
    # paper wins 1 from rock; each of the two players gains 1 by switching to it
    assert nash_conv_symmetric(RPS, [1.0, 0.0, 0.0]) == pytest.approx(2.0)
    assert exploitability_symmetric(RPS, [1.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert nash_conv_symmetric(RPS, [0.5, 0.5, 0.0]) == pytest.approx(1.0)  # paper wins 1/2 from half rock, half paper


def test_nash_of_weighted_rps_matches_the_hand_solution():
    sigma = make_meta_solver("nash").solve(WEIGHTED_RPS)
    np.testing.assert_allclose(sigma, [0.25, 0.5, 0.25], atol=1e-7)
    assert nash_conv_symmetric(WEIGHTED_RPS, sigma) == pytest.approx(0.0, abs=1e-7)


def test_dominated_strategy_gets_no_nash_weight():
    # a 4th member that plays like rock but scores 0.5 less against everyone (rock beats it by 0.5)
    weak_rock = RPS[0] - 0.5
    Z = np.zeros((4, 4))
    Z[:3, :3] = RPS
    Z[3, :3], Z[:3, 3] = weak_rock[:3], -weak_rock[:3]
    sigma = make_meta_solver("nash").solve(Z)
    np.testing.assert_allclose(sigma, [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-7)
    assert nash_conv_symmetric(Z, sigma) == pytest.approx(0.0, abs=1e-7)
    assert nash_conv_symmetric(Z, [0.0, 0.0, 0.0, 1.0]) == pytest.approx(2 * 1.5)  # paper beats it by 1.5


def test_two_sided_nash_of_pennies_with_a_dominated_column():
    sigma_row, sigma_col = make_meta_solver("nash").solve(PENNIES_PLUS, two_sided=True)
    np.testing.assert_allclose(sigma_row, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(sigma_col, [0.5, 0.5, 0.0], atol=1e-6)
    assert nash_conv_two_sided(PENNIES_PLUS, sigma_row, sigma_col) == pytest.approx(0.0, abs=1e-6)
    # row side plays (0.6, 0.4): rows still get 3 against the columns' mix, the columns now hold it to 2.8
    assert nash_conv_two_sided(PENNIES_PLUS, [0.6, 0.4], sigma_col) == pytest.approx(0.2)
    assert exploitability_two_sided(PENNIES_PLUS, [0.6, 0.4], sigma_col) == pytest.approx(0.1)
    # the columns putting weight on the dominated column: rows gain 0.5 * (5 - 3)
    assert nash_conv_two_sided(PENNIES_PLUS, sigma_row, [0.25, 0.25, 0.5]) == pytest.approx(1.0)


def test_two_sided_nash_with_a_nonzero_value():
    # rows: 2 p1 = p2 -> p = (1/3, 2/3); columns likewise q = (1/3, 2/3); value 2/3.
    # The [[0, Z], [-Z.T, 0]] embedding would put no weight on the columns here.
    Z = np.array([[2.0, 0.0], [0.0, 1.0]])
    sigma_row, sigma_col = make_meta_solver("nash").solve(Z, two_sided=True)
    np.testing.assert_allclose(sigma_row, [1 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(sigma_col, [1 / 3, 2 / 3], atol=1e-6)
    assert nash_conv_two_sided(Z, sigma_row, sigma_col) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_sided_nash_of_random_games_is_an_equilibrium(seed):
    Z = np.random.default_rng(seed).normal(size=(4, 6)) + 1.0
    sigma_row, sigma_col = make_meta_solver("nash").solve(Z, two_sided=True)
    assert nash_conv_two_sided(Z, sigma_row, sigma_col) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(seed + 10)
    for _ in range(5):
        worse = 0.8 * sigma_col + 0.2 * rng.dirichlet(np.ones(6))
        assert nash_conv_two_sided(Z, sigma_row, worse) > 1e-4


def test_default_two_sided_path_agrees_with_the_direct_one(own_solver):
    """A solver that only knows symmetric games gets two-sided ones through the role-symmetrised
    game; for the Nash solver its marginals are the direct two-sided answer."""

    class SymmetricOnlyNash(MetaSolver):
        solve_symmetric = NashSolver.solve_symmetric

    for Z in (PENNIES_PLUS, np.random.default_rng(3).normal(size=(3, 4))):
        direct = make_meta_solver("nash").solve(Z, two_sided=True)
        via_symmetric = SymmetricOnlyNash().solve(Z, two_sided=True)
        for a, b in zip(direct, via_symmetric):
            np.testing.assert_allclose(a, b, atol=1e-5)
    M = symmetrise_two_sided(PENNIES_PLUS)
    assert M.shape == (6, 6) and np.allclose(M, -M.T)
    assert M[0 * 3 + 2, 1 * 3 + 0] == pytest.approx((PENNIES_PLUS[0, 0] - PENNIES_PLUS[1, 2]) / 2)
    # NashConv agrees too: both sides' gains in the two-sided game = both players' in the symmetrised one
    p, q = np.array([0.6, 0.4]), np.array([0.2, 0.3, 0.5])
    assert nash_conv_symmetric(M, np.outer(p, q).ravel()) == pytest.approx(nash_conv_two_sided(PENNIES_PLUS, p, q))
    row, col = own_solver().solve(PENNIES_PLUS, two_sided=True)
    assert row.shape == (2,) and col.shape == (3,) and row.sum() == pytest.approx(1.0)


def test_uniform_and_last():
    Z = random_antisymmetric(4, 0)
    np.testing.assert_allclose(make_meta_solver("uniform").solve(Z), [0.25] * 4)
    np.testing.assert_allclose(make_meta_solver("last").solve(Z), [0, 0, 0, 1])
    row, col = make_meta_solver("uniform").solve(PENNIES_PLUS, two_sided=True)
    np.testing.assert_allclose(row, [0.5, 0.5])
    np.testing.assert_allclose(col, [1 / 3] * 3)
    row, col = make_meta_solver("last").solve(PENNIES_PLUS, two_sided=True)
    np.testing.assert_allclose(row, [0, 1])
    np.testing.assert_allclose(col, [0, 0, 1])
    assert make_meta_solver("last").solve(np.zeros((1, 1))).tolist() == [1.0]


def test_alpharank_is_a_distribution_and_uniform_on_rps():
    sigma = make_meta_solver("alpharank").solve(RPS)
    np.testing.assert_allclose(sigma, [1 / 3] * 3, atol=1e-6)
    for alpha in (0.1, 10.0, np.inf):
        sigma = make_meta_solver("alpharank", alpha=alpha, m=10).solve(random_antisymmetric(5, 1))
        assert sigma.min() >= 0 and sigma.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="m >= 2"):
        make_meta_solver("alpharank", m=1)


def test_two_sided_alpharank():
    # matching pennies is symmetric under swapping both sides' strategies: uniform marginals
    row, col = make_meta_solver("alpharank").solve(np.array([[1.0, -1.0], [-1.0, 1.0]]), two_sided=True)
    np.testing.assert_allclose(row, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(col, [0.5, 0.5], atol=1e-6)
    # the dominated column (always pays the rows 2 more) is left almost at once
    row, col = make_meta_solver("alpharank", alpha=10.0).solve(PENNIES_PLUS, two_sided=True)
    assert row.sum() == pytest.approx(1.0) and col.sum() == pytest.approx(1.0)
    assert col[2] < 1e-3 and col[0] == pytest.approx(col[1], abs=1e-6)
    # one member a side: nothing to rank
    row, col = make_meta_solver("alpharank").solve(np.array([[0.3]]), two_sided=True)
    assert row.tolist() == [1.0] and col.tolist() == [1.0]


@pytest.mark.parametrize("Z, k", [(RPS, 0), (WEIGHTED_RPS, 1), (random_antisymmetric(5, 4), 2)])
def test_duplicating_a_member_leaves_nash_and_nash_conv_unchanged(Z, k):
    nash = make_meta_solver("nash")
    base = nash.solve(Z)
    Zd = duplicate(Z, k)
    dup = nash.solve(Zd)
    assert dup[k] == pytest.approx(dup[-1], abs=1e-6)  # the weight is split evenly over the copies
    over_distinct = dup[:-1].copy()
    over_distinct[k] += dup[-1]
    np.testing.assert_allclose(over_distinct, base, atol=1e-6)
    assert nash_conv_symmetric(Zd, dup) == pytest.approx(nash_conv_symmetric(Z, base), abs=1e-6)
    # any mixture's NashConv only sees the copies' total weight
    sigma = np.random.default_rng(5).dirichlet(np.ones(len(Z)))
    split = np.append(sigma, sigma[k] / 2)
    split[k] /= 2
    assert nash_conv_symmetric(Zd, split) == pytest.approx(nash_conv_symmetric(Z, sigma))


def test_nash_conv_in_pool_sees_deviations_outside_the_subset():
    # a method that only found rock and paper: its Nash is pure paper, unexploitable among its own members ...
    members = [0, 1]
    sigma = make_meta_solver("nash").solve(RPS[np.ix_(members, members)])
    np.testing.assert_allclose(sigma, [0.0, 1.0], atol=1e-7)
    assert nash_conv_symmetric(RPS[np.ix_(members, members)], sigma) == pytest.approx(0.0, abs=1e-7)
    # ... but scissors, found by another method, wins 1 from it
    assert nash_conv_in_pool(RPS, members, sigma) == pytest.approx(2.0)
    assert nash_conv_in_pool(RPS, [2, 0, 1], [1 / 3] * 3) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="members_index"):
        nash_conv_in_pool(RPS, [0, 3], [0.5, 0.5])


def test_two_sided_nash_conv_in_pool():
    pennies = np.array([[1.0, -1.0], [-1.0, 1.0]])
    # each side found only its first strategy: an equilibrium of the 1 x 1 game, beaten in the pool
    assert nash_conv_two_sided(pennies[:1, :1], [1.0], [1.0]) == 0.0
    assert nash_conv_two_sided_in_pool(pennies, [0], [1.0], [0], [1.0]) == pytest.approx(2.0)
    assert nash_conv_two_sided_in_pool(pennies, [1, 0], [0.5, 0.5], [0, 1], [0.5, 0.5]) == pytest.approx(0.0)


def test_zero_sum_payoff():
    row = np.array([[1.0, 3.0], [2.0, 1.0]])  # row member's mean return in each match
    col = np.array([[1.0, 0.0], [4.0, 1.0]])  # the column member's
    np.testing.assert_allclose(zero_sum_payoff(row, col), [[0.0, 1.5], [-1.0, 0.0]])
    # member 0 out-scores member 1 by 3 in one seat order and by 2 in the other: Z = 2.5 / 2
    np.testing.assert_allclose(zero_sum_payoff(row, col, symmetric=True), [[0.0, 1.25], [-1.25, 0.0]])
    with pytest.raises(ValueError, match="shape"):
        zero_sum_payoff(row, col[:1])


def test_unknown_solver_names_the_valid_choices():
    with pytest.raises(ValueError) as err:
        make_meta_solver("nsah")
    msg = str(err.value)
    assert "\n" not in msg and "'nsah'" in msg and "Did you mean 'nash'?" in msg
    assert "Valid: alpharank, last, nash, uniform" in msg


def test_own_solver_through_the_registry(own_solver):
    assert "test_softmax" in meta_solver_names()
    solver = make_meta_solver("test_softmax", temperature=0.5)
    assert isinstance(solver, own_solver) and solver.name == "test_softmax"
    np.testing.assert_allclose(solver.solve(RPS), [1 / 3] * 3)
    sigma = solver.solve(WEIGHTED_RPS)  # mean payoffs (1, 0, -1) / 3 at temperature 0.5
    expected = np.exp(np.array([1.0, 0.0, -1.0]) / 1.5)
    np.testing.assert_allclose(sigma, expected / expected.sum())
    with pytest.raises(ValueError, match="already registered"):
        register_meta_solver("test_softmax")(own_solver)


def test_bad_payoffs_and_answers_are_rejected():
    with pytest.raises(ValueError, match="antisymmetric"):
        make_meta_solver("nash").solve(PENNIES_PLUS[:, :2])  # not antisymmetric: a two-sided game
    with pytest.raises(ValueError, match="NaN"):
        make_meta_solver("uniform").solve(np.array([[0.0, np.nan], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="probability"):
        nash_conv_symmetric(RPS, [0.5, 0.2, 0.2])

    class Broken(MetaSolver):
        name = "broken"

        def solve_symmetric(self, Z):
            return np.ones(Z.shape[0])

    with pytest.raises(ValueError, match="'broken'"):
        Broken().solve(RPS)
