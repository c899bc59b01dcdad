"""``marl sweep``: a hyperparameter search with Ray Tune and ASHA early stopping.

```yaml
name: sweep-lr
base: {scenario: mpe/simple_spread, num_envs: 16}   # config keys shared by every trial
total_steps: 100000
seed: 0
metric: episode_return_mean     # a metrics.csv column, reported to Tune every iteration
mode: max
num_samples: 8
search_space:                   # key: {loguniform|uniform: [lo, hi]} | {randint: [lo, hi)} | {choice: [...]}
  lr: {loguniform: [1.0e-4, 3.0e-3]}
asha: {grace_period: 5, reduction_factor: 2}   # in training iterations
```

Each trial is a normal training run in ``<sweep folder>/trial-<id>/``: the trial trains in a thread
of its Tune worker while the worker reads new ``metrics.csv`` rows and reports them to Tune, so
ASHA can stop it between iterations. ``sweep.md`` and ``trials.csv`` list every trial's settings and
result, best first, with the command that reruns the best one.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml

from marl.bench.suite import BenchError, nest
from marl.config import ConfigError, build_config, merge

SWEEP_KEYS = ("name", "description", "base", "total_steps", "seed", "metric", "mode", "num_samples",
              "search_space", "asha")
SPACES = ("loguniform", "uniform", "randint", "choice")
OPTIONS = {"backend": "ray (the only sweep backend)", "workers": "trials at once (default 2)",
           "num_samples": "trials to sample", "total_steps": "env steps per trial", "out": "sweep folder",
           "ray_address": "a running Ray cluster (default: start a local one)"}
ROOT = Path(__file__).resolve().parents[2]


def _fail(source: str, message: str):
    raise BenchError(f"sweep {source}: {message}")


def load_sweep(path: str | Path, overrides: dict) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"sweep file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text())
    source = str(path)
    if not isinstance(data, dict):
        _fail(source, "must hold a mapping of keys")
    for key in data:
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(str(key), SWEEP_KEYS, n=1)
            _fail(source, f"unknown key {key!r}." + (f" Did you mean {close[0]!r}?" if close else "")
                  + f" Valid: {', '.join(SWEEP_KEYS)}")
    sweep = {"name": data.get("name", path.stem), "base": data.get("base") or {},
             "total_steps": data.get("total_steps"),
             "seed": data.get("seed", 0), "metric": data.get("metric", "episode_return_mean"),
             "mode": data.get("mode", "max"), "num_samples": data.get("num_samples", 8),
             "search_space": data.get("search_space") or {}, "asha": data.get("asha") or {}}
    sweep.update({k: v for k, v in overrides.items() if k in ("num_samples", "total_steps")})
    if not isinstance(sweep["total_steps"], int) or sweep["total_steps"] <= 0:
        _fail(source, f"total_steps must be a positive integer (got {sweep['total_steps']!r})")
    if sweep["mode"] not in ("max", "min"):
        _fail(source, f"mode must be max or min (got {sweep['mode']!r})")
    if not isinstance(sweep["num_samples"], int) or sweep["num_samples"] < 1:
        _fail(source, f"num_samples must be an integer >= 1 (got {sweep['num_samples']!r})")
    if not sweep["search_space"]:
        _fail(source, "search_space is empty: give at least one key, e.g. lr: {loguniform: [1.0e-4, 3.0e-3]}")
    for key, spec in sweep["search_space"].items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SPACES:
            _fail(source, f"search_space.{key} must be one of {{{' | '.join(f'{s}: ...' for s in SPACES)}}} "
                          f"(got {spec!r})")
        kind, args = next(iter(spec.items()))
        if kind != "choice" and (not isinstance(args, list) or len(args) != 2 or not args[0] < args[1]):
            _fail(source, f"search_space.{key}: {kind} needs [low, high] with low < high (got {args!r})")
        if kind == "choice" and (not isinstance(args, list) or not args):
            _fail(source, f"search_space.{key}: choice needs a non-empty list (got {args!r})")
    for key in sweep["asha"]:
        if key not in ("grace_period", "reduction_factor"):
            _fail(source, f"unknown asha option {key!r}; valid: grace_period, reduction_factor")
    # every corner of the space must make a valid config before any trial starts
    for key, spec in sweep["search_space"].items():
        kind, args = next(iter(spec.items()))
        for value in (args if kind == "choice" else args[:1]):
            try:
                build_config(trial_config(sweep, {key: value}, out=None))
            except ConfigError as exc:
                _fail(source, f"search_space.{key}={value!r}: {exc}")
    sweep["source"] = source
    return sweep


def trial_config(sweep: dict, params: dict, out: str | None) -> dict:
    cfg = merge(nest(sweep["base"]), nest(params))
    cfg.update(seed=sweep["seed"], total_steps=sweep["total_steps"], progress=False)
    if out:
        cfg["out"] = out
    return cfg


def _space(spec: dict):
    from ray import tune

    kind, args = next(iter(spec.items()))
    return {"loguniform": lambda: tune.loguniform(*args), "uniform": lambda: tune.uniform(*args),
            "randint": lambda: tune.randint(*args), "choice": lambda: tune.choice(args)}[kind]()


def trainable(config: dict) -> None:
    """One Tune trial: train in a thread, report each new metrics.csv row to Tune."""
    import torch
    from ray import tune

    from marl.trainer import train

    sweep, params = config["__sweep"], {k: v for k, v in config.items() if k != "__sweep"}
    trial_id = tune.get_context().get_trial_id()
    out = Path(sweep["dir"]) / f"trial-{trial_id}"
    torch.set_num_threads(1)
    cfg = build_config(trial_config(sweep, params, str(out)))
    errors: list[BaseException] = []

    def run():
        try:
            train(cfg)
        except BaseException as exc:  # re-raised in the reporting thread, where Tune sees it
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)  # dies with the worker if ASHA stops the trial
    worker.start()
    seen = 0
    while True:
        alive = worker.is_alive()
        rows = _rows(out / "metrics.csv")
        for row in rows[seen:]:
            value = _number(row.get(sweep["metric"]))
            if value is not None:
                tune.report({sweep["metric"]: value, "env_steps": int(float(row["env_steps"]))})
        seen = len(rows)
        if not alive:
            break
        time.sleep(0.5)
    if errors:
        raise errors[0]


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[:-1] if rows and None in rows[-1].values() else rows  # a row still being written


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def main(path: str, items: list[str]) -> int:
    from marl.bench.commands import parse_options

    opts = parse_options(items, OPTIONS, "sweep")
    if opts.get("backend", "ray") != "ray":
        raise BenchError(f"sweeps run on Ray Tune only: backend={opts['backend']!r} is not valid; use backend=ray")
    sweep = load_sweep(path, opts)
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise BenchError("marl sweep needs Ray Tune: pip install -e '.[ray]'") from None
    workers = opts.get("workers", 2)
    sweep_dir = Path(str(opts.get("out") or f"runs/sweep-{sweep['name']}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"))
    sweep_dir = sweep_dir.resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep["dir"] = str(sweep_dir)
    (sweep_dir / "sweep.yaml").write_text(
        yaml.safe_dump({**sweep, "command": " ".join(["marl", "sweep", path, *items])}, sort_keys=False))
    env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    address = opts.get("ray_address") or os.environ.get("RAY_ADDRESS")
    ray.init(**({"address": address} if address else {"num_cpus": workers}), runtime_env={"env_vars": env_vars},
             include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        steps_per_iter = build_config(trial_config(sweep, {}, None))
        iterations = math.ceil(sweep["total_steps"] / (steps_per_iter.num_envs * steps_per_iter.algo.rollout_len))
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max(iterations, 1),
                                  grace_period=min(sweep["asha"].get("grace_period", max(1, iterations // 8)),
                                                   max(iterations, 1)),
                                  reduction_factor=sweep["asha"].get("reduction_factor", 2))
        space = {k: _space(v) for k, v in sweep["search_space"].items()}
        space["__sweep"] = {k: v for k, v in sweep.items()}
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(metric=sweep["metric"], mode=sweep["mode"], num_samples=sweep["num_samples"],
                                        scheduler=scheduler, max_concurrent_trials=workers),
            run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    return write_results(sweep, grid, sweep_dir, iterations)


def write_results(sweep: dict, grid, sweep_dir: Path, iterations: int) -> int:
    metric, sign = sweep["metric"], (1 if sweep["mode"] == "max" else -1)
    rows = []
    for result in grid:
        params = {k: v for k, v in result.config.items() if k != "__sweep"}
        last = (result.metrics or {})
        rows.append({"trial": f"trial-{(result.metrics or {}).get('trial_id', '?')}", **params,
                     metric: last.get(metric, float("nan")),
                     "iterations": last.get("training_iteration", 0),
                     "status": "error" if result.error else (
                         "completed" if last.get("training_iteration", 0) >= iterations else "stopped by ASHA"),
                     "error": str(result.error).splitlines()[0] if result.error else ""})
    rows.sort(key=lambda r: -sign * r[metric] if math.isfinite(r[metric]) else math.inf)
    with open(sweep_dir / "trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    keys = list(sweep["search_space"])
    best = next((r for r in rows if math.isfinite(r[metric])), None)
    lines = [f"# Sweep: {sweep['name']}", "", f"{len(rows)} trials, ASHA on `{metric}` ({sweep['mode']}), "
             f"{sweep['total_steps']:,} env steps at most ({iterations} iterations).", "",
             "| " + " | ".join(keys + [metric, "iterations", "status"]) + " |", "|" + "---|" * (len(keys) + 3)]
    for r in rows:
        lines.append("| " + " | ".join([f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys]
                                       + [f"{r[metric]:.3f}", str(r["iterations"]), r["status"]]) + " |")
    if best:
        args = " ".join(f"{k}={best[k]}" for k in keys)
        lines += ["", "Rerun the best trial:", "", "```bash",
                  f"marl train config={sweep_dir / 'base.yaml'} {args}", "```"]
        (sweep_dir / "base.yaml").write_text(yaml.safe_dump(trial_config(sweep, {}, None), sort_keys=False))
    (sweep_dir / "sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:len(rows) + 6]))
    print(f"sweep: {sweep_dir / 'sweep.md'}", file=sys.stderr)
    return 1 if all(r["status"] == "error" for r in rows) else 0
