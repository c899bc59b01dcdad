"""The built-in graphs: none, self, complete, ring, star, erdos_renyi, knn, radius.

All are vectorised over envs and agents. Only ``self`` has self loops; edges touching dead agents,
and edges between different teams (``ctx.team``), are dropped by ``Graph.__call__``; knn and radius
also exclude dead agents when choosing neighbours, and knn chooses among teammates only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from comm._util import CommError
from comm.graphs import Edges, Graph, GraphContext, pairwise_distances, register_graph

__all__ = [
    "CompleteGraph",
    "ErdosRenyiGraph",
    "FixedGraph",
    "KNNGraph",
    "NoGraph",
    "RadiusGraph",
    "RingGraph",
    "SelfGraph",
    "StarGraph",
]

@register_graph("none")
class NoGraph(Graph):
    """No edges: every agent acts on its own observation only."""

    def build(self, ctx: GraphContext) -> Edges:
        return Edges.empty(ctx.n_envs, ctx.n_agents, ctx.device)


@register_graph("self")
class SelfGraph(Graph):
    """Only self loops (i -> i): a message-passing baseline with no exchange between agents."""

    def build(self, ctx: GraphContext) -> Edges:
        nodes = torch.arange(ctx.num_nodes, device=ctx.device)
        return Edges(torch.stack([nodes, nodes]))


class FixedGraph(Graph):
    """A graph with the same edges in every env and step: implement ``local_adjacency(n)`` ->
    bool ``[N, N]`` (``adj[dst, src]``); the edges are computed once per (N, device) and tiled."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple[int, str], Tensor] = {}

    def local_adjacency(self, n: int) -> Tensor:
        raise NotImplementedError

    def build(self, ctx: GraphContext) -> Edges:
        key = (ctx.n_agents, str(ctx.device))
        if key not in self._cache:
            adj = self.local_adjacency(ctx.n_agents) & ~torch.eye(ctx.n_agents, dtype=torch.bool)
            dst, src = adj.nonzero(as_tuple=True)
            self._cache[key] = torch.stack([src, dst]).to(ctx.device)
        return Edges.tile(self._cache[key], ctx.n_envs, ctx.n_agents)


@register_graph("complete")
class CompleteGraph(FixedGraph):
    """Every agent receives from every other agent (N(N-1) edges per env)."""

    def local_adjacency(self, n: int) -> Tensor:
        return torch.ones(n, n, dtype=torch.bool)


@register_graph("ring")
class RingGraph(FixedGraph):
    """Agent i receives from agents i-1 and i+1 (mod N)."""

    def local_adjacency(self, n: int) -> Tensor:
        adj = torch.zeros(n, n, dtype=torch.bool)
        i = torch.arange(n)
        adj[i, (i + 1) % n] = True
        adj[i, (i - 1) % n] = True
        return adj


@register_graph("star")
class StarGraph(FixedGraph):
    """Agent 0 is the hub: it receives from every agent and every agent receives from it."""

    def local_adjacency(self, n: int) -> Tensor:
        adj = torch.zeros(n, n, dtype=torch.bool)
        adj[0, :] = True
        adj[:, 0] = True
        return adj


@register_graph("erdos_renyi")
class ErdosRenyiGraph(FixedGraph):
    """A fixed random undirected graph per (seed, N): each pair is joined with probability p."""

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise CommError(f"graph 'erdos_renyi': p must lie in [0, 1], got {p}")
        self.p, self.seed = float(p), int(seed)

    def local_adjacency(self, n: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        upper = (torch.rand(n, n, generator=gen) < self.p).triu(diagonal=1)
        return upper | upper.T


@register_graph("knn")
class KNNGraph(Graph):
    """Each alive agent receives from its k nearest other alive agents (k clamped to N - 1); with
    teams, its k nearest alive teammates (fewer if the team has fewer)."""

    needs_positions = True
    edge_features = True

    def __init__(self, k: int = 4) -> None:
        super().__init__()
        if int(k) < 1:
            raise CommError(f"graph 'knn': k must be >= 1, got {k}")
        self.k = int(k)

    def build(self, ctx: GraphContext) -> Edges:
        E, N = ctx.n_envs, ctx.n_agents
        k = min(self.k, N - 1)
        if k < 1:
            return Edges.empty(E, N, ctx.device)
        dist = pairwise_distances(ctx.positions)  # [E, receiver, sender]
        barred = torch.eye(N, dtype=torch.bool, device=ctx.device).expand(E, N, N)
        if ctx.alive is not None:
            barred = barred | ~ctx.alive[:, None, :]  # dead agents send nothing
        same_team = ctx.same_team()
        if same_team is not None:
            barred = barred | ~same_team  # barred before choosing: the k nearest teammates, not k minus opponents
        nearest_dist, nearest = dist.masked_fill(barred, float("inf")).topk(k, dim=-1, largest=False)
        keep = torch.isfinite(nearest_dist)  # fewer than k alive others (teammates): drop the padding
        if ctx.alive is not None:
            keep = keep & ctx.alive[:, :, None]  # dead agents receive nothing
        offsets = (torch.arange(E, device=ctx.device) * N)[:, None, None]
        dst = (offsets + torch.arange(N, device=ctx.device)[None, :, None]).expand(E, N, k)
        src = offsets + nearest
        return Edges(torch.stack([src[keep], dst[keep]]))


@register_graph("radius")
class RadiusGraph(Graph):
    """Alive agents closer than ``radius`` exchange messages both ways (InforMARL's sensing radius)."""

    needs_positions = True
    edge_features = True

    def __init__(self, radius: float = 1.0) -> None:
        super().__init__()
        if float(radius) < 0:
            raise CommError(f"graph 'radius': radius must be >= 0, got {radius}")
        self.radius = float(radius)

    def build(self, ctx: GraphContext) -> Tensor:
        N = ctx.n_agents
        adj = pairwise_distances(ctx.positions) < self.radius
        adj &= ~torch.eye(N, dtype=torch.bool, device=ctx.device)
        if ctx.alive is not None:
            adj &= ctx.alive[:, :, None] & ctx.alive[:, None, :]
        return adj
