"""The text stage's extra objective: a triplet loss with the hardest negative mined online.

For each segment (anchor: its image embedding) the positive is its class's text embedding and the
negative is the closest other text in the label space, the other classes and the negative queries
together (OpenDAS, sec. 4.4). Distances are Euclidean between normalised embeddings, so they lie in
[0, 2] and OpenDAS's margin of 1.5 keeps almost every triplet active.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MARGIN = 1.5


def distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (A x B) between the rows of ``a`` and ``b``; safe to differentiate at 0."""
    d2 = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
    return d2.clamp_min(1e-12).sqrt()


@torch.no_grad()
def hardest_negatives(anchors: torch.Tensor, texts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """For each anchor, the index of the closest text that is not its own class (B,)."""
    d = distances(anchors, texts)
    d[torch.arange(len(labels), device=d.device), labels] = float("inf")
    return d.argmin(dim=1)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = MARGIN) -> torch.Tensor:
    """mean(max(0, d(a, p) - d(a, n) + margin)) over the batch (Balntas et al., 2016)."""
    d_pos = (anchor - positive).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    d_neg = (anchor - negative).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    return F.relu(d_pos - d_neg + margin).mean()


def ramp(step: int, total: int, final: float) -> float:
    """The triplet weight, raised linearly from 0 at the first step to ``final`` at the last."""
    if total <= 1:
        return float(final)
    return float(final) * min(1.0, step / (total - 1))
