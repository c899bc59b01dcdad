"""GNN layers by name and the message-passing block the actors (and a graph critic) run.

Built-in layers are configured so that a layer's output is only what arrives along edges:
no self-loop insertion (``add_self_loops=False`` for GAT/GATv2/GCN) and no root/skip term
(``root_weight=False`` for SAGE/Transformer, GraphConv without ``lin_root``); an agent keeps its own
state through the block's residual. So "no edges" really means "no communication".
"""

from __future__ import annotations

import inspect
from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GATv2Conv, GCNConv, GraphConv, MessagePassing, SAGEConv, TransformerConv

from comm._util import CommError, import_object, unknown_name_message
from comm.graphs import Edges

__all__ = ["LAYERS", "MessagePassingBlock", "layer_names", "make_layer", "register_layer"]

LayerFactory = Callable[[int, int, int, int], MessagePassing]  # (in_dim, out_dim, edge_dim, heads) -> conv
LayerSpec = Union[str, type]

LAYERS: dict[str, LayerFactory] = {}


def register_layer(name: str, *, replace: bool = False) -> Callable[[type], type]:
    """Class decorator: ``@register_layer("my_conv")`` makes a ``MessagePassing`` subclass selectable by name.
    It is built as ``cls(in_dim, out_dim)`` (plus ``edge_dim=`` if its ``__init__`` takes one and the
    graph has edge features) and must return ``[num_nodes, out_dim]``."""

    def decorate(cls: type) -> type:
        _check_layer_class(cls, name)
        if name in LAYERS and not replace:
            old = getattr(LAYERS[name], "layer_class", None)  # None for the built-ins
            if old is None or (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
                raise CommError(f"layer {name!r} is already registered; pass replace=True to override it")
        LAYERS[name] = _user_factory(cls)
        return cls

    return decorate


def layer_names() -> list[str]:
    return sorted(LAYERS)


def _check_layer_class(cls: object, what: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, MessagePassing)):
        raise CommError(f"layer {what!r} must be a torch_geometric MessagePassing subclass, got {cls!r}")


def _user_factory(cls: type) -> LayerFactory:
    init = inspect.signature(cls.__init__).parameters
    takes_attr = "edge_attr" in inspect.signature(cls.forward).parameters

    def build(in_dim: int, out_dim: int, edge_dim: int, heads: int) -> MessagePassing:
        kwargs = {"edge_dim": edge_dim} if edge_dim and "edge_dim" in init else {}
        conv = cls(in_dim, out_dim, **kwargs)
        conv._comm_edge_attr = bool(edge_dim) and takes_attr
        return conv

    build.layer_class = cls  # type: ignore[attr-defined]
    return build


def _heads(name: str, out_dim: int, heads: int) -> int:
    if heads < 1 or out_dim % heads:
        raise CommError(f"layer {name!r}: the hidden size {out_dim} must be a multiple of heads={heads}")
    return out_dim // heads


class _Removed(nn.Module):
    """Stands in for a conv's unused root/skip linear layer, so it holds no parameters
    (unused parameters would never get a gradient)."""

    def reset_parameters(self) -> None:
        pass


def _builtin(name: str) -> Callable[[LayerFactory], LayerFactory]:
    def decorate(fn: LayerFactory) -> LayerFactory:
        def build(in_dim: int, out_dim: int, edge_dim: int, heads: int) -> MessagePassing:
            conv = fn(in_dim, out_dim, edge_dim, heads)
            conv._comm_edge_attr = bool(edge_dim) and "edge_attr" in inspect.signature(conv.forward).parameters
            return conv

        build.__doc__ = fn.__doc__
        LAYERS[name] = build
        return build

    return decorate


@_builtin("gat")
def _gat(i: int, o: int, e: int, h: int) -> MessagePassing:
    """GATConv, heads concatenated, no added self loops, edge features as edge_dim."""
    return GATConv(i, _heads("gat", o, h), heads=h, add_self_loops=False, edge_dim=e or None)


