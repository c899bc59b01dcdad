"""What ``marl league`` does (cli.py only parses and dispatches here)."""

from __future__ import annotations

from marl.config import parse_overrides
from marl.league.loop import LeagueError, config_from_items, run_league
from marl.league.opponents import OpponentError


def league_command(items: list[str], resume: bool = False) -> int:
    try:
        state = run_league(config_from_items(parse_overrides(items)), resume=resume)
    except OpponentError as exc:
        raise LeagueError(str(exc)) from None
    for row in state["generations"]:
        print(f"  generation {row['generation']}: NashConv of the mixture trained against "
              f"{row['nash_conv_trained_against']:.4g}, of the meta-strategy {row['nash_conv']:.4g}")
    print(f"league: {state['out']}  report: {state['report']}")
    return 0
