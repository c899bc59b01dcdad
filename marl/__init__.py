"""mosaic-marl: cooperative multi-agent RL on PettingZoo scenarios, with communication graphs,
partial parameter sharing, registered algorithms (MAPPO, IPPO, HAPPO, ...) and tournaments.

The Python API::

    import marl
    run_dir = marl.train(scenario="mpe/simple_spread", algo="mappo", total_steps=200_000)
    policy = marl.load_policy(run_dir)
    result = marl.evaluate(policy, episodes=20)      # on the scenario it was trained on
"""

from __future__ import annotations

__version__ = "0.1.0"


def train(config: str | None = None, **overrides):
    """Train and return the run folder. ``config``: an optional YAML file; ``overrides``: any config
    keys, nested ones as dicts or dotted strings (``**{"algo.epochs": 5}``), scenario options at top
    level (``n_agents=5``). Bad keys or values raise ``marl.config.ConfigError`` (one line)."""
    from marl.config import build_config, load_yaml, merge, parse_overrides
    from marl.trainer import train as run

    data = load_yaml(config) if config else {}
    dotted = {k: v for k, v in overrides.items() if "." in k}
    plain = {k: v for k, v in overrides.items() if "." not in k}
    data = merge(merge(data, plain), parse_overrides([f"{k}={_text(v)}" for k, v in dotted.items()]))
    return run(build_config(data))


def _text(value) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def load_policy(path, **kwargs):
    """The actor of a checkpoint file or a run folder's latest checkpoint (``marl.policy.load_policy``)."""
    from marl.policy import load_policy as load

    return load(path, **kwargs)


def evaluate(policy, scenario: str | None = None, episodes: int = 20, seed: int = 0, deterministic: bool = True,
             **scenario_overrides):
    """Whole episodes of ``policy`` (from :func:`load_policy`; None plays uniformly random actions) on
    ``scenario`` (default: the one it was trained on, with its options; ``scenario_overrides`` change
    them, e.g. ``n_agents=6``). Returns ``EvalResult`` (``.mean``, ``.std``, ``.returns``)."""
    import scenarios
    from marl.evaluation import evaluate as run

    if scenario is None:
        if policy is None:
            raise ValueError("evaluate(None) plays random actions on a scenario: pass scenario=NAME")
        scenario = policy.scenario
        scenario_overrides = {**policy.scenario_args, **scenario_overrides}
    actor = None if policy is None else policy.for_scenario(scenario, scenario_overrides).actor
    return run(scenarios.make(scenario, **scenario_overrides), actor, episodes, seed=seed, deterministic=deterministic)