@_builtin("gatv2")
def _gatv2(i: int, o: int, e: int, h: int) -> MessagePassing:
    """GATv2Conv, heads concatenated, no added self loops, edge features as edge_dim."""
    return GATv2Conv(i, _heads("gatv2", o, h), heads=h, add_self_loops=False, edge_dim=e or None)


@_builtin("transformer")
def _transformer(i: int, o: int, e: int, h: int) -> MessagePassing:
    """TransformerConv (as InforMARL), heads concatenated, no root/skip term, edge features as edge_dim."""
    conv = TransformerConv(i, _heads("transformer", o, h), heads=h, root_weight=False, edge_dim=e or None)
    conv.lin_skip = _Removed()  # built even with root_weight=False, never used
    return conv


class ReceiverNormGCN(GCNConv):
    """GCN with each message scaled by 1 / (the receiver's in-degree): ``W mean_j x_j + b``.

    GCN's symmetric normalisation ``1 / sqrt(deg_i deg_j)`` reads the *sender's* degree, so an edge
    into j that never touches i would change what i receives from j: i's output would depend on
    agents beyond ``rounds`` hops, which breaks decentralised execution's locality. Normalising by
    the receiver's own degree keeps i's output a function of its incoming edges only (the same
    function class as SAGE's mean without its root term)."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__(in_channels, out_channels, add_self_loops=False, normalize=False, **kwargs)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        dst = edge_index[1]
        degree = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device).index_add_(
            0, dst, torch.ones_like(dst, dtype=x.dtype))
        scale = degree.clamp(min=1.0).reciprocal()[dst]
        return super().forward(x, edge_index, scale if edge_weight is None else scale * edge_weight)


@_builtin("gcn")
def _gcn(i: int, o: int, e: int, h: int) -> MessagePassing:
    """GCN normalised by the receiver's in-degree (mean of the messages; no added self loops, no edge
    features): the symmetric normalisation would make an agent depend on its senders' other edges."""
    return ReceiverNormGCN(i, o)


@_builtin("sage")
def _sage(i: int, o: int, e: int, h: int) -> MessagePassing:
    """SAGEConv, mean of the neighbours, no root term; no edge features."""
    return SAGEConv(i, o, root_weight=False)


