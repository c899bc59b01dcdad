"""Scenario registry: pick a PettingZoo scenario by name, with validated overrides.

>>> import scenarios
>>> sc = scenarios.make("mpe/simple_spread", n_agents=5)
>>> env = sc.make_env()
"""

from scenarios.registry import (
    ENTRY_POINT_GROUP,
    ScenarioError,
    check_overrides,
    list,
    make,
    register,
    spec,
    unknown_name_message,
)
from scenarios.spec import EntityGroup, Scenario, ScenarioSpec, role_of

__all__ = [
    "ENTRY_POINT_GROUP",
    "EntityGroup",
    "Scenario",
    "ScenarioError",
    "ScenarioSpec",
    "check_overrides",
    "list",
    "make",
    "register",
    "role_of",
    "spec",
    "unknown_name_message",
]
