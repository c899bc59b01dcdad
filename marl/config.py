"""Typed training configs: dataclasses, filled from YAML files and ``key=value`` overrides.

Every key is validated when the config is built: an unknown key names the closest valid ones, a
wrong type or out-of-range value names the key, the value and what would be right. Scenario options
(``n_agents=5``) may be given at top level; they are checked against the chosen scenario.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config key or value that is not valid; the message says what would be."""


# ---- the config sections -------------------------------------------------------------------


@dataclass
class ActorConfig:
    """Decentralized actor: own observation -> encoder (-> GRU) -> action head."""

    hidden: int = 64
    layers: int = 2
    activation: Literal["tanh", "relu"] = "tanh"
    recurrent: bool = False  # a GRU after the encoder, for partial observability
    layer_norm: bool = False  # LayerNorm on the input and after each hidden layer
    # mlp: the observation as one vector; entities: landmarks and other agents as sets pooled by
    # attention (marl/entities.py; scenarios that name their entities, e.g. mpe/simple_spread)
    encoder: Literal["mlp", "entities"] = "mlp"

    def validate(self) -> None:
        _positive(self, "hidden", "layers")


@dataclass
class CriticConfig:
    """``auto`` follows the algorithm: centralized for MAPPO, independent for IPPO. ``graph`` is a
    GNN over the agents' observations with global mean pooling (as InforMARL's critic)."""

    name: Literal["auto", "centralized", "independent", "graph"] = "auto"
    hidden: int = 64
    layers: int = 2
    layer_norm: bool = False
    sharing: str = "full"  # the critic's own sharing scheme (options from the sharing section)
    ensemble: int = 1  # K masked members over one critic; PPO uses their mean (see marl/nets.py)
    diversity: float = 0.5  # diversity between the members' (and agents') masks, as sharing.diversity
    own_obs: bool = False  # centralized critic: V(s, o_i, i), the agent's own observation beside the state

    def validate(self) -> None:
        _positive(self, "hidden", "layers", "ensemble")
        if not self.diversity >= 0:
            raise ConfigError(f"critic.diversity must be >= 0 (got {self.diversity})")
        if self.ensemble > 1 and self.sharing in ("full", "full_id"):
            raise ConfigError(
                f"critic.ensemble={self.ensemble} needs members that differ, but critic.sharing={self.sharing!r} "
                "makes them one network; use critic.sharing=masks (or random_masks, none)"
            )
        if self.ensemble > 1 and self.name == "graph":
            raise ConfigError("critic.ensemble > 1 is not available for the graph critic; "
                              "use centralized or independent")


