"""The meta-game of population training: which mixture of the members to train against next
(a meta-strategy solver) and how far a mixture is from an equilibrium (NashConv).

Payoffs are zero-sum, in one of two shapes:

* **symmetric** game (both sides draw from one population): an antisymmetric ``Z [n, n]``,
  ``Z[i, j]`` = what i wins from j, ``Z = -Z.T``; a solver returns one mixture ``sigma [n]``.
* **two-sided** game (two populations, e.g. simple_tag's adversaries vs good agents): ``Z [n_row,
  n_col]``, the row side's payoff (the column side gets ``-Z``); a solver returns
  ``(sigma_row, sigma_col)``.

Members are indexed in the order they joined, so the newest is the last. Build ``Z`` from match
results with :func:`zero_sum_payoff`.

Solvers are plug-ins: subclass :class:`MetaSolver`, implement ``solve_symmetric`` (and, if the
default is not right or too slow, ``solve_two_sided``), decorate it with
``@register_meta_solver("name")`` and build it with ``make_meta_solver("name", **options)``.
Built-ins: ``uniform`` (fictitious play), ``last`` (self-play), ``nash`` (PSRO with the
maximum-entropy Nash equilibrium, unique and split evenly over duplicated members) and
``alpharank``.
"""

from __future__ import annotations

import difflib

import numpy as np
from numpy.typing import ArrayLike

from marl.tournament.ratings.alpharank import alpharank, stationary_distribution, transition_matrix
from marl.tournament.ratings.nash import agent_vs_task, nash_averaging

META_SOLVERS: dict[str, type["MetaSolver"]] = {}
DISTRIBUTION_TOL = 1e-6  # how far from summing to 1 (or below 0) a given mixture may be


# ----------------------------------------------------------------------------- checks


def _matrix(payoff: ArrayLike) -> np.ndarray:
    Z = np.asarray(payoff, dtype=np.float64)
    if Z.ndim != 2 or Z.size == 0:
        raise ValueError(f"a meta-game payoff must be a non-empty 2-D matrix (got shape {Z.shape})")
    if not np.all(np.isfinite(Z)):
        raise ValueError("the meta-game payoff holds NaN or inf (a missing match?)")
    return Z


def _antisymmetric(payoff: ArrayLike) -> np.ndarray:
    Z = _matrix(payoff)
    if Z.shape[0] != Z.shape[1] or not np.allclose(Z, -Z.T, atol=1e-9 * max(1.0, np.abs(Z).max())):
        raise ValueError(f"a symmetric meta-game needs an antisymmetric matrix Z = -Z.T (got shape {Z.shape}); "
                         "use zero_sum_payoff(row, col, symmetric=True), or pass two_sided=True")
    return Z


def _distribution(sigma: ArrayLike, n: int, what: str) -> np.ndarray:
    """``sigma`` as a probability vector of length n (round-off below 0 clipped), else ValueError."""
    x = np.asarray(sigma, dtype=np.float64)
    if x.shape != (n,) or not np.all(np.isfinite(x)):
        raise ValueError(f"{what} must be {n} finite probabilities (got shape {x.shape})")
    if x.min() < -DISTRIBUTION_TOL or abs(x.sum() - 1.0) > DISTRIBUTION_TOL:
        raise ValueError(f"{what} is not a probability vector (min {x.min():.3g}, sum {x.sum():.6g})")
    x = np.clip(x, 0.0, None)
    return x / x.sum()


def _one_hot(n: int, i: int) -> np.ndarray:
    x = np.zeros(n)
    x[i] = 1.0
    return x


# ----------------------------------------------------------------------------- payoffs


def zero_sum_payoff(row_returns_mean: ArrayLike, col_returns_mean: ArrayLike, symmetric: bool = False) -> np.ndarray:
    """``Z = (row - col) / 2`` from each side's mean return in every match (row member i vs column
    member j), so general-sum results become the zero-sum game of who out-scores whom, in the
    returns' units. ``symmetric=True`` (one population, both seat orders played): also average the
    two orders, ``(Z - Z.T) / 2``, which makes Z exactly antisymmetric."""
    row, col = np.asarray(row_returns_mean, dtype=np.float64), np.asarray(col_returns_mean, dtype=np.float64)
    if row.shape != col.shape:
        raise ValueError(f"row and column returns differ in shape ({row.shape} vs {col.shape})")
    Z = (row - col) / 2.0
    return (Z - Z.T) / 2.0 if symmetric else Z


def symmetrise_two_sided(Z: ArrayLike) -> np.ndarray:
    """The symmetric game in which each player is a pair (row member i, column member j) and takes
    either side with probability 1/2: ``M[(i, j), (k, l)] = (Z[i, l] - Z[k, j]) / 2``, antisymmetric,
    ``[n_row * n_col]`` square (pair (i, j) at ``i * n_col + j``). Its equilibria are exactly the
    joint mixtures whose marginals are equilibria of the two-sided game, because ``M x`` depends
    on x's marginals only. (The smaller ``[[0, Z], [-Z.T, 0]]`` is not equivalent: its equilibria
    are those of the two-sided game only when the game's value is 0.)"""
    Z = _matrix(Z)
    n_row, n_col = Z.shape
    M = Z[:, None, None, :] - Z.T[None, :, :, None]  # [i, j, k, l] = Z[i, l] - Z[k, j]
    return M.reshape(n_row * n_col, n_row * n_col) / 2.0


