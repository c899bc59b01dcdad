"""QMIX variants behind docs/results.md's "where QMIX's divergence comes from" (diagnostics, not
algorithms of the package). Each changes one thing against ``algo=qmix``; run one with, e.g.:

    .venv/bin/python -m marl.cli train scenario=mpe/simple_spread algo=qmix_state_free seed=0 \
        total_steps=500000 backend=batched actor.activation=relu lr=0.0005 eval_every=100000 \
        plugins=[benchmarks/plugins/qmix_divergence.py]

and read ``mixer_gain`` and ``q_mean`` in the run's metrics.csv.
"""

from __future__ import annotations

import torch

from marl.algos import register_algorithm
from marl.algos.offpolicy import polyak
from marl.algos.qlearning import QMIX, QMixer
from marl.ppo import masked_mean


@register_algorithm("qmix_state_free")
class StateFreeQMIX(QMIX):
    """QMIX whose mixer sees a zero state: monotonic mixing weights learnt, but not conditioned on s."""

    def td_pieces(self, chosen, following, b):
        zero = {"state": torch.zeros_like(b["state"]), "next_state": torch.zeros_like(b["next_state"])}
        return super().td_pieces(chosen, following, {**b, **zero})


@register_algorithm("qmix_head_gain1")
class UnitHeadQMIX(QMIX):
    """QMIX whose Q-head starts orthogonal at gain 1 instead of the policy head's 0.01."""

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        with torch.no_grad():
            for p in self.actor.head.parameters():
                if p.dim() >= 2:
                    torch.nn.init.orthogonal_(p, 1.0)
        polyak([(self.target_actor, self.actor)], 1.0)


class _PenalisedQMIX(QMIX):
    """QMIX plus ``coef`` x the mean square of the mixing weights |W1(s)|, |W2(s)|."""

    coef = 0.0  # set per registered variant below

    def td_loss(self, b):
        total, stats = super().td_loss(b)
        w1, w2 = self.mixer.hyper_w1(b["state"]), self.mixer.hyper_w2(b["state"])
        penalty = masked_mean((w1**2).mean(-1) + (w2**2).mean(-1), b["alive"].any(-1).to(w1.dtype))
        stats["mixer_penalty"] = penalty.detach()
        return total + self.coef * penalty, stats


class _SlowMixerQMIX(QMIX):
    """QMIX whose mixer learns at ``mixer_lr`` while the agents learn at ``lr``."""

    mixer_lr = 1e-4  # set per registered variant below

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        mixer = list(self.mixer.parameters())
        agents = [p for p in self.params if all(p is not m for m in mixer)]
        self.q_opt = torch.optim.Adam([{"params": agents, "lr": cfg.lr}, {"params": mixer, "lr": self.mixer_lr}],
                                      eps=1e-5)


# one registered variant per tried value
for _name, _coef in {"qmix_weight_l2_1e-2": 1e-2, "qmix_weight_l2_1e-3": 1e-3}.items():
    register_algorithm(_name)(type(_name, (_PenalisedQMIX,), {"coef": _coef, "__doc__": f"L2 penalty {_coef:g}."}))
for _name, _lr in {"qmix_mixer_lr1e-4": 1e-4, "qmix_mixer_lr2e-5": 2e-5}.items():
    register_algorithm(_name)(type(_name, (_SlowMixerQMIX,), {"mixer_lr": _lr, "__doc__": f"The mixer at lr {_lr:g}."}))


@register_algorithm("qmix_state_layernorm")
class LayerNormStateQMIX(QMIX):
    """QMIX with ``algo.state_norm=layernorm`` (the name the option's first runs were made under)."""

    def build_mixer(self, cfg, env):
        return QMixer(env.n_agents, env.state_dim, cfg.algo.mixing_embed, cfg.algo.hypernet_hidden, state_norm=True)
