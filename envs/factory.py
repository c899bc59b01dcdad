"""``make_vector_env``: the trainer's one way to get a vector env, batched or PettingZoo-backed.

Both kinds return the same ``EnvOutput`` and expose the same attributes, so callers cannot tell
them apart. ``backend="auto"`` takes the scenario's batched simulator when it has one (marked by
``ScenarioSpec.batched``) and no subprocess workers were asked for (workers only serve PettingZoo
envs).
"""

from __future__ import annotations

import torch

BACKENDS = ("auto", "batched", "pettingzoo")


def resolve_backend(scenario, backend: str = "auto", workers: int = 0) -> str:
    """``"batched"`` or ``"pettingzoo"`` for this scenario, or a ValueError saying why not."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not valid. Valid: {', '.join(BACKENDS)}")
    has_batched = getattr(scenario.spec, "batched", None) is not None
    if backend == "batched":
        if not has_batched:
            raise ValueError(
                f"scenario {scenario.name!r} has no batched simulator (`marl scenarios` marks those that "
                "do); use backend=pettingzoo or backend=auto"
            )
        if workers:
            raise ValueError(f"workers={workers} applies to the pettingzoo backend only; the batched backend "
                             "steps every env in one process (use workers=0)")
        return "batched"
    if backend == "auto" and has_batched and workers == 0:
        return "batched"
    return "pettingzoo"


def make_vector_env(scenario, num_envs: int, seed: int = 0, backend: str = "auto", workers: int = 0,
                    device: str | torch.device = "cpu", restart_failed: bool = False, compile: bool = False):
    """A ``VectorEnv`` over PettingZoo envs or a ``BatchedVectorEnv`` over the scenario's batched
    simulator (on ``device``), chosen by ``backend`` (see :func:`resolve_backend`). ``compile``: a batched
    simulator's step runs as one torch.compile'd program (PettingZoo envs step in Python regardless)."""
    if resolve_backend(scenario, backend, workers) == "batched":
        from envs.batched import BatchedVectorEnv

        sim = scenario.spec.batched(num_envs=num_envs, device=device, **scenario.overrides)
        return BatchedVectorEnv(scenario, sim, seed=seed, compile=compile)
    from envs.vector import VectorEnv

    env = VectorEnv(scenario, num_envs, seed=seed, workers=workers, device=device, restart_failed=restart_failed)
    env.backend = "pettingzoo"
    return env
