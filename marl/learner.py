"""The learner: actor + critic + value normaliser + optimisers, the rollout they fill, and one
PPO update over it (GAE, then epochs of minibatches; whole sequences when the actor is a GRU)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from envs.layout import Layout
from marl.config import TrainConfig
from marl.guards import check_grad, check_loss
from marl.communication import CommInputs, Communication, build_graph
from marl import sharing
from marl.nets import Actor, GraphCritic, make_critic
from marl.ppo import Minibatch, ValueNorm, gae, masked_mean, ppo_loss


@dataclass
class Rollout:
    """T steps of E envs; every per-agent tensor is [T, E, N, ...]."""

    obs: torch.Tensor
    state: torch.Tensor  # [T, E, S]
    alive: torch.Tensor  # bool, the agent acted at t
    actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor  # critic's (denormalised) value of s_t
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    bootstrap: torch.Tensor  # V(final obs) where truncated at t, else 0
    starts: torch.Tensor  # [T, E] bool, a new episode starts at t (GRU state reset)
    h0: torch.Tensor | None  # [E, N, H] GRU state before step 0
    positions: torch.Tensor | None = None  # [T, E, N, d] for graphs built from the scene
    gate: torch.Tensor | None = None  # [T, E, N] the gates' decisions, replayed in the update

    @staticmethod
    def empty(T: int, E: int, layout: Layout, state_dim: int, device, pos_dim: int = 0, gated: bool = False) -> "Rollout":
        N = layout.n_agents
        z = lambda *s, dtype=torch.float32: torch.zeros(*s, dtype=dtype, device=device)  # noqa: E731
        act_shape = (T, E, N) if layout.discrete else (T, E, N, layout.action_dim)
        return Rollout(
            obs=z(T, E, N, layout.obs_dim),
            state=z(T, E, state_dim),
            alive=z(T, E, N, dtype=torch.bool),
            actions=z(*act_shape, dtype=torch.long if layout.discrete else torch.float32),
            logp=z(T, E, N),
            values=z(T, E, N),
            rewards=z(T, E, N),
            terminated=z(T, E, N, dtype=torch.bool),
            truncated=z(T, E, N, dtype=torch.bool),
            bootstrap=z(T, E, N),
            starts=z(T, E, dtype=torch.bool),
            h0=None,
            positions=z(T, E, N, pos_dim) if pos_dim else None,
            gate=z(T, E, N) if gated else None,
        )

    def next_values(self, last_values: torch.Tensor) -> torch.Tensor:
        """What follows each step: V(s_{t+1}) inside an episode, V(final obs) after a truncation,
        0 after a termination (or for an agent that was not acting)."""
        following = torch.cat([self.values[1:], last_values.unsqueeze(0)])
        ended = self.ended
        return torch.where(ended, self.bootstrap * self.truncated, following)

    @property
    def ended(self) -> torch.Tensor:
        return self.terminated | self.truncated | ~self.alive


class Learner(nn.Module):
    def __init__(self, cfg: TrainConfig, layout: Layout, state_dim: int, pos_dim: int = 0, scenario: str = ""):
        super().__init__()
        self.cfg = cfg
        self.layout = layout
        a, c = cfg.actor, cfg.critic
        communication = None
        if cfg.comm.enabled:
            communication = Communication(cfg.comm, a.hidden, layout.obs_dim, layout.n_agents, pos_dim or None,
                                          pos_dim > 0, scenario, activation=a.activation)
        self.actor = Actor(layout, a.hidden, a.layers, a.activation, a.recurrent, a.layer_norm, comm=communication,
                           sharing=self._sharing_spec(cfg.sharing.name, layout.n_agents))
        critic_sharing = self._sharing_spec(c.sharing, c.ensemble * layout.n_agents)
        if cfg.critic_kind == "graph":
            self.critic = self._graph_critic(pos_dim, scenario, critic_sharing)
        else:
            self.critic = make_critic(cfg.critic_kind, layout, state_dim, c.hidden, c.layers, a.activation, c.layer_norm,
                                      critic_sharing, c.ensemble)
        self.value_norm = ValueNorm() if cfg.ppo.value_norm else None
        graph_params = {id(p) for p in self.graph_parameters()}
        policy_params = [p for p in self.actor.parameters() if id(p) not in graph_params]
        self.actor_opt = torch.optim.Adam(self._param_groups(policy_params, cfg.lr), eps=1e-5)
        self.critic_opt = torch.optim.Adam(self._param_groups(list(self.critic.parameters()), cfg.critic_lr or cfg.lr),
                                           eps=1e-5)
        # the learned graph has its own optimizer (bi-level: graph and policy steps alternate)
        self.graph_opt = (torch.optim.Adam(self.graph_parameters(), lr=cfg.comm.graph_lr)
                          if self.graph_parameters() else None)
        # fuses the networks' elementwise work into compiled kernels: the first update pays the
        # compilation (~15 s on 2 cores), later ones run ~20% faster on CPU
        self._ppo_loss = torch.compile(self._minibatch_loss) if cfg.compile else self._minibatch_loss

    def _sharing_spec(self, name: str, units: int) -> sharing.SharingSpec:
        sc = self.cfg.sharing
        return sharing.SharingSpec(name, units, sparsity=sc.sparsity, thresholds=sc.thresholds)

    def _graph_critic(self, pos_dim: int, scenario: str, critic_sharing: sharing.SharingSpec) -> nn.Module:
        """InforMARL's critic: message passing over the actor's graph when it is built from the scene
        (a fresh instance: the critic does not shape the actor's graph), else over the complete graph."""
        import comm

        cfg, c = self.cfg, self.cfg.critic
        name = cfg.comm.graph if cfg.comm.graph not in ("none", "learned") else "complete"
        graph = build_graph(dataclasses.replace(cfg.comm, graph=name), self.layout.n_agents, pos_dim or None,
                            pos_dim > 0, scenario)
        block = comm.MessagePassingBlock(c.hidden, rounds=max(cfg.comm.rounds, 1), layer=cfg.comm.layer,
                                         edge_dim=graph.edge_dim, heads=cfg.comm.heads)
        return GraphCritic(self.layout.obs_dim, graph, block, c.hidden, c.layers, cfg.actor.activation, c.layer_norm,
                           critic_sharing, self.layout.n_agents)

    def load_actor(self, learner_state: dict) -> None:
        """The actor's weights from a checkpoint's learner state (all that acting needs). Buffers
        derived from the layout (action masks) are rebuilt, so another N can load them (zero-shot)."""
        derived = {name for name, _ in self.actor.named_buffers()} - set(self.actor.state_dict())
        state = {k[len("actor."):]: v for k, v in learner_state.items() if k.startswith("actor.")}
        saved_units = {int(v.shape[0]) for k, v in state.items()
                       if k.endswith(("scheme.thresholds", "scheme.binary")) or (k.endswith("weight") and v.dim() == 3)}
        if saved_units and saved_units != {self.layout.n_agents}:
            raise ValueError(
                f"this actor has per-agent weights (sharing={self.cfg.sharing.name!r}) for {min(saved_units)} agents, "
                f"not {self.layout.n_agents}; only sharing=full (or full_id with the same N) policies act for "
                "another n_agents"
            )
        self.actor.load_state_dict({k: v for k, v in state.items() if k not in derived})

    def graph_parameters(self) -> list[nn.Parameter]:
        comm_module = self.actor.comm
        return comm_module.graph_parameters() if comm_module is not None else []

    # ---- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def value(self, obs: torch.Tensor, state: torch.Tensor, inputs: CommInputs | None = None) -> torch.Tensor:
        v = self.critic(obs, state, inputs)
        return self.value_norm.denormalize(v) if self.value_norm is not None else v

    def _param_groups(self, params: list[nn.Parameter], lr: float) -> list[dict]:
        """Mask thresholds learn at ``sharing.threshold_lr_scale`` x the network's rate: a PPO run
        takes ~10x fewer optimiser steps per sample than the off-policy setups Kaleidoscope was
        tuned in, and at the base rate thresholds barely leave their almost-dense start."""
        thresholds = {id(layer.scheme.thresholds) for _, layer in sharing.masked_layers(self)}
        groups = [{"params": [p for p in params if id(p) not in thresholds], "lr": lr, "base_lr": lr}]
        masked = [p for p in params if id(p) in thresholds]
        if masked:
            scaled = lr * self.cfg.sharing.threshold_lr_scale
            groups.append({"params": masked, "lr": scaled, "base_lr": scaled})
        return groups

    def set_lr_fraction(self, frac: float) -> None:
        for opt in (self.actor_opt, self.critic_opt):
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * frac

    # ---- learning ----------------------------------------------------------------------------
    def update(self, ro: Rollout, last_values: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg.ppo
        adv, returns = gae(ro.rewards, ro.values, ro.next_values(last_values), ro.ended, cfg.gamma, cfg.gae_lambda)
        mask = ro.alive.float()
        old_values = ro.values
        if self.value_norm is not None:
            # old values in the normaliser's units they were predicted in, so the value clip is
            # centred on the critic's own outputs; targets in the updated units
            old_values = self.value_norm.normalize(old_values)
            self.value_norm.update(returns[ro.alive])
            returns = self.value_norm.normalize(returns)
        if cfg.adv_norm:
            mean = masked_mean(adv, mask)
            std = masked_mean((adv - mean) ** 2, mask).sqrt()
            adv = (adv - mean) / (std + 1e-8)

        data = Minibatch(ro.obs, ro.state, ro.actions, ro.logp, old_values, adv, returns, mask, ro.positions, ro.gate)
        T, E = ro.rewards.shape[:2]
        comm_cfg, graph = self.cfg.comm, self.actor.comm.graph if self.actor.comm is not None else None
        learn_graph = self.graph_opt is not None and not bool(getattr(graph, "frozen", False))
        totals: dict[str, float] = {}
        n_updates = 0
        for epoch in range(cfg.epochs):
            # bi-level (CommFormer): every graph_every-th epoch moves only the graph, the others the policy
            graph_epoch = learn_graph and epoch % comm_cfg.graph_every == comm_cfg.graph_every - 1
            # one minibatch is the whole rollout in order: a full-batch gradient needs no shuffle
            one = cfg.minibatches == 1
            if self.actor.recurrent:  # whole sequences of a subset of envs
                chunks = [slice(None)] if one else torch.randperm(E).chunk(cfg.minibatches)
                batches = [(self._select_envs(data, idx), idx) for idx in chunks]
            else:  # any (t, e) pairs
                chunks = [slice(None)] if one else torch.randperm(T * E).chunk(cfg.minibatches)
                batches = [(self._select_steps(data, idx), None) for idx in chunks]
            for b, (mb, env_idx) in enumerate(batches):
                loss, stats = self._ppo_loss(mb, ro, env_idx)
                loss = loss + self._diversity_terms(stats, cfg)
                if self.actor.comm is not None and self.actor.comm.gate is not None:
                    open_prob = masked_mean(self.actor.comm.last_gate_prob, mb.mask)
                    loss = loss + comm_cfg.gate_cost * open_prob
                    stats["gate_open_prob"] = open_prob
                check_loss(stats, loss, epoch, b)
                for opt in (self.actor_opt, self.critic_opt, self.graph_opt):
                    if opt is not None:
                        opt.zero_grad(set_to_none=True)
                loss.backward()
                if graph_epoch:
                    stats["graph_grad_norm"] = nn.utils.clip_grad_norm_(self.graph_parameters(), cfg.max_grad_norm)
                    check_grad(stats["graph_grad_norm"], "graph", epoch, b)
                    self.graph_opt.step()
                else:
                    stats["actor_grad_norm"] = nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
                    stats["critic_grad_norm"] = nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                    check_grad(stats["actor_grad_norm"], "actor", epoch, b)
                    check_grad(stats["critic_grad_norm"], "critic", epoch, b)
                    self.actor_opt.step()
                    self.critic_opt.step()
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
                n_updates += 1
        out = {k: v / n_updates for k, v in totals.items()}
        out.update(sharing.mask_stats(self.actor, n_agents=self.layout.n_agents))
        out.update(sharing.mask_stats(self.critic, prefix="critic_", n_agents=self.layout.n_agents))
        with torch.no_grad():
            ret_var = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
            err_var = masked_mean((returns - old_values - masked_mean(returns - old_values, mask)) ** 2, mask)
            out["explained_variance"] = float(1 - err_var / ret_var) if ret_var > 0 else float("nan")
        return out

    def _minibatch_loss(self, mb: Minibatch, ro: Rollout, env_idx) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Both networks' forward passes over one minibatch and PPO's loss on them (the part that
        ``compile=true`` hands to torch.compile)."""
        inputs = CommInputs(mb.positions, mb.mask > 0, mb.gate)
        params = self._policy_params(mb, ro, env_idx, inputs)
        logp, entropy = self.actor.log_prob_entropy(params, mb.actions)
        # an ensemble trains every member on the same targets: [K, B..., N] against [B..., N]
        values = self.critic.members(mb.obs, mb.state, inputs).movedim(-2, 0)
        values = values[0] if self.critic.ensemble == 1 else values
        return ppo_loss(logp, entropy, values, mb, self.cfg.ppo)

    def _diversity_terms(self, stats: dict, cfg) -> torch.Tensor:
        """Kaleidoscope's diversity losses, each scaled to a fraction of its network's main loss.
        The actor's main loss counts the entropy term too: under normalised advantages the policy
        loss alone is ~0 at the start of every update, which would switch diversity off."""
        actor_main = stats["policy_loss"].abs() + cfg.ent_coef * stats["entropy"].abs()
        critic_main = cfg.vf_coef * stats["value_loss"]
        total = torch.zeros((), device=stats["policy_loss"].device)
        for module, main, coef, key in ((self.actor, actor_main, self.cfg.sharing.diversity, "diversity_loss"),
                                        (self.critic, critic_main, self.cfg.critic.diversity, "critic_diversity_loss")):
            div = sharing.diversity_loss(module)
            if div is not None:
                stats[key] = div.detach()
                total = total + sharing.scaled_diversity(main, div, coef)
        return total

    def reset_masks(self, steps_before: int, steps_after: int, total_steps: int) -> int:
        """Kaleidoscope's periodic reset when ``sharing.reset_interval`` is crossed, never in the
        last interval of training (a reset weight needs time to be trained again). The critic
        ensemble also gets one member's thresholds re-sampled, round robin. Returns weights reset."""
        interval = self.cfg.sharing.reset_interval
        if not interval or steps_before // interval == steps_after // interval or steps_after + interval > total_steps:
            return 0
        prob = self.cfg.sharing.reset_prob
        count = sharing.reset_masks(self.actor, prob) + sharing.reset_masks(self.critic, prob)
        K = self.critic.ensemble
        if K > 1 and sharing.masked_layers(self.critic):
            member = (steps_after // interval - 1) % K
            n = self.layout.n_agents
            sharing.resample_unit_thresholds(self.critic, slice(member * n, (member + 1) * n))
        return count

    @staticmethod
    def _select_steps(d: Minibatch, idx: torch.Tensor) -> Minibatch:
        flat = lambda x: None if x is None else x.reshape(-1, *x.shape[2:])[idx]  # noqa: E731
        return Minibatch(*(flat(getattr(d, f)) for f in Minibatch.__dataclass_fields__))

    @staticmethod
    def _select_envs(d: Minibatch, idx: torch.Tensor) -> Minibatch:
        pick = lambda x: None if x is None else x[:, idx]  # noqa: E731
        return Minibatch(*(pick(getattr(d, f)) for f in Minibatch.__dataclass_fields__))

    def _policy_params(self, mb: Minibatch, ro: Rollout, env_idx: torch.Tensor | None,
                       inputs: CommInputs | None = None) -> torch.Tensor:
        inputs = inputs or CommInputs(mb.positions, mb.mask > 0, mb.gate)
        if env_idx is None:
            return self.actor(mb.obs, None, inputs)[0]
        h = ro.h0[env_idx]
        starts = ro.starts[:, env_idx]
        out, gates = [], []
        for t in range(mb.obs.shape[0]):
            h = h * (~starts[t]).float()[:, None, None]
            step = CommInputs(*(None if x is None else x[t] for x in (inputs.positions, inputs.alive, inputs.gate)))
            params, h = self.actor(mb.obs[t], h, step)
            out.append(params)
            if self.actor.comm is not None and self.actor.comm.last_gate_prob is not None:
                gates.append(self.actor.comm.last_gate_prob)
        if gates:  # the cost term sees the whole sequence
            self.actor.comm.last_gate_prob = torch.stack(gates)
        return torch.stack(out)