@dataclass
class SharingConfig:
    """How agents share the actor's weights: ``full`` (one network), ``full_id`` (one network + a
    one-hot agent id), ``none`` (N networks), ``random_masks`` (fixed per-agent masks over one
    network) or ``masks`` (learnable per-agent masks, Kaleidoscope). Batched over agents in all cases."""

    name: str = "full"
    sparsity: float = 0.5  # random_masks: fraction of the shared weights each agent drops
    diversity: float = 0.5  # masks: diversity loss, as a fraction of the main loss (0: off)
    thresholds: Literal["weight", "row"] = "weight"  # masks: a threshold per weight, or per output unit
    reset_interval: int = 200_000  # masks: env steps between resets of weights all agents mask out (0: never)
    reset_prob: float = 0.1  # masks: probability that such a weight is re-initialised at a reset
    threshold_lr_scale: float = 10.0  # masks: the thresholds' learning rate as a multiple of the network's

    def validate(self) -> None:
        for key in ("sparsity", "reset_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"sharing.{key} must be in [0, 1] (got {getattr(self, key)})")
        if self.sparsity == 1.0 and self.name == "random_masks":
            raise ConfigError("sharing.sparsity=1 would mask out every weight; use a value in [0, 1)")
        if not self.diversity >= 0:
            raise ConfigError(f"sharing.diversity must be >= 0 (got {self.diversity})")
        if self.reset_interval < 0:
            raise ConfigError(f"sharing.reset_interval must be >= 0 (got {self.reset_interval})")
        _positive(self, "threshold_lr_scale")


@dataclass
class CommConfig:
    """Communication between actors: a graph (who talks to whom) and GNN rounds over it (how).
    ``graph=none`` means no communication module at all. Graph options (``k``, ``radius``, ``p``,
    ``seed``, ``sparsity``) go to the graphs that accept them; ``options`` to a user's graph."""

    graph: str = "none"
    method: str = ""  # a published scheme as a preset of the keys below (comm/methods.py); keys set here win
    layer: str = "gat"
    rounds: int = 1
    heads: int = 4
    residual: bool = True
    edge_features: bool = True  # relative position and distance on edges, where the graph has them
    k: int = 3  # knn: incoming edges per agent
    radius: float = 1.0  # radius: sensing radius
    p: float = 0.5  # erdos_renyi: edge probability
    seed: int = 0  # erdos_renyi: graph seed
    sparsity: float = 0.4  # learned: k = max(floor(sparsity * N), 1) incoming edges per agent
    graph_lr: float = 1e-4  # learned: the graph's own optimizer
    graph_every: int = 2  # learned: every graph_every-th PPO epoch updates the graph, the others the policy
    freeze_graph_at: float = 1.0  # learned: freeze the graph after this fraction of total_steps
    gating: bool = False  # per-agent gate: does the agent receive (or send, gate_side=send) messages this step
    gate_side: str = "receive"  # receive | send (IC3Net: an agent decides whether it talks)
    gate_cost: float = 0.01  # penalty on the mean gate-open probability
    options: dict = field(default_factory=dict)  # extra options for a user's graph
    # an imperfect channel, applied at evaluation (and in training with channel_in_training):
    channel_drop: float = 0.0  # probability that a message is lost
    channel_noise: float = 0.0  # std of Gaussian noise on the features a sender shares
    channel_delay: bool = False  # messages carry the senders' features of the previous step
    channel_in_training: bool = False

    def validate(self) -> None:
        _positive(self, "rounds", "heads", "graph_lr", "graph_every")
        if self.graph_every < 2:
            raise ConfigError(
                f"comm.graph_every must be >= 2 (got {self.graph_every}): every graph_every-th epoch trains only the "
                "learned graph, so 1 would leave the actor and critic untrained"
            )
        if not 0.0 <= self.channel_drop <= 1.0:
            raise ConfigError(f"comm.channel_drop must be in [0, 1] (got {self.channel_drop})")
        if not self.channel_noise >= 0:
            raise ConfigError(f"comm.channel_noise must be >= 0 (got {self.channel_noise})")
        if self.k < 0:
            raise ConfigError(f"comm.k must be >= 0 (got {self.k}); k larger than N-1 is clamped to N-1")
        if not self.radius >= 0:
            raise ConfigError(f"comm.radius must be >= 0 (got {self.radius})")
        for key in ("p", "sparsity", "freeze_graph_at"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"comm.{key} must be in [0, 1] (got {getattr(self, key)})")
        if not self.gate_cost >= 0:
            raise ConfigError(f"comm.gate_cost must be >= 0 (got {self.gate_cost})")
        if self.gate_side not in ("receive", "send"):
            raise ConfigError(f"comm.gate_side must be receive or send (got {self.gate_side!r})")

    @property
    def enabled(self) -> bool:
        return self.graph != "none" or self.gating


@dataclass
class OpponentsConfig:
    """Fixed opponents, to train a response to a population: the seats of every role but ``learn``
    are played by one of ``players`` (bot names, ``random``, run folders or checkpoint files), drawn
    per episode with ``weights`` (empty: uniform). ``learn`` empty: every seat learns."""

    learn: str = ""
    players: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    greedy: bool = False  # opponents take their most likely action instead of sampling

    def validate(self) -> None:
        if self.learn and not self.players:
            raise ConfigError(f"opponents.learn={self.learn!r} needs opponents.players (bot names, random, "
                              "run folders or checkpoint files)")
        if self.players and not self.learn:
            raise ConfigError("opponents.players needs opponents.learn=ROLE: the role that learns (see "
                              "`marl scenarios` for the roles)")
        if self.weights and len(self.weights) != len(self.players):
            raise ConfigError(f"opponents.weights has {len(self.weights)} entries for {len(self.players)} players")

    @property
    def enabled(self) -> bool:
        return bool(self.learn)


@dataclass
class AlgoConfig:
    """What every algorithm's config has; an algorithm's ``Config`` subclasses this and adds its
    own keys (the ``algo.*`` section; ``algo=NAME`` picks the algorithm)."""

    name: str = "mappo"
    rollout_len: int = 50  # env steps per env between updates

    def validate(self) -> None:
        _positive(self, "rollout_len")


def _default_algo() -> AlgoConfig:
    from marl.algos import algorithm_class

    return algorithm_class("mappo").Config(name="mappo")


@dataclass
class TrainConfig:
    scenario: str = "mpe/simple_spread"
    scenario_args: dict = field(default_factory=dict)  # scenario options, e.g. {n_agents: 5}
    algo: AlgoConfig = field(default_factory=_default_algo)  # algo=NAME, its options as algo.KEY
    seed: int = 0
    total_steps: int = 300_000  # env steps (one step of one env, all its agents)
    num_envs: int = 16
    lr: float = 7e-4
    critic_lr: float | None = None  # defaults to lr
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads; small nets run far slower with more on 2 cores
    compile: bool = False  # torch.compile the update's forward passes and loss (needs a C++ compiler)
    workers: int = 0  # subprocess env workers (0: envs in the training process)
    # env backend: a batched simulator (all envs and agents in tensor ops) or PettingZoo envs; auto takes
    # the batched one where the scenario has it (and workers=0)
    backend: Literal["auto", "batched", "pettingzoo"] = "auto"
    restart_failed_envs: bool = False  # recreate an env that raises mid-rollout, dropping its partial episode
    out: str | None = None  # run folder; default runs/<scenario>-<algo>-<seed>-<time>
    checkpoint_every: int = 200_000  # env steps
    keep_checkpoints: int = 3
    eval_every: int = 0  # env steps between greedy evaluations during training (0: only at the end)
    eval_episodes: int = 20
    resume: bool = False
    wandb: Literal["off", "offline", "online"] = "off"
    wandb_project: str = "mosaic-marl"
    progress: bool = True  # progress bar on a terminal
    plugins: list = field(default_factory=list)  # Python files to import first (user graphs, layers, scenarios)
    preset: str = ""  # a named group of settings under yours (marl/presets.py): fast
    actor: ActorConfig = field(default_factory=ActorConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    sharing: SharingConfig = field(default_factory=SharingConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    opponents: OpponentsConfig = field(default_factory=OpponentsConfig)

    def validate(self) -> None:
        _positive(self, "total_steps", "num_envs", "lr", "eval_episodes", "threads", "keep_checkpoints")
        if self.critic_lr is not None and self.critic_lr <= 0:
            raise ConfigError(f"critic_lr must be > 0 (got {self.critic_lr})")
        for key in ("checkpoint_every", "eval_every", "workers"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0 (got {getattr(self, key)})")
        if self.workers > self.num_envs:
            raise ConfigError(f"workers={self.workers} exceeds num_envs={self.num_envs}")
        if self.backend == "batched" and self.workers:
            raise ConfigError(f"workers={self.workers} applies to backend=pettingzoo only; the batched backend "
                              "steps every env in one process (use workers=0)")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be 'cpu' or 'cuda[:i]' (got {self.device!r})")

    @property
    def critic_kind(self) -> str | None:
        """The critic the algorithm trains (``critic=auto`` resolved), None for one without."""
        from marl.algos import algorithm_class

        return algorithm_class(self.algo.name).critic_kind(self)


# Sections whose "primary" field a scalar sets directly: ``critic=independent``, ``algo=happo``.
PRIMARY_FIELD = {"critic": "name", "comm": "graph", "sharing": "name", "algo": "name"}
# Sections whose dataclass depends on a value: ``algo.*`` is checked against the chosen algorithm's Config.
DYNAMIC_SECTIONS = {"algo": lambda data: _algo_config_class(data.get("name", "mappo"))}


def _algo_config_class(name):
    from marl.algos import algorithm_class

    return algorithm_class(str(name)).Config


# ---- building and validating ----------------------------------------------------------------


def _positive(obj: Any, *keys: str) -> None:
    for key in keys:
        value = getattr(obj, key)
        if not value > 0:  # also rejects NaN
            raise ConfigError(f"{key} must be > 0 (got {value})")


def _all_keys(cls, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            keys += _all_keys(t, prefix + f.name + ".")
            if f.name in PRIMARY_FIELD:
                keys.append(prefix + f.name)
        else:
            keys.append(prefix + f.name)
    return keys


def _coerce(key: str, value: Any, t: Any) -> Any:
    """``value`` as type ``t``, or a ConfigError naming the key and what is expected."""
    origin = typing.get_origin(t)
    if origin is Literal:
        choices = typing.get_args(t)
        if value in choices:
            return value
        if isinstance(value, bool) and key == "wandb":  # wandb=true means the default mode
            return "offline" if value else "off"
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key}={value!r} is not valid.{hint} Valid: {', '.join(map(str, choices))}")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(key, value, args[0])
    if t is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{key}={value!r} is not a boolean (use true or false)")
    if t is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not an integer")
        if isinstance(value, int):
            return value
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} is not an integer") from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{key}={value!r} is not a whole number")
        return int(f)
    if t is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not a number")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} is not a number") from None
        if math.isnan(f):
            raise ConfigError(f"{key}={value!r} is not a number")
        if math.isinf(f):  # lr=inf or clip=1e999 would train on NaNs a few steps later
            raise ConfigError(f"{key}={value!r} is not a finite number")
        return f
    if t is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}={value!r} is not a string")
        return str(value)
    if t is list or origin is list:
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ConfigError(f"{key}={value!r} must be a list (a,b or [a, b])")
        return list(value)
    if t is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r} must be a mapping")
        return dict(value)
    return value


