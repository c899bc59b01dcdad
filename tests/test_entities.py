"""``actor.encoder=entities``: the scenario's description of its observation is right (checked
against the simulators' state), the encoder is the same function of a group in any order and of no
fixed group size, it trains under every algorithm family and sharing scheme, and a policy trained at
one N acts at another."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scenarios
from envs.factory import make_vector_env
from marl.cli import main
from marl.config import ConfigError, build_config
from marl.entities import EntityEncoder
from marl.policy import load_policy
from marl.sharing import SharingSpec
from scenarios import EntityGroup

BASE = ["scenario=mpe/simple_spread", "num_envs=2", "algo.rollout_len=10", "actor.hidden=16", "critic.hidden=16",
        "eval_episodes=2", "progress=false", "actor.encoder=entities", "checkpoint_every=0"]


@pytest.mark.parametrize("n", [3, 5])
def test_spread_entities_are_the_landmarks_and_other_agents_relative_to_the_agent(n):
    made = scenarios.make("mpe/simple_spread", n_agents=n)
    landmarks, agents, utterances = made.entities
    env = made.make_env()
    obs, _ = env.reset(seed=1)
    world = env.unwrapped.world
    for i, name in enumerate(env.agents):
        me = world.agents[i].state.p_pos
        o = obs[name]
        got = o[landmarks.start:landmarks.stop].reshape(landmarks.count, 2)
        np.testing.assert_allclose(got, [lm.state.p_pos - me for lm in world.landmarks], atol=1e-6)
        got = o[agents.start:agents.stop].reshape(agents.count, 2)
        np.testing.assert_allclose(got, [a.state.p_pos - me for j, a in enumerate(world.agents) if j != i], atol=1e-6)
        np.testing.assert_allclose(o[2:4], me, atol=1e-6)  # the own columns: velocity, position
        assert utterances.skip and utterances.stop == len(o) and not o[utterances.start:].any()
    env.close()


def test_the_batched_simulator_lays_out_the_same_entities():
    made = scenarios.make("mpe/simple_spread", n_agents=4)
    landmarks, agents, _ = made.entities
    env = make_vector_env(made, 3, seed=0, backend="batched")
    out = env.reset()
    sim = env.sim
    rel = (sim.landmarks[:, None] - sim.pos[:, :, None]).float()  # [E, N, L, 2]
    torch.testing.assert_close(out.obs[..., landmarks.start:landmarks.stop].unflatten(-1, (4, 2)), rel)
    others = out.obs[..., agents.start:agents.stop].unflatten(-1, (3, 2))
    torch.testing.assert_close(others[:, 0, 0], (sim.pos[:, 1] - sim.pos[:, 0]).float())


def _encoder(sharing: str = "full", n: int = 3, **kw) -> EntityEncoder:
    torch.manual_seed(0)
    groups = scenarios.make("mpe/simple_spread", n_agents=n).entities
    return EntityEncoder(6 * n, groups, hidden=16, sharing=SharingSpec(sharing, n), **kw)


def test_the_encoder_is_the_same_function_of_a_group_in_any_order():
    enc, n = _encoder(), 3
    obs = torch.randn(5, n, 6 * n)
    shuffled = obs.clone()
    order = torch.tensor([2, 0, 1])
    shuffled[..., 4:10] = obs[..., 4:10].unflatten(-1, (3, 2))[..., order, :].flatten(-2)
    shuffled[..., 10:14] = obs[..., 10:14].unflatten(-1, (2, 2)).flip(-2).flatten(-2)
    torch.testing.assert_close(enc(shuffled), enc(obs))
    moved = obs.clone()
    moved[..., 4] += 1.0  # one landmark elsewhere: a different input, a different output
    assert not torch.allclose(enc(moved), enc(obs))


def test_one_encoder_reads_observations_with_any_number_of_entities():
    small, large = _encoder(n=3), _encoder(n=6)
    assert [p.shape for p in small.parameters()] == [p.shape for p in large.parameters()]
    large.load_state_dict(small.state_dict())
    assert large(torch.randn(2, 6, 36)).shape == (2, 6, 16)


@pytest.mark.parametrize("sharing", ["none", "masks", "full_id"])
def test_the_encoder_follows_the_sharing_scheme(sharing):
    n = 3
    extra = n if sharing == "full_id" else 0
    torch.manual_seed(0)
    groups = scenarios.make("mpe/simple_spread", n_agents=n).entities
    enc = EntityEncoder(6 * n + extra, groups, hidden=16, sharing=SharingSpec(sharing, n))
    obs = torch.randn(1, 1, 6 * n).expand(4, n, -1)  # every agent sees the same observation
    if extra:
        obs = torch.cat([obs, torch.eye(n).expand(4, n, n)], -1)
    out = enc(obs)
    assert out.shape == (4, n, 16)
    assert not torch.allclose(out[:, 0], out[:, 1])  # per-agent weights (or ids) tell the agents apart


def test_a_group_outside_the_observation_is_a_clear_error():
    with pytest.raises(ValueError, match="spans columns 4..40 of a 18-wide observation"):
        EntityEncoder(18, (EntityGroup("landmarks", 4, 18, 2),), hidden=8)


def test_a_scenario_without_entities_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"^actor.encoder=entities needs a scenario that names the entities .*"
                                          r"mpe/simple_tag does not \(scenarios that do: mpe/simple_spread"):
        build_config({"scenario": "mpe/simple_tag", "actor": {"encoder": "entities"}})


@pytest.mark.parametrize("algo", ["mappo", "ippo", "qmix", "masac"])
def test_every_algorithm_family_trains_with_the_entity_encoder(tmp_path, algo):
    """The encoder's weights are learnt: the last checkpoint's differ from the first one's."""
    args = [*BASE, f"algo={algo}", "total_steps=80", "checkpoint_every=20", "keep_checkpoints=10", f"out={tmp_path}"]
    if algo in ("qmix", "masac"):
        args += ["algo.learning_starts=20", "algo.batch_size=2"]
    assert main(["train", *args]) == 0
    assert isinstance(load_policy(tmp_path).actor.body, EntityEncoder)
    first, *_, last = sorted((tmp_path / "checkpoints").glob("*.pt"))
    key = "actor.body.entity_in.0.weight"
    weights = [torch.load(p, weights_only=False)["algorithm"]["modules"][key] for p in (first, last)]
    assert not torch.equal(*weights)


def test_a_policy_trained_at_three_agents_acts_at_five(tmp_path, capsys):
    assert main(["train", *BASE, "total_steps=40", "checkpoint_every=20", f"out={tmp_path}"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path), "--n_agents", "5", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "'n_agents': 5" in out, out
