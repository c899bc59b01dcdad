"""IQL, VDN and QMIX (``marl/algos/qlearning.py``) and their replay buffer (``marl/replay.py``):
the mixers, the TD targets on hand-computed cases, invalid actions, what each env step stores,
replaying the acted Q-values exactly, training end to end with every feature, determinism and an
exact resume with a filled buffer, and (slow) that they learn on simple_spread."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import marl
import scenarios
from envs import VectorEnv
from envs.vector import EnvOutput
from marl import checkpoint as ckpt
from marl.algos import EnvInfo, Progress, make_algorithm
from marl.algos.offpolicy import RunningMoments
from marl.algos.qlearning import NextQ, QMixer, SumMixer, next_action_values, segment_returns
from marl.cli import main
from marl.collector import Collector
from marl.communication import CommInputs
from marl.config import ConfigError, build_config
from marl.evaluation import evaluate
from marl.nets import Actor
from marl.replay import SegmentBuffer
from marl.rollout import Rollout
from tests.test_reliability import assert_same, comparable_rows, final_state

ALGOS = ["iql", "vdn", "qmix", "res_qmix"]
# tiny runs: 2 envs x 10 steps per update, learning from the first update on
TINY = ["scenario=mpe/simple_spread", "num_envs=2", "algo.rollout_len=10", "algo.learning_starts=20",
        "algo.batch_size=2", "algo.updates_per_rollout=2", "algo.target_update_interval=3", "actor.hidden=16",
        "eval_episodes=2", "progress=false"]


def _algo(name: str, scenario: str = "mpe/simple_spread", E: int = 3, **sections):
    data = {"scenario": scenario, "algo": {"name": name, "learning_starts": 0, "batch_size": 2}, "num_envs": E,
            "actor": {"hidden": 16}}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    cfg = build_config(data)
    env = VectorEnv(scenarios.make(cfg.scenario, **cfg.scenario_args), E, seed=0)
    torch.manual_seed(0)
    return cfg, env, make_algorithm(cfg, EnvInfo.from_env(env, cfg.scenario))


def _rows(run) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _time_first(segments: dict) -> dict:
    return {k: v if k.startswith("carry0.") else v.transpose(0, 1) for k, v in segments.items()}


# ---- the mixers ------------------------------------------------------------------------------------


def test_qmix_mixer_is_monotonic_in_every_agent_and_vdn_is_the_sum():
    torch.manual_seed(0)
    mixer = QMixer(n_agents=4, state_dim=10, embed=32, hyper_hidden=64)
    with torch.no_grad():  # larger hypernetwork outputs than at init, of both signs before the abs
        for p in mixer.parameters():
            p.mul_(3)
    qs = (torch.randn(5, 64, 4) * 10).requires_grad_()
    state = torch.randn(5, 64, 10) * 3
    q_tot = mixer(qs, state)
    assert q_tot.shape == (5, 64)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad >= 0).all() and (grad > 0).float().mean() > 0.9
    # it is a state-conditioned mix, not a sum: another state gives another Q_tot for the same Q-values
    assert not torch.allclose(mixer(qs, state + 1.0), q_tot)
    assert torch.equal(SumMixer()(qs, state), qs.sum(-1))


def test_a_layernormed_state_makes_the_mixer_blind_to_the_states_scale():
    """``algo.state_norm=layernorm``: the hypernetworks see the state through a LayerNorm, so scaling
    the state changes nothing (the raw mixer's weights grow with it); still monotonic."""
    _, env, algo = _algo("qmix", algo={"state_norm": "layernorm"})
    env.close()
    _, env, raw = _algo("qmix")
    env.close()
    assert isinstance(algo.mixer.state_norm, torch.nn.LayerNorm) and isinstance(raw.mixer.state_norm, torch.nn.Identity)
    qs, state = torch.randn(8, 3).requires_grad_(), torch.randn(8, env.state_dim)
    q_tot = algo.mixer(qs, state)
    assert torch.allclose(algo.mixer(qs, 10.0 * state), q_tot, atol=1e-4)
    assert not torch.allclose(raw.mixer(qs, 10.0 * state), raw.mixer(qs, state), atol=1e-2)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad >= 0).all()


