"""Checkpoints that are never half-written: write a temporary file, fsync, then ``os.replace``.

A checkpoint holds the algorithm (its networks, optimisers, value normaliser, hooks' state), the
collector (envs mid-episode, the actor's carry), counters, RNG states, the config, the env layout
the networks were built for (so a policy loads without an env) and metadata (package versions,
git commit, config hash), and keeps the last K files.
Resuming checks the checkpoint against the new config and says exactly which keys differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREFIX = "step_"
# bumped when what a checkpoint holds changes in a way an older reader cannot use
# 2: a PPO learner's state; 3: a registered algorithm's state and the full env layout
FORMAT_VERSION = 3
# config keys that may change when a run is resumed: how long it runs and how it is logged, not
# what it learns (any other change would silently make a different experiment)
RESUMABLE_CHANGES = frozenset({
    "total_steps", "out", "resume", "progress", "wandb", "wandb_project", "checkpoint_every", "keep_checkpoints",
    "eval_every", "eval_episodes", "threads", "compile", "workers", "device", "restart_failed_envs", "plugins",
})
# test hook: seconds to sleep inside a checkpoint write, after the data and before the rename, so a
# test can SIGKILL a run in the middle of writing one
SLOW_WRITE_ENV = "MARL_TEST_CHECKPOINT_WRITE_DELAY"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit."""


class StateMismatchError(CheckpointError):
    """Saved weights whose names or shapes do not fit the network built now; ``detail`` is the first
    mismatch in one line."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or None
    except Exception:
        return None


def metadata(config: dict) -> dict[str, Any]:
    versions = {}
    for pkg in ("mosaic-marl", "torch", "pettingzoo", "mpe2", "torch-geometric", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"versions": versions, "git_commit": _git_commit(), "config_hash": config_hash(config)}


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            if os.environ.get(SLOW_WRITE_ENV):
                time.sleep(float(os.environ[SLOW_WRITE_ENV]))
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Temporary files of writes that a kill interrupted (never loadable checkpoints); returns them."""
    folder = Path(folder)
    stale = sorted(folder.glob(f".{PREFIX}*.pt.tmp-*")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def checkpoint_path(folder: Path, env_steps: int) -> Path:
    return Path(folder) / f"{PREFIX}{env_steps:012d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{PREFIX}*.pt") if p.is_file())


def save_checkpoint(folder: Path, env_steps: int, payload: dict[str, Any], keep: int) -> Path:
    path = checkpoint_path(folder, env_steps)
    atomic_save(payload, path)
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location="cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read (truncated or not a checkpoint): {type(exc).__name__}"
        ) from None
    if not isinstance(payload, dict) or "config" not in payload or not ({"learner", "algorithm"} & set(payload)):
        raise CheckpointError(f"{str(path)!r} is not a mosaic-marl checkpoint (no algorithm/config inside)")
    return payload


def check_format(path: Path, payload: dict[str, Any]) -> None:
    """A one-line CheckpointError for a checkpoint of another format version, naming both."""
    found = payload.get("format_version", 1)
    if found != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {found} (written by mosaic-marl {_written_by(payload)}); "
            f"this mosaic-marl reads format version {FORMAT_VERSION} only: retrain, or use the mosaic-marl that "
            "wrote it"
        )


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(Path(run_dir) / "checkpoints")
    return found[-1] if found else None


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):  # an empty section has no keys to differ
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(old: dict, new: dict, ignore=RESUMABLE_CHANGES) -> list[str]:
    """``key: old -> new`` for every config key (dotted, nested) that differs, except ``ignore``."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key.split(".")[0] in ignore or key in ignore:
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            diffs.append(f"{key}: {show(va)} -> {show(vb)}")
    return diffs


def check_resumable(path: Path, payload: dict[str, Any], config: dict) -> None:
    """Raise a CheckpointError saying exactly what differs when ``payload`` cannot continue a run
    with ``config``; warn (naming the packages) when it was written with other code,
    which load fine but void the bit-identical guarantee."""
    check_format(path, payload)
    diffs = config_differences(payload.get("config", {}), config)
    if diffs:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written with another config; differing keys: {'; '.join(diffs)}. "
            f"Only {', '.join(sorted(RESUMABLE_CHANGES))} may change on resume (start a new run with out=... "
            "to change the others)"
        )
    old_versions = payload.get("metadata", {}).get("versions", {})
    now = metadata(config)["versions"]
    changed = [f"{pkg} {old_versions[pkg]} -> {now.get(pkg)}" for pkg in sorted(old_versions)
               if old_versions[pkg] != now.get(pkg)]
    old_commit, commit = payload.get("metadata", {}).get("git_commit"), _git_commit()
    if old_commit and commit and old_commit != commit:
        changed.append(f"git commit {old_commit[:10]} -> {commit[:10]}")
    if changed:
        warnings.warn(f"checkpoint {str(path)!r} was written with other code ({'; '.join(changed)}); "
                      "resuming, but the continuation is not guaranteed to be bit-identical")


def _written_by(payload: dict) -> str:
    return str(payload.get("metadata", {}).get("versions", {}).get("mosaic-marl", "unknown"))


def load_state(module_or_optimizer, state: dict, what: str, path: Path) -> None:
    """``load_state_dict`` whose failure is a one-line CheckpointError naming the checkpoint, the
    part and the first mismatch (instead of torch's multi-line report)."""
    try:
        module_or_optimizer.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        detail = " ".join(lines[:3])
        raise StateMismatchError(f"checkpoint {str(path)!r}: the {what} state does not fit this config: "
                                 f"{detail}", detail) from None
