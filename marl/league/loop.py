"""``marl league``: a population that trains itself (PSRO, fictitious play, self-play).

Each generation (1) solves the empirical meta-game of the current population for a meta-strategy
(``meta=nash`` is PSRO, ``uniform`` fictitious play, ``last`` self-play, ``alpharank``), (2) trains a
best response to it with ``marl train`` and fixed opponents drawn from that meta-strategy (one per
side in a game whose two sides differ, trained in parallel), (3) adds the responses and plays only
the matches the payoff matrix is missing.

Everything lands in the league folder as it finishes: each response's run folder under ``runs/``,
each match in ``matches/results.jsonl``, the population and the per-generation numbers in
``league.json``. A killed league resumes (``--resume``): finished responses and matches are kept,
an interrupted response continues from its latest checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import scenarios
from marl import checkpoint as ckpt
from marl.league.meta import (
    make_meta_solver,
    meta_solver_names,
    nash_conv_symmetric,
    nash_conv_two_sided,
    zero_sum_payoff,
)
from marl.tournament.backends import BACKENDS, make_backend
from marl.tournament.matches import MatchTask, match_seed, schedule
from marl.tournament.payoff import build_payoff
from marl.tournament.population import PlayerSpec, bot_players, checkpoint_players
from marl.tournament.run import _progress as progress_bar
from marl.tournament.run import roles_and_seats, roles_differ
from marl.tournament.store import ResultStore

# settings that change what the league computes: a resumed league must keep them
LEAGUE_SETTINGS = ("scenario", "overrides", "meta", "initial", "train", "episodes", "seed", "greedy")
RESERVED_TRAIN_KEYS = ("scenario", "scenario_args", "seed", "out", "resume", "opponents")


class LeagueError(ValueError):
    """League settings that cannot be used; the message says what would be right."""


@dataclass
class LeagueConfig:
    scenario: str = ""
    meta: str = "nash"  # meta-strategy solver: nash (PSRO), uniform (fictitious play), last (self-play), alpharank
    generations: int = 5
    initial: Any = "random"  # the first members (each side): random, bot names, run folders
    train: dict = field(default_factory=dict)  # TrainConfig keys for every best response (algo, total_steps, ...)
    episodes: int = 16  # per match
    seed: int = 0
    greedy: bool = False  # matches and opponents take the most likely action instead of sampling
    backend: str = "local"
    workers: int | None = None  # local pool size (0: in this process); Ray: CPUs of a local Ray
    address: str | None = None
    out: str | None = None
    progress: bool = True
    overrides: dict = field(default_factory=dict)  # scenario options

    def validate(self) -> None:
        if not self.scenario:
            raise LeagueError("a league needs scenario=NAME (a two-sided scenario, see `marl scenarios`)")
        if self.meta not in meta_solver_names():
            valid = ", ".join(meta_solver_names())
            raise LeagueError(f"meta={self.meta!r} is not a meta-strategy solver; valid: {valid}")
        if self.generations < 1 or self.episodes < 1:
            raise LeagueError(f"generations and episodes must be >= 1 (got {self.generations}, {self.episodes})")
        if self.backend not in BACKENDS:
            raise LeagueError(f"backend={self.backend!r} is not valid; valid: {', '.join(BACKENDS)}")
        reserved = sorted(set(self.train) & set(RESERVED_TRAIN_KEYS))
        if reserved:
            raise LeagueError(f"train.{reserved[0]} is set by the league itself (reserved: "
                              f"{', '.join(RESERVED_TRAIN_KEYS)}); give the scenario's options at top level")


def config_from_items(items: dict[str, Any]) -> LeagueConfig:
    """``key=value`` items (``train.*`` nested): league settings, and the scenario's own options."""
    names = {f.name for f in dataclasses.fields(LeagueConfig)} - {"overrides"}
    cfg = LeagueConfig(**{k: v for k, v in items.items() if k in names})
    cfg.validate()
    rest = {k: v for k, v in items.items() if k not in names}
    if rest:
        try:
            scenarios.check_overrides(cfg.scenario, rest)
        except scenarios.ScenarioError as exc:
            raise LeagueError(f"{exc}; league settings: {', '.join(sorted(names))}") from None
    cfg.overrides = rest
    return cfg


