"""A learned communication graph (CommFormer-style) and a per-agent receive gate.

``LearnedGraph`` holds adjacency logits ``[N, N]`` (row = receiver, column = sender). Each agent
keeps ``k = min(max(floor(sparsity * N), 1), N - 1)`` incoming edges (CommFormer's rule), never
itself (an agent keeps its own state through the message-passing block's residual). When k reaches
N - 1 the graph is complete and there is nothing to learn: the constructor warns.

- training (``ctx.training`` and not frozen): a Gumbel top-k per receiver and env. The Gumbel noise
  is the graph's ``draw``: a caller passes it back as ``ctx.noise`` to rebuild the same edges and
  weights (the update replays the rollout's graph). Forward: the
  exact top-k edges, each with weight 1.0 exactly; backward: the gradient of the Gumbel-softmax
  relaxation (straight-through), so a loss on the block's output reaches the logits. Only the kept
  edges are returned (an unselected edge would still enter an attention softmax), so the logits get
  their gradient through the softmax over each receiver's row.
- evaluation or frozen: the deterministic top-k of the logits, ``weight=None``.
- teams (``ctx.team``): other teams' senders are barred before the top-k (and from the relaxation's
  softmax), so each agent keeps its k best teammates (all of them when its team has at most k others).

``Gate`` decides from each agent's own observation whether it receives messages this step.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import torch
from torch import Tensor, nn

from comm._util import CommError
from comm.graphs import Edges, Graph, GraphContext, register_graph

__all__ = ["Gate", "LearnedGraph", "send_gated", "straight_through"]


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward: exactly ``hard``; backward: the gradient of ``soft``."""
    return hard + (soft - soft.detach())


@register_graph("learned")
class LearnedGraph(Graph):
    """Learnable adjacency logits; k = floor(sparsity * N) (at least 1) incoming edges per agent (Gumbel top-k)."""

    def __init__(self, n_agents: int, sparsity: float = 0.4, tau: float = 1.0, hard: bool = True) -> None:
        super().__init__()
        if int(n_agents) < 1:
            raise CommError(f"graph 'learned': n_agents must be >= 1, got {n_agents}")
        if not 0.0 < float(sparsity) <= 1.0:
            raise CommError(f"graph 'learned': sparsity must lie in (0, 1], got {sparsity}")
        if float(tau) <= 0.0:
            raise CommError(f"graph 'learned': tau must be > 0, got {tau}")
        self.n_agents, self.sparsity, self.tau, self.hard = int(n_agents), float(sparsity), float(tau), bool(hard)
        # small random logits: no preferred edge, but no ties for the deterministic top-k either
        self.logits = nn.Parameter(1e-3 * torch.randn(self.n_agents, self.n_agents))
        self.register_buffer("frozen", torch.tensor(False))
        if self.n_agents > 2 and self.complete:
            warnings.warn(
                f"graph 'learned' with n_agents={self.n_agents} and sparsity={self.sparsity} keeps k={self.k} = N-1 "
                "senders per agent: the graph is complete and nothing is learned; lower comm.sparsity "
                f"(below {(self.n_agents - 1) / self.n_agents:.2f}) for a sparse graph",
                stacklevel=2,
            )

    @property
    def k(self) -> int:
        """Incoming edges per agent (the 1e-9 keeps e.g. 0.3 * 10 = 2.9999999999999996 at 3)."""
        n = self.n_agents
        return min(max(math.floor(self.sparsity * n + 1e-9), 1), n - 1)

    @property
    def complete(self) -> bool:
        """Whether every agent hears every other one (k = N - 1): then no edge is chosen."""
        return self.k >= self.n_agents - 1

    def graph_parameters(self) -> list[nn.Parameter]:
        return [self.logits]

    def freeze(self) -> None:
        """Stop learning the graph: deterministic top-k from now on, logits get no gradient."""
        self.frozen.fill_(True)
        self.logits.requires_grad_(False)

    def unfreeze(self) -> None:
        self.frozen.fill_(False)
        self.logits.requires_grad_(True)

    def _masked_logits(self) -> Tensor:
        eye = torch.eye(self.n_agents, dtype=torch.bool, device=self.logits.device)
        return self.logits.masked_fill(eye, float("-inf"))

    def adjacency_probs(self) -> Tensor:
        """``[N, N]`` row-softmax of the logits without self loops (row i: over the senders to i)."""
        if self.n_agents == 1:
            return torch.zeros(1, 1, device=self.logits.device)
        return self._masked_logits().detach().softmax(dim=-1)

    def eval_adjacency(self) -> Tensor:
        """``[N, N]`` bool (``adj[dst, src]``): the deterministic top-k used at evaluation."""
        adj = torch.zeros(self.n_agents, self.n_agents, dtype=torch.bool, device=self.logits.device)
        if self.k:
            adj.scatter_(1, self._masked_logits().detach().topk(self.k, dim=-1).indices, True)
        return adj

    def draw(self, ctx: GraphContext) -> Tensor | None:
        """Gumbel noise ``[E, N, N]`` while the graph trains; None (deterministic top-k) otherwise."""
        if not ctx.training or bool(self.frozen) or self.k == 0:
            return None
        return -torch.empty(ctx.n_envs, ctx.n_agents, ctx.n_agents, device=ctx.device).exponential_().log()

    def build(self, ctx: GraphContext) -> Edges:
        E, N, k = ctx.n_envs, ctx.n_agents, self.k
        if N != self.n_agents:
            raise CommError(
                f"graph 'learned' was built for n_agents={self.n_agents} but got {N} agents: a learned "
                "adjacency cannot transfer to another team size; for zero-shot transfer use a position graph "
                "(knn, radius)"
            )
        if k == 0:
            return Edges.empty(E, N, ctx.device)
        logits = self._masked_logits().to(ctx.device)
        gumbel = ctx.noise if ctx.noise is not None else self.draw(ctx)
        sample = gumbel is not None
        if sample:
            if tuple(gumbel.shape) != (E, N, N):
                raise CommError(f"graph 'learned': noise must have shape [E, N, N] = [{E}, {N}, {N}], "
                                f"got {tuple(gumbel.shape)}")
            scores = (logits + gumbel) / self.tau
        else:
            scores = logits.detach().expand(E, N, N)
        same_team = ctx.same_team()
        if same_team is not None:  # barred before choosing: k teammates, not k senders minus the opponents
            scores = scores.masked_fill(~same_team, float("-inf"))
        top = scores.topk(k, dim=-1)
        chosen = top.indices  # [E, receiver, k] senders
        offsets = (torch.arange(E, device=ctx.device) * N)[:, None, None]
        dst = (offsets + torch.arange(N, device=ctx.device)[None, :, None]).expand(E, N, k)
        index = torch.stack([(offsets + chosen).reshape(-1), dst.reshape(-1)])
        weight = None
        if sample:
            soft = scores
            if same_team is not None:  # an agent without teammates: a finite row (its edges are dropped below)
                alone = ~(same_team & ~torch.eye(N, dtype=torch.bool, device=ctx.device)).any(-1)
                soft = scores.masked_fill(alone[:, None], 0.0)
            relaxed = soft.softmax(dim=-1).gather(-1, chosen).reshape(-1)
            weight = straight_through(torch.ones_like(relaxed), relaxed) if self.hard else relaxed
        edges = Edges(index, weight=weight)
        if same_team is not None:  # fewer than k teammates: drop the barred padding the top-k filled in
            edges = edges.select((top.values > float("-inf")).reshape(-1))
        return edges