def _build(cls, data: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = prefix + key
        if key not in names:
            valid = _all_keys(cls, prefix)
            close = difflib.get_close_matches(full, valid, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown config key {full!r}.{hint} Valid keys: {', '.join(valid)}")
        t = hints[key]
        if dataclasses.is_dataclass(t):
            if not isinstance(value, dict):
                if key in PRIMARY_FIELD:
                    value = {PRIMARY_FIELD[key]: value}
                else:
                    raise ConfigError(f"{full} is a section; set its keys, "
                                      f"e.g. {full}.{dataclasses.fields(t)[0].name}=...")
            if key in DYNAMIC_SECTIONS and not prefix:
                t = DYNAMIC_SECTIONS[key](value)
            kwargs[key] = _build(t, value, full + ".")
        else:
            kwargs[key] = _coerce(full, value, t)
    obj = cls(**kwargs)
    try:
        obj.validate()
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}" if prefix and not str(exc).startswith(prefix) else str(exc)) from None
    return obj


def parse_value(text: str) -> Any:
    """A command-line value: YAML scalars (``1e-3``, ``true``, ``[1,2]``), else the raw string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def parse_overrides(items: list[str]) -> dict:
    """``["a=1", "ppo.epochs=5"]`` -> ``{"a": 1, "ppo": {"epochs": 5}}``."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r} (e.g. scenario=mpe/simple_spread)")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"empty key in {item!r}")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            existing = node.get(p)
            if existing is not None and not isinstance(existing, dict):
                node[p] = {PRIMARY_FIELD.get(p, "name"): existing}
            node = node.setdefault(p, {})
        last = parts[-1]
        value = parse_value(text)
        if isinstance(node.get(last), dict) and not isinstance(value, dict):
            node[last][PRIMARY_FIELD.get(last, "name")] = value
        else:
            node[last] = value
    return out


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        elif isinstance(out.get(k), dict) and k in PRIMARY_FIELD and not isinstance(v, dict):
            out[k] = {**out[k], PRIMARY_FIELD[k]: v}
        elif isinstance(v, dict) and k in PRIMARY_FIELD and k in out and not isinstance(out[k], dict):
            out[k] = {PRIMARY_FIELD[k]: out[k], **v}  # algo=happo, then algo.epochs=3
        else:
            out[k] = v
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}")
    return data