# ---- the game: one population (symmetric) or one per side ---------------------------------------------


@dataclass(frozen=True)
class Game:
    scenario: str
    overrides: tuple
    roles: tuple[str, ...]
    seats: tuple
    symmetric: bool  # the two sides are interchangeable (rrps): one population plays both

    @property
    def sides(self) -> tuple[str, ...]:
        """The roles that have a population of their own (symmetric: the first role's learns)."""
        return self.roles[:1] if self.symmetric else self.roles

    @staticmethod
    def of(cfg: LeagueConfig) -> "Game":
        sc = scenarios.make(cfg.scenario, **cfg.overrides)
        try:
            roles, seats = roles_and_seats(sc)
        except ValueError as exc:
            raise LeagueError(str(exc)) from None
        return Game(cfg.scenario, tuple(sorted(cfg.overrides.items())), tuple(roles), seats,
                    not roles_differ(sc, roles))


def _initial_members(cfg: LeagueConfig, game: Game) -> list[list[dict]]:
    items = cfg.initial if isinstance(cfg.initial, list) else [s for s in str(cfg.initial).split(",") if s.strip()]
    out = []
    for role in game.sides:
        members = []
        for item in items:
            specs = bot_players(cfg.scenario, item) if not Path(str(item)).exists() else checkpoint_players([item])
            members += [_member(s, role, game, generation=0) for s in specs]
        if not members:
            raise LeagueError("initial is empty; give random, bot names or run folders")
        out.append(members)
    return out


def _member(spec: PlayerSpec, role: str, game: Game, generation: int) -> dict:
    name = spec.name if game.symmetric else f"{role}.{spec.name}"
    # what opponents.players takes: a bot's name, random, or a checkpoint file
    source = spec.source if spec.kind != "random" else "random"
    return {"name": name, "kind": spec.kind, "source": source, "generation": generation, "role": role}


def _spec(member: dict) -> PlayerSpec:
    return PlayerSpec(member["name"], member["kind"], member["source"] if member["kind"] != "random" else "")


# ---- a best response as a task (runs on the local pool or Ray, like a match) -----------------------------


@dataclass(frozen=True)
class ResponseTask:
    """Train one best response; ``play()`` is what the tournament backends call."""

    key: str
    config: dict  # the run's TrainConfig as a dict

    def play(self) -> dict:
        from marl.config import build_config
        from marl.trainer import train

        run = Path(self.config["out"])
        if not (run / "summary.json").is_file():
            resume = ckpt.latest_checkpoint(run) is not None
            if not resume and run.exists():
                shutil.rmtree(run)  # started, killed before its first checkpoint: start again
            run.mkdir(parents=True, exist_ok=True)
            with open(run / "train.log", "a") as log, contextlib.redirect_stdout(log):
                train(build_config({**self.config, "resume": resume}))
        summary = json.loads((run / "summary.json").read_text())
        return {"key": self.key, "run": str(run), "checkpoint": str(ckpt.latest_checkpoint(run)),
                "final_eval": summary["final_eval"], "wall_time_s": summary["wall_time_s"]}


def _train_config(cfg: LeagueConfig, game: Game, side: int, generation: int, opponents: list[dict],
                  weights: np.ndarray, run: Path) -> dict:
    keep = weights > 0  # members the meta-strategy never draws are not loaded
    learner = game.sides[side]
    return {**cfg.train, "scenario": cfg.scenario, "scenario_args": dict(cfg.overrides), "out": str(run),
            "seed": int(np.random.SeedSequence([cfg.seed, generation, side]).generate_state(1)[0] % 2**31),
            "progress": False,
            "opponents": {"learn": learner, "players": [m["source"] for m, k in zip(opponents, keep) if k],
                          "weights": [float(w) for w, k in zip(weights, keep) if k], "greedy": cfg.greedy}}


