"""Proxy Calibration (PC, the OVSNet paper, eq. 5-7): supervise convex mixes of embeddings as unseen classes.

Training sees a fixed set of classes; PC widens it for free. Pairs (m, n) of matched regions are
mixed with one weight alpha ~ Beta(gamma, gamma) per pair, the same for every embedding of the
region (query embedding F_Q, pooled CLIP feature F_C, and the text embedding F_T of its
ground-truth class), and each mixed visual embedding is pulled towards the mixed text embedding:

    F'_mn = alpha F_m + (1 - alpha) F_n                                      (5)
    L_PQ = 1 - cos(F'_Q, F'_T),   L_PC = 1 - cos(F'_C, F'_T)                 (6, 7)

The loss is L_PQ + L_PC, averaged over pairs. gamma = 2 (the OVSNet paper's default) favours even mixes,
i.e. proxies half-way between two training classes. Any trainer can call ``proxy_loss`` with its
own embeddings; ``visual`` may hold one tensor (no F_C) or several.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_GAMMA = 2.0


def sample_pairs(labels: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (m, n): each item with a random partner of another class (items with no such partner are skipped)."""
    labels = labels.detach().cpu().numpy()
    order = rng.permutation(len(labels))
    m, n = np.arange(len(labels)), order
    keep = labels[m] != labels[n]
    return torch.from_numpy(m[keep]), torch.from_numpy(n[keep])


def sample_alpha(count: int, gamma: float, rng: np.random.Generator) -> torch.Tensor:
    """``count`` mixing weights from Beta(gamma, gamma)."""
    if gamma <= 0:
        raise ValueError(f"PC's gamma must be positive, got {gamma}")
    return torch.from_numpy(rng.beta(gamma, gamma, size=count)).float()


def mix(x: torch.Tensor, m: torch.Tensor, n: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Eq. (5): alpha x[m] + (1 - alpha) x[n], one alpha per pair."""
    a = alpha.to(x.device, x.dtype).unsqueeze(-1)
    return a * x[m] + (1.0 - a) * x[n]


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (6)/(7): mean of 1 - cos(pred, target) over rows."""
    return (1.0 - F.cosine_similarity(pred, target, dim=-1)).mean()


def proxy_loss(visual: torch.Tensor | Sequence[torch.Tensor], text: torch.Tensor, labels: torch.Tensor,
               gamma: float = DEFAULT_GAMMA, rng: np.random.Generator | None = None,
               pairs: tuple[torch.Tensor, torch.Tensor] | None = None, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over ``visual`` (K x E tensors: F_Q, F_C, ...) of the cosine loss of mixed pairs against mixed ``text`` (K x E).

    ``labels`` (K) are the items' classes, so that pairs mix two different classes. ``pairs`` and
    ``alpha`` may be given (tests); else they are drawn from ``rng``. Returns 0 when no pair exists.
    """
    visual = [visual] if isinstance(visual, torch.Tensor) else list(visual)
    rng = rng if rng is not None else np.random.default_rng()
    m, n = pairs if pairs is not None else sample_pairs(labels, rng)
    if len(m) == 0:
        return text.new_zeros(()) + sum(v.sum() * 0.0 for v in visual)
    alpha = alpha if alpha is not None else sample_alpha(len(m), gamma, rng)
    m, n = m.to(text.device), n.to(text.device)
    target = mix(text, m, n, alpha)
    return sum(cosine_loss(mix(v, m, n, alpha), target) for v in visual)
