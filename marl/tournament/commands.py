"""What ``marl tournament`` and ``marl crossplay`` do (cli.py only parses and dispatches here)."""

from __future__ import annotations

from marl.config import parse_overrides
from marl.tournament.run import TournamentError, config_from_items, run_tournament


def tournament_command(items: list[str], resume: bool = False) -> int:
    import sys

    cfg = config_from_items(parse_overrides(items))
    summary = run_tournament(cfg, resume=resume)
    top = summary["ratings"][:5]
    print(f"{summary['played']} matches played, {summary['skipped']} already stored, "
          f"{len(summary['failed'])} failed; {summary['matches']} in all ({summary['wall_s']:.1f}s)")
    for k, r in enumerate(top, 1):
        print(f"  {k}. {r['player']:<24} Elo {r['elo']:7.1f}  Nash skill {r['nash_skill']:8.3g}  "
              f"avg return {r['avg_return']:8.3g}")
    print(f"report: {summary['report']}")
    if summary["failed"]:
        print(f"error: {len(summary['failed'])} matches failed after retries: "
              + ", ".join(f["key"] for f in summary["failed"]) + " (see failures.jsonl; --resume retries them)",
              file=sys.stderr)
        return 1
    return 0


def crossplay_command(items: list[str]) -> int:
    import scenarios
    from marl.tournament.crossplay import run_crossplay

    args = parse_overrides(items)
    settings = {"scenario", "teams", "episodes", "seed", "greedy", "backend", "workers", "address", "out",
                "retries"}
    if "scenario" not in args:
        raise TournamentError("crossplay needs scenario=NAME and teams=RUN_DIRS")
    rest = {k: v for k, v in args.items() if k not in settings}
    if rest:
        try:
            scenarios.check_overrides(args["scenario"], rest)
        except scenarios.ScenarioError as exc:
            raise TournamentError(f"{exc}; crossplay settings: {', '.join(sorted(settings))}") from None
    kwargs = {k: v for k, v in args.items() if k in settings}
    kwargs.setdefault("out", "crossplay-" + args["scenario"].replace("/", "-"))
    try:
        summary = run_crossplay(overrides=rest, **kwargs)
    except ValueError as exc:
        raise TournamentError(str(exc)) from None
    print(f"{args['scenario']}: self-play {summary['self_play']:.3f}, cross-play {summary['cross_play']:.3f}, "
          f"gap {summary['gap']:.3f}  ({len(summary['teams'])} teams) -> {summary.get('out')}")
    return 1 if summary["failed"] else 0