# ---- matches and the meta-game ------------------------------------------------------------------------


def _match_tasks(cfg: LeagueConfig, game: Game, members: list[list[dict]]) -> list[MatchTask]:
    if game.symmetric:  # every ordered pair: both seatings
        return schedule([_spec(m) for m in members[0]], cfg.scenario, cfg.overrides, game.seats, cfg.episodes,
                        cfg.seed, cfg.greedy)
    return [MatchTask(cfg.scenario, game.overrides, _spec(a), _spec(b), game.seats, cfg.episodes,
                      match_seed(cfg.seed, a["name"], b["name"]), cfg.greedy)
            for a in members[0] for b in members[1]]


def meta_game(game: Game, members: list[list[dict]], results: dict[str, dict]) -> np.ndarray:
    """The zero-sum payoff: symmetric ``Z[i, j]`` (both seatings pooled), two-sided ``Z[row, col]``."""
    if game.symmetric:
        return build_payoff([m["name"] for m in members[0]], results).antisymmetric()
    mean = lambda key, side: float(np.mean(results[key][side]))  # noqa: E731
    keys = [[f"{a['name']} vs {b['name']}" for b in members[1]] for a in members[0]]
    return zero_sum_payoff(np.array([[mean(k, "row_returns") for k in row] for row in keys]),
                           np.array([[mean(k, "col_returns") for k in row] for row in keys]))


def _solve(solver, game: Game, Z: np.ndarray) -> list[np.ndarray]:
    return [solver.solve(Z)] if game.symmetric else list(solver.solve(Z, two_sided=True))


def _nash_conv(game: Game, Z: np.ndarray, sigma: list[np.ndarray]) -> float:
    return nash_conv_symmetric(Z, sigma[0]) if game.symmetric else nash_conv_two_sided(Z, *sigma)


def _padded(sigma: list[np.ndarray], sizes: list[int]) -> list[np.ndarray]:
    """A meta-strategy of an earlier generation over today's (larger) population: 0 on the newcomers."""
    return [np.concatenate([s, np.zeros(n - len(s))]) for s, n in zip(sigma, sizes)]


# ---- the loop ---------------------------------------------------------------------------------------


def _settings(cfg: LeagueConfig) -> dict:
    return {k: getattr(cfg, k) for k in LEAGUE_SETTINGS}


def _load_state(out: Path, cfg: LeagueConfig, resume: bool) -> dict | None:
    saved = out / "league.json"
    if not saved.is_file():
        if resume:
            raise LeagueError(f"nothing to resume: {out} holds no league.json")
        return None
    if not resume:
        raise LeagueError(f"{out} already holds a league; pass --resume to continue it, or choose out=...")
    state = json.loads(saved.read_text())
    changed = [k for k in LEAGUE_SETTINGS
               if json.dumps(state["settings"].get(k), sort_keys=True) != json.dumps(getattr(cfg, k), sort_keys=True)]
    if changed:
        raise LeagueError("cannot resume " + str(out) + ": " + ", ".join(
            f"{k}={state['settings'].get(k)!r} there vs {getattr(cfg, k)!r} now" for k in changed))
    return state


def _write_state(out: Path, state: dict) -> None:
    tmp = out / "league.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(out / "league.json")  # atomic: a kill leaves the old state or the new one


