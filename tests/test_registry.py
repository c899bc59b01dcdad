"""The scenario registry: built-ins, overrides, specs, errors, user and third-party registration."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

import scenarios
from envs.scripted import ScriptedEnv
from scenarios import ScenarioError, ScenarioSpec

BUILTINS = [
    "mpe/simple",
    "mpe/simple_spread",
    "mpe/simple_reference",
    "mpe/simple_speaker_listener",
    "mpe/simple_tag",
    "mpe/simple_adversary",
    "mpe/simple_push",
    "mpe/simple_world_comm",
    "mpe/simple_crypto",
    "sisl/pursuit",
    "sisl/multiwalker",
    "butterfly/cooperative_pong",
    "butterfly/pistonball",
    "classic/rps",
    "debug/scripted",
]


def _user_spec(**overrides) -> ScenarioSpec:
    return ScenarioSpec(
        family="user",
        kind="cooperative",
        description="a scripted env registered by a test",
        reward="(i + 1) * reward_scale",
        overrides={"n_agents": 2, "reward_scale": 1.0, **overrides},
    )


def _user_factory(n_agents: int = 2, reward_scale: float = 1.0, render_mode=None):
    return ScriptedEnv(n_agents=n_agents, max_cycles=4, reward_scale=reward_scale, render_mode=render_mode)


# ---- listing and making built-ins -----------------------------------------------------------


def test_list_contains_every_builtin_sorted_and_unique():
    names = scenarios.list()
    missing = [n for n in BUILTINS if n not in names]
    assert not missing, f"built-ins missing from scenarios.list(): {missing}"
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert all("/" in n for n in names)


def test_make_with_override_changes_agent_count():
    default = scenarios.make("mpe/simple_spread")
    five = scenarios.make("mpe/simple_spread", n_agents=5)
    assert default.n_agents == 3
    assert five.n_agents == 5
    assert len(five.agents) == 5 == len(five.observation_spaces) == len(five.action_spaces)
    assert five.overrides["n_agents"] == 5
    # the override reaches the envs the scenario builds, not only the probe
    env = five.make_env()
    try:
        obs, _ = env.reset(seed=1)
        assert sorted(obs) == sorted(five.agents)
        assert len(env.possible_agents) == 5
    finally:
        env.close()
    # observation length grows with the number of other agents and landmarks
    assert five.observation_spaces[five.agents[0]].shape[0] > default.observation_spaces[default.agents[0]].shape[0]


def test_make_merges_defaults_with_overrides():
    sc = scenarios.make("debug/scripted", max_cycles=7)
    spec = scenarios.spec("debug/scripted")
    assert sc.overrides == {**spec.overrides, "max_cycles": 7}
    assert sc.episode_length == 7


def test_spec_fields_of_builtins():
    spread = scenarios.spec("mpe/simple_spread")
    assert spread.family == "mpe"
    assert spread.kind == "cooperative"
    assert spread.has_positions
    assert "n_agents" in spread.overrides
    assert spread.description and spread.reward

    assert scenarios.spec("sisl/multiwalker").has_positions is False
    assert scenarios.spec("classic/rps").kind == "competitive"
    assert scenarios.spec("mpe/simple_tag").kind == "mixed"
    for name in scenarios.list():
        assert scenarios.spec(name).family == name.split("/")[0]
        assert scenarios.spec(name).kind in ("cooperative", "competitive", "mixed")


def test_simple_tag_teams_and_roles():
    sc = scenarios.make("mpe/simple_tag")
    teams = sc.teams
    assert set(teams) == {"adversary", "agent"}
    assert len(teams["adversary"]) == 3
    assert len(teams["agent"]) == 1
    assert all(a.startswith("adversary_") for a in teams["adversary"])
    assert sc.heterogeneous  # predators and prey observe different things
    more = scenarios.make("mpe/simple_tag", num_adversaries=2, num_good=2)
    assert {r: len(m) for r, m in more.teams.items()} == {"adversary": 2, "agent": 2}


def test_role_of_default_rule():
    assert scenarios.role_of("adversary_0") == "adversary"
    assert scenarios.role_of("leadadversary_12") == "leadadversary"
    assert scenarios.role_of("player") == "player"
    assert scenarios.role_of("agent_x") == "agent_x"


def test_homogeneous_scenario_is_not_heterogeneous():
    sc = scenarios.make("mpe/simple_spread")
    assert not sc.heterogeneous
    assert list(sc.teams) == ["agent"]


def test_positions_callable_reads_live_env():
    sc = scenarios.make("mpe/simple_spread", n_agents=4)
    env = sc.make_env()
    try:
        env.reset(seed=3)
        pos = sc.spec.positions(env.unwrapped)
        assert pos.shape == (4, 2)
    finally:
        env.close()


# ---- errors ----------------------------------------------------------------------------------


def test_unknown_name_names_closest_and_lists_all():
    with pytest.raises(ScenarioError) as info:
        scenarios.make("mpe/simple_sprad")
    msg = str(info.value)
    assert "mpe/simple_sprad" in msg
    assert "Did you mean" in msg and "'mpe/simple_spread'" in msg.split("Valid:")[0]
    listed = msg.split("Valid:")[1]
    for name in scenarios.list():
        assert name in listed


def test_unknown_name_matches_suffix_without_family():
    with pytest.raises(ScenarioError, match="mpe/simple_spread") as info:
        scenarios.spec("spread")
    assert "Did you mean" in str(info.value)


def test_unknown_name_message_is_one_line():
    with pytest.raises(ScenarioError) as info:
        scenarios.make("nope/nothing")
    assert "\n" not in str(info.value)


def test_bad_override_names_valid_options():
    with pytest.raises(ScenarioError) as info:
        scenarios.make("mpe/simple_spread", n_agent=5)
    msg = str(info.value)
    assert "'n_agent'" in msg
    assert "Did you mean 'n_agents'" in msg
    for option in scenarios.spec("mpe/simple_spread").overrides:
        assert option in msg.split("Valid options:")[1]


def test_check_overrides_returns_merged_defaults():
    merged = scenarios.check_overrides("mpe/simple_spread", {"n_agents": 6})
    assert merged["n_agents"] == 6
    assert merged["max_cycles"] == scenarios.spec("mpe/simple_spread").overrides["max_cycles"]
    with pytest.raises(ScenarioError, match="Valid options"):
        scenarios.check_overrides("classic/rps", {"n_agents": 3})


def test_factory_failure_becomes_scenario_error(isolated_registry):
    with pytest.raises(ScenarioError, match="debug/scripted") as info:
        scenarios.make("debug/scripted", n_agents=0)  # rejected before the factory runs
    assert "n_agents must be >= 1" in str(info.value)

    def failing_factory(**kw):
        raise RuntimeError("no simulator licence")

    scenarios.register("user/failing", failing_factory, _user_spec())
    with pytest.raises(ScenarioError, match=r"could not build scenario 'user/failing' with \{\}: RuntimeError: no "
                                            r"simulator licence"):
        scenarios.make("user/failing")


# ---- user registration ----------------------------------------------------------------------


def test_register_user_scenario_and_make_it(isolated_registry):
    scenarios.register("user/scripted", _user_factory, _user_spec())
    assert "user/scripted" in scenarios.list()
    sc = scenarios.make("user/scripted", n_agents=3, reward_scale=2.0)
    assert sc.n_agents == 3
    assert sc.spec.family == "user"
    env = sc.make_env()
    env.reset(seed=0)
    _, rewards, *_ = env.step({a: 0 for a in env.agents})
    assert rewards == {"agent_0": 2.0, "agent_1": 4.0, "agent_2": 6.0}
    with pytest.raises(ScenarioError, match="Did you mean 'reward_scale'"):
        scenarios.make("user/scripted", reward_scal=1.0)


@pytest.mark.parametrize("name", ["scripted", "simple_spread", ""])
def test_name_without_family_separator_is_rejected(isolated_registry, name):
    with pytest.raises(ScenarioError, match="family/name"):
        scenarios.register(name, _user_factory, _user_spec())
    assert name not in scenarios.list()


@pytest.mark.parametrize("name", ["/scripted", "user/"])
def test_name_with_empty_family_or_empty_name_is_rejected(isolated_registry, name):
    with pytest.raises(ScenarioError):
        scenarios.register(name, _user_factory, _user_spec())


def test_duplicate_registration_rejected_unless_replace(isolated_registry):
    scenarios.register("user/dup", _user_factory, _user_spec())
    with pytest.raises(ScenarioError, match="already registered"):
        scenarios.register("user/dup", _user_factory, _user_spec(reward_scale=5.0))
    assert scenarios.spec("user/dup").overrides["reward_scale"] == 1.0  # the first one is kept
    scenarios.register("user/dup", _user_factory, _user_spec(reward_scale=5.0), replace=True)
    assert scenarios.spec("user/dup").overrides["reward_scale"] == 5.0
    # a built-in cannot be overwritten by accident either
    with pytest.raises(ScenarioError, match="already registered"):
        scenarios.register("mpe/simple_spread", _user_factory, _user_spec())


# ---- third-party plugins through the entry-point group --------------------------------------

PLUGIN_MODULE = '''
from envs.scripted import ScriptedEnv
from scenarios import ScenarioSpec, register

CALLS = []


def factory(n_agents=2, render_mode=None):
    return ScriptedEnv(n_agents=n_agents, max_cycles=3, render_mode=render_mode)


def register_all():
    CALLS.append(1)
    register(
        "thirdparty/echo",
        factory,
        ScenarioSpec(family="thirdparty", kind="cooperative", description="plugin", reward="scripted",
                     overrides={"n_agents": 2}),
        replace=True,
    )
'''

PLUGIN_ON_IMPORT = '''
from envs.scripted import ScriptedEnv
from scenarios import ScenarioSpec, register

register(
    "thirdparty/on_import",
    lambda n_agents=4, render_mode=None: ScriptedEnv(n_agents=n_agents),
    ScenarioSpec(family="thirdparty", kind="mixed", description="registers on import", reward="scripted",
                 overrides={"n_agents": 4}),
    replace=True,
)
'''


def _write_dist(root, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    """A minimal installed distribution: ``<dist>-0.1.dist-info`` with METADATA and entry_points.txt."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)


