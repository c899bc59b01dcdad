"""``compile=true`` runs the batched simulators' step as one torch.compile'd program: it must give what
the eager step gives, bit for bit, through episode ends and auto-resets, for every batched scenario."""

from __future__ import annotations

import shutil
from dataclasses import fields

import pytest
import torch

import scenarios
from envs.factory import make_vector_env

needs_cxx = pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                               reason="torch.compile's CPU kernels need a C++ compiler")
BATCHED = [n for n in scenarios.list() if scenarios.spec(n).batched is not None]


def _outputs(name: str, overrides: dict, compile_: bool, steps: int, num_envs: int = 4):
    env = make_vector_env(scenarios.make(name, **overrides), num_envs, seed=3, backend="batched", compile=compile_)
    assert env.compiled is compile_
    first = env.reset()
    gen = torch.Generator().manual_seed(0)
    outs = [first]
    for _ in range(steps):
        if env.layout.discrete:
            logits = torch.where(torch.as_tensor(env.layout.action_mask), 0.0, -torch.inf)
            actions = torch.multinomial(logits.exp().repeat(num_envs, 1), 1, generator=gen).view(num_envs, -1)
        else:
            low, high = (torch.as_tensor(x, dtype=torch.float32) for x in (env.layout.action_low,
                                                                           env.layout.action_high))
            actions = low + (high - low) * torch.rand(num_envs, *low.shape, generator=gen)
        outs.append(env.step(actions))
    return outs


def _assert_same(eager, compiled) -> None:
    for t, (a, b) in enumerate(zip(eager, compiled)):
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            assert (x is None) == (y is None), (t, f.name)
            if x is not None:
                assert torch.equal(x, y), f"step {t}: {f.name} differs by {(x.double() - y.double()).abs().max()}"


@needs_cxx
@pytest.mark.parametrize("overrides", [{}, {"continuous_actions": True}], ids=["discrete", "continuous"])
def test_compiled_simple_spread_step_equals_the_eager_step_bit_for_bit(overrides):
    eager = _outputs("mpe/simple_spread", overrides, False, steps=60)
    compiled = _outputs("mpe/simple_spread", overrides, True, steps=60)
    assert sum(bool(o.done_env.any()) for o in eager[1:]) == 2  # two episode ends: resets are covered
    _assert_same(eager, compiled)


@pytest.mark.slow  # ~5 s of compilation per scenario
@needs_cxx
@pytest.mark.parametrize("name", [n for n in BATCHED if n != "mpe/simple_spread"])
def test_every_compiled_batched_step_equals_the_eager_step_bit_for_bit(name):
    _assert_same(_outputs(name, {}, False, steps=60), _outputs(name, {}, True, steps=60))


@needs_cxx
def test_compiled_training_repeats_exactly_and_tracks_eager(tmp_path):
    """Same seed, compile=true twice: identical metrics; against eager, the first rollout (before any
    update) is the same bit for bit and the first update's losses agree to float32 round-off."""
    from marl.cli import main
    from tests.test_reliability import BASE, comparable_rows

    # 25-step rollouts: the first one holds whole episodes, collected before any update
    args = [*BASE, "backend=batched", "algo.rollout_len=25", "algo.epochs=2", "total_steps=150", "checkpoint_every=0",
            "seed=5"]
    for name, compile_ in (("a", "true"), ("b", "true"), ("eager", "false")):
        assert main(["train", *args, f"compile={compile_}", f"out={tmp_path / name}"]) == 0
    a, b, eager = (comparable_rows(tmp_path / n) for n in ("a", "b", "eager"))
    assert len(a) == 3 and a == b
    assert a[0]["episodes"] == "2" and a[0]["episode_return_mean"] == eager[0]["episode_return_mean"]
    for key in ("policy_loss", "value_loss", "entropy"):
        assert abs(float(a[0][key]) - float(eager[0][key])) < 1e-4, key
