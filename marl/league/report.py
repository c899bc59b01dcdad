"""What a league writes when it stops: ``report.md`` with the per-generation table, ``nash_conv.png``
(exploitability per generation), ``nash_weights.png`` (each member's Nash weight per generation),
``payoff.png`` (the final meta-game) and, for a symmetric game, the tournament ratings of the
whole population (``ratings.csv``/``ratings.md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from marl.league.meta import make_meta_solver


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_nash_conv(generations: list[dict], path: Path, title: str) -> None:
    plt = _plt()
    g = [r["generation"] for r in generations]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(g, [r["nash_conv_trained_against"] for r in generations], "o-",
            label="NashConv of the mixture trained against (in the grown population)")
    ax.plot(g, [r["nash_conv"] for r in generations], "s--", label="NashConv of the meta-strategy after the generation")
    ax.set_xlabel("generation")
    ax.set_ylabel("NashConv (zero-sum return)")
    ax.set_title(title, fontsize=10)
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_nash_weights(generations: list[dict], members: list[list[dict]], sides: list[str], path: Path) -> None:
    """One panel per side: rows are members, columns generations, colour the Nash weight."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(sides), figsize=(5 * len(sides), max(3.0, 0.25 * len(members[0]) + 1.5)),
                             squeeze=False)
    for s, ax in enumerate(axes[0]):
        names = [m["name"] for m in members[s]]
        w = np.full((len(names), len(generations)), np.nan)
        for c, row in enumerate(generations):
            w[: len(row["nash"][s]), c] = row["nash"][s]
        im = ax.imshow(w, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xticks(range(len(generations)), [r["generation"] for r in generations])
        ax.set_xlabel("generation")
        ax.set_title(f"Nash weight ({sides[s]})", fontsize=10)
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_meta_game(Z: np.ndarray, rows: list[str], cols: list[str], path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(cols) + 2.5), max(4.0, 0.45 * len(rows) + 1.5)))
    lim = float(np.abs(Z).max()) or 1.0
    im = ax.imshow(Z, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    if Z.size <= 400:
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                ax.text(j, i, f"{Z[i, j]:.2g}", ha="center", va="center", fontsize=6)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="row's zero-sum payoff")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_league_report(out: Path, game, state: dict, Z: np.ndarray) -> Path:
    members, gens = state["members"], state["generations"]
    sides = list(game.sides)
    meta = state["settings"]["meta"]
    title = f"{game.scenario}: meta={meta}, seed {state['settings']['seed']}"
    if gens:
        plot_nash_conv(gens, out / "nash_conv.png", title)
        plot_nash_weights(gens, members, sides, out / "nash_weights.png")
    names = [[m["name"] for m in side] for side in members]
    plot_meta_game(Z, names[0], names[0] if game.symmetric else names[1], out / "payoff.png", f"{title}: meta-game")
    lines = [f"# League on {game.scenario}", "",
             f"meta-strategy `{meta}`, {len(gens)} generations, "
             f"{'one population (the sides are interchangeable)' if game.symmetric else 'one population per side'}; "
             f"{', '.join(f'{len(m)} {r} members' for m, r in zip(members, sides))}.", "",
             "| generation | NashConv of the mixture trained against | NashConv of the meta-strategy | "
             "response's eval return | train s | matches |", "|---:|---:|---:|---:|---:|---:|"]
    for r in gens:
        lines.append(f"| {r['generation']} | {r['nash_conv_trained_against']:.4g} | {r['nash_conv']:.4g} | "
                     + " / ".join(f"{v:.3g}" for v in r["response_eval"])
                     + f" | {r['train_s']:.0f} | {r['matches_played']} |")
    lines += ["", "NashConv: the sum over the two sides of what the best member of the population gains by "
              "deviating from the mixture (zero-sum payoff Z = (row return - column return) / 2). The first "
              "column measures the mixture each response was trained against in the population that includes "
              "the response: the response's measured gain. The second is the method's own output (the next "
              "generation's meta-strategy) in the population of that generation; it is 0 for PSRO's Nash by "
              "construction.", "", "![NashConv](nash_conv.png)", "", "![Nash weights](nash_weights.png)", "",
              "![meta-game](payoff.png)", ""]
    nash = make_meta_solver("nash")
    final = [nash.solve(Z)] if game.symmetric else list(nash.solve(Z, two_sided=True))
    lines += ["## Final Nash mixture", ""]
    for side, w in zip(sides, final):
        lines.append(f"- {side}: " + ", ".join(f"{n} {x:.3f}" for n, x in zip(names[sides.index(side)], w) if x > 1e-6))
    lines.append("")
    if game.symmetric:
        lines += _ratings_section(out, game, names[0])
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _ratings_section(out: Path, game, names: list[str]) -> list[str]:
    """The tournament stack's ratings of the whole population, from the league's own matches."""
    from marl.tournament.payoff import build_payoff
    from marl.tournament.report import compute_ratings, ratings_markdown, write_ratings
    from marl.tournament.store import ResultStore

    payoff = build_payoff(names, ResultStore(out / "matches").results())
    rows = compute_ratings(payoff, list(game.roles))
    write_ratings(rows, out)
    return ["## Ratings of the population (tournament stack)", "", ratings_markdown(rows)]
