"""The actor's communication step, built from a ``CommConfig``: graph (+ gate) + GNN rounds.

``Communication(x [B,N,H], obs, inputs, previous, replay) -> (x', previous', aux)``: messages flow
only along the graph's incoming edges, so agent i's output depends on agents with a path to it
within ``rounds`` hops. State is explicit: the delayed channel's senders' features travel in the
caller's carry (``previous``), and every stochastic decision comes back in ``aux.replay`` so the
update can replay it; nothing is written to module attributes during forward.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import nn

import comm
from marl.config import CommConfig

GRAPH_OPTIONS = ("k", "radius", "p", "seed", "sparsity")


@dataclass
class CommInputs:
    """What the graph may look at besides the features: the scene and who is alive."""

    positions: torch.Tensor | None = None  # [B, N, d]
    alive: torch.Tensor | None = None  # [B, N] bool


@dataclass
class StepAux:
    """What one actor step computed besides its action parameters.

    ``edges``: the messages sent (for logging and pictures). ``replay``: the stochastic decisions
    taken, ``[B, ...]`` each; passing them back as ``replay=`` reproduces the step exactly.
    ``terms``: differentiable by-products a training hook's loss may use (``gate_open_prob``)."""

    edges: comm.Edges | None = None
    replay: dict[str, torch.Tensor] = field(default_factory=dict)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def graph_options(cfg: CommConfig) -> dict:
    """The comm.* options that the chosen graph's constructor accepts, plus ``comm.options``."""
    cls = comm.GRAPHS.get(cfg.graph)
    if cls is None:
        raise comm.CommError(comm.unknown_name_message("graph", cfg.graph, comm.graph_names()))
    accepted = inspect.signature(cls.__init__).parameters
    return {k: getattr(cfg, k) for k in GRAPH_OPTIONS if k in accepted} | dict(cfg.options)


def build_graph(cfg: CommConfig, n_agents: int, pos_dim: int | None, has_positions: bool, scenario: str):
    """The graph module; a graph that needs positions on a scenario without them is an error."""
    graph = comm.make_graph(
        cfg.graph,
        n_agents=n_agents,
        pos_dim=pos_dim,
        edge_features=bool(cfg.edge_features and has_positions),
        **graph_options(cfg),
    )
    if graph.needs_positions and not has_positions:
        free = [n for n in comm.graph_names() if not comm.GRAPHS[n].needs_positions]
        raise comm.CommError(
            f"graph {cfg.graph!r} needs agent positions, but scenario {scenario!r} has none; "
            f"graphs that need no positions: {', '.join(free)}"
        )
    return graph


class Communication(nn.Module):
    def __init__(self, cfg: CommConfig, hidden: int, obs_dim: int, n_agents: int, pos_dim: int | None,
                 has_positions: bool, scenario: str, activation: str = "relu"):
        super().__init__()
        self.graph = build_graph(cfg, n_agents, pos_dim, has_positions, scenario)
        self.gate = comm.Gate(obs_dim) if cfg.gating else None
        self.block = comm.MessagePassingBlock(
            hidden, rounds=cfg.rounds, layer=cfg.layer, edge_dim=self.graph.edge_dim, heads=cfg.heads,
            residual=cfg.residual, activation=activation,
        )
        self.channel = cfg  # drop / noise / delay settings (comm.channel_*)

    @property
    def delayed(self) -> bool:
        """Whether messages carry the senders' previous features (the caller keeps them in its carry)."""
        return bool(self.channel.channel_delay)

    def forward(self, x: torch.Tensor, obs: torch.Tensor, inputs: CommInputs, previous: torch.Tensor | None = None,
                replay: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor | None, StepAux]:
        """``x`` [B, N, H] -> (features after message passing, this step's features for a delayed
        channel's next step or None, aux). ``previous`` [B, N, H]: last step's features (delay)."""
        B, N, H = x.shape
        replay = replay or {}
        aux = StepAux()
        ctx = comm.GraphContext(n_envs=B, n_agents=N, positions=inputs.positions, alive=inputs.alive,
                                obs=obs, device=x.device, training=self.training)
        edges = self.graph(ctx)
        gate = None
        if self.gate is not None:
            g, p = self.gate(obs, decisions=replay.get("gate"))
            aux.replay["gate"], aux.terms["gate_open_prob"] = g.detach(), p
            gate = g.reshape(-1)
        flat = x.reshape(B * N, H)
        new_previous = x.detach() if self.delayed else None
        if self.training and not self.channel.channel_in_training:
            aux.edges = edges
            return self.block(flat, edges, gate=gate).view(B, N, H), new_previous, aux
        edges, shared = self._imperfect_channel(edges, flat, previous)
        aux.edges = edges
        if shared is flat:
            return self.block(flat, edges, gate=gate).view(B, N, H), new_previous, aux
        # messages are computed from what the senders shared; each agent keeps its own features
        received = self.block(shared, edges, gate=gate) - (shared if self.block.residual else 0)
        return (received + (flat if self.block.residual else 0)).view(B, N, H), new_previous, aux

    def _imperfect_channel(self, edges, x: torch.Tensor, previous: torch.Tensor | None):
        """Lost messages, noisy and one-step-old sender features (``comm.channel_*``)."""
        ch = self.channel
        if ch.channel_drop > 0 and edges.num_edges:
            edges = edges.select(torch.rand(edges.num_edges, device=x.device) >= ch.channel_drop)
        shared = x
        if ch.channel_delay and previous is not None:
            shared = previous.reshape(x.shape)
        if ch.channel_noise > 0:
            shared = shared + ch.channel_noise * torch.randn_like(shared)
        return edges, shared

    def graph_parameters(self) -> list[nn.Parameter]:
        return list(self.graph.graph_parameters())
