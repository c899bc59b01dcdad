"""Training hooks: how a feature (the learned graph, the gate, learnable masks, ...) takes part in
training without the algorithm or the trainer naming it.

A hook is a small object with optional parts (every default does nothing):

- ``own_parameters()`` parameters it optimizes itself (kept out of the algorithm's optimizers),
  ``optimizers()`` its optimizers by name (checkpointed);
- ``lr_scales()`` ``{id(param): multiple}`` of the algorithm's learning rate for some parameters;
- ``takes_update(k)`` whether gradient step k of an update moves only this hook's parameters
  (bi-level schedules), and ``step(epoch, minibatch)`` that moves them;
- ``loss(terms, mask, main)`` an extra loss term: ``terms`` are the actor's differentiable by-products
  (``StepAux.terms``; empty on a step without the actor, e.g. HAPPO's critic steps), ``main`` the
  algorithm's main losses by network (``"actor"``, ``"critic"``);
- ``before_iteration(progress)``, ``after_iteration(progress) -> metrics``, ``metrics()``;
- ``artifacts(run_dir, title) -> {summary key: path}`` at the end of a run.

``@register_hook`` registers a factory ``(cfg, networks) -> list[TrainingHook]``; an algorithm
calls :func:`make_hooks` with its networks by role and every factory decides whether its feature
is present. A plugin file can register its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from marl import sharing
from marl.guards import check_grad
from marl.ppo import masked_mean

HOOK_FACTORIES: list[Callable] = []


def register_hook(factory: Callable) -> Callable:
    """Decorator for a factory ``(cfg, networks: dict[str, nn.Module]) -> list[TrainingHook]``
    (a factory of the same module and name replaces the earlier one)."""
    key = (factory.__module__, factory.__qualname__)
    HOOK_FACTORIES[:] = [f for f in HOOK_FACTORIES if (f.__module__, f.__qualname__) != key]
    HOOK_FACTORIES.append(factory)
    return factory


def make_hooks(cfg, networks: dict[str, nn.Module]) -> list["TrainingHook"]:
    return [hook for factory in HOOK_FACTORIES for hook in factory(cfg, networks)]


class TrainingHook:
    def own_parameters(self) -> list[nn.Parameter]:
        return []

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def lr_scales(self) -> dict[int, float]:
        return {}

    def takes_update(self, k: int) -> bool:
        return False

    def step(self, epoch: int, minibatch: int) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, terms: dict, mask: torch.Tensor, main: dict) -> tuple[torch.Tensor | None, dict]:
        return None, {}

    def before_iteration(self, progress) -> None:
        pass

    def after_iteration(self, progress) -> dict[str, float]:
        return {}

    def metrics(self) -> dict[str, float]:
        return {}

    def artifacts(self, run_dir: Path, title: str) -> dict[str, str]:
        return {}


def param_groups(params: list[nn.Parameter], lr: float, hooks: list[TrainingHook]) -> list[dict]:
    """Adam parameter groups for an algorithm's optimizer: hooks' own parameters left out, and
    one group per learning-rate multiple the hooks ask for (``base_lr`` kept for annealing)."""
    owned = {id(p) for hook in hooks for p in hook.own_parameters()}
    scales: dict[int, float] = {}
    for hook in hooks:
        scales.update(hook.lr_scales())
    by_scale: dict[float, list[nn.Parameter]] = {}
    for p in params:
        if id(p) not in owned:
            by_scale.setdefault(scales.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr": lr * s, "base_lr": lr * s} for s, ps in sorted(by_scale.items())]


def trainable(module: nn.Module, hooks: list[TrainingHook]) -> list[nn.Parameter]:
    """``module``'s parameters that the algorithm optimizes (not a hook's own)."""
    owned = {id(p) for hook in hooks for p in hook.own_parameters()}
    return [p for p in module.parameters() if id(p) not in owned]


# ---- the learned graph: its own optimizer, bi-level epochs, freezing -----------------------------


class LearnedGraphHook(TrainingHook):
    """CommFormer's bi-level scheme: every ``comm.graph_every``-th gradient step of an update moves
    only the graph's logits (own Adam at ``comm.graph_lr``), the others only the policy; the graph
    is frozen (deterministic top-k) after ``comm.freeze_graph_at`` of the run."""

    def __init__(self, graph, cfg, max_grad_norm: float):
        self.graph, self.every, self.freeze_at = graph, cfg.comm.graph_every, cfg.comm.freeze_graph_at
        self.max_grad_norm = max_grad_norm
        self.opt = torch.optim.Adam(graph.graph_parameters(), lr=cfg.comm.graph_lr)

    def own_parameters(self):
        return list(self.graph.graph_parameters())

    def optimizers(self):
        return {"graph_opt": self.opt}

    def takes_update(self, k: int) -> bool:
        return not bool(self.graph.frozen) and k % self.every == self.every - 1

    def step(self, epoch: int, minibatch: int):
        norm = nn.utils.clip_grad_norm_(self.own_parameters(), self.max_grad_norm)
        check_grad(norm, "graph", epoch, minibatch)
        self.opt.step()
        return {"graph_grad_norm": norm}

    def before_iteration(self, progress) -> None:
        if progress.env_steps >= self.freeze_at * progress.total_steps:
            self.graph.freeze()

    def artifacts(self, run_dir: Path, title: str) -> dict[str, str]:
        from marl.pictures import plot_adjacency

        path = plot_adjacency(self.graph.adjacency_probs(), self.graph.eval_adjacency(),
                              run_dir / "learned_adjacency.png",
                              f"learned graph, {title} (k={self.graph.k} senders per agent)")
        return {"learned_adjacency_png": str(path)}


@register_hook
def _learned_graph(cfg, networks):
    import comm

    actor = networks.get("actor")
    graph = actor.comm.graph if actor is not None and actor.comm is not None else None
    if not isinstance(graph, comm.LearnedGraph):
        return []
    return [LearnedGraphHook(graph, cfg, getattr(cfg.algo, "max_grad_norm", 10.0))]


# ---- the receive gate: a cost on talking --------------------------------------------------------


class GateCostHook(TrainingHook):
    """``comm.gate_cost`` x the mean probability (over acting agents) that a gate is open."""

    def __init__(self, coef: float):
        self.coef = coef

    def loss(self, terms, mask, main):
        if "gate_open_prob" not in terms:  # a step without the actor (e.g. a critic-only step)
            return None, {}
        open_prob = masked_mean(terms["gate_open_prob"], mask)
        return self.coef * open_prob, {"gate_open_prob": open_prob}


@register_hook
def _gate_cost(cfg, networks):
    actor = networks.get("actor")
    if actor is None or actor.comm is None or actor.comm.gate is None:
        return []
    return [GateCostHook(cfg.comm.gate_cost)]


# ---- per-agent masks (Kaleidoscope): thresholds' learning rate, diversity, resets, statistics ----


class MaskHook(TrainingHook):
    """For every network with masks: the thresholds learn at ``sharing.threshold_lr_scale`` x the
    network's rate (a PPO run takes ~10x fewer optimiser steps per sample than the off-policy setups
    Kaleidoscope was tuned in, and at the base rate thresholds barely leave their dense start); the
    diversity loss, scaled to a fraction of that network's main loss; periodic resets of weights
    every agent masks out (and, for a critic ensemble, one member's thresholds, round robin); mask
    statistics each iteration and overlap heatmaps at the end."""

    def __init__(self, cfg, networks: dict[str, nn.Module], n_agents: int):
        self.cfg, self.networks, self.n_agents = cfg, networks, n_agents
        self.diversity = {"actor": cfg.sharing.diversity, "critic": cfg.critic.diversity}
        self.scheme = {"actor": cfg.sharing.name, "critic": cfg.critic.sharing}

    @staticmethod
    def _prefix(role: str) -> str:
        return "" if role == "actor" else f"{role}_"

    def lr_scales(self):
        scale = self.cfg.sharing.threshold_lr_scale
        return {id(layer.scheme.thresholds): scale for net in self.networks.values()
                for _, layer in sharing.masked_layers(net)}

    def loss(self, terms, mask, main):
        total, stats = None, {}
        for role, net in self.networks.items():
            div = sharing.diversity_loss(net)
            if div is None or role not in main:
                continue
            stats[f"{self._prefix(role)}diversity_loss"] = div.detach()
            term = sharing.scaled_diversity(main[role], div, self.diversity.get(role, 0.0))
            total = term if total is None else total + term
        return total, stats

    def after_iteration(self, progress) -> dict[str, float]:
        """Kaleidoscope's periodic reset when ``sharing.reset_interval`` is crossed, never in the last
        interval of training (a reset weight needs time to be trained again)."""
        if not any(sharing.masked_layers(net) for net in self.networks.values()):
            return {}
        interval, before, after = self.cfg.sharing.reset_interval, progress.previous, progress.env_steps
        if (not interval or before is None or before // interval == after // interval
                or after + interval > progress.total_steps):
            return {"mask_resets": 0}
        prob = self.cfg.sharing.reset_prob
        count = sum(sharing.reset_masks(net, prob) for net in self.networks.values())
        critic = self.networks.get("critic")
        K = getattr(critic, "ensemble", 1)
        if K > 1 and sharing.masked_layers(critic):
            member, n = (after // interval - 1) % K, critic.n_agents
            sharing.resample_unit_thresholds(critic, slice(member * n, (member + 1) * n))
        return {"mask_resets": count}

    def metrics(self) -> dict[str, float]:
        out = {}
        for role, net in self.networks.items():
            out.update(sharing.mask_stats(net, prefix=self._prefix(role), n_agents=self.n_agents))
        return out

    def artifacts(self, run_dir: Path, title: str) -> dict[str, str]:
        from marl.pictures import plot_mask_overlap

        out = {}
        for role, net in self.networks.items():
            overlap = sharing.mask_overlap(net)
            if overlap is not None:
                name = f"{self._prefix(role)}mask_overlap"
                path = plot_mask_overlap(overlap, run_dir / f"{name}.png",
                                         f"{role}, sharing={self.scheme.get(role, '?')} ({title})",
                                         self.n_agents)
                out[f"{name}_png"] = str(path)
        return out


@register_hook
def _masks(cfg, networks):
    with_masks = any(layer.mask() is not None for net in networks.values() for _, layer in sharing.agent_layers(net))
    if not with_masks:
        return []
    return [MaskHook(cfg, networks, networks["actor"].n_agents)]
