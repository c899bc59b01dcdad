"""The shortcuts that make CPU training fast compute what the plain code would: the sigmoid-based
tanh, the centralized critic's state projection done once per env, the rollout's values taken in
one batched pass, the unshuffled full batch, and the allocator setting."""

from __future__ import annotations

import pytest
import torch

import scenarios
from envs.factory import make_vector_env
from marl import runtime
from marl.algos import EnvInfo, Progress, make_algorithm
from marl.collector import Collector
from marl.communication import CommInputs
from marl.config import build_config
from marl.nets import CentralizedCritic, Tanh, with_ids


def test_sigmoid_tanh_matches_torch_tanh_values_and_gradients():
    x = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    assert torch.allclose(Tanh()(x.float()).double(), torch.tanh(x), atol=2e-7, rtol=0)
    xs = x[::500].clone().requires_grad_()
    assert torch.autograd.gradcheck(Tanh(), (xs,))
    ours, = torch.autograd.grad(Tanh()(xs).sum(), xs)
    ref, = torch.autograd.grad(torch.tanh(xs).sum(), xs)
    assert torch.allclose(ours, ref, atol=1e-12)


def test_sigmoid_tanh_without_grad_gives_the_same_values():
    x = torch.randn(64, 32, requires_grad=True)
    with torch.no_grad():
        plain = Tanh()(x)
    assert torch.equal(plain, Tanh()(x).detach())


def test_factored_centralized_critic_equals_the_per_agent_input_form():
    torch.manual_seed(0)
    critic = CentralizedCritic(state_dim=10, n_agents=4, hidden=16, layers=2).double()
    state = torch.randn(7, 5, 10, dtype=torch.float64, requires_grad=True)
    factored = critic.members(None, state)
    per_agent = with_ids(state.unsqueeze(-2).expand(7, 5, 4, 10), critic.ids.double())
    plain = critic.out(critic.body(per_agent)).squeeze(-1).unsqueeze(-2)
    assert factored.shape == (7, 5, 1, 4)
    assert torch.allclose(factored, plain, atol=1e-12)
    g_fact = torch.autograd.grad(factored.sum(), [state, *critic.parameters()])
    g_plain = torch.autograd.grad(plain.sum(), [state, *critic.parameters()])
    for a, b in zip(g_fact, g_plain):
        assert torch.allclose(a, b, atol=1e-10)


def _learner_and_collector(minibatches: int = 1):
    cfg = build_config({"scenario": "mpe/simple_spread", "num_envs": 4, "seed": 0,
                        "algo": {"rollout_len": 30, "epochs": 2, "minibatches": minibatches}})
    env = make_vector_env(scenarios.make("mpe/simple_spread"), 4, seed=0, backend="batched")
    torch.manual_seed(0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    return learner, Collector(env, learner, cfg.algo.rollout_len, torch.device("cpu"))


def _update(learner, ro) -> dict[str, float]:
    return learner.update(ro, Progress(0, learner.cfg.total_steps))


def test_rollout_values_taken_in_one_pass_equal_step_by_step_values():
    learner, collector = _learner_and_collector()
    ro = collector.collect()
    last = ro.final["last_values"]
    for t in range(ro.obs.shape[0]):
        step = learner.value(ro.obs[t], ro.state[t], CommInputs(None, ro.alive[t]))
        assert torch.allclose(ro.values[t], step, atol=1e-5), t
    assert torch.allclose(last, learner.value(collector.out.obs, collector.out.state,
                                              CommInputs(None, collector.out.alive)))


def test_full_batch_update_draws_no_random_numbers_and_minibatches_do():
    for minibatches, draws in ((1, False), (2, True)):
        learner, collector = _learner_and_collector(minibatches)
        ro = collector.collect()
        before = torch.get_rng_state()
        _update(learner, ro)
        assert (not torch.equal(before, torch.get_rng_state())) == draws, minibatches


def test_allocator_keeps_freed_memory_on_glibc_linux():
    import platform
    import sys

    expected = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert runtime.keep_freed_memory() == expected


def _has_cxx() -> bool:
    import shutil

    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.skipif(not _has_cxx(), reason="compile=true needs a C++ compiler for torch.compile's CPU kernels")
def test_compiled_update_matches_eager_and_repeats_exactly():
    def updated(compile_: bool) -> tuple[list[torch.Tensor], dict]:
        cfg = build_config({"scenario": "mpe/simple_spread", "num_envs": 4, "seed": 0, "compile": compile_,
                            "algo": {"rollout_len": 20, "epochs": 3}})
        env = make_vector_env(scenarios.make("mpe/simple_spread"), 4, seed=0, backend="batched")
        torch.manual_seed(0)
        learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
        ro = Collector(env, learner, cfg.algo.rollout_len, torch.device("cpu")).collect()
        stats = _update(learner, ro)
        return [p.detach().clone() for p in learner.parameters()], stats

    eager, eager_stats = updated(False)
    compiled, compiled_stats = updated(True)
    again, _ = updated(True)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(eager, compiled))
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        assert abs(eager_stats[key] - compiled_stats[key]) < 1e-4, key
    assert all(torch.equal(a, b) for a, b in zip(compiled, again))
    # the update moved the weights: the comparison above is not between untouched initialisations
    torch.manual_seed(0)
    cfg = build_config({"scenario": "mpe/simple_spread", "num_envs": 4, "seed": 0})
    env = make_vector_env(scenarios.make("mpe/simple_spread"), 4, seed=0, backend="batched")
    initial = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    assert any(not torch.allclose(a, b) for a, b in zip(initial.parameters(), eager))


