"""``preset=NAME``: a named group of settings under the user's own keys."""

from __future__ import annotations

import pytest

from marl.config import ConfigError, build_config, config_from_args
from marl.presets import PRESETS


def test_the_fast_preset_sets_its_keys_and_the_users_keys_win():
    fast = build_config({"preset": "fast"})
    default = build_config({})
    assert PRESETS["fast"], "the fast preset sets something"
    changed = {k for k in ("num_envs", "lr") if getattr(fast, k) != getattr(default, k)}
    assert changed == {k for k in ("num_envs", "lr") if k in PRESETS["fast"]}
    assert fast.algo.rollout_len == PRESETS["fast"]["algo"]["rollout_len"]
    mine = config_from_args(["preset=fast", "num_envs=8", "algo.rollout_len=7"])
    assert mine.num_envs == 8 and mine.algo.rollout_len == 7 and mine.lr == fast.lr


def test_an_unknown_preset_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"^preset='fats' is not a preset; valid: fast$"):
        build_config({"preset": "fats"})


def test_a_preset_applies_only_the_algorithm_keys_the_chosen_algorithm_has():
    cfg = build_config({"preset": "fast", "algo": "qmix"})
    assert cfg.algo.name == "qmix" and cfg.num_envs == PRESETS["fast"]["num_envs"]
    assert cfg.algo.rollout_len == PRESETS["fast"]["algo"]["rollout_len"]
