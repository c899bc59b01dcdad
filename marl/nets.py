"""Actor and critics. Every tensor keeps an agent axis ``[..., N, ...]``; layers act on the last
dimension, so one forward pass serves all agents and an agent's output depends on its own row only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

import comm
from envs.layout import Layout
from marl.communication import CommInputs


def mlp(inp: int, hidden: int, layers: int, activation: str, layer_norm: bool = False) -> nn.Sequential:
    """``layers`` x (Linear -> activation [-> LayerNorm]); with ``layer_norm`` the raw input is
    normalised too (MPE positions and velocities are unscaled). LayerNorm acts on each agent's own
    row, so it keeps agents independent."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    mods: list[nn.Module] = [nn.LayerNorm(inp)] if layer_norm else []
    for i in range(layers):
        lin = nn.Linear(inp if i == 0 else hidden, hidden)
        nn.init.orthogonal_(lin.weight, math.sqrt(2))
        nn.init.zeros_(lin.bias)
        mods += [lin, act()] + ([nn.LayerNorm(hidden)] if layer_norm else [])
    return nn.Sequential(*mods)


def head(inp: int, out: int, gain: float) -> nn.Linear:
    lin = nn.Linear(inp, out)
    nn.init.orthogonal_(lin.weight, gain)
    nn.init.zeros_(lin.bias)
    return lin


class Actor(nn.Module):
    """Decentralized policy: agent i's action distribution is a function of obs i (and its own
    GRU state) only. Invalid (padded) discrete actions get a large negative logit."""

    def __init__(
        self,
        layout: Layout,
        hidden: int = 64,
        layers: int = 2,
        activation: str = "tanh",
        recurrent: bool = False,
        layer_norm: bool = False,
        comm: nn.Module | None = None,
    ):
        super().__init__()
        self.discrete = layout.discrete
        self.hidden = hidden
        self.body = mlp(layout.obs_dim, hidden, layers, activation, layer_norm)
        self.comm = comm  # marl.communication.Communication: message passing after the encoder
        self.gru = nn.GRUCell(hidden, hidden) if recurrent else None
        out = layout.n_actions if layout.discrete else layout.action_dim
        self.head = head(hidden, out, 0.01)
        if layout.discrete:
            self.register_buffer("invalid", torch.as_tensor(~layout.action_mask), persistent=False)  # [N, A]: from the layout
        else:
            self.log_std = nn.Parameter(torch.full((layout.action_dim,), -0.5))
            dims = torch.as_tensor(layout.action_high != layout.action_low)  # padded dims are 0..0
            self.register_buffer("dim_mask", dims.float(), persistent=False)  # [N, A]

    @property
    def recurrent(self) -> bool:
        return self.gru is not None

    def initial_state(self, batch_shape: tuple[int, ...], device=None) -> torch.Tensor:
        return torch.zeros(*batch_shape, self.hidden, device=device)

    def forward(self, obs: torch.Tensor, h: torch.Tensor | None = None, inputs=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``obs`` [B, N, O] -> distribution parameters [B, N, A] and the next GRU state.
        ``inputs`` (``CommInputs``: positions, alive, stored gates) feed the communication graph."""
        x = self.body(obs)
        if self.comm is not None:
            x = self.comm(x, obs, inputs if inputs is not None else CommInputs())
        if self.gru is not None:
            shape = x.shape
            h = self.gru(x.reshape(-1, shape[-1]), h.reshape(-1, shape[-1])).view(shape)
            x = h
        out = self.head(x)
        if self.discrete:
            out = out.masked_fill(self.invalid, -1e9)
        return out, h

    def log_prob_entropy(self, params: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and the policy's entropy, per agent."""
        if self.discrete:  # by hand: torch.distributions costs more than the network at this size
            logp_all = torch.log_softmax(params, dim=-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1), entropy
        dist = Normal(params, self.log_std.exp().expand_as(params), validate_args=False)
        return (dist.log_prob(actions) * self.dim_mask).sum(-1), (dist.entropy() * self.dim_mask).sum(-1)

    def act(self, obs: torch.Tensor, h: torch.Tensor | None = None, deterministic: bool = False, inputs=None):
        """Sampled (or greedy) actions, their log-probabilities, and the next GRU state."""
        params, h = self(obs, h, inputs)
        if self.discrete:
            logp_all = torch.log_softmax(params, dim=-1)
            if deterministic:
                action = params.argmax(-1)
            else:
                flat = logp_all.exp().reshape(-1, params.shape[-1])
                action = torch.multinomial(flat, 1).view(params.shape[:-1])
            return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1), h
        if deterministic:
            action = params
        else:
            action = params + self.log_std.exp() * torch.randn_like(params)
        logp, _ = self.log_prob_entropy(params, action)
        return action, logp, h


