"""Built-in scenarios: the mpe2 family, sisl, butterfly and classic rock-paper-scissors.

Each factory translates our override names (``n_agents``) into the env's own arguments and returns a
PettingZoo ParallelEnv. Imports happen inside the factories so that listing scenarios stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from scenarios.registry import register
from scenarios.spec import EntityGroup, ScenarioSpec

MPE_REWARD_SHARED = "per agent; cooperative reward mixes a shared term and a local one (local_ratio)"


def mpe_positions(env) -> np.ndarray:
    """Agent positions [N, 2] in the order of ``possible_agents``."""
    return np.stack([agent.state.p_pos for agent in env.unwrapped.world.agents])


def mpe_pixels(env, positions: np.ndarray) -> np.ndarray:
    """Where mpe2's renderer draws world points: it zooms so the farthest entity stays in view."""
    raw = env.unwrapped
    cam = np.max(np.abs(np.array([e.state.p_pos for e in raw.world.entities])))
    x = (positions[:, 0] / cam) * raw.width // 2 * 0.9 + raw.width // 2
    y = (-positions[:, 1] / cam) * raw.height // 2 * 0.9 + raw.height // 2
    return np.stack([x, y], axis=-1)


def _mpe(module: str, **rename: str):
    """Factory for ``mpe2.<module>``; ``rename`` maps our override names to the env's keywords."""

    def factory(**kwargs: Any):
        mod = importlib.import_module(f"mpe2.{module}")
        args = {rename.get(k, k): v for k, v in kwargs.items()}
        return mod.parallel_env(**args)

    return factory


_MPE_COMMON = {"max_cycles": 25, "continuous_actions": False}


def spread_entities(overrides: dict[str, Any]) -> tuple[EntityGroup, ...]:
    """simple_spread's observation: own velocity and position (4), the N landmarks' and the N - 1
    other agents' positions relative to the agent, then the others' utterances (zero: they are silent)."""
    n = int(overrides["n_agents"])
    return (EntityGroup("landmarks", 4, n, 2), EntityGroup("agents", 4 + 2 * n, n - 1, 2),
            EntityGroup("utterances", 4 + 4 * n - 2, n - 1, 2, position=False, skip=True))


_ENTITIES = {"simple_spread": spread_entities}


def _batched(module: str, cls: str):
    """A lazy constructor of ``envs.batched.<module>.<cls>`` (imported on first use)."""

    def make(**kwargs: Any):
        return getattr(importlib.import_module(f"envs.batched.{module}"), cls)(**kwargs)

    return make


# scenarios with a batched simulator (envs/batched/): name -> (module, class)
_BATCHED = {
    "simple_spread": ("simple_spread", "SimpleSpreadSim"),
    "simple_reference": ("simple_reference", "SimpleReferenceSim"),
    "simple_speaker_listener": ("simple_speaker_listener", "SimpleSpeakerListenerSim"),
    "simple_tag": ("simple_tag", "SimpleTagSim"),
}

_MPE = [
    # name, module, kind, description, reward, extra overrides, renames
    ("simple", "simple_v3", "cooperative", "one agent reaches one landmark",
     "negative squared distance to the landmark", {}, {}),
    ("simple_spread", "simple_spread_v3", "cooperative", "N agents cover N landmarks without colliding",
     "per agent: local_ratio * (-collisions) + (1 - local_ratio) * "
     "(-sum over landmarks of the closest agent's distance)",
     {"n_agents": 3, "local_ratio": 0.5}, {"n_agents": "N"}),
    ("simple_reference", "simple_reference_v3", "cooperative",
     "2 agents each guide the other to a goal landmark only the speaker knows (needs communication)",
     MPE_REWARD_SHARED, {"local_ratio": 0.5}, {}),
    ("simple_speaker_listener", "simple_speaker_listener_v4", "cooperative",
     "a static speaker tells a moving listener which landmark to reach (heterogeneous roles)",
     "shared: negative squared distance of the listener to the target", {}, {}),
    ("simple_tag", "simple_tag_v3", "mixed", "predators (adversaries) chase faster prey (agents) around obstacles",
     "adversaries +10 per collision with prey; prey -10 per collision and a boundary penalty",
     {"num_good": 1, "num_adversaries": 3, "num_obstacles": 2}, {}),
    ("simple_adversary", "simple_adversary_v3", "mixed", "good agents hide the target landmark from one adversary",
     "good: -distance of closest good agent to target + adversary's distance; adversary: -its distance",
     {"n_agents": 2}, {"n_agents": "N"}),
    ("simple_push", "simple_push_v3", "mixed", "an adversary pushes the agent away from its landmark",
     "agent: -distance to landmark; adversary: agent's distance - its own distance", {}, {}),
    ("simple_world_comm", "simple_world_comm_v3", "mixed",
     "a leader adversary coordinates others to catch good agents that seek food, with forests",
     "as simple_tag plus food rewards for good agents",
     {"num_good": 2, "num_adversaries": 4, "num_obstacles": 1, "num_food": 2, "num_forests": 2}, {}),
    ("simple_crypto", "simple_crypto_v3", "competitive",
     "Alice sends Bob an encrypted message with a shared key; Eve tries to decode it",
     "Alice/Bob: -Bob's error + Eve's error; Eve: -her error", {}, {}),
]

