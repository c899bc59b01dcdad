"""Where matches run: in this process, a local process pool (default), or Ray.

Every backend takes match tasks and yields ``(task, status, payload)`` as matches finish, where
``status`` is "ok" (payload: the result dict) or "error" (payload: the traceback text). A match
is a pure function of its task, so every backend gives the same results for the same seeds.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterable, Iterator

from marl.tournament.matches import MatchTask, play_match_safely

BACKENDS = ("local", "ray")


class BackendError(ValueError):
    """An unknown backend or one that cannot start."""


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


class LocalBackend:
    """``workers=0`` plays in this process; otherwise a pool of forked worker processes."""

    def __init__(self, workers: int | None = None):
        self.workers = (os.cpu_count() or 1) if workers is None else int(workers)
        if self.workers < 0:
            raise BackendError(f"workers must be >= 0 (got {workers}); 0 plays matches in this process")

    def run(self, tasks: Iterable[MatchTask]) -> Iterator[tuple[MatchTask, str, object]]:
        tasks = list(tasks)
        if self.workers == 0:
            for task in tasks:
                yield (task, *play_match_safely(task))
            return
        # fork: workers inherit the imported packages and registered scenarios/bots (plugins too)
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("fork"),
                                 initializer=_init_worker) as pool:
            pending = {pool.submit(play_match_safely, t): t for t in tasks}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        task = pending.pop(fut)
                        try:
                            status, payload = fut.result()
                        except Exception as exc:  # a worker died (e.g. killed for memory)
                            status, payload = "error", f"worker failed: {type(exc).__name__}: {exc}"
                        yield task, status, payload
            finally:
                for fut in pending:
                    fut.cancel()

    def close(self) -> None:
        pass


class RayBackend:
    """Matches as Ray tasks: ``address=None`` starts a local Ray (``ray.init()``), else connects to
    an existing cluster (``auto`` or ``ray://host:port``); there the package must be installed."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            import ray
        except ImportError:
            raise BackendError("backend=ray needs Ray: pip install 'mosaic-marl[ray]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            kwargs: dict = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            if address:
                kwargs["address"] = address
            else:
                # a local Ray's workers import this checkout's packages, as this process does
                root = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}}
                if workers:
                    kwargs["num_cpus"] = int(workers)
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise BackendError(f"could not start Ray (address={address!r}): {type(exc).__name__}: {exc}") from None
        self.remote = ray.remote(num_cpus=1, max_retries=0)(play_match_safely)

    def run(self, tasks: Iterable[MatchTask]) -> Iterator[tuple[MatchTask, str, object]]:
        ray = self.ray
        pending = {self.remote.remote(t): t for t in tasks}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        status, payload = ray.get(ref)
                    except Exception as exc:  # the task's worker died
                        status, payload = "error", f"ray task failed: {type(exc).__name__}: {exc}"
                    yield task, status, payload
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def make_backend(name: str, workers: int | None = None, address: str | None = None):
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address, workers)
    raise BackendError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
