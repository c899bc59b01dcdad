"""OpenSkill (Weng-Lin, Plackett-Luce model) ratings from the ``openskill`` library.

OpenSkill is an online Bayesian method, so its result depends on the order of the games; here
every episode is fed in one canonical order (matches sorted by their key, episodes in order),
so the same results always give the same ratings, whatever order the matches finished in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OpenSkillRatings:
    mu: np.ndarray
    sigma: np.ndarray

    @property
    def ordinal(self) -> np.ndarray:
        """A conservative skill estimate: mu - 3 sigma."""
        return self.mu - 3.0 * self.sigma


def fit_openskill(players: list[str], outcomes: list[tuple[str, str, float]]) -> OpenSkillRatings:
    """``outcomes``: (a, b, score of a) per episode in canonical order; 1 win, 0.5 draw, 0 loss."""
    from openskill.models import PlackettLuce

    model = PlackettLuce()
    ratings = {p: model.rating(name=p) for p in players}
    for a, b, score in outcomes:
        ranks = [0, 0] if score == 0.5 else ([0, 1] if score > 0.5 else [1, 0])
        (ra,), (rb,) = model.rate([[ratings[a]], [ratings[b]]], ranks=ranks)
        ratings[a], ratings[b] = ra, rb
    return OpenSkillRatings(mu=np.array([ratings[p].mu for p in players]),
                            sigma=np.array([ratings[p].sigma for p in players]))
