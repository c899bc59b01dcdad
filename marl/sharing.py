"""Parameter sharing between agents: how each agent's weights derive from one shared set.

A network with an agent axis ``[..., U, F]`` (U units: the agents, or agents x ensemble members) is
built from :class:`AgentLinear` layers. Under ``full`` / ``full_id`` a layer is a plain
``nn.Linear`` (one network); otherwise every unit gets its own effective weight ``[U, out, in]``
from a registered :class:`SharingScheme`, and all units run in one batched einsum.

Built-in schemes: ``none`` (U independent weights), ``random_masks`` (fixed binary masks over one
shared weight) and ``masks`` (Kaleidoscope: learnable soft-threshold masks). A new scheme is a
subclass with one method, ``forward(weight) -> [U, out, in]``, decorated with ``@register_sharing``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

# one network for every agent: nn.Linear layers, no agent axis in the weights
ONE_NETWORK = ("full", "full_id")
SCHEMES: dict[str, type["SharingScheme"]] = {}


def register_sharing(name: str):
    """Class decorator: make a :class:`SharingScheme` selectable as ``sharing=<name>``."""

    def deco(cls):
        if name in ONE_NETWORK or name in SCHEMES:
            raise ValueError(f"sharing scheme {name!r} is already registered")
        cls.name = name
        SCHEMES[name] = cls
        return cls

    return deco


def sharing_names() -> list[str]:
    return list(ONE_NETWORK) + sorted(SCHEMES)


def check_sharing_name(key: str, name: str) -> None:
    if name not in ONE_NETWORK and name not in SCHEMES:
        close = difflib.get_close_matches(name, sharing_names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{key}={name!r} is not a sharing scheme.{hint} Valid: {', '.join(sharing_names())}")


@dataclass(frozen=True)
class SharingSpec:
    """What a network needs to build its layers: the scheme, the number of units and its options."""

    name: str = "full"
    units: int = 1
    sparsity: float = 0.5  # random_masks: fraction of the shared weights each unit drops
    thresholds: str = "weight"  # masks: one learnable threshold per weight, or per output row ("row")

    @property
    def one_network(self) -> bool:
        return self.name in ONE_NETWORK


class SharingScheme(nn.Module):
    """Turns one layer's shared weight ``[out, in]`` into per-unit weights ``[U, out, in]``. It is
    built from the layer's initialised weight (its shape and scale).

    ``owns_weights``: the layer stores ``[U, out, in]`` weights instead of one shared ``[out, in]``.
    ``mask(weight)`` returns the binary masks ``[U, out, in]`` where the scheme has them (for
    logging, the overlap heatmap and the diversity loss), else None.
    """

    owns_weights = False

    def __init__(self, spec: SharingSpec, weight: torch.Tensor):
        super().__init__()
        self.spec = spec

    def forward(self, weight: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def mask(self, weight: torch.Tensor) -> torch.Tensor | None:
        return None


@register_sharing("none")
class NoSharing(SharingScheme):
    """Every unit owns its weights: U independent networks, evaluated as one batched product."""

    owns_weights = True

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight


@register_sharing("random_masks")
class RandomMasks(SharingScheme):
    """Fixed per-unit binary masks drawn once at a given sparsity (a baseline for learned masks).
    Kept units are rescaled by 1/(1 - sparsity) so activations keep their scale at any sparsity."""

    def __init__(self, spec: SharingSpec, weight: torch.Tensor):
        super().__init__(spec, weight)
        keep = (torch.rand(spec.units, *weight.shape) >= spec.sparsity).float()
        self.register_buffer("binary", keep)  # saved with the model: the masks are part of it
        self.scale = 1.0 / max(1.0 - spec.sparsity, 1e-6)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.binary * self.scale

    def mask(self, weight: torch.Tensor) -> torch.Tensor:
        return self.binary


class _StraightThroughStep(torch.autograd.Function):
    """Forward: the step 1[x > 0]. Backward: a triangle of half-width ``width`` around 0, so units
    near their threshold receive gradient (the binary mask itself has none)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, width: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.width = width
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        surrogate = (1.0 - x.abs() / ctx.width).clamp(min=0.0) / ctx.width
        return grad * surrogate, None


