"""``classic/rrps``: repeated rock-paper-scissors as a PettingZoo ParallelEnv of our own.

Two players throw ``num_throws`` times (1000 by default, as in Lanctot et al. 2023). Each step
both throw at once and each gets +1 for a win, -1 for a loss, 0 for a tie (zero-sum). Each player
observes the last ``history`` throws of the match from its own point of view: for every one of
them a one-hot of its own throw and a one-hot of the opponent's (all zeros before the first
throw), most recent first. A recurrent policy or a scripted bot that keeps its own record sees
the whole history; ``history`` only sets how much a memoryless policy sees at once.

``classic/rrps_vs_bots`` (:class:`RRPSVersusBots`) is the single-agent view used to train
against a population: ``player_1`` is a scripted bot drawn per episode from ``opponents``.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

ROCK, PAPER, SCISSORS = 0, 1, 2
THROWS = ("rock", "paper", "scissors")
# PAYOFF[a, b]: the reward of throwing a against b
PAYOFF = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=np.float32)


def beats(throw: int) -> int:
    """The throw that beats ``throw``."""
    return (throw + 1) % 3


def encode_history(own: list[int], opp: list[int], history: int) -> np.ndarray:
    """The observation: the last ``history`` (own, opponent) throws, most recent first."""
    obs = np.zeros((history, 6), dtype=np.float32)
    for k in range(min(history, len(own))):
        obs[k, own[-1 - k]] = 1.0
        obs[k, 3 + opp[-1 - k]] = 1.0
    return obs.reshape(-1)


def decode_last(obs: np.ndarray) -> tuple[int, int] | None:
    """(own, opponent) throws of the last round, from an observation; None before the first."""
    row = np.asarray(obs, dtype=np.float32)[:6]
    if row.sum() == 0:
        return None
    return int(row[:3].argmax()), int(row[3:6].argmax())


class RepeatedRPSEnv(ParallelEnv):
    metadata = {"name": "rrps_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, num_throws: int = 1000, history: int = 5, render_mode: str | None = None):
        if num_throws < 1:
            raise ValueError(f"num_throws must be >= 1 (got {num_throws})")
        if history < 1:
            raise ValueError(f"history must be >= 1 (got {history})")
        self.num_throws = num_throws
        self.history = history
        self.render_mode = render_mode
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self.throws: dict[str, list[int]] = {a: [] for a in self.possible_agents}

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, shape=(6 * self.history,), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return spaces.Discrete(3)

    def _opponent(self, agent: str) -> str:
        return self.possible_agents[1 - self.possible_agents.index(agent)]

    def _observe(self, agent: str) -> np.ndarray:
        return encode_history(self.throws[agent], self.throws[self._opponent(agent)], self.history)

    def reset(self, seed=None, options=None):
        # the game itself has no randomness; the seed is for wrappers and stochastic opponents
        self.agents = list(self.possible_agents)
        self.throws = {a: [] for a in self.possible_agents}
        return {a: self._observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() after the match ended; call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"rrps needs an action for every player; missing {missing}")
        a0, a1 = (int(actions[a]) for a in self.possible_agents)
        for a, throw in zip(self.possible_agents, (a0, a1)):
            if throw not in (ROCK, PAPER, SCISSORS):
                raise ValueError(f"{a} threw {throw!r}; valid throws are 0 (rock), 1 (paper), 2 (scissors)")
        self.throws["player_0"].append(a0)
        self.throws["player_1"].append(a1)
        r = float(PAYOFF[a0, a1])
        rewards = {"player_0": r, "player_1": -r}
        done = len(self.throws["player_0"]) >= self.num_throws
        obs = {a: self._observe(a) for a in self.agents}
        terms = {a: False for a in self.agents}
        truncs = {a: done for a in self.agents}
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self):
        return None

    def close(self):
        pass


class RRPSVersusBots(ParallelEnv):
    """One learning player (``player_0``) against a scripted bot drawn uniformly per episode from
    ``opponents`` (bot names from :mod:`envs.rrps_bots`) with the reset seed, so an episode's
    opponent is fixed by its seed."""

    metadata = {"name": "rrps_vs_bots_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, num_throws: int = 1000, history: int = 5, opponents: str | list[str] = "all",
                 render_mode: str | None = None):
        from envs import rrps_bots

        self.game = RepeatedRPSEnv(num_throws=num_throws, history=history)
        self.opponent_names = rrps_bots.resolve(opponents)
        self.render_mode = render_mode
        self.possible_agents = ["player_0"]
        self.agents: list[str] = []
        self.rng = np.random.default_rng()
        self.bot = None
        self.opponent = None

    def observation_space(self, agent):
        return self.game.observation_space(agent)

    def action_space(self, agent):
        return self.game.action_space(agent)

    def reset(self, seed=None, options=None):
        from envs import rrps_bots

        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.opponent = self.opponent_names[int(self.rng.integers(len(self.opponent_names)))]
        self.bot = rrps_bots.make(self.opponent, self.rng)
        obs, infos = self.game.reset(seed=seed)
        self.agents = ["player_0"]
        return {"player_0": obs["player_0"]}, {"player_0": {"opponent": self.opponent}}

    def step(self, actions):
        throw = int(actions["player_0"])
        bot_throw = self.bot.act()
        obs, rew, terms, truncs, _ = self.game.step({"player_0": throw, "player_1": bot_throw})
        self.bot.observe(bot_throw, throw)
        if not self.game.agents:
            self.agents = []
        keep = "player_0"
        return ({keep: obs[keep]}, {keep: rew[keep]}, {keep: terms[keep]}, {keep: truncs[keep]},
                {keep: {"opponent": self.opponent}})

    def render(self):
        return None

    def close(self):
        pass
