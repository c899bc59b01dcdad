"""Benchmark suites end to end: the ``smoke`` suite on the local backend, its report checked against
the runs' own metrics.csv, resume, a crashing cell, suite validation, and (slow) the same numbers on
a local Ray."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml

from marl.bench import BenchError, load_suite
from marl.bench.suite import parse_suite
from marl.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _final_eval_from_csv(run: Path) -> tuple[float, list[tuple[float, float]]]:
    """The last evaluation return and the evaluation curve, read straight from metrics.csv."""
    with open(run / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["eval_return_mean"] not in ("", "nan")]
    curve = [(float(r["env_steps"]), float(r["eval_return_mean"])) for r in rows]
    return curve[-1][1], curve


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke"
    code = main(["bench", str(SMOKE), "workers=2", f"out={out}"])
    assert code == 0
    return out


def test_smoke_suite_report_matches_the_runs_metrics(smoke_bench):
    suite = yaml.safe_load(SMOKE.read_text())
    rep = json.loads((smoke_bench / "report.json").read_text())
    plan = json.loads((smoke_bench / "plan.json").read_text())
    assert len(plan["cells"]) == 2 * 2 * 2 and rep["runs"]["done"] == 8
    assert rep["tasks"] == ["spread", "reference"] and rep["methods"] == ["mappo", "ippo"]

    # every cell is a normal run folder with the config the grid gave it
    for cell in plan["cells"]:
        cfg = yaml.safe_load((smoke_bench / cell["name"] / "config.yaml").read_text())
        assert cfg["algo"]["name"] == cell["method"] and cfg["seed"] == cell["seed"] and cfg["total_steps"] == 200

    # recompute every number from metrics.csv, independently of marl.bench
    raw = {}
    for cell in plan["cells"]:
        final, _ = _final_eval_from_csv(smoke_bench / cell["name"])
        summary = json.loads((smoke_bench / cell["name"] / "summary.json").read_text())
        assert final == pytest.approx(summary["final_eval"]["return_mean"], rel=1e-5)  # csv keeps 6 digits
        raw[(cell["task"], cell["method"], cell["seed"])] = (final, summary["random_policy"]["return_mean"])
    rnd = {"spread": suite["tasks"]["spread"]["random_score"],
           "reference": np.mean([raw[k][1] for k in raw if k[0] == "reference"])}
    ref = {t: suite["tasks"][t]["reference_score"] for t in rnd}
    for t in rnd:
        assert rep["normalisation"][t]["random_score"] == pytest.approx(rnd[t])
        assert rep["normalisation"][t]["reference_score"] == pytest.approx(ref[t])
    for m in ("mappo", "ippo"):
        matrix = np.array([[(raw[(t, m, s)][0] - rnd[t]) / (ref[t] - rnd[t]) for t in ("spread", "reference")]
                           for s in (0, 1)])
        agg = rep["aggregate"][m]
        assert agg["IQM"][0] == pytest.approx(scipy.stats.trim_mean(matrix.ravel(), 0.25), rel=1e-5)
        assert agg["mean"][0] == pytest.approx(matrix.mean(), rel=1e-5)
        assert agg["median"][0] == pytest.approx(np.median(matrix.mean(axis=0)), rel=1e-5)
        assert agg["optimality_gap"][0] == pytest.approx(1 - np.minimum(matrix, 1).mean(), rel=1e-5)
        for point, lo, hi in agg.values():
            assert lo <= point + 1e-9 <= hi + 2e-9
        for t in ("spread", "reference"):
            d = rep["per_task"][t][m]
            assert d["mean"][0] == pytest.approx(np.mean([raw[(t, m, s)][0] for s in (0, 1)]), rel=1e-5)
        # the table in report.md shows the same IQM
        assert f"| {m} | 4 | {agg['IQM'][0]:.3f} [" in (smoke_bench / "report.md").read_text()

    # probability of improvement, by counting pairs of runs per task
    def poi(x, y):
        per_task = []
        for t in ("spread", "reference"):
            xs = [raw[(t, x, s)][0] for s in (0, 1)]
            ys = [raw[(t, y, s)][0] for s in (0, 1)]
            per_task.append(np.mean([(a > b) + 0.5 * (a == b) for a in xs for b in ys]))
        return np.mean(per_task)

    for d in rep["probability_of_improvement"]:
        assert d["p"] == pytest.approx(poi(d["x"], d["y"]))

    # the sample-efficiency curve's last point is the IQM of the final evaluations
    last = rep["sample_efficiency"]["env_steps"][-1]
    assert last == 200
    for m in ("mappo", "ippo"):
        assert rep["sample_efficiency"][m]["iqm"][-1] == pytest.approx(rep["aggregate"][m]["IQM"][0], rel=1e-5)

    for name in ("learning_curves", "aggregates", "performance_profiles", "probability_of_improvement",
                 "sample_efficiency"):
        assert (smoke_bench / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    md = (smoke_bench / "report.md").read_text()
    for needle in ("## Aggregate scores", "## Per task", "## Probability of improvement", "## Configs",
                   "## Versions", "rliable", "marl bench", "--resume"):
        assert needle in md


def test_report_again_gives_the_same_numbers(smoke_bench, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(smoke_bench, copy)
    (copy / "report.json").unlink()
    assert main(["report", str(copy)]) == 0
    before = json.loads((smoke_bench / "report.json").read_text())
    after = json.loads((copy / "report.json").read_text())
    for key in ("aggregate", "per_task", "probability_of_improvement", "sample_efficiency", "normalisation"):
        assert after[key] == before[key], key


CRASHING_GRAPH = """
from comm import Graph, register_graph

