"""Checkpoints: atomic writes, keeping the last K, and clear errors for unreadable files."""

from __future__ import annotations

import pytest
import torch

from marl import checkpoint as ckpt
from marl.checkpoint import CheckpointError


def _payload(step: int) -> dict:
    return {
        "learner": {"w": torch.full((3,), float(step))},
        "config": {"seed": 0},
        "env_steps": step,
        "rng": ckpt.rng_states(),
    }


def test_save_load_round_trip(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "checkpoints", 1234, _payload(1234), keep=3)
    assert path == ckpt.checkpoint_path(tmp_path / "checkpoints", 1234)
    assert path.name.startswith(ckpt.PREFIX) and path.suffix == ".pt"
    loaded = ckpt.load_checkpoint(path)
    assert loaded["env_steps"] == 1234
    assert torch.equal(loaded["learner"]["w"], torch.full((3,), 1234.0))


def test_atomic_save_leaves_no_temp_files_and_keeps_last_k(tmp_path):
    folder = tmp_path / "checkpoints"
    steps = [50, 100, 150, 1000, 20000, 300000]
    for s in steps:
        ckpt.save_checkpoint(folder, s, _payload(s), keep=2)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [ckpt.checkpoint_path(folder, s).name for s in (20000, 300000)]  # nothing else at all
    assert ckpt.latest_checkpoint(tmp_path) == ckpt.checkpoint_path(folder, 300000)
    assert ckpt.list_checkpoints(folder) == [ckpt.checkpoint_path(folder, s) for s in (20000, 300000)]


def test_latest_checkpoint_is_numerically_latest(tmp_path):
    folder = tmp_path / "checkpoints"
    for s in (999, 10_000, 200):
        ckpt.save_checkpoint(folder, s, _payload(s), keep=10)
    assert ckpt.latest_checkpoint(tmp_path).name == ckpt.checkpoint_path(folder, 10_000).name
    assert ckpt.latest_checkpoint(tmp_path / "elsewhere") is None


def test_failed_save_keeps_the_previous_file_intact(tmp_path):
    folder = tmp_path / "checkpoints"
    path = ckpt.save_checkpoint(folder, 100, _payload(100), keep=3)
    before = path.read_bytes()
    bad = _payload(100)
    bad["unpicklable"] = lambda x: x  # torch.save fails part-way through
    with pytest.raises(Exception):
        ckpt.save_checkpoint(folder, 100, bad, keep=3)
    assert path.read_bytes() == before
    assert ckpt.load_checkpoint(path)["env_steps"] == 100
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # no temp file left behind


def test_truncated_checkpoint_gives_checkpoint_error_naming_file(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 10, _payload(10), keep=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "truncated" in str(info.value)


def test_empty_and_garbage_files_give_checkpoint_error(tmp_path):
    empty = tmp_path / "step_000000000001.pt"
    empty.write_bytes(b"")
    garbage = tmp_path / "step_000000000002.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    for path in (empty, garbage):
        with pytest.raises(CheckpointError, match=path.name):
            ckpt.load_checkpoint(path)


def test_non_checkpoint_file_gives_clear_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as info:
        ckpt.load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and "not a mosaic-marl checkpoint" in msg
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor_file)
    with pytest.raises(CheckpointError, match="not a mosaic-marl checkpoint"):
        ckpt.load_checkpoint(tensor_file)


def test_missing_checkpoint_gives_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")


def test_rng_states_round_trip():
    import random

    import numpy as np

    states = ckpt.rng_states()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_states(states)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_metadata_has_versions_and_config_hash():
    meta = ckpt.metadata({"a": 1, "b": [1, 2]})
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["config_hash"] == ckpt.config_hash({"b": [1, 2], "a": 1})  # order does not matter
    assert meta["config_hash"] != ckpt.config_hash({"a": 2, "b": [1, 2]})
