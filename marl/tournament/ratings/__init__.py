"""Rating methods, each in its own module: payoff results in, one score per player out."""

from marl.tournament.ratings.alpharank import alpharank
from marl.tournament.ratings.elo import fit_elo
from marl.tournament.ratings.nash import agent_vs_task, nash_averaging
from marl.tournament.ratings.openskill_rating import fit_openskill
from marl.tournament.ratings.population_metrics import population_metrics

__all__ = ["agent_vs_task", "alpharank", "fit_elo", "fit_openskill", "nash_averaging", "population_metrics"]
