"""Property tests (hypothesis) for config parsing and the communication-graph builders.

Config: every bad value is a ConfigError naming its key (never another exception), unknown keys are
named, later overrides win. Graphs: building all E envs at once equals building each env alone and
offsetting its node ids by e*N; undirected graphs are symmetric; knn and radius grow monotonically
with k and r; knn with k >= N-1 is the complete graph on the alive agents.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comm import GraphContext, make_graph
from marl.config import ConfigError, TrainConfig, _all_keys, config_from_args

# ---- config parsing ----------------------------------------------------------------------------

POSITIVE_INT_KEYS = ["total_steps", "num_envs", "eval_episodes", "threads", "keep_checkpoints", "actor.hidden",
                     "actor.layers", "critic.hidden", "algo.rollout_len", "algo.epochs", "algo.minibatches"]
POSITIVE_FLOAT_KEYS = ["lr", "critic_lr", "algo.clip", "algo.max_grad_norm", "comm.graph_lr"]
UNIT_KEYS = ["algo.gamma", "algo.gae_lambda", "comm.p", "comm.sparsity", "comm.freeze_graph_at", "comm.channel_drop"]
VALID_KEYS = set(_all_keys(TrainConfig)) | {"config", "n_agents", "max_cycles", "local_ratio", "continuous_actions"}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _config_error(items: list[str]) -> str:
    with pytest.raises(ConfigError) as info:  # any other exception type fails the test
        config_from_args(items)
    message = str(info.value)
    assert "\n" not in message
    return message


@FAST
@given(key=st.sampled_from(POSITIVE_INT_KEYS + POSITIVE_FLOAT_KEYS),
       value=st.one_of(st.integers(max_value=0), st.floats(max_value=0.0, allow_nan=False)))
def test_non_positive_values_are_rejected_naming_the_key(key, value):
    assert _config_error([f"{key}={value!r}"]).startswith(key)


@FAST
@given(key=st.sampled_from(UNIT_KEYS),
       value=st.one_of(st.floats(min_value=1.0, exclude_min=True), st.floats(max_value=0.0, exclude_max=True)))
def test_values_outside_the_unit_interval_are_rejected(key, value):
    message = _config_error([f"{key}={value!r}"])
    assert message.startswith(key)
    assert "must be in [0, 1]" in message or "not a finite number" in message


@FAST
@given(key=st.sampled_from(POSITIVE_INT_KEYS + POSITIVE_FLOAT_KEYS + UNIT_KEYS),
       text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12))
def test_any_text_for_a_number_is_a_value_or_a_config_error(key, text):
    """Whatever text follows ``key=`` parses to a valid value or is a ConfigError naming the key."""
    try:
        config_from_args([f"{key}={text}"])
    except ConfigError as exc:
        assert str(exc).startswith(key) and "\n" not in str(exc)


@FAST
@given(key=st.from_regex(r"[a-z][a-z_]{0,14}(\.[a-z_]{1,10})?", fullmatch=True).filter(lambda k: k not in VALID_KEYS),
       value=st.integers(0, 5))
def test_unknown_keys_are_named(key, value):
    message = _config_error([f"{key}={value}"])
    first = key.split(".")[0]  # where the first segment is unknown, that is what is named
    assert (message.startswith(f"unknown config key {key!r}") or message.startswith(f"unknown config key {first!r}")
            or message.startswith(f"{first} is a section") or message.startswith(f"{first}="))


@FAST
@given(values=st.lists(st.integers(0, 2**31), min_size=1, max_size=5))
def test_the_last_override_wins(values):
    assert config_from_args([f"seed={v}" for v in values]).seed == values[-1]


@FAST
@given(hidden=st.integers(1, 512), gamma=st.floats(0.0, 1.0), recurrent=st.booleans())
def test_dotted_and_nested_overrides_agree(hidden, gamma, recurrent):
    dotted = config_from_args([f"actor.hidden={hidden}", f"algo.gamma={gamma!r}", f"actor.recurrent={recurrent}"])
    nested = config_from_args([f"actor={{hidden: {hidden}, recurrent: {str(recurrent).lower()}}}",
                               f"algo={{gamma: {gamma!r}}}"])
    assert dataclasses.asdict(dotted) == dataclasses.asdict(nested)
    assert dotted.actor.hidden == hidden and dotted.algo.gamma == gamma and dotted.actor.recurrent is recurrent


# ---- graph builders ----------------------------------------------------------------------------

UNDIRECTED = ["complete", "ring", "star", "erdos_renyi", "radius"]


@st.composite
def scenes(draw, max_envs=4, max_agents=12):
    """A batch of E envs of N agents at random positions, some agents possibly dead."""
    E, N, d = draw(st.integers(1, max_envs)), draw(st.integers(1, max_agents)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    positions = torch.rand(E, N, d, generator=gen) * draw(st.floats(0.1, 5.0))
    dead = draw(st.sampled_from([0.0, 0.0, 0.3, 0.7]))
    alive = (torch.rand(E, N, generator=gen) >= dead) if dead else None
    return GraphContext(E, N, positions=positions, alive=alive)


def _graph(name: str, ctx: GraphContext, k: int, radius: float):
    options = {"knn": {"k": k}, "radius": {"radius": radius}}.get(name, {})
    return make_graph(name, n_agents=ctx.n_agents, pos_dim=ctx.positions.shape[-1], **options)


def _single_env(ctx: GraphContext, e: int) -> GraphContext:
    return GraphContext(1, ctx.n_agents, positions=ctx.positions[e : e + 1],
                        alive=None if ctx.alive is None else ctx.alive[e : e + 1])


@settings(max_examples=50, deadline=None)
@given(ctx=scenes(), k=st.integers(1, 14), radius=st.floats(0.0, 4.0),
       name=st.sampled_from(["complete", "ring", "star", "erdos_renyi", "knn", "radius", "self", "none"]))
def test_batched_build_equals_each_env_alone_offset_by_e_times_n(ctx, k, radius, name):
    graph = _graph(name, ctx, k, radius)
    batched = graph(ctx)
    N = ctx.n_agents
    assert batched.index.dtype == torch.int64
    if batched.num_edges:
        assert 0 <= int(batched.index.min()) and int(batched.index.max()) < ctx.n_envs * N
    expected = set()
    for e in range(ctx.n_envs):
        alone = graph(_single_env(ctx, e))
        expected |= {(int(s) + e * N, int(t) + e * N) for s, t in alone.index.T.tolist()}
    assert set(map(tuple, batched.index.T.tolist())) == expected
    assert batched.num_edges == len(expected)  # and no duplicates


@settings(max_examples=50, deadline=None)
@given(ctx=scenes(), radius=st.floats(0.0, 4.0), name=st.sampled_from(UNDIRECTED))
def test_undirected_graphs_are_symmetric(ctx, radius, name):
    dense = _graph(name, ctx, 1, radius)(ctx).to_dense()
    assert torch.equal(dense, dense.transpose(1, 2))
    assert not dense.diagonal(dim1=1, dim2=2).any()  # no self loops


@settings(max_examples=50, deadline=None)
@given(ctx=scenes(), k1=st.integers(1, 12), k2=st.integers(1, 12), r1=st.floats(0.0, 4.0), r2=st.floats(0.0, 4.0))
def test_knn_and_radius_grow_with_k_and_r(ctx, k1, k2, r1, r2):
    (k1, k2), (r1, r2) = sorted((k1, k2)), sorted((r1, r2))
    small, big = _graph("knn", ctx, k1, 0)(ctx).to_dense(), _graph("knn", ctx, k2, 0)(ctx).to_dense()
    assert not (small & ~big).any()
    in_degree = small.sum(-1)  # adj[e, receiver, sender]
    alive = ctx.alive if ctx.alive is not None else torch.ones(ctx.n_envs, ctx.n_agents, dtype=torch.bool)
    others = (alive.sum(-1, keepdim=True) - 1).clamp(min=0).expand_as(in_degree)
    assert torch.equal(in_degree, torch.where(alive, others.clamp(max=k1), 0))  # exactly min(k, alive others)
    small, big = _graph("radius", ctx, 0, r1)(ctx).to_dense(), _graph("radius", ctx, 0, r2)(ctx).to_dense()
    assert not (small & ~big).any()


@settings(max_examples=40, deadline=None)
@given(ctx=scenes(), extra=st.integers(0, 5))
def test_knn_with_k_at_least_n_minus_1_is_the_complete_graph_on_alive_agents(ctx, extra):
    k = max(ctx.n_agents - 1, 1) + extra
    knn = _graph("knn", ctx, k, 0)(ctx).to_dense()
    complete = _graph("complete", ctx, 0, 0)(ctx).to_dense()
    assert torch.equal(knn, complete)
