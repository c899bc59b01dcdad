"""An actor body that reads an observation as sets of entities (``actor.encoder=entities``).

The scenario names the groups of same-kind entities in its observation (``ScenarioSpec.entities``:
landmarks, other agents, and columns to skip); every other column is the agent's own. Each entity is embedded from its
features, its distance and the agent's own embedding, and each group is pooled by attention with a
few learned scores, so the body is the same function of the landmarks in any order (a flat MLP must
learn "go to the free landmark" once per ordering). No weight depends on how many entities there are,
so under ``sharing=full`` a policy acts for another N as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from marl.nets import FULL, Tanh, mlp
from marl.sharing import SharingSpec, linear


class EntityEncoder(nn.Module):
    """``obs`` [B..., N, O] -> [B..., N, hidden]: own features through one layer; entity k of a group
    as act(W [features_k, |position_k|] + U own), pooled over k by ``heads`` softmax scores per group;
    own and pooled groups through ``layers - 1`` more layers (at least one)."""

    def __init__(self, obs_dim: int, groups, hidden: int = 64, layers: int = 2, activation: str = "tanh",
                 layer_norm: bool = False, sharing: SharingSpec = FULL, width: int | None = None, heads: int = 2):
        super().__init__()
        taken = torch.zeros(obs_dim, dtype=torch.bool)
        for g in groups:
            if g.stop > obs_dim or g.start < 0:
                raise ValueError(f"entity group {g.name!r} spans columns {g.start}..{g.stop} of a {obs_dim}-wide "
                                 "observation")
            if taken[g.start:g.stop].any():
                raise ValueError(f"entity group {g.name!r} overlaps another group")
            taken[g.start:g.stop] = True
        self.groups = tuple(g for g in groups if not g.skip)
        self.register_buffer("own_columns", torch.nonzero(~taken).flatten(), persistent=False)
        width = width or max(hidden // 2, 1)
        act = {"tanh": Tanh, "relu": nn.ReLU}[activation]
        gain = 2 ** 0.5
        self.own = nn.Sequential(linear(len(self.own_columns), hidden, sharing, gain), act())
        # the entity's first layer on [features, own embedding], split so the own part runs once per agent
        self.entity_in = nn.ModuleList(linear(g.width + g.position, width, sharing, gain) for g in self.groups)
        self.entity_own = nn.ModuleList(linear(hidden, width, sharing, gain) for _ in self.groups)
        self.scores = nn.ModuleList(linear(width, heads, sharing, 1.0) for _ in self.groups)
        self.act = act()
        self.out = mlp(hidden + len(self.groups) * heads * width, hidden, max(layers - 1, 1), activation, layer_norm,
                       sharing)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        own = self.own(obs.index_select(-1, self.own_columns))
        pooled = [own]
        for g, first, from_own, score in zip(self.groups, self.entity_in, self.entity_own, self.scores):
            ent = obs[..., g.start:g.stop].unflatten(-1, (g.count, g.width)).movedim(-2, -3)  # [B..., K, N, F]
            if g.position:
                ent = torch.cat([ent, ent[..., :2].norm(dim=-1, keepdim=True)], -1)
            h = self.act(first(ent) + from_own(own).unsqueeze(-3))  # [B..., K, N, W]: the agent axis stays at -2
            weights = torch.softmax(score(h), dim=-3)  # [B..., K, N, heads]
            pooled.append(torch.einsum("...knh,...knw->...nhw", weights, h).flatten(-2))
        return self.out(torch.cat(pooled, -1))
