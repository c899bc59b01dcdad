"""Shared fixtures for the mosaic-marl test suite.

Every test runs with one torch thread (the machine has 2 cores and small nets are slower with
more), headless SDL, and a wandb that can only ever write under the test's temporary folder.
The process environment is restored after each test, so variables the code under test sets
(``WANDB_SILENT``, ``SDL_VIDEODRIVER``) do not leak from one test into the next.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# headless rendering for pygame-based envs (mpe2, butterfly); must be set before pygame starts
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
torch.set_num_threads(1)

# wandb variables a developer's shell may carry that would change what the tests see
_WANDB_VARS = (
    "WANDB_MODE",
    "WANDB_API_KEY",
    "WANDB_BASE_URL",
    "WANDB_PROJECT",
    "WANDB_ENTITY",
    "WANDB_RUN_ID",
    "WANDB_RESUME",
    "WANDB_INIT_TIMEOUT",
    "WANDB_DISABLED",
)


@pytest.fixture(autouse=True)
def _isolated_process_state(tmp_path_factory, monkeypatch):
    """One torch thread, dummy SDL, wandb confined to a temporary folder; environment restored after."""
    saved_env = dict(os.environ)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    for var in _WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    wandb_home = tmp_path_factory.mktemp("wandb-home")
    monkeypatch.setenv("WANDB_DIR", str(wandb_home))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(wandb_home / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(wandb_home / "config"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(wandb_home / "data"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    torch.set_num_threads(threads)
    # undo anything the code under test wrote into os.environ directly (monkeypatch undoes its own)
    for key in set(os.environ) - set(saved_env):
        del os.environ[key]
    for key, value in saved_env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A not-yet-existing run folder inside the test's temporary directory."""
    return tmp_path / "run"


@pytest.fixture
def isolated_registry(monkeypatch):
    """The scenario registry with built-ins (and installed plugins) loaded, on a private copy that
    is thrown away after the test, so registrations made by a test never leak into others."""
    import scenarios
    from scenarios import registry

    scenarios.list()  # load built-ins and plugins once, into the real registry
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", True)
    return registry
