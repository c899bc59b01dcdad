"""The boundary with PettingZoo: batched tensors with an agent axis, and envs of our own."""

from envs.group import EnvStepError
from envs.layout import Layout, SpaceError
from envs.vector import EnvOutput, VectorEnv

__all__ = ["EnvOutput", "EnvStepError", "Layout", "SpaceError", "VectorEnv"]
