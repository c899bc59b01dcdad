"""PPO pieces: GAE against hand-computed numbers, bootstrapping at truncation vs termination
(unit and end to end through the Collector), the value normaliser, and that updates improve."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import scenarios
from envs import Layout, VectorEnv
from marl.algos import EnvInfo, Progress, make_algorithm
from marl.algos.ppo import PPO, explained_variance
from marl.collector import Collector
from marl.communication import CommInputs
from marl.config import build_config
from marl.nets import Actor, IndependentCritic
from marl.ppo import Minibatch, ValueNorm, gae, masked_mean, ppo_loss, value_loss
from marl.rollout import Rollout

# ---- GAE -------------------------------------------------------------------------------------


def test_gae_hand_computed():
    """T=3, gamma=0.9, lambda=0.8, two columns.

    Column 0: step 0 continues, step 1 is truncated (bootstrap V=4.0), step 2 terminates (V=0).
        delta2 = 3 + 0.9*0   - 1.5 = 1.5                A2 = 1.5
        delta1 = 2 + 0.9*4.0 - 1.0 = 4.6                A1 = 4.6  (episode ended at 1: no flow from 2)
        delta0 = 1 + 0.9*1.0 - 0.5 = 1.4                A0 = 1.4 + 0.9*0.8*4.6 = 4.712
        returns = A + V = [5.212, 5.6, 3.0]
    Column 1: nothing ends, rewards 1, values 0, V(after the last step) = 2.0
        A2 = 1 + 0.9*2.0 = 2.8;  A1 = 1 + 0.72*2.8 = 3.016;  A0 = 1 + 0.72*3.016 = 3.17152
    """
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    values = torch.tensor([[0.5, 0.0], [1.0, 0.0], [1.5, 0.0]])
    next_values = torch.tensor([[1.0, 0.0], [4.0, 0.0], [0.0, 2.0]])
    ended = torch.tensor([[False, False], [True, False], [True, False]])
    adv, ret = gae(rewards, values, next_values, ended, gamma=0.9, lam=0.8)
    expected_adv = torch.tensor([[4.712, 3.17152], [4.6, 3.016], [1.5, 2.8]])
    torch.testing.assert_close(adv, expected_adv, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ret, expected_adv + values, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ret[:, 0], torch.tensor([5.212, 5.6, 3.0]), rtol=1e-6, atol=1e-6)


def test_gae_lambda_one_is_discounted_return_minus_value():
    torch.manual_seed(0)
    T = 6
    r, v = torch.randn(T, 3), torch.randn(T, 3)
    last = torch.randn(3)
    nxt = torch.cat([v[1:], last[None]])
    adv, ret = gae(r, v, nxt, torch.zeros(T, 3, dtype=torch.bool), gamma=0.95, lam=1.0)
    mc = torch.zeros(T, 3)
    g = last.clone()
    for t in reversed(range(T)):
        g = r[t] + 0.95 * g
        mc[t] = g
    torch.testing.assert_close(ret, mc, rtol=1e-5, atol=1e-5)
    # lambda = 0 is the one-step TD error
    adv0, _ = gae(r, v, nxt, torch.zeros(T, 3, dtype=torch.bool), gamma=0.95, lam=0.0)
    torch.testing.assert_close(adv0, r + 0.95 * nxt - v)


# ---- PPO.next_values -------------------------------------------------------------------------


def _rollout(T: int, E: int, N: int) -> Rollout:
    """A rollout of zeros (nobody acting, nothing ended) with the fields next_values and GAE read."""
    ro = Rollout(T, E, device="cpu")
    for name in ("values", "rewards", "bootstrap"):
        ro.data[name] = torch.zeros(T, E, N)
    for name in ("alive", "terminated", "truncated"):
        ro.data[name] = torch.zeros(T, E, N, dtype=torch.bool)
    return ro


def _next_values(ro: Rollout, last: torch.Tensor) -> torch.Tensor:
    ro.final["last_values"] = last
    return PPO.next_values(ro)


def test_next_values_bootstrap_on_truncation_zero_on_termination_and_for_absent_agents():
    ro = _rollout(T=3, E=1, N=3)
    ro.values[:, 0] = torch.tensor([[1.0, 10.0, 100.0], [2.0, 20.0, 200.0], [3.0, 30.0, 300.0]])
    ro.alive[:] = True
    ro.alive[2, 0, 2] = False  # agent 2 does not act at t=2
    ro.truncated[1, 0, 0] = True  # agent 0 truncated at t=1 with bootstrap 7
    ro.bootstrap[1, 0, 0] = 7.0
    ro.terminated[1, 0, 1] = True  # agent 1 terminated at t=1; a bogus bootstrap must be ignored
    ro.bootstrap[1, 0, 1] = 99.0
    last = torch.tensor([[4.0, 40.0, 400.0]])
    nv = _next_values(ro, last)
    expected = torch.tensor([
        [2.0, 20.0, 200.0],  # inside the episode: V(s_{t+1})
        [7.0, 0.0, 300.0],  # truncated -> bootstrap; terminated -> 0; still going -> V(s_2)
        [4.0, 40.0, 0.0],  # last step: last_values; not acting -> 0
    ])
    torch.testing.assert_close(nv[:, 0], expected)
    assert ro.ended[:, 0].tolist() == [[False, False, False], [True, True, False], [False, False, True]]


def test_gae_through_next_values_matches_hand_computation():
    ro = _rollout(T=3, E=1, N=1)
    ro.alive[:] = True
    ro.rewards[:, 0, 0] = torch.tensor([1.0, 2.0, 3.0])
    ro.values[:, 0, 0] = torch.tensor([0.5, 1.0, 1.5])
    ro.truncated[1, 0, 0] = True
    ro.bootstrap[1, 0, 0] = 4.0
    ro.terminated[2, 0, 0] = True
    adv, _ = gae(ro.rewards, ro.values, _next_values(ro, torch.tensor([[123.0]])), ro.ended, 0.9, 0.8)
    torch.testing.assert_close(adv[:, 0, 0], torch.tensor([4.712, 4.6, 1.5]), rtol=1e-6, atol=1e-6)


# ---- bootstrapping end to end ----------------------------------------------------------------


class RecordingEnv:
    """Our own VectorEnv, with every step's EnvOutput kept for the test to inspect."""

    def __init__(self, env: VectorEnv):
        self.env = env
        self.outputs = []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self):
        return self.env.reset()

    def step(self, actions):
        out = self.env.step(actions)
        self.outputs.append(out)
        return out


