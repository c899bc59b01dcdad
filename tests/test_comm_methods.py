"""Communication methods by name (CommNet, IC3Net, TarMAC, DGN, CommFormer): presets of graph, layer,
rounds and gate; the user's own keys win; IC3Net's send gate silences a sender; CommNet is the mean
of the others' hidden states."""

from __future__ import annotations

import pytest
import torch

import comm
import scenarios
from comm import Edges, GraphContext, MessagePassingBlock, make_graph, send_gated
from envs import VectorEnv
from marl.algos import EnvInfo, make_algorithm
from marl.communication import CommInputs
from marl.config import ConfigError, build_config


def test_the_published_methods_are_registered_as_presets():
    assert {"commnet", "ic3net", "tarmac", "dgn", "commformer", "none"} <= set(comm.method_names())
    cfg = build_config({"comm": {"method": "tarmac"}}).comm
    assert (cfg.graph, cfg.layer, cfg.heads, cfg.rounds, cfg.method) == ("complete", "transformer", 1, 2, "tarmac")
    ic3 = build_config({"comm": {"method": "ic3net"}}).comm
    assert ic3.gating and ic3.gate_side == "send" and ic3.layer == "sage"
    dgn = build_config({"comm": {"method": "dgn", "k": 5}}).comm  # the user's key wins over the preset's k=3
    assert (dgn.graph, dgn.k) == ("knn", 5)


def test_an_unknown_method_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^unknown comm.method 'tarmak'\. Did you mean 'tarmac'\?.*Valid: "
                                          r"commformer, commnet, dgn, ic3net, none, tarmac"):
        build_config({"comm": {"method": "tarmak"}})


def test_commnet_receives_the_mean_of_the_others_hidden_states():
    torch.manual_seed(0)
    E, N, H = 2, 4, 8
    edges = make_graph("complete")(GraphContext(E, N))
    block = MessagePassingBlock(H, rounds=1, layer="sage", activation="identity")
    x = torch.randn(E * N, H)
    conv = block.convs[0]
    others_mean = (x.view(E, N, H).sum(1, keepdim=True) - x.view(E, N, H)) / (N - 1)
    expected = x + conv.lin_l(others_mean.reshape(E * N, H))
    torch.testing.assert_close(block(x, edges), expected, rtol=1e-5, atol=1e-5)


def test_a_closed_send_gate_silences_the_sender_and_its_gradient_reaches_the_gate():
    torch.manual_seed(0)
    E, N, H = 1, 4, 8
    edges = make_graph("complete")(GraphContext(E, N))
    block = MessagePassingBlock(H, rounds=1, layer="sage")
    p = torch.tensor([[0.9, 0.2, 0.7, 0.6]], requires_grad=True)
    hard = torch.tensor([[1.0, 0.0, 1.0, 1.0]])  # agent 1 keeps quiet
    g = comm.straight_through(hard, p)
    gated = send_gated(edges, g)
    assert gated.num_edges == 3 * 3 and not (gated.index[0] == 1).any()
    x = torch.randn(N, H)
    loud = x.clone()
    loud[1] += 5.0  # what agent 1 would have said changes nobody else's output
    out, out_loud = block(x, gated), block(loud, gated)
    assert torch.equal(out[[0, 2, 3]], out_loud[[0, 2, 3]])
    out.pow(2).sum().backward()
    assert p.grad[0, [0, 2, 3]].abs().sum() > 0 and p.grad[0, 1] == 0
    assert send_gated(Edges.empty(E, N), g).num_edges == 0


@pytest.mark.parametrize("method", ["commnet", "ic3net", "tarmac", "dgn", "commformer"])
def test_every_method_acts_decentralised_and_logs_what_it_sends(method):
    """Through the actor: agent 0's action distribution ignores an agent that cannot reach it, and
    the step reports how many floats each message carries."""
    torch.manual_seed(0)
    cfg = build_config({"comm": {"method": method}, "scenario_args": {"n_agents": 5}, "num_envs": 2,
                        "actor": {"hidden": 16}})
    env = VectorEnv(scenarios.make("mpe/simple_spread", n_agents=5), 2, seed=0)
    algo = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    out = env.reset()
    env.close()
    actor = algo.actor.eval()
    params, _, aux = actor(out.obs, actor.initial_carry((2, 5)), CommInputs(out.positions, out.alive))
    assert params.shape[:2] == (2, 5) and aux.edges.num_edges > 0
    assert aux.message_floats == 16 * cfg.comm.rounds  # as published: no edge features
    dense = aux.edges.to_dense()[0]  # env 0: who reached agent 0 (rounds hops away matter too)
    reach = dense.clone()
    for _ in range(cfg.comm.rounds - 1):
        reach = reach | (reach.float() @ dense.float() > 0)
    unheard = [j for j in range(1, 5) if not reach[0, j]]
    if unheard:  # a sparse graph: changing an unheard agent's observation leaves agent 0 alone
        obs = out.obs.clone()
        obs[0, unheard[0]] += 1.0
        moved, _, _ = actor(obs, actor.initial_carry((2, 5)), CommInputs(out.positions, out.alive))
        assert torch.equal(moved[0, 0], params[0, 0])


def test_marl_graphs_lists_the_methods_with_their_presets(capsys):
    from marl.cli import main

    assert main(["graphs"]) == 0
    out = capsys.readouterr().out
    for name in comm.method_names():
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "gate_side=send" in out and "choose with comm.method=NAME" in out