@pytest.fixture
def plugin_path(tmp_path, monkeypatch, isolated_registry):
    """A folder on sys.path for fake installed distributions; registry reloads plugins on next use."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(isolated_registry, "_PLUGINS_LOADED", False)
    monkeypatch.setattr(isolated_registry, "_PLUGIN_FAILURES", [])
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("mosaic_test_plugin")]:
        del sys.modules[mod]


def test_entry_point_plugin_registers_scenarios(plugin_path):
    _write_dist(
        plugin_path,
        "mosaic_test_plugin_dist",
        f"""\
        [{scenarios.ENTRY_POINT_GROUP}]
        echo = mosaic_test_plugin_fn:register_all
        on_import = mosaic_test_plugin_mod
        """,
        {"mosaic_test_plugin_fn": PLUGIN_MODULE, "mosaic_test_plugin_mod": PLUGIN_ON_IMPORT},
    )
    importlib.invalidate_caches()
    names = scenarios.list()
    assert "thirdparty/echo" in names  # callable entry point was called
    assert "thirdparty/on_import" in names  # module entry point registered on import
    assert all(b in names for b in BUILTINS)  # built-ins still there
    sc = scenarios.make("thirdparty/echo", n_agents=3)
    assert sc.n_agents == 3 and sc.episode_length == 3  # no max_cycles option: read off the env itself
    assert scenarios.make("thirdparty/on_import").n_agents == 4
    # plugins are loaded once, not on every call
    scenarios.list()
    scenarios.make("thirdparty/echo")
    assert sys.modules["mosaic_test_plugin_fn"].CALLS == [1]


def test_broken_entry_point_plugin_gives_scenario_error_naming_it(plugin_path):
    _write_dist(
        plugin_path,
        "mosaic_test_plugin_broken",
        f"""\
        [{scenarios.ENTRY_POINT_GROUP}]
        broken = mosaic_test_plugin_missing_module:register_all
        """,
        {},
    )
    importlib.invalidate_caches()
    with pytest.raises(ScenarioError) as info:
        scenarios.list()
    assert "broken" in str(info.value)
    assert "mosaic_test_plugin_missing_module" in str(info.value)
    with pytest.raises(ScenarioError, match="broken"):  # still an error on the next lookup, not silence
        scenarios.make("mpe/simple_spread")