def _collect(algo: str, rollout_len: int, scenario: str = "debug/scripted", num_envs: int = 2, **scenario_args):
    torch.manual_seed(0)
    cfg = build_config({"scenario": scenario, "scenario_args": scenario_args, "algo": algo, "num_envs": num_envs})
    sc = scenarios.make(cfg.scenario, **cfg.scenario_args)
    env = RecordingEnv(VectorEnv(sc, num_envs, seed=3))
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    # a value normaliser with data in it (mean ~0.7, std ~2), so denormalisation matters
    learner.value_norm.update(torch.randn(500, generator=torch.Generator().manual_seed(0)) * 2.0 + 0.7)
    collector = Collector(env, learner, rollout_len, torch.device("cpu"))
    ro = collector.collect()
    last = ro.final["last_values"]
    env.close()
    return ro, last, env.outputs, learner, env


@pytest.mark.parametrize("algo", ["mappo", "ippo"])
def test_collector_bootstraps_truncation_from_final_obs(algo):
    ro, last, outs, learner, env = _collect(algo, rollout_len=12, n_agents=2, max_cycles=5)
    truncated_steps = [t for t in range(12) if ro.truncated[t].any()]
    assert truncated_steps == [4, 9]
    for t in range(12):
        out = outs[t]
        assert torch.equal(ro.truncated[t], out.truncated) and torch.equal(ro.rewards[t], out.reward)
        if t in truncated_steps:
            assert out.done_env.all() and out.truncated.all() and not ro.terminated[t].any()
            expected = learner.value(out.final_obs, out.final_state)
            torch.testing.assert_close(ro.bootstrap[t], expected, rtol=1e-6, atol=1e-6)
            # ... and not the value of the reset observation that follows
            assert not torch.allclose(ro.bootstrap[t], learner.value(out.obs, out.state))
            assert (ro.bootstrap[t] != 0).all()
        else:
            assert (ro.bootstrap[t] == 0).all()
        # values are the denormalised critic outputs of what the agents saw at t
        seen_obs = outs[t - 1].obs if t > 0 else None
        if seen_obs is not None:
            assert torch.equal(ro.obs[t], seen_obs)
            torch.testing.assert_close(ro.values[t], learner.value(seen_obs, outs[t - 1].state))
    nv = PPO.next_values(ro)
    torch.testing.assert_close(nv[4], ro.bootstrap[4])
    torch.testing.assert_close(nv[3], ro.values[4])
    torch.testing.assert_close(nv[11], last)
    torch.testing.assert_close(last, learner.value(outs[-1].obs, outs[-1].state))
    # the starts flags mark the first step of each new episode, for every agent of the env
    assert ro.starts.shape == (12, 2, 2)
    assert ro.starts[:, 0].all(-1).tolist() == ro.starts[:, 0].any(-1).tolist() == [t in (0, 5, 10) for t in range(12)]