# ----------------------------------------------------------------------------- solvers


class MetaSolver:
    """A meta-strategy solver: the mixture over the population to train the next member against.

    Call :meth:`solve`; it checks the payoff and the answer. Subclasses implement
    :meth:`solve_symmetric`; :meth:`solve_two_sided` defaults to solving :func:`symmetrise_two_sided`
    and taking the marginals, which is exact for an equilibrium solver but builds an
    ``[n_row * n_col]`` square matrix, so override it where the solver has a direct form.
    """

    name = ""

    def solve(self, payoff: ArrayLike, two_sided: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """``sigma [n]`` for a symmetric payoff; ``(sigma_row, sigma_col)`` with ``two_sided=True``."""
        if not two_sided:
            Z = _antisymmetric(payoff)
            return _distribution(self.solve_symmetric(Z), Z.shape[0], f"meta solver {self.name!r}'s answer")
        Z = _matrix(payoff)
        sigma_row, sigma_col = self.solve_two_sided(Z)
        return (_distribution(sigma_row, Z.shape[0], f"meta solver {self.name!r}'s row answer"),
                _distribution(sigma_col, Z.shape[1], f"meta solver {self.name!r}'s column answer"))

    def solve_symmetric(self, Z: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def solve_two_sided(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        joint = self.solve_symmetric(symmetrise_two_sided(Z)).reshape(Z.shape)
        return joint.sum(axis=1), joint.sum(axis=0)


def register_meta_solver(name: str):
    """Class decorator: make a :class:`MetaSolver` subclass buildable as ``make_meta_solver(name)``."""

    def deco(cls):
        if name in META_SOLVERS:
            raise ValueError(f"meta solver {name!r} is already registered")
        cls.name = name
        META_SOLVERS[name] = cls
        return cls

    return deco


def meta_solver_names() -> list[str]:
    return sorted(META_SOLVERS)


def make_meta_solver(name: str, **options) -> MetaSolver:
    """The registered solver ``name`` built with ``options`` (e.g. ``alpharank``'s alpha and m)."""
    if name not in META_SOLVERS:
        close = difflib.get_close_matches(str(name), meta_solver_names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown meta solver {name!r}.{hint} Valid: {', '.join(meta_solver_names())}")
    return META_SOLVERS[name](**options)


@register_meta_solver("uniform")
class UniformSolver(MetaSolver):
    """Fictitious play: every member so far, equally."""

    def solve_symmetric(self, Z):
        return np.full(Z.shape[0], 1.0 / Z.shape[0])

    def solve_two_sided(self, Z):
        return self.solve_symmetric(Z), self.solve_symmetric(Z.T)


@register_meta_solver("last")
class LastSolver(MetaSolver):
    """Self-play: all weight on the newest member (the last index; on each side when two-sided)."""

    def solve_symmetric(self, Z):
        return _one_hot(Z.shape[0], -1)

    def solve_two_sided(self, Z):
        return _one_hot(Z.shape[0], -1), _one_hot(Z.shape[1], -1)


@register_meta_solver("nash")
class NashSolver(MetaSolver):
    """PSRO: the maximum-entropy Nash equilibrium of the empirical meta-game. It is unique, so the
    answer does not depend on the LP solver's path, and it splits a member's weight evenly over
    copies of it, so duplicates do not change the mixture over distinct policies. Two-sided: the
    maximum-entropy maxmin strategies of each side (``agent_vs_task``), whatever the game's value."""

    def solve_symmetric(self, Z):
        return nash_averaging(Z).weights

    def solve_two_sided(self, Z):
        solution = agent_vs_task(Z)
        return solution.agent_weights, solution.task_weights


@register_meta_solver("alpharank")
class AlphaRankSolver(MetaSolver):
    """alpha-rank's stationary mass. Symmetric: single-population alpha-rank of Z (a mutant r invades
    s by the return gap ``Z[r, s] - Z[s, r] = 2 Z[r, s]``). Two-sided: two-population alpha-rank
    (Omidshafiei et al. 2019) over pairs (i, j), one side mutating at a time with fitness gap
    ``Z[i', j] - Z[i, j]`` (rows) or ``Z[i, j] - Z[i, j']`` (columns); each side gets its marginal."""

    def __init__(self, alpha: float = 100.0, m: int = 50, epsilon: float = 1e-4):
        if not alpha > 0 or m < 2:
            raise ValueError(f"alpharank needs alpha > 0 and m >= 2 (got alpha={alpha}, m={m})")
        self.alpha, self.m, self.epsilon = alpha, m, epsilon

    def solve_symmetric(self, Z):
        return alpharank(Z, alpha=self.alpha, m=self.m, epsilon=self.epsilon)

    def _side_chain(self, fitness: np.ndarray) -> np.ndarray:
        """One side's mutation chain with the other side fixed: ``fitness[r]`` is r's payoff, so the
        single-population chain of ``payoff[r, s] = fitness[r]`` has exactly the gaps needed."""
        n = fitness.shape[0]
        return transition_matrix(np.repeat(fitness[:, None], n, axis=1), self.alpha, self.m, self.epsilon)

    def solve_two_sided(self, Z):
        n_row, n_col = Z.shape
        if n_row + n_col == 2:
            return np.ones(1), np.ones(1)
        # a step mutates the row side with probability (n_row - 1) / (n_row + n_col - 2), as in the paper
        w_row = (n_row - 1) / (n_row + n_col - 2)
        T = np.zeros((n_row, n_col, n_row, n_col))
        for j in range(n_col):
            T[:, j, :, j] += w_row * self._side_chain(Z[:, j])
        for i in range(n_row):
            T[i, :, i, :] += (1.0 - w_row) * self._side_chain(-Z[i, :])
        joint = stationary_distribution(T.reshape(n_row * n_col, n_row * n_col)).reshape(n_row, n_col)
        return joint.sum(axis=1), joint.sum(axis=0)


# ----------------------------------------------------------------------------- NashConv


def nash_conv_symmetric(Z: ArrayLike, sigma: ArrayLike) -> float:
    """Both players' total gain from their best pure deviation when both play ``sigma``. In a
    symmetric zero-sum game sigma scores ``sigma @ Z @ sigma = 0`` against itself, so each player
    gains ``max_i (Z @ sigma)_i`` and NashConv is twice that; 0 exactly at an equilibrium. The max
    is >= 0 in exact arithmetic (sigma's own rows average to 0), so negatives are round-off -> 0."""
    Z = _antisymmetric(Z)
    sigma = _distribution(sigma, Z.shape[0], "sigma")
    return 2.0 * max(float(np.max(Z @ sigma)), 0.0)


def nash_conv_two_sided(Z: ArrayLike, sigma_row: ArrayLike, sigma_col: ArrayLike) -> float:
    """The row side's best payoff against ``sigma_col`` minus the column side's best (lowest row
    payoff) against ``sigma_row``: the sum of both sides' gains from deviating, 0 at an equilibrium."""
    Z = _matrix(Z)
    sigma_row = _distribution(sigma_row, Z.shape[0], "sigma_row")
    sigma_col = _distribution(sigma_col, Z.shape[1], "sigma_col")
    return max(float(np.max(Z @ sigma_col) - np.min(sigma_row @ Z)), 0.0)


def exploitability_symmetric(Z: ArrayLike, sigma: ArrayLike) -> float:
    """NashConv per player: what a best response wins from ``sigma``."""
    return nash_conv_symmetric(Z, sigma) / 2.0


def exploitability_two_sided(Z: ArrayLike, sigma_row: ArrayLike, sigma_col: ArrayLike) -> float:
    """NashConv per side (its mean over the two sides)."""
    return nash_conv_two_sided(Z, sigma_row, sigma_col) / 2.0


def embed_in_pool(sigma: ArrayLike, members_index: ArrayLike, pool_size: int) -> np.ndarray:
    """A mixture over some members as a mixture over the whole pool: ``sigma[k]`` goes to pool
    member ``members_index[k]`` (weights of a repeated index add up), every other member gets 0."""
    index = np.asarray(members_index, dtype=np.int64).reshape(-1)
    sigma = _distribution(sigma, index.shape[0], "sigma")
    if index.size and (index.min() < 0 or index.max() >= pool_size):
        raise ValueError(f"members_index must lie in [0, {pool_size}) (got {index.min()}..{index.max()})")
    full = np.zeros(pool_size)
    np.add.at(full, index, sigma)
    return full


def nash_conv_in_pool(Z_pool: ArrayLike, members_index: ArrayLike, sigma: ArrayLike) -> float:
    """NashConv of a meta-strategy over a sub-population with deviations drawn from the whole pool:
    how methods are compared on the union of all their policies (a method's mixture is only
    unexploitable if nobody in the pool beats it)."""
    Z = _antisymmetric(Z_pool)
    return nash_conv_symmetric(Z, embed_in_pool(sigma, members_index, Z.shape[0]))


def nash_conv_two_sided_in_pool(Z_pool: ArrayLike, row_index: ArrayLike, sigma_row: ArrayLike,
                                col_index: ArrayLike, sigma_col: ArrayLike) -> float:
    """:func:`nash_conv_in_pool` for a two-sided game: each side's mixture over some of that side's
    pool members, deviations over all of them."""
    Z = _matrix(Z_pool)
    return nash_conv_two_sided(Z, embed_in_pool(sigma_row, row_index, Z.shape[0]),
                               embed_in_pool(sigma_col, col_index, Z.shape[1]))
