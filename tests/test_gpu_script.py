"""``benchmarks/gpu.py`` is run once, on a lent GPU machine, with no chance to debug it there: check
the script itself on CPU at a tiny E (the same code paths but the device)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_measures_training_and_its_split_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--envs", "4,8", "--compile", "no",
                           "--skip-tests", "--iterations", "3", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert [c["envs"] for c in result["cells"]] == [4, 8]
    for c in result["cells"]:
        assert c["steps_per_s"] > 0 and c["iterations"] == 3
        assert 0 < c["env_s"] and 0 < c["collect_s"] and 0 < c["update_s"]
    report = (tmp_path / "gpu.md").read_text()
    assert "| 8 | no |" in report and "target: >= 1,000,000" in report


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_gpu_script_says_when_there_is_no_cuda_device():
    proc = subprocess.run([sys.executable, "benchmarks/gpu.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no CUDA device" in proc.stderr and proc.stderr.count("\n") <= 2
