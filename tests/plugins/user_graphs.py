"""A user's graph in their own file: selected by name from the CLI with plugins=<this file>."""

import torch

from comm import Graph, register_graph


@register_graph("test_two_nearest_and_leader", replace=True)
class TwoNearestAndLeader(Graph):
    """Every agent hears agent 0 and its nearest other agent."""

    needs_positions = True
    edge_features = True

    def build(self, ctx):
        N = ctx.n_agents
        dist = torch.cdist(ctx.positions, ctx.positions) + torch.diag(torch.full((N,), float("inf")))
        adj = torch.zeros(ctx.n_envs, N, N, dtype=torch.bool)  # adj[e, receiver, sender]
        if N > 1:
            adj.scatter_(2, dist.argmin(-1, keepdim=True), True)
        adj[:, :, 0] = True
        return adj & ~torch.eye(N, dtype=torch.bool)
