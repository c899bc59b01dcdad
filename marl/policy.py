"""Policies without learners: the actor of a checkpoint, built from its config and the env layout
stored beside it, with no critic, optimizer or probe env.

``load_policy(path)`` takes a checkpoint file or a run folder (its latest checkpoint). A policy
acts for the layout it was trained on; ``layout=`` rebuilds it for another one (zero-shot
transfer to another number of agents, possible when the weights are not per agent).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from marl import checkpoint as ckpt
from marl.builders import build_actor


@dataclass
class Policy:
    """A trained actor and what it was trained on (``config``: the TrainConfig; ``env``: EnvInfo;
    ``state``: the actor's weights, to rebuild it for another layout)."""

    actor: torch.nn.Module
    config: object
    env: object
    path: Path
    state: dict

    @property
    def scenario(self) -> str:
        return self.config.scenario

    @property
    def scenario_args(self) -> dict:
        return dict(self.config.scenario_args)

    def for_layout(self, layout, teams=None, entities=None) -> "Policy":
        """The same weights acting for another env layout (e.g. another number of agents), whose
        seats' teams are ``teams`` and observations' entity groups ``entities`` (defaults: as
        trained where the number of seats is the same)."""
        same_n = layout.n_agents == self.env.layout.n_agents
        if teams is None and same_n:
            teams = self.env.teams
        if entities is None and same_n:
            entities = self.env.entities
        if entities is None and self.config.actor.encoder == "entities":
            raise ValueError(f"this policy reads its observations as entities (actor.encoder=entities): give the "
                             f"entity groups of the {layout.n_agents}-agent observation, or use for_scenario()")
        if layout == self.env.layout and teams == self.env.teams and entities == self.env.entities:
            return self
        env = replace(self.env, layout=layout, teams=teams, entities=entities)
        return Policy(_build(self.config, env, self.state, self.path), self.config, env, self.path, self.state)

    def for_scenario(self, scenario: str, overrides: dict | None = None) -> "Policy":
        """The policy for ``scenario`` with ``overrides``: itself where that is what it was trained on,
        else rebuilt on the layout of that scenario (probed with one env)."""
        overrides = dict(overrides or {})
        if scenario == self.scenario and overrides == self.scenario_args:
            return self
        import scenarios
        from envs import VectorEnv

        made = scenarios.make(scenario, **overrides)
        env = VectorEnv(made, 1)
        env.close()
        return self.for_layout(env.layout, made.team_ids, made.entities)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or a run folder's latest checkpoint."""
    path = Path(path)
    if path.is_dir():
        found = ckpt.latest_checkpoint(path)
        if found is None:
            raise ckpt.CheckpointError(f"no checkpoint in {str(path / 'checkpoints')!r} (train first, or pass a "
                                       "checkpoint file)")
        return found
    return path


def load_policy(path: str | Path, layout=None, comm_overrides: dict | None = None,
                map_location: str | torch.device = "cpu") -> Policy:
    """The actor stored in a checkpoint (or a run folder's latest), in eval mode.

    ``layout``: build it for another env layout (another N); per-agent weights for another number
    of agents are a one-line CheckpointError. ``comm_overrides``: ``comm.*`` settings to act under
    (e.g. an imperfect channel at evaluation: ``{"channel_drop": 0.2}``)."""
    from marl.algos import EnvInfo
    from marl.config import build_config

    path = resolve_checkpoint(path)
    payload = ckpt.load_checkpoint(path, map_location=map_location)
    ckpt.check_format(path, payload)
    cfg = build_config(payload["config"])
    if comm_overrides:
        cfg.comm = replace(cfg.comm, **comm_overrides)
    saved = dict(payload["env_info"])
    if "teams" not in saved:  # written before teams were kept: read them off the scenario
        import scenarios

        saved["teams"] = scenarios.make(cfg.scenario, **cfg.scenario_args).team_ids
    env = EnvInfo(**saved)
    if layout is not None and layout != env.layout:
        env = replace(env, layout=layout)
    state = {k[len("actor."):]: v for k, v in payload["algorithm"]["modules"].items() if k.startswith("actor.")}
    return Policy(_build(cfg, env, state, path), cfg, env, path, state)


def _build(cfg, env, state: dict, path: Path) -> torch.nn.Module:
    actor = build_actor(cfg, env)
    _check_units(state, env.n_agents, cfg.sharing.name)
    ckpt.load_state(actor, state, "actor", path)
    return actor.eval()


def _check_units(state: dict, n_agents: int, scheme: str) -> None:
    """Per-agent weights (any scheme but full/full_id) fit only the number of agents they were made for."""
    saved = {int(v.shape[0]) for k, v in state.items()
             if k.endswith(("scheme.thresholds", "scheme.binary")) or (k.endswith("weight") and v.dim() == 3)}
    if saved and saved != {n_agents}:
        raise ckpt.CheckpointError(
            f"this actor has per-agent weights (sharing={scheme!r}) for {min(saved)} agents, not {n_agents}; only "
            "sharing=full (or full_id with the same N) policies act for another n_agents"
        )
