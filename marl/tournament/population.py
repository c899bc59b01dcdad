"""Who plays: trained policies from checkpoints, scripted bots of the scenario, a random player.

A :class:`PlayerSpec` is a small picklable description (sent to worker processes or Ray tasks);
:func:`make_controller` turns it into something that acts in a match. Checkpoints are checked
against the tournament's scenario when the population is built, so a policy that does not fit
fails before any match starts, with the player's name and the mismatch.
"""

from __future__ import annotations

import functools
import glob
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from marl import checkpoint as ckpt


class PopulationError(ValueError):
    """A player that cannot be found, loaded, or does not fit the scenario."""


@dataclass(frozen=True)
class PlayerSpec:
    name: str
    kind: str  # "checkpoint" | "bot" | "random"
    source: str = ""  # checkpoint file, or bot name


# --- scripted bots per scenario -------------------------------------------------------------------


@dataclass(frozen=True)
class BotFamily:
    """The scripted bots of a scenario: their names, how to make one, and how one reads an
    observation row of its seat (the VectorEnv's flat float observation)."""

    names: Callable[[], list[str]]
    make: Callable[[str, np.random.Generator], Any]
    observe: Callable[[Any, np.ndarray], None]  # feed the observation of a step (not the first)


def _rrps_family() -> BotFamily:
    from envs import rrps_bots
    from envs.rrps import decode_last

    def observe(bot, obs_row: np.ndarray) -> None:
        last = decode_last(obs_row)
        if last is not None:
            bot.observe(*last)

    return BotFamily(rrps_bots.names, rrps_bots.make, observe)


BOT_FAMILIES: dict[str, Callable[[], BotFamily]] = {
    "classic/rrps": _rrps_family,
}


def register_bots(scenario: str, family: Callable[[], BotFamily]) -> None:
    """Make scripted bots available to tournaments on ``scenario``."""
    BOT_FAMILIES[scenario] = family


def bot_players(scenario: str, selection: str | list[str] | None) -> list[PlayerSpec]:
    """``all`` (the scenario's bots, or the random player where it has none), ``none``, or names;
    ``random`` is the uniformly random player, available in every scenario."""
    if selection in (None, "", "none"):
        return []
    family = BOT_FAMILIES[scenario]() if scenario in BOT_FAMILIES else None
    known = family.names() if family else []
    if isinstance(selection, str):
        items = [s.strip() for s in selection.split(",") if s.strip()]
    else:
        items = [str(s) for s in selection]
    out: list[PlayerSpec] = []
    for item in items:
        if item == "all":
            out += [PlayerSpec(n, "bot", n) for n in known] or [PlayerSpec("random", "random")]
        elif item == "random":
            out.append(PlayerSpec("random", "random"))
        elif item in known:
            out.append(PlayerSpec(item, "bot", item))
        else:
            valid = ", ".join(["all", "none", "random", *known])
            raise PopulationError(f"unknown bot {item!r} for scenario {scenario!r}; valid: {valid}")
    return out


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoint_players(patterns: str | list[str] | None) -> list[PlayerSpec]:
    """Run folders (their latest checkpoint), globs of them, or checkpoint files -> players named
    after their run folder (file stem added for an explicit file)."""
    if patterns in (None, "", "none"):
        return []
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    out: list[PlayerSpec] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else [str(pattern)]
        if not matches:
            raise PopulationError(f"players={pattern!r} matches no run folder or checkpoint file")
        for m in matches:
            path = Path(m)
            if path.is_file():
                out.append(PlayerSpec(f"{path.parent.parent.name}:{path.stem}" if path.parent.name == "checkpoints"
                                      else path.stem, "checkpoint", str(path)))
            elif path.is_dir():
                latest = ckpt.latest_checkpoint(path)
                if latest is None:
                    if glob.has_magic(str(pattern)):
                        continue  # a glob may also catch folders that are not runs
                    raise PopulationError(f"player {path.name!r}: no checkpoint in {path / 'checkpoints'}")
                out.append(PlayerSpec(path.name, "checkpoint", str(latest)))
            else:
                raise PopulationError(f"player {m!r} is neither a run folder nor a checkpoint file")
    return out


def unique_names(players: list[PlayerSpec]) -> list[PlayerSpec]:
    """Players with distinct names (``name#2`` for a repeated one); a tournament keys results by name."""
    seen: dict[str, int] = {}
    out = []
    for p in players:
        seen[p.name] = seen.get(p.name, 0) + 1
        out.append(p if seen[p.name] == 1 else PlayerSpec(f"{p.name}#{seen[p.name]}", p.kind, p.source))
    return out


@functools.lru_cache(maxsize=64)
def _scenario(name: str, overrides: tuple) -> Any:
    import scenarios

    return scenarios.make(name, **dict(overrides))


