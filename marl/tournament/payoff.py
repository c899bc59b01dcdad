"""The payoff matrix of a tournament, from its finished matches.

``mean[i, j]`` is player i's mean episode return against j, both seatings pooled (i in the first
role against j in the second, and the other way round), with its standard deviation, the number
of episodes ``n`` and the standard error ``std / sqrt(n)``. The first role's own matrix
(``role_mean[i, j]``: i in the first role against j in the second) feeds agent-vs-task ratings.
Outcomes (``wins``, ``games``, ``outcomes``, from which Elo, OpenSkill and alpha-rank are computed):

- ``seat`` (symmetric scenarios such as rrps): an episode is won by the side with the higher return
  (mean over its agents); ties count half.
- ``duplicate`` (scenarios whose two sides differ, such as simple_tag): returns of different roles are
  not comparable (the adversaries' are >= 0, the prey's <= 0, whoever plays them), so players are
  compared seat by seat. Both seatings of a pair play the same episode seeds; for episode e, in each
  seat the player with the higher return there scores +1 and the other -1 (0 for a tie). The player
  with the positive total wins the pair of episodes; a total of 0 (a tie in both seats, or one seat
  each) is a draw. ``role_wins[r]`` / ``role_games`` keep the per-seat results, for ratings per role.
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
    rule: str = "seat"  # how outcomes were decided: seat | duplicate (module docstring)
    role_wins: tuple[np.ndarray, ...] = ()  # duplicate: per role, the score of i against j in that seat
    role_games: np.ndarray | None = None  # duplicate: episode pairs compared per (i, j)

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


def _duplicate_outcomes(players: list[str], results: dict[str, dict]):
    """Seat-by-seat comparisons of every pair whose two seatings are both played (module docstring)."""
    index = {p: i for i, p in enumerate(players)}
    P = len(players)
    wins, games = np.zeros((P, P)), np.zeros((P, P))
    role_wins = (np.zeros((P, P)), np.zeros((P, P)))
    outcomes = []
    by_pair = {(r["row"], r["col"]): r for r in results.values() if r["row"] in index and r["col"] in index}
    for a in players:
        for b in players:
            if index[a] >= index[b] or (a, b) not in by_pair or (b, a) not in by_pair:
                continue
            ab, ba = by_pair[(a, b)], by_pair[(b, a)]  # a in the first seat, then b in the first seat
            n = min(len(ab["row_returns"]), len(ba["row_returns"]))
            first = np.sign(np.asarray(ab["row_returns"][:n]) - np.asarray(ba["row_returns"][:n]))
            second = np.sign(np.asarray(ba["col_returns"][:n]) - np.asarray(ab["col_returns"][:n]))
            i, j = index[a], index[b]
            for r, seat in enumerate((first, second)):
                role_wins[r][i, j] += ((seat + 1) / 2).sum()
                role_wins[r][j, i] += ((1 - seat) / 2).sum()
            score = (np.sign(first + second) + 1) / 2  # 1: a won the pair of episodes, 0.5 a draw
            wins[i, j] += score.sum()
            wins[j, i] += (1 - score).sum()
            games[i, j] += n
            games[j, i] += n
            outcomes += [(a, b, float(s)) for s in score]
    return wins, games, outcomes, role_wins


def build_payoff(players: list[str], results: dict[str, dict], rule: str = "seat") -> Payoff:
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
    if rule == "seat":
        return Payoff(players, mean, std, n, role_mean, wins, games, outcomes)
    if rule != "duplicate":
        raise ValueError(f"outcome rule must be seat or duplicate (got {rule!r})")
    wins, games, outcomes, role_wins = _duplicate_outcomes(players, results)
    return Payoff(players, mean, std, n, role_mean, wins, games, outcomes, "duplicate", role_wins, games.copy())