def _update_edge_count(learner, ro) -> int:
    """The messages of the update's forward pass: one minibatch of all T x E steps, as in
    PPO.minibatch_loss (the actor's aux is not kept by the update, so the pass is taken again)."""
    flat = lambda x: x.flatten(0, 1)  # noqa: E731
    with torch.no_grad():
        _, _, aux = learner.actor(flat(ro.obs), {k: flat(v) for k, v in ro.carry.items()},
                                  CommInputs(flat(ro.positions), flat(ro.alive)),
                                  {k: flat(v) for k, v in ro.replay.items()})
    return int(aux.edges.num_edges)


@pytest.mark.slow  # ~45 s of compilation
@pytest.mark.skipif(not _has_cxx(), reason="compile=true needs a C++ compiler for torch.compile's CPU kernels")
def test_compile_with_a_radius_graph_stops_recompiling_when_edge_counts_change():
    from torch._dynamo.utils import counters

    cfg = build_config({"scenario": "mpe/simple_spread", "num_envs": 4, "seed": 0, "compile": True,
                        "comm": {"graph": "radius", "layer": "gat"}, "algo": {"rollout_len": 10, "epochs": 1}})
    env = make_vector_env(scenarios.make("mpe/simple_spread"), 4, seed=0, backend="batched")
    torch.manual_seed(0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, "mpe/simple_spread"))
    collector = Collector(env, learner, cfg.algo.rollout_len, torch.device("cpu"))
    graphs, edge_counts = [], set()
    for _ in range(6):
        ro = collector.collect()
        _update(learner, ro)
        edge_counts.add(_update_edge_count(learner, ro))
        graphs.append(counters["stats"]["unique_graphs"])
    assert len(edge_counts) > 1  # the shapes did change between updates
    # ... and once torch.compile has marked them dynamic (by the 4th update here) nothing more compiles;
    # with dynamic=False every update recompiled until torch gave up at its recompile limit
    assert graphs[-1] == graphs[-3], graphs


def test_factored_critic_with_the_agents_own_observation_equals_the_concatenated_input():
    torch.manual_seed(0)
    critic = CentralizedCritic(state_dim=10, n_agents=4, hidden=16, layers=2, obs_dim=6).double()
    state = torch.randn(7, 5, 10, dtype=torch.float64)
    obs = torch.randn(7, 5, 4, 6, dtype=torch.float64)
    factored = critic.members(obs, state)
    inputs = torch.cat([state.unsqueeze(-2).expand(7, 5, 4, 10), obs], dim=-1)
    plain = critic.out(critic.body(with_ids(inputs, critic.ids.double()))).squeeze(-1).unsqueeze(-2)
    assert torch.allclose(factored, plain, atol=1e-12)
    # each agent's value reads its own observation: changing agent 2's moves only its value
    moved = obs.clone()
    moved[..., 2, :] += 1.0
    changed = (critic.members(moved, state) - factored).abs().squeeze(-2) > 1e-9
    assert changed[..., 2].all() and not changed[..., [0, 1, 3]].any()
