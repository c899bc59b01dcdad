"""RES-QMIX (``marl/algos/res.py``): the joint actions one deviation from the greedy one, the softmax
bootstrap over them on hand-computed cases (its two limits, invalid actions, agents whose future does
not count), the Monte Carlo returns, the penalty in the loss, and the mixer mixing many joint actions
at one state exactly as it mixes one."""

from __future__ import annotations

import pytest
import torch

from marl.algos.qlearning import NextQ, QMixer, SumMixer
from marl.algos.res import monte_carlo_returns, one_deviation_joint_values
from marl.collector import Collector
from marl.config import ConfigError, build_config
from tests.test_value_decomposition import _algo, _time_first

# one step of one env, 2 agents with 3 actions: agent 0's greedy action is 1, agent 1's is 2
ONLINE = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 5.0]]).view(1, 1, 2, 3)
TARGET = torch.tensor([[10.0, 20.0, 30.0], [1.0, 2.0, 3.0]]).view(1, 1, 2, 3)


def test_the_joint_actions_one_deviation_from_the_greedy_one():
    values = one_deviation_joint_values(TARGET, ONLINE.argmax(-1))
    assert values.shape == (1, 1, 2, 3, 2)
    # agent 0 deviates (agent 1 stays at its greedy action 2), then agent 1 (agent 0 at its action 1)
    assert values[0, 0, 0].tolist() == [[10.0, 3.0], [20.0, 3.0], [30.0, 3.0]]
    assert values[0, 0, 1].tolist() == [[20.0, 1.0], [20.0, 2.0], [20.0, 3.0]]


def _res_with_sum_mixers(beta: float):
    _, env, algo = _algo("res_qmix", algo={"softmax_beta": beta})
    env.close()
    algo.mixer = algo.target_mixer = SumMixer()  # Q_tot by hand
    algo.actor.invalid = torch.zeros(2, 3, dtype=torch.bool)  # the 2 x 3 actions below, all valid
    return algo


def _step(boot=(True, True)) -> dict:
    return {"boot": torch.tensor([[list(boot)]]), "next_state": torch.zeros(1, 1, 4)}


def test_the_softmax_bootstrap_goes_from_the_mean_to_the_double_q_value():
    # the six joint actions' target Q_tot: agent 0 deviating 13, 23, 33; agent 1 deviating 21, 22, 23
    mean = (13 + 23 + 33 + 21 + 22 + 23) / 6
    assert _res_with_sum_mixers(0.0).next_team_value(NextQ(TARGET, ONLINE), _step()).item() == pytest.approx(mean)
    # a large beta: all weight on the online greedy joint action (online Q_tot 7, twice), valued 20 + 3
    sharp = _res_with_sum_mixers(50.0).next_team_value(NextQ(TARGET, ONLINE), _step())
    assert sharp.item() == pytest.approx(23.0)
    # in between, by hand: online Q_tot 6, 7, 5 (agent 0 deviating) and 2, 2, 7 (agent 1)
    online_tot = torch.tensor([6.0, 7.0, 5.0, 2.0, 2.0, 7.0])
    target_tot = torch.tensor([13.0, 23.0, 33.0, 21.0, 22.0, 23.0])
    by_hand = (torch.softmax(0.5 * online_tot, 0) * target_tot).sum()
    assert _res_with_sum_mixers(0.5).next_team_value(NextQ(TARGET, ONLINE), _step()).item() == pytest.approx(
        by_hand.item())
    # without double Q the target network weighs as well: a large beta gives its own greedy value
    assert _res_with_sum_mixers(50.0).next_team_value(NextQ(TARGET), _step()).item() == pytest.approx(33.0)