def run_league(cfg: LeagueConfig, resume: bool = False, backend=None) -> dict:
    """Run (or finish) ``cfg.generations`` generations; returns the league state (``league.json``)."""
    from marl.config import ConfigError, build_config

    cfg.validate()
    game = Game.of(cfg)
    out = Path(cfg.out) if cfg.out else Path("leagues") / f"{cfg.scenario.replace('/', '-')}-{cfg.meta}-s{cfg.seed}"
    state = _load_state(out, cfg, resume)
    try:  # the responses' settings fail now, not after the first matches
        build_config({**cfg.train, "scenario": cfg.scenario, "scenario_args": dict(cfg.overrides)})
    except ConfigError as exc:
        raise LeagueError(f"train: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = {"settings": _settings(cfg), "roles": list(game.roles), "symmetric": game.symmetric,
                 "members": _initial_members(cfg, game), "generations": []}
        _write_state(out, state)
    store = ResultStore(out / "matches")
    solver = make_meta_solver(cfg.meta)
    own_backend = backend is None
    backend = backend or make_backend(cfg.backend, cfg.workers, cfg.address)
    bar = progress_bar(cfg.generations, len(state["generations"]), cfg.progress, unit="generation", desc="league")
    try:
        _play_missing(cfg, game, state["members"], store, backend)
        while len(state["generations"]) < cfg.generations:
            g = len(state["generations"]) + 1
            members = state["members"]
            Z = meta_game(game, members, store.results())
            sigma = _solve(solver, game, Z)
            start = time.perf_counter()
            other = [0 if game.symmetric else 1 - s for s in range(len(game.sides))]  # whom side s answers
            tasks = [ResponseTask(f"g{g}-{role}", _train_config(cfg, game, s, g, members[other[s]], sigma[other[s]],
                                                                out / "runs" / f"g{g}-{role}"))
                     for s, role in enumerate(game.sides)]
            responses = _run_all(backend, tasks, "best response")
            train_s = time.perf_counter() - start
            for s, role in enumerate(game.sides):
                r = responses[f"g{g}-{role}"]
                members[s].append({"name": f"g{g}" if game.symmetric else f"{role}.g{g}", "kind": "checkpoint",
                                   "source": r["checkpoint"], "generation": g, "role": role,
                                   "train_eval": r["final_eval"]["return_mean"]})
            start = time.perf_counter()
            played = _play_missing(cfg, game, members, store, backend)
            Z_new = meta_game(game, members, store.results())
            sizes = [len(m) for m in members]
            sigma_next = _solve(solver, game, Z_new)
            nash = _solve(make_meta_solver("nash"), game, Z_new)
            state["generations"].append({
                "generation": g,
                "trained_against": [s.tolist() for s in sigma],
                # how much the grown population gains against the mixture it was trained against
                "nash_conv_trained_against": _nash_conv(game, Z_new, _padded(sigma, sizes)),
                "meta_strategy": [s.tolist() for s in sigma_next],  # the method's output after this generation
                "nash_conv": _nash_conv(game, Z_new, sigma_next),  # of that output, in today's population
                "nash": [s.tolist() for s in nash],
                "response_eval": [responses[f"g{g}-{role}"]["final_eval"]["return_mean"] for role in game.sides],
                "train_s": train_s, "matches_played": played, "matches_s": time.perf_counter() - start,
            })
            _write_state(out, state)
            bar.update(1)
            bar.set_postfix(nash_conv=f"{state['generations'][-1]['nash_conv_trained_against']:.3g}", refresh=False)
    finally:
        bar.close()
        if own_backend:
            backend.close()
    from marl.league.report import write_league_report

    state["report"] = str(write_league_report(out, game, state, meta_game(game, state["members"], store.results())))
    state["out"] = str(out)
    return state


def _play_missing(cfg: LeagueConfig, game: Game, members, store: ResultStore, backend) -> int:
    done = store.results()
    todo = [t for t in _match_tasks(cfg, game, members) if t.key not in done]
    for result in _run_all(backend, todo, "match").values():
        store.add(result)
    return len(todo)


def _run_all(backend, tasks, what: str) -> dict[str, dict]:
    """Every task's result by key; the first failure stops the league with its traceback."""
    results = {}
    for task, status, payload in backend.run(tasks):
        if status != "ok":
            raise RuntimeError(f"{what} {task.key} failed:\n{payload}")
        results[task.key] = payload
    return results