@pytest.mark.parametrize("algo", ["mappo", "ippo"])
def test_collector_does_not_bootstrap_termination(algo):
    ro, last, outs, learner, _ = _collect(algo, rollout_len=8, n_agents=2, max_cycles=10, terminate_at=3)
    term_steps = [t for t in range(8) if ro.terminated[t].any()]
    assert term_steps == [2, 5]
    assert not ro.truncated.any()
    assert (ro.bootstrap == 0).all()
    nv = PPO.next_values(ro)
    for t in term_steps:
        assert (nv[t] == 0).all()
        # the critic would have given a non-zero value to the final observation
        assert (learner.value(outs[t].final_obs, outs[t].final_state) != 0).all()
    torch.testing.assert_close(nv[0], ro.values[1])


def test_collector_leaving_agent_gets_no_bootstrap_and_is_masked():
    ro, last, outs, learner, _ = _collect("mappo", rollout_len=5, n_agents=2, max_cycles=5, leave_at={0: 2})
    assert ro.terminated[1, :, 0].all()  # the leaving step (t=1 is env step 2)
    assert not ro.alive[2:, :, 0].any() and ro.alive[:, :, 1].all()
    assert (ro.rewards[2:, :, 0] == 0).all()
    nv = PPO.next_values(ro)
    assert (nv[1:, :, 0] == 0).all()
    # agent 1 is truncated at the last step and bootstraps
    assert ro.truncated[4, :, 1].all()
    torch.testing.assert_close(nv[4, :, 1], learner.value(outs[4].final_obs, outs[4].final_state)[:, 1])


def test_mappo_bootstrap_on_mpe_uses_state_of_final_obs():
    ro, last, outs, learner, env = _collect("mappo", rollout_len=3, scenario="mpe/simple_spread", max_cycles=3)
    if env.state_from_env:
        pytest.skip("simple_spread state comes from env.state(); nothing to recompute from final_obs")
    out = outs[2]
    assert out.done_env.all() and out.truncated.all()
    raw = env.layout.raw_obs_dim
    final_state = out.final_obs[..., :raw].reshape(out.final_obs.shape[0], -1)
    torch.testing.assert_close(ro.bootstrap[2], learner.value(out.final_obs, final_state), rtol=1e-6, atol=1e-6)


# ---- value normaliser ------------------------------------------------------------------------


def _std(vn: ValueNorm) -> float:
    """The normaliser's scale, read through its public API: normalize(mean + 1) = 1 / std."""
    return 1.0 / float(vn.normalize(vn.mean + 1.0))


