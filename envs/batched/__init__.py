"""Batched simulators: E envs x N agents stepped at once with tensor operations.

``base.BatchedSim`` is the interface (one module per scenario implements it), ``vector.BatchedVectorEnv``
presents a simulator to the trainer exactly as ``envs.VectorEnv`` presents PettingZoo envs, and
``parallel.BatchedParallelEnv`` shows one env of it as a PettingZoo ParallelEnv.
"""

from envs.batched.base import BatchedSim
from envs.batched.parallel import BatchedParallelEnv
from envs.batched.vector import BatchedVectorEnv

__all__ = ["BatchedParallelEnv", "BatchedSim", "BatchedVectorEnv"]