for _name, _module, _kind, _desc, _reward, _extra, _rename in _MPE:
    register(
        f"mpe/{_name}",
        _mpe(_module, **_rename),
        ScenarioSpec(
            family="mpe",
            kind=_kind,
            description=_desc,
            reward=_reward,
            overrides={**_extra, **_MPE_COMMON},
            positions=mpe_positions,
            render_extent=1.0,
            pixels=mpe_pixels,
            batched=_batched(*_BATCHED[_name]) if _name in _BATCHED else None,
            entities=_ENTITIES.get(_name),
        ),
    )


# --- sisl --------------------------------------------------------------------------------------


def _pursuit(**kwargs: Any):
    from pettingzoo.sisl import pursuit_v5

    kwargs["n_pursuers"] = kwargs.pop("n_agents")
    return pursuit_v5.parallel_env(**kwargs)


def _pursuit_positions(env) -> np.ndarray:
    layer = env.unwrapped.env.pursuer_layer  # noqa: SLF001
    return np.array([layer.get_position(i) for i in range(layer.n_agents())], dtype=np.float32)


register(
    "sisl/pursuit",
    _pursuit,
    ScenarioSpec(
        family="sisl",
        kind="cooperative",
        description="pursuers on a grid surround and catch random evaders; 7x7x3 local views",
        reward="per agent: +catch_reward shared among the catchers, +tag_reward, urgency penalty each step",
        overrides={"n_agents": 8, "n_evaders": 30, "max_cycles": 500, "shared_reward": True},
        positions=_pursuit_positions,
    ),
)


def _multiwalker(**kwargs: Any):
    from pettingzoo.sisl import multiwalker_v9

    kwargs["n_walkers"] = kwargs.pop("n_agents")
    return multiwalker_v9.parallel_env(**kwargs)


register(
    "sisl/multiwalker",
    _multiwalker,
    ScenarioSpec(
        family="sisl",
        kind="cooperative",
        description="bipedal walkers carry a package together; continuous torques (Box(4))",
        reward="forward progress of the package; -100 if it falls (shared when shared_reward)",
        overrides={"n_agents": 3, "max_cycles": 500, "shared_reward": True},
        global_state="obs",  # its state() raises once a walker has fallen and been removed
    ),
)


# --- butterfly (pixel observations, downscaled to grey obs_size x obs_size) ---------------------


def _downscaled(env, obs_size: int):
    import supersuit as ss

    env = ss.color_reduction_v0(env, mode="full")
    return ss.resize_v1(env, obs_size, obs_size)


def _cooperative_pong(obs_size: int, **kwargs: Any):
    from pettingzoo.butterfly import cooperative_pong_v6

    return _downscaled(cooperative_pong_v6.parallel_env(**kwargs), obs_size)


def _pistonball(obs_size: int, n_agents: int, **kwargs: Any):
    from pettingzoo.butterfly import pistonball_v6

    return _downscaled(pistonball_v6.parallel_env(n_pistons=n_agents, **kwargs), obs_size)


