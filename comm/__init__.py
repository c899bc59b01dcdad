"""Communication between decentralized agents: graphs (who talks to whom) and GNN layers (how).

``comm`` knows nothing about RL; it needs only torch and torch_geometric. Shapes: E envs, N agents,
node ``e * N + i`` is agent i of env e, and all E envs form one disjoint batch graph.

Graphs
------
``GraphContext(n_envs, n_agents, positions=None [E,N,d], alive=None [E,N] bool, obs=None [E,N,O],
device=None, training=False, noise=None, team=None [N] int)`` is what a graph sees.
``graph(ctx) -> Edges`` (``Graph.__call__``) builds, validates and completes the edges:

``Edges(index [2,M] int64, attr [M,F] | None, weight [M] | None, n_envs, n_agents)``: row 0 of
``index`` sends, row 1 receives (PyG); ``attr`` = ``[pos[src] - pos[dst], distance]`` for graphs with
``edge_features``; ``weight`` multiplies messages (None = all 1; the learned graph's straight-through
values). Helpers: ``Edges.from_adjacency(adj [E,N,N] bool with adj[e,dst,src], positions=None,
weight_matrix=None)``, ``Edges.empty(E, N, device)``, ``Edges.tile(local [2,m], E, N)``,
``.num_nodes``, ``.num_edges``, ``.to_dense(E=None, N=None, weighted=False) -> [E,N,N]``,
``.select(mask)``, ``.to(device)``.

``make_graph(name, *, n_agents=None, pos_dim=None, edge_features=None, **options) -> Graph``: options
are checked against the class's ``__init__`` (unknown option or graph -> ``CommError`` naming the
valid ones); ``n_agents`` reaches graphs built for a fixed N (``learned``); ``pos_dim`` (default 2)
sizes position edge features; ``edge_features=True`` adds them to any graph (needs positions).
``graph.edge_dim`` is the edge-feature size to give ``MessagePassingBlock``; ``graph.needs_positions``
says whether the scenario must provide positions (if not: ``CommError`` listing the graphs that don't);
``graph.graph_parameters()`` are its own learnable parameters (give them their own optimizer and keep
them out of the policy's). ``graph_names()``, ``GRAPHS``, ``register_graph(name)``,
``load_plugin(path)`` (imports a user file so its decorators run; a failure is a one-line
``CommError`` naming the file). ``validate_edges(edges, ctx, graph_name)`` runs inside ``__call__``
(``graph.validate = False`` skips it). Edges to or from agents with ``alive == False`` are dropped for
every graph (``drop_dead``). Edges never cross teams: with ``ctx.team`` (a team id per agent seat,
the same in every env) every edge between two teams is dropped for every graph, with no opt-out;
a graph that keeps k senders per agent bars the other teams before choosing (``ctx.same_team()``
[N, N] bool, ``[dst, src]``), as ``knn`` and ``learned`` do, so it keeps k teammates.

Built-ins: ``none``, ``self`` (self loops only), ``complete``, ``ring``, ``star`` (agent 0 hub),
``erdos_renyi(p=0.5, seed=0)`` (fixed per (seed, N), symmetric), ``knn(k=4)`` (k nearest other
alive agents (teammates), k clamped to N-1), ``radius(radius=1.0)`` (distance < radius), and
``learned(n_agents, sparsity=0.4, tau=1.0, hard=True)`` (``LearnedGraph``: CommFormer-style, k =
max(floor(sparsity*N), 1) incoming edges (it warns when that is N-1, the complete graph) by Gumbel
top-k with straight-through weights in training (its noise is ``draw(ctx)``, replayed via
``GraphContext(noise=...)``), deterministic top-k at evaluation or once ``freeze()``-d;
``adjacency_probs()``, ``eval_adjacency()``; refuses another N). Only ``self`` has self loops: an
agent keeps its own state through the block's residual.

A user's graph (``build`` returns ``Edges`` or a bool adjacency ``[E,N,N]`` that the base converts)::

    import torch
    from comm import Graph, register_graph

    @register_graph("leader_and_nearest")
    class LeaderAndNearest(Graph):
        \"\"\"Every agent hears agent 0 and its nearest other agent.\"\"\"
        needs_positions = True
        edge_features = True             # the base adds [pos[src] - pos[dst], distance] per edge

        def build(self, ctx):
            E, N = ctx.n_envs, ctx.n_agents
            dist = torch.cdist(ctx.positions, ctx.positions)          # [E, N, N]
            dist = dist + torch.diag(torch.full((N,), float("inf"), device=ctx.device))
            adj = torch.zeros(E, N, N, dtype=torch.bool, device=ctx.device)  # adj[e, dst, src]
            if N > 1:
                adj.scatter_(2, dist.argmin(-1, keepdim=True), True)
            adj[:, :, 0] = True
            return adj & ~torch.eye(N, dtype=torch.bool, device=ctx.device)

Select it with ``make_graph("leader_and_nearest")`` (or ``load_plugin("my_graphs.py")`` first).

Gating
------
``Gate(obs_dim, hidden=32, init_open=0.9)``; ``g, p = gate(obs [E,N,O], sample=None, decisions=None)``
gives ``g`` [E,N] in {0,1} (Bernoulli in training, p > 0.5 at eval; straight-through gradient of
``p``) and ``p`` [E,N]; pass ``gate=g.reshape(-1)`` to the block (a receive gate) or keep only the
edges whose sender's gate is open, weighted by it (``send_gated(edges, g)``: a send gate), add
``coef * Gate.communication_cost(p)`` to the loss; ``decisions=`` replays stored hard gates.

Layers
------
``make_layer(name_or_class, in_dim, out_dim, edge_dim=0, heads=4) -> MessagePassing``: ``gat``,
``gatv2``, ``gcn``, ``sage``, ``transformer``, ``graphconv`` (``layer_names()``), a MessagePassing
subclass, a ``"module:Class"`` string, or a name from ``@register_layer(name)``. Built-ins never
insert self loops and carry no root/skip term, so their output is only what arrives along edges.

``MessagePassingBlock(hidden, rounds=1, layer="gat", edge_dim=0, heads=4, residual=True,
activation="relu")``; ``block(x [E*N, hidden], edges, gate=None [E*N]) -> [E*N, hidden]``. Each
round: ``m = act(conv(h, edges))``; ``h = h + s * m`` with ``s_i = gate_i * [i has an incoming
edge]``, so gate 0 or no incoming edge leaves ``h_i`` bit-identical (the receiver's aggregated
message is scaled, before the residual add). ``edges.weight`` scales each message of any
MessagePassing layer through PyG's explain edge mask (set for the call, cleared after), so gradients
reach the learned graph's logits. A decentralized actor: ``h = encoder(obs_i)`` ->
``block(h, graph(ctx), gate)`` -> action head; agent i depends only on agents with a path to it
within ``rounds`` hops.

Methods
-------
``comm.methods``: the published schemes as presets of the above (``commnet``, ``ic3net``, ``tarmac``,
``dgn``, ``commformer``, ``none``): ``method_settings(name) -> {comm.* key: value}``,
``register_method(name, description, **settings)``, ``method_names()``.

Errors are ``CommError`` (a ``ValueError``), one line each.
"""

from comm._util import CommError, unknown_name_message
from comm.builtin import FixedGraph
from comm.graphs import (
    GRAPHS,
    Edges,
    Graph,
    GraphContext,
    edge_features,
    graph_names,
    load_plugin,
    make_graph,
    pairwise_distances,
    register_graph,
    validate_edges,
)
from comm.layers import LAYERS, MessagePassingBlock, layer_names, make_layer, register_layer
from comm.learned import Gate, LearnedGraph, send_gated, straight_through
from comm.methods import METHODS, CommMethod, method_names, method_settings, register_method

__all__ = [
    "GRAPHS",
    "LAYERS",
    "METHODS",
    "CommMethod",
    "CommError",
    "Edges",
    "FixedGraph",
    "Gate",
    "Graph",
    "GraphContext",
    "LearnedGraph",
    "MessagePassingBlock",
    "edge_features",
    "graph_names",
    "layer_names",
    "load_plugin",
    "make_graph",
    "make_layer",
    "method_names",
    "method_settings",
    "pairwise_distances",
    "register_graph",
    "register_layer",
    "register_method",
    "send_gated",
    "straight_through",
    "unknown_name_message",
    "validate_edges",
]
