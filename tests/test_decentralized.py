"""Decentralized execution: agent i's action distribution depends on its own observation (and its
own GRU state) only; the centralized critic reads the global state; the independent critic does not
look at other agents' observations."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces

from envs import Layout
from marl.nets import Actor, CentralizedCritic, IndependentCritic, make_critic

N, OBS = 4, 7


def _layout(kind: str) -> Layout:
    agents = [f"a_{i}" for i in range(N)]
    if kind == "discrete":  # heterogeneous: padded actions with a mask, agent-id one-hot
        obs = {a: spaces.Box(-1, 1, (OBS - i % 2,)) for i, a in enumerate(agents)}
        act = {a: spaces.Discrete(5 - i % 2) for i, a in enumerate(agents)}
    else:
        obs = {a: spaces.Box(-1, 1, (OBS,)) for a in agents}
        act = {a: spaces.Box(-1, 1, (3 - i % 2,)) for i, a in enumerate(agents)}
    return Layout.from_spaces(agents, obs, act)


ACTORS = [
    pytest.param(kind, recurrent, layer_norm, id=f"{kind}-{'gru' if recurrent else 'mlp'}{'-ln' if layer_norm else ''}")
    for kind in ("discrete", "continuous")
    for recurrent in (False, True)
    for layer_norm in (False, True)
]


def _actor(kind, recurrent, layer_norm, seed=0):
    torch.manual_seed(seed)
    lay = _layout(kind)
    actor = Actor(lay, hidden=16, layers=2, recurrent=recurrent, layer_norm=layer_norm)
    with torch.no_grad():  # bigger head weights than the 0.01 init, so changes are not swamped
        actor.head.weight.mul_(100)
    return lay, actor


def _params(actor, obs, h):
    with torch.no_grad():
        params, carry, _ = actor(obs, None if h is None else {"h": h})
    return params, carry.get("h")


@pytest.mark.parametrize("kind,recurrent,layer_norm", ACTORS)
def test_other_agents_obs_never_change_my_logits(kind, recurrent, layer_norm):
    lay, actor = _actor(kind, recurrent, layer_norm)
    g = torch.Generator().manual_seed(1)
    E = 5
    obs = torch.randn(E, N, lay.obs_dim, generator=g)
    h = torch.randn(E, N, 16, generator=g) if recurrent else None
    base, h_base = _params(actor, obs, h)
    for j in range(N):
        changed = obs.clone()
        changed[:, j] = torch.randn(E, lay.obs_dim, generator=g) * 10
        h2 = None
        if recurrent:
            h2 = h.clone()
            h2[:, j] = torch.randn(E, 16, generator=g)
        params, h_next = _params(actor, changed, h2)
        for i in range(N):
            if i == j:
                assert not torch.equal(params[:, i], base[:, i])  # its own input matters
            else:
                assert torch.equal(params[:, i], base[:, i]), (i, j)  # bit-identical
                if recurrent:
                    assert torch.equal(h_next[:, i], h_base[:, i]), (i, j)


@pytest.mark.parametrize("kind,recurrent,layer_norm", ACTORS)
def test_sampled_actions_and_logp_are_per_agent(kind, recurrent, layer_norm):
    """The log-probability of agent i's action is a function of agent i's inputs and action only."""
    lay, actor = _actor(kind, recurrent, layer_norm)
    g = torch.Generator().manual_seed(2)
    obs = torch.randn(3, N, lay.obs_dim, generator=g)
    h = actor.initial_carry((3, N))
    with torch.no_grad():
        action, logp, _, _ = actor.act(obs, h)
        changed = obs.clone()
        changed[:, 0] += 5.0
        params, _, _ = actor(changed, h)
        logp2, _ = actor.log_prob_entropy(params, action)
    assert torch.equal(logp[:, 1:], logp2[:, 1:])
    assert not torch.equal(logp[:, 0], logp2[:, 0])


def test_masked_actions_are_never_chosen():
    lay, actor = _actor("discrete", False, True)
    assert not lay.action_mask.all()
    obs = torch.randn(2000, N, lay.obs_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        action, _, _, _ = actor.act(obs)
        greedy, _, _, _ = actor.act(obs, deterministic=True)
    mask = torch.as_tensor(lay.action_mask)
    for a in (action, greedy):
        valid = mask[torch.arange(N).expand_as(a), a]
        assert valid.all()


def test_padded_continuous_dims_do_not_count_in_logp():
    lay, actor = _actor("continuous", False, False)
    obs = torch.randn(4, N, lay.obs_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        params, _, _ = actor(obs)
        a = torch.zeros(4, N, lay.action_dim)
        logp, ent = actor.log_prob_entropy(params, a)
        a_pad = a.clone()
        a_pad[:, 1, -1] = 100.0  # agent 1 has 2 of 3 action dims: the third is padding
        logp_pad, _ = actor.log_prob_entropy(params, a_pad)
    assert torch.equal(logp, logp_pad)
    assert ent[:, 0].gt(ent[:, 1]).all()  # 3 real dims vs 2


@pytest.mark.parametrize("layer_norm", [False, True])
def test_centralized_critic_reads_global_state(layer_norm):
    torch.manual_seed(0)
    S = 9
    critic = CentralizedCritic(S, N, hidden=16, layers=2, layer_norm=layer_norm)
    g = torch.Generator().manual_seed(5)
    obs = torch.randn(6, N, OBS, generator=g)
    state = torch.randn(6, S, generator=g)
    with torch.no_grad():
        v = critic(obs, state)
        assert v.shape == (6, N)
        # changing the state changes every agent's value
        state2 = state.clone()
        state2[:, 0] += 3.0
        v2 = critic(obs, state2)
        assert (v2 != v).all()
        # observations are not an input: values only depend on the state (and the agent id)
        assert torch.equal(critic(torch.randn(6, N, OBS, generator=g), state), v)
        # agents get different values from the same state (agent-id input)
        assert (v[:, 0] != v[:, 1]).all()
        # env e's values depend on env e's state only
        state3 = state.clone()
        state3[0] += 1.0
        v3 = critic(obs, state3)
        assert torch.equal(v3[1:], v[1:]) and (v3[0] != v[0]).all()


@pytest.mark.parametrize("layer_norm", [False, True])
def test_independent_critic_ignores_other_agents_and_state(layer_norm):
    torch.manual_seed(0)
    critic = IndependentCritic(OBS, hidden=16, layers=2, layer_norm=layer_norm)
    g = torch.Generator().manual_seed(6)
    obs = torch.randn(6, N, OBS, generator=g)
    state = torch.randn(6, 11, generator=g)
    with torch.no_grad():
        v = critic(obs, state)
        assert torch.equal(critic(obs, torch.randn(6, 11, generator=g)), v)
        for j in range(N):
            changed = obs.clone()
            changed[:, j] = torch.randn(6, OBS, generator=g)
            vj = critic(changed, state)
            for i in range(N):
                if i == j:
                    assert (vj[:, i] != v[:, i]).all()
                else:
                    assert torch.equal(vj[:, i], v[:, i])


def test_make_critic_kinds():
    lay = _layout("continuous")
    assert isinstance(make_critic("centralized", lay, 12, 8, 1, "tanh"), CentralizedCritic)
    assert isinstance(make_critic("independent", lay, 12, 8, 1, "relu"), IndependentCritic)
    with pytest.raises(ValueError, match="centralized, independent"):
        make_critic("shared", lay, 12, 8, 1, "tanh")


def test_learner_picks_critic_from_algo():
    from marl.algos import EnvInfo, make_algorithm
    from marl.config import build_config

    lay = _layout("discrete")
    assert isinstance(make_algorithm(build_config({"algo": "mappo"}), EnvInfo(lay, 10)).critic, CentralizedCritic)
    assert isinstance(make_algorithm(build_config({"algo": "ippo"}), EnvInfo(lay, 10)).critic, IndependentCritic)
    assert isinstance(make_algorithm(build_config({"algo": "happo"}), EnvInfo(lay, 10)).critic, CentralizedCritic)
