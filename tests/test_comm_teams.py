"""Communication by team: with ``team`` given (one team id per agent seat), no message ever crosses
teams. Every graph's cross-team edges are dropped in the base class; knn and the learned graph choose
their k senders among teammates; through the actor, an opponent's observation, position or delayed
features never reach a team's logits; and every stochastic decision still replays exactly."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import scenarios
from comm import CommError, Graph, GraphContext, graph_names, load_plugin, make_graph, register_graph
from comm import graphs as graphs_module
from envs import VectorEnv
from marl.algos import EnvInfo, make_algorithm
from marl.communication import CommInputs
from marl.config import build_config
from marl.ppo import Minibatch
from marl.rollout import agent_starts

TEAM = torch.tensor([0, 0, 1, 1, 1])
N = 5
REQUIRED = {"complete", "knn", "radius", "erdos_renyi", "learned", "ring", "star"}
PLUGIN = Path(__file__).parent / "plugins" / "user_graphs.py"


def _ctx(E=6, seed=0, training=False, team=TEAM, alive=None, **extra):
    gen = torch.Generator().manual_seed(seed)
    positions = torch.rand(E, N, 2, generator=gen) * 2
    return GraphContext(E, N, positions=positions, alive=alive, training=training, team=team, **extra)


def _assert_within_teams(edges, team=TEAM):
    src, dst = edges.index
    assert torch.equal(team[src % N], team[dst % N]), "an edge joins two teams"


def _team_mates(team=TEAM) -> torch.Tensor:
    """[N]: how many other agents share each agent's team."""
    return (team[:, None] == team[None, :]).sum(-1) - 1


# ---- every graph -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", graph_names())
@pytest.mark.parametrize("training", [False, True])
def test_no_edge_of_any_registered_graph_joins_two_teams(name, training):
    try:
        graph = make_graph(name, n_agents=N)
    except CommError:  # a graph that needs options no generic test can give
        if name in REQUIRED:
            raise
        pytest.skip(f"graph {name!r} needs options")
    ctx = _ctx(training=training)
    try:
        ctx.noise = graph.draw(ctx)
        edges = graph(ctx)
    except CommError:
        if name in REQUIRED:
            raise
        pytest.skip(f"graph {name!r} cannot build on a generic 5-agent context")
    _assert_within_teams(edges)
    # the same graph without teams does join them (the check above can fail), except graphs with no
    # edge between agents at all
    free = graph(GraphContext(ctx.n_envs, N, positions=ctx.positions, training=training, noise=ctx.noise))
    if name in REQUIRED - {"knn", "learned", "radius"}:  # fixed graphs with edges between the two teams
        src, dst = free.index
        assert bool((TEAM[src % N] != TEAM[dst % N]).any())
    # the base drop removes exactly the cross-team edges of what the graph would build without
    # teams, for graphs that do not choose among teammates themselves
    if name in REQUIRED - {"knn", "learned"}:
        src, dst = free.index
        kept = free.index[:, TEAM[src % N] == TEAM[dst % N]]
        assert torch.equal(edges.index, kept)


def test_a_users_graph_gets_no_cross_team_edge_without_doing_anything(monkeypatch):
    # the CLI tests' plugin file (agent 0 and the nearest other agent), loaded into the real registry as
    # they load it (a plugin file already imported is not run again), then a private copy for ours
    load_plugin(PLUGIN)
    monkeypatch.setattr(graphs_module, "GRAPHS", dict(graphs_module.GRAPHS))

    @register_graph("everyone_to_everyone_with_loops")
    class Everyone(Graph):
        def build(self, ctx):  # a bool adjacency, self loops included: the base converts it
            return torch.ones(ctx.n_envs, ctx.n_agents, ctx.n_agents, dtype=torch.bool)

    edges = make_graph("everyone_to_everyone_with_loops")(_ctx(E=3))
    _assert_within_teams(edges)
    assert edges.num_edges == 3 * int((_team_mates() + 1).sum())  # every same-team pair, self loops too
    plugin_edges = make_graph("test_two_nearest_and_leader")(_ctx(E=4))
    _assert_within_teams(plugin_edges)
    assert plugin_edges.num_edges > 0


def test_dead_agents_and_teams_together():
    gen = torch.Generator().manual_seed(3)
    alive = torch.rand(8, N, generator=gen) > 0.3
    for name in ("complete", "knn", "radius", "learned"):
        graph = make_graph(name, n_agents=N, **({"radius": 5.0} if name == "radius" else {}))
        edges = graph(_ctx(E=8, alive=alive, training=True))
        _assert_within_teams(edges)
        flat = alive.reshape(-1)
        assert bool(flat[edges.index[0]].all() and flat[edges.index[1]].all())