def test_invalid_actions_take_no_weight_and_an_agent_without_a_future_enters_as_zero():
    online, target = ONLINE.clone(), TARGET.clone()
    online[..., 0, 2] = target[..., 0, 2] = -1e9  # agent 0's action 2 is padding, as the actor outputs it
    algo = _res_with_sum_mixers(0.0)
    algo.actor.invalid[0, 2] = True
    # beta 0: the mean over the five valid joint actions only
    value = algo.next_team_value(NextQ(target, online), _step())
    assert value.item() == pytest.approx((13 + 23 + 21 + 22 + 23) / 5)
    # agent 1 terminated: its Q counts as 0 whatever it does, so its deviations all value 20
    value = _res_with_sum_mixers(0.0).next_team_value(NextQ(TARGET, ONLINE), _step(boot=(True, False)))
    assert value.item() == pytest.approx((10 + 20 + 30 + 20 + 20 + 20) / 6)


def test_monte_carlo_returns_stop_at_an_episode_end_and_at_the_segment_end():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0])
    cont = torch.tensor([True, False, True, True])  # the episode ends after step 1; the last one goes on
    assert monte_carlo_returns(rewards, cont, 0.5).tolist() == [1 + 0.5 * 2, 2.0, 3 + 0.5 * 4, 4.0]


def test_the_penalty_adds_mc_penalty_times_the_gap_to_the_monte_carlo_return():
    losses = {}
    for coef in (0.0, 0.5):
        cfg, env, algo = _algo("res_qmix", algo={"mc_penalty": coef})
        ro = Collector(env, algo, 25, torch.device("cpu")).collect()
        env.close()
        b = _time_first(algo.segments(ro))
        losses[coef] = algo.td_loss(b)
    (zero, stats0), (half, stats) = losses[0.0], losses[0.5]
    assert stats["td_loss"] == stats0["td_loss"] and stats["mc_gap"] == stats0["mc_gap"] > 0
    assert (half - zero).item() == pytest.approx(0.5 * stats["mc_gap"].item(), rel=1e-5)
    # the returns are the team's (mean reward over the agents) from each step to the episode's end
    team = ro.rewards.mean(-1)  # [T, E]: every agent acts at every step of simple_spread
    by_hand = torch.stack([sum(0.99**k * team[t + k] for k in range(25 - t)) for t in range(25)])
    assert stats["mc_return_mean"].item() == pytest.approx(by_hand.mean().item(), rel=1e-5)


def test_the_mixer_mixes_many_joint_actions_at_a_state_as_it_mixes_one():
    torch.manual_seed(0)
    mixer = QMixer(n_agents=3, state_dim=6)
    qs, state = torch.randn(4, 5, 7, 2, 3), torch.randn(4, 5, 6)
    many = mixer(qs, state)
    assert many.shape == (4, 5, 7, 2)
    one = mixer(qs[:, :, 3, 1], state)
    assert torch.allclose(many[:, :, 3, 1], one, atol=1e-6)


def test_negative_settings_are_config_errors():
    for key in ("softmax_beta", "mc_penalty"):
        with pytest.raises(ConfigError, match=f"{key} must be >= 0"):
            build_config({"algo": {"name": "res_qmix", key: -0.1}})


def test_with_no_penalty_and_a_sharp_softmax_the_loss_is_qmixs():
    """The monotonic mixer's Q_tot is largest at the greedy joint action among its one-agent
    deviations, so a large beta recovers QMIX's double-Q bootstrap; at the same parameters and batch
    the losses agree."""
    _, env, qmix = _algo("qmix")
    _, env2, res = _algo("res_qmix", algo={"softmax_beta": 1e4, "mc_penalty": 0.0})
    env2.close()
    ro = Collector(env, qmix, 25, torch.device("cpu")).collect()
    env.close()
    b = _time_first(qmix.segments(ro))
    (q_loss, q_stats), (r_loss, r_stats) = qmix.td_loss(b), res.td_loss(b)
    assert q_stats["target_mean"].item() == pytest.approx(r_stats["target_mean"].item(), rel=1e-5)
    assert q_loss.item() == pytest.approx(r_loss.item(), rel=1e-5)
    # RES's defaults (beta 0.05) bootstrap lower: a near-mean over deviations is below their max
    _, env3, soft = _algo("res_qmix", algo={"mc_penalty": 0.0})
    env3.close()
    assert soft.td_loss(b)[1]["target_mean"] < q_stats["target_mean"]
