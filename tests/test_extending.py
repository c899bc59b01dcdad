"""The extending guide's worked examples (docs/extending.md) are real: each ``File: examples/X.py``
block is written out and used the way the guide says, through ``plugins=`` on ``marl train`` (and
the Python API), so the guide cannot drift from the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import marl
from marl.cli import main

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "extending.md"
TINY = ["total_steps=120", "num_envs=2", "algo.rollout_len=10", "algo.epochs=1", "actor.hidden=16",
        "critic.hidden=16", "eval_episodes=2", "checkpoint_every=60", "progress=false"]


def examples() -> dict[str, str]:
    text = GUIDE.read_text()
    found = re.findall(r"^File: examples/(\w+\.py)\n\n```python\n(.*?)^```", text, flags=re.S | re.M)
    return dict(found)


@pytest.fixture(scope="module", autouse=True)
def registries_restored():
    """The examples register names process-wide; restore every registry (and forget the plugin
    modules, so a later load_plugin registers again) so other test files see the built-ins only."""
    import comm
    import marl.algos
    import marl.hooks
    import marl.sharing
    import scenarios
    from scenarios import registry

    scenarios.list()  # the built-ins register on first use: snapshot them, not an empty registry
    stores = [marl.algos.ALGORITHMS, comm.GRAPHS, comm.LAYERS, marl.sharing.SCHEMES, registry._REGISTRY]
    saved = [dict(d) for d in stores]
    factories = list(marl.hooks.HOOK_FACTORIES)
    modules = set(sys.modules)
    yield
    for store, before in zip(stores, saved):
        store.clear()
        store.update(before)
    marl.hooks.HOOK_FACTORIES[:] = factories
    for name in set(sys.modules) - modules:
        if name.startswith("comm_plugin_"):
            del sys.modules[name]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("examples")
    out = {}
    for name, code in examples().items():
        out[name] = folder / name
        out[name].write_text(code)
    return out


def test_the_guide_has_one_example_per_plug_in_point():
    assert set(examples()) == {"line_rendezvous.py", "leader_and_nearest.py", "difference_max.py", "halves.py",
                               "a2c.py", "copeland.py"}


def test_scenario_example_passes_the_parallel_api_test_and_trains(files, tmp_path):
    subprocess.run([sys.executable, str(files["line_rendezvous.py"])], check=True, cwd=REPO, timeout=120)
    run = tmp_path / "run"
    assert main(["train", f"plugins={files['line_rendezvous.py']}", "scenario=mine/line_rendezvous", "n_agents=4",
                 *TINY, f"out={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scenario"] == "mine/line_rendezvous" and summary["env_steps"] == 120


@pytest.mark.parametrize("name, args", [
    ("leader_and_nearest.py", ["comm.graph=leader_and_nearest"]),
    ("difference_max.py", ["comm.graph=complete", "comm.layer=difference_max"]),
    ("halves.py", ["sharing=halves"]),
])
def test_graph_layer_and_sharing_examples_train(files, tmp_path, name, args):
    run = tmp_path / "run"
    assert main(["train", f"plugins={files[name]}", *args, *TINY, f"out={run}"]) == 0
    assert (run / "summary.json").is_file()


def test_algorithm_example_trains_loads_and_evaluates(files, tmp_path):
    run = tmp_path / "run"
    tiny = [a for a in TINY if not a.startswith("algo.epochs")]  # A2C has no epochs: one step per rollout
    assert main(["train", f"plugins={files['a2c.py']}", "algo=a2c", *tiny, f"out={run}"]) == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"policy_loss", "value_loss", "entropy"} <= set(header) and len(rows) == 1 + 6
    policy = marl.load_policy(run)
    assert policy.config.algo.name == "a2c" and policy.config.algo.vf_coef == 0.5
    result = marl.evaluate(policy, episodes=4)
    assert len(result.returns) == 4
    # the same algorithm through the Python API, with independent critics
    again = marl.train(plugins=[str(files["a2c.py"])], algo="a2c", critic="independent", out=str(tmp_path / "py"),
                       **{k: v for k, v in (a.split("=") for a in tiny)})
    assert json.loads((again / "summary.json").read_text())["algo"] == "a2c"


def test_rating_example_reads_a_tournament(files, tmp_path):
    folder = tmp_path / "t"
    assert main(["tournament", "scenario=classic/rrps", "bots=rock,paper,scissors", "episodes=2", "num_throws=20",
                 f"out={folder}", "workers=0", "progress=false"]) == 0
    out = subprocess.run([sys.executable, str(files["copeland.py"]), str(folder)], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "copeland" in out.stdout.lower()
