"""Communication graphs: validity of every built-in, knn/radius exactness, registry, plugins, the
learned graph and the gate. Fast: no training."""

from __future__ import annotations

import math
import textwrap
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from comm import (
    CommError,
    Edges,
    Gate,
    Graph,
    GraphContext,
    MessagePassingBlock,
    graph_names,
    load_plugin,
    make_graph,
    register_graph,
    validate_edges,
)
from comm import graphs as graphs_module

BUILTIN_GRAPHS = ["complete", "erdos_renyi", "knn", "learned", "none", "radius", "ring", "self", "star"]
POSITION_GRAPHS = {"knn", "radius"}


@pytest.fixture
def private_graphs(monkeypatch):
    """The graph registry on a private copy, so test registrations do not leak."""
    graph_names()  # built-ins loaded into the real registry first
    monkeypatch.setattr(graphs_module, "GRAPHS", dict(graphs_module.GRAPHS))
    return graphs_module.GRAPHS


def _ctx(E, N, seed=0, training=False, dead=0.0, d=2, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    positions = torch.rand(E, N, d, generator=gen) * scale
    alive = None
    if dead:
        alive = torch.rand(E, N, generator=gen) >= dead
    return GraphContext(E, N, positions=positions, alive=alive, training=training)


def _assert_valid(edges: Edges, ctx: GraphContext, allow_self_loops=False):
    index = edges.index
    assert isinstance(index, torch.Tensor) and index.dtype == torch.int64
    assert index.dim() == 2 and index.shape[0] == 2
    assert edges.n_envs == ctx.n_envs and edges.n_agents == ctx.n_agents
    if index.shape[1]:
        assert int(index.min()) >= 0 and int(index.max()) < ctx.num_nodes
        assert torch.equal(index[0] // ctx.n_agents, index[1] // ctx.n_agents), "an edge crosses envs"
        if not allow_self_loops:
            assert not bool((index[0] == index[1]).any()), "unexpected self loop"
    if ctx.alive is not None and index.shape[1]:
        alive = ctx.alive.reshape(-1)
        assert bool(alive[index[0]].all() and alive[index[1]].all()), "a dead agent sends or receives"
    if edges.attr is not None:
        assert edges.attr.shape == (index.shape[1], ctx.positions.shape[-1] + 1)
    if edges.weight is not None:
        assert edges.weight.shape == (index.shape[1],)
    validate_edges(edges, ctx, "check")


def _make(name, N, **options):
    return make_graph(name, n_agents=N, **options)


# ---- every built-in -------------------------------------------------------------------------


def test_builtin_names_registered():
    assert set(BUILTIN_GRAPHS) <= set(graph_names())


@pytest.mark.parametrize("name", BUILTIN_GRAPHS)
@pytest.mark.parametrize("N", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("training", [False, True])
def test_builtin_graph_gives_valid_edges(name, N, training):
    ctx = _ctx(E=3, N=N, seed=N, training=training)
    edges = _make(name, N)(ctx)
    _assert_valid(edges, ctx, allow_self_loops=(name == "self"))
    if name == "self":
        assert edges.num_edges == 3 * N
    if name == "none" or N == 1 and name != "self":
        assert edges.num_edges == 0


@pytest.mark.parametrize("name", BUILTIN_GRAPHS)
def test_builtin_graph_drops_dead_agents(name):
    ctx = _ctx(E=4, N=9, seed=3, dead=0.3)
    _assert_valid(_make(name, 9)(ctx), ctx, allow_self_loops=(name == "self"))


@pytest.mark.parametrize("name", ["complete", "ring", "star", "erdos_renyi"])
def test_fixed_graphs_are_the_same_in_every_env(name):
    ctx = _ctx(E=5, N=6)
    dense = _make(name, 6)(ctx).to_dense()
    assert torch.equal(dense, dense[:1].expand_as(dense))


def test_fixed_graph_shapes():
    ctx = _ctx(E=2, N=5)
    assert _make("complete", 5)(ctx).num_edges == 2 * 5 * 4
    ring = _make("ring", 5)(ctx).to_dense()[0]
    assert ring.sum(1).tolist() == [2] * 5 and bool(ring[0, 1]) and bool(ring[0, 4]) and not bool(ring[0, 2])
    star = _make("star", 5)(ctx).to_dense()[0]
    assert star[0, 1:].all() and star[1:, 0].all() and star.sum() == 8
    assert _make("ring", 2)(_ctx(E=1, N=2)).num_edges == 2  # i - 1 == i + 1: one edge each way


def test_edges_never_cross_envs_in_a_big_batch():
    ctx = _ctx(E=16, N=10, seed=1, dead=0.2)
    for name in BUILTIN_GRAPHS:
        edges = _make(name, 10)(ctx)
        env_of_src, env_of_dst = edges.index // 10
        assert torch.equal(env_of_src, env_of_dst), name


# ---- knn and radius: exact ------------------------------------------------------------------


def _check_knn(ctx: GraphContext, k: int):
    edges = make_graph("knn", k=k, pos_dim=ctx.positions.shape[-1])(ctx)
    _assert_valid(edges, ctx)
    E, N = ctx.n_envs, ctx.n_agents
    alive = ctx.alive if ctx.alive is not None else torch.ones(E, N, dtype=torch.bool)
    dense = edges.to_dense()
    dist = (ctx.positions[:, :, None] - ctx.positions[:, None, :]).norm(dim=-1)
    for e in range(E):
        others = int(alive[e].sum()) - 1
        for i in range(N):
            senders = dense[e, i].nonzero().flatten().tolist()
            if not alive[e, i]:
                assert senders == []
                continue
            assert len(senders) == min(k, N - 1, others)
            candidates = sorted(dist[e, i, j].item() for j in range(N) if j != i and alive[e, j])
            chosen = sorted(dist[e, i, j].item() for j in senders)
            assert chosen == pytest.approx(candidates[: len(chosen)], abs=1e-6)


def _check_radius(ctx: GraphContext, radius: float):
    edges = make_graph("radius", radius=radius, pos_dim=ctx.positions.shape[-1])(ctx)
    _assert_valid(edges, ctx)
    E, N = ctx.n_envs, ctx.n_agents
    alive = ctx.alive if ctx.alive is not None else torch.ones(E, N, dtype=torch.bool)
    expected = set()
    for e in range(E):
        for i in range(N):
            for j in range(N):
                if i != j and alive[e, i] and alive[e, j]:
                    if torch.linalg.vector_norm(ctx.positions[e, i] - ctx.positions[e, j]) < radius:
                        expected.add((e * N + j, e * N + i))
    assert set(map(tuple, edges.index.T.tolist())) == expected
    assert edges.num_edges == len(expected)  # no duplicates
    if edges.num_edges:  # edge features: relative position and distance
        src, dst = edges.index
        flat = ctx.positions.reshape(-1, ctx.positions.shape[-1])
        assert torch.allclose(edges.attr[:, :-1], flat[src] - flat[dst])
        assert torch.allclose(edges.attr[:, -1], (flat[src] - flat[dst]).norm(dim=-1))


@pytest.mark.parametrize("N", [1, 2, 5, 12, 50])
@pytest.mark.parametrize("k", [1, 3, 49, 50, 80])
def test_knn_gives_min_k_n_minus_1_nearest(N, k):
    _check_knn(_ctx(E=2, N=N, seed=N + k), k)


def test_knn_with_dead_agents():
    _check_knn(_ctx(E=6, N=8, seed=5, dead=0.4), k=3)
    _check_knn(_ctx(E=6, N=8, seed=6, dead=0.8), k=5)  # fewer alive others than k


@pytest.mark.parametrize("radius", [0.0, 0.3, 1.0, 10.0])
def test_radius_matches_brute_force(radius):
    _check_radius(_ctx(E=3, N=9, seed=2, dead=0.2), radius)


def test_radius_zero_has_no_edges_even_for_coincident_agents():
    ctx = GraphContext(2, 4, positions=torch.zeros(2, 4, 2))
    assert make_graph("radius", radius=0.0)(ctx).num_edges == 0
    assert make_graph("radius", radius=0.5)(ctx).num_edges == 2 * 4 * 3


@settings(max_examples=40, deadline=None)
@given(
    E=st.integers(1, 3),
    N=st.integers(1, 16),
    k=st.integers(1, 20),
    radius=st.floats(0.0, 3.0),
    d=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    dead=st.sampled_from([0.0, 0.3]),
)
def test_property_position_graphs(E, N, k, radius, d, seed, dead):
    ctx = _ctx(E=E, N=N, seed=seed, dead=dead, d=d)
    _check_knn(ctx, k)
    _check_radius(ctx, radius)
    for name in BUILTIN_GRAPHS:
        _assert_valid(make_graph(name, n_agents=N, pos_dim=d)(ctx), ctx, allow_self_loops=(name == "self"))


# ---- erdos_renyi --------------------------------------------------------------------------


def test_erdos_renyi_is_reproducible_symmetric_and_seeded():
    ctx = _ctx(E=2, N=12)
    a = make_graph("erdos_renyi", p=0.5, seed=7)(ctx).to_dense()
    b = make_graph("erdos_renyi", p=0.5, seed=7)(ctx).to_dense()
    c = make_graph("erdos_renyi", p=0.5, seed=8)(ctx).to_dense()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a[0], a[0].T) and not a[0].diagonal().any()
    assert torch.equal(make_graph("erdos_renyi", p=0.0)(ctx).to_dense(), torch.zeros_like(a))
    assert make_graph("erdos_renyi", p=1.0)(ctx).num_edges == 2 * 12 * 11


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(POSITION_GRAPHS))
def test_position_graph_without_positions_is_a_clear_error(name):
    with pytest.raises(CommError, match=rf"graph '{name}' needs agent positions.*need no positions: .*complete"):
        make_graph(name)(GraphContext(2, 3))


def test_edge_features_on_a_non_position_graph():
    ctx = _ctx(E=2, N=4, d=3)
    graph = make_graph("ring", edge_features=True, pos_dim=3)
    assert graph.edge_dim == 4 and make_graph("ring").edge_dim == 0
    assert graph(ctx).attr.shape == (2 * 4 * 2, 4)
    with pytest.raises(CommError, match="edge features"):
        graph(GraphContext(2, 4))
    with pytest.raises(CommError, match="pos_dim"):
        make_graph("knn", k=2)(ctx)  # made for 2-d positions, given 3-d


def test_unknown_graph_and_option_errors():
    with pytest.raises(CommError, match=r"unknown graph 'knnn'\. Did you mean 'knn'.*Valid: complete, "):
        make_graph("knnn")
    with pytest.raises(CommError,
                       match=r"graph 'knn' has no option 'kk'\. Did you mean 'k'\? Valid options: k \(default 4\)"):
        make_graph("knn", kk=3)
    with pytest.raises(CommError, match="Valid options: none"):
        make_graph("ring", radius=1.0)
    with pytest.raises(CommError, match="n_agents"):
        make_graph("learned", sparsity=0.5)
    with pytest.raises(CommError, match="k must be >= 1"):
        make_graph("knn", k=0)


def test_graph_context_checks_shapes():
    with pytest.raises(CommError, match="positions"):
        GraphContext(2, 3, positions=torch.zeros(3, 2, 2))
    with pytest.raises(CommError, match="bool"):
        GraphContext(2, 3, alive=torch.ones(2, 3))


class _BadGraph(Graph):
    def __init__(self, kind: str = "range"):
        super().__init__()
        self.kind = kind

    def build(self, ctx):
        N = ctx.n_agents
        if self.kind == "range":
            return Edges(torch.tensor([[0], [ctx.num_nodes]]))
        if self.kind == "negative":
            return Edges(torch.tensor([[-1], [0]]))
        if self.kind == "float":
            return Edges(torch.tensor([[0.0], [1.0]]))
        if self.kind == "shape":
            return Edges(torch.tensor([0, 1]))
        if self.kind == "cross":
            return Edges(torch.tensor([[0], [N]]))
        if self.kind == "type":
            return [(0, 1)]
        if self.kind == "adjacency":
            return torch.ones(ctx.n_envs, N, N)  # float, not bool
        if self.kind == "weight":
            return Edges(torch.tensor([[0], [1]]), weight=torch.ones(2))
        raise AssertionError


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("range", r"node ids must lie in \[0, E\*N = 6\), got values in \[0, 6\]"),
        ("negative", r"node ids must lie in"),
        ("float", r"index must be int64 \(torch.long\), got torch.float32"),
        ("shape", r"index must have shape \[2, M\], got \(2,\)"),
        ("cross", r"an edge joins two different envs"),
        ("type", r"expected comm.Edges or a bool adjacency \[E, N, N\], got list"),
        ("adjacency", r"an adjacency must be a bool tensor"),
        ("weight", r"weight must have shape \[M\] with M = 1 edges, got \(2,\)"),
    ],
)
def test_invalid_edges_name_the_graph_and_the_problem(private_graphs, kind, problem):
    register_graph("bad_graph")(_BadGraph)
    graph = make_graph("bad_graph", kind=kind)
    with pytest.raises(CommError, match=rf"graph 'bad_graph' returned invalid edges: {problem}"):
        graph(GraphContext(2, 3))