class CentralizedCritic(nn.Module):
    """MAPPO: V(global state, agent id) for every agent, one shared network."""

    def __init__(self, state_dim: int, n_agents: int, hidden=64, layers=2, activation="tanh", layer_norm=False):
        super().__init__()
        self.n_agents = n_agents
        self.body = mlp(state_dim + n_agents, hidden, layers, activation, layer_norm)
        self.out = head(hidden, 1, 1.0)
        self.register_buffer("ids", torch.eye(n_agents), persistent=False)

    def forward(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        """``state`` [..., S] -> values [..., N]."""
        s = state.unsqueeze(-2).expand(*state.shape[:-1], self.n_agents, state.shape[-1])
        ids = self.ids.expand(*state.shape[:-1], self.n_agents, self.n_agents)
        return self.out(self.body(torch.cat([s, ids], dim=-1))).squeeze(-1)


class IndependentCritic(nn.Module):
    """IPPO: V(o_i) for every agent from its own observation (parameters shared)."""

    def __init__(self, obs_dim: int, hidden=64, layers=2, activation="tanh", layer_norm=False):
        super().__init__()
        self.body = mlp(obs_dim, hidden, layers, activation, layer_norm)
        self.out = head(hidden, 1, 1.0)

    def forward(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        return self.out(self.body(obs)).squeeze(-1)


class GraphCritic(nn.Module):
    """A GNN over the agents' own observations with global mean pooling (as InforMARL's critic):
    V_i = MLP([node_i, mean over alive agents of node_j]) after message passing over ``graph``."""

    def __init__(self, obs_dim: int, graph: nn.Module, block: nn.Module, hidden=64, layers=2, activation="tanh",
                 layer_norm=False):
        super().__init__()
        self.encoder = mlp(obs_dim, hidden, layers, activation, layer_norm)
        self.graph, self.block = graph, block
        self.out = nn.Sequential(mlp(2 * hidden, hidden, 1, activation), head(hidden, 1, 1.0))

    def forward(self, obs: torch.Tensor, state: torch.Tensor, inputs=None) -> torch.Tensor:
        inputs = inputs if inputs is not None else CommInputs()
        B, N, _ = obs.shape
        x = self.encoder(obs)
        ctx = comm.GraphContext(n_envs=B, n_agents=N, positions=inputs.positions, alive=inputs.alive, obs=obs,
                                device=obs.device, training=self.training)
        x = self.block(x.reshape(B * N, -1), self.graph(ctx)).view(B, N, -1)
        alive = inputs.alive.float() if inputs.alive is not None else torch.ones(B, N, device=obs.device)
        pooled = (x * alive.unsqueeze(-1)).sum(1) / alive.sum(1, keepdim=True).clamp(min=1.0)
        return self.out(torch.cat([x, pooled.unsqueeze(1).expand_as(x)], dim=-1)).squeeze(-1)


def make_critic(kind: str, layout: Layout, state_dim: int, hidden, layers, activation, layer_norm=False) -> nn.Module:
    if kind == "centralized":
        return CentralizedCritic(state_dim, layout.n_agents, hidden, layers, activation, layer_norm)
    if kind == "independent":
        return IndependentCritic(layout.obs_dim, hidden, layers, activation, layer_norm)
    raise ValueError(f"unknown critic {kind!r}; valid: centralized, independent")
