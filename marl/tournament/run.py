"""Running a tournament: the population, the schedule, the backend, storage and the report.

    run_tournament(TournamentConfig(scenario="classic/rrps", bots="all", episodes=20), resume=False)

Finished matches are appended to ``results.jsonl`` as they complete; with ``resume`` the stored
ones are skipped. A match that raises is retried ``retries`` times and, if it still fails, is
written to ``failures.jsonl``, named in ``report.md`` and in the returned summary.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scenarios
from marl.tournament.backends import BACKENDS, make_backend
from marl.tournament.matches import schedule
from marl.tournament.payoff import build_payoff
from marl.tournament.population import PlayerSpec, bot_players, check_player, checkpoint_players, unique_names
from marl.tournament.report import RatingOptions, compute_ratings, write_report
from marl.tournament.store import ResultStore

# settings that change what a match returns: a resumed tournament must keep them
MATCH_SETTINGS = ("scenario", "overrides", "episodes", "seed", "greedy", "outcome")


class TournamentError(ValueError):
    """A user error in a tournament's settings."""


@dataclass
class TournamentConfig:
    scenario: str = ""
    players: Any = None  # run folders, globs or checkpoint files (comma-separated or a list)
    bots: Any = "none"  # all | none | random | comma-separated bot names
    episodes: int = 20
    seed: int = 0
    greedy: bool = False  # argmax actions instead of sampling from the policy
    self_play: bool = False  # also play each player against itself
    backend: str = "local"
    workers: int | None = None  # local pool size (0: in this process); Ray: CPUs of a local Ray
    address: str | None = None  # Ray cluster address (default: start a local Ray)
    retries: int = 2
    out: str | None = None
    alpha: float = 100.0
    m: int = 50
    progress: bool = True
    overrides: dict = field(default_factory=dict)  # scenario options (num_throws=100, ...)

    def validate(self) -> None:
        if not self.scenario:
            raise TournamentError("a tournament needs scenario=NAME (see `marl scenarios`)")
        if self.episodes < 1:
            raise TournamentError(f"episodes must be >= 1 (got {self.episodes})")
        if self.backend not in BACKENDS:
            raise TournamentError(f"unknown backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
        if self.retries < 0:
            raise TournamentError(f"retries must be >= 0 (got {self.retries})")


def config_from_items(items: dict[str, Any]) -> TournamentConfig:
    """``key=value`` items: tournament settings, and the scenario's own options."""
    names = {f.name for f in dataclasses.fields(TournamentConfig)} - {"overrides"}
    known = {k: v for k, v in items.items() if k in names}
    rest = {k: v for k, v in items.items() if k not in names}
    cfg = TournamentConfig(**known)
    cfg.validate()
    if rest:
        try:
            scenarios.check_overrides(cfg.scenario, rest)
        except scenarios.ScenarioError as exc:
            raise TournamentError(f"{exc}; tournament settings: {', '.join(sorted(names))}") from None
    cfg.overrides = rest
    if isinstance(cfg.workers, str):
        raise TournamentError(f"workers must be an integer (got {cfg.workers!r})")
    return cfg


def roles_and_seats(scenario) -> tuple[list[str], tuple[tuple[int, ...], tuple[int, ...]]]:
    teams = scenario.teams
    if len(teams) != 2:
        raise TournamentError(
            f"tournaments need a scenario with two sides; {scenario.name!r} has roles {list(teams)} "
            "(for cooperative scenarios use `marl crossplay`)"
        )
    roles = list(teams)
    seats = tuple(tuple(scenario.agents.index(a) for a in teams[r]) for r in roles)
    return roles, seats  # type: ignore[return-value]


def roles_differ(scenario, roles: list[str]) -> bool:
    """Whether the two sides differ (sizes or spaces), as in simple_tag; rrps's two seats do not."""
    a, b = (scenario.teams[r] for r in roles)
    return len(a) != len(b) or any(
        scenario.observation_spaces[x] != scenario.observation_spaces[y]
        or scenario.action_spaces[x] != scenario.action_spaces[y] for x, y in zip(a, b))


def build_population(cfg: TournamentConfig) -> list[PlayerSpec]:
    players = unique_names(checkpoint_players(cfg.players) + bot_players(cfg.scenario, cfg.bots))
    if len(players) < 2:
        raise TournamentError(f"a tournament needs at least 2 players (got {[p.name for p in players]}); "
                              "add players=RUN_DIRS and/or bots=all|random|NAMES")
    for p in players:
        check_player(p, cfg.scenario, cfg.overrides)
    return players


def _default_out(cfg: TournamentConfig) -> Path:
    return Path("tournaments") / f"{cfg.scenario.replace('/', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"


def _settings(cfg: TournamentConfig, rule: str) -> dict:
    return {"scenario": cfg.scenario, "overrides": cfg.overrides, "episodes": cfg.episodes, "seed": cfg.seed,
            "greedy": cfg.greedy, "outcome": rule}


def outcome_rule(scenario) -> str:
    """duplicate where the two sides differ (roles in the spec with other sizes or spaces), else seat."""
    roles, _ = roles_and_seats(scenario)
    return "duplicate" if roles_differ(scenario, roles) else "seat"


def _prepare_folder(out: Path, resume: bool, settings: dict) -> None:
    saved = out / "tournament.json"
    if saved.is_file():
        if not resume:
            raise TournamentError(f"{out} already holds a tournament; pass --resume to finish it, or choose out=...")
        before = json.loads(saved.read_text())
        changed = [k for k in MATCH_SETTINGS if json.dumps(before.get(k), sort_keys=True)
                   != json.dumps(settings[k], sort_keys=True)]
        if changed:
            raise TournamentError(
                f"cannot resume {out}: "
                f"{', '.join(f'{k}={before.get(k)!r} there vs {settings[k]!r} now' for k in changed)}"
            )
    elif resume:
        raise TournamentError(f"nothing to resume: {out} holds no tournament.json")


def run_tournament(cfg: TournamentConfig, resume: bool = False, backend=None) -> dict:
    """Play every missing match, then write the report. Returns a summary dict."""
    cfg.validate()
    scenario = scenarios.make(cfg.scenario, **cfg.overrides)
    roles, seats = roles_and_seats(scenario)
    players = build_population(cfg)
    out = Path(cfg.out) if cfg.out else _default_out(cfg)
    rule = outcome_rule(scenario)
    settings = _settings(cfg, rule)
    _prepare_folder(out, resume, settings)
    store = ResultStore(out)
    (out / "tournament.json").write_text(json.dumps(
        {**settings, "players": [dataclasses.asdict(p) for p in players], "roles": roles}, indent=2))
    tasks = schedule(players, cfg.scenario, cfg.overrides, seats, cfg.episodes, cfg.seed, cfg.greedy, cfg.self_play,
                     duplicate=rule == "duplicate")
    done = store.results()
    todo = [t for t in tasks if t.key not in done]
    store.clear_failures()  # earlier failures are retried now
    played, failures, start = 0, [], time.perf_counter()
    if todo:
        own_backend = backend is None
        backend = backend or make_backend(cfg.backend, cfg.workers, cfg.address)
        bar = _progress(len(tasks), len(tasks) - len(todo), cfg.progress)
        attempts = {t.key: 0 for t in todo}
        try:
            queue = todo
            while queue:
                retry = []
                for task, status, payload in backend.run(queue):
                    attempts[task.key] += 1
                    if status == "ok":
                        payload["attempts"] = attempts[task.key]
                        store.add(payload)
                        played += 1
                        bar.update(1)
                    elif attempts[task.key] <= cfg.retries:
                        print(f"match {task.key} failed (attempt {attempts[task.key]}), retrying: "
                              f"{str(payload).splitlines()[0]}", file=sys.stderr)
                        retry.append(task)
                    else:
                        record = {"key": task.key, "row": task.row.name, "col": task.col.name,
                                  "attempts": attempts[task.key], "error": str(payload)}
                        store.add_failure(record)
                        failures.append(record)
                        bar.update(1)
                queue = retry
        finally:
            bar.close()
            if own_backend:
                backend.close()
    wall = time.perf_counter() - start
    results = store.results()
    names = [p.name for p in players]
    payoff = build_payoff(names, results, rule)
    rows = compute_ratings(payoff, roles, RatingOptions(alpha=cfg.alpha, m=cfg.m),
                           distinct_roles=rule == "duplicate")
    info = {**settings, "backend": cfg.backend, "alpha": cfg.alpha, "m": cfg.m,
            "matches_total": len(tasks), "matches_done": sum(t.key in results for t in tasks)}
    report = write_report(out, payoff, rows, info, failures)
    return {"out": str(out), "report": str(report), "played": played, "skipped": len(tasks) - len(todo),
            "failed": failures, "matches": len(tasks), "wall_s": wall, "payoff": payoff, "ratings": rows}


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kw) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, enabled: bool, unit: str = "match", desc: str = "matches"):
    """A tqdm bar, or one that does nothing when ``enabled`` is false (also used by ``marl league``)."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)