def build_config(data: dict) -> TrainConfig:
    """A validated TrainConfig. Top-level keys that are not config keys but are options of the
    chosen scenario (``n_agents``) move into ``scenario_args``."""
    import scenarios

    data = dict(data)
    load_plugins(data.get("plugins", []))  # before any name is resolved: plugins may register them
    if "ppo" in data:
        keys = [f"ppo.{k} -> algo.{k}" for k in data["ppo"]] if isinstance(data["ppo"], dict) else []
        raise ConfigError(f"the ppo section is now algo (PPO's options belong to algo=mappo|ippo|happo): "
                          f"{', '.join(keys) or 'use algo.KEY=...'}")
    data = _with_preset(data)
    data = _with_comm_method(data)
    config_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    scenario_name = data.get("scenario", TrainConfig.scenario)
    extra = {k: data.pop(k) for k in list(data) if k not in config_keys}
    if "opponents" in data and not isinstance(data["opponents"], dict):
        # classic/rrps_vs_bots has an option of that name (its bots); the opponents section takes keys
        extra["opponents"] = data.pop("opponents")
    if extra:
        try:
            options = scenarios.spec(str(scenario_name)).overrides
        except scenarios.ScenarioError as exc:
            raise ConfigError(str(exc)) from None
        for key in extra:
            if key not in options:
                valid = _all_keys(TrainConfig)
                close = difflib.get_close_matches(key, valid + list(options), n=3, cutoff=0.6)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise ConfigError(
                    f"unknown config key {key!r}.{hint} Valid keys: {', '.join(valid)}; "
                    f"options of {scenario_name}: {', '.join(options) or 'none'}"
                )
        data["scenario_args"] = {**data.get("scenario_args", {}), **extra}
    cfg = _build(TrainConfig, data)
    try:
        scenarios.check_overrides(cfg.scenario, cfg.scenario_args)
    except scenarios.ScenarioError as exc:
        raise ConfigError(str(exc)) from None
    if cfg.backend == "batched" and not scenarios.spec(cfg.scenario).has_batched:
        batched = [n for n in scenarios.list() if scenarios.spec(n).has_batched]
        raise ConfigError(f"backend=batched: scenario {cfg.scenario!r} has no batched simulator (those with one: "
                          f"{', '.join(batched)}); use backend=pettingzoo or auto")
    if cfg.actor.encoder == "entities" and scenarios.spec(cfg.scenario).entities is None:
        raise ConfigError(entities_missing(cfg.scenario))
    _check_comm_names(cfg)
    _check_sharing_names(cfg)
    from marl.algos import algorithm_class

    algorithm_class(cfg.algo.name).check_config(cfg)
    return cfg