def test_value_norm_single_batch_matches_numpy():
    x = np.random.default_rng(0).normal(5.0, 2.0, size=200)
    vn = ValueNorm()
    vn.update(torch.as_tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(float(vn.mean), x.mean(), rtol=1e-5)
    np.testing.assert_allclose(_std(vn), x.std(), rtol=1e-4)
    vn.update(torch.zeros(0))  # an empty batch changes nothing
    np.testing.assert_allclose(float(vn.mean), x.mean(), rtol=1e-5)


def test_value_norm_stats_match_numpy_over_concatenated_equal_batches():
    """With every batch weighted alike (beta -> 1) the statistics are those of all data seen."""
    rng = np.random.default_rng(1)
    batches = [rng.normal(loc=m, scale=sd, size=64) for m, sd in [(5.0, 2.0), (-3.0, 0.5), (0.0, 10.0), (1.0, 1.0)]]
    vn = ValueNorm(beta=1.0 - 1e-4)
    for i, b in enumerate(batches):
        vn.update(torch.as_tensor(b, dtype=torch.float32))
        seen = np.concatenate(batches[: i + 1])
        np.testing.assert_allclose(float(vn.mean), seen.mean(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(_std(vn), seen.std(), rtol=1e-3)


def test_value_norm_is_a_debiased_moving_average():
    """Reference: batch k of K gets weight beta**(K-1-k); mean and E[x^2] are weighted averages."""
    rng = np.random.default_rng(2)
    beta = 0.9
    batches = [rng.normal(loc=float(k), scale=1.0 + k, size=20 + 10 * k) for k in range(5)]
    vn = ValueNorm(beta=beta)
    for K in range(1, len(batches) + 1):
        vn.update(torch.as_tensor(batches[K - 1], dtype=torch.float32))
        w = np.array([beta ** (K - 1 - k) for k in range(K)])
        mean = np.dot(w, [b.mean() for b in batches[:K]]) / w.sum()
        sq = np.dot(w, [(b**2).mean() for b in batches[:K]]) / w.sum()
        np.testing.assert_allclose(float(vn.mean), mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(_std(vn), np.sqrt(sq - mean**2), rtol=1e-4)


def test_value_norm_round_trip_and_standardises():
    vn = ValueNorm()
    x = torch.randn(1000, generator=torch.Generator().manual_seed(1)) * 3.0 + 8.0
    vn.update(x)
    z = vn.normalize(x)
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std(unbiased=False)) - 1.0) < 1e-3
    torch.testing.assert_close(vn.denormalize(z), x, rtol=1e-5, atol=1e-4)
    y = torch.randn(50)
    torch.testing.assert_close(vn.normalize(vn.denormalize(y)), y, rtol=1e-5, atol=1e-5)
    # a fresh normaliser is invertible too
    fresh = ValueNorm()
    torch.testing.assert_close(fresh.denormalize(fresh.normalize(x)), x, rtol=1e-5, atol=1e-4)


def test_value_norm_state_is_saved_in_state_dict():
    vn = ValueNorm()
    vn.update(torch.tensor([1.0, 2.0, 3.0]))
    vn.update(torch.tensor([10.0, 20.0]))
    other = ValueNorm()
    other.load_state_dict(vn.state_dict())
    x = torch.linspace(-5, 25, 7)
    assert torch.equal(other.normalize(x), vn.normalize(x))
    assert torch.equal(other.denormalize(x), vn.denormalize(x))


# ---- PPO updates improve the objective -------------------------------------------------------


def test_ppo_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    sc = scenarios.make("mpe/simple_speaker_listener")
    lay = Layout.from_spaces(sc.agents, sc.observation_spaces, sc.action_spaces)
    actor = Actor(lay, hidden=32, layers=2)
    critic = IndependentCritic(lay.obs_dim, hidden=32, layers=2)
    B, N = 64, lay.n_agents
    obs = torch.randn(B, N, lay.obs_dim)
    with torch.no_grad():
        actions, old_logp, _, _ = actor.act(obs)
        old_values = critic(obs, None)
    mask = torch.ones(B, N)
    mask[:5, 0] = 0.0
    mb = Minibatch(obs, torch.zeros(B, 1), actions, old_logp, old_values, torch.randn(B, N), torch.randn(B, N), mask)
    cfg = build_config({}).algo
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=3e-3)

    def loss_now():
        logp, ent = actor.log_prob_entropy(actor(mb.obs)[0], mb.actions)
        return ppo_loss(logp, ent, critic(mb.obs, None), mb, cfg)

    first, stats0 = loss_now()
    assert abs(float(stats0["approx_kl"])) < 1e-6 and float(stats0["clip_frac"]) == 0.0  # ratio 1 at start
    for _ in range(30):
        loss, _ = loss_now()
        opt.zero_grad()
        loss.backward()
        opt.step()
    final, stats = loss_now()
    assert float(final.detach()) < float(first.detach()) - 0.05
    assert float(stats["value_loss"].detach()) < float(stats0["value_loss"].detach())
    with torch.no_grad():
        new_logp, _ = actor.log_prob_entropy(actor(obs)[0], actions)
    # actions with positive advantage became more likely, negative ones less
    assert float(masked_mean((new_logp - old_logp) * mb.advantages, mask)) > 0


SCRIPTED_LEAVE = ("debug/scripted", {"n_agents": 2, "max_cycles": 5, "leave_at": {1: 3}})


def _fresh_learner_rollout(rollout_len: int = 20, seed: int = 0, scenario=SCRIPTED_LEAVE, **ppo):
    """A new learner (value normaliser at its initial state) and one rollout of it."""
    torch.manual_seed(seed)
    name, args = scenario
    cfg = build_config({"scenario": name, "scenario_args": args, "num_envs": 2, "algo": ppo})
    env = VectorEnv(scenarios.make(name, **args), 2, seed=seed)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    ro = Collector(env, learner, rollout_len, torch.device("cpu")).collect()
    env.close()
    return learner, ro, ro.final["last_values"]


def _update(learner, ro) -> dict[str, float]:
    return learner.update(ro, Progress(0, learner.cfg.total_steps))


def _normalised_advantages(learner, ro, last):
    cfg = learner.cfg.algo
    adv, returns = gae(ro.rewards, ro.values, _next_values(ro, last), ro.ended, cfg.gamma, cfg.gae_lambda)
    mask = ro.alive.float()
    mean = masked_mean(adv, mask)
    return (adv - mean) / (masked_mean((adv - mean) ** 2, mask).sqrt() + 1e-8), returns, mask


def test_learner_update_improves_surrogate_and_value_fit():
    # value clipping off: see test_first_update_value_clip_is_centred_on_collected_predictions.
    # mpe rather than debug/scripted: the scripted state's seed offset leaves the critic little to fit
    learner, ro, last = _fresh_learner_rollout(25, scenario=("mpe/simple_spread", {}), ent_coef=0.0, value_clip=0.0)
    before = copy.deepcopy(learner)
    norm_adv, returns, mask = _normalised_advantages(learner, ro, last)
    stats = _update(learner, ro)
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "explained_variance"):
        assert key in stats and np.isfinite(stats[key]), key
    with torch.no_grad():
        logp_new, _ = learner.actor.log_prob_entropy(learner.actor(ro.obs)[0], ro.actions)
        logp_old, _ = before.actor.log_prob_entropy(before.actor(ro.obs)[0], ro.actions)
        torch.testing.assert_close(logp_old, ro.logp, rtol=1e-5, atol=1e-5)  # the rollout's own logp
        # positive-advantage actions became more likely (and negative ones less)
        assert float(masked_mean((logp_new - logp_old) * norm_adv, mask)) > 0
        target = learner.value_norm.normalize(returns)
        err_before = masked_mean((before.critic(ro.obs, ro.state) - target) ** 2, mask)
        err_after = masked_mean((learner.critic(ro.obs, ro.state) - target) ** 2, mask)
        assert float(err_after) < float(err_before)


