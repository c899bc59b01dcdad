"""Single-population alpha-rank (Omidshafiei et al. 2019).

A population of ``m`` individuals plays the meta-game; a mutant strategy r invades a resident
population of s with fixation probability ``rho = (1 - exp(-u)) / (1 - exp(-m u))`` where
``u = alpha * (payoff[r, s] - payoff[s, r])`` (``1/m`` when u = 0). The Markov chain over
monomorphic populations moves from s to r with probability ``rho / (P - 1)``; alpha-rank is its
stationary distribution. ``alpha=inf`` gives the infinite-alpha limit (rho -> 1 for a better
mutant, 0 for a worse one, 1/m for a tie), made irreducible, as in the paper, by mixing every
transition with ``epsilon`` of the uniform mutation so the stationary distribution is unique.
"""

from __future__ import annotations

import numpy as np


def _log_fixation(u: np.ndarray, m: int) -> np.ndarray:
    """log rho(u) computed without overflow for large |u|."""
    out = np.full(u.shape, -np.log(m), dtype=np.float64)
    pos, neg = u > 1e-12, u < -1e-12
    # u > 0: rho = (1 - e^-u) / (1 - e^-mu)
    out[pos] = np.log(-np.expm1(-u[pos])) - np.log(-np.expm1(-m * u[pos]))
    # u < 0: rho = (e^-u - 1) / (e^-mu - 1) = e^{(m-1)u} * (1 - e^u) / (1 - e^{mu}) after factoring e^-mu
    x = -u[neg]  # > 0
    out[neg] = (x + np.log(-np.expm1(-x))) - (m * x + np.log(-np.expm1(-m * x)))
    return out


def transition_matrix(payoff: np.ndarray, alpha: float = 100.0, m: int = 50, epsilon: float = 1e-4) -> np.ndarray:
    payoff = np.asarray(payoff, dtype=np.float64)
    n = payoff.shape[0]
    if payoff.ndim != 2 or payoff.shape[1] != n:
        raise ValueError(f"alpha-rank needs a square payoff matrix (got shape {payoff.shape})")
    if m < 2:
        raise ValueError(f"the population size m must be >= 2 (got {m})")
    if not (alpha > 0):
        raise ValueError(f"alpha must be > 0 (got {alpha}); use alpha=inf for the infinite-alpha limit")
    if n == 1:
        return np.ones((1, 1))
    diff = payoff - payoff.T  # diff[r, s] = payoff[r, s] - payoff[s, r]: mutant r vs resident s
    if np.isinf(alpha):
        rho = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 1.0 / m))
        rho = (1.0 - epsilon) * rho + epsilon / m
    else:
        rho = np.exp(_log_fixation(alpha * diff, m))
    C = rho.T / (n - 1)  # C[s, r] = rho(r invades s) / (n - 1)
    np.fill_diagonal(C, 0.0)
    np.fill_diagonal(C, 1.0 - C.sum(axis=1))
    return C


def stationary_distribution(C: np.ndarray) -> np.ndarray:
    """pi with pi C = pi, sum 1 (least squares on the stacked system)."""
    n = C.shape[0]
    lhs = np.vstack([C.T - np.eye(n), np.ones((1, n))])
    rhs = np.concatenate([np.zeros(n), [1.0]])
    pi, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def alpharank(payoff: np.ndarray, alpha: float = 100.0, m: int = 50, epsilon: float = 1e-4) -> np.ndarray:
    """Stationary mass of each strategy; ``payoff[i, j]`` is i's payoff against j."""
    return stationary_distribution(transition_matrix(payoff, alpha, m, epsilon))