@register_graph("exploding")
class Exploding(Graph):
    \"\"\"Valid by name; raises as soon as a run builds it.\"\"\"

    def build(self, ctx):
        raise RuntimeError("boom from the exploding graph")
"""


def test_resume_runs_only_missing_cells_and_records_a_crash(smoke_bench, tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(smoke_bench, bench)
    finished = {c["name"]: (bench / c["name"] / "summary.json").stat().st_mtime
                for c in json.loads((bench / "plan.json").read_text())["cells"]}
    # a cell whose first attempt died before any checkpoint: kept aside, then rerun from scratch
    lost = bench / "spread__ippo__s1"
    shutil.rmtree(lost)
    lost.mkdir()
    (lost / "metrics.csv").write_text("iteration,env_steps\n")
    # and a new task whose runs crash at run time (its config is valid, its graph raises)
    plugin = tmp_path / "exploding.py"
    plugin.write_text(CRASHING_GRAPH)
    suite = yaml.safe_load(SMOKE.read_text())
    suite["tasks"]["broken"] = {"scenario": "mpe/simple_spread", "plugins": [str(plugin)], "comm.graph": "exploding",
                                "random_score": -27.0, "reference_score": -9.0}
    suite_file = tmp_path / "smoke-plus.yaml"
    suite_file.write_text(yaml.safe_dump(suite))

    code = main(["bench", str(suite_file), "workers=2", f"out={bench}", "--resume"])
    assert code == 1  # some cells failed; the suite went on and reported the rest
    results = {r["name"]: r for r in json.loads((bench / "results.json").read_text())}
    assert results["spread__ippo__s1"]["status"] == "done"
    assert [p.name.split(".")[0] for p in (bench / "failed-attempts").iterdir()] == ["spread__ippo__s1"]
    for name, mtime in finished.items():
        if name != "spread__ippo__s1":
            assert results[name]["status"] == "skipped"
            assert (bench / name / "summary.json").stat().st_mtime == mtime  # not rerun
    for method in ("mappo", "ippo"):
        for seed in (0, 1):
            name = f"broken__{method}__s{seed}"
            assert results[name]["status"] == "failed"
            failure = json.loads((bench / name / "failed.json").read_text())
            assert "boom from the exploding graph" in failure["error"] and failure["returncode"] != 0
    rep = json.loads((bench / "report.json").read_text())
    assert len(rep["runs"]["failed"]) == 4 and rep["runs"]["done"] == 8
    assert set(rep["aggregate"]) == {"mappo", "ippo"}  # aggregated over the tasks that have runs
    md = (bench / "report.md").read_text()
    assert "failed `broken__mappo__s0`" in md and "boom from the exploding graph" in md


def test_suite_validation_messages(tmp_path):
    good = yaml.safe_load(SMOKE.read_text())
    cases = [
        ({"seeds": []}, "seeds must be a non-empty list of integers"),
        ({"budget": "huge"}, "budget 'huge' is neither a name in budgets (tiny, small)"),
        ({"grid": {"algo": ["mappo", "dqn"]}},
         "algo='dqn' is not a registered algorithm."),
        ({"grid": {"seed": [0, 1]}}, "grid axis 'seed' is not allowed"),
        ({"base": {"total_steps": 5}}, "base may not set 'total_steps'"),
        ({"tasks": {"x": {"scenario": "mpe/simple_sprad"}}}, "Did you mean 'mpe/simple_spread'"),
        ({"tasks": {"x": {"scenario": "mpe/simple_spread", "random_score": 1, "reference_score": 1}}},
         "random_score and reference_score are equal"),
        ({"grdi": {}}, "unknown key 'grdi' in the suite. Did you mean 'grid'?"),
        ({"report": {"reps": 5}}, "unknown key 'reps' in report"),
    ]
    for change, message in cases:
        with pytest.raises(BenchError, match=None) as info:
            parse_suite({**good, **change}, "s.yaml")
        assert message in str(info.value), (change, str(info.value))
    with pytest.raises(BenchError, match="unknown task 'nope'; tasks in this suite: spread, reference"):
        parse_suite(good, "s.yaml", tasks="nope")
    with pytest.raises(BenchError, match="does not exist"):
        load_suite(tmp_path / "missing.yaml")


def test_grid_expansion_and_names():
    suite = parse_suite({"name": "g", "seeds": [0, 3], "budget": 100, "base": {"sharing.diversity": 0.2},
                         "tasks": {"a": {"scenario": "mpe/simple_spread", "n_agents": 4}},
                         "grid": {"algo": ["mappo", "ippo"], "sharing": ["full", "masks"], "lr": [1e-3]}})
    cells = suite.cells()
    assert [c.name for c in cells][:3] == ["a__mappo+full+0.001__s0", "a__mappo+full+0.001__s3",
                                           "a__mappo+masks+0.001__s0"]
    assert len(cells) == 8 and len({c.name for c in cells}) == 8
    cfg = cells[2].config
    assert cfg["sharing"] == {"diversity": 0.2, "name": "masks"} and cfg["n_agents"] == 4
    assert cfg["seed"] == 0 and cfg["total_steps"] == 100 and cfg["lr"] == 1e-3


def test_cooperative_mpe_suite_is_valid():
    suite = load_suite(ROOT / "suites" / "cooperative-mpe.yaml")
    assert len(suite.tasks) == 4 and len(suite.methods()) == 12 and len(suite.cells()) == 144
    assert load_suite(ROOT / "suites" / "cooperative-mpe.yaml", budget="full").total_steps == 1_000_000


@pytest.mark.slow
def test_ray_backend_gives_the_same_numbers(smoke_bench, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    assert main(["bench", str(SMOKE), "backend=ray", "workers=2", f"out={out}"]) == 0
    local = json.loads((smoke_bench / "report.json").read_text())
    remote = json.loads((out / "report.json").read_text())
    for key in ("aggregate", "per_task", "probability_of_improvement", "sample_efficiency", "normalisation"):
        assert remote[key] == local[key], key
    assert not math.isnan(remote["aggregate"]["mappo"]["IQM"][0])


@pytest.mark.slow
def test_sweep_on_ray_tune_with_asha(tmp_path):
    pytest.importorskip("ray.tune")
    sweep = {"name": "tiny", "base": {"scenario": "mpe/simple_spread", "num_envs": 2, "algo.rollout_len": 25,
                                      "algo.epochs": 1, "actor.hidden": 16, "critic.hidden": 16, "eval_episodes": 2},
             "total_steps": 200, "metric": "episode_return_mean", "num_samples": 4,
             "search_space": {"lr": {"loguniform": [1.0e-4, 3.0e-3]}},
             "asha": {"grace_period": 1, "reduction_factor": 2}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "workers=2", f"out={out}"]) == 0
    with open(out / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 4
    assert {t["status"] for t in trials} <= {"completed", "stopped by ASHA"}
    assert any(t["status"] == "completed" for t in trials)
    for t in trials:
        assert 1e-4 <= float(t["lr"]) <= 3e-3
        run = out / t["trial"]
        assert (run / "metrics.csv").is_file() and (run / "config.yaml").is_file()
    assert "Rerun the best trial" in (out / "sweep.md").read_text()
    assert main(["sweep", str(path), "backend=local"]) == 2
