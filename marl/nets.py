"""Actor and critics. Every tensor keeps an agent axis ``[..., N, ...]``; layers act on the last
dimension, so one forward pass serves all agents and an agent's output depends on its own row only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal
from torch.nn import functional as F

import comm
from envs.layout import Layout
from marl.communication import CommInputs, StepAux
from marl.sharing import SharingSpec, linear

FULL = SharingSpec()


def _sigmoid_tanh(x: torch.Tensor) -> torch.Tensor:
    return x.mul(2).sigmoid_().mul_(2).sub_(1)  # one new tensor, the rest in place


class _SigmoidTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = _sigmoid_tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class Tanh(nn.Module):
    """tanh as 2*sigmoid(2x) - 1 on CPU: the same function (within 2e-7 absolute in float32), but
    torch's CPU tanh costs ~3.3x its sigmoid and was the largest item of a batched MAPPO update
    (see benchmarks/throughput.py). Other devices use torch.tanh."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return torch.tanh(x)
        return _SigmoidTanh.apply(x) if torch.is_grad_enabled() and x.requires_grad else _sigmoid_tanh(x)


def mlp(inp: int, hidden: int, layers: int, activation: str, layer_norm: bool = False,
        sharing: SharingSpec = FULL) -> nn.Sequential:
    """``layers`` x (Linear -> activation [-> LayerNorm]); with ``layer_norm`` the raw input is
    normalised too (MPE positions and velocities are unscaled). LayerNorm acts on each agent's own
    row, so it keeps agents independent. The linear layers follow ``sharing`` (per-agent weights
    under every scheme but full/full_id)."""
    act = {"tanh": Tanh, "relu": nn.ReLU}[activation]
    mods: list[nn.Module] = [nn.LayerNorm(inp)] if layer_norm else []
    for i in range(layers):
        mods += [linear(inp if i == 0 else hidden, hidden, sharing, math.sqrt(2)), act()]
        mods += [nn.LayerNorm(hidden)] if layer_norm else []
    return nn.Sequential(*mods)


def head(inp: int, out: int, gain: float, sharing: SharingSpec = FULL) -> nn.Module:
    return linear(inp, out, sharing, gain)


class AgentGRUCell(nn.Module):
    """A GRU cell whose input and recurrent maps are sharing-aware layers (same equations as
    ``nn.GRUCell``), for per-agent weights; ``x``, ``h`` are ``[B, U, H]``."""

    def __init__(self, inp: int, hidden: int, sharing: SharingSpec):
        super().__init__()
        self.ih = linear(inp, 3 * hidden, sharing, 1.0)
        self.hh = linear(hidden, 3 * hidden, sharing, 1.0)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        xr, xz, xn = self.ih(x).chunk(3, -1)
        hr, hz, hn = self.hh(h).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h


def agent_ids(n: int, sharing: SharingSpec) -> torch.Tensor | None:
    """The one-hot agent ids that ``full_id`` appends to a network's input (else None)."""
    return torch.eye(n) if sharing.name == "full_id" else None