def test_the_mixer_counts_in_parameters_and_dead_agents_enter_it_as_zero():
    cfg, env, algo = _algo("qmix")
    env.close()
    assert set(algo.networks()) == {"actor", "mixer"}
    assert algo.parameter_counts()["mixer"]["weights"] == sum(p.numel() for p in algo.mixer.parameters())
    assert algo.describe() == "QMIX mixer, replay 5000 segments"
    _, env, vdn = _algo("vdn")
    env.close()
    assert set(vdn.networks()) == {"actor"} and vdn.describe() == "VDN sum, replay 5000 segments"
    # the team loss: Q_tot of the acting agents, the mean reward over them, the bootstrap over those
    # whose future counts (1-step, gamma 0.5)
    vdn.cfg.algo.gamma = 0.5
    chosen = torch.tensor([[[1.0, 2.0, 100.0]], [[3.0, 4.0, 5.0]]])  # [T=2, B=1, N=3]
    nxt = NextQ(torch.tensor([[[10.0, 20.0, 1000.0]], [[30.0, 40.0, 50.0]]]).unsqueeze(-1))  # one action each
    b = {"alive": torch.tensor([[[True, True, False]], [[True, True, True]]]),
         "boot": torch.tensor([[[True, True, False]], [[True, False, False]]]),  # t=1: agents 1, 2 terminated
         "truncated": torch.zeros(2, 1, 3, dtype=torch.bool),
         "rewards": torch.tensor([[[-1.0, -3.0, 50.0]], [[-3.0, -6.0, -9.0]]]),
         "state": torch.zeros(2, 1, 5), "next_state": torch.zeros(2, 1, 5)}
    pred, target, mask = vdn.td_pieces(chosen, nxt, b)
    assert pred.tolist() == [[3.0], [12.0]]  # agent 2 is not acting at t=0: its Q (100) is left out
    assert target.tolist() == [[-2.0 + 0.5 * 30.0], [-6.0 + 0.5 * 30.0]]  # its reward and value too
    assert mask.tolist() == [[True], [True]]
    # the mixer's gain along +1 on every acting agent's Q: VDN's is the number acting
    assert vdn.mixer_stats(chosen, pred, b, mask)["mixer_gain"].item() == pytest.approx((2 + 3) / 2)
    qb = {**b, "state": torch.randn(2, 1, algo.mixer.hyper_b1.in_features)}
    q = chosen * b["alive"]
    gain = algo.mixer_stats(chosen, algo.mixer(q, qb["state"]), qb, mask)["mixer_gain"]  # QMIX's: positive
    by_hand = algo.mixer(q + b["alive"].float(), qb["state"]) - algo.mixer(q, qb["state"])
    assert gain.item() > 0 and gain.item() == pytest.approx(by_hand.mean().item())
    vdn.cfg.algo.team_reward = "sum"  # EPyMARL's reward_scalarisation=sum: the acting agents' rewards added
    _, target, _ = vdn.td_pieces(chosen, nxt, b)
    assert target.tolist() == [[-4.0 + 0.5 * 30.0], [-18.0 + 0.5 * 30.0]]


# ---- targets -----------------------------------------------------------------------------------------


def _hand_segment():
    """T=3, one env, 2 agents. Agent 0 terminates at t=1 (a new episode at t=2); agent 1's episode is
    truncated at t=1 (it bootstraps from its final observation's value, 40)."""
    rewards = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).unsqueeze(1)  # [T, B=1, N=2]
    values = torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]).unsqueeze(1)
    boot = torch.tensor([[True, True], [False, True], [True, True]]).unsqueeze(1)
    truncated = torch.tensor([[False, False], [False, True], [False, False]]).unsqueeze(1)
    return rewards, values, boot, boot & ~truncated


