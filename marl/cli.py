"""The ``marl`` command line.

    marl scenarios
    marl algos
    marl graphs
    marl train [config=file.yaml] key=value ...
    marl eval RUN_DIR [--episodes 20] [--render] [--n_agents 10]
    marl resume RUN_DIR
    marl tournament scenario=NAME players=RUN_GLOB bots=all episodes=20 [backend=ray] [--resume]
    marl crossplay scenario=NAME teams=RUN_GLOB
    marl bench SUITE.yaml [backend=local|ray] [workers=N] [budget=NAME] [--resume]
    marl report BENCH_DIR
    marl sweep SWEEP.yaml [backend=ray]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from marl.config import ConfigError


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2."""


def cmd_scenarios(args) -> None:
    import scenarios

    rows = [("name", "kind", "agents", "roles", "obs", "actions", "positions", "episode", "batched")]
    for name in scenarios.list():
        sc = scenarios.make(name)
        a = sc.agents[0]
        obs = "mixed" if sc.heterogeneous else _space(sc.observation_spaces[a])
        act = "mixed" if len({repr(s) for s in sc.action_spaces.values()}) > 1 else _space(sc.action_spaces[a])
        roles = (", ".join(f"{r}×{len(m)}" for r, m in sc.teams.items()) if len(sc.teams) <= 3
                 else f"{len(sc.teams)} seats")
        rows.append((name, sc.spec.kind, str(sc.n_agents), roles, obs, act, "yes" if sc.spec.has_positions else "no",
                     str(sc.episode_length or "-"), "yes" if sc.spec.has_batched else "no"))
    _print_table(rows)
    print("\nscenario options (key=value on `marl train`):")
    for name in scenarios.list():
        opts = ", ".join(f"{k}={v}" for k, v in scenarios.spec(name).overrides.items())
        print(f"  {name}: {opts}")


def _space(space) -> str:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)}"
    return type(space).__name__


def _print_table(rows) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def cmd_algos(args) -> None:
    import inspect

    from marl.algos import ALGORITHMS, algo_names
    from marl.config import load_plugins

    load_plugins(args.plugins)
    rows = [("algo", "critics", "actions", "options", "what it is")]
    for name in algo_names():
        cls = ALGORITHMS[name]
        options = [f.name for f in dataclasses.fields(cls.Config) if f.name not in ("name",)]
        doc = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        rows.append((name, ", ".join(cls.critics) or "-", ", ".join(cls.action_spaces), str(len(options)), doc))
    _print_table(rows)
    print("\nchoose with algo=NAME, set its options as algo.KEY=VALUE (docs/configuration.md lists them); "
          "add your own with @register_algorithm in a plugins= file")


def cmd_graphs(args) -> None:
    import inspect

    import comm
    from marl.config import load_plugins

    load_plugins(args.plugins)
    rows = [("graph", "positions", "options", "what it is")]
    for name in comm.graph_names():
        cls = comm.GRAPHS[name]
        params = inspect.signature(cls.__init__).parameters.values()
        opts = ", ".join(f"{p.name}={p.default}" for p in params
                         if p.name not in ("self", "n_agents") and p.default is not inspect.Parameter.empty)
        doc = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        rows.append((name, "needed" if cls.needs_positions else "-", opts or "-", doc))
    _print_table(rows)
    print()
    rows = [("layer", "implementation")]
    for name in comm.layer_names():
        factory = comm.LAYERS[name]
        impl = getattr(factory, "layer_class", None) or getattr(factory, "__doc__", "") or ""
        rows.append((name, impl if isinstance(impl, str) else f"{impl.__module__}.{impl.__qualname__}"))
    _print_table(rows)
    print()
    rows = [("method", "preset", "what it is")]
    for name in comm.method_names():
        method = comm.METHODS[name]
        rows.append((name, " ".join(f"{k}={v}" for k, v in method.settings.items()), method.description))
    _print_table(rows)
    print("\nchoose with comm.method=NAME, or comm.graph=NAME comm.layer=NAME (comm.k, comm.radius, comm.p, comm.seed, "
          "comm.sparsity, comm.options.X set graph options); add your own with plugins=my_graphs.py")


