"""Population-based tournaments: payoff matrices, ratings, cross-play (see ``run.py``)."""

from marl.tournament.backends import BackendError
from marl.tournament.population import PopulationError
from marl.tournament.run import TournamentConfig, TournamentError, run_tournament

# errors caused by the user's input: the CLI prints them as one line (exit 2)
USER_ERRORS = (TournamentError, PopulationError, BackendError)

__all__ = ["USER_ERRORS", "BackendError", "PopulationError", "TournamentConfig", "TournamentError", "run_tournament"]
