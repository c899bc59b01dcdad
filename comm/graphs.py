"""Communication graphs: who talks to whom, for all E envs of a batch at once.

Node ``e * N + i`` is agent ``i`` of env ``e``; an edge ``(src, dst)`` (PyG order: row 0 sends,
row 1 receives) never joins two envs, so the E envs form one disjoint batch graph. Every built-in
is vectorised over envs and agents (no Python loop over either). See ``comm/__init__.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from comm._util import CommError, check_options, init_options, one_line, unknown_name_message

__all__ = [
    "GRAPHS",
    "Edges",
    "Graph",
    "GraphContext",
    "edge_features",
    "graph_names",
    "load_plugin",
    "make_graph",
    "pairwise_distances",
    "register_graph",
    "validate_edges",
]


@dataclass
class GraphContext:
    """What a graph may look at to build this step's edges (all tensors but ``team`` have a leading
    env axis). ``team`` [N] gives each agent seat a team id, the same in every env; given, no edge
    ever joins two agents of different teams (``Graph.__call__`` drops them; ``same_team()`` lets a
    graph that picks a fixed number of neighbours choose among teammates only). None: no teams."""

    n_envs: int
    n_agents: int
    positions: Tensor | None = None  # [E, N, d] float
    alive: Tensor | None = None  # [E, N] bool
    obs: Tensor | None = None  # [E, N, O]
    device: torch.device | str | None = None  # default: the device of the first tensor given, else cpu
    training: bool = False
    # a stochastic graph's random draws for this step (``Graph.draw``): given, the graph uses them
    # instead of drawing, so a step can be rebuilt exactly (PPO's update replays the rollout's graph)
    noise: Tensor | None = None
    team: Tensor | None = None  # [N] integer team id per agent seat (constant over envs); None: no teams

    def __post_init__(self) -> None:
        E, N = self.n_envs, self.n_agents
        for field, tensor, ndim in (("positions", self.positions, 3), ("alive", self.alive, 2), ("obs", self.obs, 3)):
            if tensor is not None and (tensor.dim() != ndim or tuple(tensor.shape[:2]) != (E, N)):
                raise CommError(f"GraphContext.{field} must have shape [E={E}, N={N}, ...], got {tuple(tensor.shape)}")
        if self.alive is not None and self.alive.dtype != torch.bool:
            raise CommError(f"GraphContext.alive must be a bool tensor, got {self.alive.dtype}")
        if self.team is not None:
            team = self.team
            if not isinstance(team, Tensor) or team.dtype.is_floating_point or team.is_complex():
                got = team.dtype if isinstance(team, Tensor) else type(team).__name__
                raise CommError(f"GraphContext.team must be an integer tensor [N={N}], got {got}")
            if tuple(team.shape) != (N,):
                raise CommError(f"GraphContext.team must have shape [N={N}] (one team id per agent seat), "
                                f"got {tuple(team.shape)}")
        if self.device is None:
            given = [t for t in (self.positions, self.alive, self.obs, self.team) if t is not None]
            self.device = given[0].device if given else torch.device("cpu")
        self.device = torch.device(self.device)
        if self.team is not None:
            self.team = self.team.to(device=self.device, dtype=torch.long)

    @property
    def num_nodes(self) -> int:
        return self.n_envs * self.n_agents

    def same_team(self) -> Tensor | None:
        """``[N, N]`` bool, ``out[dst, src]``: whether src and dst are on the same team (None: no
        teams, everyone may talk). A graph that picks a fixed number of senders per agent bars the
        others before choosing, so an agent gets its k best teammates."""
        if self.team is None:
            return None
        return self.team[:, None] == self.team[None, :]


def pairwise_distances(positions: Tensor) -> Tensor:
    """``[E, N, d] -> [E, N, N]`` with ``out[e, i, j] = |p_i - p_j|`` (exact, not the cdist matmul trick)."""
    return (positions[:, :, None, :] - positions[:, None, :, :]).norm(dim=-1)


def edge_features(index: Tensor, positions: Tensor, receivers: Tensor | None = None) -> Tensor:
    """``[M, d + 1]``: relative position ``pos[src] - pos[dst]`` and its length, per edge.
    ``receivers`` (default ``positions``) gives the receivers' positions when the senders' differ
    from them (a delayed or noisy channel carries what the senders shared)."""
    flat = positions.reshape(-1, positions.shape[-1])
    dst = flat if receivers is None else receivers.reshape(-1, receivers.shape[-1])
    rel = flat[index[0]] - dst[index[1]]
    return torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)


@dataclass
class Edges:
    """Batched edges: ``index`` [2, M] int64 global node ids (row 0 source, row 1 target),
    ``attr`` [M, F] edge features or None, ``weight`` [M] message weights or None (all 1)."""

    index: Tensor
    attr: Tensor | None = None
    weight: Tensor | None = None
    n_envs: int | None = None  # filled in by Graph.__call__
    n_agents: int | None = None

    @property
    def num_edges(self) -> int:
        return int(self.index.shape[1])

    @property
    def num_nodes(self) -> int:
        if self.n_envs is None or self.n_agents is None:
            raise CommError("Edges.num_nodes is unknown: build edges through Graph.__call__ or pass n_envs/n_agents")
        return self.n_envs * self.n_agents

    @classmethod
    def empty(cls, n_envs: int, n_agents: int, device: torch.device | str | None = None) -> Edges:
        return cls(torch.empty(2, 0, dtype=torch.long, device=device), n_envs=n_envs, n_agents=n_agents)

    @classmethod
    def from_adjacency(
        cls, adj: Tensor, positions: Tensor | None = None, weight_matrix: Tensor | None = None
    ) -> Edges:
        """``adj[e, dst, src] = True`` means src sends to dst. ``positions`` [E, N, d] adds edge features;
        ``weight_matrix`` ([E, N, N] or [N, N], same indexing) gives each edge its weight."""
        if adj.dim() != 3 or adj.shape[1] != adj.shape[2] or adj.dtype != torch.bool:
            raise CommError(f"an adjacency must be a bool tensor [E, N, N], got {adj.dtype} {tuple(adj.shape)}")
        E, N, _ = adj.shape
        env, dst, src = adj.nonzero(as_tuple=True)  # sorted by (env, dst, src)
        index = torch.stack([env * N + src, env * N + dst])
        weight = None
        if weight_matrix is not None:
            weight = weight_matrix[env, dst, src] if weight_matrix.dim() == 3 else weight_matrix[dst, src]
        attr = edge_features(index, positions) if positions is not None else None
        return cls(index, attr, weight, E, N)

    @classmethod
    def tile(cls, local: Tensor, n_envs: int, n_agents: int) -> Edges:
        """The same local edges ``[2, m]`` (ids in 0..N-1) in every env, offset by ``env * N``."""
        offsets = torch.arange(n_envs, device=local.device) * n_agents
        index = (local[:, None, :] + offsets[None, :, None]).reshape(2, -1)
        return cls(index, n_envs=n_envs, n_agents=n_agents)

    def to_dense(self, n_envs: int | None = None, n_agents: int | None = None, weighted: bool = False) -> Tensor:
        """``[E, N, N]`` with ``out[e, dst, src]``: bool, or the summed edge weights if ``weighted``."""
        E = self.n_envs if n_envs is None else n_envs
        N = self.n_agents if n_agents is None else n_agents
        if E is None or N is None:
            raise CommError("Edges.to_dense needs n_envs and n_agents")
        src, dst = self.index
        at = (dst // N, dst % N, src % N)
        if not weighted:
            out = torch.zeros(E, N, N, dtype=torch.bool, device=self.index.device)
            return out.index_put_(at, torch.ones_like(src, dtype=torch.bool))
        w = self.weight if self.weight is not None else torch.ones(self.num_edges, device=self.index.device)
        out = torch.zeros(E, N, N, dtype=w.dtype, device=w.device)
        return out.index_put_(at, w, accumulate=True)

    def select(self, keep: Tensor) -> Edges:
        """The edges where the bool mask ``keep`` [M] is True."""
        pick = (lambda t: None if t is None else t[keep])  # noqa: E731
        return replace(self, index=self.index[:, keep], attr=pick(self.attr), weight=pick(self.weight))

    def to(self, device: torch.device | str) -> Edges:
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return replace(self, index=self.index.to(device), attr=move(self.attr), weight=move(self.weight))


def validate_edges(edges: Any, ctx: GraphContext, graph_name: str) -> None:
    """Raise a one-line error naming ``graph_name`` and the problem if ``edges`` is not valid for ``ctx``."""

    def fail(problem: str) -> None:
        raise CommError(f"graph {graph_name!r} returned invalid edges: {problem}")

    if not isinstance(edges, Edges):
        fail(f"expected comm.Edges or a bool adjacency [E, N, N], got {type(edges).__name__}")
    index = edges.index
    if not isinstance(index, Tensor):
        fail(f"index must be a torch.Tensor, got {type(index).__name__}")
    if index.dtype != torch.long:
        fail(f"index must be int64 (torch.long), got {index.dtype}")
    if index.dim() != 2 or index.shape[0] != 2:
        fail(f"index must have shape [2, M], got {tuple(index.shape)}")
    if index.device.type != ctx.device.type:
        fail(f"index is on {index.device}, the batch is on {ctx.device}")
    M, N, n = index.shape[1], ctx.n_agents, ctx.num_nodes
    if M:
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= n:
            fail(f"node ids must lie in [0, E*N = {n}), got values in [{lo}, {hi}]")
        if bool((index[0] // N != index[1] // N).any()):
            fail(f"an edge joins two different envs (node e*N+i belongs to env e; N = {N})")
    for field, value, ndim in (("attr", edges.attr, 2), ("weight", edges.weight, 1)):
        if value is None:
            continue
        if not isinstance(value, Tensor) or not value.is_floating_point():
            fail(f"{field} must be a float tensor, got {getattr(value, 'dtype', type(value).__name__)}")
        if value.dim() != ndim or value.shape[0] != M:
            want = "[M, F]" if ndim == 2 else "[M]"
            fail(f"{field} must have shape {want} with M = {M} edges, got {tuple(value.shape)}")


class Graph(nn.Module):
    """A communication graph. Implement ``build(ctx)`` returning ``Edges`` or a bool adjacency
    ``[E, N, N]`` (``adj[e, dst, src]``); call the graph (``graph(ctx)``) to get checked ``Edges``.

    Edges never cross teams: when ``ctx.team`` is given, ``graph(ctx)`` drops every edge whose sender
    and receiver have different team ids, for every graph (built-in or a user's; there is no opt-out),
    after dropping dead agents' edges. A graph that keeps a fixed number of senders per agent (knn,
    learned) also bars other teams before choosing (``ctx.same_team()``), so it keeps k teammates.

    Class attributes: ``needs_positions`` (asking for it without positions is an error);
    ``edge_features`` (the base class adds ``[pos[src] - pos[dst], distance]`` per edge, needs
    positions); ``edge_dim`` (0 or the size of the edge features; a property, ``pos_dim + 1`` when
    ``edge_features``; a graph that returns its own ``attr`` sets it as a plain class attribute).
    """

    needs_positions: ClassVar[bool] = False
    edge_features: bool = False
    drop_dead: bool = True  # remove edges to or from agents that are not alive (when ctx.alive is given)
    validate: bool = True  # check every build's edges (cheap; turn off for speed once a graph is trusted)
    pos_dim: int = 2  # size of a position; make_graph(pos_dim=...) sets it from the scenario
    graph_name: ClassVar[str | None] = None  # set by @register_graph

    @property
    def edge_dim(self) -> int:  # type: ignore[override]
        return self.pos_dim + 1 if self.edge_features else 0

    @property
    def label(self) -> str:
        return self.graph_name or type(self).__name__

    def build(self, ctx: GraphContext) -> Edges | Tensor:
        raise NotImplementedError(f"graph {self.label!r} must implement build(ctx)")

    def graph_parameters(self) -> list[nn.Parameter]:
        """Parameters of the graph itself (e.g. learned adjacency logits), for their own optimizer."""
        return list(self.parameters())

    def draw(self, ctx: GraphContext) -> Tensor | None:
        """This step's random draws ``[E, ...]`` for a stochastic graph (None: the graph is
        deterministic in ``ctx``). ``build`` reads them from ``ctx.noise``; a caller that keeps them
        can rebuild the same edges later by passing them back."""
        return None

    def forward(self, ctx: GraphContext) -> Edges:
        if (self.needs_positions or self.edge_features) and ctx.positions is None:
            why = "needs agent positions" if self.needs_positions else "adds position edge features"
            fine = ", ".join(n for n in graph_names() if not GRAPHS[n].needs_positions)
            raise CommError(
                f"graph {self.label!r} {why}, but this scenario provides none. Graphs that need no positions: {fine}"
            )
        out = self.build(ctx)
        if isinstance(out, Tensor):
            if out.dtype != torch.bool or tuple(out.shape) != (ctx.n_envs, ctx.n_agents, ctx.n_agents):
                raise CommError(
                    f"graph {self.label!r} returned invalid edges: an adjacency must be a bool tensor "
                    f"[E, N, N] = [{ctx.n_envs}, {ctx.n_agents}, {ctx.n_agents}], got {out.dtype} {tuple(out.shape)}"
                )
            out = Edges.from_adjacency(out)
        if self.validate:
            validate_edges(out, ctx, self.label)
        out = replace(out, n_envs=ctx.n_envs, n_agents=ctx.n_agents)
        if ctx.alive is not None and self.drop_dead and out.num_edges:
            alive = ctx.alive.reshape(-1)
            out = out.select(alive[out.index[0]] & alive[out.index[1]])
        if ctx.team is not None and out.num_edges:  # messages never cross teams, whatever the graph
            seat_team = ctx.team[out.index % ctx.n_agents]  # [2, M]: the sender's and the receiver's team
            out = out.select(seat_team[0] == seat_team[1])
        if self.edge_features and out.attr is None:
            if ctx.positions.shape[-1] != self.pos_dim:
                raise CommError(
                    f"graph {self.label!r} was made for {self.pos_dim}-d positions (edge_dim {self.edge_dim}), "
                    f"got {ctx.positions.shape[-1]}-d; pass pos_dim to make_graph"
                )
            out.attr = edge_features(out.index, ctx.positions)
        return out


# ----------------------------------------------------------------------------------------------
# registry

GRAPHS: dict[str, type[Graph]] = {}
_BUILTINS_LOADED = False


def register_graph(name: str, *, replace: bool = False) -> Callable[[type[Graph]], type[Graph]]:
    """Class decorator: ``@register_graph("my_graph")`` makes the graph selectable by name."""

    def decorate(cls: type[Graph]) -> type[Graph]:
        if not (isinstance(cls, type) and issubclass(cls, Graph)):
            raise CommError(f"@register_graph({name!r}) must decorate a comm.Graph subclass, got {cls!r}")
        old = GRAPHS.get(name)
        same = old is not None and (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
        if old is not None and not (same or replace):
            raise CommError(
                f"graph {name!r} is already registered ({old.__module__}.{old.__qualname__}); pass replace=True"
            )
        cls.graph_name = name
        GRAPHS[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        import comm.builtin  # noqa: F401  (registers none, self, complete, ring, star, erdos_renyi, knn, radius)
        import comm.learned  # noqa: F401  (registers learned)


def graph_names() -> list[str]:
    _load_builtins()
    return sorted(GRAPHS)


_CONTEXT_ARGS = ("n_agents",)  # scenario facts a graph's __init__ may take; not user options


def make_graph(
    name: str,
    *,
    n_agents: int | None = None,
    pos_dim: int | None = None,
    edge_features: bool | None = None,
    **options: Any,
) -> Graph:
    """A graph by name. ``options`` are checked against the class's ``__init__``; ``n_agents`` is passed
    to graphs whose ``__init__`` takes it (``learned``); ``pos_dim`` sizes position edge features;
    ``edge_features`` turns them on/off (default: on for position graphs)."""
    _load_builtins()
    if name not in GRAPHS:
        raise CommError(unknown_name_message("graph", name, GRAPHS))
    cls = GRAPHS[name]
    check_options("graph", name, cls, options, exclude=_CONTEXT_ARGS)
    params = init_options(cls)
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in options]
    kwargs = dict(options)
    if "n_agents" in params:
        if n_agents is None and "n_agents" in missing:
            raise CommError(f"graph {name!r} is built for a fixed number of agents: pass n_agents to make_graph")
        if n_agents is not None:
            kwargs["n_agents"] = n_agents
        missing = [k for k in missing if k != "n_agents"]
    if missing:
        raise CommError(f"graph {name!r} needs option(s) {', '.join(missing)}")
    graph = cls(**kwargs)
    if pos_dim is not None:
        graph.pos_dim = int(pos_dim)
    if edge_features is not None:
        graph.edge_features = bool(edge_features)
    return graph


def load_plugin(path: str | Path) -> ModuleType:
    """Import a user's Python file by path so its decorators (``@register_graph``, ``@register_layer``,
    ``@register_algorithm``, ...) and ``register(...)`` calls run. A file already imported with the
    same content is not run again (its registrations stand)."""
    path = Path(path)
    if not path.is_file():
        raise CommError(f"cannot load plugin {str(path)!r}: no such file")
    resolved = str(path.resolve())
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"comm_plugin_{stem}_{hashlib.sha1(resolved.encode()).hexdigest()[:8]}"
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__plugin_digest__", None) == digest:
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise CommError(f"cannot load plugin {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    module.__plugin_digest__ = digest
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure is reported in one line, naming the file
        sys.modules.pop(module_name, None)
        raise CommError(f"cannot load plugin {str(path)!r}: {one_line(exc)}") from exc
    return module
