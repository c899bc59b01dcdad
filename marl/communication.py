"""The actor's communication step, built from a ``CommConfig``: graph (+ gate) + GNN rounds.

``Communication(x [B,N,H], obs, inputs, carry, replay) -> (x', carry', aux)``: messages flow
only along the graph's incoming edges, so agent i's output depends on agents with a path to it
within ``rounds`` hops, and never on another team's seats when ``inputs.team`` is given. State is
explicit: the delayed channel's senders' features (and positions) travel in the caller's carry, and
every stochastic decision (the learned graph's Gumbel sample, the gates, lost messages, channel noise)
comes back in ``aux.replay`` so the update can replay it; nothing is written to module attributes
during forward.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace

import torch
from torch import nn

import comm
from marl.config import CommConfig

GRAPH_OPTIONS = ("k", "radius", "p", "seed", "sparsity")


@dataclass
class CommInputs:
    """What the graph may look at besides the features: the scene, who is alive, and who is on
    which team.

    ``team`` [N] (an integer team id per agent seat, the same for the whole batch) or None (no
    teams: everyone may talk). Given, messages never cross teams: every graph's edges between seats
    of different teams are dropped (``comm.Graph``), and knn / learned choose their k senders among
    teammates, so no policy receives anything from an opponent's seat, in any number of rounds.
    Competitive scenarios pass each seat's team here when collecting, evaluating and in tournaments."""

    positions: torch.Tensor | None = None  # [B, N, d]
    alive: torch.Tensor | None = None  # [B, N] bool
    team: torch.Tensor | None = None  # [N] long: team id per agent seat; None: no teams


@dataclass
class StepAux:
    """What one actor step computed besides its action parameters.

    ``edges``: the messages sent (for logging and pictures). ``replay``: the stochastic decisions
    taken, ``[B, ...]`` each; passing them back as ``replay=`` reproduces the step exactly.
    ``terms``: differentiable by-products a training hook's loss may use (``gate_open_prob``).
    ``edges`` are the messages that arrived (a closed receive gate or a lost message delivers none)."""

    edges: comm.Edges | None = None
    replay: dict[str, torch.Tensor] = field(default_factory=dict)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    message_floats: int = 0  # floats one message carries (the sender's features and any edge features)


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


def _replayed(replay: dict, aux: StepAux, key: str, draw):
    """The draw stored under ``key`` in ``replay`` if there is one, else a new ``draw()``; either
    way recorded in ``aux.replay`` (a ``draw`` may return None: nothing random to record)."""
    value = replay.get(key)
    if value is None:
        value = draw()
    if value is not None:
        aux.replay[key] = value
    return value


