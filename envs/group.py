"""Steps a group of PettingZoo ParallelEnvs and packs their dicts into padded numpy arrays.

This is the only code that touches PettingZoo's per-agent dicts. It runs in the trainer's process
or inside a subprocess worker (see ``envs.workers``); either way it returns the same arrays.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from envs.layout import Layout, encode_obs


class EnvStepError(RuntimeError):
    """An env raised inside ``step``; the message names the scenario, env index and step."""


def _mean_success(infos) -> float:
    """Mean over agents of ``infos[agent]["success"]``; NaN where no agent reports one."""
    values = [float(i["success"]) for i in (infos or {}).values() if isinstance(i, dict) and "success" in i]
    return float(np.mean(values)) if values else float("nan")


def episode_seed(base_seed: int, env_index: int, episode: int) -> int:
    """Seed of one env's episode, derived from (run seed, env index, episode count) alone, so any
    episode can be replayed and a resumed run resets its envs exactly as the original would."""
    return int(np.random.SeedSequence([base_seed, env_index, episode]).generate_state(1)[0])


class EnvGroup:
    """E' envs with global indices ``first_index .. first_index+E'-1``; returns numpy arrays."""

    def __init__(
        self,
        make_env: Callable[[], Any],
        layout: Layout,
        indices: range,
        seed: int,
        positions: Callable[[Any], np.ndarray] | None = None,
        state_from_env: bool = True,
        name: str = "",
        restart_failed: bool = False,
        success: bool = False,
        active: Callable[[Any], np.ndarray] | None = None,
    ):
        self.name = name
        self.make_env = make_env
        self.restart_failed = restart_failed  # recreate an env that raises, drop its partial episode
        self.layout = layout
        self.indices = indices
        self.seed = seed
        self.positions_fn = positions
        self.success = success  # read infos[agent]["success"] at each episode's end (episode_success)
        self.active_fn = active  # ScenarioSpec.active: agents in play, ANDed into alive
        self.envs = [make_env() for _ in indices]
        self._raw = [env.unwrapped for env in self.envs]  # wrappers' __getattr__ is slow per step
        self.state_from_env = state_from_env
        self.episodes = np.zeros(len(self.envs), dtype=np.int64)  # episodes started per env
        # actions of each env's episode in progress: with the episode's reset seed they reproduce the
        # env's exact state on resume (see snapshot)
        self.episode_actions: list[list[np.ndarray]] = [[] for _ in self.envs]
        n, e = layout.n_agents, len(self.envs)
        self.agent_index = {a: i for i, a in enumerate(layout.agents)}
        self.returns = np.zeros((e, n), dtype=np.float64)
        self.lengths = np.zeros(e, dtype=np.int64)
        self.render_final = False  # keep a frame of each episode's last state, before the auto-reset
        # with active_fn: each env's in-play mask as of its last output, i.e. who is in play during
        # the next step (final_alive of that step keeps it: "took part in the step")
        self.in_play = np.ones((e, n), dtype=bool)
        self.final_frames: dict[int, Any] = {}

    # ---- packing ---------------------------------------------------------------------------
    def _pack_obs(self, obs: dict, out: np.ndarray, alive: np.ndarray) -> None:
        out[:] = 0.0
        alive[:] = False
        for agent, o in obs.items():
            i = self.agent_index[agent]
            v = encode_obs(self.layout.obs_spaces[i], o)
            out[i, : v.shape[0]] = v
            alive[i] = True

    def _state(self, env, obs_row: np.ndarray) -> np.ndarray:
        if self.state_from_env:
            return np.asarray(env.state(), dtype=np.float32).reshape(-1)
        return obs_row.reshape(-1).copy()  # a copy: the auto-reset overwrites obs_row in place

    def _apply_active(self, k: int, alive_row: np.ndarray) -> None:
        """AND env k's in-play agents (``ScenarioSpec.active``, read in its current state) into
        ``alive_row``; no-op without ``active_fn``."""
        if self.active_fn is None:
            return
        mask = np.asarray(self.active_fn(self._raw[k]), dtype=bool).reshape(-1)
        if mask.shape != (self.layout.n_agents,):
            raise ValueError(f"scenario {self.name!r}: spec.active returned shape {mask.shape}, "
                             f"expected ({self.layout.n_agents},) (one bool per agent, in agent order)")
        self.in_play[k] = mask
        alive_row &= mask

    def _reset_one(self, k: int, obs_row, alive_row) -> np.ndarray:
        env = self.envs[k]
        obs, _ = env.reset(seed=episode_seed(self.seed, self.indices[k], int(self.episodes[k])))
        self.episodes[k] += 1
        self.episode_actions[k] = []
        self._pack_obs(obs, obs_row, alive_row)
        self._apply_active(k, alive_row)
        self.returns[k] = 0.0
        self.lengths[k] = 0
        return self._state(env, obs_row)

    def _positions(self) -> np.ndarray | None:
        if self.positions_fn is None:
            return None
        return np.stack([self.positions_fn(raw) for raw in self._raw]).astype(np.float32)

    # ---- API -------------------------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        e, n, o = len(self.envs), self.layout.n_agents, self.layout.raw_obs_dim
        obs = np.zeros((e, n, o), dtype=np.float32)
        alive = np.zeros((e, n), dtype=bool)
        states = [self._reset_one(k, obs[k], alive[k]) for k in range(e)]
        out = {"obs": obs, "state": np.stack(states), "alive": alive}
        pos = self._positions()
        if pos is not None:
            out["positions"] = pos
        return out

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Step every env with ``actions`` [E', N(, A)]; finished envs are reset automatically.

        ``obs``/``state``/``alive`` describe the next step (after any reset); ``final_obs``/
        ``final_state`` keep the last observation of an episode that ended here, so a truncated
        episode can bootstrap from it; ``done_env`` marks envs that ended (and were reset).
        """
        lay = self.layout
        e, n, o = len(self.envs), lay.n_agents, lay.raw_obs_dim
        obs = np.zeros((e, n, o), dtype=np.float32)
        alive = np.zeros((e, n), dtype=bool)
        reward = np.zeros((e, n), dtype=np.float32)
        term = np.zeros((e, n), dtype=bool)
        trunc = np.zeros((e, n), dtype=bool)
        done_env = np.zeros(e, dtype=bool)
        dropped = np.zeros(e, dtype=bool)  # envs restarted after an exception; their episode is not reported
        states, final_states, ended, ended_pos = [], [], {}, {}
        final_alive = np.zeros((e, n), dtype=bool)
        ep_return = np.zeros((e, n), dtype=np.float64)
        ep_length = np.zeros(e, dtype=np.int64)
        # 0 where no episode ended, as ep_return (see EnvOutput.episode_success)
        ep_success = np.zeros(e, dtype=np.float32) if self.success else None
        for k, env in enumerate(self.envs):
            act = {a: lay.env_action(self.agent_index[a], actions[k, self.agent_index[a]]) for a in env.agents}
            try:
                nobs, rew, terms, truncs, infos = env.step(act)
            except Exception as exc:
                if not self.restart_failed:
                    raise EnvStepError(
                        f"scenario {self.name!r}: env {self.indices[k]} raised {type(exc).__name__} at step "
                        f"{self.lengths[k] + 1} of its episode {self.episodes[k] - 1} (actions {act}): {exc} "
                        "(restart_failed_envs=true recreates failed envs)"
                    ) from exc
                # the partial episode is dropped: it ends here (terminated: there is no final state
                # to bootstrap from), is not reported, and a fresh env starts a new episode
                self._restart(k)
                for a in act:
                    term[k, self.agent_index[a]] = True
                done_env[k] = dropped[k] = True
                state = self._reset_one(k, obs[k], alive[k])
                final_states.append(state)
                states.append(state)
                continue
            self.episode_actions[k].append(actions[k].copy())
            for agent, r in rew.items():
                i = self.agent_index[agent]
                reward[k, i] = r
                term[k, i] = terms.get(agent, False)
                trunc[k, i] = truncs.get(agent, False)
            self.returns[k] += reward[k]
            self.lengths[k] += 1
            self._pack_obs(nobs, obs[k], alive[k])
            final_alive[k] = alive[k]
            if self.active_fn is not None:
                final_alive[k] &= self.in_play[k]  # present and in play during the step
            # agents that finished this step stay visible in final_obs but not in the next step
            for agent in nobs:
                if terms.get(agent, False) or truncs.get(agent, False):
                    alive[k, self.agent_index[agent]] = False
            state = self._state(env, obs[k])
            final_states.append(state)
            if not env.agents:
                done_env[k] = True
                if self.render_final:
                    self.final_frames[k] = env.render()
                if self.positions_fn is not None:
                    ended_pos[k] = self.positions_fn(self._raw[k])
                ended[k] = obs[k].copy()
                ep_return[k] = self.returns[k]
                ep_length[k] = self.lengths[k]
                if ep_success is not None:
                    ep_success[k] = _mean_success(infos)
                state = self._reset_one(k, obs[k], alive[k])
            else:
                self._apply_active(k, alive[k])  # in play in the state just reached
            states.append(state)
        final_obs = obs.copy()
        for k, row in ended.items():
            final_obs[k] = row
        out = {
            "obs": obs,
            "state": np.stack(states),
            "alive": alive,
            "reward": reward,
            "terminated": term,
            "truncated": trunc,
            "final_obs": final_obs,
            "final_state": np.stack(final_states),
            "done_env": done_env,
            "dropped_env": dropped,
            "episode_return": ep_return,
            "episode_length": ep_length,
        }
        out["final_alive"] = final_alive
        if ep_success is not None:
            out["episode_success"] = ep_success
        pos = self._positions()
        if pos is not None:
            out["positions"] = pos
            final_pos = pos.copy()
            for k, p in ended_pos.items():
                final_pos[k] = p
            out["final_positions"] = final_pos
        return out

    # ---- exact resume ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What reproduces every env's current state exactly: its episode count (which fixes the
        episode's reset seed) and the actions taken so far in the episode in progress.

        Why a replay log rather than the env objects: PettingZoo envs pickle only their constructor
        arguments (``EzPickle``), not their mid-episode state, and some hold unpicklable objects
        (Box2D, pymunk, supersuit lambdas); and with ``workers`` they live in other processes. A
        seeded reset followed by the same actions reproduces the state of any env that honours its
        reset seed (what PettingZoo's ``parallel_seed_test`` checks), in or out of process.
        """
        return {"episodes": self.episodes.copy(), "actions": [list(a) for a in self.episode_actions]}

    def restore(self, snapshot: dict[str, Any]) -> np.ndarray:
        """Bring every env to the state of ``snapshot`` (reset with the episode's seed, then replay
        its actions); returns the replayed observations [E', N, O] so the caller can check them."""
        lay = self.layout
        e, n = len(self.envs), lay.n_agents
        obs = np.zeros((e, n, lay.raw_obs_dim), dtype=np.float32)
        alive = np.zeros((e, n), dtype=bool)
        for k, env in enumerate(self.envs):
            episode = int(snapshot["episodes"][k])
            if episode < 1:
                raise ValueError(f"env {self.indices[k]}: snapshot has no episode in progress")
            self.episodes[k] = episode - 1
            self._reset_one(k, obs[k], alive[k])
            for row in snapshot["actions"][k]:
                act = {a: lay.env_action(self.agent_index[a], row[self.agent_index[a]]) for a in env.agents}
                nobs, rew, *_ = env.step(act)
                reward = np.zeros(n, dtype=np.float32)  # summed exactly as step() does
                for agent, r in rew.items():
                    reward[self.agent_index[agent]] = r
                self.returns[k] += reward
                self.lengths[k] += 1
                self.episode_actions[k].append(row)
                self._pack_obs(nobs, obs[k], alive[k])
            self._apply_active(k, alive[k])  # the in-play mask the next step's final_alive needs
        return obs

    def _restart(self, k: int):
        try:
            self.envs[k].close()
        except Exception:
            pass
        self.envs[k] = self.make_env()
        self._raw[k] = self.envs[k].unwrapped

    def render(self, k: int = 0):
        return self.envs[k].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()
