"""Partial parameter sharing: full / full_id / none / random_masks / masks (Kaleidoscope)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from envs.layout import Layout
from marl import sharing
from marl.algos import EnvInfo, Progress, make_algorithm
from marl.config import ConfigError, build_config
from marl.nets import Actor, AgentGRUCell, CentralizedCritic, IndependentCritic
from marl.policy import _build as build_policy_actor
from marl.sharing import AgentLinear, SharingSpec
from marl.trainer import train

N, OBS, ACTIONS = 4, 6, 5


def layout(n=N) -> Layout:
    import gymnasium as gym

    agents = [f"agent_{i}" for i in range(n)]
    obs = {a: gym.spaces.Box(-1, 1, (OBS,)) for a in agents}
    act = {a: gym.spaces.Discrete(ACTIONS) for a in agents}
    return Layout.from_spaces(agents, obs, act)


def actor(name: str, n=N, recurrent=False) -> Actor:
    torch.manual_seed(0)
    return Actor(layout(n), hidden=16, layers=2, recurrent=recurrent, sharing=SharingSpec(name, n))


def per_agent_linear(layer: AgentLinear, x: torch.Tensor) -> torch.Tensor:
    """Reference: each agent through its own weight, written out per scheme, one agent at a time."""
    W, b = layer.weight, layer.bias
    outs = []
    for i in range(layer.units):
        if isinstance(layer.scheme, sharing.NoSharing):
            Wi, bi = W[i], b[i]
        elif isinstance(layer.scheme, sharing.RandomMasks):
            Wi, bi = W * layer.scheme.binary[i] * layer.scheme.scale, b
        else:
            Wi, bi = torch.sign(W) * torch.clamp(W.abs() - torch.sigmoid(layer.scheme.thresholds[i]), min=0), b
        outs.append(F.linear(x[:, i], Wi, bi))
    return torch.stack(outs, 1)


# ---- the schemes' defining properties ---------------------------------------------------------


def test_full_gives_identical_outputs_for_identical_inputs_and_full_id_does_not():
    obs = torch.randn(3, 1, OBS).expand(3, N, OBS)
    logits, _, _ = actor("full")(obs)
    assert torch.equal(logits, logits[:, :1].expand_as(logits))
    logits_id, _, _ = actor("full_id")(obs)
    assert not torch.allclose(logits_id[:, 0], logits_id[:, 1])


@pytest.mark.parametrize("name", ["none", "random_masks", "masks"])
def test_per_agent_schemes_differ_across_agents_for_identical_inputs(name):
    obs = torch.randn(3, 1, OBS).expand(3, N, OBS)
    net = actor(name)
    with torch.no_grad():  # masks start almost dense: push agents apart so their weights differ
        for _, layer in sharing.masked_layers(net):
            layer.scheme.thresholds[1].fill_(-1.5)
    h = net.body(obs)
    assert not torch.allclose(h[:, 0], h[:, 1])


def test_none_keeps_agents_parameters_independent():
    net = actor("none")
    obs = torch.randn(5, N, OBS)
    logits, _, _ = net(obs)
    logits[:, 2].pow(2).sum().backward()  # a loss of agent 2 only
    layers = sharing.agent_layers(net)
    assert len(layers) == 3  # two hidden layers and the head
    for _, layer in layers:
        for p in (layer.weight, layer.bias):
            assert p.grad[2].abs().sum() > 0
            others = torch.cat([p.grad[:2], p.grad[3:]])
            assert torch.equal(others, torch.zeros_like(others))


def test_masks_gradient_reaches_shared_weights_and_thresholds():
    net = actor("masks")
    logits, _, _ = net(torch.randn(5, N, OBS))
    logits.pow(2).sum().backward()
    for _, layer in sharing.masked_layers(net):
        assert layer.weight.grad.abs().sum() > 0
        assert layer.scheme.thresholds.grad.abs().sum() > 0
        assert all(layer.scheme.thresholds.grad[i].abs().sum() > 0 for i in range(N))


@pytest.mark.parametrize("name", ["none", "random_masks", "masks"])
@pytest.mark.parametrize("thresholds", ["weight", "row"])
def test_batched_forward_equals_a_per_agent_loop(name, thresholds):
    torch.manual_seed(1)
    layer = AgentLinear(7, 9, SharingSpec(name, N, sparsity=0.3, thresholds=thresholds), gain=1.0)
    if name == "masks":  # thresholds that actually cut weights, different per agent
        with torch.no_grad():
            layer.scheme.thresholds.copy_(torch.randn_like(layer.scheme.thresholds) - 2.0)
    x = torch.randn(11, N, 7)
    torch.testing.assert_close(layer(x), per_agent_linear(layer, x), atol=1e-6, rtol=0)
    # extra leading axes ([T, E, N, F]) are the same computation
    torch.testing.assert_close(layer(x.view(11, 1, N, 7)).view(11, N, 9), layer(x), atol=1e-6, rtol=0)


def test_random_masks_drop_the_requested_fraction_and_are_fixed():
    layer = AgentLinear(64, 64, SharingSpec("random_masks", N, sparsity=0.3), gain=1.0)
    density = layer.mask().mean().item()
    assert abs(density - 0.7) < 0.02
    assert not any(p is layer.scheme.binary for p in layer.parameters())  # a buffer: never trained
    assert "scheme.binary" in layer.state_dict()  # but saved with the model


def test_masks_start_almost_dense_in_every_layer_including_the_small_gain_head():
    net = actor("masks")
    for name, layer in sharing.masked_layers(net):
        assert layer.mask().mean() > 0.95, name


def test_agent_gru_cell_is_the_gru_equations():
    torch.manual_seed(0)
    ref = nn.GRUCell(5, 8)
    cell = AgentGRUCell(5, 8, SharingSpec("none", 3))
    with torch.no_grad():  # every agent gets the reference weights
        cell.ih.weight.copy_(ref.weight_ih.expand(3, -1, -1))
        cell.ih.bias.copy_(ref.bias_ih.expand(3, -1))
        cell.hh.weight.copy_(ref.weight_hh.expand(3, -1, -1))
        cell.hh.bias.copy_(ref.bias_hh.expand(3, -1))
    x, h = torch.randn(4, 3, 5), torch.randn(4, 3, 8)
    expected = ref(x.reshape(-1, 5), h.reshape(-1, 8)).view(4, 3, 8)
    torch.testing.assert_close(cell(x, h), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["full", "full_id", "none", "random_masks", "masks"])
def test_every_scheme_keeps_actors_decentralized(name):
    net = actor(name, recurrent=True)
    obs = torch.randn(2, N, OBS)
    carry = net.initial_carry((2, N))
    before, _, _ = net(obs, carry)
    changed = obs.clone()
    changed[:, 3] += 1.0
    after, _, _ = net(changed, carry)
    assert torch.equal(before[:, :3], after[:, :3])
    assert not torch.equal(before[:, 3], after[:, 3])


# ---- diversity and resets ----------------------------------------------------------------------


def mean_offdiag(m: torch.Tensor) -> float:
    n = m.shape[0]
    return float((m.sum() - m.diagonal().sum()) / (n * (n - 1)))


def test_optimising_the_diversity_loss_alone_lowers_mask_overlap():
    torch.manual_seed(0)
    net = nn.Sequential(AgentLinear(16, 32, SharingSpec("masks", N), 2**0.5), nn.Tanh(),
                        AgentLinear(32, 32, SharingSpec("masks", N), 2**0.5))
    start = mean_offdiag(sharing.mask_overlap(net))
    weights = [layer.weight.detach().clone() for _, layer in sharing.masked_layers(net)]
    opt = torch.optim.Adam([layer.scheme.thresholds for _, layer in sharing.masked_layers(net)], lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        sharing.diversity_loss(net).backward()
        opt.step()
    end = mean_offdiag(sharing.mask_overlap(net))
    assert start > 0.97
    assert end < start - 0.1, (start, end)
    for w, (_, layer) in zip(weights, sharing.masked_layers(net)):  # W is detached in the loss
        assert torch.equal(w, layer.weight.detach())


def test_scaled_diversity_is_a_fixed_fraction_of_the_main_loss():
    main = torch.tensor(3.0)
    div = torch.tensor(-0.002, requires_grad=True)
    term = sharing.scaled_diversity(main, div, 0.5)
    assert term.item() == pytest.approx(-1.5)
    term.backward()
    assert div.grad.item() == pytest.approx(0.5 * 3.0 / 0.002)


def test_reset_touches_only_weights_masked_out_for_every_agent():
    torch.manual_seed(0)
    layer = AgentLinear(8, 8, SharingSpec("masks", 3), gain=1.0)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(-0.8, 0.8, 64).view(8, 8))
        s = layer.scheme.thresholds
        s.fill_(-10.0)  # nothing masked ...
        s[:, :2, :] = 5.0  # ... rows 0-1: masked out for every agent
        s[0, 2:4, :] = 5.0  # rows 2-3: masked out for agent 0 only
    dead = (layer.mask() == 0).all(0)
    assert dead[:2].all() and not dead[2:].any()
    w0, s0 = layer.weight.detach().clone(), layer.scheme.thresholds.detach().clone()
    count = layer.reset_dead_weights(prob=1.0)
    assert count == 16
    changed_w = layer.weight.detach() != w0
    assert changed_w[:2].all() and not changed_w[2:].any()
    changed_s = layer.scheme.thresholds.detach() != s0
    assert changed_s[:, :2].all() and not changed_s[:, 2:].any()
    assert layer.mask()[:, :2].mean() > 0.8  # re-sampled thresholds: the weights are back in use


def test_reset_with_probability_resets_about_that_fraction():
    torch.manual_seed(0)
    layer = AgentLinear(64, 64, SharingSpec("masks", 2), gain=1.0)
    with torch.no_grad():
        layer.scheme.thresholds.fill_(5.0)  # everything masked for everyone
    assert 300 < layer.reset_dead_weights(prob=0.1) < 520  # ~410 of 4096


# ---- critics and the learner --------------------------------------------------------------------


def test_critic_ensemble_members_differ_and_forward_is_their_mean():
    torch.manual_seed(0)
    critic = CentralizedCritic(10, N, hidden=16, sharing=SharingSpec("masks", 3 * N), ensemble=3)
    with torch.no_grad():
        for _, layer in sharing.masked_layers(critic):
            layer.scheme.thresholds[N:2 * N].fill_(-1.0)  # member 1 drops a lot
    state = torch.randn(5, 10)
    members = critic.members(None, state)
    assert members.shape == (5, 3, N)
    assert not torch.allclose(members[:, 0], members[:, 1])
    torch.testing.assert_close(critic(None, state), members.mean(1))
    independent = IndependentCritic(OBS, hidden=16, sharing=SharingSpec("none", 2 * N), ensemble=2, n_agents=N)
    assert independent.members(torch.randn(5, N, OBS), None).shape == (5, 2, N)


def small_config(**extra):
    base = {"scenario": "mpe/simple_spread", "total_steps": 1600, "num_envs": 4, "progress": False,
            "eval_episodes": 2, "actor": {"hidden": 16}, "critic": {"hidden": 16}, "algo": {"epochs": 2}}
    return build_config({**base, **extra})


def _algo(cfg, lay: Layout, state_dim: int):
    return make_algorithm(cfg, EnvInfo(lay, state_dim))


def _mask_resets(algo, before: int, after: int, total: int) -> int:
    return algo.after_iteration(Progress(after, total, previous=before))["mask_resets"]


def test_reset_schedule_skips_the_last_interval():
    cfg = small_config(sharing={"name": "masks", "reset_interval": 1000, "reset_prob": 1.0})
    learner = _algo(cfg, layout(3), 12)
    with torch.no_grad():
        for _, layer in sharing.masked_layers(learner.actor):
            layer.scheme.thresholds.fill_(5.0)
    assert _mask_resets(learner, 800, 900, 5000) == 0  # no interval boundary crossed
    assert _mask_resets(learner, 4000, 4100, 5000) == 0  # boundary 4000 < x, but the last interval
    assert _mask_resets(learner, 900, 1100, 5000) > 0


def test_thresholds_learn_at_their_own_rate_and_anneal_with_the_rest():
    cfg = small_config(lr=1e-3, sharing={"name": "masks", "threshold_lr_scale": 20})
    learner = _algo(cfg, layout(3), 12)
    groups = learner.actor_opt.param_groups
    thresholds = {id(layer.scheme.thresholds) for _, layer in sharing.masked_layers(learner.actor)}
    assert [g["lr"] for g in groups] == [1e-3, 2e-2]
    assert {id(p) for p in groups[1]["params"]} == thresholds
    assert not thresholds & {id(p) for p in groups[0]["params"]}
    learner.set_lr_fraction(0.5)
    assert [g["lr"] for g in groups] == [5e-4, 1e-2]
    full = _algo(small_config(lr=1e-3), layout(3), 12)
    assert len(full.actor_opt.param_groups) == 1  # nothing changes without masks


def test_training_with_masks_logs_masks_and_draws_the_overlap(tmp_path):
    cfg = small_config(out=str(tmp_path / "run"), sharing={"name": "masks", "reset_interval": 800},
                       critic={"hidden": 16, "sharing": "masks", "ensemble": 2})
    run = train(cfg)
    import csv

    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 8
    for key in ("mask_density/body.0/a0", "mask_density/head/a2", "mask_distance", "effective_params",
                "critic_mask_density/out/m1a2", "critic_mask_distance", "diversity_loss", "mask_resets"):
        assert key in rows[0], key
    assert 0.5 < float(rows[-1]["mask_density/body.0/a1"]) <= 1.0
    assert (run / "mask_overlap.png").stat().st_size > 0
    assert (run / "critic_mask_overlap.png").stat().st_size > 0
    summary = json.loads((run / "summary.json").read_text())
    obs, hidden, actions = 18, 16, 5
    thresholds = 3 * (obs * hidden + hidden * hidden + hidden * actions)  # one per weight per agent
    assert summary["parameters"]["actor"]["thresholds"] == thresholds


@pytest.mark.parametrize("name", ["none", "full_id", "random_masks"])
def test_every_scheme_trains_end_to_end(tmp_path, name):
    run = train(small_config(out=str(tmp_path / name), sharing=name, total_steps=800))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 4
    weights = summary["parameters"]["actor"]["weights"]
    full = json.loads((train(small_config(out=str(tmp_path / "full"), total_steps=200)) / "summary.json")
                      .read_text())["parameters"]["actor"]["weights"]
    if name == "none":
        assert weights > 2.5 * full  # three networks' worth (the log-std-free discrete actor)
    elif name == "full_id":
        assert weights == full + 3 * 16  # one-hot ids widen the first layer
    else:
        assert weights == full


def test_a_user_scheme_plugs_in_by_name(tmp_path):
    @sharing.register_sharing("test_first_half")
    class FirstHalf(sharing.SharingScheme):
        """Agent i uses only the first half of the inputs when i is odd."""

        def __init__(self, spec, weight):
            super().__init__(spec, weight)
            keep = torch.ones(spec.units, *weight.shape)
            keep[1::2, :, weight.shape[1] // 2:] = 0
            self.register_buffer("keep", keep)

        def forward(self, weight):
            return weight * self.keep

    try:
        run = train(small_config(out=str(tmp_path / "plug"), sharing="test_first_half", total_steps=400))
        assert (run / "summary.json").exists()
    finally:
        sharing.SCHEMES.pop("test_first_half")


def test_a_scheme_from_a_plugin_file_is_accepted_by_name(tmp_path):
    plugin = tmp_path / "halves_plugin.py"
    plugin.write_text(
        "import torch\n"
        "from marl.sharing import SharingScheme, register_sharing\n\n"
        "@register_sharing('test_halves')\n"
        "class Halves(SharingScheme):\n"
        "    def __init__(self, spec, weight):\n"
        "        super().__init__(spec, weight)\n"
        "        keep = torch.ones(spec.units, *weight.shape)\n"
        "        keep[1::2, :, weight.shape[1] // 2:] = 0\n"
        "        self.register_buffer('keep', keep)\n\n"
        "    def forward(self, weight):\n"
        "        return weight * self.keep\n"
    )
    try:
        cfg = build_config({"plugins": [str(plugin)], "sharing": "test_halves"})
        net = _algo(cfg, layout(3), 12).actor
        layer = sharing.agent_layers(net)[0][1]
        half = layer.weight.shape[1] // 2
        assert torch.equal(layer.unit_weights()[1, :, half:], torch.zeros_like(layer.unit_weights()[1, :, half:]))
        assert torch.equal(layer.unit_weights()[0], layer.weight)
    finally:
        sharing.SCHEMES.pop("test_halves", None)


# ---- bad input -----------------------------------------------------------------------------------


def test_unknown_sharing_names_suggest_the_closest():
    with pytest.raises(ConfigError,
                       match=r"sharing='mask' is not a sharing scheme\. Did you mean 'masks'\?.*Valid: full"):
        build_config({"sharing": "mask"})
    with pytest.raises(ConfigError, match=r"critic\.sharing='nope'.*Valid:"):
        build_config({"critic": {"sharing": "nope"}})


def test_an_ensemble_of_identical_members_is_rejected():
    with pytest.raises(ConfigError, match=r"critic\.ensemble=3 needs members that differ.*critic\.sharing='full'"):
        build_config({"critic": {"ensemble": 3}})
    with pytest.raises(ConfigError, match=r"sharing\.sparsity must be in \[0, 1\]"):
        build_config({"sharing": {"name": "random_masks", "sparsity": 1.5}})


def test_per_agent_weights_cannot_act_for_another_number_of_agents():
    cfg = small_config(sharing="masks")
    trained = _algo(cfg, layout(3), 12)
    actor_state = {k[len("actor."):]: v for k, v in trained.state_dict().items() if k.startswith("actor.")}
    with pytest.raises(ValueError,
                       match=r"per-agent weights \(sharing='masks'\) for 3 agents, not 5; only sharing=full"):
        build_policy_actor(cfg, EnvInfo(layout(5), 20), actor_state, Path("x"))
    build_policy_actor(cfg, EnvInfo(layout(3), 12), actor_state, Path("x"))  # the same N loads


def test_marl_eval_names_the_agent_count_problem(tmp_path, capsys):
    from marl.cli import main

    run = tmp_path / "run"
    train(small_config(out=str(run), sharing="none", total_steps=200))
    assert main(["eval", str(run), "--n_agents", "4", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "per-agent weights (sharing='none') for 3 agents, not 4" in err
