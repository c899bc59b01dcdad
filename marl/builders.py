"""The networks a config builds: the decentralized actor and the critics, for one env layout.

Both the algorithms (for training) and ``marl.policy`` (to load an actor alone) build through here,
so a checkpoint's actor weights always fit the actor its config describes.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from marl import sharing
from marl.communication import Communication, build_graph
from marl.config import ConfigError, entities_missing
from marl.nets import Actor, GraphCritic, make_critic


def sharing_spec(cfg, name: str, units: int) -> sharing.SharingSpec:
    sc = cfg.sharing
    return sharing.SharingSpec(name, units, sparsity=sc.sparsity, thresholds=sc.thresholds)


def build_actor(cfg, env) -> Actor:
    """The actor of ``cfg`` for ``env`` (an ``EnvInfo``: layout, state size, positions' size)."""
    a, layout = cfg.actor, env.layout
    communication = None
    if cfg.comm.enabled:
        communication = Communication(cfg.comm, a.hidden, layout.obs_dim, layout.n_agents, env.pos_dim or None,
                                      env.has_positions, env.scenario, activation=a.activation, teams=env.teams)
    from marl.algos import algorithm_class  # the algorithm says whether its continuous actions are squashed

    spec = sharing_spec(cfg, cfg.sharing.name, layout.n_agents)
    return Actor(layout, a.hidden, a.layers, a.activation, a.recurrent, a.layer_norm, comm=communication,
                 sharing=spec, squash=algorithm_class(cfg.algo.name).squashed_actions, body=_encoder(cfg, env, spec))


def _encoder(cfg, env, spec) -> nn.Module | None:
    """The actor's encoder other than the default MLP (None for the MLP)."""
    a = cfg.actor
    if a.encoder == "mlp":
        return None
    if not env.entities:
        raise ConfigError(entities_missing(env.scenario))
    from marl.entities import EntityEncoder

    n_ids = env.n_agents if spec.name == "full_id" else 0  # the ids full_id appends are own features
    return EntityEncoder(env.layout.obs_dim + n_ids, env.entities, a.hidden, a.layers, a.activation, a.layer_norm, spec)


def build_critic(cfg, env, kind: str) -> nn.Module:
    """A critic of ``kind`` (centralized, independent, graph) with ``critic.*`` settings."""
    c, layout = cfg.critic, env.layout
    critic_sharing = sharing_spec(cfg, c.sharing, c.ensemble * layout.n_agents)
    if c.own_obs and kind != "centralized":
        raise ConfigError(f"critic.own_obs=true adds the agent's observation to a centralized critic's state; the "
                          f"{kind} critic has none (use critic=centralized, or critic.own_obs=false)")
    if kind == "graph":
        return _graph_critic(cfg, env, critic_sharing)
    return make_critic(kind, layout, env.state_dim, c.hidden, c.layers, cfg.actor.activation, c.layer_norm,
                       critic_sharing, c.ensemble, c.own_obs)


def _graph_critic(cfg, env, critic_sharing: sharing.SharingSpec) -> nn.Module:
    """InforMARL's critic: message passing over the actor's graph when it is built from the scene
    (a fresh instance: the critic does not shape the actor's graph), else over the complete graph."""
    import comm

    c = cfg.critic
    name = cfg.comm.graph if cfg.comm.graph not in ("none", "learned") else "complete"
    graph = build_graph(dataclasses.replace(cfg.comm, graph=name), env.n_agents, env.pos_dim or None,
                        env.has_positions, env.scenario)
    block = comm.MessagePassingBlock(c.hidden, rounds=max(cfg.comm.rounds, 1), layer=cfg.comm.layer,
                                     edge_dim=graph.edge_dim, heads=cfg.comm.heads)
    return GraphCritic(env.layout.obs_dim, graph, block, c.hidden, c.layers, cfg.actor.activation, c.layer_norm,
                       critic_sharing, env.n_agents)