class MessageGraphConv(GraphConv):
    """GraphConv without its root term: ``lin_rel(sum_j w_ij x_j)``."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__(in_channels, out_channels, **kwargs)
        self.lin_root = _Removed()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        n = x.shape[0]
        return super().forward((x, None), edge_index, edge_weight, size=(n, n))


@_builtin("graphconv")
def _graphconv(i: int, o: int, e: int, h: int) -> MessagePassing:
    """GraphConv (sum of the neighbours) without its root term; no edge features."""
    return MessageGraphConv(i, o)


def make_layer(name_or_class: LayerSpec, in_dim: int, out_dim: int, edge_dim: int = 0,
               heads: int = 4) -> MessagePassing:
    """A conv by name (``layer_names()``), a ``MessagePassing`` subclass, or a ``"module:Class"`` string.
    Attention heads are concatenated (``out_dim`` must be a multiple of ``heads``); edge features of
    size ``edge_dim`` go to layers that accept them and are left out otherwise."""
    if isinstance(name_or_class, str) and ":" in name_or_class:
        cls = import_object(name_or_class)
        _check_layer_class(cls, name_or_class)
        factory = _user_factory(cls)
    elif isinstance(name_or_class, str):
        if name_or_class not in LAYERS:
            raise CommError(unknown_name_message("layer", name_or_class, LAYERS))
        factory = LAYERS[name_or_class]
    else:
        _check_layer_class(name_or_class, getattr(name_or_class, "__name__", repr(name_or_class)))
        factory = _user_factory(name_or_class)
    return factory(int(in_dim), int(out_dim), int(edge_dim), int(heads))


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "leaky_relu": F.leaky_relu,
    "identity": lambda t: t,
}


class MessagePassingBlock(nn.Module):
    """R rounds of message passing over ``edges``, one conv per round.

    Round r: ``m = act(conv_r(h, edges))``, then ``h = h + s * m`` (residual) or
    ``h = s * m + (1 - s) * h`` (no residual), where ``s_i = gate_i`` if agent i has at least one
    incoming edge and 0 otherwise. So an agent with no incoming edges, or with gate 0, ends exactly
    where it started (bit for bit), whatever the layer (biases, root terms and act(0) included).
    ``edges.weight`` scales every message of any ``MessagePassing`` layer (attention included) through
    PyG's explain edge mask, so its gradient reaches a learned graph's logits.
    """

    def __init__(
        self,
        hidden: int,
        rounds: int = 1,
        layer: LayerSpec = "gat",
        edge_dim: int = 0,
        heads: int = 4,
        residual: bool = True,
        activation: str | Callable[[Tensor], Tensor] = "relu",
    ) -> None:
        super().__init__()
        if rounds < 0:
            raise CommError(f"rounds must be >= 0, got {rounds}")
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise CommError(unknown_name_message("activation", activation, _ACTIVATIONS))
            activation = _ACTIVATIONS[activation]
        self.hidden, self.rounds, self.edge_dim, self.residual = hidden, rounds, edge_dim, residual
        self.act = activation
        self.convs = nn.ModuleList(make_layer(layer, hidden, hidden, edge_dim, heads) for _ in range(rounds))

    @property
    def reads_edge_features(self) -> bool:
        """Whether the convs take the edges' features (layers without ``edge_attr`` leave them out)."""
        return any(getattr(conv, "_comm_edge_attr", False) for conv in self.convs)

    def forward(self, x: Tensor, edges: Edges, gate: Tensor | None = None) -> Tensor:
        n = x.shape[0]
        if edges.n_envs is not None and edges.n_agents is not None and edges.num_nodes != n:
            raise CommError(f"x has {n} nodes but the edges are for {edges.n_envs} envs x {edges.n_agents} agents")
        receives = torch.zeros(n, dtype=x.dtype, device=x.device).index_fill_(0, edges.index[1], 1.0)
        if gate is not None:
            if gate.numel() != n:
                raise CommError(f"gate must have one value per node ({n}), got shape {tuple(gate.shape)}")
            receives = receives * gate.reshape(-1).to(x.dtype)
        s = receives[:, None]
        for conv in self.convs:
            m = self.act(self._conv(conv, x, edges))
            x = x + s * m if self.residual else s * m + (1.0 - s) * x
        return x

    def _conv(self, conv: MessagePassing, x: Tensor, edges: Edges) -> Tensor:
        kwargs = {}
        if getattr(conv, "_comm_edge_attr", False):
            attr = edges.attr
            if attr is None:
                if edges.num_edges:
                    raise CommError(
                        f"the layer expects edge features (edge_dim={self.edge_dim}) but the graph gave none; use a "
                        "position graph (knn, radius) or make_graph(..., edge_features=True)"
                    )
                attr = x.new_zeros(0, self.edge_dim)
            kwargs["edge_attr"] = attr
        if edges.weight is None:
            if conv.explain:  # left on by a weighted call: switch PyG back to its fast path
                conv.explain = None
            return conv(x, edges.index, **kwargs)
        # PyG's explain step multiplies every message by _edge_mask (after message(), before
        # aggregation), for any MessagePassing layer. The explain flag is left on between weighted
        # calls (switching it re-inspects signatures, ~0.1 ms); the mask itself is cleared after each call.
        if not conv.explain:
            conv.explain = True
        conv._edge_mask = edges.weight
        conv._loop_mask = edges.index[0] != edges.index[1]
        conv._apply_sigmoid = False
        try:
            return conv(x, edges.index, **kwargs)
        finally:
            conv._edge_mask = None
            conv._loop_mask = None
            conv._apply_sigmoid = True
