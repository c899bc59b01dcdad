"""GNN layers and the message-passing block: every layer runs, no edges / gate 0 = no communication,
message weights reach gradients, decentralization, user layers. Fast: no training."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import MessagePassing

from comm import (
    CommError,
    Edges,
    GraphContext,
    MessagePassingBlock,
    layer_names,
    make_graph,
    make_layer,
    register_layer,
)
from comm import layers as layers_module

LAYERS = ["gat", "gatv2", "gcn", "graphconv", "sage", "transformer"]
ATTENTION = ["gat", "gatv2", "transformer"]
H = 8


class MeanMessages(MessagePassing):
    """A user layer: mean of linearly transformed neighbour states, optionally plus edge features."""

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None):
        super().__init__(aggr="mean")
        self.lin = torch.nn.Linear(in_channels, out_channels)
        self.edge_lin = torch.nn.Linear(edge_dim, out_channels) if edge_dim else None

    def forward(self, x, edge_index, edge_attr=None):
        return self.propagate(edge_index, x=self.lin(x), edge_attr=edge_attr)

    def message(self, x_j, edge_attr=None):
        return x_j if self.edge_lin is None or edge_attr is None else x_j + self.edge_lin(edge_attr)


@pytest.fixture
def private_layers(monkeypatch):
    monkeypatch.setattr(layers_module, "LAYERS", dict(layers_module.LAYERS))
    return layers_module.LAYERS


def _batch(graph="knn", E=4, N=6, seed=0, **options):
    gen = torch.Generator().manual_seed(seed)
    ctx = GraphContext(E, N, positions=torch.rand(E, N, 2, generator=gen) * 2, training=True)
    g = make_graph(graph, n_agents=N, **options)
    return g, g(ctx), torch.randn(E * N, H, generator=gen)


def _block(layer, edge_dim=0, rounds=2, seed=0, **kw):
    torch.manual_seed(seed)
    return MessagePassingBlock(H, rounds=rounds, layer=layer, edge_dim=edge_dim, heads=2, **kw)


def test_layer_names():
    assert layer_names() == sorted(LAYERS)


@pytest.mark.parametrize("layer", LAYERS + [MeanMessages])
@pytest.mark.parametrize("graph", ["knn", "complete"])
def test_every_layer_runs_forward_and_backward_on_a_batch(layer, graph):
    g, edges, x = _batch(graph, k=2) if graph == "knn" else _batch(graph)
    block = _block(layer, edge_dim=g.edge_dim)
    x.requires_grad_(True)
    out = block(x, edges)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    grads = [p.grad for p in block.parameters() if p.requires_grad]
    assert grads and all(gr is not None for gr in grads), "a parameter got no gradient"


def test_edge_features_reach_attention_layers():
    g, edges, x = _batch("knn", k=3)
    for layer in ATTENTION:
        block = _block(layer, edge_dim=g.edge_dim)
        shifted = Edges(edges.index, edges.attr + 1.0, None, edges.n_envs, edges.n_agents)
        assert not torch.equal(block(x, edges), block(x, shifted)), layer


@pytest.mark.parametrize("layer", LAYERS + [MeanMessages])
@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_no_edges_equals_no_communication(layer, residual, activation):
    g, edges, x = _batch("none")
    assert edges.num_edges == 0
    block = _block(layer, edge_dim=3 if layer in ATTENTION else 0, residual=residual, activation=activation)
    assert torch.equal(block(x, edges), x)  # residual path only: bit for bit


@pytest.mark.parametrize("layer", LAYERS + [MeanMessages])
def test_gate_zero_equals_no_communication(layer):
    g, edges, x = _batch("complete")
    block = _block(layer)
    no_comm = block(x, Edges.empty(4, 6))
    assert torch.equal(block(x, edges, gate=torch.zeros(24)), no_comm)
    gate = (torch.arange(24) % 2).float()  # odd agents listen, even agents do not
    out = block(x, edges, gate=gate)
    closed = gate == 0
    assert torch.equal(out[closed], no_comm[closed])
    assert not torch.equal(out[~closed], no_comm[~closed])
    assert torch.equal(block(x, edges, gate=torch.ones(4, 6)), block(x, edges))


@pytest.mark.parametrize("layer", ATTENTION + ["gcn", MeanMessages])
def test_message_weights_reach_gradients(layer):
    _, edges, x = _batch("complete")
    block = _block(layer)
    weight = torch.ones(edges.num_edges, requires_grad=True)
    weighted = Edges(edges.index, None, weight, edges.n_envs, edges.n_agents)
    out = block(x, weighted)
    assert torch.allclose(out, block(x, edges), atol=1e-6)  # weight 1 = unweighted
    out.pow(2).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    halved = Edges(edges.index, None, torch.full_like(weight, 0.5), edges.n_envs, edges.n_agents)
    assert not torch.allclose(block(x, halved), out)
    conv = block.convs[0]  # the mask is cleared after each call
    assert conv._edge_mask is None and conv._loop_mask is None
    assert torch.equal(block(x, edges), block(x, edges))  # unweighted again afterwards


@pytest.mark.parametrize("layer", LAYERS + [MeanMessages])
def test_decentralization_ring(layer):
    """Agent i's output depends only on agents within `rounds` hops along incoming edges."""
    E, N = 2, 8
    edges = make_graph("ring")(GraphContext(E, N))
    for rounds in (1, 2):
        block = _block(layer, rounds=rounds)
        x = torch.randn(E * N, H)
        base = block(x, edges)
        i = 0  # agent 0 of env 0; distances on the ring of 8: agent d and 8 - d are d hops away
        for j, hops in [(1, 1), (7, 1), (2, 2), (6, 2), (3, 3), (4, 4)]:
            changed = x.clone()
            changed[j] += torch.randn(H)
            out = block(changed, edges)
            if hops <= rounds:
                assert not torch.equal(out[i], base[i]), (layer, rounds, j)
            else:
                assert torch.equal(out[i], base[i]), (layer, rounds, j)
            assert torch.equal(out[N:], base[N:]), "a change in env 0 reached env 1"


