"""Aggregate statistics over runs and tasks, as recommended by rliable (Agarwal et al. 2021).

Scores are arranged per method as a ``[runs, tasks]`` matrix of normalised scores (random = 0, the
task's reference = 1), or ``[runs, tasks, points]`` for curves. With a handful of seeds per task a
point estimate alone misleads, so every aggregate comes with a 95% percentile confidence interval from
the *stratified* bootstrap: runs are resampled with replacement within each task (tasks are fixed
strata, so every bootstrap sample still covers every task once). The resampling is rliable's
(``StratifiedBootstrap``, built on ``arch``); every call takes a seed, so a report is reproducible.

- IQM: mean of the middle 50% of all runs × tasks (``scipy.stats.trim_mean(x, 0.25)``): robust to
  outlier runs like the median, but uses half the data instead of one or two points.
- median and mean of the per-task means; optimality gap: how far the scores fall short of the
  reference, 1 − mean(min(score, 1)) (lower is better).
- probability of improvement P(X > Y): the chance that a run of X beats a run of Y on a task
  (Mann–Whitney U / (n·m), ties count a half), averaged over tasks.
- performance profile: the fraction of runs × tasks scoring above τ, for a range of τ.
- sample efficiency: the IQM of the normalised learning curves at each env-step point.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from rliable import library as rly
from rliable import metrics as rlm

CONFIDENCE = 0.95


def _interval_estimates(score_dict: dict, func, reps: int, seed: int):
    """rliable's ``get_interval_estimates`` with a seeded bootstrap. rliable draws its resampling
    indices from numpy's global generator (its ``random_state`` argument does not reach them, and
    ``arch`` deprecates it), so the global state is seeded here and put back afterwards."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        return rly.get_interval_estimates(score_dict, func, reps=reps, confidence_interval_size=CONFIDENCE)
    finally:
        np.random.set_state(saved)


def normalise(scores, random_score: float, reference_score: float) -> np.ndarray:
    """(score − random) / (reference − random): random = 0, reference = 1."""
    span = reference_score - random_score
    if span == 0 or not np.isfinite(span):
        raise ValueError(f"cannot normalise: reference score {reference_score} and random score {random_score} "
                         "must be finite and differ")
    return (np.asarray(scores, dtype=float) - random_score) / span


def iqm(scores) -> float:
    """Interquartile mean over all runs and tasks (25% trimmed from each end)."""
    return float(scipy.stats.trim_mean(np.asarray(scores, dtype=float), proportiontocut=0.25, axis=None))


def optimality_gap(scores, gamma: float = 1.0) -> float:
    return float(rlm.aggregate_optimality_gap(np.asarray(scores, dtype=float), gamma))


AGGREGATES = {
    "IQM": iqm,
    "median": lambda s: float(rlm.aggregate_median(s)),
    "mean": lambda s: float(rlm.aggregate_mean(s)),
    "optimality_gap": optimality_gap,
}


def _aggregate_vector(scores: np.ndarray) -> np.ndarray:
    return np.array([f(scores) for f in AGGREGATES.values()])


def aggregate_estimates(score_dict: dict[str, np.ndarray], reps: int, seed: int) -> dict[str, dict[str, tuple]]:
    """method -> aggregate name -> (point, CI low, CI high), from [runs, tasks] normalised scores."""
    points, cis = _interval_estimates(score_dict, _aggregate_vector, reps, seed)
    return {m: {name: (float(points[m][i]), float(cis[m][0, i]), float(cis[m][1, i]))
                for i, name in enumerate(AGGREGATES)} for m in score_dict}


def mean_with_ci(values, reps: int, seed: int) -> tuple[float, float, float]:
    """Mean of one task's runs with a bootstrap 95% CI (the one-stratum case of the above)."""
    values = np.asarray(values, dtype=float).reshape(-1, 1)
    points, cis = _interval_estimates({"x": values}, lambda s: np.array([s.mean()]), reps, seed)
    return float(points["x"][0]), float(cis["x"][0, 0]), float(cis["x"][1, 0])


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y) averaged over tasks, from [runs_x, tasks] and [runs_y, tasks]. Equal to rliable's
    ``metrics.probability_of_improvement`` (Mann–Whitney U / (n·m)) but computed over all run pairs
    at once, which makes the bootstrap of a whole matrix of pairs affordable."""
    x = np.asarray(scores_x, dtype=float)[:, None, :]
    y = np.asarray(scores_y, dtype=float)[None, :, :]
    per_task = ((x > y) + 0.5 * (x == y)).mean(axis=(0, 1))
    return float(per_task.mean())


def improvement_matrix(score_dict: dict[str, np.ndarray], reps: int, seed: int) -> dict[tuple[str, str], tuple]:
    """(X, Y) -> (P(X > Y), CI low, CI high) for every ordered pair of methods; each pair is
    bootstrapped independently for X and Y, stratified by task."""
    methods = list(score_dict)
    pairs = {f"{a}\x00{b}": (score_dict[a], score_dict[b]) for a in methods for b in methods if a != b}
    if not pairs:
        return {}
    points, cis = _interval_estimates(pairs, lambda x, y: np.array([probability_of_improvement(x, y)]), reps, seed)
    return {tuple(k.split("\x00")): (float(points[k][0]), float(cis[k][0, 0]), float(cis[k][1, 0])) for k in pairs}


def profile_taus(score_dict: dict[str, np.ndarray], n: int = 41) -> np.ndarray:
    """Thresholds spanning every score seen, and at least [0, 1]."""
    values = np.concatenate([s.ravel() for s in score_dict.values()]) if score_dict else np.zeros(1)
    return np.linspace(min(0.0, float(values.min())), max(1.0, float(values.max())), n)


def performance_profiles(score_dict: dict[str, np.ndarray], taus: np.ndarray, reps: int,
                         seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """method -> (fraction of runs × tasks with score > τ for each τ, CI low, CI high)."""
    taus = np.asarray(taus, dtype=float)
    profile = lambda s: (s.reshape(-1, 1) > taus[None, :]).mean(axis=0)  # noqa: E731
    points, cis = _interval_estimates(score_dict, profile, reps, seed)
    return {m: (points[m], cis[m][0], cis[m][1]) for m in score_dict}


def sample_efficiency(curve_dict: dict[str, np.ndarray], reps: int,
                      seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """method -> (IQM at each point, CI low, CI high), from [runs, tasks, points] normalised curves."""
    per_point = lambda s: scipy.stats.trim_mean(s.reshape(-1, s.shape[-1]), 0.25, axis=0)  # noqa: E731
    points, cis = _interval_estimates(curve_dict, per_point, reps, seed)
    return {m: (points[m], cis[m][0], cis[m][1]) for m in curve_dict}


def mean_curve_with_ci(curves: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs of [runs, points] curves with a bootstrap 95% band (one task's learning curve)."""
    data = np.asarray(curves, dtype=float)[:, None, :]
    points, cis = _interval_estimates({"x": data}, lambda s: s.mean(axis=(0, 1)), reps, seed)
    return points["x"], cis["x"][0], cis["x"][1]
