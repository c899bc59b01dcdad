"""Ratings from a payoff matrix, and the files a tournament writes.

``ratings.csv``/``ratings.md``: one row per player, sorted by Elo: maximum-likelihood Elo (with
standard error), OpenSkill mu/sigma, Nash-averaging mass and skill, alpha-rank mass, and the
population metrics (average return, worst-case return, within-population exploitability).
Scenarios with two different roles (simple_tag's adversaries and prey) also get agent-vs-task
Nash averaging per role. ``report.md`` puts the tables and pictures together; ``payoff.png`` is
the payoff heatmap ordered by Elo and ``ratings.png`` compares the ratings.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marl.tournament.payoff import Payoff
from marl.tournament.ratings import agent_vs_task, alpharank, fit_elo, fit_openskill, nash_averaging, population_metrics


@dataclass
class RatingOptions:
    alpha: float = 100.0  # alpha-rank selection intensity (on win rates in [0, 1]); inf for the limit
    m: int = 50  # alpha-rank population size
    elo_prior: float = 1e-2


def compute_ratings(payoff: Payoff, roles: list[str] | None = None, options: RatingOptions | None = None,
                    distinct_roles: bool = False) -> list[dict]:
    """One dict per player, sorted by Elo (best first). ``distinct_roles``: the two roles are not
    interchangeable (simple_tag's 3 adversaries vs 1 prey), so agent-vs-task per role is added."""
    opt = options or RatingOptions()
    players = payoff.players
    if len(players) < 2:
        raise ValueError("ratings need at least two players")
    elo = fit_elo(payoff.wins, payoff.games, prior=opt.elo_prior)
    skill = fit_openskill(players, payoff.outcomes)
    nash = nash_averaging(payoff.antisymmetric())
    scale = max(1.0, float(np.abs(payoff.antisymmetric()).max()))
    nash_skill = np.where(np.abs(nash.skill) < 1e-7 * scale, 0.0, nash.skill)  # solver round-off -> 0
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.where(payoff.games > 0, payoff.wins / np.maximum(payoff.games, 1), 0.5)
    np.fill_diagonal(win_rate, 0.5)
    alpha = alpharank(win_rate, alpha=opt.alpha, m=opt.m)
    alpha = np.where(alpha < 1e-12, 0.0, alpha)  # round-off of the stationary solve
    filled = np.where(np.isfinite(payoff.mean), payoff.mean, 0.0)
    pop = population_metrics(filled)
    rows = []
    for i, p in enumerate(players):
        rows.append({
            "player": p,
            "elo": elo.rating[i], "elo_stderr": elo.stderr[i],
            "openskill_mu": skill.mu[i], "openskill_sigma": skill.sigma[i],
            "nash_weight": nash.weights[i], "nash_skill": nash_skill[i],
            "alpharank": alpha[i],
            "avg_return": pop.average_return[i], "worst_case_return": pop.worst_case_return[i],
            "exploitability": pop.exploitability[i], "best_responder": players[pop.best_responder[i]],
        })
    if distinct_roles and roles and len(roles) == 2:
        S = payoff.role_mean.copy()
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a player with no finished match: NaN row
            row_means = np.nan_to_num(np.nanmean(np.where(np.isfinite(S), S, np.nan), axis=1))
        S = np.where(np.isfinite(S), S, row_means[:, None])  # unplayed self-play cells: the row's mean
        avt = agent_vs_task(np.nan_to_num(S))
        for i, row in enumerate(rows):
            row[f"nash_as_{roles[0]}"] = _clean(avt.agent_skill[i])
            row[f"nash_as_{roles[1]}"] = _clean(avt.task_difficulty[i])
    if payoff.role_wins and roles and len(roles) == 2:  # duplicate outcomes: Elo in each seat alone
        for r, role in enumerate(roles):
            per_role = fit_elo(payoff.role_wins[r], payoff.role_games, prior=opt.elo_prior)
            for i, row in enumerate(rows):
                row[f"elo_as_{role}"], row[f"elo_as_{role}_stderr"] = per_role.rating[i], per_role.stderr[i]
    ranked = sorted(range(len(players)), key=lambda i: -elo.rating[i])
    for k, i in enumerate(ranked):  # what the games say about each gap in the ranking
        below = ranked[k + 1] if k + 1 < len(ranked) else None
        rows[i]["elo_gap_to_next_stderr"] = elo.diff_stderr(i, below) if below is not None else float("nan")
    return sorted(rows, key=lambda r: -r["elo"])


def _clean(x: float, tol: float = 1e-6) -> float:
    return 0.0 if abs(x) < tol else float(x)


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def write_ratings(rows: list[dict], folder: Path) -> None:
    cols = list(rows[0])
    with open(folder / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r[c] if isinstance(r[c], str) else f"{r[c]:.6g}" for c in cols])
    (folder / "ratings.md").write_text(ratings_markdown(rows))