@pytest.mark.parametrize("layer", ["gat", "transformer"])
def test_decentralization_with_learned_weights(layer):
    N = 6
    graph = make_graph("learned", n_agents=N, sparsity=0.34)
    torch.manual_seed(5)
    edges = graph(GraphContext(1, N, training=True))
    block = _block(layer, rounds=1)
    x = torch.randn(N, H)
    base = block(x, edges)
    dense = edges.to_dense()[0]
    for j in range(1, N):
        changed = x.clone()
        changed[j] += 1.0
        same = torch.equal(block(changed, edges)[0], base[0])
        assert same != bool(dense[0, j]), j


# ---- make_layer: names, classes, strings, errors ---------------------------------------------


def test_user_layer_by_class_string_and_registered_name(private_layers):
    _, edges, x = _batch("knn", k=2)
    by_class = make_layer(MeanMessages, H, H, edge_dim=3)
    by_string = make_layer(f"{__name__}:MeanMessages", H, H, edge_dim=3)
    assert isinstance(by_string, MeanMessages) and by_string.edge_lin is not None
    assert by_class._comm_edge_attr
    register_layer("mean_messages")(MeanMessages)
    assert "mean_messages" in layer_names()
    block = MessagePassingBlock(H, rounds=1, layer="mean_messages", edge_dim=3)
    assert isinstance(block.convs[0], MeanMessages)
    assert block(x, edges).shape == x.shape
    with pytest.raises(CommError, match="already registered"):
        register_layer("gat")(MeanMessages)


def test_builtin_layers_take_edge_dim_only_where_supported():
    for name in LAYERS:
        conv = make_layer(name, H, H, edge_dim=3, heads=2)
        assert conv._comm_edge_attr == (name in ATTENTION), name
    assert make_layer("gat", H, 16, heads=4).heads == 4  # 4 heads x 4 channels, concatenated


def test_layer_errors():
    with pytest.raises(CommError, match=r"unknown layer 'gatt'\. Did you mean 'gat'.*Valid: gat, gatv2"):
        make_layer("gatt", H, H)
    with pytest.raises(CommError, match=r"hidden size 10 must be a multiple of heads=4"):
        make_layer("gat", H, 10, heads=4)
    with pytest.raises(CommError, match="MessagePassing subclass"):
        make_layer(torch.nn.Linear, H, H)
    with pytest.raises(CommError, match="cannot import module 'no_such_module'"):
        make_layer("no_such_module:Conv", H, H)
    with pytest.raises(CommError, match="has no attribute"):
        make_layer(f"{__name__}:Missing", H, H)
    with pytest.raises(CommError, match="unknown activation"):
        MessagePassingBlock(H, activation="relux")


def test_layer_with_edge_dim_needs_edge_features():
    _, edges, x = _batch("complete")  # no edge features
    block = _block("gat", edge_dim=3)
    with pytest.raises(CommError, match="expects edge features"):
        block(x, edges)
    assert torch.equal(block(x, Edges.empty(4, 6)), x)  # no edges: nothing needed


def test_block_rejects_mismatched_nodes_and_gates():
    _, edges, x = _batch("ring")
    block = _block("sage")
    with pytest.raises(CommError, match="nodes"):
        block(x[:-1], edges)
    with pytest.raises(CommError, match="gate"):
        block(x, edges, gate=torch.ones(5))


@pytest.mark.parametrize("layer", LAYERS + [MeanMessages])
def test_an_edge_that_does_not_touch_an_agent_leaves_its_output_alone(layer):
    """With one round, agent 0's output depends on its incoming edges only. GCN's symmetric
    normalisation read the sender's degree, so an extra edge 2 -> 1 changed what 0 receives from 1
    (by 0.55 in the review's reproducer); `gcn` now normalises by the receiver's degree."""
    N = 4
    adj = torch.zeros(1, N, N, dtype=torch.bool)
    adj[0, 0, 1] = adj[0, 1, 3] = True  # 1 -> 0 and 3 -> 1 (adj[e, dst, src])
    more = adj.clone()
    more[0, 1, 2] = True  # and 2 -> 1: touches agent 1, not agent 0
    block = _block(layer, rounds=1)
    x = torch.randn(N, H)
    base, changed = block(x, Edges.from_adjacency(adj)), block(x, Edges.from_adjacency(more))
    assert torch.equal(base[0], changed[0])
    assert not torch.equal(base[1], changed[1])
