"""E copies of a scenario's ParallelEnv as one batched env with an agent axis.

``VectorEnv.reset()`` and ``.step(actions)`` return an :class:`EnvOutput` of torch tensors shaped
``[E, N, ...]``. Finished envs reset themselves; the last observation of an episode is kept in
``final_obs``/``final_state`` so truncated episodes bootstrap from it. ``workers > 0`` moves the envs
into subprocesses (worth it for slow envs only; mpe2 is faster in-process).
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from envs.group import EnvGroup
from envs.layout import Layout, encode_obs


@dataclass
class EnvOutput:
    obs: torch.Tensor  # [E, N, O] float32, agent-id one-hot appended when agents differ
    state: torch.Tensor  # [E, S] global state (env.state() or concatenated observations)
    alive: torch.Tensor  # [E, N] bool: the agent acts in the next step
    reward: torch.Tensor | None = None  # [E, N] reward of the step just taken
    terminated: torch.Tensor | None = None  # [E, N] bool
    truncated: torch.Tensor | None = None  # [E, N] bool
    final_obs: torch.Tensor | None = None  # [E, N, O] last obs of the step (before any auto-reset)
    final_state: torch.Tensor | None = None  # [E, S]
    done_env: torch.Tensor | None = None  # [E] bool: the env's episode ended and it was reset
    dropped_env: torch.Tensor | None = None  # [E] bool: restarted after raising; its episode is not counted
    episode_return: torch.Tensor | None = None  # [E, N] return of the episode that ended (0 elsewhere)
    episode_length: torch.Tensor | None = None  # [E]
    positions: torch.Tensor | None = None  # [E, N, d] where the scenario has positions
    final_positions: torch.Tensor | None = None  # [E, N, d] positions before any auto-reset
    final_alive: torch.Tensor | None = None  # [E, N] bool: agents that took part in the step
    # [E] float32: success in [0, 1] of the episode that ended at this step (done_env), as the env
    # reports it: the mean over agents of infos[agent]["success"] on its last step (BatchedSim:
    # success()); NaN for an ended episode whose last step reported none; 0 where no episode ended,
    # as episode_return (not NaN: NaN != NaN would make equal outputs compare unequal). None on every
    # step of a scenario without a success signal (see VectorEnv.reports_success).
    episode_success: torch.Tensor | None = None


def _probe_env(scenario, layout: Layout) -> tuple[bool, int | None, bool]:
    """One probe env answers ``(state_from_env, state size, reports_success)``.

    The state: whether to call ``env.state()``, and its flat length. Falls back to the
    concatenated observations where ``state()`` is missing or fails, and also where it provably
    *is* the concatenated observations (mpe2 recomputes every observation in ``state()``, doubling
    the cost of a step): checked on the reset and a few random steps.

    Success: whether the env reports ``infos[agent]["success"]``, on its reset or its first step.
    Decided once here rather than step by step, so ``episode_success`` is present on every step or
    on none (and metrics columns are fixed from the first row).
    """
    env = scenario.make_env()
    try:
        obs, infos = env.reset(seed=0)
        seen = [infos]
        use_state, size = _probe_state(env, scenario, layout, obs, seen)
        if len(seen) == 1 and env.agents and not _reports_success(infos):
            try:  # success may first be reported by a step; a probe that fails is not the run's error
                seen.append(env.step({a: env.action_space(a).sample() for a in env.agents})[4])
            except Exception:
                pass
        return use_state, size, any(_reports_success(i) for i in seen)
    finally:
        env.close()


def _reports_success(infos) -> bool:
    return isinstance(infos, dict) and any(isinstance(i, dict) and "success" in i for i in infos.values())


def _probe_state(env, scenario, layout: Layout, obs, seen: list) -> tuple[bool, int | None]:
    """See ``_probe_env``: ``env`` was just reset to ``obs``; the infos of every step taken here are
    appended to ``seen``."""
    if scenario.spec.global_state == "obs":
        return False, None
    state_fn = getattr(env, "state", None)
    if not callable(state_fn):
        return False, None
    try:
        size = int(np.asarray(state_fn()).size)
    except Exception:
        return False, None
    same = not layout.agent_id
    for _ in range(3):
        if not same or not env.agents or set(obs) != set(layout.agents):
            break
        concat = np.concatenate([encode_obs(layout.obs_spaces[i], obs[a]) for i, a in enumerate(layout.agents)])
        state = np.asarray(state_fn(), dtype=np.float32).reshape(-1)
        same = state.shape == concat.shape and np.array_equal(state, concat)
        obs, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        seen.append(infos)
    return (not same), size


def _probe_pos_dim(scenario) -> int:
    env = scenario.make_env()
    try:
        env.reset(seed=0)
        return int(np.asarray(scenario.spec.positions(env.unwrapped)).shape[-1])
    finally:
        env.close()


def _worker(remote, parent_remote, group_kwargs) -> None:
    parent_remote.close()
    group = EnvGroup(**group_kwargs)
    try:
        while True:
            cmd, data = remote.recv()
            if cmd == "step":
                remote.send(group.step(data))
            elif cmd == "reset":
                remote.send(group.reset())
            elif cmd == "get_episodes":
                remote.send(group.episodes.copy())
            elif cmd == "set_episodes":
                group.episodes[:] = data
                remote.send(None)
            elif cmd == "snapshot":
                remote.send(group.snapshot())
            elif cmd == "restore":
                remote.send(group.restore(data))
            elif cmd == "close":
                group.close()
                remote.close()
                return
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # surface env errors in the parent with their traceback text
        import traceback

        remote.send(RuntimeError(f"env worker failed: {exc}\n{traceback.format_exc()}"))


class VectorEnv:
    def __init__(self, scenario, num_envs: int, seed: int = 0, workers: int = 0, device: str | torch.device = "cpu",
                 restart_failed: bool = False):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        if workers < 0 or workers > num_envs:
            raise ValueError(f"workers must be between 0 and num_envs={num_envs} (got {workers})")
        self.scenario = scenario
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.layout = Layout.from_spaces(scenario.agents, scenario.observation_spaces, scenario.action_spaces)
        # reports_success: the env puts infos[agent]["success"]; then every step has episode_success
        self.state_from_env, state_dim, self.reports_success = _probe_env(scenario, self.layout)
        self.state_dim = state_dim if self.state_from_env else self.layout.n_agents * self.layout.raw_obs_dim
        self.has_positions = scenario.spec.has_positions
        # the seats whose returns count in episode statistics (a wrapper playing fixed opponents narrows it)
        self.scored = torch.ones(self.layout.n_agents, dtype=torch.bool, device=self.device)
        self.pos_dim = _probe_pos_dim(scenario) if self.has_positions else 0
        n = self.layout.n_agents
        self._agent_id = torch.eye(n, device=self.device).expand(num_envs, n, n) if self.layout.agent_id else None
        kwargs = dict(
            make_env=scenario.make_env,
            layout=self.layout,
            seed=seed,
            positions=scenario.spec.positions,
            state_from_env=self.state_from_env,
            name=scenario.name,
            restart_failed=restart_failed,
            success=self.reports_success,
            active=scenario.spec.active,
        )
        self._remotes, self._procs, self._group = [], [], None
        if workers == 0:
            self._group = EnvGroup(indices=range(num_envs), **kwargs)
        else:
            ctx = mp.get_context("fork")  # fork: the scenario's factory needs no pickling
            for chunk in np.array_split(np.arange(num_envs), workers):
                remote, work_remote = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker,
                    args=(work_remote, remote, dict(indices=range(chunk[0], chunk[-1] + 1), **kwargs)),
                    daemon=True,
                )
                proc.start()
                work_remote.close()
                self._remotes.append(remote)
                self._procs.append(proc)
            self._chunks = [len(c) for c in np.array_split(np.arange(num_envs), workers)]

    # ------------------------------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return self.layout.n_agents

    @property
    def obs_dim(self) -> int:
        return self.layout.obs_dim

    def _gather(self, cmd: str, data=None) -> dict[str, np.ndarray]:
        if self._group is not None:
            return self._group.reset() if cmd == "reset" else self._group.step(data)
        offsets = np.cumsum([0] + self._chunks)
        for r, (a, b) in zip(self._remotes, zip(offsets[:-1], offsets[1:])):
            r.send((cmd, None if data is None else data[a:b]))
        parts = [r.recv() for r in self._remotes]
        for p in parts:
            if isinstance(p, Exception):
                raise p
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _to_output(self, arrays: dict[str, np.ndarray]) -> EnvOutput:
        names = {f.name for f in fields(EnvOutput)}
        out = EnvOutput(**{k: torch.from_numpy(v).to(self.device) for k, v in arrays.items() if k in names})
        if self._agent_id is not None:
            out.obs = torch.cat([out.obs, self._agent_id], dim=-1)
            if out.final_obs is not None:
                out.final_obs = torch.cat([out.final_obs, self._agent_id], dim=-1)
        return out

    def reset(self) -> EnvOutput:
        return self._to_output(self._gather("reset"))

    def episode_counts(self) -> np.ndarray:
        """Episodes started so far by each env (they fix the next reset seeds)."""
        if self._group is not None:
            return self._group.episodes.copy()
        for r in self._remotes:
            r.send(("get_episodes", None))
        return np.concatenate([r.recv() for r in self._remotes])

    def set_episode_counts(self, counts) -> None:
        """Make the next resets use the seeds of episode ``counts[k]`` of env k (for resuming)."""
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} episode counts, got shape {counts.shape}")
        if self._group is not None:
            self._group.episodes[:] = counts
            return
        offsets = np.cumsum([0] + self._chunks)
        for r, a, b in zip(self._remotes, offsets[:-1], offsets[1:]):
            r.send(("set_episodes", counts[a:b]))
        for r in self._remotes:
            r.recv()

    def snapshot(self) -> dict[str, Any]:
        """Every env's episode count and the actions of its episode in progress (see
        ``EnvGroup.snapshot``): enough to rebuild the envs' exact state in a new process."""
        if self._group is not None:
            return self._group.snapshot()
        for r in self._remotes:
            r.send(("snapshot", None))
        parts = [r.recv() for r in self._remotes]
        return {"episodes": np.concatenate([p["episodes"] for p in parts]),
                "actions": [a for p in parts for a in p["actions"]]}

    def restore(self, snapshot: dict[str, Any]) -> torch.Tensor:
        """Replay ``snapshot`` into the envs; returns the replayed raw observations [E, N, O_raw]."""
        if len(snapshot["episodes"]) != self.num_envs:
            raise ValueError(f"snapshot holds {len(snapshot['episodes'])} envs, this VectorEnv has {self.num_envs}")
        if self._group is not None:
            return torch.from_numpy(self._group.restore(snapshot)).to(self.device)
        offsets = np.cumsum([0] + self._chunks)
        for r, a, b in zip(self._remotes, offsets[:-1], offsets[1:]):
            r.send(("restore", {"episodes": snapshot["episodes"][a:b], "actions": snapshot["actions"][a:b]}))
        parts = [r.recv() for r in self._remotes]
        for p in parts:
            if isinstance(p, Exception):
                raise p
        return torch.from_numpy(np.concatenate(parts)).to(self.device)

    def step(self, actions: torch.Tensor) -> EnvOutput:
        """``actions``: [E, N] ints (discrete) or [E, N, A] floats (continuous)."""
        return self._to_output(self._gather("step", actions.detach().cpu().numpy()))

    def random_actions(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniformly random valid actions for every env and agent."""
        lay, e = self.layout, self.num_envs
        if lay.discrete:
            mask = torch.as_tensor(lay.action_mask, dtype=torch.float32).expand(e, -1, -1)
            return torch.multinomial(mask.reshape(-1, lay.n_actions), 1, generator=generator).view(e, lay.n_agents)
        low = torch.as_tensor(lay.action_low)
        high = torch.as_tensor(lay.action_high)
        u = torch.rand((e, lay.n_agents, lay.action_dim), generator=generator)
        return low + u * (high - low)

    def render(self, k: int = 0) -> Any:
        return self._local_group().render(k)

    def raw_env(self, k: int = 0) -> Any:
        """The unwrapped PettingZoo env of env k (for renderer coordinates and env-specific metrics)."""
        return self._local_group()._raw[k]

    def keep_final_frames(self) -> dict[int, Any]:
        """From now on, render each env's last state before its auto-reset into the returned dict
        (env index -> frame), so a recorded episode ends on its true final frame."""
        group = self._local_group()
        group.render_final = True
        return group.final_frames

    def _local_group(self) -> EnvGroup:
        if self._group is None:
            raise RuntimeError("rendering needs workers=0 (envs in this process)")
        return self._group

    def close(self) -> None:
        for r in self._remotes:
            try:
                r.send(("close", None))
            except (BrokenPipeError, EOFError):
                pass
        for p in self._procs:
            p.join(timeout=5)
        if self._group is not None:
            self._group.close()
        self._remotes, self._procs = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
