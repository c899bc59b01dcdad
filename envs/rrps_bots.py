"""A population of scripted repeated rock-paper-scissors bots (no torch: plain Python + numpy).

Each bot keeps its own record of the match: ``act()`` returns its next throw (0 rock, 1 paper,
2 scissors) and ``observe(own, opponent)`` tells it what was thrown. Randomness comes only from
the ``rng`` given at construction, so a match is replayable from its seed. The population mixes
easy prey (constants, cycles), adaptive players (frequency counters, pattern and Markov
predictors, win-stay-lose-shift) and noisy or mixed ones, in the spirit of the RoShamBo
competition bots of Lanctot et al. (2023), written here from their descriptions.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from typing import Callable

import numpy as np

from envs.rrps import PAPER, ROCK, SCISSORS, beats


class Bot:
    """Base class: stores the history; subclasses implement ``choose()``."""

    description = ""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.own: list[int] = []
        self.opp: list[int] = []

    def act(self) -> int:
        return int(self.choose())

    def observe(self, own: int, opponent: int) -> None:
        self.own.append(int(own))
        self.opp.append(int(opponent))
        self.update(int(own), int(opponent))

    def update(self, own: int, opponent: int) -> None:
        """Incremental bookkeeping after each throw (keeps ``choose`` O(1) per step)."""

    def choose(self) -> int:
        raise NotImplementedError

    def random_throw(self) -> int:
        return int(self.rng.integers(3))


class Constant(Bot):
    throw = ROCK

    def choose(self) -> int:
        return self.throw


class Rock(Constant):
    description = "always rock"
    throw = ROCK


class Paper(Constant):
    description = "always paper"
    throw = PAPER


class Scissors(Constant):
    description = "always scissors"
    throw = SCISSORS


class Cycle(Bot):
    description = "rock, paper, scissors, rock, ..."
    step = 1

    def choose(self) -> int:
        return (self.step * len(self.own)) % 3


class ReverseCycle(Cycle):
    description = "rock, scissors, paper, rock, ..."
    step = 2


class CopyOpponent(Bot):
    description = "throws the opponent's last throw (random first)"

    def choose(self) -> int:
        return self.opp[-1] if self.opp else self.random_throw()


class BeatLast(Bot):
    description = "throws what beats the opponent's last throw"

    def choose(self) -> int:
        return beats(self.opp[-1]) if self.opp else self.random_throw()


class BeatBeatOwn(Bot):
    """Second-order reasoning: expects the opponent to play what beats my last throw, and beats that."""

    description = "beats the throw that would beat its own last throw"

    def choose(self) -> int:
        return beats(beats(self.own[-1])) if self.own else self.random_throw()


class FrequencyCounter(Bot):
    description = "beats the opponent's most frequent throw so far"

    def __init__(self, rng):
        super().__init__(rng)
        self.counts = np.zeros(3)

    def update(self, own, opponent):
        self.counts[opponent] += 1

    def choose(self) -> int:
        if not self.opp:
            return self.random_throw()
        return beats(int(self.counts.argmax()))


class RecentFrequency(Bot):
    description = "beats the opponent's most frequent throw in the last 10"
    window = 10

    def __init__(self, rng):
        super().__init__(rng)
        self.recent: deque[int] = deque(maxlen=self.window)

    def update(self, own, opponent):
        self.recent.append(opponent)

    def choose(self) -> int:
        if not self.recent:
            return self.random_throw()
        counts = np.bincount(np.asarray(self.recent), minlength=3)
        return beats(int(counts.argmax()))


class NoisyFrequency(FrequencyCounter):
    description = "frequency counter that throws at random 30% of the time"
    noise = 0.3

    def choose(self) -> int:
        if self.rng.random() < self.noise:
            return self.random_throw()
        return super().choose()


class Markov(Bot):
    """Predicts the opponent's next throw from its previous one (first-order transition counts)."""

    description = "first-order Markov model of the opponent's throws"

    def __init__(self, rng):
        super().__init__(rng)
        self.transitions = np.zeros((3, 3))

    def update(self, own, opponent):
        if len(self.opp) >= 2:
            self.transitions[self.opp[-2], opponent] += 1

    def choose(self) -> int:
        if not self.opp or self.transitions[self.opp[-1]].sum() == 0:
            return self.random_throw()
        return beats(int(self.transitions[self.opp[-1]].argmax()))


