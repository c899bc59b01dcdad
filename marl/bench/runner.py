"""Runs a suite's cells: sequentially, in a local pool of processes, or as Ray tasks.

A bench folder ``runs/bench-<name>-<time>/`` holds ``suite.yaml`` (the resolved suite and the
command), ``plan.json`` (every cell and its config) and one folder per cell. Each cell is a
``marl train`` subprocess with ``config=<cell>/cell.yaml``: a crash, a segfault or an exhausted
memory ends that process only, and is recorded in ``<cell>/failed.json`` (exit code, the error line,
the log) while the suite goes on. A cell with ``summary.json`` is finished; one with a checkpoint
is resumed; so ``--resume`` runs only what is missing. Every backend runs the same function per
cell, so the same suite gives the same numbers whichever backend ran it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

import yaml

from marl.bench.suite import BenchError, Cell, Suite

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding marl/, for the subprocesses
BACKENDS = ("local", "ray")


def new_bench_dir(suite: Suite, runs_root: str | Path = "runs") -> Path:
    return Path(runs_root) / f"bench-{suite.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def latest_bench_dir(suite: Suite, runs_root: str | Path = "runs") -> Path:
    found = sorted(Path(runs_root).glob(f"bench-{suite.name}-*"))
    found = [p for p in found if (p / "plan.json").is_file()]
    if not found:
        raise BenchError(f"--resume: no bench folder for suite {suite.name!r} under {runs_root}/ "
                         f"(expected {runs_root}/bench-{suite.name}-<time>/); pass out=DIR or run without --resume")
    return found[-1]


def prepare(suite: Suite, bench_dir: Path, command: list[str], resume: bool) -> list[Cell]:
    """Writes suite.yaml and plan.json; on resume, checks that finished cells were run with the
    same config they have now (a changed suite needs a new folder)."""
    cells = suite.cells()
    plan_path = bench_dir / "plan.json"
    if plan_path.is_file() and not resume:
        raise BenchError(f"{bench_dir} already holds a bench run; pass --resume to finish it, or choose another out=")
    if resume and plan_path.is_file():
        old = {c["name"]: c["config"] for c in json.loads(plan_path.read_text())["cells"]}
        for cell in cells:
            if (cell.name in old and old[cell.name] != cell.config
                    and (bench_dir / cell.name / "summary.json").is_file()):
                raise BenchError(f"--resume: cell {cell.name} in {bench_dir} was run with another config than the "
                                 "suite gives now; use a new out= for a changed suite")
    bench_dir.mkdir(parents=True, exist_ok=True)
    resolved = suite.to_dict()
    resolved["command"] = " ".join(command)
    (bench_dir / "suite.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    plan = {"suite": suite.name, "cells": [{"name": c.name, "task": c.task, "method": c.method, "seed": c.seed,
                                            "axes": suite.methods()[c.method], "config": c.config} for c in cells]}
    plan_path.write_text(json.dumps(plan, indent=1))
    return cells


def run_cell(name: str, config: dict, cell_dir: str) -> dict:
    """Runs one cell to completion in a subprocess (resuming it if it has a checkpoint) and returns
    {name, status: done|failed|skipped, seconds, error}. Never raises for a failed run."""
    cell_dir_p = Path(cell_dir)
    t0 = time.perf_counter()
    if (cell_dir_p / "summary.json").is_file():
        return {"name": name, "status": "skipped", "seconds": 0.0, "error": None}
    has_checkpoint = (cell_dir_p / "config.yaml").is_file() and any((cell_dir_p / "checkpoints").glob("*.pt"))
    if not has_checkpoint and (cell_dir_p / "metrics.csv").exists():
        # an earlier attempt died before its first checkpoint: keep it for inspection, start afresh
        attempts = cell_dir_p.parent / "failed-attempts"
        attempts.mkdir(exist_ok=True)
        shutil.move(str(cell_dir_p), str(attempts / f"{name}.{int(time.time())}"))
    cell_dir_p.mkdir(parents=True, exist_ok=True)
    (cell_dir_p / "failed.json").unlink(missing_ok=True)
    (cell_dir_p / "cell.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    base = [sys.executable, "-m", "marl.cli"]
    if has_checkpoint:
        cmd = base + ["resume", str(cell_dir_p.resolve()), "progress=false"]
    else:
        cmd = base + ["train", f"config={(cell_dir_p / 'cell.yaml').resolve()}", f"out={cell_dir_p.resolve()}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with open(cell_dir_p / "train.log", "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode == 0 and (cell_dir_p / "summary.json").is_file():
        return {"name": name, "status": "done", "seconds": seconds, "error": None}
    error = _error_line(cell_dir_p / "train.log") if proc.returncode != 0 else "exited 0 without a summary.json"
    failure = {"name": name, "returncode": proc.returncode, "error": error, "log": str(cell_dir_p / "train.log"),
               "command": " ".join(cmd)}
    (cell_dir_p / "failed.json").write_text(json.dumps(failure, indent=2))
    return {"name": name, "status": "failed", "seconds": seconds, "error": error}


def _error_line(log: Path) -> str:
    """The most telling line of a failed run's log: our one-line ``error:``, else the last line."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return ln[len("error:"):].strip()
    return lines[-1] if lines else "no output"