class Gate(nn.Module):
    """Per-agent receive gate from the agent's own observation: ``gate(obs) -> (g, p)``.

    ``p = sigmoid(mlp(obs_i))`` is the probability that agent i receives messages this step; ``g`` is
    the hard decision (a Bernoulli sample in training, ``p > 0.5`` at evaluation) with the gradient of
    ``p`` (straight-through). Pass ``g`` (flattened to [E*N]) as ``gate=`` to ``MessagePassingBlock``;
    add ``coef * Gate.communication_cost(p)`` to the loss. ``decisions`` replays stored hard gates
    (e.g. the ones taken during the rollout) while still giving ``p``'s gradient.
    """

    def __init__(self, obs_dim: int, hidden: int = 32, init_open: float = 0.9) -> None:
        super().__init__()
        if not 0.0 < init_open < 1.0:
            raise CommError(f"Gate: init_open must lie in (0, 1), got {init_open}")
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        with torch.no_grad():  # start nearly open (communication on), independent of the observation
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.fill_(math.log(init_open / (1.0 - init_open)))

    def forward(self, obs: Tensor, sample: bool | None = None,
                decisions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = torch.sigmoid(self.net(obs).squeeze(-1))  # [E, N]
        if decisions is not None:
            hard = decisions.to(p.dtype)
        elif self.training if sample is None else sample:
            hard = torch.bernoulli(p.detach())
        else:
            hard = (p.detach() > 0.5).to(p.dtype)
        return straight_through(hard, p), p

    @staticmethod
    def communication_cost(p: Tensor) -> Tensor:
        """Mean probability of receiving: add ``coef * cost`` to the loss to make talking pay its way."""
        return p.mean()


def send_gated(edges: Edges, gate: Tensor) -> Edges:
    """The edges whose sender's gate is open (``gate`` [E, N] or [E*N], hard 0/1 with a
    straight-through gradient), each weighted by that gate: forward, exactly the open senders'
    messages at weight 1; backward, the gradient of the gate's probability (IC3Net's send gate).
    Closed senders' edges are removed rather than weighted 0, so an attention or mean aggregation
    over the remaining messages does not count them."""
    flat = gate.reshape(-1)
    if not edges.num_edges:
        return edges
    src = edges.index[0]
    kept = edges.select(flat[src].detach() > 0)
    weight = flat[kept.index[0]]
    return replace(kept, weight=weight if kept.weight is None else kept.weight * weight)
