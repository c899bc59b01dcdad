"""PettingZoo's module-level constructors for one of our ParallelEnv classes, so tools written for
PettingZoo's own env modules (``pettingzoo.test.max_cycles_test(module)``) take ours too."""

from __future__ import annotations


def pettingzoo_constructors(cls):
    """``(parallel_env, raw_env, env)`` for ``cls``: the ParallelEnv itself, its AEC version
    unwrapped, and its AEC version with PettingZoo's order enforcing."""

    def parallel_env(**kwargs):
        return cls(**kwargs)

    def raw_env(**kwargs):
        from pettingzoo.utils.conversions import parallel_to_aec_wrapper

        return parallel_to_aec_wrapper(cls(**kwargs))

    def env(**kwargs):
        from pettingzoo.utils.conversions import parallel_to_aec

        return parallel_to_aec(cls(**kwargs))

    return parallel_env, raw_env, env