@functools.lru_cache(maxsize=64)
def load_actor(path: str, scenario: str, overrides: tuple) -> torch.nn.Module:
    """The actor of a checkpoint (``marl.load_policy``), rebuilt on the tournament scenario's layout
    where that differs from the one it was trained on."""
    from marl.policy import load_policy

    with torch.random.fork_rng(devices=[]):  # building the actor draws initial weights: not from the caller's RNG
        return load_policy(path).for_scenario(scenario, dict(overrides)).actor


def check_player(player: PlayerSpec, scenario: str, overrides: dict) -> None:
    """Load a checkpoint player on the scenario; a mismatch is an error naming the player."""
    if player.kind != "checkpoint":
        return
    try:
        load_actor(player.source, scenario, tuple(sorted(overrides.items())))
    except ckpt.StateMismatchError as exc:  # the scenario's layout (obs or action sizes) differs from training
        raise PopulationError(
            f"player {player.name!r} ({player.source}) does not fit scenario {scenario!r} {overrides}: {exc.detail}"
        ) from None
    except ckpt.CheckpointError as exc:
        raise PopulationError(f"player {player.name!r}: {exc}") from None


# --- controllers: acting in a match ----------------------------------------------------------------


class Controller:
    """Chooses the actions of one player for all agents of a VectorEnv; the match keeps the
    columns of this player's seats. ``episode_started(k, episode_id)`` marks env k's new episode."""

    def act(self, out) -> torch.Tensor:
        raise NotImplementedError

    def episode_started(self, k: int, episode_id: int) -> None:
        pass

    def release(self, k: int) -> None:
        """Env k's episode is played by someone else now (population training draws per episode)."""

    def state_dict(self) -> dict:
        """What the controller remembers between steps, for an exact resume."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class PolicyController(Controller):
    def __init__(self, actor, num_envs: int, n_agents: int, greedy: bool):
        self.actor, self.greedy = actor, greedy
        self.num_envs = num_envs
        self.carry = actor.initial_carry((num_envs, n_agents))

    @torch.no_grad()
    def act(self, out) -> torch.Tensor:
        from marl.evaluation import comm_inputs

        action, _, self.carry, _ = self.actor.act(out.obs, self.carry, deterministic=self.greedy,
                                                  inputs=comm_inputs(out))
        return action

    def episode_started(self, k: int, episode_id: int) -> None:
        starts = torch.zeros(self.num_envs, dtype=torch.bool)
        starts[k] = True
        self.carry = self.actor.reset_carry(self.carry, starts)

    def state_dict(self) -> dict:
        return {"carry": self.carry}

    def load_state_dict(self, state: dict) -> None:
        self.carry = state["carry"]


class RandomController(Controller):
    def __init__(self, env, seed: int):
        self.env = env
        self.gen = torch.Generator().manual_seed(seed)

    def act(self, out) -> torch.Tensor:
        return self.env.random_actions(self.gen)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])


class BotController(Controller):
    """One scripted bot per env and seat; each episode's bots get a generator seeded from
    (match seed, episode id, seat), so an episode replays alone."""

    def __init__(self, family: BotFamily, name: str, num_envs: int, seats: list[int], seed: int):
        self.family, self.name, self.seats, self.seed = family, name, seats, seed
        self.bots: list[dict[int, Any]] = [{} for _ in range(num_envs)]
        self.fresh = np.ones(num_envs, dtype=bool)

    def episode_started(self, k: int, episode_id: int) -> None:
        self.bots[k] = {s: self.family.make(self.name, np.random.default_rng([self.seed, episode_id, s]))
                        for s in self.seats}
        self.fresh[k] = True

    def release(self, k: int) -> None:
        self.bots[k] = {}

    def state_dict(self) -> dict:
        return {"bots": pickle.dumps(self.bots), "fresh": self.fresh.copy()}  # bots are plain Python objects

    def load_state_dict(self, state: dict) -> None:
        self.bots, self.fresh = pickle.loads(state["bots"]), state["fresh"].copy()

    def act(self, out) -> torch.Tensor:
        obs = out.obs.numpy()
        actions = torch.zeros(out.obs.shape[:2], dtype=torch.long)
        for k, bots in enumerate(self.bots):
            for s, bot in bots.items():
                if not self.fresh[k]:
                    self.family.observe(bot, obs[k, s])
                actions[k, s] = bot.act()
            self.fresh[k] = False
        return actions


def make_controller(player: PlayerSpec, env, scenario: str, overrides: dict, seats: list[int], seed: int,
                    greedy: bool) -> Controller:
    if player.kind == "checkpoint":
        actor = load_actor(player.source, scenario, tuple(sorted(overrides.items())))
        return PolicyController(actor, env.num_envs, env.n_agents, greedy)
    if player.kind == "random":
        return RandomController(env, seed)
    if player.kind == "bot":
        if scenario not in BOT_FAMILIES:
            raise PopulationError(f"scenario {scenario!r} has no scripted bots (player {player.name!r})")
        return BotController(BOT_FAMILIES[scenario](), player.source, env.num_envs, seats, seed)
    raise PopulationError(f"player {player.name!r} has unknown kind {player.kind!r}")