# ---- user graphs and plugins ---------------------------------------------------------------


def test_user_graph_defined_here_works_by_name(private_graphs):
    @register_graph("leader_and_nearest")
    class LeaderAndNearest(Graph):
        """Every agent hears agent 0 and its nearest other agent."""

        needs_positions = True
        edge_features = True  # the base adds [pos[src] - pos[dst], distance] per edge

        def build(self, ctx):
            E, N = ctx.n_envs, ctx.n_agents
            dist = torch.cdist(ctx.positions, ctx.positions)  # [E, N, N]
            dist = dist + torch.diag(torch.full((N,), float("inf"), device=ctx.device))
            adj = torch.zeros(E, N, N, dtype=torch.bool, device=ctx.device)  # adj[e, dst, src]
            if N > 1:
                adj.scatter_(2, dist.argmin(-1, keepdim=True), True)
            adj[:, :, 0] = True
            return adj & ~torch.eye(N, dtype=torch.bool, device=ctx.device)

    assert "leader_and_nearest" in graph_names()
    graph = make_graph("leader_and_nearest")
    assert graph.edge_dim == 3
    for N in (1, 2, 6):
        ctx = _ctx(E=3, N=N, seed=N)
        edges = graph(ctx)
        _assert_valid(edges, ctx)
        assert edges.attr.shape == (edges.num_edges, 3)
        dense = edges.to_dense()
        assert dense[:, 1:, 0].all() and not dense[:, 0, 0].any()
        assert (dense.sum(-1) >= min(1, N - 1)).all()
    with pytest.raises(CommError, match="already registered"):
        register_graph("knn")(LeaderAndNearest)


