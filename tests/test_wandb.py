"""wandb logging: offline runs leave wandb's own files in the run folder; a wandb that cannot start
is a warning, never a failed training run. No network is used (online points at a closed port)."""

from __future__ import annotations

import csv
import json

import pytest

from marl import checkpoint as ckpt
from marl.cli import main

pytestmark = pytest.mark.timeout(240)

ARGS = [
    "scenario=debug/scripted",
    "total_steps=60",
    "num_envs=2",
    "algo.rollout_len=10",
    "algo.epochs=2",
    "eval_episodes=2",
    "progress=false",
]


@pytest.fixture(autouse=True)
def _fresh_wandb_session():
    """wandb reads its environment once per process (its setup singleton): tear it down around each
    test so that the variables a test sets (and clears) are the ones wandb sees."""
    import wandb

    wandb.teardown()
    yield
    wandb.teardown()


def _assert_local_logs(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 60
    assert ckpt.latest_checkpoint(run_dir) is not None


def test_offline_run_writes_wandb_files_in_run_folder(run_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir-env"))
    assert main(["train", *ARGS, f"out={run_dir}", "wandb=offline", "wandb_project=mosaic-tests"]) == 0
    _assert_local_logs(run_dir)
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((run_dir / "wandb").iterdir())
    logs = list(runs[0].glob("*.wandb"))
    assert len(logs) == 1
    data = logs[0].read_bytes()
    assert len(data) > 0
    # the transaction log holds the metrics the trainer logged and the run's config
    for key in (b"episode_return_mean", b"policy_loss", b"final_eval_return_mean", b"total_steps"):
        assert key in data, key
    # the checkpoint remembers the wandb run, so a resume continues the same one
    payload = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    assert payload["wandb_id"] and runs[0].name.endswith(payload["wandb_id"])
    assert logs[0].name == f"run-{payload['wandb_id']}.wandb"


def test_wandb_true_means_offline():
    from marl.config import config_from_args

    assert config_from_args(["wandb=true"]).wandb == "offline"
    assert config_from_args(["wandb=false"]).wandb == "off"


def test_wandb_off_writes_no_wandb_files(run_dir):
    assert main(["train", *ARGS, f"out={run_dir}", "wandb=off"]) == 0
    _assert_local_logs(run_dir)
    assert not (run_dir / "wandb").exists()
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["wandb_id"] is None


def test_wandb_that_cannot_start_warns_and_training_finishes(run_dir, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # well-formed but not a real key
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # discard port: connection refused
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")
    with pytest.warns(UserWarning, match="wandb could not start"):
        code = main(["train", *ARGS, f"out={run_dir}", "wandb=online"])
    assert code == 0
    _assert_local_logs(run_dir)
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["wandb_id"] is None


def test_resume_continues_the_same_wandb_run(run_dir):
    """Real wandb in offline mode: the resumed process logs under the run id the checkpoint kept."""
    import time

    import wandb

    assert main(["train", *ARGS, f"out={run_dir}", "wandb=offline", "checkpoint_every=20"]) == 0
    first_id = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["wandb_id"]
    assert first_id
    wandb.teardown()
    time.sleep(1.1)  # offline run folders are named by the second they start in
    assert main(["resume", str(run_dir), "total_steps=100"]) == 0
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs
    assert all(r.name.endswith(f"-{first_id}") for r in runs)
    assert all((r / f"run-{first_id}.wandb").is_file() for r in runs)
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["wandb_id"] == first_id
    with open(run_dir / "metrics.csv", newline="") as f:
        assert [int(r["iteration"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5]
