"""The training loop: collect -> update -> log -> checkpoint -> evaluate.

``train(cfg)`` owns a run folder: ``config.yaml``, ``metrics.csv`` (a row per iteration, flushed as
written), ``checkpoints/``, ``learning_curve.png`` and ``summary.json`` at the end.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import yaml

import scenarios
from envs.factory import make_vector_env
from marl import checkpoint as ckpt
from marl import runtime
from marl.algos import EnvInfo, Progress, make_algorithm
from marl.collector import Collector
from marl.config import TrainConfig, to_dict
from marl.evaluation import evaluate
from marl.guards import check_rollout
from marl.league.opponents import OpponentSeats, resolve_opponents
from marl.logger import MetricsLog, WandbLog, plot_learning_curve


class RunSetupError(ValueError):
    """The run cannot start as asked (it would overwrite a previous run, or its device is missing)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.scenario.replace('/', '-')}-{cfg.algo.name}-s{cfg.seed}-{stamp}"


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True, file=sys.stderr)


def _opponents(cfg: TrainConfig, scenario):
    """The fixed opponents of ``cfg.opponents`` (None where every seat learns)."""
    if not cfg.opponents.enabled:
        return None
    o = cfg.opponents
    try:
        return resolve_opponents(scenario, o.learn, o.players, o.weights, o.greedy)
    except ValueError as exc:
        raise RunSetupError(str(exc)) from None


