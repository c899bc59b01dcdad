"""Registers multi-agent MuJoCo tasks (``mamujoco/``): a robot's joints split between agents
(Peng et al. 2021's MaMuJoCo, as maintained in ``gymnasium-robotics``), the continuous,
heterogeneous setting of Kaleidoscope's MATD3 results.

``gymnasium-robotics`` (with ``mujoco``) is optional (the ``mamujoco`` extra): it is imported inside
the factory only; while it is missing these scenarios are not listed and ``make`` says what to install.
The package's env is already a PettingZoo ParallelEnv; the factory only sets the episode length.
"""

from __future__ import annotations

from typing import Any

from scenarios.registry import ScenarioError, register
from scenarios.spec import ScenarioSpec

INSTALL = "pip install 'mosaic-marl[mamujoco]' (in a checkout: pip install -c constraints.txt -e '.[mamujoco]')"


def _mamujoco(robot: str, agent_conf: str, agent_obsk: int = 1, max_cycles: int = 1000):
    try:
        from gymnasium_robotics import mamujoco_v1
    except ImportError as exc:
        raise ScenarioError(f"this scenario needs gymnasium-robotics (and mujoco), which is not installed: "
                            f"{INSTALL}") from exc
    return mamujoco_v1.parallel_env(robot, agent_conf, agent_obsk=agent_obsk, max_episode_steps=max_cycles)


# name, the package's robot, its agent partition, what each agent moves
_TASKS = [
    ("halfcheetah-2x3", "HalfCheetah", "2x3", "2 agents: the back leg's 3 joints and the front leg's 3"),
    ("hopper-3x1", "Hopper", "3x1", "3 agents: thigh, leg and foot, one joint each"),
    ("ant-2x4", "Ant", "2x4", "2 agents: 2 legs (4 joints) each"),
]

for _name, _robot, _conf, _who in _TASKS:
    def _factory(_r: str = _robot, **kwargs: Any):
        return _mamujoco(_r, **kwargs)

    register(
        f"mamujoco/{_name}",
        _factory,
        ScenarioSpec(
            family="mamujoco",
            kind="cooperative",
            description=f"multi-agent MuJoCo {_robot} ({_conf}): {_who}; each agent observes its own joints and "
            "those agent_obsk hops away, and torques its own joints (continuous, Box(-1, 1)). One shared reward "
            "(forward velocity minus control cost); the episode ends when the robot falls (termination, "
            "Hopper and Ant) or at max_cycles (truncation)",
            reward="shared by all agents: the single-agent MuJoCo task's reward (forward progress - control cost "
            "[+ healthy bonus])",
            overrides={"agent_conf": _conf, "agent_obsk": 1, "max_cycles": 1000},
        ),
        requires=("gymnasium_robotics", "mujoco"),
        install=INSTALL,
    )