def test_one_step_targets_stop_at_a_termination_and_bootstrap_a_truncation():
    rewards, values, boot, cont = _hand_segment()
    out = segment_returns(rewards, values, boot, cont, gamma=0.5)
    assert out.squeeze(1).tolist() == [[1 + 0.5 * 10, 2 + 0.5 * 20], [3.0, 4 + 0.5 * 40], [5 + 0.5 * 50, 6 + 0.5 * 60]]


def test_n_step_targets_by_hand():
    rewards, values, boot, cont = _hand_segment()
    out = segment_returns(rewards, values, boot, cont, gamma=0.5, n_step=2).squeeze(1)
    # t=0: agent 0's episode terminates at t=1 (no value after it); agent 1's is truncated there
    # (the final observation's value, discounted twice); t=2: the segment ends (one step)
    assert out.tolist() == [[1 + 0.5 * 3, 2 + 0.5 * 4 + 0.25 * 40], [3.0, 4 + 0.5 * 40], [30.0, 36.0]]
    assert torch.equal(segment_returns(rewards, values, boot, cont, 0.5, n_step=1),
                       segment_returns(rewards, values, boot, cont, 0.5, td_lambda=0.0))
    # n beyond the episode and the segment changes nothing more
    assert torch.equal(segment_returns(rewards, values, boot, cont, 0.5, n_step=3).squeeze(1)[1:], out[1:])


def test_td_lambda_targets_by_hand():
    rewards, values, boot, cont = _hand_segment()
    out = segment_returns(rewards, values, boot, cont, gamma=0.5, td_lambda=0.5).squeeze(1)
    # G_2 = r + g V (segment end); G_1 = 3 (terminated), 4 + 0.5*40 (truncated); G_0 = r + g((1-l)V + l G_1)
    assert out.tolist() == [[1 + 0.5 * (0.5 * 10 + 0.5 * 3), 2 + 0.5 * (0.5 * 20 + 0.5 * 24)], [3.0, 24.0],
                            [30.0, 36.0]]


def test_double_q_takes_the_online_argmax_and_the_target_value():
    online = torch.tensor([[1.0, 5.0, 2.0, -1e9]])
    target = torch.tensor([[7.0, 0.5, 9.0, -1e9]])
    assert next_action_values(target).tolist() == [9.0]
    assert next_action_values(target, online).tolist() == [0.5]
    # an invalid action (-1e9 in both nets' outputs) is never the max nor the argmax
    assert next_action_values(torch.tensor([[-1e9, -50.0]]), torch.tensor([[-1e9, -60.0]])).tolist() == [-50.0]


def test_each_env_step_stores_what_follows_it():
    """A termination does not bootstrap; a truncation bootstraps from the final observation (not the
    reset one); inside an episode what follows is the next observation."""
    cfg, env, algo = _algo("iql", E=2)
    env.close()
    N, obs_dim = 3, env.obs_dim
    ro = Rollout(1, 2)
    ro.put(0, alive=torch.ones(2, N, dtype=torch.bool))
    reset_obs, final_obs = torch.zeros(2, N, obs_dim), torch.ones(2, N, obs_dim)
    out = EnvOutput(obs=reset_obs, state=torch.zeros(2, 54), alive=torch.ones(2, N, dtype=torch.bool),
                    reward=torch.zeros(2, N),
                    terminated=torch.tensor([[True, True, True], [False, False, False]]),
                    truncated=torch.tensor([[False, False, False], [True, True, True]]),
                    final_obs=final_obs, final_state=torch.ones(2, 54), done_env=torch.tensor([True, True]),
                    final_alive=torch.ones(2, N, dtype=torch.bool))
    algo.on_step(ro, 0, out)
    assert ro.boot[0].tolist() == [[False] * 3, [True] * 3]
    assert torch.equal(ro.next_obs[0], final_obs) and torch.equal(ro.next_state[0], torch.ones(2, 54))

    # a real rollout over a whole 25-step episode: the truncation at its last step
    _, env, algo = _algo("iql", E=2)
    ro = Collector(env, algo, 25, torch.device("cpu")).collect()
    env.close()
    assert ro.truncated[24].all() and ro.boot.all() and not ro.terminated.any()
    assert torch.equal(ro.next_obs[:24], ro.obs[1:])  # inside the episode: the next observation
    assert not torch.equal(ro.next_obs[24], ro.obs[0])  # the final observation, not the reset one
    assert torch.equal(ro.next_alive, ro.alive)


