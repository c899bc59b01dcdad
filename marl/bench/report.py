"""``report.md``, ``report.json`` and the PNGs of a bench folder, computed from its runs.

Normalisation per task: random = 0 is the suite's ``random_score`` when stated, else the mean over
the task's runs of each run's own random-policy evaluation (``summary.json``); reference = 1 is the
suite's ``reference_score`` when stated, else the best method's mean score on that task in this bench
(then scores are relative to the best method here, and the report says so).

Aggregates over tasks need a full [runs, tasks] matrix per method: a method's aggregate uses the
seeds that finished on every task (the others are listed as left out); the per-task tables use
every finished run.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from marl.bench import plots, stats
from marl.bench.results import BenchResults, load_results
from marl.bench.suite import BenchError

ROOT = Path(__file__).resolve().parents[2]


def normalisation(res: BenchResults) -> dict[str, dict]:
    out = {}
    for task in res.tasks:
        stated = res.suite["tasks"][task]
        runs = res.done(task)
        if "random_score" in stated:
            rnd, rnd_src = float(stated["random_score"]), "stated in the suite"
        else:
            rnd = float(np.mean([r.random_score for r in runs])) if runs else float("nan")
            rnd_src = f"mean of the runs' own random-policy evaluations ({len(runs)} runs)"
        if "reference_score" in stated:
            ref, ref_src = float(stated["reference_score"]), "stated in the suite"
        else:
            means = {m: np.mean([r.score for r in res.done(task, m)]) for m in res.methods if res.done(task, m)}
            best = max(means, key=means.get) if means else None
            ref = float(means[best]) if best else float("nan")
            ref_src = f"best method in this bench ({best})"
            if best and not ref > rnd:
                raise BenchError(
                    f"task {task!r}: no method beats the random policy (best mean {ref:.3f} <= random {rnd:.3f}), "
                    f"so it cannot serve as the reference score; state reference_score for it in "
                    f"{res.bench_dir / 'suite.yaml'} and run marl report again")
        out[task] = {"random_score": rnd, "random_source": rnd_src, "reference_score": ref, "reference_source": ref_src}
    return out


def _norm(res: BenchResults, norms: dict, task: str, values) -> np.ndarray:
    n = norms[task]
    return stats.normalise(values, n["random_score"], n["reference_score"])


def scored_tasks(res: BenchResults) -> list[str]:
    """Tasks with at least one finished run: a task whose every run failed cannot be aggregated."""
    return [t for t in res.tasks if res.done(t)]


def score_matrices(res: BenchResults, norms: dict) -> tuple[dict[str, np.ndarray], dict[str, list[int]], list[str]]:
    """method -> [seeds, tasks] normalised final scores over the seeds finished on every scored task."""
    tasks = scored_tasks(res)
    matrices, seeds_used, left_out = {}, {}, []
    for m in res.methods:
        by_seed: dict[int, dict[str, float]] = {}
        for r in res.done(method=m):
            by_seed.setdefault(r.seed, {})[r.task] = r.score
        full = sorted(s for s, d in by_seed.items() if all(t in d for t in tasks))
        left_out += [r.name for r in res.done(method=m) if r.seed not in full]
        if full:
            raw = np.array([[by_seed[s][t] for t in tasks] for s in full])
            matrices[m] = np.stack([_norm(res, norms, t, raw[:, j]) for j, t in enumerate(tasks)], axis=1)
            seeds_used[m] = full
    return matrices, seeds_used, left_out


def curve_grid(res: BenchResults, points: int) -> np.ndarray:
    """Common env-step points: from the latest first point to the earliest last point of all runs,
    so no run's curve is extrapolated."""
    curves = [r.curves[res.curve_column][0] for r in res.done() if res.curve_column in r.curves]
    if not curves:
        return np.zeros(0)
    start, end = max(c[0] for c in curves), min(c[-1] for c in curves)
    n = min(points, max(len(c) for c in curves))
    return np.linspace(start, end, n) if end > start else np.array([end])


