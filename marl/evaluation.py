"""Evaluation: run whole episodes with a policy (greedy, sampled, or uniformly random) and report
per-episode returns as the mean over agents of each agent's return (and the episode's success where
the env reports one); record a GIF of one episode."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from envs import VectorEnv
from marl.pictures import draw_edges
from marl.rollout import agent_starts

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training seeds


def comm_inputs(out):
    from marl.communication import CommInputs

    return CommInputs(out.positions, out.alive)


@contextmanager
def eval_mode(module):
    """Evaluation mode for the actor (deterministic graphs and gates), restored afterwards."""
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        yield
    finally:
        if module is not None:
            module.train(was_training)


@dataclass
class EvalResult:
    returns: np.ndarray  # [episodes] mean over agents of each agent's return
    agent_returns: np.ndarray  # [episodes, N] (the scored seats only: N of them less any fixed opponents')
    lengths: np.ndarray  # [episodes]
    # [episodes] the episode's success (EnvOutput.episode_success); NaN where the env reports none
    success: np.ndarray | None = None

    def __post_init__(self):
        if self.success is None:
            self.success = np.full(len(self.returns), np.nan)

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())

    @property
    def success_mean(self) -> float:
        """Mean success over the episodes that report one; NaN where none does."""
        reported = self.success[~np.isnan(self.success)]
        return float(reported.mean()) if reported.size else float("nan")

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        out = {f"{prefix}return_mean": self.mean, f"{prefix}return_std": self.std,
               f"{prefix}episodes": len(self.returns)}
        if np.isfinite(self.success_mean):  # scenarios without success keep their keys as they were
            out[f"{prefix}success_mean"] = self.success_mean
        return out


def evaluate(scenario, actor=None, *args, **kwargs) -> "EvalResult":
    """``actor=None`` plays uniformly random valid actions (the random baseline). Runs the actor in
    eval mode: deterministic communication graphs and gates. See ``_evaluate`` for the arguments."""
    with eval_mode(actor):
        return _evaluate(scenario, actor, *args, **kwargs)


@torch.no_grad()
def _evaluate(
    scenario,
    actor=None,
    episodes: int = 20,
    seed: int = 0,
    deterministic: bool = True,
    num_envs: int = 8,
    device: str | torch.device = "cpu",
    restart_failed: bool = False,
    opponents=None,
) -> EvalResult:
    """``actor=None`` plays uniformly random valid actions (the random baseline). ``opponents``
    (``marl.league.Opponents``): the other roles' seats are played by them, and only the learning
    role's seats are scored.

    Every env plays a fixed quota of episodes (the first ones it finishes), so scenarios with
    episodes of varying length are not biased towards short episodes."""
    n_envs = min(num_envs, episodes)
    quota = -(-episodes // n_envs)
    env = VectorEnv(scenario, num_envs=n_envs, seed=seed + EVAL_SEED_OFFSET, device=device,
                    restart_failed=restart_failed)
    if opponents is not None:
        from marl.league.opponents import OpponentSeats

        env = OpponentSeats(env, opponents, seed=seed + EVAL_SEED_OFFSET)
    gen = torch.Generator().manual_seed(seed)
    out = env.reset()
    carry = actor.initial_carry(out.alive.shape, device=device) if actor is not None else {}
    per_env: list[list[tuple[np.ndarray, int, float]]] = [[] for _ in range(n_envs)]
    try:
        while any(len(done) < quota for done in per_env):
            if actor is None:
                action = env.random_actions(gen)
            else:
                action, _, carry, _ = actor.act(out.obs, carry, deterministic=deterministic, inputs=comm_inputs(out))
            alive_before = out.alive
            out = env.step(action)
            if actor is not None:
                carry = actor.reset_carry(carry, agent_starts(out, alive_before))
            if out.done_env.any():
                for k in torch.nonzero(out.done_env & ~out.dropped_env).flatten().tolist():
                    if len(per_env[k]) < quota:
                        success = float("nan") if out.episode_success is None else float(out.episode_success[k])
                        per_env[k].append((out.episode_return[k][env.scored].cpu().numpy(), int(out.episode_length[k]),
                                           success))
    finally:
        env.close()
    # interleave env by env (episode 0 of every env, then episode 1, ...) and keep the first `episodes`
    ordered = [per_env[k][i] for i in range(quota) for k in range(n_envs)][:episodes]
    agent_returns = np.stack([r for r, _, _ in ordered])
    return EvalResult(agent_returns.mean(axis=1), agent_returns, np.array([n for _, n, _ in ordered]),
                      np.array([s for _, _, s in ordered], dtype=np.float64))


def record_gif(scenario, actor, path: Path, *args, **kwargs) -> Path:
    """Render one episode (env 0, ``render_mode="rgb_array"``) to an animated GIF, in eval mode."""
    with eval_mode(actor):
        return _record_gif(scenario, actor, path, *args, **kwargs)


@torch.no_grad()
def _record_gif(scenario, actor, path: Path, seed: int = 0, deterministic: bool = True, fps: int = 10) -> Path:
    """Render one episode (env 0, ``render_mode="rgb_array"``) to an animated GIF."""
    import imageio.v2 as imageio

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = VectorEnv(_with_render(scenario), num_envs=1, seed=seed + EVAL_SEED_OFFSET)
    final_frames = env.keep_final_frames()
    show_edges = (actor is not None and actor.comm is not None and scenario.spec.pixels is not None
                  and env.has_positions)
    out = env.reset()
    carry = actor.initial_carry(out.alive.shape) if actor is not None else {}
    frames = [env.render(0)]
    try:
        for _ in range(100_000):
            if actor is None:
                action = env.random_actions()
            else:
                action, _, carry, aux = actor.act(out.obs, carry, deterministic=deterministic, inputs=comm_inputs(out))
                if show_edges and aux.edges is not None:  # the messages of this step, on the frame of this step
                    raw = env.raw_env(0)
                    pixels = scenario.spec.pixels(raw, out.positions[0].cpu().numpy())
                    frames[-1] = draw_edges(np.asarray(frames[-1]), pixels, aux.edges.index, env.n_agents)
            out = env.step(action)
            if out.done_env[0]:
                frames.append(final_frames.pop(0))
                break
            frames.append(env.render(0))
    finally:
        env.close()
    frames = [np.asarray(f, dtype=np.uint8) for f in frames if f is not None]
    if not frames:
        raise RuntimeError(f"scenario {scenario.name!r} returned no frames from render()")
    path = Path(path)
    imageio.mimsave(path, frames, duration=1000 / fps, loop=0)  # milliseconds per frame
    return path


def _with_render(scenario):
    """The same scenario whose envs render RGB frames."""
    from dataclasses import replace

    factory = scenario.factory

    def rendering_factory(**kwargs):
        kwargs.setdefault("render_mode", "rgb_array")
        return factory(**kwargs)

    return replace(scenario, factory=rendering_factory)