# ---- invalid actions --------------------------------------------------------------------------------


def test_invalid_actions_are_never_chosen_nor_bootstrapped_from():
    """simple_speaker_listener pads the speaker's 3 actions to the listener's 5."""
    cfg, env, algo = _algo("qmix", "mpe/simple_speaker_listener", E=4)
    invalid = algo.actor.invalid
    assert invalid.any() and not invalid.all(-1).any()
    with torch.no_grad():  # the raw head prefers every padded action by far
        algo.actor.head.bias[invalid.any(0)] = 1e6
    obs = torch.randn(500, 2, env.obs_dim) * 3
    valid = ~invalid
    agent = torch.arange(2).expand(500, 2)
    for eps in (0.0, 1.0):
        algo.epsilon = eps
        with torch.no_grad():
            action = algo.act(obs, {}, CommInputs()).action
        assert valid[agent, action].all(), eps
    seen = torch.zeros_like(valid)
    seen[agent, action] = True
    assert torch.equal(seen, valid)  # epsilon=1 draws every valid action, and only those
    with torch.no_grad():
        q, _, _ = algo.actor(obs)
        target, _, _ = algo.target_actor(obs)
    for online in (None, q):
        v = next_action_values(target, online)
        assert (v > -1e8).all()
    assert valid[agent, q.argmax(-1)].all()
    # a short run: the collected actions are valid too
    algo.epsilon = 1.0
    ro = Collector(env, algo, 10, torch.device("cpu")).collect()
    env.close()
    assert valid[torch.arange(2).expand_as(ro.actions), ro.actions].all()
    assert algo.update(ro, Progress(0, 1000))["td_loss"] >= 0


# ---- replaying what the rollout did -----------------------------------------------------------------

FEATURES = {
    "plain": {},
    "gru": {"actor": {"recurrent": True}},
    "gru+gate": {"actor": {"recurrent": True}, "comm": {"graph": "ring", "gating": True}},
    "delay in training": {"comm": {"graph": "complete", "channel_delay": True, "channel_in_training": True}},
    "learned graph": {"comm": {"graph": "learned"}},
    "gru+learned graph": {"actor": {"recurrent": True}, "comm": {"graph": "learned"}},
    "knn, every channel fault": {"comm": {"graph": "knn", "k": 2, "channel_drop": 0.3, "channel_noise": 0.5,
                                          "channel_delay": True, "channel_in_training": True}},
}


@pytest.mark.parametrize("feature", list(FEATURES))
def test_the_update_replays_the_acted_q_values_exactly(feature):
    """At the parameters the rollout acted with, the Q-network unrolled over a stored segment (from its
    start carry, with its comm decisions) gives the Q-values the actor acted on."""
    cfg, env, algo = _algo("qmix", **FEATURES[feature])
    with torch.no_grad():  # sharp outputs: a redrawn decision would show
        algo.actor.head.weight.mul_(100)
    ro = Collector(env, algo, 30, torch.device("cpu")).collect()  # an episode ends at step 25
    env.close()
    assert ro.starts[25].all()
    b = _time_first(algo.segments(ro))
    with torch.no_grad():
        q, _, _ = algo.unroll(algo.actor, b, current=True, following=False, grad=False)
    acted = q.gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1)
    assert (acted - ro.q).abs().max() < 1e-4
    if "gate" in feature:
        assert 0 < ro.replay["gate"].mean() < 1
        b.pop("replay.gate")  # drawn again instead: other Q-values
        with torch.no_grad():
            q2, _, _ = algo.unroll(algo.actor, b, current=True, following=False, grad=False)
        assert (q2 - q).abs().max() > 1e-2


# ---- the replay buffer --------------------------------------------------------------------------------