def _interp(rec, column: str, grid: np.ndarray) -> np.ndarray:
    x, y = rec.curves[column]
    return np.interp(grid, x, y)


def build_report(bench_dir: str | Path, reps: int | None = None, seed: int | None = None) -> dict:
    """Computes every statistic, writes report.json, report.md and the PNGs; returns the json."""
    res = load_results(bench_dir)
    bench_dir = res.bench_dir
    if not res.done():
        raise BenchError(f"{bench_dir}: no finished runs yet, nothing to report "
                         f"({sum(r.status == 'failed' for r in res.runs)} failed, "
                         f"{sum(r.status == 'missing' for r in res.runs)} not run)")
    cfg = res.suite.get("report", {})
    reps = int(reps or cfg.get("bootstrap_reps", 10000))
    seed = int(cfg.get("bootstrap_seed", 0) if seed is None else seed)
    norms = normalisation(res)

    per_task: dict = {}
    for t in res.tasks:
        per_task[t] = {}
        for m in res.methods:
            runs = sorted(res.done(t, m), key=lambda r: r.seed)
            if not runs:
                continue
            raw = [r.score for r in runs]
            normed = _norm(res, norms, t, raw)
            per_task[t][m] = {
                "seeds": [r.seed for r in runs], "scores": raw, "normalised": [float(v) for v in normed],
                "mean": stats.mean_with_ci(raw, reps, seed), "normalised_mean": stats.mean_with_ci(normed, reps, seed),
            }

    matrices, seeds_used, left_out = score_matrices(res, norms)
    aggregate = stats.aggregate_estimates(matrices, reps, seed) if matrices else {}
    improvement = stats.improvement_matrix(matrices, reps, seed)
    taus = stats.profile_taus(matrices)
    profiles = stats.performance_profiles(matrices, taus, reps, seed) if matrices else {}

    grid = curve_grid(res, int(cfg.get("curve_points", 20)))
    curve_sets: dict[str, np.ndarray] = {}
    for m, used in seeds_used.items():
        by = {(r.task, r.seed): r for r in res.done(method=m)}
        curve_sets[m] = np.stack([np.stack([_norm(res, norms, t, _interp(by[(t, s)], res.curve_column, grid))
                                            for t in scored_tasks(res)]) for s in used])
    efficiency = stats.sample_efficiency(curve_sets, max(reps // 5, 200), seed) if len(grid) else {}
    task_curves = {t: {} for t in res.tasks}
    for t in res.tasks:
        for m in res.methods:
            runs = res.done(t, m)
            if runs and len(grid):
                data = np.stack([_interp(r, res.curve_column, grid) for r in runs])
                task_curves[t][m] = (grid, *stats.mean_curve_with_ci(data, max(reps // 5, 200), seed))

    pngs = {
        "learning_curves": plots.learning_curves(
            {t: c for t, c in task_curves.items() if c},
            {t: (norms[t]["random_score"], norms[t]["reference_score"]) for t in res.tasks},
            "evaluation return" if res.curve_column == "eval_return_mean" else "training return",
            bench_dir / "learning_curves.png"),
    }
    if matrices:
        pngs["aggregates"] = plots.aggregate_intervals(aggregate, bench_dir / "aggregates.png")
        pngs["performance_profiles"] = plots.performance_profiles(taus, profiles,
                                                                  bench_dir / "performance_profiles.png")
        methods = list(matrices)
        mat = np.full((len(methods), len(methods)), 0.5)
        for (x, y), (p, _, _) in improvement.items():
            mat[methods.index(x), methods.index(y)] = p
        if len(methods) > 1:
            pngs["probability_of_improvement"] = plots.improvement_matrix(
                methods, mat, bench_dir / "probability_of_improvement.png")
        if efficiency:
            pngs["sample_efficiency"] = plots.sample_efficiency(grid, efficiency, bench_dir / "sample_efficiency.png")

    report = {
        "suite": res.suite.get("name"), "bench_dir": str(bench_dir),
        "generated": datetime.now().isoformat(timespec="seconds"),
        "budget": {"name": res.suite.get("budget"), "total_steps": res.suite.get("total_steps")},
        "score": "final greedy evaluation return (summary.json final_eval.return_mean)",
        "curve_column": res.curve_column,
        "bootstrap": {"reps": reps, "seed": seed, "confidence": stats.CONFIDENCE,
                      "method": "percentile, runs resampled within each task (rliable StratifiedBootstrap)"},
        "tasks": res.tasks, "methods": res.methods, "method_axes": res.method_axes, "normalisation": norms,
        "per_task": per_task,
        "aggregate": {m: {k: list(v) for k, v in a.items()} for m, a in aggregate.items()},
        "aggregate_seeds": seeds_used, "left_out_of_aggregate": left_out,
        "probability_of_improvement": [{"x": x, "y": y, "p": p, "ci": [lo, hi]}
                                       for (x, y), (p, lo, hi) in improvement.items()],
        "performance_profiles": {"taus": taus.tolist(), **{m: {"p": p.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
                                                           for m, (p, lo, hi) in profiles.items()}},
        "sample_efficiency": {"env_steps": grid.tolist(),
                              **{m: {"iqm": p.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
                                 for m, (p, lo, hi) in efficiency.items()}},
        "runs": {"done": len(res.done()),
                 "failed": [{"name": r.name, "error": r.error} for r in res.runs if r.status == "failed"],
                 "missing": [r.name for r in res.runs if r.status == "missing"]},
        "wall_time_s": _wall_times(res),
        "versions": versions(),
        "pngs": {k: p.name for k, p in pngs.items()},
    }
    (bench_dir / "report.json").write_text(json.dumps(report, indent=1))
    (bench_dir / "report.md").write_text(render_markdown(report, res))
    return report


def _wall_times(res: BenchResults) -> dict:
    times = []
    for r in res.done():
        try:
            times.append(json.loads((res.bench_dir / r.name / "summary.json").read_text())["wall_time_s"])
        except (OSError, KeyError, ValueError):
            pass
    return {"sum": float(sum(times)), "mean_per_run": float(np.mean(times)) if times else float("nan")}


def versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("mosaic-marl", "torch", "torch-geometric", "numpy", "scipy", "rliable", "pettingzoo", "mpe2", "ray"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _ci(v) -> str:
    point, lo, hi = v
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]"


def render_markdown(rep: dict, res: BenchResults) -> str:
    suite = res.suite
    L = [f"# Benchmark report: {rep['suite']}", ""]
    if suite.get("description"):
        L += [suite["description"], ""]
    runs = rep["runs"]
    L += [f"- budget: **{rep['budget']['name']}** ({rep['budget']['total_steps']:,} env steps per run); "
          f"seeds {suite.get('seeds')}; {len(res.tasks)} tasks × {len(res.methods)} methods",
          f"- runs: {runs['done']} finished, {len(runs['failed'])} failed, {len(runs['missing'])} not run; "
          f"training time {rep['wall_time_s']['sum'] / 60:.1f} min summed over runs",
          f"- score: {rep['score']}; normalised per task, random = 0, reference = 1",
          f"- intervals: 95% {rep['bootstrap']['method']}, {rep['bootstrap']['reps']:,} resamples, "
          f"seed {rep['bootstrap']['seed']}",
          f"- folder: `{rep['bench_dir']}`; generated {rep['generated']}", "",
          "Reproduce:", "", "```bash", suite.get("command") or f"marl bench {suite.get('source')}", "```", ""]

    L += ["## Aggregate scores (normalised)", "",
          "IQM = mean of the middle 50% of runs × tasks; optimality gap = 1 − mean(min(score, 1)), "
          "lower is better.", "",
          "| method | runs | IQM | median | mean | optimality gap |", "|---|---:|---:|---:|---:|---:|"]
    order = sorted(rep["aggregate"], key=lambda m: -rep["aggregate"][m]["IQM"][0])
    for m in order:
        a = rep["aggregate"][m]
        L.append(f"| {m} | {len(rep['aggregate_seeds'][m]) * len(scored_tasks(res))} | {_ci(a['IQM'])} | "
                 f"{_ci(a['median'])} | "
                 f"{_ci(a['mean'])} | {_ci(a['optimality_gap'])} |")
    if rep["left_out_of_aggregate"]:
        L += ["", f"Left out of the aggregates (their seed did not finish on every task): "
                  f"{', '.join(rep['left_out_of_aggregate'])}"]
    L += [""]
    for key, title in (("aggregates", "aggregate scores"), ("sample_efficiency", "sample efficiency"),
                       ("performance_profiles", "performance profiles"),
                       ("probability_of_improvement", "probability of improvement"),
                       ("learning_curves", "learning curves")):
        if key in rep["pngs"]:
            L += [f"![{title}]({rep['pngs'][key]})", ""]

    L += ["## Per task", "", "Raw return: mean over seeds [95% bootstrap CI]; normalised likewise.", ""]
    for t in res.tasks:
        n = rep["normalisation"][t]
        L += [f"### {t} (`{suite['tasks'][t]['scenario']}`)", "",
              f"random = {n['random_score']:.3f} ({n['random_source']}); reference = {n['reference_score']:.3f} "
              f"({n['reference_source']})", "",
              "| method | seeds | return | normalised | per seed |", "|---|---|---:|---:|---|"]
        for m in res.methods:
            if m in rep["per_task"][t]:
                d = rep["per_task"][t][m]
                per_seed = ", ".join(f"{s}: {v:.2f}" for s, v in zip(d["seeds"], d["scores"]))
                L.append(f"| {m} | {len(d['seeds'])} | {_ci(d['mean'])} | {_ci(d['normalised_mean'])} | {per_seed} |")
        L.append("")

    if rep["probability_of_improvement"]:
        L += ["## Probability of improvement", "", "P(row > column) [95% CI], averaged over tasks.", "",
              "| X \\ Y | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
        poi = {(d["x"], d["y"]): (d["p"], *d["ci"]) for d in rep["probability_of_improvement"]}
        for x in order:
            L.append(f"| {x} | " + " | ".join("–" if x == y else _ci(poi[(x, y)]) for y in order) + " |")
        L.append("")

    L += ["## Methods", "", "| method | " + " | ".join(next(iter(res.method_axes.values())) or ["(defaults)"]) + " |",
          "|---|" + "---|" * max(1, len(next(iter(res.method_axes.values())))), ]
    for m, axes in res.method_axes.items():
        L.append(f"| {m} | " + " | ".join(str(v) for v in axes.values()) + (" |" if axes else " – |"))
    L.append("")

    if runs["failed"] or runs["missing"]:
        L += ["## Runs that did not finish", ""]
        L += [f"- failed `{f['name']}`: {f['error']}" for f in runs["failed"]]
        L += [f"- not run `{name}`" for name in runs["missing"]]
        L += ["", "`marl bench SUITE --resume` (or `out=` this folder with `--resume`) runs only these.", ""]

    L += ["## Configs", "", "The resolved suite (every cell's full config is `<cell>/config.yaml`):", "", "```yaml",
          yaml.safe_dump({k: v for k, v in suite.items() if k != "command"}, sort_keys=False).rstrip(), "```", ""]
    for t in res.tasks:
        for m in res.methods:
            runs_tm = res.done(t, m)
            if runs_tm:
                path = res.bench_dir / runs_tm[0].name / "config.yaml"
                L += [f"<details><summary>{t} / {m} (seed {runs_tm[0].seed})</summary>", "", "```yaml",
                      path.read_text().rstrip() if path.is_file() else "(missing)", "```", "</details>", ""]

    L += ["## Versions", "", "| package | version |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in rep["versions"].items()]
    return "\n".join(L) + "\n"
