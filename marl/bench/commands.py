"""``marl bench``, ``marl report`` and ``marl sweep``: argument handling, then the bench modules."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from marl.bench.suite import BenchError
from marl.config import ConfigError, parse_overrides

BENCH_OPTIONS = {
    "backend": "local (default) or ray",
    "workers": "cells run at once (default 1: sequential)",
    "budget": "a budget name from the suite, or env steps per run",
    "seeds": "seed list, e.g. seeds=[0,1]",
    "tasks": "a subset of the suite's tasks, e.g. tasks=spread,reference",
    "grid.AXIS": "other values for one of the suite's grid axes, e.g. grid.algo=[mappo]",
    "out": "bench folder (default runs/bench-<suite>-<time>)",
    "ray_address": "a running Ray cluster (default: start a local one)",
}


def parse_options(items: list[str], valid: dict[str, str], command: str) -> dict:
    from marl.config import parse_value

    grid = {}
    if "grid.AXIS" in valid:  # grid axes are dotted config keys: keep them whole
        for item in [i for i in items if i.startswith("grid.") and "=" in i]:
            key, text = item.split("=", 1)
            grid[key[len("grid."):]] = parse_value(text)
        items = [i for i in items if not i.startswith("grid.")]
    try:
        opts = parse_overrides(items)
    except ConfigError as exc:
        raise BenchError(str(exc)) from None
    for key in opts:
        if key not in valid:
            close = difflib.get_close_matches(key, list(valid), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BenchError(f"unknown {command} option {key!r}.{hint} Valid: "
                             + "; ".join(f"{k} ({v})" for k, v in valid.items()))
    if grid:
        opts["grid"] = grid
    return opts


def cmd_bench(args) -> int:
    from marl.bench import report, runner
    from marl.bench.suite import load_suite

    opts = parse_options(args.options, BENCH_OPTIONS, "bench")
    suite = load_suite(args.suite, budget=opts.get("budget"), seeds=opts.get("seeds"), tasks=opts.get("tasks"),
                       grid=opts.get("grid"))
    backend, workers = str(opts.get("backend", "local")), opts.get("workers", 1)
    if backend not in runner.BACKENDS:
        raise BenchError(f"unknown backend {backend!r}; valid: {', '.join(runner.BACKENDS)}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise BenchError(f"workers must be an integer >= 1 (got {workers!r})")
    if "out" in opts:
        bench_dir = Path(str(opts["out"]))
    else:
        bench_dir = runner.latest_bench_dir(suite) if args.resume else runner.new_bench_dir(suite)
    command = ["marl", "bench", args.suite, *args.options] + (["--resume"] if args.resume else [])
    if not args.resume or "out" not in opts:
        command = [*command[:3], *[o for o in args.options if not o.startswith("out=")], f"out={bench_dir}", "--resume"]
    cells = runner.prepare(suite, bench_dir, command, resume=args.resume)
    results = runner.run_cells(cells, bench_dir, backend, workers, opts.get("ray_address"),
                               log=lambda msg: print(msg, file=sys.stderr, flush=True))
    failed = [r for r in results if r["status"] == "failed"]
    if len(failed) == len(results):
        print(f"every cell failed; first error: {failed[0]['error']} (logs: {bench_dir}/<cell>/train.log)",
              file=sys.stderr)
        return 1
    rep = report.build_report(bench_dir)
    print_summary(rep, bench_dir)
    if failed:
        print(f"{len(failed)} of {len(results)} cells failed (listed in the report; --resume retries them)",
              file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    from marl.bench import report

    bench_dir = Path(args.bench_dir)
    rep = report.build_report(bench_dir, reps=args.reps, seed=args.seed)
    print_summary(rep, bench_dir)
    return 0


def print_summary(rep: dict, bench_dir: Path) -> None:
    print(f"{rep['suite']}: {rep['runs']['done']} runs, budget {rep['budget']['name']} "
          f"({rep['budget']['total_steps']:,} env steps each)")
    rows = sorted(rep["aggregate"].items(), key=lambda kv: -kv[1]["IQM"][0])
    width = max([len(m) for m, _ in rows] + [6])
    print(f"  {'method'.ljust(width)}  IQM [95% CI]            optimality gap")
    for m, a in rows:
        p, lo, hi = a["IQM"]
        g = a["optimality_gap"]
        print(f"  {m.ljust(width)}  {p:6.3f} [{lo:6.3f}, {hi:6.3f}]  {g[0]:.3f}")
    print(f"report: {bench_dir / 'report.md'}")


def cmd_sweep(args) -> int:
    from marl.bench import sweep

    return sweep.main(args.sweep_file, args.options)