def test_the_ring_buffer_overwrites_the_oldest_samples_distinct_segments_and_round_trips():
    buf = SegmentBuffer(5)
    seg = lambda start, n: {"x": torch.arange(start, start + n).float()[:, None].expand(n, 3).clone()}  # noqa: E731
    buf.add(seg(0, 3))
    buf.add({**seg(3, 3), "noise": torch.ones(3, 2)})  # a field that appears later
    assert (len(buf), buf.pos, buf.added) == (5, 1, 6)
    assert buf.data["x"][:, 0].tolist() == [5, 1, 2, 3, 4]  # segment 5 overwrote segment 0
    torch.manual_seed(0)
    batch = buf.sample(5)
    assert sorted(batch["x"][:, 0].tolist()) == [1, 2, 3, 4, 5] and "noise" not in batch  # not in segments 1, 2
    assert "noise" in buf.select(torch.tensor([0, 3, 4]))
    with pytest.raises(ValueError, match="cannot sample 6"):
        buf.sample(6)
    copy = SegmentBuffer(5)
    copy.load_state_dict(buf.state_dict())
    for b in (buf, copy):
        b.add(seg(6, 2))
    assert_same({"d": buf.data, "p": buf.present}, {"d": copy.data, "p": copy.present})
    torch.manual_seed(1)
    first = buf.sample(4)
    torch.manual_seed(1)
    assert_same(first, copy.sample(4))


