"""Reliability end to end: same seed -> bit-identical runs; a run resumed in a new process continues
bit-identically; SIGKILLs at any moment (also in the middle of a checkpoint write) lose nothing;
incompatible or damaged checkpoints are one-line errors naming what is wrong.

Runs are compared on every metrics.csv column except the wall-clock ones (``WALL_CLOCK``), and on
every tensor of the final checkpoint: model parameters, value normaliser, optimizer moments, RNG
states and the collector's env replay log and GRU state.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from marl import checkpoint as ckpt
from marl.algos import ALGORITHMS, algo_names
from marl.cli import main

REPO = Path(__file__).resolve().parents[1]
WALL_CLOCK = {"wall_time_s", "steps_per_s", "collect_s", "update_s"}  # differ between identical runs
# 2 envs x 10 steps per update; mpe episodes last 25 steps, so checkpoints fall mid-episode
BASE = ["scenario=mpe/simple_spread", "num_envs=2", "algo.rollout_len=10", "actor.hidden=16", "critic.hidden=16",
        "eval_episodes=1", "progress=false"]
SMALL = [*BASE, "algo.epochs=2"]
# a GRU actor talking over a learned graph (its own optimizer, Gumbel samples) through a delayed channel
RICH = SMALL + ["actor.recurrent=true", "comm.graph=learned", "comm.gating=true", "comm.channel_in_training=true",
                "comm.channel_delay=true", "comm.channel_noise=0.05", "algo.minibatches=2"]


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def comparable_rows(run: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows(run)]


def assert_same(a, b, where="checkpoint"):
    """Bit-identical nested checkpoint content (tensors, arrays, numbers, RNG tuples)."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


def final_state(run: Path) -> dict:
    payload = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    for key in ("config", "metadata", "wall_time_s", "wandb_id"):  # differ by run folder and clock only
        payload.pop(key)
    return payload


def cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    """``marl`` in a new process, on this checkout's packages."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "marl.cli", *args], cwd=REPO, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


# ---- determinism ---------------------------------------------------------------------------------


def per_agent(algo: str) -> list[str]:
    """HAPPO with per-agent networks (its slice-wise optimizer); the others as configured."""
    return ["algo=" + algo, *(["sharing=none"] if algo == "happo" else [])]


def _options(algo: str) -> set[str]:
    return {f.name for f in dataclasses.fields(ALGORITHMS[algo].Config)}


def algo_args(algo: str) -> list[str]:
    """``per_agent`` plus small-run settings for the algorithm's kind: 2 epochs for the PPO family, a
    replay buffer that starts learning on the first update for the off-policy ones."""
    extra = {"epochs": "algo.epochs=2", "learning_starts": "algo.learning_starts=20",
             "batch_size": "algo.batch_size=2", "updates_per_rollout": "algo.updates_per_rollout=2"}
    continuous = ["scenario_args.continuous_actions=true"] if "discrete" not in ALGORITHMS[algo].action_spaces else []
    return [*per_agent(algo), *continuous, *(v for k, v in extra.items() if k in _options(algo))]


def loss_columns(algo: str) -> list[str]:
    if "n_critics" in _options(algo):
        return ["critic_loss", "actor_loss"]
    return ["td_loss"] if "learning_starts" in _options(algo) else ["policy_loss", "value_loss"]


@pytest.mark.parametrize("algo", algo_names())
def test_same_seed_is_bit_identical_and_another_seed_differs(tmp_path, algo):
    args = [*BASE, *algo_args(algo), "total_steps=100", "checkpoint_every=100"]
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert main(["train", *args, f"seed={seed}", f"out={tmp_path / name}"]) == 0
    a, b, c = (comparable_rows(tmp_path / n) for n in "abc")
    assert len(a) == 5 and a == b
    assert all(r[k] for r in a for k in loss_columns(algo))
    assert_same(final_state(tmp_path / "a"), final_state(tmp_path / "b"))
    # another seed: other returns, losses and weights
    assert [r["episode_return_mean"] for r in a] != [r["episode_return_mean"] for r in c]
    first_loss = loss_columns(algo)[0]
    assert [r[first_loss] for r in a] != [r[first_loss] for r in c]
    pa, pc = (final_state(tmp_path / n)["algorithm"]["modules"] for n in "ac")
    weights = [k for k in pa if k.endswith("weight")]
    assert weights and all(not torch.equal(pa[k], pc[k]) for k in weights)


# ---- exact resume in a new process -------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend,algo", [("pettingzoo", "mappo"), ("batched", "mappo"), ("batched", "happo")])
def test_resume_in_a_new_process_equals_the_uninterrupted_run(tmp_path, backend, algo):
    """2K updates in one go == K updates, checkpoint, a new process resumes, K more updates."""
    k_steps = 3 * 20  # K = 3 updates of 2 envs x 10 steps
    whole, split = tmp_path / "whole", tmp_path / "split"
    rich = [*RICH, f"backend={backend}", *per_agent(algo)]
    assert main(["train", *rich, f"total_steps={2 * k_steps}", f"checkpoint_every={k_steps}", f"out={whole}"]) == 0
    assert main(["train", *rich, f"total_steps={k_steps}", f"checkpoint_every={k_steps}", f"out={split}"]) == 0
    mid = ckpt.load_checkpoint(ckpt.latest_checkpoint(split))
    assert mid["iteration"] == 3
    env_state = mid["collector"]["env"]
    if backend == "pettingzoo":  # a replay log of the episodes in progress
        assert all(len(a) for a in env_state["actions"]), "the checkpoint must fall mid-episode"
    else:  # the simulator's own state tensors
        assert bool((env_state["sim"]["t"] > 0).all()), "the checkpoint must fall mid-episode"
    assert set(mid["collector"]["carry"]) == {"h", "comm_previous", "comm_previous_pos"}  # GRU, delayed channel
    assert sorted(mid["algorithm"]["optimizers"]) == ["actor_opt", "critic_opt", "graph_opt"]

    out = finish(cli("resume", str(split), f"total_steps={2 * k_steps}"))
    assert "resuming" in out and "iteration 3" in out
    assert [int(r["iteration"]) for r in rows(split)] == list(range(1, 7))
    assert comparable_rows(split) == comparable_rows(whole)
    assert_same(final_state(split), final_state(whole))


def test_rollout_tensors_keep_no_autograd_graph():
    import scenarios
    from envs import VectorEnv
    from marl.algos import EnvInfo, make_algorithm
    from marl.collector import Collector
    from marl.config import config_from_args

    cfg = config_from_args([*RICH])
    env = VectorEnv(scenarios.make(cfg.scenario), cfg.num_envs, seed=0)
    try:
        algo = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
        ro = Collector(env, algo, 5, torch.device("cpu")).collect()
        tensors = [v for d in (ro.data, ro.replay, ro.carry, ro.carry0, ro.final) for v in d.values()]
        assert len(tensors) >= 16
        assert all(not t.requires_grad and t.grad_fn is None for t in tensors)
    finally:
        env.close()


# ---- kills at any moment -------------------------------------------------------------------------


def _kill_during_checkpoint_write(run: Path, args: list[str]) -> None:
    """Start the run with checkpoint writes that stall after their data; SIGKILL it inside the stall
    of a write that would replace an earlier checkpoint (the first one if the run has none yet)."""
    proc = cli("train", *args, f"out={run}", "resume=true", env={ckpt.SLOW_WRITE_ENV: "0.5"})
    earlier = len(ckpt.list_checkpoints(run / "checkpoints"))
    deadline = time.monotonic() + 120
    while not (list((run / "checkpoints").glob(".step_*.tmp-*"))
               and len(ckpt.list_checkpoints(run / "checkpoints")) > min(earlier, 1)):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((run / "checkpoints").glob(".step_*.tmp-*")), "killed inside the write: its temp file is left"
    for path in ckpt.list_checkpoints(run / "checkpoints"):  # every final file is whole
        ckpt.load_checkpoint(path)


def _kill_after_random_progress(run: Path, args: list[str], rng: random.Random, total_rows: int) -> None:
    """SIGKILL the run once it has logged a random number of rows, after a random extra delay."""
    proc = cli("train", *args, f"out={run}", "resume=true")
    target = rng.randint(1, total_rows - 1)
    deadline = time.monotonic() + 120
    while not ((run / "metrics.csv").exists() and len(rows(run)) >= target):
        if proc.poll() is not None:  # finished before we got there: fine, nothing to kill
            return
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _check_killed_run_equals_reference(killed: Path, reference: Path, n_rows: int) -> None:
    assert [int(r["iteration"]) for r in rows(killed)] == list(range(1, n_rows + 1))  # no duplicate, none missing
    assert comparable_rows(killed) == comparable_rows(reference)
    assert_same(final_state(killed), final_state(reference))
    assert not list((killed / "checkpoints").glob(".step_*.tmp-*"))


KILL_ARGS = [*BASE, "total_steps=200", "checkpoint_every=20", "keep_checkpoints=2"]  # a checkpoint every update


@pytest.mark.timeout(300)
@pytest.mark.parametrize("algo", algo_names())
def test_sigkill_during_a_checkpoint_write_resumes_to_the_uninterrupted_result(tmp_path, algo):
    reference, run = tmp_path / "reference", tmp_path / "killed"
    args = [*KILL_ARGS, *algo_args(algo)]
    assert main(["train", *args, f"out={reference}"]) == 0
    _kill_during_checkpoint_write(run, args)
    finish(cli("train", *args, f"out={run}", "resume=true"))
    _check_killed_run_equals_reference(run, reference, 10)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("trial_seed", [1, 2])
def test_many_random_sigkills_always_resume_and_finish(tmp_path, trial_seed):
    rng = random.Random(trial_seed)
    reference, run = tmp_path / "reference", tmp_path / "killed"
    args = [*KILL_ARGS, *algo_args("mappo")]
    assert main(["train", *args, f"out={reference}"]) == 0
    for _ in range(6):
        if rng.random() < 0.3:
            _kill_during_checkpoint_write(run, args)
        else:
            _kill_after_random_progress(run, args, rng, total_rows=10)
    finish(cli("train", *args, f"out={run}", "resume=true"))
    _check_killed_run_equals_reference(run, reference, 10)


# ---- checkpoints that cannot continue this run ---------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("small") / "run"
    assert main(["train", *SMALL, "total_steps=40", "checkpoint_every=20", f"out={run}"]) == 0
    return run


def test_resume_with_another_config_names_each_differing_key(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    code = main(["train", *SMALL, "total_steps=80", "actor.hidden=32", "algo.gamma=0.9", f"out={run}", "resume=true"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: checkpoint")
    assert str(ckpt.latest_checkpoint(run)) in err
    assert "actor.hidden: 16 -> 32" in err and "algo.gamma: 0.95 -> 0.9" in err
    assert "total_steps" not in err.split("differing keys:")[1].split(".")[0]  # allowed to change
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before  # nothing lost


def test_config_differences_lists_nested_added_and_removed_keys():
    old = {"lr": 0.001, "total_steps": 10, "algo": {"clip": 0.2}, "scenario_args": {"n_agents": 3}}
    new = {"lr": 0.002, "total_steps": 20, "algo": {"clip": 0.2}, "scenario_args": {}}
    assert ckpt.config_differences(old, new) == ["lr: 0.001 -> 0.002", "scenario_args.n_agents: 3 -> (absent)"]


def test_checkpoint_from_another_format_or_package_version(small_run, tmp_path):
    from marl.config import config_from_args, to_dict

    path = ckpt.latest_checkpoint(small_run)
    payload = ckpt.load_checkpoint(path)
    config = payload["config"]
    old = dict(payload, format_version=1)
    with pytest.raises(ckpt.CheckpointError, match=rf"{path.name}' has format version 1 \(written by mosaic-marl "
                                                   rf"[^)]*\); this mosaic-marl reads format version "
                                                   rf"{ckpt.FORMAT_VERSION} only"):
        ckpt.check_resumable(path, old, config)
    older_torch = dict(payload, metadata={**payload["metadata"],
                                          "versions": {**payload["metadata"]["versions"], "torch": "1.0.0"}})
    with pytest.warns(UserWarning, match=rf"other code \(torch 1\.0\.0 -> {re.escape(torch.__version__)}\)"):
        ckpt.check_resumable(path, older_torch, config)
    assert to_dict(config_from_args([])) != config  # and the default config is not this run's:
    with pytest.raises(ckpt.CheckpointError, match="differing keys: actor.hidden: 16 -> 64"):
        ckpt.check_resumable(path, payload, to_dict(config_from_args([])))


def test_resume_from_a_truncated_checkpoint_names_the_file(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    latest = ckpt.latest_checkpoint(run)
    latest.write_bytes(latest.read_bytes()[:1000])
    assert main(["train", *SMALL, "total_steps=80", f"out={run}", "resume=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(latest) in err and "truncated or not a checkpoint" in err
    assert len(rows(run)) == 2  # the log is untouched


# ---- env state rebuilt by replay ----------------------------------------------------------------


@pytest.mark.parametrize("scenario, workers", [("mpe/simple_spread", 0), ("mpe/simple_spread", 2),
                                               ("nav/navigation", 0), ("sisl/multiwalker", 0)])
def test_env_snapshot_replays_to_the_same_state_and_continues_identically(scenario, workers):
    """Envs mid-episode (every env at another step) rebuilt in fresh envs, in or out of process."""
    import scenarios
    from envs import VectorEnv

    sc = scenarios.make(scenario)
    gen = torch.Generator().manual_seed(0)
    original = VectorEnv(sc, 3, seed=5, workers=workers)
    rebuilt = VectorEnv(sc, 3, seed=5, workers=workers)
    try:
        out = original.reset()
        for _ in range(13):
            out = original.step(original.random_actions(gen))
        snap = original.snapshot()
        assert any(len(a) for a in snap["actions"])
        rebuilt.reset()
        replayed = rebuilt.restore(snap)
        assert torch.equal(replayed, out.obs[..., : replayed.shape[-1]])
        for _ in range(30):  # past the end of the episodes in progress
            actions = original.random_actions(gen)
            a, b = original.step(actions), rebuilt.step(actions)
            for name in ("obs", "state", "reward", "terminated", "truncated", "done_env", "episode_return"):
                assert torch.equal(getattr(a, name), getattr(b, name)), name
    finally:
        original.close()
        rebuilt.close()


@pytest.mark.parametrize("scenario", ["mpe/simple_spread", "mpe/simple_speaker_listener", "nav/navigation"])
def test_batched_env_snapshot_restores_the_exact_state_in_a_fresh_env(scenario):
    import scenarios
    from envs import make_vector_env

    sc = scenarios.make(scenario)
    gen = torch.Generator().manual_seed(0)
    original = make_vector_env(sc, 3, seed=5, backend="batched")
    rebuilt = make_vector_env(sc, 3, seed=5, backend="batched")
    out = original.reset()
    for _ in range(13):
        out = original.step(original.random_actions(gen))
    snap = original.snapshot()
    rebuilt.reset()
    restored = rebuilt.restore(snap)
    assert torch.equal(restored, out.obs[..., : restored.shape[-1]])
    for _ in range(60):  # past the end of the episodes in progress, and their auto-resets
        actions = original.random_actions(gen)
        a, b = original.step(actions), rebuilt.step(actions)
        for name in ("obs", "state", "reward", "terminated", "truncated", "done_env", "episode_return"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(ValueError, match="another backend"):
        rebuilt.restore({"episodes": [1, 1, 1], "actions": [[], [], []]})


def test_an_old_format_checkpoint_is_a_one_line_error_for_eval_and_policies(small_run, tmp_path, capsys):
    """A format-2 checkpoint (a PPO learner's state) names both versions; nothing is loaded or written."""
    from marl.policy import load_policy

    payload = ckpt.load_checkpoint(ckpt.latest_checkpoint(small_run))
    old = {k: v for k, v in payload.items() if k not in ("algorithm", "env_info")}
    old.update(format_version=2, learner=payload["algorithm"]["modules"])
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    path = ckpt.checkpoint_path(run / "checkpoints", 40)
    torch.save(old, path)
    expected = (rf"checkpoint '{re.escape(str(path))}' has format version 2 \(written by mosaic-marl [^)]+\); "
                rf"this mosaic-marl reads format version {ckpt.FORMAT_VERSION} only")
    with pytest.raises(ckpt.CheckpointError, match=expected):
        load_policy(run)
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(expected, err)
    assert not (run / "eval.json").exists()
