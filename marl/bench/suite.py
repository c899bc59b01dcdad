"""Suite files: a grid of training runs with seeds and a step budget, as YAML.

```yaml
name: cooperative-mpe
seeds: [0, 1, 2]
budget: reduced                 # a name from budgets, or a number of env steps
budgets: {reduced: 60000, full: 1000000}
base: {num_envs: 16, eval_every: 20000}        # config keys shared by every run
tasks:                          # the scenarios; statistics are stratified by task
  spread:
    scenario: mpe/simple_spread
    random_score: -26.98        # optional: normalised score 0 (else the runs' own random policy)
    reference_score: -9.15      # optional: normalised score 1 (else the best method on this task)
grid:                           # the methods compared: every combination of these axes
  algo: [mappo, ippo]
  comm.graph: [none, complete]
report: {bootstrap_reps: 10000, bootstrap_seed: 0}
```

Every (task, method, seed) is a cell: one normal training run in its own folder.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from marl.config import PRIMARY_FIELD, ConfigError, build_config, merge


class BenchError(ValueError):
    """A suite file or bench option that is not valid; the message says what would be."""


SUITE_KEYS = ("name", "description", "seeds", "budget", "budgets", "base", "tasks", "grid", "report")
TASK_SCORE_KEYS = ("random_score", "reference_score")
REPORT_KEYS = {"bootstrap_reps": 10000, "bootstrap_seed": 0, "curve_points": 20}
# keys a suite may not set per run: the runner owns them
RUNNER_KEYS = ("out", "resume", "seed", "total_steps", "progress")


@dataclass
class Task:
    name: str
    config: dict  # nested config keys, scenario included
    random_score: float | None = None
    reference_score: float | None = None


@dataclass
class Cell:
    """One training run of the grid."""

    task: str
    method: str  # label of the method's axis values, e.g. "mappo+none"
    seed: int
    config: dict  # the full nested config, without ``out``

    @property
    def name(self) -> str:
        return f"{self.task}__{self.method}__s{self.seed}"


@dataclass
class Suite:
    name: str
    seeds: list[int]
    total_steps: int
    budget: str  # the budget's name, or the number as text
    tasks: dict[str, Task]
    grid: dict[str, list]  # axis (dotted config key) -> values
    base: dict = field(default_factory=dict)
    description: str = ""
    budgets: dict[str, int] = field(default_factory=dict)
    report: dict = field(default_factory=lambda: dict(REPORT_KEYS))
    source: str = ""  # the file it came from

    def methods(self) -> dict[str, dict]:
        """Method label -> {axis: value}, in grid order."""
        axes = list(self.grid)
        out = {}
        for values in itertools.product(*(self.grid[a] for a in axes)):
            out[method_label(values)] = dict(zip(axes, values))
        return out or {"default": {}}

    def cells(self) -> list[Cell]:
        cells = []
        for task in self.tasks.values():
            for label, axes in self.methods().items():
                cfg = merge(merge(nest(self.base), task.config), nest(axes))
                for seed in self.seeds:
                    cells.append(Cell(task.name, label, seed,
                                      {**copy.deepcopy(cfg), "seed": seed, "total_steps": self.total_steps,
                                       "progress": False}))
        return cells

    def to_dict(self) -> dict:
        """The resolved suite (budget and seeds chosen), as written into a bench folder."""
        tasks = {}
        for t in self.tasks.values():
            entry = dict(t.config)
            for key in TASK_SCORE_KEYS:
                if getattr(t, key) is not None:
                    entry[key] = getattr(t, key)
            tasks[t.name] = entry
        return {"name": self.name, "description": self.description, "seeds": self.seeds, "budget": self.budget,
                "budgets": self.budgets, "total_steps": self.total_steps, "base": self.base, "tasks": tasks,
                "grid": self.grid, "report": self.report, "source": self.source}


def method_label(values) -> str:
    """Readable, folder-safe label of one combination of axis values."""
    parts = [re.sub(r"[^A-Za-z0-9.\-]+", "-", str(v)).strip("-") or "x" for v in values]
    return "+".join(parts)


def nest(flat: dict) -> dict:
    """``{"comm.graph": "none", "sharing": "masks"}`` -> nested config dict. A scalar given for a
    section (``sharing: masks``) sets the section's primary field, so it merges with
    ``sharing.diversity`` given elsewhere."""
    out: dict = {}
    for key, value in (flat or {}).items():
        parts = str(key).split(".")
        if isinstance(value, dict):
            value = nest(value)
        elif len(parts) == 1 and parts[0] in PRIMARY_FIELD:
            value = {PRIMARY_FIELD[parts[0]]: value}
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        last = parts[-1]
        node[last] = merge(node[last], value) if isinstance(node.get(last), dict) and isinstance(value, dict) else value
    return out


def _fail(source: str, message: str):
    raise BenchError(f"suite {source}: {message}")


def _check_keys(source: str, where: str, data: dict, valid) -> None:
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(str(key), list(valid), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            _fail(source, f"unknown key {key!r} in {where}.{hint} Valid: {', '.join(valid)}")


def _int_list(source: str, key: str, value) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        _fail(source, f"{key} must be a non-empty list of integers (got {value!r})")
    if len(set(value)) != len(value):
        _fail(source, f"{key} has duplicates: {value!r}")
    return list(value)


def parse_suite(data: Any, source: str = "<suite>", budget: Any = None, seeds: Any = None,
                tasks: Any = None, grid: dict | None = None) -> Suite:
    """A validated Suite from a YAML mapping; ``budget``, ``seeds``, ``tasks`` (a subset of the
    task names) and ``grid`` (axis -> values, for axes the suite has) override the file's."""
    if not isinstance(data, dict):
        _fail(source, f"must hold a mapping of keys, not {type(data).__name__}")
    _check_keys(source, "the suite", data, SUITE_KEYS)
    for key in ("name", "seeds", "tasks"):
        if key not in data:
            _fail(source, f"missing required key {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._\-]+", name):
        _fail(source, f"name must be letters, digits, '.', '_' or '-' (got {name!r})")
    seed_list = _int_list(source, "seeds", data["seeds"] if seeds is None else seeds)

    budgets = data.get("budgets") or {}
    if not isinstance(budgets, dict) or not all(isinstance(v, int) and v > 0 for v in budgets.values()):
        _fail(source, f"budgets must map names to positive env-step counts (got {budgets!r})")
    chosen = data.get("budget") if budget is None else budget
    if chosen is None:
        _fail(source, "missing required key 'budget' (a name from budgets, or env steps)")
    if isinstance(chosen, str) and chosen in budgets:
        total_steps, budget_name = budgets[chosen], chosen
    elif isinstance(chosen, int) and not isinstance(chosen, bool) and chosen > 0:
        total_steps, budget_name = chosen, str(chosen)
    else:
        _fail(source, f"budget {chosen!r} is neither a name in budgets ({', '.join(budgets) or 'none'}) "
                      "nor a positive number of env steps")

    base = data.get("base") or {}
    if not isinstance(base, dict):
        _fail(source, f"base must be a mapping of config keys (got {type(base).__name__})")
    for key in base:
        if str(key).split(".")[0] in RUNNER_KEYS:
            _fail(source, f"base may not set {key!r}: the suite sets it (seeds, budget) or the runner does (out)")

    raw_tasks = data["tasks"]
    if not isinstance(raw_tasks, dict) or not raw_tasks:
        _fail(source, "tasks must be a non-empty mapping: task name -> {scenario: ..., options}")
    task_objs = {}
    for tname, entry in raw_tasks.items():
        if not re.fullmatch(r"[A-Za-z0-9._\-]+", str(tname)):
            _fail(source, f"task name {tname!r} must be letters, digits, '.', '_' or '-'")
        if not isinstance(entry, dict) or "scenario" not in entry:
            _fail(source, f"task {tname!r} needs at least 'scenario: family/name'")
        entry = dict(entry)
        scores = {k: entry.pop(k) for k in TASK_SCORE_KEYS if k in entry}
        for k, v in scores.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                _fail(source, f"task {tname!r}: {k} must be a number (got {v!r})")
        if {"random_score", "reference_score"} <= set(scores) and scores["random_score"] == scores["reference_score"]:
            _fail(source, f"task {tname!r}: random_score and reference_score are equal ({scores['random_score']}); "
                          "normalised scores would divide by zero")
        for key in entry:
            if str(key).split(".")[0] in RUNNER_KEYS:
                _fail(source, f"task {tname!r} may not set {key!r}: the suite sets it (seeds, budget)")
        task_objs[str(tname)] = Task(str(tname), nest(entry), scores.get("random_score"), scores.get("reference_score"))
    if tasks is not None:
        wanted = tasks.split(",") if isinstance(tasks, str) else list(tasks)
        for t in wanted:
            if t not in task_objs:
                _fail(source, f"unknown task {t!r}; tasks in this suite: {', '.join(task_objs)}")
        task_objs = {t: task_objs[t] for t in wanted}

    file_grid = data.get("grid") or {}
    if not isinstance(file_grid, dict):
        _fail(source, f"grid must map config keys to lists of values (got {type(file_grid).__name__})")
    for axis, values in (grid or {}).items():
        if axis not in file_grid:
            _fail(source, f"grid.{axis}: the suite has no axis {axis!r}; its axes: {', '.join(file_grid) or 'none'}")
    grid = {**file_grid, **{k: (v if isinstance(v, list) else [v]) for k, v in (grid or {}).items()}}
    for axis, values in grid.items():
        if str(axis).split(".")[0] in RUNNER_KEYS:
            _fail(source, f"grid axis {axis!r} is not allowed: seeds and budget have their own keys")
        if str(axis) == "scenario":
            _fail(source, "grid axis 'scenario' is not allowed: list scenarios under tasks")
        if not isinstance(values, list) or not values:
            _fail(source, f"grid axis {axis!r} must be a non-empty list of values (got {values!r})")
        if any(isinstance(v, (dict, list)) for v in values):
            _fail(source, f"grid axis {axis!r}: values must be scalars (got {values!r})")
        if len({str(v) for v in values}) != len(values):
            _fail(source, f"grid axis {axis!r} has duplicate values: {values!r}")

    report = dict(REPORT_KEYS)
    raw_report = data.get("report") or {}
    if not isinstance(raw_report, dict):
        _fail(source, "report must be a mapping")
    _check_keys(source, "report", raw_report, REPORT_KEYS)
    report.update(raw_report)
    for key in ("bootstrap_reps", "curve_points"):
        if not isinstance(report[key], int) or report[key] < 2:
            _fail(source, f"report.{key} must be an integer >= 2 (got {report[key]!r})")

    suite = Suite(name=name, seeds=seed_list, total_steps=total_steps, budget=budget_name, tasks=task_objs,
                  grid={str(k): list(v) for k, v in grid.items()}, base=base,
                  description=str(data.get("description", "")),
                  budgets=dict(budgets), report=report, source=source)
    validate_configs(suite)
    return suite


def validate_configs(suite: Suite) -> None:
    """Build every (task, method) config once, so a bad key fails before any run starts."""
    for task in suite.tasks.values():
        for label, axes in suite.methods().items():
            cfg = merge(merge(nest(suite.base), task.config), nest(axes))
            try:
                build_config({**cfg, "seed": suite.seeds[0], "total_steps": suite.total_steps})
            except ConfigError as exc:
                where = f"task {task.name!r}" + (f", method {label!r}" if axes else "")
                _fail(suite.source, f"{where}: {exc}")


def load_suite(path: str | Path, **overrides) -> Suite:
    path = Path(path)
    if not path.is_file():
        found = sorted(p.name for p in Path("suites").glob("*.yaml")) if Path("suites").is_dir() else []
        raise BenchError(f"suite file {str(path)!r} does not exist"
                         + (f"; suites/ holds {', '.join(found)}" if found else ""))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BenchError(f"suite {path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_suite(data, str(path), **overrides)