def cmd_train(args) -> None:
    from marl.config import config_from_args
    from marl.trainer import train

    cfg = config_from_args(args.overrides)
    train(cfg)


def cmd_resume(args) -> None:
    from marl.config import build_config, load_yaml, merge, parse_overrides
    from marl.trainer import train

    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        raise UserError(f"{run} is not a run folder (no config.yaml)")
    data = merge(load_yaml(run / "config.yaml"), parse_overrides(args.overrides))
    data.update(out=str(run), resume=True)
    train(build_config(data))


def cmd_eval(args) -> None:
    import torch

    import scenarios
    from marl import checkpoint as ckpt
    from marl.evaluation import evaluate, record_gif
    from marl.policy import load_policy, resolve_checkpoint

    run = Path(args.run)
    path = resolve_checkpoint(args.checkpoint or run)
    channel = {"channel_drop": args.channel_drop, "channel_noise": args.channel_noise,
               "channel_delay": args.channel_delay}
    policy = load_policy(path, comm_overrides=channel)
    cfg = policy.config
    overrides = dict(cfg.scenario_args)
    if args.n_agents is not None:
        overrides["n_agents"] = args.n_agents
    # only the actor acts; its weights do not depend on N when the observation size does not
    # (zero-shot transfer to more agents), while per-agent weights do
    try:
        policy = policy.for_scenario(cfg.scenario, overrides)
    except ckpt.CheckpointError as exc:
        raise UserError(str(exc)) from None
    scenario = scenarios.make(cfg.scenario, **overrides)
    torch.set_num_threads(cfg.threads)
    res = evaluate(scenario, policy.actor, args.episodes, seed=args.seed, deterministic=not args.stochastic)
    rnd = evaluate(scenario, None, args.episodes, seed=args.seed)
    result = {"checkpoint": str(path), "scenario": cfg.scenario, "overrides": overrides, "policy": res.as_dict(),
              "random_policy": rnd.as_dict(), "greedy": not args.stochastic,
              "channel": {"drop": args.channel_drop, "noise": args.channel_noise, "delay": args.channel_delay}}
    print(f"{cfg.scenario} {overrides} checkpoint {path.name}, {args.episodes} episodes")
    print(f"  trained policy: return {res.mean:.2f} ± {res.std:.2f}   (random policy: {rnd.mean:.2f} ± {rnd.std:.2f})")
    if args.render:
        gif = record_gif(scenario, policy.actor, run / "episode.gif", seed=args.seed,
                         deterministic=not args.stochastic)
        result["gif"] = str(gif)
        print(f"  GIF of one episode: {gif}")
    (run / "eval.json").write_text(json.dumps(result, indent=2))


def cmd_tournament(args) -> int:
    from marl.tournament.commands import tournament_command

    return tournament_command(args.overrides, resume=args.resume)


def cmd_crossplay(args) -> int:
    from marl.tournament.commands import crossplay_command

    return crossplay_command(args.overrides)