def test_load_plugin_registers_its_graph(private_graphs, tmp_path):
    plugin = tmp_path / "my_graphs.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import torch
            from comm import Graph, register_graph

            @register_graph("pairs")
            class Pairs(Graph):
                '''Agents 2m and 2m+1 talk to each other.'''
                def build(self, ctx):
                    N = ctx.n_agents
                    i = torch.arange(N, device=ctx.device)
                    adj = (i[:, None] // 2 == i[None, :] // 2) & (i[:, None] != i[None, :])
                    return adj.expand(ctx.n_envs, N, N)
            """
        )
    )
    load_plugin(plugin)
    load_plugin(plugin)  # loading the same file twice is fine
    edges = make_graph("pairs")(GraphContext(2, 5))
    assert edges.num_edges == 2 * 4


def test_broken_plugin_is_a_one_line_error(tmp_path):
    broken = tmp_path / "broken_graphs.py"
    broken.write_text("import torch\nraise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(CommError) as info:
        load_plugin(broken)
    message = str(info.value)
    assert "\n" not in message
    assert "broken_graphs.py" in message and "RuntimeError: boom second line" in message
    bad_syntax = tmp_path / "syntax_graphs.py"
    bad_syntax.write_text("def f(:\n")
    with pytest.raises(CommError, match=r"syntax_graphs.py.*SyntaxError"):
        load_plugin(bad_syntax)
    with pytest.raises(CommError, match="no such file"):
        load_plugin(tmp_path / "missing.py")


# ---- Edges helpers ---------------------------------------------------------------------------


def test_edges_from_adjacency_round_trip_and_weights():
    gen = torch.Generator().manual_seed(0)
    adj = torch.rand(4, 5, 5, generator=gen) < 0.4
    weights = torch.rand(4, 5, 5, generator=gen)
    positions = torch.rand(4, 5, 2, generator=gen)
    edges = Edges.from_adjacency(adj, positions=positions, weight_matrix=weights)
    assert edges.num_nodes == 20 and edges.attr.shape == (edges.num_edges, 3)
    assert torch.equal(edges.to_dense(), adj)
    assert torch.allclose(edges.to_dense(weighted=True), weights * adj)
    assert torch.equal(Edges.empty(3, 4).to_dense(), torch.zeros(3, 4, 4, dtype=torch.bool))


# ---- learned graph ------------------------------------------------------------------------


@pytest.mark.parametrize("N, sparsity, k",
                         [(1, 0.4, 0), (2, 0.4, 1), (3, 0.4, 1), (5, 0.4, 2), (6, 0.5, 3), (10, 0.3, 3), (10, 0.29, 2),
                          (4, 0.1, 1), (10, 1.0, 9)])
def test_learned_graph_keeps_exactly_k_incoming_edges(N, sparsity, k):
    """CommFormer's k = max(floor(sparsity * N), 1), at most N - 1: at N=3 and the default 0.4 one
    sender per agent (ceil gave 2 = N - 1, the complete graph, so nothing was learned)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (10, 1.0): complete, and it says so (tested below)
        graph = make_graph("learned", n_agents=N, sparsity=sparsity)
    assert graph.k == k == (min(max(math.floor(round(sparsity * N, 9)), 1), N - 1))
    for training in (True, False):
        ctx = GraphContext(6, N, training=training)
        edges = graph(ctx)
        _assert_valid(edges, ctx)
        assert edges.num_edges == len(set(map(tuple, edges.index.T.tolist())))
        in_degree = edges.to_dense().sum(-1)
        assert (in_degree == k).all()
        if training and k:
            assert torch.equal(edges.weight, torch.ones_like(edges.weight))  # forward: exact 0/1
            assert edges.weight.requires_grad
        else:
            assert edges.weight is None


def test_a_learned_graph_that_is_complete_says_so():
    with pytest.warns(UserWarning, match=r"k=4 = N-1 .*complete and nothing is learned; lower comm.sparsity"):
        make_graph("learned", n_agents=5, sparsity=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not make_graph("learned", n_agents=5, sparsity=0.4).complete  # k = 2 < 4: silent


def test_learned_graph_rebuilds_the_same_sample_from_its_noise():
    """The Gumbel draw is the graph's ``draw``: passed back as ``ctx.noise`` it gives the same
    edges and weights, which is how the update replays the rollout's graph."""
    torch.manual_seed(3)
    graph = make_graph("learned", n_agents=6, sparsity=0.5)
    ctx = GraphContext(16, 6, training=True)
    noise = graph.draw(ctx)
    assert noise.shape == (16, 6, 6) and graph.draw(GraphContext(16, 6, training=False)) is None
    first = graph(GraphContext(16, 6, training=True, noise=noise))
    again = graph(GraphContext(16, 6, training=True, noise=noise.clone()))
    fresh = graph(GraphContext(16, 6, training=True))
    assert torch.equal(first.index, again.index) and torch.equal(first.weight, again.weight)
    assert not torch.equal(first.to_dense(), fresh.to_dense())
    with pytest.raises(CommError, match=r"noise must have shape \[E, N, N\] = \[16, 6, 6\], got \(16, 6\)"):
        graph(GraphContext(16, 6, training=True, noise=noise[..., 0]))


def test_learned_graph_is_deterministic_at_eval_and_samples_in_training():
    torch.manual_seed(1)
    graph = make_graph("learned", n_agents=8, sparsity=0.25)
    ctx = GraphContext(32, 8, training=False)
    first = graph(ctx).to_dense()
    assert torch.equal(first, graph(ctx).to_dense())
    assert torch.equal(first, graph.eval_adjacency().expand_as(first))
    sampled = graph(GraphContext(32, 8, training=True)).to_dense()
    assert not torch.equal(sampled, first)  # 32 envs of Gumbel noise over near-equal logits
    probs = graph.adjacency_probs()
    assert probs.shape == (8, 8) and torch.allclose(probs.sum(-1), torch.ones(8)) and probs.diagonal().eq(0).all()


def test_learned_graph_gradient_reaches_logits_through_the_block():
    torch.manual_seed(2)
    N, E, H = 5, 4, 8
    graph = make_graph("learned", n_agents=N, sparsity=0.4)
    assert graph.graph_parameters() == [graph.logits]
    block = MessagePassingBlock(H, rounds=2, layer="gat", heads=2)
    edges = graph(GraphContext(E, N, training=True))
    out = block(torch.randn(E * N, H), edges)
    out.pow(2).sum().backward()
    assert graph.logits.grad is not None
    assert graph.logits.grad.abs().sum() > 0
    assert graph.logits.grad.diagonal().eq(0).all()  # self loops are never candidates


def test_learned_graph_freeze_and_team_size_error():
    graph = make_graph("learned", n_agents=4)
    graph.freeze()
    assert not graph.logits.requires_grad and bool(graph.frozen)
    a = graph(GraphContext(3, 4, training=True))
    assert a.weight is None and torch.equal(a.to_dense(), graph.eval_adjacency().expand(3, 4, 4))
    assert "frozen" in graph.state_dict()
    graph.unfreeze()
    assert graph.logits.requires_grad
    with pytest.raises(CommError, match=r"built for n_agents=4 but got 6 agents.*position graph \(knn, radius\)"):
        graph(GraphContext(2, 6))
    with pytest.raises(CommError, match="sparsity"):
        make_graph("learned", n_agents=4, sparsity=0.0)


def test_learned_graph_soft_weights():
    torch.manual_seed(3)
    graph = make_graph("learned", n_agents=6, hard=False)
    edges = graph(GraphContext(2, 6, training=True))
    assert (edges.weight > 0).all() and (edges.weight < 1).all()


# ---- gate ------------------------------------------------------------------------------------


def test_gate_is_hard_forward_with_a_straight_through_gradient():
    torch.manual_seed(4)
    gate = Gate(obs_dim=5, hidden=16)
    obs = torch.randn(3, 4, 5)
    g, p = gate(obs)
    assert g.shape == p.shape == (3, 4)
    assert set(g.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(p, torch.full_like(p, 0.9), atol=0.05)  # starts nearly open
    (g.sum() + Gate.communication_cost(p)).backward()
    assert gate.net[0].weight.grad.abs().sum() > 0
    gate.eval()
    g_eval, p_eval = gate(obs)
    assert torch.equal(g_eval, (p_eval > 0.5).float())
    replay = torch.zeros(3, 4)
    g_replay, _ = gate(obs, decisions=replay)
    assert torch.equal(g_replay, replay) and g_replay.requires_grad