def test_team_is_checked_and_made_long():
    with pytest.raises(CommError, match=r"team must have shape \[N=5\]"):
        _ctx(team=torch.zeros(2, N, dtype=torch.long))
    with pytest.raises(CommError, match="team must be an integer tensor"):
        _ctx(team=torch.zeros(N))
    ctx = _ctx(team=torch.tensor([0, 0, 1, 1, 1], dtype=torch.int32))
    assert ctx.team.dtype == torch.long and ctx.same_team().shape == (N, N)
    assert _ctx(team=None).same_team() is None


# ---- graphs that choose k senders: among teammates ----------------------------------------------


def test_knn_with_k_one_picks_the_nearest_teammate_even_when_an_opponent_is_nearer():
    # a line: 0 and 2 are close, 1 is far from 0; 3 sits next to 1, 4 next to 2
    x = torch.tensor([0.0, 3.0, 0.1, 3.1, 0.2])
    positions = torch.stack([x, torch.zeros(N)], dim=-1)[None].repeat(2, 1, 1)
    positions[1] += 0.5  # a second env, shifted: the same neighbours
    graph = make_graph("knn", k=1)
    edges = graph(GraphContext(2, N, positions=positions, team=TEAM))
    dense = edges.to_dense()  # [E, receiver, sender]
    assert torch.equal(dense.sum(-1), torch.ones(2, N, dtype=torch.long))  # exactly one sender each
    sender = dense.float().argmax(-1)
    # 0's nearest agent is 2 (an opponent, 0.1 away), its only teammate 1 (3.0 away); 1's nearest is 3,
    # its teammate 0; team 1: 2 -> 4 (0.1), 3 -> 4 (2.9 against 3.0 to 2), 4 -> 2 (0.1)
    expected = torch.tensor([1, 0, 4, 4, 2])
    assert torch.equal(sender, expected.expand(2, N))
    without = graph(GraphContext(2, N, positions=positions)).to_dense().float().argmax(-1)
    assert without[0, 0] == 2 and without[0, 1] == 3  # without teams the opponents are nearer


@pytest.mark.parametrize("k", [1, 2, 4])
def test_knn_keeps_k_teammates_not_k_minus_opponents(k):
    edges = make_graph("knn", k=k)(_ctx(E=16))
    in_degree = edges.to_dense().sum(-1)  # [E, N]
    assert torch.equal(in_degree, _team_mates().clamp(max=k).expand(16, N))
    # and they are the k nearest teammates
    ctx = _ctx(E=16)
    dist = graphs_module.pairwise_distances(ctx.positions)
    dense = edges.to_dense()
    same = ctx.same_team() & ~torch.eye(N, dtype=torch.bool)
    chosen_far = dist.masked_fill(~dense, -1.0).amax(-1)  # farthest chosen teammate
    unchosen_near = dist.masked_fill(dense | ~same, float("inf")).amin(-1)  # nearest teammate left out
    assert bool((chosen_far <= unchosen_near).all())


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("sparsity", [0.4, 0.6])
def test_learned_graph_chooses_k_teammates(training, sparsity):
    torch.manual_seed(0)
    graph = make_graph("learned", n_agents=N, sparsity=sparsity)  # k = 2 or 3
    ctx = _ctx(E=16, training=training)
    ctx.noise = graph.draw(ctx)
    edges = graph(ctx)
    _assert_within_teams(edges)
    in_degree = edges.to_dense().sum(-1)
    assert torch.equal(in_degree, _team_mates().clamp(max=graph.k).expand(16, N))
    if training:
        assert edges.weight is not None and torch.equal(edges.weight.detach(), torch.ones(edges.num_edges))
        # the straight-through gradient reaches the logits, finite, and only between teammates
        edges.weight.sum().backward()
        grad = graph.logits.grad
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
        assert torch.equal(grad[~ctx.same_team()], torch.zeros(int((~ctx.same_team()).sum())))
        # the same noise rebuilds the same edges
        again = graph(_ctx(E=16, training=True, noise=ctx.noise))
        assert torch.equal(again.index, edges.index)