def cmd_league(args) -> int:
    from marl.league.commands import league_command

    return league_command(args.overrides, resume=args.resume)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="marl", description="mosaic-marl: cooperative multi-agent RL on PettingZoo")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scenarios", help="table of every registered scenario")
    s.set_defaults(func=cmd_scenarios)
    s = sub.add_parser("algos", help="table of registered algorithms")
    s.add_argument("plugins", nargs="*", help="Python files to import first (your own algorithms)")
    s.set_defaults(func=cmd_algos)
    s = sub.add_parser("graphs", help="table of registered communication graphs, GNN layers and methods")
    s.add_argument("--plugins", nargs="*", default=[], help="Python files that register graphs or layers")
    s.set_defaults(func=cmd_graphs)
    s = sub.add_parser("train", help="train with key=value overrides (config=file.yaml for a file)")
    s.add_argument("overrides", nargs="*", metavar="key=value")
    s.set_defaults(func=cmd_train)
    s = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    s.add_argument("run")
    s.add_argument("overrides", nargs="*", metavar="key=value")
    s.set_defaults(func=cmd_resume)
    s = sub.add_parser("eval", help="evaluate a run's latest checkpoint; --render writes a GIF")
    s.add_argument("run")
    s.add_argument("--episodes", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--render", action="store_true")
    s.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the most likely")
    s.add_argument("--checkpoint", default=None, help="a checkpoint file instead of the run's latest")
    s.add_argument("--n_agents", type=int, default=None, help="evaluate zero-shot with another number of agents")
    s.add_argument("--channel-drop", type=float, default=0.0, help="probability that a message is lost")
    s.add_argument("--channel-noise", type=float, default=0.0, help="std of noise on the senders' shared features")
    s.add_argument("--channel-delay", action="store_true", help="messages are one step old")
    s.set_defaults(func=cmd_eval)
    s = sub.add_parser("tournament", help="rank players and bots: payoff matrix, Elo, OpenSkill, Nash, alpha-rank")
    s.add_argument("overrides", nargs="*", metavar="key=value")
    s.add_argument("--resume", action="store_true", help="play only the matches missing from out=FOLDER")
    s.set_defaults(func=cmd_tournament)
    s = sub.add_parser("crossplay", help="cooperative cross-play between independently trained teams")
    s.add_argument("overrides", nargs="*", metavar="key=value")
    s.set_defaults(func=cmd_crossplay)
    s = sub.add_parser("league", help="grow a population: PSRO (meta=nash), fictitious play, self-play")
    s.add_argument("overrides", nargs="*", metavar="key=value")
    s.add_argument("--resume", action="store_true", help="continue the league in out=FOLDER")
    s.set_defaults(func=cmd_league)
    _add_bench_parsers(sub)
    return p


def _add_bench_parsers(sub) -> None:
    from marl.bench import commands

    s = sub.add_parser("bench", help="run a benchmark suite (a grid of runs) and write its report")
    s.add_argument("suite", help="suite file, e.g. suites/cooperative-mpe.yaml")
    s.add_argument("options", nargs="*", metavar="key=value",
                   help="; ".join(f"{k}: {v}" for k, v in commands.BENCH_OPTIONS.items()))
    s.add_argument("--resume", action="store_true", help="run only the cells that have not finished")
    s.set_defaults(func=commands.cmd_bench)
    s = sub.add_parser("report", help="aggregate a bench folder again: report.md, report.json, PNGs")
    s.add_argument("bench_dir")
    s.add_argument("--reps", type=int, default=None, help="bootstrap resamples (default: the suite's)")
    s.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: the suite's)")
    s.set_defaults(func=commands.cmd_report)
    s = sub.add_parser("sweep", help="hyperparameter search with Ray Tune (ASHA early stopping)")
    s.add_argument("sweep_file", help="sweep file, e.g. suites/sweep-lr.yaml")
    s.add_argument("options", nargs="*", metavar="key=value", help="backend=ray, num_samples=N, out=DIR, ...")
    s.set_defaults(func=commands.cmd_sweep)


def main(argv: list[str] | None = None) -> int:
    import scenarios
    from comm import CommError
    from envs import SpaceError
    from marl.bench import BenchError
    from marl.checkpoint import CheckpointError
    from marl.guards import NonFiniteError
    from marl.league import USER_ERRORS as LEAGUE_ERRORS
    from marl.tournament import USER_ERRORS as TOURNAMENT_ERRORS
    from marl.trainer import RunSetupError

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (UserError, ConfigError, BenchError, scenarios.ScenarioError, CheckpointError, RunSetupError, SpaceError,
            CommError, NonFiniteError, *TOURNAMENT_ERRORS, *LEAGUE_ERRORS) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the latest checkpoint and metrics.csv are kept", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