def test_value_norm_in_update_sees_acting_agents_only():
    learner, ro, last = _fresh_learner_rollout()
    assert not ro.alive.all()  # agent 1 leaves at step 3 of each episode
    _, returns, _ = _normalised_advantages(learner, ro, last)
    _update(learner, ro)
    # a fresh normaliser's first update holds exactly the acting agents' returns
    acting = returns[ro.alive]
    assert float(learner.value_norm.mean) == pytest.approx(float(acting.mean()), rel=1e-5)
    assert _std(learner.value_norm) == pytest.approx(float(acting.std(unbiased=False)), rel=1e-3)
    assert float(learner.value_norm.mean) != pytest.approx(float(returns.mean()), rel=1e-3)


def test_first_update_statistics_with_one_epoch():
    """With one epoch of one minibatch the stats come from the untouched networks: ratio 1."""
    learner, ro, last = _fresh_learner_rollout(epochs=1, minibatches=1, value_clip=0.0)
    before = copy.deepcopy(learner)
    _, returns, mask = _normalised_advantages(learner, ro, last)
    stats = _update(learner, ro)
    assert abs(stats["policy_loss"]) < 1e-5  # -mean of normalised advantages
    assert abs(stats["approx_kl"]) < 1e-6 and stats["clip_frac"] == 0.0
    with torch.no_grad():
        target = learner.value_norm.normalize(returns)
        expected = 0.5 * masked_mean((before.critic(ro.obs, ro.state) - target) ** 2, mask)
    assert stats["value_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_first_update_value_clip_is_centred_on_collected_predictions():
    """PPO value clipping keeps the new prediction within value_clip of the *old prediction*; in the
    first forward pass the two are the same network, so clipping must not change the loss."""
    learner, ro, last = _fresh_learner_rollout(epochs=1, minibatches=1, value_clip=0.2)
    before = copy.deepcopy(learner)
    _, returns, mask = _normalised_advantages(learner, ro, last)
    stats = _update(learner, ro)
    with torch.no_grad():
        target = learner.value_norm.normalize(returns)
        expected = 0.5 * masked_mean((before.critic(ro.obs, ro.state) - target) ** 2, mask)
    assert stats["value_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_recurrent_learner_update_runs_on_sequences():
    torch.manual_seed(0)
    cfg = build_config({"scenario": "debug/scripted", "actor": {"recurrent": True, "hidden": 16},
                        "algo": {"epochs": 2, "minibatches": 2}, "num_envs": 2})
    sc = scenarios.make("debug/scripted")
    env = VectorEnv(sc, 2, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    collector = Collector(env, learner, 7, torch.device("cpu"))
    ro = collector.collect()
    env.close()
    h0 = ro.carry0.get("h")
    assert h0 is not None and h0.shape == (2, 2, 16)
    # replaying the rollout's sequences reproduces the log-probabilities it was collected with
    mb = Minibatch(ro.obs, ro.state, ro.actions, ro.logp, ro.values, ro.values, ro.values, ro.alive.float())
    params, _ = learner.policy_params(mb, CommInputs(mb.positions, mb.mask > 0), ro.carry0, ro.starts,
                                      torch.arange(2))
    logp, _ = learner.actor.log_prob_entropy(params, ro.actions)
    torch.testing.assert_close(logp, ro.logp, rtol=1e-5, atol=1e-5)
    stats = _update(learner, ro)
    assert np.isfinite(stats["policy_loss"])


# ---- review fixes: ensembles, terminated-and-truncated, the graph critic under a GRU ----------


def test_an_ensemble_members_value_clip_is_centred_on_its_own_old_prediction():
    """Member 0 predicted 1.0, the members' mean was 0.5, the target is 2.0: centred on the mean,
    the clip (0.2) held member 0 at 0.7 and its gradient towards the target was zero."""
    cfg = build_config({}).algo
    values = torch.tensor([[[1.0]], [[0.0]]], requires_grad=True)  # [K=2, B=1, N=1]
    mb = Minibatch(obs=None, state=None, actions=None, old_logp=None, old_values=torch.tensor([[0.5]]),
                   advantages=None, returns=torch.tensor([[2.0]]), mask=torch.ones(1, 1),
                   old_members=torch.tensor([[[1.0], [0.0]]]))  # [B=1, K=2, N=1]
    value_loss(values, mb, cfg).backward()
    assert values.grad[0, 0, 0] < 0  # member 0 is pulled up towards 2.0
    mb.old_members = None  # the old behaviour: both centred on the mean
    values.grad = None
    value_loss(values, mb, cfg).backward()
    assert values.grad[0, 0, 0] == 0


def test_an_ensembles_first_update_clips_nothing():
    """At the first forward pass each member equals its own old prediction, so the clipped and the
    plain value loss agree (they did not when the clip was centred on the mean)."""
    torch.manual_seed(0)
    data = {"scenario": "mpe/simple_spread", "num_envs": 2, "critic": {"ensemble": 3, "sharing": "masks"},
            "algo": {"epochs": 1, "value_clip": 0.2}}
    env = VectorEnv(scenarios.make("mpe/simple_spread"), 2, seed=0)
    learner = make_algorithm(build_config(data), EnvInfo.from_env(env, "mpe/simple_spread"))
    ro = Collector(env, learner, 10, torch.device("cpu")).collect()
    env.close()
    assert ro.old_members.shape == (10, 2, 3, 3)  # [T, E, K, N]
    before = copy.deepcopy(learner)
    stats = _update(learner, ro)
    with torch.no_grad():
        data_mb, _ = before.prepare(ro)
        members = before.critic.members(ro.obs, ro.state).movedim(-2, 0)
        expected = 0.5 * masked_mean((members - data_mb.returns) ** 2, data_mb.mask)
    assert stats["value_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_terminated_and_truncated_on_one_step_is_not_bootstrapped():
    """Gymnasium allows both flags at once (pistonball sets them independently): only
    ``truncated & ~terminated`` bootstraps, in the step's hook and in next_values."""
    torch.manual_seed(0)
    cfg = build_config({"scenario": "debug/scripted", "num_envs": 1})
    env = VectorEnv(scenarios.make("debug/scripted"), 1, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    out = env.step(torch.zeros(1, 2, dtype=torch.long))
    env.close()
    both = torch.tensor([[True, False]])
    out.terminated, out.truncated = both.clone(), torch.ones(1, 2, dtype=torch.bool)
    out.final_obs, out.final_state = out.obs, out.state
    ro = _rollout(T=1, E=1, N=2)
    learner.on_step(ro, 0, out)
    assert ro.bootstrap[0, 0, 0] == 0 and ro.bootstrap[0, 0, 1] != 0
    ro.terminated[0], ro.truncated[0] = both, torch.ones(1, 2, dtype=torch.bool)
    nv = _next_values(ro, torch.full((1, 2), 5.0))
    assert nv[0, 0, 0] == 0 and nv[0, 0, 1] == ro.bootstrap[0, 0, 1]


def test_a_recurrent_actor_trains_with_the_graph_critic():
    """The update hands the graph critic whole sequences [T, E, N, O]; it batched only [B, N, O]."""
    torch.manual_seed(0)
    cfg = build_config({"scenario": "mpe/simple_spread", "num_envs": 2, "critic": {"name": "graph"},
                        "actor": {"recurrent": True, "hidden": 16}, "algo": {"epochs": 1, "minibatches": 2}})
    env = VectorEnv(scenarios.make("mpe/simple_spread"), 2, seed=0)
    learner = make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))
    ro = Collector(env, learner, 8, torch.device("cpu")).collect()
    env.close()
    stats = _update(learner, ro)
    assert np.isfinite(stats["value_loss"]) and np.isfinite(stats["explained_variance"])


def test_explained_variance_is_measured_in_the_returns_units():
    """Returns and predictions in one set of units: before the fix the returns were normalised by
    the updated statistics and the predictions by the old ones."""
    learner, ro, _ = _fresh_learner_rollout(epochs=1)
    data, explained = learner.prepare(ro)
    cfg = learner.cfg.algo
    _, returns = gae(ro.rewards, ro.values, learner.next_values(ro), ro.ended, cfg.gamma, cfg.gae_lambda)
    assert explained == pytest.approx(explained_variance(returns, ro.values, ro.alive.float()))
    # whatever the normaliser's statistics were before the update (the old code's answer moved with them)
    learner.value_norm.mean.fill_(3.0)
    learner.value_norm.std.fill_(0.1)
    assert learner.prepare(ro)[1] == pytest.approx(explained)
