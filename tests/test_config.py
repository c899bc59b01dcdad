"""Typed configs: defaults, key=value parsing, helpful errors, scenario options, YAML, round trips."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marl.config import (
    ConfigError,
    TrainConfig,
    build_config,
    config_from_args,
    parse_overrides,
    parse_value,
    to_dict,
)


def test_defaults_validate():
    cfg = build_config({})
    assert cfg == TrainConfig()
    cfg.validate()
    assert cfg.scenario == "mpe/simple_spread" and cfg.algo.name == "mappo"
    assert cfg.critic_kind == "centralized"
    assert config_from_args([]) == cfg


def test_key_value_types():
    cfg = config_from_args([
        "total_steps=1e6",
        "num_envs=8",
        "lr=3e-4",
        "progress=false",
        "resume=yes",
        "algo=ippo",
        "critic=independent",
        "algo.epochs=5",
        "algo.gamma=0.95",
        "algo.adv_norm=False",
        "actor.recurrent=true",
        "actor.activation=relu",
        "critic_lr=null",
        "seed=-3",
        "out=/tmp/some where/run.1",
        "wandb=offline",
    ])
    assert cfg.total_steps == 1_000_000 and type(cfg.total_steps) is int
    assert cfg.num_envs == 8 and type(cfg.num_envs) is int
    assert cfg.lr == 3e-4 and type(cfg.lr) is float
    assert cfg.progress is False and cfg.resume is True
    assert cfg.critic.name == "independent" and cfg.critic_kind == "independent"
    assert cfg.algo.epochs == 5 and cfg.algo.gamma == 0.95 and cfg.algo.adv_norm is False
    assert cfg.actor.recurrent is True and cfg.actor.activation == "relu"
    assert cfg.critic_lr is None and cfg.seed == -3
    assert cfg.out == "/tmp/some where/run.1"
    assert cfg.wandb == "offline"


def test_whole_floats_accepted_for_ints_and_ints_for_floats():
    cfg = config_from_args(["total_steps=2.5e5", "algo.rollout_len=100.0", "lr=1", "algo.gamma=1"])
    assert cfg.total_steps == 250_000 and cfg.algo.rollout_len == 100
    assert cfg.lr == 1.0 and type(cfg.lr) is float and cfg.algo.gamma == 1.0


def test_section_primary_field_and_keys_combine_in_any_order():
    a = config_from_args(["algo=ippo", "critic=independent", "critic.hidden=32"])
    b = config_from_args(["critic.hidden=32", "critic=independent", "algo=ippo"])
    assert a.critic == b.critic
    assert a.critic.name == "independent" and a.critic.hidden == 32
    assert config_from_args(["algo=ippo"]).critic_kind == "independent"
    assert config_from_args(["algo=mappo", "critic=graph"]).critic_kind == "graph"


def test_parse_helpers():
    assert parse_value("1e-3") == pytest.approx(1e-3)
    assert parse_value("12") == 12
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("mpe/simple_spread") == "mpe/simple_spread"
    assert parse_overrides(["a=1", "algo.epochs=5", "algo.clip=0.1"]) == {"a": 1, "algo": {"epochs": 5, "clip": 0.1}}
    assert parse_overrides(["out=a=b"]) == {"out": "a=b"}  # only the first '=' splits
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["total_steps"])
    with pytest.raises(ConfigError, match="empty key"):
        parse_overrides(["=5"])


# ---- errors ----------------------------------------------------------------------------------


def _error(items: list[str], one_line: bool = True) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_args(items)
    msg = str(info.value)
    if one_line:
        assert "\n" not in msg  # the CLI prints it as one line
    return msg


def test_unknown_key_names_it_and_suggests_close_one():
    msg = _error(["ttal_steps=100"])
    assert "'ttal_steps'" in msg
    assert "Did you mean 'total_steps'" in msg


def test_unknown_nested_key_suggests_nested_name():
    msg = _error(["algo.epoch=3"])
    assert "'algo.epoch'" in msg and "'algo.epochs'" in msg
    msg = _error(["actr.hidden=3"])
    assert "actr" in msg


def test_bad_literal_suggests_closest_choice():
    msg = _error(["algo=mapo"])
    assert "algo" in msg and "'mapo'" in msg and "Did you mean 'mappo'" in msg
    assert "ippo" in msg  # lists the valid values
    msg = _error(["critic=centralised"])
    assert "centralized" in msg


@pytest.mark.parametrize(
    "item, words",
    [
        ("num_envs=abc", ["num_envs", "abc", "integer"]),
        ("total_steps=1.5", ["total_steps", "whole number"]),
        ("lr=fast", ["lr", "fast", "number"]),
        ("progress=maybe", ["progress", "maybe", "boolean"]),
        ("seed=true", ["seed", "integer"]),
        ("actor=5", ["actor", "section"]),
        ("scenario_args=3", ["scenario_args", "mapping"]),
    ],
)
def test_wrong_type_names_key_and_value(item, words):
    msg = _error([item])
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize(
    "item, key",
    [
        ("lr=-1", "lr"),
        ("algo.clip=0", "algo.clip"),
        ("num_envs=0", "num_envs"),
        ("total_steps=-5", "total_steps"),
        ("algo.gamma=1.5", "algo.gamma"),
        ("algo.gae_lambda=-0.1", "algo.gae_lambda"),
        ("algo.ent_coef=-0.01", "algo.ent_coef"),
        ("actor.hidden=0", "actor.hidden"),
        ("critic_lr=0", "critic_lr"),
        ("eval_every=-1", "eval_every"),
        ("keep_checkpoints=0", "keep_checkpoints"),
    ],
)
def test_out_of_range_values(item, key):
    msg = _error([item])
    assert msg.startswith(key), msg
    assert "must be" in msg


def test_cross_field_checks():
    assert "workers" in _error(["workers=3", "num_envs=2"])
    assert "device" in _error(["device=tpu"])
    assert "wandb" in _error(["wandb=sometimes"])


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_non_finite_int_is_config_error(value):
    _error([f"total_steps={value}"])


@pytest.mark.parametrize("item", ["lr=nan", "algo.clip=nan", "algo.vf_coef=nan"])
def test_nan_float_is_config_error(item):
    _error([item])


# ---- scenario options at top level -----------------------------------------------------------


def test_scenario_option_at_top_level_goes_to_scenario_args():
    cfg = config_from_args(["n_agents=5"])
    assert cfg.scenario_args == {"n_agents": 5}
    cfg = config_from_args(["scenario=mpe/simple_tag", "num_adversaries=2", "max_cycles=10"])
    assert cfg.scenario_args == {"num_adversaries": 2, "max_cycles": 10}
    # explicit scenario_args merge with top-level options
    cfg = build_config({"scenario_args": {"max_cycles": 7}, "n_agents": 4})
    assert cfg.scenario_args == {"max_cycles": 7, "n_agents": 4}


def test_bad_scenario_option_mentions_the_valid_one():
    msg = _error(["n_agent=5"])
    assert "'n_agent'" in msg and "n_agents" in msg
    # an option of another scenario is not an option of this one
    msg = _error(["scenario=classic/rps", "n_agents=3"])
    assert "n_agents" in msg and "classic/rps" in msg
    msg = _error(["scenario_args={n_agent: 3}"])
    assert "n_agents" in msg


def test_unknown_scenario_is_config_error():
    msg = _error(["scenario=mpe/simple_sprad"])
    assert "mpe/simple_spread" in msg


# ---- YAML files ------------------------------------------------------------------------------


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "scenario": "mpe/simple_tag",
        "total_steps": "1e5",
        "num_adversaries": 2,
        "critic": "independent",
        "algo": {"name": "ippo", "epochs": 4, "clip": 0.1},
        "actor": {"hidden": 32},
    }))
    cfg = config_from_args([f"config={path}", "algo.epochs=6", "seed=9"])
    assert cfg.scenario == "mpe/simple_tag" and cfg.total_steps == 100_000
    assert cfg.scenario_args == {"num_adversaries": 2}
    assert cfg.critic.name == "independent"
    assert cfg.algo.epochs == 6 and cfg.algo.clip == 0.1  # command line wins, file keeps the rest
    assert cfg.actor.hidden == 32 and cfg.seed == 9
    # a section given in the file can be overridden by its primary field on the command line
    path.write_text(yaml.safe_dump({"critic": {"name": "centralized", "hidden": 16}}))
    cfg = config_from_args([f"config={path}", "critic=independent", "algo=ippo"])
    assert cfg.critic.name == "independent" and cfg.critic.hidden == 16


def test_yaml_file_errors(tmp_path):
    assert "does not exist" in _error([f"config={tmp_path / 'missing.yaml'}"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo: [unclosed\n")
    assert "not valid YAML" in _error([f"config={bad}"], one_line=False)  # see test_cli
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    assert "mapping" in _error([f"config={listy}"])
    typo = tmp_path / "typo.yaml"
    typo.write_text("algo:\n  epoch: 3\n")
    assert "algo.epochs" in _error([f"config={typo}"])


def test_saved_config_yaml_rebuilds_the_same_config(tmp_path):
    cfg = config_from_args(["n_agents=4", "algo=ippo", "critic=independent", "algo.epochs=3", "lr=1e-3"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    assert config_from_args([f"config={path}"]) == cfg


# ---- property: parsed values round-trip ------------------------------------------------------

INT_KEYS = {
    "total_steps": st.integers(1, 10**12),
    "num_envs": st.integers(1, 512),
    "seed": st.integers(-(2**31), 2**31),
    "checkpoint_every": st.integers(0, 10**9),
    "algo.epochs": st.integers(1, 100),
    "algo.rollout_len": st.integers(1, 10_000),
    "actor.hidden": st.integers(1, 4096),
    "critic.layers": st.integers(1, 16),
}
_pos = st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False)
_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
FLOAT_KEYS = {
    "lr": _pos,
    "algo.clip": _pos,
    "algo.gamma": _unit,
    "algo.gae_lambda": _unit,
    "algo.ent_coef": st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
    "algo.max_grad_norm": _pos,
}


def _get(cfg, key):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ints=st.fixed_dictionaries({}, optional=INT_KEYS),
    floats=st.fixed_dictionaries({}, optional=FLOAT_KEYS),
    bools=st.fixed_dictionaries({}, optional={"progress": st.booleans(), "algo.value_norm": st.booleans()}),
)
def test_parsed_config_round_trips(ints, floats, bools):
    items = [f"{k}={v}" for k, v in ints.items()]
    items += [f"{k}={v!r}" for k, v in floats.items()]
    items += [f"{k}={str(v).lower()}" for k, v in bools.items()]
    cfg = config_from_args(items)
    for key, value in {**ints, **floats, **bools}.items():
        got = _get(cfg, key)
        assert got == value and type(got) is type(value), (key, value, got)
    data = to_dict(cfg)
    again = build_config(data)
    assert again == cfg
    assert to_dict(again) == data
    # the dict is plain data (what config.yaml stores) and survives YAML
    assert build_config(yaml.safe_load(yaml.safe_dump(data))) == cfg
    assert dataclasses.is_dataclass(again.algo)


def test_algorithm_and_critic_contradictions_are_rejected():
    """mappo/happo train a centralized (or graph) critic, ippo independent ones: asking for another
    critic is a one-line error naming the algorithm that has it; auto follows the algorithm."""
    assert config_from_args(["algo=ippo"]).critic_kind == "independent"
    assert config_from_args(["algo=mappo"]).critic_kind == "centralized"
    assert config_from_args(["algo=happo"]).critic_kind == "centralized"
    assert config_from_args(["algo=mappo", "critic=graph"]).critic_kind == "graph"
    with pytest.raises(ConfigError, match=r"^algo=mappo trains a centralized or graph critic, not "
                                          r"critic=independent; for an independent critic use algo=ippo$"):
        config_from_args(["algo=mappo", "critic=independent"])
    with pytest.raises(ConfigError, match=r"^algo=ippo trains an independent critic, not critic=centralized; "
                                          r"for a centralized critic use algo=mappo or algo=happo$"):
        config_from_args(["algo=ippo", "critic=centralized"])


def test_algo_section_is_checked_against_the_chosen_algorithms_config():
    cfg = config_from_args(["algo=happo", "algo.team_advantage=false", "algo.epochs=3"])
    assert cfg.algo.name == "happo" and cfg.algo.team_advantage is False and cfg.algo.epochs == 3
    with pytest.raises(ConfigError, match=r"unknown config key 'algo.team_advantage'"):
        config_from_args(["algo=mappo", "algo.team_advantage=false"])
    with pytest.raises(ConfigError, match=r"^the ppo section is now algo .*ppo.epochs -> algo.epochs"):
        config_from_args(["ppo.epochs=3"])
