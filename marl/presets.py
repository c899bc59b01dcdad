"""Named training presets: ``preset=NAME`` sets a group of config keys, under the keys the user
sets (theirs win). Each preset says what it is for and the measurement behind it.

``fast``: the shortest wall-clock to a good policy on the batched MPE tasks, chosen with
``benchmarks/time_to_score.py`` (see docs/results.md#time-to-score). The defaults stay what gives
the best final score.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    # searched on mpe/simple_spread N=3, seed 0, 600k steps (benchmarks/results/time_to_score_search/):
    # 128 envs x 25 steps per update, 4 minibatches, lr 2e-3 first reached normalised 0.8 at 253k env
    # steps (the default at 600k: 0.76), final 0.98; confirmed over 3 seeds in docs/results.md. With N >= 4
    # agents lr 7e-4 does better (N=4, 2M steps: 0.85 against 0.74; docs/results.md#scaling-in-n-...)
    "fast": {"num_envs": 128, "algo": {"rollout_len": 25, "minibatches": 4}, "lr": 2e-3},
}


def preset_settings(name: str) -> dict:
    """The config keys of preset ``name`` (nested like a YAML config), or a ValueError naming the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is not a preset; valid: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
