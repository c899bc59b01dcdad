"""Fixed opponents: the seats of the roles that do not learn are played by a policy (or bot) drawn
per episode from a meta-strategy, so ordinary ``marl train`` trains a best response to it.

:class:`OpponentSeats` wraps a vector env of either backend. It fills the opponent seats' actions
from tournament controllers before every step and reports those seats as not alive, so the
learner's loss, its value targets and its communication graph leave them out, and its episode
statistics score the learning seats only (``scored``). The learner still acts for the scenario's
full layout, so its checkpoint plays in tournaments on any seat.

Episode ``c`` of env ``k`` is played by the opponent drawn from ``(seed, k, c)``: the draws do not
depend on the learner, and a resumed run draws the same opponents (``snapshot``/``restore``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from envs.vector import EnvOutput


class OpponentError(ValueError):
    """Opponent settings that cannot be used (unknown role, player, or bad weights)."""


@dataclass(frozen=True)
class Opponents:
    """Who plays the seats that do not learn: ``learn`` is the learning role, every other role's
    seats are played by ``players[i]`` with probability ``weights[i]`` in each episode."""

    learn: str
    players: tuple  # PlayerSpec each
    weights: tuple  # float each, summing to 1
    greedy: bool = False

    def describe(self) -> str:
        shown = ", ".join(f"{p.name} {w:.2f}" for p, w in zip(self.players, self.weights) if w > 0)
        return f"learning {self.learn} against {shown}"


def resolve_opponents(scenario, learn: str, players, weights=(), greedy: bool = False) -> Opponents:
    """``players``: bot names of the scenario, ``random``, run folders or checkpoint files (a list or
    a comma-separated string); ``weights``: one per player (normalised), empty for uniform."""
    from marl.tournament.population import BOT_FAMILIES, PlayerSpec, check_player, checkpoint_players, unique_names

    roles = list(scenario.teams)
    if learn not in roles:
        raise OpponentError(f"opponents.learn={learn!r} is not a role of {scenario.name}; valid: {', '.join(roles)}")
    if len(roles) < 2:
        raise OpponentError(f"opponents need a scenario with two roles or more; {scenario.name} has only {roles}")
    items = [s.strip() for s in players.split(",")] if isinstance(players, str) else [str(s) for s in players]
    items = [s for s in items if s]
    if not items:
        raise OpponentError("opponents.players is empty; give bot names, random, run folders or checkpoint files")
    bots = BOT_FAMILIES[scenario.name]().names() if scenario.name in BOT_FAMILIES else []
    specs = []
    for item in items:
        if item == "random":
            specs.append(PlayerSpec("random", "random"))
        elif item in bots:
            specs.append(PlayerSpec(item, "bot", item))
        else:
            try:
                specs += checkpoint_players([item])
            except ValueError as exc:
                known = ", ".join(["random", *bots]) or "random"
                raise OpponentError(f"opponent {item!r}: {exc} (bots of {scenario.name}: {known})") from None
    specs = unique_names(specs)
    for spec in specs:
        check_player(spec, scenario.name, scenario.overrides)
    w = np.full(len(specs), 1.0 / len(specs)) if len(weights) == 0 else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(specs),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise OpponentError(f"opponents.weights={list(weights)} must be {len(specs)} nonnegative numbers with a "
                            f"positive sum, one per player ({', '.join(s.name for s in specs)})")
    return Opponents(learn, tuple(specs), tuple((w / w.sum()).tolist()), greedy)


def _draw(seed: int, env: int, episode: int, weights: np.ndarray) -> int:
    rng = np.random.default_rng([seed, env, episode, 0x0990])
    return int(rng.choice(len(weights), p=weights))


class OpponentSeats:
    """A vector env whose opponent seats play themselves (see the module docstring); it has the
    interface of the env it wraps."""

    def __init__(self, env, opponents: Opponents, seed: int = 0):
        from marl.tournament.population import make_controller

        self.env, self.opponents, self.seed = env, opponents, int(seed)
        scenario = env.scenario
        self.learners = [i for i, a in enumerate(scenario.agents) if scenario.spec.role(a) == opponents.learn]
        self.seats = [i for i in range(env.n_agents) if i not in self.learners]
        self.scored = torch.zeros(env.n_agents, dtype=torch.bool, device=env.device)
        self.scored[self.learners] = True
        self._weights = np.asarray(opponents.weights, dtype=np.float64)
        self.controllers = [
            make_controller(p, env, scenario.name, scenario.overrides, self.seats,
                            (self.seed * 31 + i + 1) & 0xFFFFFFFF, opponents.greedy)
            for i, p in enumerate(opponents.players)
        ]
        self.episodes = np.zeros(env.num_envs, dtype=np.int64)  # episodes begun by each env
        self.assigned = np.zeros(env.num_envs, dtype=np.int64)  # env k's opponent this episode
        self.last: EnvOutput | None = None  # the unmasked output the opponents act on

    def __getattr__(self, name):  # everything else is the wrapped env's
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    # ---- episodes ------------------------------------------------------------------------------
    def _begin(self, k: int) -> None:
        self.controllers[self.assigned[k]].release(k)
        idx = _draw(self.seed, k, int(self.episodes[k]), self._weights)
        self.assigned[k] = idx
        self.controllers[idx].episode_started(k, int(self.episodes[k]))
        self.episodes[k] += 1

    def _learner_view(self, out: EnvOutput) -> EnvOutput:
        view = EnvOutput(**{f.name: getattr(out, f.name) for f in fields(EnvOutput)})
        view.alive = out.alive & self.scored
        if out.final_alive is not None:
            view.final_alive = out.final_alive & self.scored
        return view

    def reset(self) -> EnvOutput:
        self.last = self.env.reset()
        for k in range(self.env.num_envs):
            for c in self.controllers:
                c.release(k)
            self._begin(k)
        return self._learner_view(self.last)

    def opponent_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """``actions`` with the opponent seats filled in by each env's assigned opponent."""
        actions = actions.clone()
        seats = torch.as_tensor(self.seats, device=actions.device)
        for idx in np.unique(self.assigned).tolist():  # one batched call per opponent in play
            envs = torch.as_tensor(np.flatnonzero(self.assigned == idx), device=actions.device)
            chosen = self.controllers[idx].act(_on_cpu(self.last)).to(actions.device)
            actions[envs[:, None], seats] = chosen[envs[:, None], seats].to(actions.dtype)
        return actions

    def step(self, actions: torch.Tensor) -> EnvOutput:
        self.last = self.env.step(self.opponent_actions(actions))
        for k in torch.nonzero(self.last.done_env).flatten().tolist():
            self._begin(k)
        return self._learner_view(self.last)

    def random_actions(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.env.random_actions(generator)

    # ---- exact resume ----------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The wrapped env's snapshot plus the draws, the last unmasked output and the opponents'
        own state (recurrent carries, bots' memories), so a resumed run plays the same moves."""
        return {"env": self.env.snapshot(), "episodes": self.episodes.copy(), "assigned": self.assigned.copy(),
                "last": {f.name: getattr(self.last, f.name) for f in fields(EnvOutput)},
                "controllers": [c.state_dict() for c in self.controllers]}

    def restore(self, snapshot: dict) -> torch.Tensor:
        replayed = self.env.restore(snapshot["env"])
        self.episodes[:] = snapshot["episodes"]
        self.assigned[:] = snapshot["assigned"]
        self.last = EnvOutput(**{k: None if v is None else v.to(self.env.device) for k, v in snapshot["last"].items()})
        for c, state in zip(self.controllers, snapshot["controllers"]):
            c.load_state_dict(state)
        return replayed

    def close(self) -> None:
        self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _on_cpu(out: EnvOutput) -> EnvOutput:
    """Controllers act on CPU tensors (their actors are loaded there)."""
    if out.obs.device.type == "cpu":
        return out
    return EnvOutput(**{f.name: None if getattr(out, f.name) is None else getattr(out, f.name).cpu()
                        for f in fields(EnvOutput)})
