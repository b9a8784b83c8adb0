"""ResCLIP's semantic feedback refinement (SFR): a first segmentation steers the last block again.

ResCLIP (Yang et al., CVPR 2025) segments each window once with its head (with or without the
RCS mix), turns that first segmentation into one class label per patch, and builds from the
labels an attention prior F between patches: patches of one label attend to each other, a
same-label patch whose straight line to the other one leaves the label is damped with the
distance, and each row is smoothed and normalised. The last block then runs again with every
similarity term's logits S replaced by tau ((1 - lambda) S + lambda F / max F) before the
softmax (and before NACLIP's Gaussian window); RCS's mix still follows the softmax.

Read off yvhangyang/ResCLIP @ 0e085f7, ``clip/model.py`` (``create_logit_temp``,
``create_patch_matrix``, ``check_path``, ``generate_attention_sfr``, ``custom_attn``); the
settings per dataset are in ``configs/cfg_*.py`` (``docs/protocols.md``). This module holds the
tensor operations; the first segmentation (class scores, PAMR, softmax) is made by
``ovss.segment.predictor``, which knows the class list.

The feedback is computed in float32, as ResCLIP computes it whatever the model's precision (its
path test samples the line in float32, so the same patches count as on or off the path).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SfrSettings:
    """The parts of SFR that ResCLIP does not change per dataset.

    blur_std: std (in tokens) of the 1-D Gaussian that smooths each row of F; ResCLIP passes its
    ``--std`` (NACLIP's window std, 5 in ``test_all.sh``) for every base head.
    pamr_iterations / pamr_dilations: the PAMR that refines the first segmentation
    (``create_logit_temp``: ``PAMR(10, dilations=(8, 16))``, on the window).
    distance_decay: ``delete_same_entity`` (True in every published config).
    """

    blur_std: float = 5.0
    pamr_iterations: int = 10
    pamr_dilations: tuple[int, int] = (8, 16)
    distance_decay: bool = True

    def describe(self) -> dict:
        return {"blur_std": self.blur_std, "pamr_iterations": self.pamr_iterations,
                "pamr_dilations": list(self.pamr_dilations), "distance_decay": self.distance_decay,
                "labels": "query indices (synonyms are separate labels), mode per patch"}


SFR = SfrSettings()


class SemanticFeedback(NamedTuple):
    """What the last block needs to run with SFR: ``matrix`` B x 1 x (1 + hw) x (1 + hw) (the
    output of ``feedback_attention`` for each window, in the attention's dtype) and (tau, lambda)."""

    matrix: torch.Tensor
    weights: tuple[float, float]


def takes_feedback(head) -> bool:
    """Whether ``head`` (a ``DenseHead``) has similarity terms SFR can steer: SCLIP, ClearCLIP,
    NACLIP and their ``+rcs`` forms."""
    return not head.levels and not head.second and head.attention not in ("vanilla", "value")


def mix_feedback(logits: torch.Tensor, feedback: SemanticFeedback) -> torch.Tensor:
    """tau ((1 - lambda) logits + lambda F): one similarity term's scaled logits with the feedback."""
    tau, lam = feedback.weights
    return tau * ((1 - lam) * logits + lam * feedback.matrix)


def patch_labels(probs: torch.Tensor, patch: tuple[int, int], threshold: float) -> torch.Tensor:
    """One label per patch from a window's first segmentation ``probs`` (Q x H x W, softmax over
    the queries, at the window's pixel size).

    Each pixel takes its best query, or query 0 where the best probability is below
    ``threshold``; a patch takes the label most of its pixels have, the smallest one on ties
    (``torch.mode`` on CPU). Pixels beyond the last whole patch are not counted. Returns h x w.
    """
    best, labels = probs.max(dim=0)
    labels = labels.masked_fill(best < threshold, 0)
    ph, pw = patch
    h, w = labels.shape[0] // ph, labels.shape[1] // pw
    blocks = labels[: h * ph, : w * pw].reshape(h, ph, w, pw).permute(0, 2, 1, 3).reshape(h * w, ph * pw)
    counts = torch.zeros(h * w, int(labels.max()) + 1, dtype=torch.long, device=labels.device)
    counts.scatter_add_(1, blocks, torch.ones_like(blocks))
    return counts.argmax(dim=1).reshape(h, w)  # argmax: the first (smallest) label on ties


def line_stays_in_label(labels: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
    """ResCLIP's path test between patches i and j of the label map ``labels`` (h x w).

    With n = max(h, w) - 1 (the largest Chebyshev distance on the grid) and s the Chebyshev
    distance from i to j, the points i + (j - i) k / n, k = 0 .. s, rounded half to even (in
    float32), must all carry i's label. For s < n these points cover only the first s / n of the
    segment from i to j: that is ResCLIP's code (one set of steps shared by all pairs), which
    made its published numbers. Returns (rows of i) x hw booleans, row-major patch order.
    """
    h, w = labels.shape
    n = h * w
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), dim=-1).reshape(n, 2)
    coords = coords.to(labels.device)
    starts = coords if rows is None else coords[rows]
    steps = (coords[None] - starts[:, None]).abs().amax(dim=-1)  # rows x n
    longest = max(h, w) - 1
    t = torch.linspace(0, 1, longest + 1, dtype=torch.float32, device=labels.device)
    flat = labels.flatten()
    ok = torch.ones(steps.shape, dtype=torch.bool, device=labels.device)
    for k in range(1, longest + 1):  # k = 0 is the start itself
        point = (starts[:, None].float() * (1 - t[k]) + coords[None].float() * t[k]).round().long()
        same = flat[point[..., 0] * w + point[..., 1]] == flat[rows if rows is not None else slice(None)][:, None]
        ok &= same | (k > steps)
    return ok


def feedback_attention(labels: torch.Tensor, settings: SfrSettings = SFR, row_chunk: int = 256) -> torch.Tensor:
    """ResCLIP's feedback F for a window's patch labels (h x w), (1 + hw) x (1 + hw) in float32.

    1. M_ij = 1 where patches i and j share a label (and on the diagonal), else 0.
    2. Distance decay: where the path test fails (``line_stays_in_label``), M_ij is multiplied by
       exp(-s_ij / n), s the Chebyshev distance, n its largest value on the grid.
    3. Each row is convolved with a normalised 1-D Gaussian over the row-major patch index
       (length min(hw, int(6 std + 1)), made odd; zero padding), negatives cut, then divided by
       its sum + 1e-8.
    4. The class token's row and column are zero, and F is divided by its largest entry, as the
       last block receives it.
    """
    h, w = labels.shape
    n = h * w
    flat = labels.flatten()
    same = (flat[:, None] == flat[None, :]).float()
    same.fill_diagonal_(1.0)
    if settings.distance_decay:
        coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), dim=-1).reshape(n, 2)
        steps = (coords[:, None] - coords[None]).abs().amax(dim=-1).to(labels.device)
        decay = torch.exp(-steps / max(1, int(steps.max())))
        valid = torch.cat([line_stays_in_label(labels, slice(i, i + row_chunk)) for i in range(0, n, row_chunk)])
        same = torch.where(valid, same, same * decay)
    size = min(n, int(6 * settings.blur_std + 1))
    size = size if size % 2 == 1 else size + 1
    x = torch.arange(size, device=labels.device) - size // 2
    kernel = torch.exp(-(x ** 2) / (2 * settings.blur_std ** 2))
    kernel = kernel / kernel.sum()
    blurred = F.conv1d(same.unsqueeze(1), kernel.view(1, 1, -1), padding=size // 2).squeeze(1).relu()
    rows = blurred / (blurred.sum(dim=1, keepdim=True) + 1e-8)
    out = torch.zeros(n + 1, n + 1, dtype=torch.float32, device=labels.device)
    out[1:, 1:] = rows
    return out / out.max()
