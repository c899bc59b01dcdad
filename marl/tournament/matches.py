"""Scheduling and playing matches.

A match is one ordered pair of players: ``row`` takes the scenario's first role (e.g. the
adversaries of simple_tag, ``player_0`` of rrps) and ``col`` the second, for a fixed number of
episodes. Every ordered pair is scheduled, so both seatings are played. A match's seed is derived
from the tournament seed and the two players' names, and episode e of the match resets its env
with a seed derived from (match seed, e) — any match can be replayed alone, on any backend, in
any order, and gives the same returns.
"""

from __future__ import annotations

import time
import traceback
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from marl.tournament.population import PlayerSpec, _scenario, make_controller

MAX_ENVS = 16  # episodes played side by side in one match (fixed: it is part of the seeding)


@dataclass(frozen=True)
class MatchTask:
    scenario: str
    overrides: tuple  # sorted (key, value) pairs
    row: PlayerSpec
    col: PlayerSpec
    seats: tuple[tuple[int, ...], tuple[int, ...]]  # agent indices of the row's and the column's role
    episodes: int
    seed: int
    greedy: bool = False

    @property
    def key(self) -> str:
        return match_key(self.row.name, self.col.name)


@dataclass
class MatchResult:
    key: str
    row: str
    col: str
    seed: int
    row_returns: list[float]  # per episode: mean over the row's agents of their episode return
    col_returns: list[float]
    seconds: float = 0.0
    attempts: int = 1
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def match_key(row: str, col: str) -> str:
    return f"{row} vs {col}"


def name_hash(name: str) -> int:
    """A stable 32-bit hash (Python's hash() changes between processes)."""
    return zlib.crc32(name.encode("utf-8"))


def match_seed(base_seed: int, row: str, col: str) -> int:
    return int(np.random.SeedSequence([base_seed, name_hash(row), name_hash(col)]).generate_state(1)[0])


def schedule(players: list[PlayerSpec], scenario: str, overrides: dict, seats, episodes: int, seed: int,
             greedy: bool = False, self_play: bool = False) -> list[MatchTask]:
    """Every ordered pair (both seatings), in a fixed order; ``self_play`` adds each player against itself."""
    frozen = tuple(sorted(overrides.items()))
    return [
        MatchTask(scenario, frozen, a, b, seats, episodes, match_seed(seed, a.name, b.name), greedy)
        for a in players for b in players if self_play or a.name != b.name
    ]


def play_match(task: MatchTask) -> MatchResult:
    """Play one match in this process (one torch thread); deterministic given the task."""
    from envs import VectorEnv

    start = time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(task.seed)  # sampled policy actions
    overrides = dict(task.overrides)
    scenario = _scenario(task.scenario, task.overrides)
    n_envs = min(task.episodes, MAX_ENVS)
    env = VectorEnv(scenario, n_envs, seed=task.seed)
    row_seats, col_seats = (list(s) for s in task.seats)
    controllers = [
        (make_controller(task.row, env, task.scenario, overrides, row_seats, task.seed * 2 + 1 & 0xFFFFFFFF,
                         task.greedy), row_seats),
        (make_controller(task.col, env, task.scenario, overrides, col_seats, task.seed * 2 + 2 & 0xFFFFFFFF,
                         task.greedy), col_seats),
    ]
    # env k plays episodes k, k + E, k + 2E, ... (its c-th reset uses the seed of (match seed, k, c))
    current = list(range(n_envs))
    row_returns: dict[int, float] = {}
    col_returns: dict[int, float] = {}
    try:
        out = env.reset()
        for k in range(n_envs):
            for ctrl, _ in controllers:
                ctrl.episode_started(k, k)
        while len(row_returns) < task.episodes:
            actions = None
            for ctrl, seats in controllers:
                chosen = ctrl.act(out)
                if actions is None:
                    actions = torch.zeros_like(chosen)
                actions[:, seats] = chosen[:, seats]
            out = env.step(actions)
            for k in torch.nonzero(out.done_env).flatten().tolist():
                episode = current[k]
                if episode < task.episodes:
                    ret = out.episode_return[k].double()
                    row_returns[episode] = float(ret[row_seats].mean())
                    col_returns[episode] = float(ret[col_seats].mean())
                current[k] += n_envs
                for ctrl, _ in controllers:
                    ctrl.episode_started(k, current[k])
    finally:
        env.close()
    order = range(task.episodes)
    return MatchResult(task.key, task.row.name, task.col.name, task.seed, [row_returns[e] for e in order],
                       [col_returns[e] for e in order], seconds=time.perf_counter() - start)


def play_match_safely(task: MatchTask) -> tuple[str, object]:
    """("ok", result as a dict) or ("error", traceback text): exceptions cross process boundaries as text."""
    try:
        return "ok", play_match(task).to_json()
    except Exception as exc:  # reported and retried by the tournament, never dropped
        return "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
