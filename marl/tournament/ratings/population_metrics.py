"""Population metrics of the repeated RPS benchmark (Lanctot et al. 2023), for each player.

With ``payoff[i, j]`` player i's mean return against j (both seatings pooled) and the other
members of the population as opponents:

- average return: the mean over the population of i's return (the paper's population return);
- worst-case return: the minimum over the population of i's return;
- within-population exploitability: the best return any member of the population gets against
  i (the best response chosen from the population): ``max_j payoff[j, i]``. In a zero-sum game
  it is minus the worst-case return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PopulationMetrics:
    average_return: np.ndarray
    worst_case_return: np.ndarray
    exploitability: np.ndarray
    best_responder: list[int]  # index of the population member that exploits i most


def population_metrics(payoff: np.ndarray, opponents: np.ndarray | None = None) -> PopulationMetrics:
    """``opponents`` (bool [P]) restricts who counts as the population (default: everyone);
    a player never counts as its own opponent."""
    payoff = np.asarray(payoff, dtype=np.float64)
    n = payoff.shape[0]
    pool = np.ones(n, dtype=bool) if opponents is None else np.asarray(opponents, dtype=bool)
    avg, worst, expl, resp = np.empty(n), np.empty(n), np.empty(n), []
    for i in range(n):
        others = pool.copy()
        others[i] = False
        if not others.any():
            raise ValueError("population metrics need at least one opponent besides the player")
        idx = np.flatnonzero(others)
        avg[i] = payoff[i, idx].mean()
        worst[i] = payoff[i, idx].min()
        against = payoff[idx, i]
        expl[i] = against.max()
        resp.append(int(idx[int(against.argmax())]))
    return PopulationMetrics(avg, worst, expl, resp)