# ---- end to end -------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ALGOS)
def test_marl_train_end_to_end(tmp_path, algo, capsys):
    run = tmp_path / "run"
    assert main(["train", f"algo={algo}", *TINY, "total_steps=100", f"out={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["algo"] == algo and summary["env_steps"] == 100
    assert ("mixer" in summary["parameters"]) == algo.endswith("qmix")
    rows = _rows(run)
    assert len(rows) == 5
    for key in ("td_loss", "q_mean", "target_mean", "epsilon", "grad_norm", "buffer_size"):
        assert all(r[key] for r in rows), key
    assert [int(float(r["buffer_size"])) for r in rows] == [2, 4, 6, 8, 10]
    assert float(rows[0]["epsilon"]) == 1.0 and float(rows[-1]["epsilon"]) < 1.0
    assert "replay 5000 segments" in capsys.readouterr().out
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["algorithm"]
    assert state["replay"]["size"] == 10 and int(state["modules"]["grad_steps"]) == 10
    # the Q-network is the actor: it loads and plays greedily without the algorithm
    policy = marl.load_policy(run)
    assert len(marl.evaluate(policy, episodes=2).returns) == 2


def test_before_learning_starts_the_loss_is_reported_without_a_step(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "algo=vdn", *TINY, "algo.learning_starts=60", "total_steps=100", f"out={run}"]) == 0
    rows = _rows(run)
    assert [bool(r["grad_norm"]) for r in rows] == [False, False, True, True, True]
    assert all(r["td_loss"] for r in rows)


def test_value_based_config_errors_are_one_line(capsys, tmp_path):
    for args, message in [
        (["algo=qmix", "algo.n_step=3", "algo.td_lambda=0.5"], "n_step=3 and td_lambda=0.5 are two kinds of returns"),
        (["algo=vdn", "critic=centralized"], "algo=vdn has no critic; remove critic=centralized"),
        (["algo=iql", "algo.buffer_segments=8", "algo.batch_size=4", "num_envs=16"],
         "algo.buffer_segments=8 is less than one collect"),
        (["algo=qmix", "algo.epochs=3"], "unknown config key 'algo.epochs'"),
        (["algo=qmix", "scenario=sisl/multiwalker"],
         "algo=qmix supports discrete actions; scenario 'sisl/multiwalker'"),
    ]:
        assert main(["train", *args, "total_steps=100", f"out={tmp_path / 'r'}", "progress=false"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    with pytest.raises(ConfigError, match="batch_size=64 exceeds buffer_segments=32"):
        build_config({"algo": {"name": "qmix", "batch_size": 64, "buffer_segments": 32}})


def test_masks_and_a_knn_graph_under_qmix(tmp_path):
    """Kaleidoscope masks on the Q-network (diversity loss, thresholds, statistics, heatmaps) with
    messages over a knn graph, under QMIX."""
    run = tmp_path / "run"
    assert main(["train", "algo=qmix", *TINY, "sharing=masks", "comm.graph=knn", "comm.k=1", "total_steps=100",
                 f"out={run}"]) == 0
    rows = _rows(run)
    assert all(r["diversity_loss"] and r["mask_distance"] and r["edges_used_frac"] for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["parameters"]["actor"]["thresholds"] > 0 and summary["parameters"]["mixer"]["thresholds"] == 0
    assert "mask_overlap_png" in summary


def test_q_values_are_decentralized_under_communication():
    """Ring, one round: agent 0 hears agents 1 and 4 only. Another observation of agent 2 leaves agent
    0's Q-values bit-identical; another one of agent 1 changes them."""
    cfg, env, algo = _algo("qmix", E=2, comm={"graph": "ring", "rounds": 1}, n_agents=5)
    out = env.reset()
    env.close()
    actor = algo.actor.eval()
    inputs = CommInputs(out.positions, out.alive)
    with torch.no_grad():
        base, _, _ = actor(out.obs, None, inputs)
        far = out.obs.clone()
        far[:, 2] += torch.randn_like(far[:, 2])
        near = out.obs.clone()
        near[:, 1] += torch.randn_like(near[:, 1])
        assert torch.equal(actor(far, None, inputs)[0][:, 0], base[:, 0])
        assert not torch.allclose(actor(near, None, inputs)[0][:, 0], base[:, 0])
        greedy, _, _, _ = actor.act(far, None, deterministic=True, inputs=inputs)
    assert torch.equal(greedy[:, 0], base[:, 0].argmax(-1))


# ---- determinism and exact resume --------------------------------------------------------------------

RESUMES = {
    "qmix, gru + learned graph + gate + noisy delayed channel (pettingzoo)": [
        "algo=qmix", "backend=pettingzoo", "actor.recurrent=true", "comm.graph=learned", "comm.gating=true",
        "comm.channel_in_training=true", "comm.channel_delay=true", "comm.channel_noise=0.05"],
    "vdn, td_lambda + soft targets (batched)": ["algo=vdn", "backend=batched", "algo.td_lambda=0.8", "algo.tau=0.05"],
    "iql, n-step + masks (batched)": ["algo=iql", "backend=batched", "algo.n_step=3", "sharing=masks"],
    "qmix, rmsprop (batched)": ["algo=qmix", "backend=batched", "algo.optimizer=rmsprop"],
    "res_qmix, td_lambda (batched)": ["algo=res_qmix", "backend=batched", "algo.td_lambda=0.5"],
    "qmix, standardised rewards, layernormed state (batched)": ["algo=qmix", "backend=batched",
                                                                "algo.standardise_rewards=true",
                                                                "algo.state_norm=layernorm"],
}


def test_standardised_rewards_use_the_running_moments_of_every_reward_collected():
    moments, seen = RunningMoments(), []
    assert moments.standardise(torch.tensor([3.0])).item() == 3.0  # nothing seen: unchanged
    for chunk in (torch.randn(7) * 3 + 1, torch.randn(50) - 2, torch.tensor([]), torch.randn(1)):
        moments.update(chunk)
        seen.append(chunk)
    every = torch.cat(seen).double()
    assert moments.count == 58 and moments.mean == pytest.approx(every.mean().item())
    assert moments.std == pytest.approx(every.std(unbiased=False).item())

    _, env, algo = _algo("qmix", algo={"standardise_rewards": True})
    ro = Collector(env, algo, 25, torch.device("cpu")).collect()
    env.close()
    algo.update(ro, Progress(0, 1000))
    rewards = ro.rewards[ro.alive]
    assert algo.reward_moments.count == rewards.numel()
    b = algo.as_batch(algo.segments(ro))  # what the losses see: these rewards, standardised
    assert torch.allclose(b["rewards"], (ro.rewards - rewards.mean()) / rewards.std(unbiased=False), atol=1e-5)
    assert b["rewards"][b["alive"]].mean().abs() < 1e-5


def test_the_optimizer_option_picks_pymarls_rmsprop_over_every_q_parameter():
    _, _, adam = _algo("qmix")
    _, _, rms = _algo("qmix", algo={"optimizer": "rmsprop"})
    assert isinstance(adam.q_opt, torch.optim.Adam) and isinstance(rms.q_opt, torch.optim.RMSprop)
    assert rms.q_opt.param_groups[0]["alpha"] == 0.99
    moved = {id(p) for g in rms.q_opt.param_groups for p in g["params"]}
    assert moved == {id(p) for p in rms.params} and any(id(p) in moved for p in rms.mixer.parameters())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", list(RESUMES))
def test_same_seed_is_bit_identical_and_a_resume_with_a_filled_buffer_equals_the_whole_run(tmp_path, case):
    k_steps = 3 * 20  # K = 3 updates of 2 envs x 10 steps; 2K in one go == K, checkpoint, resume, K more
    args = [*TINY, *RESUMES[case]]
    whole, again, split = tmp_path / "whole", tmp_path / "again", tmp_path / "split"
    for run in (whole, again):
        assert main(["train", *args, f"total_steps={2 * k_steps}", f"checkpoint_every={k_steps}", f"out={run}"]) == 0
    assert comparable_rows(whole) == comparable_rows(again)
    assert_same(final_state(whole), final_state(again))

    assert main(["train", *args, f"total_steps={k_steps}", f"checkpoint_every={k_steps}", f"out={split}"]) == 0
    mid = ckpt.load_checkpoint(ckpt.latest_checkpoint(split))
    assert mid["algorithm"]["replay"]["size"] == 6 and int(mid["algorithm"]["modules"]["grad_steps"]) == 6
    assert main(["train", *args, f"total_steps={2 * k_steps}", f"checkpoint_every={k_steps}", f"out={split}",
                 "resume=true"]) == 0
    assert [int(r["iteration"]) for r in _rows(split)] == list(range(1, 7))
    assert comparable_rows(split) == comparable_rows(whole)
    assert_same(final_state(split), final_state(whole))


def test_a_checkpoint_without_its_replay_buffer_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["algo=qmix", *TINY, "checkpoint_every=20"]
    assert main(["train", *args, "total_steps=20", f"out={run}"]) == 0
    path = ckpt.latest_checkpoint(run)
    payload = ckpt.load_checkpoint(path)
    del payload["algorithm"]["replay"]
    torch.save(payload, path)
    assert main(["train", *args, "total_steps=40", f"out={run}", "resume=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no replay buffer for algo=qmix" in err, err


# ---- learning ----------------------------------------------------------------------------------------


def _standing_still(scenario: str, episodes: int) -> float:
    """The greedy return of a policy that always takes action 0 (no force: the agents stay where they
    start), on the episodes a run's final evaluation plays."""
    sc = scenarios.make(scenario)
    env = VectorEnv(sc, 1)
    env.close()
    still = Actor(env.layout, hidden=8)
    with torch.no_grad():
        still.head.weight.zero_()
        still.head.bias.zero_()
        still.head.bias[0] = 1.0
    return evaluate(sc, still, episodes, seed=0).mean


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("algo", ALGOS)
def test_value_decomposition_learns_simple_spread(tmp_path, algo):
    """100k env steps on the batched simple_spread (about 20-35 s each on one core), with EPyMARL's
    ReLU agents and learning rate: the greedy policy beats the uniform random one by a clear margin,
    and standing still (a constant policy a Q-network falls into easily, ~2 better than random)."""
    run = tmp_path / "run"
    assert main(["train", f"algo={algo}", "scenario=mpe/simple_spread", "backend=batched", "total_steps=100000",
                 "actor.activation=relu", "lr=0.0005", "eval_episodes=50", "checkpoint_every=0", "progress=false",
                 f"out={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    trained, random_ = summary["final_eval"]["return_mean"], summary["random_policy"]["return_mean"]
    assert trained > random_ + 4.0, summary
    assert trained > _standing_still("mpe/simple_spread", 50) + 2.0, summary
