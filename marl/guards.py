"""Numerical guards: stop at the first non-finite reward, observation, loss or gradient, naming
where it came from, before anything is written over the last good checkpoint."""

from __future__ import annotations

import torch


class NonFiniteError(RuntimeError):
    """A NaN or infinity in the data or the update; the message says exactly where."""


def check_rollout(ro, agents: tuple[str, ...], env_steps_before: int, scenario: str) -> None:
    """Raise on the first non-finite reward or observation of a rollout ([T, E, N, ...])."""
    T, E = ro.rewards.shape[:2]
    for what, bad in (("observation", ~torch.isfinite(ro.obs).all(-1)), ("reward", ~torch.isfinite(ro.rewards))):
        if bad.any():
            t, e, n = (int(i) for i in torch.nonzero(bad)[0])
            # an observation at t was produced by the step before it; a reward at t by step t itself
            step_t = t - 1 if what == "observation" else t
            action = ro.actions[step_t, e, n].tolist() if step_t >= 0 else "none (first observation of the rollout)"
            raise NonFiniteError(
                f"non-finite {what} from scenario {scenario!r}: env {e}, agent {agents[n]!r}, env step "
                f"{env_steps_before + (max(step_t, 0) + 1) * E:,} (rollout step {step_t + 1} of {T}), last action "
                f"{action}; the run stops here and keeps its last good checkpoint"
            )


def check_loss(stats: dict[str, torch.Tensor], loss: torch.Tensor, epoch: int, minibatch: int) -> None:
    if torch.isfinite(loss):
        return
    terms = [k for k in ("policy_loss", "value_loss", "entropy", "gate_open_prob") if k in stats
             and not torch.isfinite(torch.as_tensor(stats[k]))]
    raise NonFiniteError(
        f"non-finite loss in the PPO update (epoch {epoch}, minibatch {minibatch}): term(s) "
        f"{', '.join(terms) or 'the sum of finite terms overflowed'}; the run stops and keeps its last good checkpoint"
    )


def check_grad(norm: torch.Tensor, which: str, epoch: int, minibatch: int) -> None:
    if not torch.isfinite(norm):
        raise NonFiniteError(
            f"non-finite {which} gradient (norm {float(norm)}) in the PPO update (epoch {epoch}, minibatch "
            f"{minibatch}); the run stops and keeps its last good checkpoint"
        )