def binary_step(x: torch.Tensor, width: float = 0.1) -> torch.Tensor:
    return _StraightThroughStep.apply(x, width)


def initial_thresholds(shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """Threshold logits with sigmoid(s) = scale * sigmoid(-(5 + 5 U(0,1))): for a hidden layer
    (scale 1) that is Kaleidoscope's s ~ -(5 + 5 U), thresholds in [4.5e-5, 6.7e-3], so masks start
    almost dense and the units begin as (nearly) full sharing."""
    t = scale * torch.sigmoid(-(5.0 + 5.0 * torch.rand(shape)))
    return torch.log(t) - torch.log1p(-t)


# mean |W| of a 64-unit hidden layer under orthogonal init with gain sqrt(2): the scale at which
# Kaleidoscope's threshold range was chosen
_REFERENCE_MEAN_ABS_WEIGHT = 0.14


@register_sharing("masks")
class LearnedMasks(SharingScheme):
    """Kaleidoscope (NeurIPS 2024): unit i's weight is sign(W) * relu(|W| - sigmoid(s_i)), a soft
    threshold of the shared W by its own learnable thresholds s_i. The binary mask 1[|W| > sigmoid(s_i)]
    has a straight-through gradient, used by the diversity loss.

    ``thresholds="row"`` keeps one threshold per output unit instead of per weight: U x out
    parameters instead of U x out x in, for many agents or wide layers.
    """

    def __init__(self, spec: SharingSpec, weight: torch.Tensor):
        super().__init__(spec, weight)
        out, inp = weight.shape
        self.threshold_shape = (spec.units, out, inp if spec.thresholds == "weight" else 1)
        # thresholds follow the layer's weight scale: an output head initialised with gain 0.01
        # would otherwise start with most of its weights masked out
        self.init_scale = min(float(weight.abs().mean()) / _REFERENCE_MEAN_ABS_WEIGHT, 1.0)
        self.thresholds = nn.Parameter(initial_thresholds(self.threshold_shape, self.init_scale))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.sign() * F.relu(weight.abs() - torch.sigmoid(self.thresholds))

    def mask(self, weight: torch.Tensor) -> torch.Tensor:
        return binary_step(weight.abs() - torch.sigmoid(self.thresholds))

    @torch.no_grad()
    def resample(self, where: torch.Tensor) -> None:
        """New initial thresholds at ``where`` (a boolean of the thresholds' shape, or broadcastable)."""
        fresh = initial_thresholds(self.threshold_shape, self.init_scale).to(self.thresholds.device)
        self.thresholds.copy_(torch.where(where.expand(self.threshold_shape), fresh, self.thresholds))


def scheme_class(spec: SharingSpec) -> type[SharingScheme]:
    if spec.name not in SCHEMES:
        check_sharing_name("sharing", spec.name)
        raise ValueError(f"sharing={spec.name!r} is one network: it uses nn.Linear, not a per-unit scheme")
    return SCHEMES[spec.name]


class AgentLinear(nn.Module):
    """A linear layer with per-unit weights: ``x [..., U, in] -> [..., U, out]``, unit i through its
    own effective weight. One einsum for all units, never a loop over them. The bias is per unit
    under ``none`` and shared otherwise (masks act on weights only)."""

    def __init__(self, inp: int, out: int, spec: SharingSpec, gain: float):
        super().__init__()
        self.gain = gain
        self.units = spec.units
        cls = scheme_class(spec)
        lead = (spec.units,) if cls.owns_weights else ()
        self.weight = nn.Parameter(torch.empty(*lead, out, inp))
        self.bias = nn.Parameter(torch.zeros(*lead, out))
        for w in self.weight.view(-1, out, inp):
            nn.init.orthogonal_(w, gain)
        self.scheme = cls(spec, self.weight.detach())

    def unit_weights(self) -> torch.Tensor:
        """Every unit's effective weight, ``[U, out, in]``."""
        return self.scheme(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] != self.units:
            raise ValueError(f"AgentLinear expects {self.units} units on the agent axis, got input {tuple(x.shape)}")
        return torch.einsum("...ui,uoi->...uo", x, self.unit_weights()) + self.bias

    def mask(self) -> torch.Tensor | None:
        return self.scheme.mask(self.weight.detach())

    @torch.no_grad()
    def reset_dead_weights(self, prob: float, generator: torch.Generator | None = None) -> int:
        """Re-initialise, each with probability ``prob``, the shared weights that every unit masks
        out, and re-sample their thresholds. Returns how many were reset."""
        mask = self.mask()
        if mask is None or self.scheme.owns_weights:
            return 0
        dead = (mask == 0).all(0)
        chosen = dead & (torch.rand(dead.shape, generator=generator).to(dead.device) < prob)
        if not chosen.any():
            return 0
        fresh = torch.empty_like(self.weight)
        nn.init.orthogonal_(fresh, self.gain)
        self.weight.copy_(torch.where(chosen, fresh, self.weight))
        if isinstance(self.scheme, LearnedMasks):
            where = chosen if self.scheme.threshold_shape[-1] != 1 else chosen.any(-1, keepdim=True)
            self.scheme.resample(where.unsqueeze(0))
        return int(chosen.sum())


def linear(inp: int, out: int, spec: SharingSpec, gain: float) -> nn.Module:
    """The sharing-aware linear layer: ``nn.Linear`` for one network, else :class:`AgentLinear`."""
    if spec.one_network:
        lin = nn.Linear(inp, out)
        nn.init.orthogonal_(lin.weight, gain)
        nn.init.zeros_(lin.bias)
        return lin
    return AgentLinear(inp, out, spec, gain)


def agent_layers(module: nn.Module) -> list[tuple[str, AgentLinear]]:
    """The module's per-unit layers, in depth order."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, AgentLinear)]


def per_unit_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Parameters with a leading unit (agent) axis: weights a unit owns (``none``), per-unit biases
    and learnable thresholds. Every other parameter is shared by all units."""
    out = []
    for _, layer in agent_layers(module):
        if layer.scheme.owns_weights:
            out.append(layer.weight)
        if layer.bias.dim() == 2:
            out.append(layer.bias)
        if isinstance(layer.scheme, LearnedMasks):
            out.append(layer.scheme.thresholds)
    return out


def masked_layers(module: nn.Module) -> list[tuple[str, AgentLinear]]:
    return [(name, m) for name, m in agent_layers(module) if isinstance(m.scheme, LearnedMasks)]


# ---- the diversity loss and the statistics of the masks ------------------------------------------


def diversity_loss(module: nn.Module) -> torch.Tensor | None:
    """Kaleidoscope's diversity term: minus the mean pairwise L1 distance between the units'
    magnitude-weighted masks, per weight, summed over layers with weights 1, 2, 4, ... by depth
    (deeper layers may differ more). W is detached: only the thresholds move.

    A unit's magnitude-weighted mask is ``mask_i * (|W| - sigmoid(s_i))``: its value is the
    magnitude of the unit's soft-thresholded weight. Through the straight-through mask a weight
    can switch on or off; through the soft part, units whose thresholds differ slightly at
    initialisation get pulled apart (with ``mask_i * |W|`` alone, identical masks would be a
    point of zero gradient and the loss could never start to separate them).
    """
    layers = masked_layers(module)
    if not layers:
        return None
    total = 0.0
    for depth, (_, layer) in enumerate(layers):
        margin = layer.weight.detach().abs() - torch.sigmoid(layer.scheme.thresholds)
        m = (binary_step(margin) * margin).flatten(1)  # [U, P]
        U = m.shape[0]
        if U < 2:
            continue
        dist = torch.cdist(m.unsqueeze(0), m.unsqueeze(0), p=1.0)[0] / m.shape[1]
        total = total - (2.0**depth) * dist.sum() / (U * (U - 1))
    return total if torch.is_tensor(total) else None


def scaled_diversity(main_loss: torch.Tensor, div: torch.Tensor | None, coef: float) -> torch.Tensor:
    """``coef * |main| / |div| * div``: the diversity term's size is ``coef`` times the main loss's,
    whatever the scale of the rewards (Kaleidoscope's adaptive coefficient)."""
    if div is None or coef == 0:
        return torch.zeros((), device=main_loss.device)
    scale = coef * main_loss.detach().abs() / div.detach().abs().clamp(min=1e-8)
    return scale * div


@torch.no_grad()
def mask_stats(module: nn.Module, prefix: str = "", n_agents: int | None = None) -> dict[str, float]:
    """Per-unit mask density per layer, the mean pairwise mask distance (fraction of weights where
    two units' masks differ), and the effective parameter count (weights at least one unit uses,
    plus every parameter outside masked layers). Empty when the module has no masks."""
    layers = [(n, m, m.mask()) for n, m in agent_layers(module)]
    layers = [(n, m, mask) for n, m, mask in layers if mask is not None]
    if not layers:
        return {}
    out: dict[str, float] = {}
    # thresholds decide which weights are used; they are not weights the network computes with
    skip = {id(m.weight) for _, m, _ in layers}
    skip |= {id(m.scheme.thresholds) for _, m, _ in layers if isinstance(m.scheme, LearnedMasks)}
    effective = sum(p.numel() for p in module.parameters() if id(p) not in skip)
    differ, total = 0.0, 0
    for name, _, mask in layers:
        flat = mask.flatten(1)
        for i, d in enumerate(flat.mean(1).tolist()):
            out[f"{prefix}mask_density/{name}/{unit_label(i, flat.shape[0], n_agents)}"] = d
        effective += int((flat > 0).any(0).sum())
        U = flat.shape[0]
        if U > 1:
            differ += float(torch.cdist(flat.unsqueeze(0), flat.unsqueeze(0), p=1.0)[0].sum()) / (U * (U - 1))
            total += flat.shape[1]
    out[f"{prefix}mask_distance"] = differ / total if total else 0.0
    out[f"{prefix}effective_params"] = float(effective)
    return out


def unit_label(unit: int, units: int, n_agents: int | None) -> str:
    """``a2`` for agent 2; ``m1a2`` for critic ensemble member 1's view of agent 2; ``u5`` when the
    units are not known to be agents."""
    if not n_agents or units % n_agents:
        return f"u{unit}"
    return f"a{unit}" if units == n_agents else f"m{unit // n_agents}a{unit % n_agents}"


@torch.no_grad()
def mask_overlap(module: nn.Module) -> torch.Tensor | None:
    """Pairwise overlap of the units' masks over all layers: |m_i and m_j| / |m_i or m_j| (1 on the
    diagonal), ``[U, U]``; None without masks."""
    masks = [m.mask() for _, m in agent_layers(module)]
    masks = [mask.flatten(1) for mask in masks if mask is not None]
    if not masks:
        return None
    flat = torch.cat(masks, dim=1)
    inter = flat @ flat.T
    counts = flat.sum(1)
    union = counts[:, None] + counts[None, :] - inter
    return inter / union.clamp(min=1.0)


def reset_masks(module: nn.Module, prob: float, generator: torch.Generator | None = None) -> int:
    """Kaleidoscope's periodic reset over every masked layer of ``module``; returns weights reset."""
    return sum(layer.reset_dead_weights(prob, generator) for _, layer in masked_layers(module))


def resample_unit_thresholds(module: nn.Module, units: slice) -> None:
    """Fresh (almost dense) thresholds for a range of units: the critic ensemble's round-robin reset."""
    for _, layer in masked_layers(module):
        where = torch.zeros(layer.scheme.threshold_shape, dtype=torch.bool, device=layer.weight.device)
        where[units] = True
        layer.scheme.resample(where)


def parameter_counts(module: nn.Module) -> dict[str, int]:
    """Stored trainable numbers, split into network weights and mask thresholds."""
    thresholds = sum(m.scheme.thresholds.numel() for _, m in masked_layers(module))
    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"weights": total - thresholds, "thresholds": thresholds}

