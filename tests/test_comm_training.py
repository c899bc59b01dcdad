"""Communication wired into training: CLI selection of graphs (built-in and a user's plugin file),
the decentralization invariant through the actor, gating and the learned graph inside the learner."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import scenarios
from envs import VectorEnv
from marl.algos import EnvInfo, Progress, make_algorithm
from marl.cli import main
from marl.collector import Collector
from marl.communication import CommInputs
from marl.config import build_config

PLUGIN = Path(__file__).parent / "plugins" / "user_graphs.py"
TINY = ["total_steps=200", "num_envs=2", "algo.rollout_len=25", "algo.epochs=2", "eval_episodes=2", "progress=false"]


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_user_graph_from_a_plugin_file_is_selected_by_name_on_the_cli(tmp_path):
    run = tmp_path / "run"
    code = main(["train", "comm.graph=test_two_nearest_and_leader", f"plugins={PLUGIN}", f"out={run}", *TINY])
    assert code == 0
    rows = _rows(run)
    # every agent receives from agent 0 and its nearest other agent: 1 or 2 distinct senders of N-1 = 2
    assert 0.5 <= float(rows[-1]["edges_used_frac"]) <= 1.0
    assert (run / "summary.json").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["comm.graph=knn", "comm.k=1", "comm.layer=gat", "comm.rounds=2"],
        ["comm.graph=learned", "comm.sparsity=0.5", "comm.gating=true"],
        ["scenario=nav/navigation", "n_agents=4", "comm.graph=radius", "comm.radius=1.0", "critic=graph",
         "comm.layer=transformer"],
        ["comm.graph=ring", "actor.recurrent=true", "comm.layer=gcn"],
    ],
)
def test_cli_trains_with_communication(tmp_path, args):
    run = tmp_path / "run"
    assert main(["train", *args, f"out={run}", *TINY]) == 0
    rows = _rows(run)
    assert rows and "edges_used_frac" in rows[0] and float(rows[-1]["messages_per_step"]) >= 0


def test_position_graph_on_a_scenario_without_positions_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "scenario=classic/rps", "comm.graph=knn", f"out={tmp_path / 'r'}", *TINY]) == 2
    err = capsys.readouterr().err
    assert "knn" in err and "classic/rps" in err and "complete" in err and len(err.strip().splitlines()) == 1


def test_unknown_graph_and_layer_names_suggest_the_closest(capsys):
    assert main(["train", "comm.graph=knnn", *TINY]) == 2
    assert "Did you mean 'knn'" in capsys.readouterr().err
    assert main(["train", "comm.graph=knn", "comm.layer=gatt", *TINY]) == 2
    assert "'gat'" in capsys.readouterr().err


def _learner(graph: str, rounds: int, **comm):
    cfg = build_config({"comm": {"graph": graph, "rounds": rounds, **comm}, "num_envs": 2})
    sc = scenarios.make("mpe/simple_spread", n_agents=5)
    env = VectorEnv(sc, 2, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    out = env.reset()
    env.close()
    return learner, out


@pytest.mark.parametrize("layer", ["gat", "transformer", "sage"])
def test_decentralization_with_communication(layer):
    """Ring with 1 round: agent 0 hears agents 1 and 4 only. Changing agent 2's observation leaves
    agent 0's logits bit-identical; changing agent 1's changes them."""
    torch.manual_seed(0)
    learner, out = _learner("ring", 1, layer=layer)
    actor = learner.actor.eval()
    obs = out.obs.clone()
    inputs = CommInputs(out.positions, out.alive)
    base, _, _ = actor(obs, None, inputs)
    far = obs.clone()
    far[:, 2] += torch.randn_like(far[:, 2])
    logits_far, _, _ = actor(far, None, inputs)
    assert torch.equal(logits_far[:, 0], base[:, 0])
    near = obs.clone()
    near[:, 1] += torch.randn_like(near[:, 1])
    logits_near, _, _ = actor(near, None, inputs)
    assert not torch.allclose(logits_near[:, 0], base[:, 0])
    # two rounds: agent 2 is two hops from agent 0 and now reaches it
    torch.manual_seed(0)
    learner2, _ = _learner("ring", 2, layer=layer)
    a2 = learner2.actor.eval()
    assert not torch.allclose(a2(far, None, inputs)[0][:, 0], a2(obs, None, inputs)[0][:, 0])


def test_gate_closed_equals_no_communication():
    torch.manual_seed(0)
    learner, out = _learner("complete", 2, gating=True)
    actor = learner.actor.eval()
    closed = torch.zeros(out.obs.shape[:2])
    with_gate, _, _ = actor(out.obs, None, CommInputs(out.positions, out.alive), replay={"gate": closed})
    body = actor.body(out.obs)  # no communication: encoder straight to the head
    assert torch.equal(with_gate, actor.head(body))


def test_learned_graph_learns_in_its_own_epochs():
    torch.manual_seed(0)
    cfg = build_config({"comm": {"graph": "learned", "sparsity": 0.5, "graph_every": 2}, "num_envs": 2,
                        "algo": {"epochs": 2, "rollout_len": 10}})
    sc = scenarios.make("mpe/simple_spread", n_agents=4)
    env = VectorEnv(sc, 2, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    ro = Collector(env, learner, 10, torch.device("cpu")).collect()
    env.close()
    logits = learner.actor.comm.graph.logits
    before = logits.detach().clone()
    encoder_before = learner.actor.body[0].weight.detach().clone()
    stats = learner.update(ro, Progress(0, cfg.total_steps))
    assert not torch.equal(logits.detach(), before)  # epoch 2 of 2 moved the graph
    assert not torch.equal(learner.actor.body[0].weight.detach(), encoder_before)  # epoch 1 the policy
    assert stats["graph_grad_norm"] > 0
    # the policy's optimizer never holds the graph's logits
    held = {id(p) for g in learner.actor_opt.param_groups for p in g["params"]}
    assert id(logits) not in held


def test_imperfect_channel_changes_messages_only_at_evaluation():
    torch.manual_seed(0)
    cfg = build_config({"comm": {"graph": "complete", "channel_drop": 1.0}, "num_envs": 2})
    sc = scenarios.make("mpe/simple_spread", n_agents=4)
    env = VectorEnv(sc, 2, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    out = env.reset()
    env.close()
    actor = learner.actor
    inputs = CommInputs(out.positions, out.alive)
    trained, _, aux = actor.train()(out.obs, None, inputs)
    assert aux.edges.num_edges == 2 * 4 * 3  # training: the channel is perfect
    dropped, _, aux = actor.eval()(out.obs, None, inputs)
    assert aux.edges.num_edges == 0  # every message lost
    assert torch.equal(dropped, actor.head(actor.body(out.obs)))  # = no communication
    # delay: the first step shares the current features, the next one the previous step's
    # (the senders' previous features travel in the carry from one step to the next)
    actor.comm.channel = cfg.comm.__class__(graph="complete", channel_delay=True)
    first, carry, _ = actor(out.obs, None, inputs)
    assert torch.allclose(first, actor.train()(out.obs, None, inputs)[0])
    actor.eval()
    moved = out.obs + 1.0
    delayed, _, _ = actor(moved, carry, inputs)  # messages still carry the features of `out.obs`
    actor.comm.channel = cfg.comm.__class__(graph="complete")
    fresh, _, _ = actor(moved, None, inputs)
    assert not torch.allclose(delayed, fresh)


@pytest.mark.parametrize("fault", [{"channel_delay": True}, {"channel_noise": 0.5}])
def test_position_edge_features_travel_through_the_imperfect_channel(fault):
    """A sender's position in the edge features is part of its message: delayed, it is last step's
    position; noisy, it is perturbed. Before the fix both were exact, so robustness results for
    layers with edge features were overstated."""
    from marl.config import CommConfig

    torch.manual_seed(0)
    cfg = build_config({"comm": {"graph": "knn", "k": 2, "channel_in_training": True, **fault}, "num_envs": 2})
    env = VectorEnv(scenarios.make("mpe/simple_spread", n_agents=4), 2, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    gen = torch.Generator().manual_seed(1)
    env.reset()
    first = env.step(env.random_actions(gen))  # (MPE moves nobody on the first step from rest)
    second = env.step(env.random_actions(gen))
    env.close()
    assert not torch.allclose(first.positions, second.positions)
    actor = learner.actor.train()
    _, carry, _ = actor(first.obs, actor.initial_carry((2, 4)), CommInputs(first.positions, first.alive))
    _, _, aux = actor(second.obs, carry, CommInputs(second.positions, second.alive))
    graph = actor.comm.graph
    comm_edges = aux.edges
    from comm import edge_features
    exact = edge_features(comm_edges.index, second.positions)
    assert comm_edges.attr.shape == exact.shape and not torch.allclose(comm_edges.attr, exact)
    if fault.get("channel_delay"):  # sender at its previous position, receiver where it is now
        expected = edge_features(comm_edges.index, first.positions, receivers=second.positions)
        torch.testing.assert_close(comm_edges.attr, expected)
    actor.comm.channel = CommConfig(graph="knn", k=2)  # a perfect channel: exact features
    _, _, aux = actor(second.obs, carry, CommInputs(second.positions, second.alive))
    assert graph is actor.comm.graph and torch.equal(aux.edges.attr, edge_features(aux.edges.index, second.positions))


def test_graph_every_one_is_rejected():
    """Every epoch would be a graph epoch: the actor and critic would never train."""
    from marl.config import ConfigError

    with pytest.raises(ConfigError, match=r"^comm.graph_every must be >= 2 \(got 1\): .*actor and critic untrained"):
        build_config({"comm": {"graph": "learned", "graph_every": 1}})


def test_zero_shot_eval_at_more_agents_with_edges_in_the_gif(tmp_path):
    import json

    import imageio.v2 as imageio

    run = tmp_path / "run"
    assert main(["train", "scenario=nav/navigation", "comm.graph=radius", "critic=graph", f"out={run}", *TINY]) == 0
    assert main(["eval", str(run), "--n_agents", "6", "--episodes", "2", "--render"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["overrides"]["n_agents"] == 6
    frames = imageio.mimread(run / "episode.gif")
    assert len(frames) > 10
    # edges are drawn on some frame: the overlay colour blended over the white background
    from marl.pictures import EDGE_COLOR

    line = 0.35 * 255 + 0.65 * EDGE_COLOR
    drawn = [(np.abs(f[..., :3].astype(float) - line).max(-1) < 8).sum() for f in frames]
    assert max(drawn) > 20
