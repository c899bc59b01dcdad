"""Run-folder logging: ``metrics.csv`` always (one row per iteration, flushed as written), wandb
when asked (offline by default, never fatal), and the learning-curve PNG at the end."""

from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path
from typing import Any

FIRST_COLUMNS = ["iteration", "env_steps", "wall_time_s", "episode_return_mean", "episode_return_std", "episodes"]


class MetricsLog:
    """Appends rows to ``metrics.csv``, flushing each. Columns are fixed by the first row (or by the
    existing header when resuming); missing values are left blank, e.g. eval columns between
    evaluations."""

    def __init__(self, path: Path, resume_after: int | None = None):
        self.path = Path(path)
        self.columns: list[str] | None = None
        self._writer = None
        if resume_after is not None and self.path.exists():
            self._truncate(resume_after)
            with open(self.path) as f:
                self.columns = next(csv.reader(f), None)
        elif self.path.exists():
            self.path.unlink()  # a fresh run in an old folder starts a fresh log
        self._file = open(self.path, "a", newline="")
        if self.columns:
            self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")

    def _truncate(self, last_iteration: int) -> None:
        """Keep the header and rows up to ``last_iteration`` so a resumed run has no duplicates."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        # a row cut short by a kill or a full disk has too few fields: dropped like rows past the checkpoint
        keep = [r for r in body if len(r) == len(header) and r[0].isdigit() and int(r[0]) <= last_iteration]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([header] + keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def write(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self.columns = FIRST_COLUMNS + [c for c in row if c not in FIRST_COLUMNS]
            self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def read_metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class WandbLog:
    """wandb in ``offline`` or ``online`` mode; any failure to start becomes a warning."""

    def __init__(self, mode: str, project: str, run_dir: Path, config: dict, run_id: str | None = None):
        self.run = None
        if mode == "off":
            return
        try:
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self.run = wandb.init(
                project=project,
                mode=mode,
                dir=str(run_dir),
                config=config,
                name=run_dir.name,
                id=run_id,
                resume="allow",
                settings=wandb.Settings(console="off"),
            )
        except Exception as exc:  # no network, bad key, broken install: keep training
            warnings.warn(f"wandb could not start ({type(exc).__name__}: {exc}); continuing with local logs only")
            self.run = None

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def log(self, row: dict[str, Any], step: int) -> None:
        if self.run is not None:
            try:
                self.run.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=step)
            except Exception as exc:
                warnings.warn(f"wandb.log failed ({exc}); stopping wandb logging")
                self.run = None

    def finish(self) -> None:
        if self.run is not None:
            try:
                self.run.finish()
            except Exception:
                pass


def plot_learning_curve(metrics_csv: Path, out_png: Path, title: str,
                        references: dict[str, float] | None = None) -> Path:
    """Training return (and greedy-eval return where logged) against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_csv)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)

    def series(key):
        pts = [(float(r["env_steps"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        return zip(*pts) if pts else ([], [])

    x, y = (list(v) for v in series("episode_return_mean"))
    ax.plot(x, y, color="tab:blue", lw=0.8, alpha=0.35)
    if y:
        w = max(1, len(y) // 50)  # moving average over ~2% of the run
        smooth = [sum(y[max(0, i - w + 1) : i + 1]) / len(y[max(0, i - w + 1) : i + 1]) for i in range(len(y))]
        ax.plot(x, smooth, label=f"training episodes (moving avg of {w})", color="tab:blue", lw=1.6)
    x, y = series("eval_return_mean")
    x, y = list(x), list(y)
    if x:
        ax.plot(x, y, "o-", label="greedy evaluation", color="tab:orange", ms=4)
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls="--", lw=1, color=f"C{i + 3}", label=name)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return (mean over agents)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
