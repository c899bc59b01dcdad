"""The boundary with PettingZoo: batched tensors with an agent axis, and envs of our own."""

from envs.factory import BACKENDS, make_vector_env
from envs.group import EnvStepError
from envs.layout import Layout, SpaceError
from envs.vector import EnvOutput, VectorEnv

__all__ = ["BACKENDS", "EnvOutput", "EnvStepError", "Layout", "SpaceError", "VectorEnv", "make_vector_env"]
