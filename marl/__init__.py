"""mosaic-marl: agents, critics, PPO (MAPPO/IPPO), training, evaluation and the `marl` CLI."""

__version__ = "0.1.0"
