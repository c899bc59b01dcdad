"""Training on ``device=cuda``: the whole loop (batched simulator, actor, critic, update, checkpoint,
resume) runs on the GPU and tracks the CPU run. Skipped without a CUDA device; ``benchmarks/gpu.py``
runs these first on a GPU machine."""

from __future__ import annotations

import csv
import shutil

import pytest
import torch

from marl.cli import main
from tests.test_reliability import BASE, comparable_rows

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
ARGS = [*BASE, "backend=batched", "algo.rollout_len=25", "algo.epochs=2", "checkpoint_every=0", "seed=4"]


def _rows(run) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("algo", ["mappo", "ippo", "qmix"])
def test_training_on_cuda_runs_and_its_first_rollout_matches_cpu(tmp_path, algo):
    """The batched simulators are the same physics on either device (to float32 round-off): the first
    rollout, collected before any update, gives the same episode returns on CUDA as on CPU."""
    args = [*ARGS, f"algo={algo}", "total_steps=150"]
    for device in ("cpu", "cuda"):
        assert main(["train", *args, f"device={device}", f"out={tmp_path / device}"]) == 0
    cpu, gpu = _rows(tmp_path / "cpu"), _rows(tmp_path / "cuda")
    assert len(gpu) == len(cpu) == 3
    assert abs(float(gpu[0]["episode_return_mean"]) - float(cpu[0]["episode_return_mean"])) < 1e-3
    for row in gpu:
        assert all(v not in ("nan", "inf", "-inf") for k, v in row.items() if k.startswith(("policy", "value", "td")))


def test_cuda_training_repeats_with_its_seed(tmp_path):
    args = [*ARGS, "algo=mappo", "total_steps=150", "device=cuda"]
    for name in ("a", "b"):
        assert main(["train", *args, f"out={tmp_path / name}"]) == 0
    a, b = comparable_rows(tmp_path / "a"), comparable_rows(tmp_path / "b")
    # CUDA kernels may reduce in another order from run to run (atomics): the same to float32 round-off
    for ra, rb in zip(a, b, strict=True):
        for k in ("episode_return_mean", "policy_loss", "value_loss", "entropy"):
            assert abs(float(ra[k]) - float(rb[k])) < 1e-4, k


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")), reason="needs a C++ compiler")
def test_compiled_cuda_training_tracks_eager(tmp_path):
    args = [*ARGS, "algo=mappo", "total_steps=150", "device=cuda"]
    for name, compile_ in (("compiled", "true"), ("eager", "false")):
        assert main(["train", *args, f"compile={compile_}", f"out={tmp_path / name}"]) == 0
    compiled, eager = comparable_rows(tmp_path / "compiled"), comparable_rows(tmp_path / "eager")
    assert compiled[0]["episode_return_mean"] == eager[0]["episode_return_mean"]
    for key in ("policy_loss", "value_loss", "entropy"):
        assert abs(float(compiled[0][key]) - float(eager[0][key])) < 1e-4, key


def test_cuda_run_resumes_on_cuda(tmp_path):
    out = tmp_path / "run"
    args = [*ARGS, "algo=mappo", "device=cuda", "checkpoint_every=50", f"out={out}"]
    assert main(["train", *args, "total_steps=100"]) == 0
    assert main(["train", *args, "total_steps=150", "resume=true"]) == 0
    assert len(_rows(out)) == 3
