"""Scheduling and playing matches.

A match is one ordered pair of players: ``row`` takes the scenario's first role (e.g. the
adversaries of simple_tag, ``player_0`` of rrps) and ``col`` the second, for a fixed number of
episodes. Every ordered pair is scheduled, so both seatings are played. A match's seed is derived
from the tournament seed and the two players' names (in a duplicate tournament from the unordered
pair, so both seatings play the same episodes), and episode e of the match resets its env
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

    def play(self) -> dict:
        return play_match(self).to_json()


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
             greedy: bool = False, self_play: bool = False, duplicate: bool = False) -> list[MatchTask]:
    """Every ordered pair (both seatings), in a fixed order; ``self_play`` adds each player against itself.
    ``duplicate``: both seatings of a pair play the same episode seeds (the same deals), so a player's
    return in a seat can be compared with the other player's return in that seat."""
    frozen = tuple(sorted(overrides.items()))

    def seed_of(a: str, b: str) -> int:
        return match_seed(seed, *sorted((a, b))) if duplicate else match_seed(seed, a, b)

    return [
        MatchTask(scenario, frozen, a, b, seats, episodes, seed_of(a.name, b.name), greedy)
        for a in players for b in players if self_play or a.name != b.name
    ]


def run_episodes(scenario_name: str, overrides: tuple, assignment, episodes: int, seed: int,
                 greedy: bool = False) -> np.ndarray:
    """Play ``episodes`` episodes with each (player, seats) of ``assignment`` acting for its seats;
    returns every agent's episode return ``[episodes, N]``. Deterministic given the arguments."""
    from envs import VectorEnv

    torch.set_num_threads(1)
    scenario = _scenario(scenario_name, overrides)
    n_envs = min(episodes, MAX_ENVS)
    env = VectorEnv(scenario, n_envs, seed=seed)
    controllers = [
        (make_controller(player, env, scenario_name, dict(overrides), list(seats),
                         (seed * 31 + slot + 1) & 0xFFFFFFFF, greedy), list(seats))
        for slot, (player, seats) in enumerate(assignment)
    ]
    # seeded after the controllers exist: building an actor the first time in a process draws from
    # torch's generator (weight init), a cached one does not
    torch.manual_seed(seed)  # sampled policy actions
    # env k plays episodes k, k + E, k + 2E, ... (its c-th reset uses the seed of (match seed, k, c))
    current = list(range(n_envs))
    returns: dict[int, np.ndarray] = {}
    try:
        out = env.reset()
        for k in range(n_envs):
            for ctrl, _ in controllers:
                ctrl.episode_started(k, k)
        while len(returns) < episodes:
            actions = None
            for ctrl, seats in controllers:
                chosen = ctrl.act(out)
                if actions is None:
                    actions = torch.zeros_like(chosen)
                actions[:, seats] = chosen[:, seats]
            out = env.step(actions)
            for k in torch.nonzero(out.done_env).flatten().tolist():
                if current[k] < episodes:
                    returns[current[k]] = out.episode_return[k].double().numpy().copy()
                current[k] += n_envs
                for ctrl, _ in controllers:
                    ctrl.episode_started(k, current[k])
    finally:
        env.close()
    return np.stack([returns[e] for e in range(episodes)])


def play_match(task: MatchTask) -> MatchResult:
    """Play one match in this process; deterministic given the task."""
    start = time.perf_counter()
    row_seats, col_seats = (list(s) for s in task.seats)
    returns = run_episodes(task.scenario, task.overrides, ((task.row, row_seats), (task.col, col_seats)),
                           task.episodes, task.seed, task.greedy)
    return MatchResult(task.key, task.row.name, task.col.name, task.seed, returns[:, row_seats].mean(1).tolist(),
                       returns[:, col_seats].mean(1).tolist(), seconds=time.perf_counter() - start)


def play_match_safely(task) -> tuple[str, object]:
    """("ok", result as a dict) or ("error", traceback text): exceptions cross process boundaries as text."""
    try:
        return "ok", task.play()
    except Exception as exc:  # reported and retried by the tournament, never dropped
        return "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