def train(cfg: TrainConfig) -> Path:
    """Train with ``cfg``; returns the run folder."""
    runtime.configure(cfg.threads)
    seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunSetupError(f"device={cfg.device} was asked for, but this torch ({torch.__version__}) sees no CUDA "
                             "device; use device=cpu")

    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if not cfg.resume and ((run_dir / "metrics.csv").exists() or ckpt.list_checkpoints(run_dir / "checkpoints")):
        raise RunSetupError(
            f"run folder {str(run_dir)!r} already holds a run; pass resume=true to continue it, or choose a new out=..."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config = to_dict(cfg)
    scenario = scenarios.make(cfg.scenario, **cfg.scenario_args)
    env = make_vector_env(scenario, cfg.num_envs, seed=cfg.seed, backend=cfg.backend, workers=cfg.workers,
                          device=device, restart_failed=cfg.restart_failed_envs, compile=cfg.compile)
    opponents = _opponents(cfg, scenario)
    if opponents is not None:
        env = OpponentSeats(env, opponents, seed=cfg.seed)
    env_info = EnvInfo.from_env(env, cfg.scenario)
    algo = make_algorithm(cfg, env_info).to(device)

    iteration, env_steps, wall_offset, wandb_id = 0, 0, 0.0, None
    resume_from = ckpt.latest_checkpoint(run_dir) if cfg.resume else None
    if cfg.resume:
        ckpt.remove_stale_temp_files(run_dir / "checkpoints")  # writes a kill interrupted
    if resume_from is not None:
        payload = ckpt.load_checkpoint(resume_from, map_location=device)
        ckpt.check_resumable(resume_from, payload, config)
        algo.load_checkpoint_state(payload["algorithm"], resume_from)
        iteration, env_steps = payload["iteration"], payload["env_steps"]
        wall_offset, wandb_id = payload.get("wall_time_s", 0.0), payload.get("wandb_id")
        print(f"resuming {run_dir} from {resume_from.name} (iteration {iteration}, {env_steps} env steps)")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    steps_per_iter = cfg.num_envs * algo.rollout_len
    print(
        f"{cfg.algo.name.upper()} on {cfg.scenario}{' ' + str(cfg.scenario_args) if cfg.scenario_args else ''}: "
        f"{env.n_agents} agents, obs {env.obs_dim}, state {env.state_dim}, {algo.describe()}, {cfg.num_envs} envs x "
        f"{algo.rollout_len} steps per update, {cfg.total_steps:,} env steps ({env.backend} envs)"
        f"{'; ' + opponents.describe() if opponents else ''} -> {run_dir}",
        flush=True,
    )
    collector = Collector(env, algo, algo.rollout_len, device)
    if resume_from is not None:
        # envs mid-episode, the actor's carry, last observation: the run continues exactly where it
        # stopped; RNG states last, so nothing done while rebuilding draws from them
        collector.load_state_dict(payload["collector"])
        ckpt.set_rng_states(payload["rng"])
    log = MetricsLog(run_dir / "metrics.csv", resume_after=iteration if resume_from else None)
    wandb = WandbLog(cfg.wandb, cfg.wandb_project, run_dir, config, run_id=wandb_id)
    planned = math.ceil(cfg.total_steps / steps_per_iter) * steps_per_iter  # whole iterations
    bar = _progress(planned, env_steps, cfg.progress and sys.stderr.isatty())
    next_ckpt = (env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every if cfg.checkpoint_every else math.inf
    next_eval = (env_steps // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else math.inf
    start, last_ret = time.perf_counter(), float("nan")
    # wall_time_s counts training only: evaluations during training are measurement, not training
    eval_time = [0.0]

    def elapsed() -> float:
        return wall_offset + time.perf_counter() - start - eval_time[0]

    def save(path_steps: int) -> Path:
        return ckpt.save_checkpoint(
            run_dir / "checkpoints",
            path_steps,
            {
                "format_version": ckpt.FORMAT_VERSION,
                "algorithm": algo.checkpoint_state(),  # networks, optimisers, value normaliser, hooks
                "iteration": iteration,
                "env_steps": env_steps,
                "wall_time_s": elapsed(),
                "rng": ckpt.rng_states(),
                "collector": collector.state_dict(),
                "config": config,
                "env_info": vars(env_info),  # the full layout: a policy loads without an env
                "wandb_id": wandb.run_id,
                "metadata": ckpt.metadata(config),
            },
            keep=cfg.keep_checkpoints,
        )

    # the timings of an iteration's two halves: CUDA runs asynchronously, so wait for each half's kernels
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)  # noqa: E731
    try:
        while env_steps < cfg.total_steps:
            progress = Progress(env_steps, cfg.total_steps)
            algo.before_iteration(progress)
            t0 = time.perf_counter()
            rollout = collector.collect()
            check_rollout(rollout, env.layout.agents, env_steps, cfg.scenario)
            sync()
            t1 = time.perf_counter()
            stats = algo.update(rollout, progress)
            sync()
            t2 = time.perf_counter()
            iteration += 1
            env_steps += steps_per_iter
            stats.update(algo.after_iteration(Progress(env_steps, cfg.total_steps, env_steps - steps_per_iter)))
            wall = elapsed()
            row = {"iteration": iteration, "env_steps": env_steps, "wall_time_s": wall}
            row.update(collector.pop_episode_stats())
            row["steps_per_s"] = steps_per_iter / (t2 - t0)
            row["collect_s"], row["update_s"] = t1 - t0, t2 - t1
            row.update(stats)
            row.update(collector.pop_comm_stats())
            if cfg.restart_failed_envs:
                row["env_restarts"] = collector.env_restarts
            row["eval_return_mean"] = row["eval_return_std"] = float("nan")
            if collector.reports_success:  # a column from the first row on, blank between evaluations
                row["eval_success_mean"] = float("nan")
            if env_steps >= next_eval:
                next_eval += cfg.eval_every
                t_eval = time.perf_counter()
                res = evaluate(scenario, algo.actor, cfg.eval_episodes, seed=cfg.seed, device=device,
                               restart_failed=cfg.restart_failed_envs, opponents=opponents)
                eval_time[0] += time.perf_counter() - t_eval
                row.update({"eval_return_mean": res.mean, "eval_return_std": res.std})
                if collector.reports_success:
                    row["eval_success_mean"] = res.success_mean
            log.write(row)
            wandb.log(row, step=env_steps)
            if not math.isnan(row["episode_return_mean"]):
                last_ret = row["episode_return_mean"]
            if bar is not None:
                bar.update(steps_per_iter)
                bar.set_postfix(ret=f"{last_ret:.2f}", sps=f"{row['steps_per_s']:.0f}", refresh=False)
            if env_steps >= next_ckpt:
                next_ckpt += cfg.checkpoint_every
                save(env_steps)
        save(env_steps)
    finally:
        if bar is not None:
            bar.close()
        log.close()
        env.close()

    train_wall = elapsed()
    final = evaluate(scenario, algo.actor, cfg.eval_episodes, seed=cfg.seed, device=device,
                     restart_failed=cfg.restart_failed_envs, opponents=opponents)
    random_baseline = evaluate(scenario, None, cfg.eval_episodes, seed=cfg.seed, restart_failed=cfg.restart_failed_envs,
                               opponents=opponents)
    summary = {
        "scenario": cfg.scenario,
        "algo": cfg.algo.name,
        "seed": cfg.seed,
        "env_steps": env_steps,
        "iterations": iteration,
        "wall_time_s": train_wall,
        "steps_per_s": env_steps / train_wall if train_wall > 0 else float("nan"),
        "final_eval": final.as_dict(),
        "random_policy": random_baseline.as_dict(),
        "eval_episodes": cfg.eval_episodes,
        "return_definition": "mean over agents of each agent's episode return; greedy actions",
    }
    if opponents is not None:
        summary["opponents"] = {"learn": opponents.learn, "players": [p.name for p in opponents.players],
                                "weights": list(opponents.weights)}
        summary["return_definition"] = (f"mean over the {opponents.learn} seats of each one's episode return against "
                                        "the opponents drawn per episode; greedy actions")
    if "success_mean" in summary["final_eval"] or "success_mean" in summary["random_policy"]:
        summary["success_definition"] = ("mean over episodes of the episode's success: the mean over agents "
                                         "of infos[agent]['success'] on its last step")
    summary["parameters"] = algo.parameter_counts()
    summary.update(algo.artifacts(run_dir, cfg.scenario))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    plot = plot_learning_curve(
        run_dir / "metrics.csv",
        run_dir / "learning_curve.png",
        f"{cfg.algo.name.upper()} on {cfg.scenario}",
        references={"random policy": random_baseline.mean},
    )
    final_log = {"final_eval_return_mean": final.mean}
    if math.isfinite(final.success_mean):
        final_log["final_eval_success_mean"] = final.success_mean
    wandb.log(final_log, step=env_steps)
    wandb.finish()
    print_summary(summary, run_dir, plot)
    return run_dir


def print_summary(summary: dict, run_dir: Path, plot: Path) -> None:
    f, r = summary["final_eval"], summary["random_policy"]
    rows = [
        ("policy", "return mean", "return std", "episodes"),
        ("random", f"{r['return_mean']:.2f}", f"{r['return_std']:.2f}", str(r["episodes"])),
        (f"{summary['algo']} (trained)", f"{f['return_mean']:.2f}", f"{f['return_std']:.2f}", str(f["episodes"])),
    ]
    if "success_mean" in f or "success_mean" in r:  # only scenarios that report success get the column
        cell = lambda res: f"{res['success_mean']:.2f}" if "success_mean" in res else "-"  # noqa: E731
        rows = [rows[0] + ("success",), rows[1] + (cell(r),), rows[2] + (cell(f),)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    print()
    print(f"{summary['scenario']}: {summary['env_steps']:,} env steps in {summary['wall_time_s']:.0f} s "
          f"({summary['steps_per_s']:.0f} steps/s)")
    print(line(rows[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows[1:]:
        print(line(row))
    print(f"run folder:     {run_dir}")
    print(f"learning curve: {plot}")