def run_cells(cells: list[Cell], bench_dir: Path, backend: str = "local", workers: int = 1,
              ray_address: str | None = None, log=print) -> list[dict]:
    """Runs every cell with the chosen backend; returns one result per cell, in cell order."""
    if backend not in BACKENDS:
        raise BenchError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if workers < 1:
        raise BenchError(f"workers must be >= 1 (got {workers})")
    jobs = [(c.name, c.config, str(bench_dir / c.name)) for c in cells]
    todo = [j for j in jobs if not (Path(j[2]) / "summary.json").is_file()]
    log(f"{len(cells)} cells: {len(cells) - len(todo)} finished already, {len(todo)} to run on {backend} "
        f"with {workers} worker{'s' if workers > 1 else ''} -> {bench_dir}")
    results = {j[0]: {"name": j[0], "status": "skipped", "seconds": 0.0, "error": None} for j in jobs}
    counter = {"n": 0}

    def report(res: dict) -> None:
        counter["n"] += 1
        results[res["name"]] = res
        extra = f": {res['error']}" if res["error"] else ""
        log(f"[{counter['n']}/{len(todo)}] {res['status']} {res['name']} ({res['seconds']:.0f} s){extra}")

    if backend == "local":
        with ThreadPoolExecutor(max_workers=workers) as pool:  # each thread waits on its own subprocess
            for fut in as_completed([pool.submit(run_cell, *j) for j in todo]):
                report(fut.result())
    else:
        for res in _run_on_ray(todo, workers, ray_address):
            report(res)
    (bench_dir / "results.json").write_text(json.dumps([results[j[0]] for j in jobs], indent=1))
    return [results[j[0]] for j in jobs]


def _run_on_ray(jobs: list[tuple], workers: int, address: str | None):
    """Yields results as Ray tasks finish. Starts a local Ray with ``workers`` CPUs unless an
    address (or RAY_ADDRESS) names a running cluster; the cluster must see this checkout."""
    try:
        import ray
    except ImportError:
        raise BenchError("backend=ray needs Ray: pip install -e '.[ray]'") from None
    started = not ray.is_initialized()
    if started:
        env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        kwargs = {"address": address} if address or os.environ.get("RAY_ADDRESS") else {"num_cpus": workers}
        ray.init(**kwargs, runtime_env={"env_vars": env_vars}, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        names = {remote.remote(*j): j[0] for j in jobs}
        pending = list(names)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    yield ray.get(ref)
                except Exception as exc:  # the worker itself died: record it as that cell's failure
                    error = f"ray task failed: {' '.join(str(exc).split())[:300]}"
                    yield {"name": names[ref], "status": "failed", "seconds": 0.0, "error": error}
    finally:
        if started:
            ray.shutdown()
