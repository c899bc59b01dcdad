"""Benchmark suites: a YAML grid of training runs, run locally or on Ray, aggregated into a report
with the statistics recommended by rliable (Agarwal et al. 2021), and hyperparameter sweeps on Ray
Tune.

    suite.py    the suite file: schema, validation, expansion into cells (one training run each)
    runner.py   runs the cells (sequential, a local process pool, or Ray), resumable, failures recorded
    results.py  reads finished cells back: final scores and learning curves per task / method / seed
    stats.py    normalisation, IQM / median / mean / optimality gap with stratified bootstrap CIs,
                probability of improvement, performance profiles, sample-efficiency curves
    plots.py    the report's PNGs
    report.py   report.md + report.json from a bench folder
    sweep.py    ``marl sweep``: a Ray Tune search with ASHA early stopping
"""

from marl.bench.suite import BenchError, Cell, Suite, load_suite

__all__ = ["BenchError", "Cell", "Suite", "load_suite"]