def entities_missing(scenario: str) -> str:
    import scenarios

    have = [n for n in scenarios.list() if scenarios.spec(n).entities is not None]
    return (f"actor.encoder=entities needs a scenario that names the entities in its observations; "
            f"{scenario or 'this scenario'} does not (scenarios that do: {', '.join(have)}; or actor.encoder=mlp)")


def _with_preset(data: dict) -> dict:
    """``preset=NAME``: the preset's keys under the ones the user set (theirs win)."""
    from marl.presets import preset_settings

    if not data.get("preset"):
        return data
    try:
        preset = dict(preset_settings(str(data["preset"])))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    algo = data.get("algo", "mappo")
    name = algo.get("name", "mappo") if isinstance(algo, dict) else algo
    if isinstance(preset.get("algo"), dict):  # a preset's algo.* keys apply to the algorithms that have them
        known = {f.name for f in dataclasses.fields(_algo_config_class(name))}
        preset["algo"] = {k: v for k, v in preset["algo"].items() if k in known}
    return merge(preset, data)


def _with_comm_method(data: dict) -> dict:
    """``comm.method=NAME``: the method's preset under the comm keys the user set (theirs win)."""
    import comm

    section = data.get("comm")
    if not isinstance(section, dict) or not section.get("method"):
        return data
    try:
        preset = comm.method_settings(str(section["method"]))
    except comm.CommError as exc:
        raise ConfigError(str(exc)) from None
    return {**data, "comm": {**preset, **section}}


def load_plugins(paths) -> None:
    """Import the user's plugin files (one-line ConfigError naming a file that fails)."""
    import comm

    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    try:
        for path in paths or []:
            comm.load_plugin(path)
    except comm.CommError as exc:
        raise ConfigError(str(exc)) from None


def _check_sharing_names(cfg: TrainConfig) -> None:
    """Sharing names are checked after ``plugins`` are imported: a user may register a scheme."""
    from marl.sharing import check_sharing_name

    try:
        check_sharing_name("sharing", cfg.sharing.name)
        check_sharing_name("critic.sharing", cfg.critic.sharing)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_comm_names(cfg: TrainConfig) -> None:
    """Check the graph and layer names (after ``plugins`` were imported: they may register some)."""
    import comm

    try:
        if cfg.comm.graph not in comm.GRAPHS:
            raise ConfigError(comm.unknown_name_message("comm.graph", cfg.comm.graph, comm.graph_names()))
        if cfg.comm.enabled or cfg.critic.name == "graph":
            known = set(comm.layer_names()) | set(comm.LAYERS)
            if ":" not in cfg.comm.layer and cfg.comm.layer not in known:
                raise ConfigError(comm.unknown_name_message("comm.layer", cfg.comm.layer, sorted(known)))
    except comm.CommError as exc:
        raise ConfigError(str(exc)) from None


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_args(items: list[str], base: dict | None = None) -> TrainConfig:
    """The CLI path: optional ``config=file.yaml`` first, then ``key=value`` overrides."""
    overrides = parse_overrides(items)
    data = dict(base or {})
    if "config" in overrides:
        data = merge(data, load_yaml(overrides.pop("config")))
    return build_config(merge(data, overrides))
