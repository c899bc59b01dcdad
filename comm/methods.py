"""Communication methods by name: the published schemes researchers compare against, each a preset
of a graph, a layer, rounds and a gate (``comm.method=tarmac``).

A method is data, not code: the same graph/layer/gate building blocks the rest of ``comm`` offers,
so a method's messages obey every invariant those blocks are tested for (decentralised execution,
no edges = no communication, replayable decisions). How each published method maps onto them:

- ``commnet`` (Sukhbaatar et al. 2016): every agent receives the mean of the others' hidden states
  (``complete`` graph, ``sage`` = ``W mean_j h_j + b``), two communication steps.
- ``ic3net`` (Singh et al. 2019): CommNet where each agent's learned gate decides whether it *sends*
  this step (``gating``, ``gate_side=send``). IC3Net trains the gate as a discrete action by
  REINFORCE; here it is a straight-through Bernoulli with a cost on talking (``comm.gate_cost``),
  replayed in the update like every other decision.
- ``tarmac`` (Das et al. 2019): targeted soft attention, a receiver's query against each sender's
  signature (key) weighting the senders' values (``transformer`` with one head), two rounds, over
  everyone (``complete``).
- ``dgn`` (Jiang et al. 2020): multi-head dot-product attention over each agent's 3 nearest
  neighbours (``knn``, ``transformer``, 4 heads), two convolution layers. Needs positions.
- ``commformer`` (Hu et al. 2024): a learned sparse graph (``learned``, k = floor(0.4 N)) with
  attention messages (``transformer``), trained bi-level (``comm.graph_every``).

As published, none of them puts the senders' relative positions on the edges (``edge_features=False``);
``comm.edge_features=true`` adds them on scenarios with positions. Keys the user sets next to
``comm.method`` win over the method's own (``comm.method=dgn comm.k=5``).
``register_method(name, description, **settings)`` adds one; ``method_names()``, ``METHODS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from comm._util import CommError, unknown_name_message

__all__ = ["METHODS", "CommMethod", "method_names", "method_settings", "register_method"]


@dataclass(frozen=True)
class CommMethod:
    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)  # comm.* keys


METHODS: dict[str, CommMethod] = {}


def register_method(name: str, description: str, *, replace: bool = False, **settings: Any) -> CommMethod:
    """Make ``comm.method=name`` select ``settings`` (``comm.*`` keys: graph, layer, rounds, heads, ...)."""
    if name in METHODS and not replace and METHODS[name].settings != settings:
        raise CommError(f"communication method {name!r} is already registered; pass replace=True")
    METHODS[name] = CommMethod(name, description, dict(settings))
    return METHODS[name]


def method_names() -> list[str]:
    return sorted(METHODS)


def method_settings(name: str) -> dict[str, Any]:
    """The ``comm.*`` keys of method ``name`` (a one-line ``CommError`` naming the valid ones)."""
    if name not in METHODS:
        raise CommError(unknown_name_message("comm.method", name, METHODS))
    return dict(METHODS[name].settings)


register_method("none", "no communication", graph="none", gating=False)
register_method("commnet", "mean of the others' hidden states, 2 steps (Sukhbaatar et al. 2016)",
                graph="complete", layer="sage", rounds=2, edge_features=False)
register_method("ic3net", "CommNet with a learned per-agent gate on sending (Singh et al. 2019)",
                graph="complete", layer="sage", rounds=2, gating=True, gate_side="send", edge_features=False)
register_method("tarmac", "signature/query soft attention over everyone, 2 rounds (Das et al. 2019)",
                graph="complete", layer="transformer", heads=1, rounds=2, edge_features=False)
register_method("dgn", "multi-head attention over the 3 nearest neighbours, 2 layers (Jiang et al. 2020)",
                graph="knn", k=3, layer="transformer", heads=4, rounds=2, edge_features=False)
register_method("commformer", "learned sparse graph with attention messages (Hu et al. 2024)",
                graph="learned", sparsity=0.4, layer="transformer", heads=4, rounds=1,
                edge_features=False)