register(
    "butterfly/cooperative_pong",
    _cooperative_pong,
    ScenarioSpec(
        family="butterfly",
        kind="cooperative",
        description="two paddles keep a ball in play; pixel views downscaled to obs_size^2 grey",
        reward="shared: +max_reward/max_cycles per step the ball stays in; off_screen_penalty when it leaves",
        overrides={"max_cycles": 900, "obs_size": 32},
        global_state="obs",  # state() is the full-size frame
    ),
)
register(
    "butterfly/pistonball",
    _pistonball,
    ScenarioSpec(
        family="butterfly",
        kind="cooperative",
        description="pistons move a ball to the left wall; pixel views downscaled to obs_size^2 grey",
        reward="mix of a global term (ball's progress) and a local one, plus a time penalty",
        overrides={"n_agents": 20, "max_cycles": 125, "continuous": True, "obs_size": 32},
        global_state="obs",  # state() is the full-size frame (1.5M values)
    ),
)


# --- classic -----------------------------------------------------------------------------------


def _rps(**kwargs: Any):
    from pettingzoo.classic import rps_v2

    return rps_v2.parallel_env(**kwargs)


register(
    "classic/rps",
    _rps,
    ScenarioSpec(
        family="classic",
        kind="competitive",
        description="rock-paper-scissors for max_cycles throws; each player sees the opponent's last throw",
        reward="zero-sum: +1 win, -1 loss, 0 tie per throw",
        overrides={"max_cycles": 15, "num_actions": 3},
        role=lambda agent: agent,  # one seat per player
    ),
)


# --- debug -------------------------------------------------------------------------------------


def _scripted(**kwargs: Any):
    from envs.scripted import ScriptedEnv

    return ScriptedEnv(**kwargs)


register(
    "debug/scripted",
    _scripted,
    ScenarioSpec(
        family="debug",
        kind="cooperative",
        description="tiny deterministic env with known rewards, for checking bootstrapping and leaving agents",
        reward="agent i gets (i + 1) * reward_scale every step it acts",
        overrides={"n_agents": 2, "max_cycles": 5, "terminate_at": None, "leave_at": None, "reward_scale": 1.0,
                   "n_actions": 3},
        positions=lambda env: np.stack(
            [np.arange(len(env.possible_agents)), np.full(len(env.possible_agents), env.t)], 1),
    ),
)


# --- nav (our own InforMARL-style navigation) ----------------------------------------------------


def _navigation(**kwargs: Any):
    from envs.navigation import NavigationEnv

    return NavigationEnv(**kwargs)


def _navigation_positions(env) -> np.ndarray:
    return env.agent_positions()


register(
    "nav/navigation",
    _navigation,
    ScenarioSpec(
        family="nav",
        kind="cooperative",
        description="N agents each reach their own goal around optional obstacles; each senses only within "
        "sensing_radius (K nearest agents/obstacles), so the observation size does not depend on N",
        reward="per agent: -0.1 * distance to own goal, +0.1 each step on the goal, -0.5 per collision "
        "(agent or obstacle); the mean of these with shared_reward",
        overrides={"n_agents": 3, "n_obstacles": 0, "sensing_radius": 1.0, "max_neighbours": 3, "max_cycles": 50,
                   "continuous_actions": False, "world_size": None, "terminate_on_success": False,
                   "shared_reward": False},
        positions=_navigation_positions,
        # the world is [-W, W]^2 with W = max(1, sqrt(N / 3)) unless world_size is given: 1 at the default
        # N=3; a live env's own extent is env.unwrapped.render_extent
        render_extent=1.0,
        pixels=lambda env, positions: env.unwrapped.to_pixels(positions),
        batched=_batched("navigation", "NavigationSim"),
    ),
)

from scenarios import benchmarks_epymarl as _epymarl  # noqa: E402,F401  (lbf/*, rware/*: optional packages)
from scenarios import benchmarks_mamujoco as _mamujoco  # noqa: E402,F401  (mamujoco/*: an optional package)
from scenarios import hidden_goal as _hidden_goal  # noqa: E402,F401  (comm/hidden_goal)
from scenarios import predator_prey as _predator_prey  # noqa: E402,F401  (comm/predator_prey)
from scenarios import rrps as _rrps_scenarios  # noqa: E402,F401  (classic/rrps, classic/rrps_vs_bots)
from scenarios import traffic_junction as _traffic_junction  # noqa: E402,F401  (comm/traffic_junction)
