"""Pictures of a run's structure: communication edges drawn onto rendered frames, the learned
adjacency heatmap, and the pairwise overlap of per-agent sharing masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

EDGE_COLOR = np.array([30, 110, 230], dtype=np.float32)


def draw_edges(frame: np.ndarray, pixels: np.ndarray, edge_index: torch.Tensor, n_agents: int) -> np.ndarray:
    """Overlay the edges of env 0 on ``frame`` [H, W, 3]: a line per message, with a dot at the
    receiving end. ``pixels`` [N, 2] are the agents' (x, y) pixel coordinates."""
    out = frame.astype(np.float32).copy()
    h, w = out.shape[:2]
    index = edge_index.cpu().numpy()
    index = index[:, (index[0] < n_agents) & (index[1] < n_agents)]  # env 0 only
    for src, dst in index.T:
        a, b = pixels[src], pixels[dst]
        t = np.linspace(0.0, 1.0, max(int(np.abs(b - a).max()), 2))[:, None]
        pts = np.rint(a + t * (b - a)).astype(int)
        head = pts[int(0.85 * len(pts)):]  # thicker towards the receiver: the direction of the message
        for (x, y), thick in [(p, 2) for p in pts] + [(p, 4) for p in head]:
            y0, y1, x0, x1 = (max(y - thick // 2, 0), min(y + thick // 2 + 1, h),
                              max(x - thick // 2, 0), min(x + thick // 2 + 1, w))
            out[y0:y1, x0:x1] = 0.35 * out[y0:y1, x0:x1] + 0.65 * EDGE_COLOR
    return out.astype(np.uint8)


def plot_adjacency(probs: torch.Tensor, chosen: torch.Tensor, path: Path, title: str) -> Path:
    """Heatmap of a learned graph: row i = the probabilities of each sender to agent i; the edges
    kept at evaluation (deterministic top-k) are marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = probs.detach().cpu().numpy()
    n = p.shape[0]
    fig, ax = plt.subplots(figsize=(3 + 0.3 * n, 2.6 + 0.3 * n), dpi=110)
    im = ax.imshow(p, cmap="viridis", vmin=0.0)
    ys, xs = np.nonzero(chosen.cpu().numpy())
    ax.scatter(xs, ys, marker="o", s=30, facecolors="none", edgecolors="red", linewidths=1.5,
               label="kept at evaluation")
    ax.set_xlabel("sender")
    ax.set_ylabel("receiver")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=7, frameon=False)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_mask_overlap(overlap: torch.Tensor, path: Path, title: str, n_agents: int) -> Path:
    """Heatmap of pairwise mask overlap (|m_i and m_j| / |m_i or m_j| over all masked weights).
    Units beyond ``n_agents`` are critic ensemble members: labelled ``k:i`` (member k, agent i)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = overlap.detach().cpu().numpy()
    n = o.shape[0]
    labels = [str(u) if n == n_agents else f"{u // n_agents}:{u % n_agents}" for u in range(n)]
    fig, ax = plt.subplots(figsize=(3.2 + 0.3 * n, 2.8 + 0.3 * n), dpi=110)
    im = ax.imshow(o, cmap="magma", vmin=min(float(o.min()), 0.5), vmax=1.0)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{o[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if o[i, j] > 0.8 else "white")
    ax.set_xticks(range(n), labels, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("agent" if n == n_agents else "member:agent")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mask overlap")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