def ratings_markdown(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| rank | " + " | ".join(cols) + " |", "|---:|" + "|".join("---" if c in ("player", "best_responder")
                                                                        else "---:" for c in cols) + "|"]
    for k, r in enumerate(rows, 1):
        lines.append(f"| {k} | " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def plot_payoff(payoff: Payoff, order: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = [payoff.players.index(p) for p in order]
    m = payoff.mean[np.ix_(idx, idx)]
    n = len(order)
    size = max(5.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    lim = np.nanmax(np.abs(m)) if np.isfinite(m).any() else 1.0
    im = ax.imshow(m, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_xticks(range(n), order, rotation=90)
    ax.set_yticks(range(n), order)
    ax.set_xlabel("opponent")
    ax.set_ylabel("player (ordered by Elo, best first)")
    ax.set_title(title)
    if n <= 24:
        for i in range(n):
            for j in range(n):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.3g}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="player's mean return")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ratings(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["player"] for r in rows][::-1]
    panels = [("elo", "Elo (ML, ± s.e.)", "elo_stderr"), ("nash_skill", "Nash-averaged skill", None),
              ("alpharank", "alpha-rank mass", None), ("avg_return", "average return vs population", None)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), max(3.0, 0.3 * len(rows) + 1)), sharey=True)
    for ax, (key, label, err) in zip(axes, panels):
        vals = [r[key] for r in rows][::-1]
        errs = [r[err] for r in rows][::-1] if err else None
        left = min(vals) - 50 if key == "elo" else 0
        ax.barh(names, np.asarray(vals) - left, left=left, xerr=errs, color="tab:blue")
        ax.set_title(label, fontsize=10)
        ax.axvline(0 if key != "elo" else 1500, color="grey", lw=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


OUTCOME_TEXT = {
    "seat": "Outcomes (seat): the two sides are interchangeable, so an episode is won by the side with the "
            "higher team return; ties count half.",
    "duplicate": "Outcomes (duplicate): the two sides differ, and a role's returns say more about the role than "
                 "about who plays it (simple_tag's adversaries score >= 0 and its prey <= 0 whatever they do), so "
                 "comparing them would rate the seat. Both seatings of a pair play the same episode seeds; in each "
                 "seat the player with the higher return there gets +1, the other -1; a positive total wins that "
                 "pair of episodes, 0 (ties, or one seat each) is a draw. Elo, OpenSkill and alpha-rank use these "
                 "outcomes; elo_as_ROLE rates each seat's comparisons alone.",
}


def write_report(folder: Path, payoff: Payoff, rows: list[dict], info: dict, failures: list[dict]) -> Path:
    folder = Path(folder)
    payoff.write_csv(folder / "payoff.csv")
    write_ratings(rows, folder)
    order = [r["player"] for r in rows]
    plot_payoff(payoff, order, folder / "payoff.png", f"{info['scenario']}: payoff")
    plot_ratings(rows, folder / "ratings.png")
    lines = [
        f"# Tournament on {info['scenario']}",
        "",
        f"{len(payoff.players)} players, {info['matches_done']}/{info['matches_total']} matches, "
        f"{info['episodes']} episodes per match (both seatings played), seed {info['seed']}, "
        f"{'greedy' if info.get('greedy') else 'sampled'} actions, backend {info['backend']}.",
        f"Scenario options: {info.get('overrides') or 'defaults'}.",
        "",
    ]
    if failures:
        lines += ["## Failed matches", "", "These matches failed after every retry; their cells are missing:", ""]
        lines += [f"- `{f['key']}` ({f.get('attempts', '?')} attempts): {f['error'].splitlines()[0]}" for f in failures]
        lines.append("")
    lines += ["## Ratings", "", ratings_markdown(rows), "![ratings](ratings.png)", "",
              "## Payoff (row player's mean return against the column player, ordered by Elo)", "",
              "![payoff](payoff.png)", "",
              OUTCOME_TEXT[payoff.rule], "",
              "Elo: maximum likelihood (Bradley-Terry) on all the outcomes above; elo_stderr is mostly the prior's "
              "(the games do not fix a common shift of all ratings), elo_gap_to_next_stderr is the standard error of "
              "the gap to the next player down, which is what the games measure. "
              "OpenSkill: Plackett-Luce, episodes in canonical order. Nash: maximum-entropy Nash equilibrium "
              "of (P - P^T)/2, skill = A p* (0 on the support). alpha-rank: single population on win rates "
              f"(alpha={info.get('alpha')}, m={info.get('m')}). Population metrics over the other players: "
              "average and worst-case return, and exploitability = the best return any player gets against "
              "this one.", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