def test_learned_graph_agent_without_teammates_gets_nothing_and_no_nan():
    torch.manual_seed(0)
    graph = make_graph("learned", n_agents=N, sparsity=0.4)
    team = torch.tensor([7, 1, 1, 1, 1])  # agent 0 is alone
    edges = graph(_ctx(E=4, training=True, team=team))
    assert not bool((edges.index[1] % N == 0).any()) and not bool((edges.index[0] % N == 0).any())
    _assert_within_teams(edges, team)
    edges.weight.sum().backward()
    assert torch.isfinite(graph.logits.grad).all()


# ---- through the actor ---------------------------------------------------------------------------

ACTORS = {
    "complete, 2 rounds": {"graph": "complete", "rounds": 2},
    "knn k=2, 2 rounds": {"graph": "knn", "k": 2, "rounds": 2},
    "radius": {"graph": "radius", "radius": 10.0, "layer": "transformer"},
    "learned + gate": {"graph": "learned", "gating": True, "layer": "transformer"},
    "ic3net (send gate)": {"method": "ic3net"},
    "erdos_renyi, sage": {"graph": "erdos_renyi", "p": 0.9, "layer": "sage", "rounds": 2},
}


def _algo(comm: dict, E: int = 4, recurrent: bool = False, **top):
    torch.manual_seed(0)
    cfg = build_config({"comm": comm, "num_envs": E, "actor": {"hidden": 16, "recurrent": recurrent},
                        "critic": {"hidden": 16}, **top})
    env = VectorEnv(scenarios.make("mpe/simple_spread", n_agents=N), E, seed=0)
    algo = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    return algo, env


def _perturb_opponents(obs, positions, carry=None, seed=1):
    """Everything of the seats of team 1 changed: observations, positions, what they carried."""
    gen = torch.Generator().manual_seed(seed)
    opp = TEAM == 1
    obs, positions = obs.clone(), positions.clone()
    obs[:, opp] += torch.randn(obs[:, opp].shape, generator=gen)
    positions[:, opp] += torch.randn(positions[:, opp].shape, generator=gen)
    carry = {k: v.clone() for k, v in (carry or {}).items()}
    for v in carry.values():
        v[:, opp] += torch.randn(v[:, opp].shape, generator=gen)
    return obs, positions, carry


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("setup", list(ACTORS))
def test_a_teams_logits_ignore_everything_about_the_opponents(setup, mode):
    """Team 0's action distribution is bit-identical whatever the opponents observe or where they
    are; without teams the same change moves it (so the check has teeth)."""
    algo, env = _algo(ACTORS[setup])
    out = env.reset()
    env.close()
    actor = algo.actor.train(mode == "train")
    ours = TEAM == 0
    obs2, pos2, _ = _perturb_opponents(out.obs, out.positions)
    for team, same in ((TEAM, True), (None, False)):
        base, _, aux = actor(out.obs, None, CommInputs(out.positions, out.alive, team=team))
        assert aux.edges.num_edges > 0
        if team is not None:
            _assert_within_teams(aux.edges)
        # in training the perturbed call replays the first call's draws (graph sample, gates)
        moved, _, _ = actor(obs2, None, CommInputs(pos2, out.alive, team=team), replay=aux.replay)
        assert torch.equal(moved[:, ours], base[:, ours]) is same, (setup, team)
        assert not torch.equal(moved[:, ~ours], base[:, ~ours])  # the opponents' own logits do move


@pytest.mark.parametrize("graph", [{"graph": "knn", "k": 3}, {"graph": "complete", "gate_side": "send"}])
def test_delayed_noisy_lossy_channel_leaks_nothing_across_teams(graph):
    """The delayed channel carries every sender's previous features: the cross-team edges are gone
    before they are read, so perturbing the opponents' carried features changes nothing for team 0."""
    comm = {**graph, "gating": True, "channel_drop": 0.3, "channel_noise": 0.5, "channel_delay": True,
            "channel_in_training": True, "rounds": 2}
    algo, env = _algo(comm)
    first = env.reset()
    gen = torch.Generator().manual_seed(0)
    second = env.step(env.random_actions(gen))
    env.close()
    actor = algo.actor.train()
    ours = TEAM == 0
    for team, same in ((TEAM, True), (None, False)):
        _, carry, _ = actor(first.obs, actor.initial_carry((4, N)), CommInputs(first.positions, first.alive, team))
        assert "comm_previous" in carry
        base, _, aux = actor(second.obs, carry, CommInputs(second.positions, second.alive, team))
        obs2, pos2, carry2 = _perturb_opponents(second.obs, second.positions, carry)
        moved, _, _ = actor(obs2, carry2, CommInputs(pos2, second.alive, team), replay=aux.replay)
        assert torch.equal(moved[:, ours], base[:, ours]) is same, team
        # only what the opponents carried (not their current features) changed: still nothing reaches team 0
        only_carry, _, _ = actor(second.obs, carry2, CommInputs(second.positions, second.alive, team),
                                 replay=aux.replay)
        assert torch.equal(only_carry[:, ours], base[:, ours]) is same, team


