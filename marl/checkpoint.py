"""Checkpoints that are never half-written: write a temporary file, fsync, then ``os.replace``.

A checkpoint holds the learner (models, optimisers, value normaliser), counters, RNG states, the
config and metadata (package versions, git commit, config hash), and keeps the last K files.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREFIX = "step_"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit."""


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
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
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
    if not isinstance(payload, dict) or "learner" not in payload or "config" not in payload:
        raise CheckpointError(f"{str(path)!r} is not a mosaic-marl checkpoint (no learner/config inside)")
    return payload


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(Path(run_dir) / "checkpoints")
    return found[-1] if found else None
