"""Every kind of bad input from the issue, through the command line: exit code 2, one line on stderr
that names the bad value and what would be valid, no traceback, and nothing already saved is lost."""

from __future__ import annotations

import re
import textwrap

import pytest

import comm
from comm import graphs as graphs_module
from marl import checkpoint as ckpt
from marl.cli import main

TINY = ["total_steps=40", "num_envs=2", "algo.rollout_len=10", "algo.epochs=1", "actor.hidden=16", "critic.hidden=16",
        "eval_episodes=1", "progress=false"]


def one_line_error(capsys, args, tmp_path) -> str:
    out = tmp_path / "never"
    assert main(["train", *args, f"out={out}"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err[len("error: "):]


@pytest.mark.parametrize(
    "args, message",
    [
        (["scenario=mpe/simple_sprad"],
         r"^unknown scenario 'mpe/simple_sprad'\. Did you mean 'mpe/simple_spread'.*\? Valid: butterfly/"),
        (["algo=mapo"],
         r"^algo='mapo' is not a registered algorithm\. Did you mean 'mappo'\? Valid: happo, iddpg, ippo, iql, isac, "
         r"maddpg, mappo, masac, matd3, qmix, res_qmix, vdn "
         r"\(register your own with @register_algorithm in a plugins= file\)$"),
        (["comm.graph=knnn"],
         r"^unknown comm\.graph 'knnn'\. Did you mean 'knn'.*\? Valid: complete, erdos_renyi, knn"),
        (["comm.graph=ring", "comm.layer=gatt"], r"^unknown comm\.layer 'gatt'\. Did you mean 'gat'.*\? Valid: gat, "),
        (["critic=grph"], r"^critic\.name='grph' is not valid\. Did you mean 'graph'\? Valid: auto, centralized"),
        (["ttal_steps=100"], r"^unknown config key 'ttal_steps'\. Did you mean 'total_steps'\? Valid keys: scenario, "),
        (["algo.epoch=3"], r"^unknown config key 'algo\.epoch'\. Did you mean 'algo\.epochs'"),
        (["num_envs=abc"], r"^num_envs='abc' is not an integer$"),
        (["lr=fast"], r"^lr='fast' is not a number$"),
        (["progress=maybe"], r"^progress='maybe' is not a boolean \(use true or false\)$"),
        (["lr=-0.001"], r"^lr must be > 0 \(got -0\.001\)$"),
        (["critic_lr=0"], r"^critic_lr must be > 0 \(got 0\.0\)$"),
        (["algo.clip=0"], r"^algo\.clip must be > 0 \(got 0\.0\)$"),
        (["algo.clip=-0.2"], r"^algo\.clip must be > 0 \(got -0\.2\)$"),
        (["n_agents=0"], r"^scenario 'mpe/simple_spread': n_agents must be >= 1 \(got 0\)$"),
        (["scenario=nav/navigation", "n_agents=-3"], r"^scenario 'nav/navigation': n_agents must be >= 1 \(got -3\)$"),
        (["comm.k=-1"], r"^comm\.k must be >= 0 \(got -1\); k larger than N-1 is clamped to N-1$"),
        (["comm.graph=knn", "scenario=classic/rps"], r"^graph 'knn' needs agent positions, but scenario "
                                                        r"'classic/rps' has none; graphs that need no positions: "),
        (["plugins=no_such_file.py"], r"^cannot load plugin 'no_such_file\.py': no such file$"),
        (["n_agnts=4"], r"^unknown config key 'n_agnts'\. Did you mean 'n_agents'"),
    ],
)
def test_bad_input_is_one_line_naming_value_and_choices(capsys, tmp_path, args, message):
    err = one_line_error(capsys, [*TINY, *args], tmp_path)
    assert re.search(message, err), err
    assert not (tmp_path / "never" / "checkpoints").exists()


def test_plugin_that_fails_to_import_names_the_file_and_the_error(capsys, tmp_path):
    plugin = tmp_path / "my_graphs.py"
    plugin.write_text("import torch\nraise ImportError('needs the package foo')\n")
    err = one_line_error(capsys, [*TINY, f"plugins={plugin}", "comm.graph=mine"], tmp_path)
    assert err == f"cannot load plugin {str(plugin)!r}: ImportError: needs the package foo"


@pytest.fixture
def private_graphs(monkeypatch):
    """The graph registry on a private copy (both names it is reached by), so the test graph does not leak."""
    comm.graph_names()
    private = dict(graphs_module.GRAPHS)
    monkeypatch.setattr(graphs_module, "GRAPHS", private)
    monkeypatch.setattr(comm, "GRAPHS", private)


def test_graph_returning_invalid_edges_stops_training_naming_the_graph(private_graphs, capsys, tmp_path):
    plugin = tmp_path / "bad_graphs.py"
    plugin.write_text(textwrap.dedent("""
        import torch
        from comm import Edges, Graph, register_graph

        @register_graph("off_by_one")
        class OffByOne(Graph):
            def build(self, ctx):
                return Edges(torch.tensor([[0], [ctx.num_nodes]]))   # one past the last node
    """))
    err = one_line_error(capsys, [*TINY, "total_steps=40", f"plugins={plugin}", "comm.graph=off_by_one"], tmp_path)
    assert err.startswith("graph 'off_by_one' returned invalid edges: node ids must lie in [0, E*N = 6)"), err


def test_k_larger_than_n_minus_1_is_clamped_and_trains(tmp_path):
    import csv

    run = tmp_path / "run"
    assert main(["train", *TINY, "total_steps=40", "comm.graph=knn", "comm.k=10", f"out={run}"]) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    # 3 agents: every agent hears its N-1 = 2 others, all the edges there can be
    assert [float(r["edges_used_frac"]) for r in rows] == [1.0, 1.0]
    assert [float(r["messages_per_step"]) for r in rows] == [6.0, 6.0]
    # each agent hears 2 messages of hidden=16 floats (one gat round) + 3 edge features (dx, dy, distance)
    assert [float(r["message_floats_per_agent_step"]) for r in rows] == [2 * (16 + 3)] * 2


def test_truncated_checkpoint_on_eval_and_resume_names_the_file(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "total_steps=40", "checkpoint_every=20", f"out={run}"]) == 0
    capsys.readouterr()
    latest = ckpt.latest_checkpoint(run)
    latest.write_bytes(latest.read_bytes()[:500])
    kept = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for args in (["eval", str(run)], ["resume", str(run), "total_steps=80"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert err.startswith(f"error: checkpoint {str(latest)!r} cannot be read (truncated or not a checkpoint)"), err
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == kept  # nothing lost or changed


def test_not_a_checkpoint_file(capsys, tmp_path):
    import torch

    fake = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(2)}, fake)
    assert main(["eval", str(tmp_path), "--checkpoint", str(fake)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {str(fake)!r} is not a mosaic-marl checkpoint (no algorithm/config inside)"
