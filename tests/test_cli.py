"""The ``marl`` command line end to end: train, eval --render, scenarios, errors, resume, and the
installed console script."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import scenarios
from marl import checkpoint as ckpt
from marl.cli import main
from marl.evaluation import record_gif

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAIN_ARGS = [
    "total_steps=400",
    "num_envs=2",
    "algo.rollout_len=25",
    "algo.epochs=2",
    "eval_episodes=2",
    "checkpoint_every=200",
    "progress=false",
]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny CLI training run shared by the tests that only read its folder."""
    import torch

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", *TRAIN_ARGS, f"out={out}"])
    torch.set_num_threads(threads)
    assert code == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    """A private copy of the trained run that a test may change."""
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


# ---- train -----------------------------------------------------------------------------------


def test_train_writes_config_yaml(trained):
    data = yaml.safe_load((trained / "config.yaml").read_text())
    assert data["total_steps"] == 400 and data["num_envs"] == 2
    assert data["algo"]["rollout_len"] == 25 and data["out"] == str(trained)
    from marl.config import build_config

    cfg = build_config(data)  # the saved config is a valid config
    assert cfg.scenario == "mpe/simple_spread"


def test_train_writes_metrics_csv(trained):
    text = (trained / "metrics.csv").read_text()
    assert text.startswith("iteration,env_steps,wall_time_s,episode_return_mean")
    rows = _rows(trained / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(1, 9))  # 400 / (2 envs x 25 steps)
    steps = [int(r["env_steps"]) for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[-1] == 400
    assert steps == [50 * i for i in range(1, 9)]
    walls = [float(r["wall_time_s"]) for r in rows]
    assert walls == sorted(walls) and walls[0] > 0
    # episodes of 25 steps end in 2 envs every 25 steps: a return on every other row at least
    returns = [r["episode_return_mean"] for r in rows if r["episode_return_mean"] != ""]
    assert len(returns) >= 4 and all(np.isfinite(float(x)) for x in returns)
    for key in ("policy_loss", "value_loss", "entropy"):
        assert all(np.isfinite(float(r[key])) for r in rows), key


def test_train_writes_loadable_checkpoints(trained):
    files = sorted((trained / "checkpoints").glob("step_*.pt"))
    assert [f.name for f in files] == [ckpt.checkpoint_path(".", s).name for s in (200, 400)]
    for f, steps in zip(files, (200, 400)):
        payload = ckpt.load_checkpoint(f)
        assert payload["env_steps"] == steps and payload["iteration"] == steps // 50
        assert payload["config"]["total_steps"] == 400
        assert any(k.startswith("actor.") for k in payload["algorithm"]["modules"])
        assert payload["env_info"]["layout"].n_agents == 3 and payload["env_info"]["state_dim"] > 0
        assert payload["metadata"]["config_hash"] == ckpt.config_hash(payload["config"])


def test_train_writes_learning_curve_png(trained):
    png = trained / "learning_curve.png"
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.size[0] > 300 and im.size[1] > 200
        pixels = np.asarray(im.convert("L"))
        assert pixels.std() > 5  # something is drawn


def test_train_writes_summary_json(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["env_steps"] == 400 and summary["iterations"] == 8
    assert summary["scenario"] == "mpe/simple_spread" and summary["algo"] == "mappo"
    assert summary["final_eval"]["episodes"] == 2 and summary["random_policy"]["episodes"] == 2
    assert np.isfinite(summary["final_eval"]["return_mean"])


# ---- eval ------------------------------------------------------------------------------------


def test_eval_render_writes_gif_and_json(run_copy, capsys):
    assert main(["eval", str(run_copy), "--episodes", "2", "--render"]) == 0
    out = capsys.readouterr().out
    assert "trained policy" in out and "episode.gif" in out
    gif = run_copy / "episode.gif"
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    with Image.open(gif) as im:
        assert im.n_frames > 10  # one mpe episode is 25 steps
    result = json.loads((run_copy / "eval.json").read_text())
    assert result["checkpoint"] == str(ckpt.latest_checkpoint(run_copy))
    assert result["policy"]["episodes"] == 2 and result["random_policy"]["episodes"] == 2
    assert result["gif"] == str(gif) and result["greedy"] is True
    # greedy evaluation of one checkpoint is reproducible
    assert main(["eval", str(run_copy), "--episodes", "2"]) == 0
    again = json.loads((run_copy / "eval.json").read_text())
    assert again["policy"] == result["policy"]


def test_eval_other_checkpoint(run_copy):
    first = run_copy / "checkpoints" / ckpt.checkpoint_path(".", 200).name
    assert main(["eval", str(run_copy), "--episodes", "2", "--checkpoint", str(first)]) == 0
    assert json.loads((run_copy / "eval.json").read_text())["checkpoint"] == str(first)


def test_eval_with_agent_count_that_does_not_fit_is_user_error(run_copy, capsys):
    # simple_spread observations grow with the number of agents: a 3-agent actor cannot read 4
    assert main(["eval", str(run_copy), "--episodes", "2", "--n_agents", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "does not fit" in err and len(err.strip().splitlines()) == 1


def test_eval_without_checkpoint_is_user_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--episodes", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no checkpoint" in err


def test_eval_corrupt_checkpoint_is_user_error(run_copy, capsys):
    latest = ckpt.latest_checkpoint(run_copy)
    latest.write_bytes(latest.read_bytes()[:100])
    assert main(["eval", str(run_copy), "--episodes", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and latest.name in err and len(err.strip().splitlines()) == 1


def _gif_frames(path: Path) -> list[tuple[np.ndarray, int | None]]:
    frames = []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            frames.append((np.asarray(im.convert("L")), im.info.get("duration")))
    return frames


def test_gif_shows_every_step_including_the_last(tmp_path):
    # debug/scripted renders t*4 white columns at time t: frames for t = 0..5
    sc = scenarios.make("debug/scripted", max_cycles=5)
    frames = _gif_frames(record_gif(sc, None, tmp_path / "ep.gif"))
    white = [int((f[0] > 128).sum()) for f, _ in frames]
    assert white == [4 * t for t in range(6)]


def test_gif_frame_duration_matches_fps(tmp_path):
    sc = scenarios.make("debug/scripted", max_cycles=5)
    frames = _gif_frames(record_gif(sc, None, tmp_path / "ep.gif", fps=10))
    assert [d for _, d in frames[1:]] == [100] * (len(frames) - 1)


# ---- scenarios and errors ----------------------------------------------------------------------


def test_scenarios_prints_table(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "kind", "agents"]
    spread = next(line for line in lines if line.startswith("mpe/simple_spread "))
    assert spread.split()[1:3] == ["cooperative", "3"]
    tag = next(line for line in lines if line.startswith("mpe/simple_tag "))
    assert "adversary×3" in tag and "agent×1" in tag
    for name in scenarios.list():
        assert any(line.startswith(name + " ") for line in lines), name


def test_bad_key_exit_code_2_one_line_stderr(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", "ttal_steps=400", f"out={out}"]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error:") and "ttal_steps" in err and "total_steps" in err
    assert "Traceback" not in err and captured.out == ""
    assert not out.exists()


@pytest.mark.parametrize("item, word", [("algo=mapo", "mappo"), ("n_agent=5", "n_agents"), ("num_envs=0", "num_envs"),
                                        ("scenario=mpe/nope", "mpe/")])
def test_other_user_errors_exit_2(tmp_path, capsys, item, word):
    assert main(["train", item, f"out={tmp_path / 'x'}", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and word in err and len(err.strip().splitlines()) == 1


def test_invalid_yaml_config_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo: [unclosed\n")
    assert main(["train", f"config={bad}", f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_train_refuses_to_overwrite_a_run(run_copy, capsys):
    before = (run_copy / "metrics.csv").read_text()
    assert main(["train", *TRAIN_ARGS, f"out={run_copy}"]) == 2
    assert "resume" in capsys.readouterr().err
    assert (run_copy / "metrics.csv").read_text() == before


# ---- resume ----------------------------------------------------------------------------------


def test_resume_from_checkpoint_has_no_duplicate_rows(run_copy):
    # pretend the run died after its checkpoint at 200 steps (iteration 4) but after logging row 8
    (run_copy / "checkpoints" / ckpt.checkpoint_path(".", 400).name).unlink()
    assert len(_rows(run_copy / "metrics.csv")) == 8
    assert main(["train", *TRAIN_ARGS, f"out={run_copy}", "resume=true"]) == 0
    rows = _rows(run_copy / "metrics.csv")
    iterations = [int(r["iteration"]) for r in rows]
    assert iterations == list(range(1, 9))
    assert [int(r["env_steps"]) for r in rows] == [50 * i for i in range(1, 9)]
    # rows 1-4 are the original ones; 5-8 were written by the resumed run
    walls = [float(r["wall_time_s"]) for r in rows]
    assert walls == sorted(walls)
    payload = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_copy))
    assert payload["env_steps"] == 400 and payload["iteration"] == 8


def test_resume_at_episode_boundary_reproduces_the_uninterrupted_run(trained, run_copy):
    # the checkpoint at 200 env steps is at an episode boundary (2 envs x 100 steps = 4 episodes of
    # 25 steps each), and it holds the learner, optimisers and RNG states: resuming from it must
    # continue exactly like the original run did
    (run_copy / "checkpoints" / ckpt.checkpoint_path(".", 400).name).unlink()
    assert main(["train", *TRAIN_ARGS, f"out={run_copy}", "resume=true"]) == 0
    original, resumed = _rows(trained / "metrics.csv"), _rows(run_copy / "metrics.csv")
    assert len(original) == len(resumed) == 8
    columns = ("episode_return_mean", "episodes", "policy_loss", "value_loss", "entropy")
    for a, b in zip(original, resumed):
        assert {c: a[c] for c in columns} == {c: b[c] for c in columns}, a["iteration"]


def test_resume_command_continues_to_more_steps(run_copy, capsys):
    assert main(["resume", str(run_copy), "total_steps=500"]) == 0
    assert "resuming" in capsys.readouterr().out
    rows = _rows(run_copy / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(1, 11))
    assert int(rows[-1]["env_steps"]) == 500
    summary = json.loads((run_copy / "summary.json").read_text())
    assert summary["env_steps"] == 500 and summary["iterations"] == 10


def test_resume_of_a_non_run_folder_is_user_error(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


# ---- the installed console script -------------------------------------------------------------


@pytest.mark.timeout(180)
def test_console_script_scenarios(tmp_path):
    script = Path(sys.executable).with_name("marl")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "marl.cli"]
    proc = subprocess.run([*cmd, "scenarios"], capture_output=True, text=True, timeout=170, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "mpe/simple_spread" in proc.stdout and "debug/scripted" in proc.stdout
    bad = subprocess.run([*cmd, "train", "ttal_steps=1"], capture_output=True, text=True, timeout=170, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "total_steps" in bad.stderr
    assert not (tmp_path / "runs").exists()
