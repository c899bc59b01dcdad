"""Elo ratings fitted by maximum likelihood (Bradley-Terry) on every result at once.

Sequential Elo updates depend on the order in which games are fed; here the ratings maximise the
likelihood of all results together, so they depend only on the totals ``wins[i, j]`` (episodes
won by i against j, draws counting half) and ``games[i, j]``. A weak Gaussian prior (``prior``,
the precision in natural-log units) keeps ratings finite when a player wins every game, and pins
the mean rating to ``base``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ELO_SCALE = 400.0 / np.log(10.0)  # natural-log strength -> Elo points (10x odds = 400 points)


@dataclass
class EloRatings:
    rating: np.ndarray  # [P] Elo points, mean = base
    stderr: np.ndarray  # [P] standard error (Laplace approximation of the posterior)
    # [P, P] posterior covariance. A rating's own stderr is mostly the prior's (the likelihood does not
    # see a common shift of all ratings); the difference of two ratings is what the games measure.
    cov: np.ndarray | None = None

    def diff_stderr(self, i: int, j: int) -> float:
        """Standard error of ``rating[i] - rating[j]``."""
        c = self.cov
        return float(np.sqrt(max(c[i, i] + c[j, j] - 2 * c[i, j], 0.0)))


def fit_elo(wins: np.ndarray, games: np.ndarray, prior: float = 1e-2, base: float = 1500.0,
            tol: float = 1e-10, max_iter: int = 100) -> EloRatings:
    """``wins[i, j]``: score of i against j (1 per win, 0.5 per draw); ``games[i, j]``: episodes
    between them (symmetric). Newton's method on the concave log-posterior."""
    wins = np.asarray(wins, dtype=np.float64)
    games = np.asarray(games, dtype=np.float64)
    if wins.shape != games.shape or wins.ndim != 2 or wins.shape[0] != wins.shape[1]:
        raise ValueError(f"wins and games must be square matrices of one shape (got {wins.shape}, {games.shape})")
    if not np.allclose(games, games.T):
        raise ValueError("games[i, j] must equal games[j, i] (every episode counts for both players)")
    if prior <= 0:
        raise ValueError(f"prior must be > 0 to keep ratings finite (got {prior})")
    n = wins.shape[0]
    r = np.zeros(n)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :])))  # P(i beats j)
        grad = (wins - games * p).sum(axis=1) - prior * r
        w = games * p * (1.0 - p)
        hess = w - np.diag(w.sum(axis=1)) - prior * np.eye(n)  # negative definite
        step = np.linalg.solve(hess, grad)
        r = r - step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :])))
    w = games * p * (1.0 - p)
    hess = w - np.diag(w.sum(axis=1)) - prior * np.eye(n)
    cov = np.linalg.inv(-hess) * ELO_SCALE**2
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return EloRatings(rating=base + ELO_SCALE * r, stderr=stderr, cov=cov)
