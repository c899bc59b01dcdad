"""The payoff matrix of a tournament, from its finished matches.

``mean[i, j]`` is player i's mean episode return against j, both seatings pooled (i in the first
role against j in the second, and the other way round), with its standard deviation, the number
of episodes ``n`` and the standard error ``std / sqrt(n)``. The first role's own matrix
(``role_mean[i, j]``: i in the first role against j in the second) feeds agent-vs-task ratings.
An episode is won by the side with the higher return (mean over its agents); ties count half.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Payoff:
    players: list[str]
    mean: np.ndarray  # [P, P] NaN where no match was played
    std: np.ndarray
    n: np.ndarray  # [P, P] episodes
    role_mean: np.ndarray  # [P, P] row player's return in the first role, column player in the second
    wins: np.ndarray  # [P, P] score of i against j (win 1, draw 0.5), both seatings
    games: np.ndarray  # [P, P] episodes between i and j, both seatings (symmetric)
    outcomes: list[tuple[str, str, float]]  # (a, b, score of a) per episode, canonical order

    @property
    def stderr(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.std / np.sqrt(self.n)

    @property
    def complete(self) -> bool:
        off = ~np.eye(len(self.players), dtype=bool)
        return bool(np.isfinite(self.mean[off]).all())

    def antisymmetric(self) -> np.ndarray:
        """The zero-sum meta-game ``(P - P^T) / 2`` (missing cells count 0)."""
        m = np.nan_to_num(self.mean)
        np.fill_diagonal(m, 0.0)
        return (m - m.T) / 2.0

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["player", "opponent", "mean", "std", "n", "stderr"])
            for i, a in enumerate(self.players):
                for j, b in enumerate(self.players):
                    if self.n[i, j] > 0:
                        w.writerow([a, b, f"{self.mean[i, j]:.6g}", f"{self.std[i, j]:.6g}", int(self.n[i, j]),
                                    f"{self.stderr[i, j]:.6g}"])


def build_payoff(players: list[str], results: dict[str, dict]) -> Payoff:
    index = {p: i for i, p in enumerate(players)}
    n_players = len(players)
    samples: list[list[list[float]]] = [[[] for _ in players] for _ in players]
    role_sum = np.zeros((n_players, n_players))
    role_n = np.zeros((n_players, n_players))
    wins = np.zeros((n_players, n_players))
    games = np.zeros((n_players, n_players))
    outcomes = []
    for key in sorted(results):
        r = results[key]
        if r["row"] not in index or r["col"] not in index:
            continue  # a player no longer in the population
        i, j = index[r["row"]], index[r["col"]]
        rows, cols = np.asarray(r["row_returns"], float), np.asarray(r["col_returns"], float)
        samples[i][j].extend(rows.tolist())
        samples[j][i].extend(cols.tolist())
        role_sum[i, j] += rows.sum()
        role_n[i, j] += len(rows)
        if i != j:
            score = np.where(rows > cols, 1.0, np.where(rows < cols, 0.0, 0.5))
            wins[i, j] += score.sum()
            wins[j, i] += (1.0 - score).sum()
            games[i, j] += len(score)
            games[j, i] += len(score)
            outcomes += [(r["row"], r["col"], float(s)) for s in score]
    mean = np.full((n_players, n_players), np.nan)
    std = np.full((n_players, n_players), np.nan)
    n = np.zeros((n_players, n_players), dtype=np.int64)
    for i in range(n_players):
        for j in range(n_players):
            if samples[i][j]:
                x = np.asarray(samples[i][j])
                mean[i, j], std[i, j], n[i, j] = x.mean(), x.std(ddof=1) if len(x) > 1 else 0.0, len(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        role_mean = np.where(role_n > 0, role_sum / np.maximum(role_n, 1), np.nan)
    return Payoff(players, mean, std, n, role_mean, wins, games, outcomes)