# ---- replay: PPO's ratio stays 1 with teams -------------------------------------------------------


def _sharpen(actor):
    with torch.no_grad():  # sharp policies: a resampled decision would show in the log-probabilities
        for name, p in actor.named_parameters():
            if name.startswith("head") and p.dim() > 1:
                p.mul_(100)


def test_acting_then_replaying_gives_identical_log_probs_with_teams():
    algo, env = _algo({"graph": "learned", "gating": True, "layer": "transformer", "sparsity": 0.6})
    out = env.reset()
    env.close()
    actor = algo.actor.train()
    _sharpen(actor)
    inputs = CommInputs(out.positions, out.alive, team=TEAM)
    torch.manual_seed(5)
    action, logp, _, aux = actor.act(out.obs, actor.initial_carry((4, N)), inputs=inputs)
    assert {"graph_noise", "gate"} <= set(aux.replay)
    params, _, again = actor(out.obs, actor.initial_carry((4, N)), inputs, replay=aux.replay)
    replayed, _ = actor.log_prob_entropy(params, action)
    assert torch.equal(replayed, logp)
    assert torch.equal(again.edges.index, aux.edges.index)
    # drawn afresh instead, the graph and gates differ and so do the log-probabilities
    torch.manual_seed(6)
    fresh, _, _ = actor(out.obs, actor.initial_carry((4, N)), inputs)
    assert (actor.log_prob_entropy(fresh, action)[0] - logp).abs().max() > 1e-2


@pytest.mark.parametrize("recurrent", [False, True])
def test_the_update_replays_a_rollout_acted_with_teams_at_ratio_one(recurrent):
    """A short rollout acted with teams (learned graph, gate, lossy noisy channel), then the
    update's own ``policy_params``: given the same team its log-probabilities are the rollout's.
    Given no team the update would see another graph (the update must get the team too)."""
    comm = {"graph": "learned", "gating": True, "layer": "transformer", "sparsity": 0.6, "channel_drop": 0.3,
            "channel_noise": 0.5, "channel_in_training": True}
    E, T = 3, 6
    algo, env = _algo(comm, E=E, recurrent=recurrent)
    _sharpen(algo.actor)
    algo.actor.train()
    out = env.reset()
    carry = algo.actor.initial_carry((E, N))
    starts = torch.ones(E, N, dtype=torch.bool)
    steps = []
    torch.manual_seed(1)
    carry0 = algo.actor.reset_carry(carry, starts)  # the carry the rollout starts from
    with torch.no_grad():
        for _ in range(T):
            carry = algo.actor.reset_carry(carry, starts)
            step = algo.act(out.obs, carry, CommInputs(out.positions, out.alive, team=TEAM))
            steps.append({"obs": out.obs, "positions": out.positions, "alive": out.alive, "starts": starts,
                          "actions": step.action, "logp": step.store["logp"], "replay": step.aux.replay,
                          "carry": carry})
            carry = step.carry
            alive = out.alive
            out = env.step(step.action)
            starts = agent_starts(out, alive)
    env.close()
    stack = lambda key: torch.stack([s[key] for s in steps])  # noqa: E731
    stack_dict = lambda key: {k: torch.stack([s[key][k] for s in steps]) for k in steps[0][key]}  # noqa: E731
    alive = stack("alive")
    zeros = torch.zeros(alive.shape)
    data = Minibatch(stack("obs"), zeros, stack("actions"), stack("logp"), zeros, zeros, zeros, alive.float(),
                     stack("positions"), stack_dict("replay"), stack_dict("carry"))
    assert 0 < data.replay["gate"].float().mean() < 1
    ro = SimpleNamespace(T=T, n_envs=E)
    mb, env_idx = next(iter(algo.minibatches(data, ro, whole=True)))
    with torch.no_grad():
        for team, exact in ((TEAM, True), (None, False)):
            params, _ = algo.policy_params(mb, CommInputs(mb.positions, mb.mask > 0, team=team), carry0,
                                           stack("starts"), env_idx)
            logp, _ = algo.actor.log_prob_entropy(params, mb.actions)
            gap = float((logp - mb.old_logp).abs().max())
            assert (gap < 1e-4) is exact, (team, gap)