class PatternMatcher(Bot):
    """Finds what the opponent threw after the last time its recent ``order`` throws occurred
    (counted over the whole match) and beats the most frequent continuation."""

    description = "opponent's 3-throw patterns -> most frequent next throw"
    order = 3

    def __init__(self, rng):
        super().__init__(rng)
        self.continuations: dict[tuple, Counter] = defaultdict(Counter)

    def key(self, end: int) -> tuple:
        return tuple(self.opp[end - self.order:end])

    def update(self, own, opponent):
        if len(self.opp) > self.order:
            self.continuations[self.key(len(self.opp) - 1)][opponent] += 1

    def choose(self) -> int:
        if len(self.opp) < self.order:
            return self.random_throw()
        seen = self.continuations.get(self.key(len(self.opp)))
        if not seen:
            return self.random_throw()
        return beats(seen.most_common(1)[0][0])


class JointPatternMatcher(PatternMatcher):
    """Like the pattern matcher, on the joint history of both players' last 2 throws."""

    description = "joint (own, opponent) 2-round patterns -> opponent's most frequent next throw"
    order = 2

    def key(self, end: int) -> tuple:
        return tuple(zip(self.own[end - self.order:end], self.opp[end - self.order:end]))


class WinStayLoseShift(Bot):
    description = "repeats its throw after a win or a tie, moves on to the next throw (R->P->S) after a loss"

    def choose(self) -> int:
        if not self.own:
            return self.random_throw()
        own, opp = self.own[-1], self.opp[-1]
        lost = beats(own) == opp
        return (own + 1) % 3 if lost else own


class SwitchALot(Bot):
    description = "never repeats its last throw (random among the other two)"

    def choose(self) -> int:
        if not self.own:
            return self.random_throw()
        return (self.own[-1] + 1 + int(self.rng.integers(2))) % 3


class Biased(Bot):
    description = "random with probabilities rock 0.5, paper 0.3, scissors 0.2"
    probs = (0.5, 0.3, 0.2)

    def choose(self) -> int:
        return int(self.rng.choice(3, p=self.probs))


class PhaseShift(Bot):
    """A mixture in time: cycles for 100 throws, then a constant throw for 100, and so on."""

    description = "alternates every 100 throws between cycling and a constant throw"
    period = 100

    def choose(self) -> int:
        t = len(self.own)
        if (t // self.period) % 2 == 0:
            return t % 3
        return (t // (2 * self.period)) % 3


class MixedStrategist(Bot):
    """Mixture of experts: each throw, follows the frequency counter or the pattern matcher with
    equal odds (a simple mixture bot)."""

    description = "each throw picks the frequency counter or the pattern matcher at random"

    def __init__(self, rng):
        super().__init__(rng)
        self.experts = [FrequencyCounter(rng), PatternMatcher(rng)]

    def update(self, own, opponent):
        for e in self.experts:
            e.observe(own, opponent)

    def choose(self) -> int:
        return self.experts[int(self.rng.integers(2))].act()


class UniformRandom(Bot):
    description = "uniformly random: the Nash equilibrium, unexploitable and unexploiting"

    def choose(self) -> int:
        return self.random_throw()


BOTS: dict[str, Callable[[np.random.Generator], Bot]] = {
    "rock": Rock,
    "paper": Paper,
    "scissors": Scissors,
    "cycle": Cycle,
    "reverse_cycle": ReverseCycle,
    "copy_opponent": CopyOpponent,
    "beat_last": BeatLast,
    "beat_beat_own": BeatBeatOwn,
    "frequency": FrequencyCounter,
    "recent_frequency": RecentFrequency,
    "noisy_frequency": NoisyFrequency,
    "markov": Markov,
    "pattern": PatternMatcher,
    "joint_pattern": JointPatternMatcher,
    "win_stay_lose_shift": WinStayLoseShift,
    "switch_a_lot": SwitchALot,
    "biased": Biased,
    "phase_shift": PhaseShift,
    "mixed_experts": MixedStrategist,
    "uniform": UniformRandom,
}


def names() -> list[str]:
    return list(BOTS)


def make(name: str, rng: np.random.Generator | int | None = None) -> Bot:
    if name not in BOTS:
        raise ValueError(f"unknown rrps bot {name!r}; valid: {', '.join(BOTS)}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return BOTS[name](rng)


def resolve(selection: str | list[str]) -> list[str]:
    """``"all"``, a comma-separated string or a list of bot names -> the validated list."""
    if isinstance(selection, str):
        selection = list(BOTS) if selection == "all" else [s.strip() for s in selection.split(",") if s.strip()]
    bad = [s for s in selection if s not in BOTS]
    if bad or not selection:
        raise ValueError(f"unknown rrps bot {bad[0] if bad else '(none given)'!r}; valid: all, {', '.join(BOTS)}")
    return list(selection)
