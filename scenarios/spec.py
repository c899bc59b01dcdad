"""What a scenario is: its static description (`ScenarioSpec`) and a made instance (`Scenario`).

A spec is given once at registration. Agents and spaces often depend on overrides (``n_agents``),
so they are read off a probe env when the scenario is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

Kind = Literal["cooperative", "competitive", "mixed"]


def role_of(agent: str) -> str:
    """Default role rule: the agent name without its trailing index (``adversary_0`` -> ``adversary``)."""
    head, _, tail = agent.rpartition("_")
    return head if head and tail.isdigit() else agent


@dataclass(frozen=True)
class EntityGroup:
    """A run of ``count`` same-kind entities in an observation, ``width`` features each from column
    ``start`` on (entity k: ``start + k * width`` to ``start + (k + 1) * width``). ``position``: the
    first two features are the entity's position relative to the observer (so its distance is a
    feature an encoder may add). ``skip``: columns that carry nothing (simple_spread's silent
    utterances, always zero), left out by encoders rather than read as the agent's own."""

    name: str
    start: int
    count: int
    width: int
    position: bool = True
    skip: bool = False

    @property
    def stop(self) -> int:
        return self.start + self.count * self.width


@dataclass(frozen=True)
class ScenarioSpec:
    """Static facts about a scenario family member, fixed at registration time.

    ``overrides`` maps every user-settable option to its default; ``make(name, **overrides)``
    accepts exactly these names. ``positions`` reads agent positions ``[N, d]`` off a live env
    (called with ``env.unwrapped``)
    (used by communication graphs built from the scene); ``None`` means the scenario has none.
    """

    family: str
    kind: Kind
    description: str
    reward: str
    overrides: dict[str, Any] = field(default_factory=dict)
    positions: Callable[[Any], np.ndarray] | None = None
    role: Callable[[str], str] = role_of
    # optional: the renderer's world extent, so GIF overlays (e.g. graph edges) can map positions
    render_extent: float | None = None
    # where the critic's global state comes from: env.state() where it works ("auto"), or the
    # concatenated observations ("obs": for envs whose state() is huge, e.g. full-size pixels, or
    # breaks mid-episode)
    global_state: Literal["auto", "obs"] = "auto"
    # optional: (env.unwrapped, positions [N, d]) -> pixel (x, y) [N, 2] in render()'s frame
    pixels: Callable[[Any, np.ndarray], np.ndarray] | None = None
    # optional: a batched simulator of the same scenario, ``batched(num_envs=, device=, **overrides)``
    # -> ``envs.batched.BatchedSim``; the trainer uses it with ``backend=auto|batched``
    batched: Callable[..., Any] | None = None
    # optional: env.unwrapped -> bool [N] in agent order, the agents in play now, for scenarios that
    # keep every agent in env.agents but only some act (Traffic Junction's car slots without a car);
    # ANDed into EnvOutput.alive, so the loss and communication graphs leave the others out
    active: Callable[[Any], np.ndarray] | None = None
    # optional: overrides -> the groups of entities in every agent's observation (landmarks, other
    # agents), for permutation-invariant encoders (actor.encoder=entities); the columns outside every
    # group are the agent's own features
    entities: Callable[[dict[str, Any]], tuple[EntityGroup, ...]] | None = None

    @property
    def has_positions(self) -> bool:
        return self.positions is not None

    @property
    def has_batched(self) -> bool:
        return self.batched is not None


@dataclass
class Scenario:
    """A scenario made with concrete overrides: builds fresh PettingZoo ParallelEnvs on demand."""

    name: str
    spec: ScenarioSpec
    overrides: dict[str, Any]
    factory: Callable[..., Any]
    agents: tuple[str, ...]
    observation_spaces: dict[str, Any]
    action_spaces: dict[str, Any]
    episode_length: int | None

    def make_env(self, render_mode: str | None = None):
        """A new ParallelEnv with this scenario's overrides."""
        kwargs = dict(self.overrides)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        return self.factory(**kwargs)

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def entities(self) -> tuple[EntityGroup, ...] | None:
        """The entity groups in each agent's observation with these overrides, or None where the
        scenario does not describe them."""
        return None if self.spec.entities is None else tuple(self.spec.entities(dict(self.overrides)))

    @property
    def teams(self) -> dict[str, tuple[str, ...]]:
        """Agents grouped by role, in agent order."""
        out: dict[str, list[str]] = {}
        for agent in self.agents:
            out.setdefault(self.spec.role(agent), []).append(agent)
        return {role: tuple(members) for role, members in out.items()}

    @property
    def team_ids(self) -> tuple[int, ...] | None:
        """Each agent's team (the index of its role) in a competitive or mixed scenario with two
        roles or more; None in a cooperative one, whose roles all play together."""
        roles = list(self.teams)
        if self.spec.kind == "cooperative" or len(roles) < 2:
            return None
        return tuple(roles.index(self.spec.role(a)) for a in self.agents)

    @property
    def heterogeneous(self) -> bool:
        first = self.agents[0]
        return any(
            self.observation_spaces[a] != self.observation_spaces[first]
            or self.action_spaces[a] != self.action_spaces[first]
            for a in self.agents
        )
