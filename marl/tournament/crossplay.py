"""Cooperative cross-play: how well independently trained teams coordinate with partners they
never trained with.

For teams a and b (each a run trained on the whole scenario), cell ``[a, b]`` mixes them seat by
seat: for each seat s, agent s is played by team a and every other agent by team b; the cell is
the mean team return over all seats and episodes. The diagonal is self-play (a team with itself).
The gap is mean self-play minus mean cross-play: large gaps mean conventions that do not transfer.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import scenarios
from marl.tournament.backends import make_backend
from marl.tournament.matches import match_seed, run_episodes
from marl.tournament.population import PlayerSpec, check_player, checkpoint_players, unique_names


@dataclass(frozen=True)
class CrossplayTask:
    scenario: str
    overrides: tuple
    lead: PlayerSpec  # plays seat `seat`
    rest: PlayerSpec  # plays every other seat
    seat: int
    n_agents: int
    episodes: int
    seed: int
    greedy: bool = True

    @property
    def key(self) -> str:
        return f"{self.lead.name} @seat{self.seat} with {self.rest.name}"

    def play(self) -> dict:
        start = time.perf_counter()
        others = [i for i in range(self.n_agents) if i != self.seat]
        assignment = ((self.lead, [self.seat]), (self.rest, others)) if others else ((self.lead, [self.seat]),)
        returns = run_episodes(self.scenario, self.overrides, assignment, self.episodes, self.seed, self.greedy)
        return {"key": self.key, "lead": self.lead.name, "rest": self.rest.name, "seat": self.seat,
                "returns": returns.mean(axis=1).tolist(), "seconds": time.perf_counter() - start}


def run_crossplay(scenario: str, teams, episodes: int = 20, seed: int = 0, greedy: bool = True,
                  backend: str = "local", workers: int | None = None, address: str | None = None,
                  out: str | None = None, overrides: dict | None = None, retries: int = 2) -> dict:
    overrides = dict(overrides or {})
    sc = scenarios.make(scenario, **overrides)
    players = unique_names(checkpoint_players(teams))
    if len(players) < 2:
        raise ValueError(f"cross-play needs at least 2 trained teams (got {[p.name for p in players]}); "
                         "pass teams=RUN_DIRS or a glob")
    for p in players:
        check_player(p, scenario, overrides)
    frozen = tuple(sorted(overrides.items()))
    n = sc.n_agents
    tasks = []
    for a in players:
        for b in players:
            seats = [0] if a.name == b.name else range(n)  # self-play: one assignment covers it
            for s in seats:
                tasks.append(CrossplayTask(scenario, frozen, a, b, s, n, episodes,
                                           match_seed(seed, f"{a.name}@{s}", b.name), greedy))
    runner = make_backend(backend, workers, address)
    results, failures = {}, []
    try:
        queue, attempts = tasks, {t.key: 0 for t in tasks}
        while queue:
            retry = []
            for task, status, payload in runner.run(queue):
                attempts[task.key] += 1
                if status == "ok":
                    results[task.key] = payload
                elif attempts[task.key] <= retries:
                    retry.append(task)
                else:
                    failures.append({"key": task.key, "error": str(payload)})
            queue = retry
    finally:
        runner.close()
    names = [p.name for p in players]
    k = len(names)
    matrix = np.full((k, k), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            vals = [r["returns"] for r in results.values() if r["lead"] == a and r["rest"] == b]
            if vals:
                matrix[i, j] = float(np.mean(np.concatenate(vals)))
    off = ~np.eye(k, dtype=bool)
    self_play, cross_play = float(np.nanmean(np.diag(matrix))), float(np.nanmean(matrix[off]))
    summary = {"scenario": scenario, "teams": names, "matrix": matrix.tolist(), "self_play": self_play,
               "cross_play": cross_play, "gap": self_play - cross_play, "failed": failures}
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "crossplay.json").write_text(json.dumps(summary, indent=2))
        with open(folder / "crossplay.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["team (seat-by-seat lead)", *names])
            for i, a in enumerate(names):
                w.writerow([a, *(f"{v:.6g}" for v in matrix[i])])
        _plot(matrix, names, folder / "crossplay.png", scenario, self_play, cross_play)
        summary["out"] = str(folder)
    return summary


def _plot(matrix, names, path, scenario, self_play, cross_play) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.5 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{matrix[i, j]:.3g}", ha="center", va="center", fontsize=7, color="w")
    ax.set_title(f"{scenario}: self-play {self_play:.3g}, cross-play {cross_play:.3g}")
    fig.colorbar(im, ax=ax, label="team return")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
