"""The algorithm registry and interface: every registered algorithm builds from its typed config,
replays what its rollout decided (at identical parameters the probability ratio is 1), and HAPPO's
sequential update moves each agent's own weights only on its own turn."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import comm
import scenarios
from envs import VectorEnv
from marl.algos import ALGORITHMS, EnvInfo, Progress, algo_names, make_algorithm
from marl.algos.happo import AgentAdam
from marl.collector import Collector
from marl.communication import CommInputs
from marl.config import ConfigError, build_config

REPO = Path(__file__).resolve().parents[1]
FEATURES = {
    "plain": {},
    "entity encoder": {"actor": {"encoder": "entities"}},
    "entities+gru+gate": {"actor": {"encoder": "entities", "recurrent": True}, "comm": {"graph": "complete",
                                                                                       "gating": True}},
    "gate": {"comm": {"graph": "complete", "gating": True}},
    "gru+gate": {"actor": {"recurrent": True}, "comm": {"graph": "ring", "gating": True}},
    "delay in training": {"comm": {"graph": "complete", "channel_delay": True, "channel_in_training": True}},
    "gru+delay": {"actor": {"recurrent": True},
                  "comm": {"graph": "complete", "channel_delay": True, "channel_in_training": True}},
    "learned graph": {"comm": {"graph": "learned", "layer": "transformer"}},
    "ic3net (send gate)": {"comm": {"method": "ic3net"}},
    "gru+dgn": {"actor": {"recurrent": True}, "comm": {"method": "dgn", "k": 2}},
    "gru+learned graph": {"actor": {"recurrent": True}, "comm": {"graph": "learned"}},
    "drop+noise in training": {"comm": {"graph": "complete", "channel_drop": 0.3, "channel_noise": 0.5,
                                        "channel_in_training": True}},
    "knn edges, every channel fault": {"comm": {"graph": "knn", "k": 2, "channel_drop": 0.3, "channel_noise": 0.5,
                                                "channel_delay": True, "channel_in_training": True}},
    "gru+gate+every channel fault": {"actor": {"recurrent": True},
                                     "comm": {"graph": "radius", "gating": True, "channel_drop": 0.3,
                                              "channel_noise": 0.5, "channel_delay": True,
                                              "channel_in_training": True}},
}


def _setup(algo: str, extra: dict, sharing: str = "full", E: int = 3, T: int = 12):
    torch.manual_seed(0)
    data = {"scenario": "mpe/simple_spread", "algo": {"name": algo, "epochs": 1, "minibatches": 1},
            "num_envs": E, "sharing": sharing, "actor": {"hidden": 16}, "critic": {"hidden": 16}}
    for k, v in extra.items():
        data[k] = {**data.get(k, {}), **v}
    cfg = build_config(data)
    env = VectorEnv(scenarios.make(cfg.scenario), E, seed=0)
    algo_obj = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    with torch.no_grad():  # sharp policies: a resampled decision would show in the ratio
        for name, p in algo_obj.actor.named_parameters():
            if name.startswith("head") and p.dim() > 1:
                p.mul_(100)
    ro = Collector(env, algo_obj, T, torch.device("cpu")).collect()
    env.close()
    return cfg, algo_obj, ro


def test_the_built_in_algorithms_are_registered_with_their_configs():
    assert {"mappo", "ippo", "happo"} <= set(algo_names())
    for name in ("mappo", "ippo", "happo"):
        cls = ALGORITHMS[name]
        assert cls.name == name and cls.critics and build_config({"algo": name}).algo.name == name
    assert build_config({"algo": "happo"}).algo.team_advantage is True
    with pytest.raises(ConfigError, match=r"^algo='madpg' is not a registered algorithm\. Did you mean 'maddpg'\?.*"
                                          r"Valid: happo, iddpg, ippo, iql, isac, maddpg, mappo, masac, matd3, "
                                          r"qmix, res_qmix, vdn"):
        build_config({"algo": "madpg"})


@pytest.mark.parametrize("feature", list(FEATURES))
@pytest.mark.parametrize("algo", ["mappo", "ippo", "happo"])
def test_replaying_the_rollout_gives_ratio_one_at_identical_parameters(algo, feature):
    """The update's forward pass sees exactly what the rollout saw: stored gate decisions, the
    carry each step started from (delayed channel) or the carry before the rollout (GRU)."""
    _, a, ro = _setup(algo, FEATURES[feature], sharing="none" if algo == "happo" else "full")
    data, _ = a.prepare(ro)
    mb, env_idx = next(iter(a.minibatches(data, ro)))  # the whole rollout, as the update sees it
    with torch.no_grad():
        params, _ = a.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, env_idx)
        logp, _ = a.actor.log_prob_entropy(params, mb.actions)
    if FEATURES[feature].get("comm", {}).get("gating") or "gate" in feature:
        assert 0 < ro.replay["gate"].mean() < 1, "the gates must have sampled both decisions"
    assert (logp - mb.old_logp).abs().max() < 1e-4
    stats = a.update(ro, Progress(0, 1000))
    assert stats["clip_frac"] == 0.0 and abs(stats["approx_kl"]) < 1e-5


@pytest.mark.parametrize("graph", sorted(set(comm.graph_names()) - {"none"}))
@pytest.mark.parametrize("gate_side", ["receive", "send"])
def test_every_graph_with_a_gate_and_a_faulty_channel_replays_exactly(graph, gate_side):
    """Every registered graph, under a gate on either side and every training-time channel fault:
    at identical parameters the update's log-probabilities are the rollout's."""
    extra = {"comm": {"graph": graph, "gating": True, "gate_side": gate_side, "channel_drop": 0.3,
                      "channel_noise": 0.5, "channel_delay": True, "channel_in_training": True, "k": 2}}
    _, a, ro = _setup("mappo", extra)
    data, _ = a.prepare(ro)
    mb, env_idx = next(iter(a.minibatches(data, ro)))
    with torch.no_grad():
        params, _ = a.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, env_idx)
        logp, _ = a.actor.log_prob_entropy(params, mb.actions)
    assert (logp - mb.old_logp).abs().max() < 1e-4


@pytest.mark.parametrize("feature, dropped", [
    ("gate", {"gate"}), ("learned graph", {"graph_noise"}), ("drop+noise in training", {"channel_keep"}),
    ("drop+noise in training", {"channel_noise"}), ("knn edges, every channel fault", {"channel_pos_noise"}),
])
def test_resampling_instead_of_replaying_would_be_caught(feature, dropped):
    """The same check fails when one kind of decision is drawn again: the test above has teeth
    (before the fix, the learned graph and the channel were redrawn in the update: clip_frac 0.26
    and 0.33 at identical parameters)."""
    _, a, ro = _setup("mappo", FEATURES[feature])
    data, _ = a.prepare(ro)
    assert dropped <= set(data.replay), sorted(data.replay)
    data.replay = {k: v for k, v in data.replay.items() if k not in dropped}
    mb, _ = next(iter(a.minibatches(data, ro)))
    with torch.no_grad():
        params, _ = a.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, None)
        logp, _ = a.actor.log_prob_entropy(params, mb.actions)
    assert (logp - mb.old_logp).abs().max() > 1e-2


@pytest.mark.parametrize("feature", ["delay in training", "knn edges, every channel fault"])
def test_the_update_sees_the_delay_and_leaves_the_next_rollouts_carry_alone(feature):
    """A delayed channel is in effect in the update (the stored previous features matter), and the
    update does not touch the carry the next rollout starts from."""
    cfg = build_config({"scenario": "mpe/simple_spread", "algo": {"name": "mappo", "epochs": 2}, "num_envs": 3,
                        "actor": {"hidden": 16}, "critic": {"hidden": 16}, **FEATURES[feature]})
    env = VectorEnv(scenarios.make(cfg.scenario), 3, seed=0)
    torch.manual_seed(0)
    a = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    collector = Collector(env, a, 10, torch.device("cpu"))
    ro = collector.collect()
    data, _ = a.prepare(ro)
    data.carry = {k: torch.zeros_like(v) for k, v in data.carry.items()}  # as if nothing was delayed
    mb, _ = next(iter(a.minibatches(data, ro)))
    with torch.no_grad():
        params, _ = a.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts, None)
        logp, _ = a.actor.log_prob_entropy(params, mb.actions)
    assert (logp - mb.old_logp).abs().max() > 1e-4
    carry = {k: v.clone() for k, v in collector.carry.items()}
    assert set(carry) >= {"comm_previous"}
    a.update(ro, Progress(0, 1000))
    assert all(torch.equal(carry[k], collector.carry[k]) for k in carry)
    env.close()


def test_the_actors_gradient_clip_leaves_the_learned_graph_out():
    """The graph's logits have their own optimizer and clip; the actor's norm is over its own weights."""
    _, a, _ = _setup("mappo", FEATURES["learned graph"])
    logits = a.actor.comm.graph.logits
    assert all(p is not logits for p in a.actor_params)
    assert any(p is logits for group in a.hooks[0].opt.param_groups for p in group["params"])


def test_agent_adam_moves_only_the_agents_own_slice():
    torch.manual_seed(0)
    per_agent, shared = torch.nn.Parameter(torch.randn(3, 4, 2)), torch.nn.Parameter(torch.randn(5))
    opt = AgentAdam([{"params": [per_agent], "per_unit": True}, {"params": [shared], "per_unit": False}], lr=0.1)
    reference = torch.nn.Parameter(per_agent.detach()[1].clone())
    ref_opt = torch.optim.Adam([reference], lr=0.1)
    before = per_agent.detach().clone()
    shared_before = shared.detach().clone()
    for _ in range(3):
        g = torch.randn(3, 4, 2)
        per_agent.grad, shared.grad, reference.grad = g.clone(), torch.randn(5), g[1].clone()
        opt.step(1)
        ref_opt.step()
    assert torch.equal(per_agent.detach()[[0, 2]], before[[0, 2]])
    torch.testing.assert_close(per_agent.detach()[1], reference.detach(), rtol=0, atol=1e-5)
    assert not torch.equal(shared.detach(), shared_before)
    assert opt.state[per_agent]["step"].tolist() == [0.0, 3.0, 0.0]


@pytest.mark.parametrize("sharing", ["none", "masks", "random_masks", "full"])
def test_happo_updates_every_agent_under_each_sharing_scheme(sharing):
    cfg, a, ro = _setup("happo", {"comm": {"graph": "complete"}}, sharing=sharing)
    before = {k: v.detach().clone() for k, v in a.actor.state_dict().items()}
    stats = a.update(ro, Progress(0, 1000))
    after = a.actor.state_dict()
    assert stats and all(math.isfinite(v) for v in stats.values()), stats
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "the update moved no actor weight"
    if sharing == "none":  # every agent's own slice moved (each had its turn)
        w = next(k for k in before if k.endswith("weight") and before[k].dim() == 3)
        assert all(not torch.equal(before[w][i], after[w][i]) for i in range(3))
    assert stats["happo_factor_std"] > 0  # the earlier agents' new policies weigh the later ones'


def test_the_generic_loop_names_no_algorithm_and_tests_no_feature():
    """The trainer and collector work through the Algorithm interface only."""
    for path in ("marl/trainer.py", "marl/collector.py", "marl/algos/base.py", "marl/algos/ppo.py"):
        text = (REPO / path).read_text()
        assert not re.search(r"\bhasattr\((?!self\.env)", text), path
        assert not re.search(r"isinstance\([^)]*(Learned|Gate|Mask|Graph)", text), path
    for name in ("mappo", "ippo", "happo", "PPO"):
        assert not re.search(rf"\b{name}\b", (REPO / "marl/trainer.py").read_text()), name


def test_layouts_compare_by_value():
    """Layouts hold numpy arrays: equal layouts from two probes are ==, another N is not."""
    a = VectorEnv(scenarios.make("mpe/simple_spread"), 1)
    b = VectorEnv(scenarios.make("mpe/simple_spread"), 1)
    c = VectorEnv(scenarios.make("mpe/simple_spread", n_agents=4), 1)
    for env in (a, b, c):
        env.close()
    assert a.layout == b.layout and a.layout is not b.layout and a.layout != c.layout


def test_marl_algos_lists_the_registry(capsys):
    from marl.cli import main

    assert main(["algos"]) == 0
    out = capsys.readouterr().out
    for name in ("mappo", "ippo", "happo"):
        assert re.search(rf"^{name}\s", out, flags=re.M), name
    assert "centralized, graph" in out and "algo.KEY=VALUE" in out