class Communication(nn.Module):
    def __init__(self, cfg: CommConfig, hidden: int, obs_dim: int, n_agents: int, pos_dim: int | None,
                 has_positions: bool, scenario: str, activation: str = "relu", teams: tuple | None = None):
        super().__init__()
        # the seats' teams in a competitive scenario (Scenario.team_ids): messages stay within a team
        # on every call, acting and updating alike, unless the caller's inputs name other teams
        self.register_buffer("teams", None if teams is None else torch.as_tensor(teams, dtype=torch.long),
                             persistent=False)
        self.graph = build_graph(cfg, n_agents, pos_dim, has_positions, scenario)
        self.gate = comm.Gate(obs_dim) if cfg.gating else None
        self.block = comm.MessagePassingBlock(
            hidden, rounds=cfg.rounds, layer=cfg.layer, edge_dim=self.graph.edge_dim, heads=cfg.heads,
            residual=cfg.residual, activation=activation,
        )
        self.hidden = hidden
        self.channel = cfg  # drop / noise / delay settings (comm.channel_*)

    @property
    def delayed(self) -> bool:
        """Whether messages carry the senders' previous features (the caller keeps them in its carry)."""
        return bool(self.channel.channel_delay)

    def carry_sizes(self) -> dict[str, int]:
        """What a delayed channel hands to the next step: the senders' features and, for position
        edge features, their positions (last dimension of each carried tensor)."""
        if not self.delayed:
            return {}
        sizes = {"comm_previous": self.hidden}
        if self.graph.edge_features:
            sizes["comm_previous_pos"] = self.graph.pos_dim
        return sizes

    def forward(self, x: torch.Tensor, obs: torch.Tensor, inputs: CommInputs, carry: dict | None = None,
                replay: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict, StepAux]:
        """``x`` [B, N, H] -> (features after message passing, the carry for the next step, aux).
        ``carry`` holds what a delayed channel kept from the previous step (``carry_sizes``);
        ``replay`` the random draws of an earlier call to take again (graph sample, gates, channel)."""
        B, N, H = x.shape
        replay, carry = replay or {}, carry or {}
        aux = StepAux()
        ctx = comm.GraphContext(n_envs=B, n_agents=N, positions=inputs.positions, alive=inputs.alive,
                                obs=obs, device=x.device, training=self.training,
                                team=self.teams if inputs.team is None else inputs.team)
        ctx.noise = _replayed(replay, aux, "graph_noise", lambda: self.graph.draw(ctx))
        edges = self.graph(ctx)
        gate = None
        if self.gate is not None:
            g, p = self.gate(obs, decisions=replay.get("gate"))
            aux.replay["gate"], aux.terms["gate_open_prob"] = g.detach(), p
            if self.channel.gate_side == "send":
                edges = comm.send_gated(edges, g)
            else:
                gate = g.reshape(-1)
        new_carry = {}
        if self.delayed:
            new_carry["comm_previous"] = x.detach()
            if "comm_previous_pos" in self.carry_sizes() and inputs.positions is not None:
                new_carry["comm_previous_pos"] = inputs.positions.detach()
        flat = x.reshape(B * N, H)
        shared = None
        if not self.training or self.channel.channel_in_training:
            edges, shared = self._imperfect_channel(edges, x, inputs, carry, replay, aux)
        aux.edges = edges if gate is None or not edges.num_edges else edges.select(gate[edges.index[1]] > 0)
        aux.message_floats = H * self.block.rounds + (self.graph.edge_dim if self.block.reads_edge_features else 0)
        if shared is None:
            return self.block(flat, edges, gate=gate).view(B, N, H), new_carry, aux
        # messages are computed from what the senders shared; each agent keeps its own features
        shared = shared.reshape(B * N, H)
        received = self.block(shared, edges, gate=gate) - (shared if self.block.residual else 0)
        return (received + (flat if self.block.residual else 0)).view(B, N, H), new_carry, aux

    def _imperfect_channel(self, edges, x: torch.Tensor, inputs: CommInputs, carry: dict, replay: dict,
                           aux: StepAux):
        """Lost messages, noisy and one-step-old sender features (``comm.channel_*``). Returns the
        edges that arrive and the senders' shared features (None: the features themselves). Every
        draw goes into ``aux.replay``, and a draw found in ``replay`` is taken instead of a new one.
        Position edge features travel through the same channel as the features: the sender's
        position is delayed and noisy like the rest of its message."""
        ch = self.channel
        B, N, _ = x.shape
        if ch.channel_drop > 0:  # one draw per (receiver, sender) pair: a fixed shape whatever the graph
            keep = _replayed(replay, aux, "channel_keep",
                             lambda: torch.rand(B, N, N, device=x.device) >= ch.channel_drop)
            if edges.num_edges:
                src, dst = edges.index
                edges = edges.select(keep[dst // N, dst % N, src % N])
        shared = None
        if ch.channel_delay and "comm_previous" in carry:
            shared = carry["comm_previous"].reshape(x.shape)
        if ch.channel_noise > 0:
            noise = _replayed(replay, aux, "channel_noise", lambda: ch.channel_noise * torch.randn_like(x))
            shared = (x if shared is None else shared) + noise
        positions = inputs.positions
        if self.graph.edge_features and edges.attr is not None and positions is not None:
            sent = positions
            if ch.channel_delay and "comm_previous_pos" in carry:
                sent = carry["comm_previous_pos"].reshape(positions.shape)
            if ch.channel_noise > 0:
                sent = sent + _replayed(replay, aux, "channel_pos_noise",
                                        lambda: ch.channel_noise * torch.randn_like(positions))
            if sent is not positions:
                edges = replace(edges, attr=comm.edge_features(edges.index, sent, receivers=positions))
        return edges, shared

    def graph_parameters(self) -> list[nn.Parameter]:
        return list(self.graph.graph_parameters())
