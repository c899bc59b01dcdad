"""The scenario registry: ``register(name, factory, spec)``, ``make(name, **overrides)``, ``list()``.

Third-party packages add scenarios through the ``mosaic_marl.scenarios`` entry-point group: each
entry point names a callable that calls :func:`register` (or a module that does so on import).

A scenario whose env comes from an optional package is registered with ``requires=("pkg",)`` and an
``install`` hint: while the package is missing it is left out of :func:`list` (so listings, the
``marl scenarios`` table and tests over every scenario keep working without it), and ``make`` fails
with one line saying what to install.
"""

from __future__ import annotations

import builtins
import difflib
import importlib.util
import sys
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

from scenarios.spec import Scenario, ScenarioSpec

ENTRY_POINT_GROUP = "mosaic_marl.scenarios"

_REGISTRY: dict[str, tuple[Callable[..., Any], ScenarioSpec]] = {}
_PLUGINS_LOADED = False
_PLUGIN_FAILURES: list[str] = []
# name -> (top-level modules the scenario's env needs, how to install them)
_REQUIRES: dict[str, tuple[tuple[str, ...], str]] = {}


class ScenarioError(ValueError):
    """A scenario name or override that does not exist."""


def unknown_name_message(what: str, name: str, choices: Iterable[str]) -> str:
    """One line naming the bad value, the closest valid ones, and the full list."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    # also match on the part after the family prefix: "spread" -> "mpe/simple_spread"
    close += [c for c in choices if name and name in c and c not in close][: 3 - len(close)]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}.{hint} Valid: {', '.join(choices)}"


def register(name: str, factory: Callable[..., Any], spec: ScenarioSpec, *, replace: bool = False,
             requires: Iterable[str] = (), install: str = "") -> None:
    """Add a scenario. ``factory(**overrides)`` must return a PettingZoo ParallelEnv.

    ``requires``: top-level modules of optional packages the factory imports; while one is missing
    the scenario is not listed and ``make`` raises a ScenarioError ending in ``install`` (e.g.
    ``"pip install 'mosaic-marl[epymarl]'"``)."""
    family, _, short = name.partition("/")
    if not family or not short:
        raise ScenarioError(f"scenario names are 'family/name' (got {name!r}), e.g. 'mpe/simple_spread'")
    if name in _REGISTRY and not replace:
        raise ScenarioError(f"scenario {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = (factory, spec)
    requires = tuple(requires)
    if requires:
        _REQUIRES[name] = (requires, install)
    else:
        _REQUIRES.pop(name, None)


def _importable(module: str) -> bool:
    """Whether ``import module`` can find it, without importing it (a ``None`` in sys.modules blocks it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_requirements(name: str) -> builtins.list[str]:
    """The optional modules scenario ``name`` needs that are not installed (empty: it can be made)."""
    modules, _ = _REQUIRES.get(name, ((), ""))
    return [m for m in modules if not _importable(m)]


def requirement_error(name: str) -> ScenarioError | None:
    """The one-line error for a scenario whose optional package is missing; None if it is installed."""
    missing = missing_requirements(name)
    if not missing:
        return None
    install = _REQUIRES[name][1]
    return ScenarioError(f"scenario {name!r} needs the {', '.join(missing)} package"
                         f"{'s' if len(missing) > 1 else ''}, which {'are' if len(missing) > 1 else 'is'} "
                         f"not installed" + (f": {install}" if install else ""))


def _load_plugins() -> None:
    """Built-ins, then every entry-point plugin. A plugin that fails to load is an error naming it
    (raised on every lookup until fixed), but does not stop the other plugins from registering."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        from scenarios import builtin  # noqa: F401  (registers the built-in scenarios)

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj):
                    obj()
            except Exception as exc:
                _PLUGIN_FAILURES.append(f"{ep.name!r} ({ep.value}): {type(exc).__name__}: {exc}")
    if _PLUGIN_FAILURES:
        raise ScenarioError(
            "scenario plugin failed to import: " + "; ".join(_PLUGIN_FAILURES)
            + f" (fix or uninstall the package that declares it in the {ENTRY_POINT_GROUP!r} entry-point group)"
        )


def list() -> builtins.list[str]:  # noqa: A001 - the issue's API name
    """Every registered scenario name that can be made here (its optional packages installed), sorted."""
    _load_plugins()
    return sorted(n for n in _REGISTRY if not missing_requirements(n))


def spec(name: str) -> ScenarioSpec:
    return _lookup(name)[1]


def _lookup(name: str) -> tuple[Callable[..., Any], ScenarioSpec]:
    _load_plugins()
    if name not in _REGISTRY:
        raise ScenarioError(unknown_name_message("scenario", name, _REGISTRY))
    return _REGISTRY[name]


def check_overrides(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``overrides``; an unknown override is an error naming the valid ones."""
    _, sspec = _lookup(name)
    bad = [k for k in overrides if k not in sspec.overrides]
    if bad:
        valid = ", ".join(f"{k} (default {v!r})" for k, v in sspec.overrides.items()) or "none"
        close = difflib.get_close_matches(bad[0], builtins.list(sspec.overrides), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ScenarioError(f"scenario {name!r} has no option {bad[0]!r}.{hint} Valid options: {valid}")
    n_agents = overrides.get("n_agents")
    # checked here, not deep inside the env's constructor (mpe2 fails on a zero-size array)
    if n_agents is not None and (isinstance(n_agents, bool) or not isinstance(n_agents, int) or n_agents < 1):
        raise ScenarioError(f"scenario {name!r}: n_agents must be >= 1 (got {n_agents!r})")
    return {**sspec.overrides, **overrides}


def make(name: str, **overrides: Any) -> Scenario:
    """Make a scenario with ``overrides``; probes one env for its agents and spaces."""
    factory, sspec = _lookup(name)
    merged = check_overrides(name, overrides)
    error = requirement_error(name)
    if error is not None:
        raise error
    try:
        env = factory(**merged)
    except ScenarioError:
        raise
    except Exception as exc:
        raise ScenarioError(f"could not build scenario {name!r} with {overrides}: {type(exc).__name__}: {exc}") from exc
    try:
        agents = tuple(env.possible_agents)
        obs_spaces = {a: env.observation_space(a) for a in agents}
        act_spaces = {a: env.action_space(a) for a in agents}
        length = merged.get("max_cycles")
        if length is None:  # an option left to the env (a difficulty preset): read what the env chose
            length = getattr(env.unwrapped, "max_cycles", None)
    finally:
        env.close()
    return Scenario(
        name=name,
        spec=sspec,
        overrides=merged,
        factory=factory,
        agents=agents,
        observation_spaces=obs_spaces,
        action_spaces=act_spaces,
        episode_length=length,
    )
