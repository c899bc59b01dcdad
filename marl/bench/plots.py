"""The report's PNGs: learning curves per task, aggregate intervals, performance profiles, the
probability-of-improvement matrix and sample-efficiency curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

AGG_NAMES = {"IQM": "IQM", "median": "Median", "mean": "Mean", "optimality_gap": "Optimality gap"}


def _colors(methods: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def learning_curves(curves: dict[str, dict[str, tuple]], refs: dict[str, tuple[float, float]], ylabel: str,
                    path: Path) -> Path:
    """curves: task -> method -> (steps, mean, lo, hi); refs: task -> (random, reference)."""
    tasks = list(curves)
    methods = list(dict.fromkeys(m for t in tasks for m in curves[t]))
    colors = _colors(methods)
    cols = min(len(tasks), 2)
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.8 * rows), squeeze=False)
    for ax, task in zip(axes.ravel(), tasks):
        for method, (x, mean, lo, hi) in curves[task].items():
            ax.plot(x, mean, color=colors[method], label=method)
            ax.fill_between(x, lo, hi, color=colors[method], alpha=0.2)
        random_score, reference = refs[task]
        ax.axhline(random_score, color="grey", ls=":", lw=1, label="random (0)")
        ax.axhline(reference, color="black", ls="--", lw=1, label="reference (1)")
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel(ylabel)
    for ax in axes.ravel()[len(tasks):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle("Learning curves: mean over seeds, 95% bootstrap CI")
    fig.tight_layout(rect=(0, 0.04 + 0.02 * (len(labels) // 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def aggregate_intervals(estimates: dict[str, dict[str, tuple]], path: Path) -> Path:
    """Point estimates with 95% CIs per method for each aggregate, one panel per aggregate."""
    methods = list(estimates)
    colors = _colors(methods)
    fig, axes = plt.subplots(1, len(AGG_NAMES), figsize=(3.2 * len(AGG_NAMES), 0.45 * len(methods) + 1.4),
                             squeeze=False)
    for ax, (key, title) in zip(axes[0], AGG_NAMES.items()):
        for i, m in enumerate(methods):
            point, lo, hi = estimates[m][key]
            ax.barh(i, hi - lo, left=lo, height=0.6, color=colors[m], alpha=0.75)
            ax.vlines(point, i - 0.3, i + 0.3, color="black", lw=1.5)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods if ax is axes[0][0] else [], fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("normalised score")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bands(x: np.ndarray, curves: dict[str, tuple], path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """One line per method with its 95% CI band."""
    colors = _colors(list(curves))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for m, (p, lo, hi) in curves.items():
        ax.plot(x, p, color=colors[m], label=m)
        ax.fill_between(x, lo, hi, color=colors[m], alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def performance_profiles(taus: np.ndarray, profiles: dict[str, tuple], path: Path) -> Path:
    return _bands(taus, profiles, path, "normalised score τ", "fraction of runs with score > τ",
                  "Performance profiles (95% CI)")


def improvement_matrix(methods: list[str], matrix: np.ndarray, path: Path) -> Path:
    """matrix[i, j] = P(method i > method j); the diagonal is blank."""
    fig, ax = plt.subplots(figsize=(1.0 * len(methods) + 2.5, 0.8 * len(methods) + 2))
    shown = np.where(np.eye(len(methods), dtype=bool), np.nan, matrix)
    im = ax.imshow(shown, cmap="RdBu", vmin=0, vmax=1)
    for i in range(len(methods)):
        for j in range(len(methods)):
            if i != j:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(methods)))
    ax.set_yticklabels(methods, fontsize=8)
    ax.set_xlabel("Y")
    ax.set_ylabel("X")
    ax.set_title("P(X > Y)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sample_efficiency(steps: np.ndarray, curves: dict[str, tuple], path: Path) -> Path:
    return _bands(steps, curves, path, "env steps", "IQM normalised score",
                  "Sample efficiency (IQM over runs × tasks, 95% CI)")