def with_ids(x: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
    return x if ids is None else torch.cat([x, ids.expand(*x.shape[:-1], ids.shape[-1])], dim=-1)


Carry = dict[str, torch.Tensor]


class Actor(nn.Module):
    """Decentralized policy: agent i's action distribution is a function of obs i (and its own
    carry) only, plus messages along incoming edges when it communicates. Invalid (padded)
    discrete actions get a large negative logit.

    State is explicit: ``actor(obs, carry, inputs, replay) -> (params, carry', aux)``. The carry is
    a dict of ``[B, N, ...]`` tensors a step hands to the next (``h``: the GRU state;
    ``comm_previous``: a delayed channel's sender features); ``aux`` (``StepAux``) holds the edges
    used, the stochastic decisions to replay and differentiable terms for training hooks."""

    def __init__(
        self,
        layout: Layout,
        hidden: int = 64,
        layers: int = 2,
        activation: str = "tanh",
        recurrent: bool = False,
        layer_norm: bool = False,
        comm: nn.Module | None = None,
        sharing: SharingSpec = FULL,
        squash: bool = False,
        body: nn.Module | None = None,
    ):
        super().__init__()
        self.discrete = layout.discrete
        self.squash = squash and not layout.discrete
        self.hidden = hidden
        self.n_agents = layout.n_agents
        self.sharing = sharing
        self.register_buffer("ids", agent_ids(layout.n_agents, sharing), persistent=False)
        n_ids = layout.n_agents if self.ids is not None else 0
        # the encoder: an MLP over the whole observation unless given one ([B, N, O + ids] -> [B, N, hidden])
        self.body = body if body is not None else mlp(layout.obs_dim + n_ids, hidden, layers, activation, layer_norm,
                                                      sharing)
        self.comm = comm  # marl.communication.Communication: message passing after the encoder
        if recurrent:
            self.gru = nn.GRUCell(hidden, hidden) if sharing.one_network else AgentGRUCell(hidden, hidden, sharing)
        else:
            self.gru = None
        out = layout.n_actions if layout.discrete else layout.action_dim
        self.head = head(hidden, out, 0.01, sharing)
        if layout.discrete:
            # [N, A], derived from the layout (not saved: another layout rebuilds it)
            self.register_buffer("invalid", torch.as_tensor(~layout.action_mask), persistent=False)
        else:
            self.log_std = nn.Parameter(torch.full((layout.action_dim,), -0.5))
            dims = torch.as_tensor(layout.action_high != layout.action_low)  # padded dims are 0..0
            self.register_buffer("dim_mask", dims.float(), persistent=False)  # [N, A]
            # squash: actions are the box's centre + half-width * tanh(u) (the off-policy actor-critics)
            low, high = (torch.as_tensor(x, dtype=torch.float32) for x in (layout.action_low, layout.action_high))
            self.register_buffer("box_centre", (high + low) / 2, persistent=False)
            self.register_buffer("box_half", (high - low) / 2, persistent=False)

    @property
    def recurrent(self) -> bool:
        return self.gru is not None

    def carry_sizes(self) -> dict[str, int]:
        """Every carried tensor's name and last dimension."""
        sizes = {"h": self.hidden} if self.recurrent else {}
        return sizes | (self.comm.carry_sizes() if self.comm is not None else {})

    def carry_keys(self) -> tuple[str, ...]:
        return tuple(self.carry_sizes())

    def initial_carry(self, batch_shape: tuple[int, ...], device=None) -> Carry:
        """Zeros for every carried tensor; ``batch_shape`` is ``(E, N)``."""
        return {k: torch.zeros(*batch_shape, size, device=device) for k, size in self.carry_sizes().items()}

    @staticmethod
    def reset_carry(carry: Carry, starts: torch.Tensor) -> Carry:
        """The carry set back to zeros where ``starts``: ``[E]`` bool (whole envs that begin a new
        episode) or ``[E, N]`` (single agents, e.g. one entering play mid-episode)."""
        if not carry:  # a feed-forward actor without a delayed channel carries nothing
            return carry
        keep = (~starts).float()
        return {k: v * keep.view(*keep.shape, *([1] * (v.dim() - keep.dim()))) for k, v in carry.items()}

    def forward(self, obs: torch.Tensor, carry: Carry | None = None, inputs=None,
                replay: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, Carry, StepAux]:
        """``obs`` [B, N, O] -> distribution parameters [B, N, A], the next carry and the step's aux.
        ``inputs`` (``CommInputs``: positions, alive, team) feed the communication graph; ``replay``
        holds stochastic decisions to take again (from a previous call's ``aux.replay``)."""
        carry = carry or {}
        new: Carry = {}
        aux = StepAux()
        x = self.body(with_ids(obs, self.ids))
        if self.comm is not None:
            x, comm_carry, aux = self.comm(x, obs, inputs if inputs is not None else CommInputs(), carry, replay)
            new.update(comm_carry)
        if self.gru is not None:
            h = carry.get("h")
            h = torch.zeros_like(x) if h is None else h.view(x.shape)
            if isinstance(self.gru, AgentGRUCell):
                x = self.gru(x, h)
            else:
                shape = x.shape
                x = self.gru(x.reshape(-1, shape[-1]), h.reshape(-1, shape[-1])).view(shape)
            new["h"] = x
        out = self.head(x)
        if self.discrete:
            out = out.masked_fill(self.invalid, -1e9)
        return out, new, aux

    def to_box(self, u: torch.Tensor) -> torch.Tensor:
        """A squashing actor's action for the unbounded ``u``: inside the action box, a padded dim at its bound."""
        return self.box_centre + self.box_half * torch.tanh(u)

    def clip_to_box(self, action: torch.Tensor) -> torch.Tensor:
        """``action`` clipped into the action box (after exploration or target-smoothing noise)."""
        return torch.clamp(action, self.box_centre - self.box_half, self.box_centre + self.box_half)

    def squashed_log_prob(self, params: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log-density of the action ``to_box(u)`` when ``u ~ Normal(params, std)``: the Gaussian's
        log-density minus log |d to_box / du| = log half + log(1 - tanh(u)^2), over the real dims."""
        gauss = Normal(params, self.log_std.exp().expand_as(params), validate_args=False).log_prob(u)
        log_dtanh = 2 * (math.log(2.0) - u - F.softplus(-2 * u))  # log(1 - tanh(u)^2), stable for large |u|
        log_half = torch.log(self.box_half.clamp(min=1e-12))
        return ((gauss - log_dtanh - log_half) * self.dim_mask).sum(-1)

    def log_prob_entropy(self, params: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and the policy's entropy, per agent."""
        if self.discrete:  # by hand: torch.distributions costs more than the network at this size
            logp_all = torch.log_softmax(params, dim=-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1), entropy
        dist = Normal(params, self.log_std.exp().expand_as(params), validate_args=False)
        return (dist.log_prob(actions) * self.dim_mask).sum(-1), (dist.entropy() * self.dim_mask).sum(-1)

    def act(self, obs: torch.Tensor, carry: Carry | None = None, deterministic: bool = False, inputs=None):
        """Sampled (or greedy) actions, their log-probabilities, the next carry and the step's aux."""
        params, carry, aux = self(obs, carry, inputs)
        if self.discrete:
            logp_all = torch.log_softmax(params, dim=-1)
            if deterministic:
                action = params.argmax(-1)
            else:
                flat = logp_all.exp().reshape(-1, params.shape[-1])
                action = torch.multinomial(flat, 1).view(params.shape[:-1])
            return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1), carry, aux
        if self.squash:
            u = params if deterministic else params + self.log_std.exp() * torch.randn_like(params)
            return self.to_box(u), self.squashed_log_prob(params, u), carry, aux
        if deterministic:
            action = params
        else:
            action = params + self.log_std.exp() * torch.randn_like(params)
        logp, _ = self.log_prob_entropy(params, action)
        return action, logp, carry, aux


class Critic(nn.Module):
    """Values ``[..., N]`` for every agent. With ``ensemble`` K > 1 the critic holds K members
    (masked views of one network); ``members`` gives all of them ``[..., K, N]`` for the loss and
    ``forward`` their mean, which is what PPO bootstraps and builds advantages from."""

    ensemble = 1

    def members(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        v = self.members(obs, state, inputs)
        return v.squeeze(-2) if self.ensemble == 1 else v.mean(-2)


def _per_member(x: torch.Tensor, ensemble: int) -> torch.Tensor:
    """``[..., N, F] -> [..., K*N, F]``: unit k*N + i is member k's view of agent i."""
    return x if ensemble == 1 else x.repeat(*([1] * (x.dim() - 2)), ensemble, 1)


class CentralizedCritic(Critic):
    """MAPPO: V(global state, agent id) for every agent, one shared network (or per-agent /
    masked weights under ``sharing``). With ``obs_dim`` > 0 it reads the agent's own observation
    beside the state, V(s, o_i, i): MAPPO's agent-specific global state, which spares the network
    from finding agent i's part of the state through its id."""

    def __init__(self, state_dim: int, n_agents: int, hidden=64, layers=2, activation="tanh", layer_norm=False,
                 sharing: SharingSpec = FULL, ensemble: int = 1, obs_dim: int = 0):
        super().__init__()
        self.n_agents, self.ensemble, self.obs_dim = n_agents, ensemble, obs_dim
        self.body = mlp(state_dim + obs_dim + n_agents, hidden, layers, activation, layer_norm, sharing)
        self.out = head(hidden, 1, 1.0, sharing)
        self.register_buffer("ids", torch.eye(n_agents), persistent=False)

    def members(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        """``state`` [..., S] (and ``obs`` [..., N, O] when it reads them) -> values [..., K, N]."""
        first = self.body[0]
        own = obs[..., : self.obs_dim] if self.obs_dim else None
        if isinstance(first, nn.Linear):
            # one network: W [s, o_i, id_i] + b = (W_s s + b) + W_o o_i + W_id[:, i], so the state is
            # projected once per env instead of once per agent (the largest matmul of the critic)
            S = state.shape[-1]
            x = F.linear(state, first.weight[:, :S], first.bias).unsqueeze(-2) + first.weight[:, S + self.obs_dim:].T
            if own is not None:
                x = x + F.linear(own, first.weight[:, S : S + self.obs_dim])
            v = self.out(self.body[1:](x)).squeeze(-1)
        else:
            s = state.unsqueeze(-2).expand(*state.shape[:-1], self.n_agents, state.shape[-1])
            s = s if own is None else torch.cat([s, own], dim=-1)
            x = _per_member(with_ids(s, self.ids), self.ensemble)
            v = self.out(self.body(x)).squeeze(-1)
        return v.view(*v.shape[:-1], self.ensemble, self.n_agents)


class IndependentCritic(Critic):
    """IPPO: V(o_i) for every agent from its own observation (parameters shared, or per agent /
    masked under ``sharing``)."""

    def __init__(self, obs_dim: int, hidden=64, layers=2, activation="tanh", layer_norm=False,
                 sharing: SharingSpec = FULL, ensemble: int = 1, n_agents: int = 1):
        super().__init__()
        self.ensemble, self.n_agents = ensemble, n_agents
        self.register_buffer("ids", agent_ids(n_agents, sharing), persistent=False)
        n_ids = n_agents if self.ids is not None else 0
        self.body = mlp(obs_dim + n_ids, hidden, layers, activation, layer_norm, sharing)
        self.out = head(hidden, 1, 1.0, sharing)

    def members(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        x = _per_member(with_ids(obs, self.ids), self.ensemble)
        v = self.out(self.body(x)).squeeze(-1)
        return v.view(*v.shape[:-1], self.ensemble, obs.shape[-2])


class GraphCritic(Critic):
    """A GNN over the agents' own observations with global mean pooling (as InforMARL's critic):
    V_i = MLP([node_i, mean over alive agents of node_j]) after message passing over ``graph``.
    ``sharing`` applies to the encoder and the output MLP; the GNN's own maps stay shared.
    ``inputs.team`` is ignored: a centralised critic (training only, never acting) that pools over
    every agent anyway; the team restriction is for the actor's messages."""

    def __init__(self, obs_dim: int, graph: nn.Module, block: nn.Module, hidden=64, layers=2, activation="tanh",
                 layer_norm=False, sharing: SharingSpec = FULL, n_agents: int = 1):
        super().__init__()
        self.register_buffer("ids", agent_ids(n_agents, sharing), persistent=False)
        n_ids = n_agents if self.ids is not None else 0
        self.encoder = mlp(obs_dim + n_ids, hidden, layers, activation, layer_norm, sharing)
        self.graph, self.block = graph, block
        self.out = nn.Sequential(mlp(2 * hidden, hidden, 1, activation, sharing=sharing), head(hidden, 1, 1.0, sharing))

    def members(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        """``obs`` [..., N, O] (a recurrent actor's update passes [T, E, N, O]) -> values [..., 1, N]."""
        inputs = inputs if inputs is not None else CommInputs()
        lead, (N, _) = obs.shape[:-2], obs.shape[-2:]
        if len(lead) != 1:  # the graph batches envs along one axis
            flat = lambda x, k: None if x is None else x.reshape(-1, *x.shape[x.dim() - k:])  # noqa: E731
            v = self.members(flat(obs, 2), None, CommInputs(flat(inputs.positions, 2), flat(inputs.alive, 1)))
            return v.view(*lead, 1, N)
        B = lead[0]
        x = self.encoder(with_ids(obs, self.ids))
        ctx = comm.GraphContext(n_envs=B, n_agents=N, positions=inputs.positions, alive=inputs.alive, obs=obs,
                                device=obs.device, training=self.training)
        x = self.block(x.reshape(B * N, -1), self.graph(ctx)).view(B, N, -1)
        alive = inputs.alive.float() if inputs.alive is not None else torch.ones(B, N, device=obs.device)
        pooled = (x * alive.unsqueeze(-1)).sum(1) / alive.sum(1, keepdim=True).clamp(min=1.0)
        return self.out(torch.cat([x, pooled.unsqueeze(1).expand_as(x)], dim=-1)).squeeze(-1).unsqueeze(-2)


def make_critic(kind: str, layout: Layout, state_dim: int, hidden, layers, activation, layer_norm=False,
                sharing: SharingSpec = FULL, ensemble: int = 1, own_obs: bool = False) -> Critic:
    if kind == "centralized":
        return CentralizedCritic(state_dim, layout.n_agents, hidden, layers, activation, layer_norm, sharing, ensemble,
                                 layout.obs_dim if own_obs else 0)
    if kind == "independent":
        return IndependentCritic(layout.obs_dim, hidden, layers, activation, layer_norm, sharing, ensemble,
                                 layout.n_agents)
    raise ValueError(f"unknown critic {kind!r}; valid: centralized, independent")
