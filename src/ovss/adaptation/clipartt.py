"""CLIPArTT (Osowiechi et al., WACV 2025) for dense segmentation.

Each step, every patch of the batch gets a pseudo-label text: its top-K classes under the
reference template, "a photo of a c1 or c2 or c3". The soft targets are transductive: patch i's
target over patches j is softmax_j((cos(f_i, f_j) + cos(t_i, t_j)) / (2 tau)), tau = 0.01, mixing
image-image and text-text similarities; the loss is the cross-entropy between those targets and
logits 100 x cos(f_i, t_j). Only the vision LayerNorms are updated (Adam, lr 1e-3, 10 steps).
As in the authors' code, the targets are not detached (the image similarities carry gradient).

``published_reshape`` (off by default; the ``mlmp`` protocol turns it on): MLMP's code, whose
numbers MLMP's table reports, holds the logits of a forward as (1, B, N, h, w) (B windows, N
texts) and reshapes them with ``reshape(-1, N)``, so a row mixes patches and texts instead of
being one patch's logits; its CLIPArTT also builds the pseudo-labels from ``topk(...).view(-1, K)``
of a (B, K, h, w) tensor, so a "top-K" prompt joins the rank-r classes of K neighbouring patches
(MLMP's adapt/clipartt.py:167 and :182, adapt/watt.py:189). ``mlmp_rows`` reproduces that layout.
By default every row is one patch, as the methods mean.
"""
from __future__ import annotations

import torch

from .common import TestTimeAdaptation

REFERENCE_TEMPLATE = "a photo of a {}"


def mlmp_rows(x: torch.Tensor, windows: list[tuple[int, int]]) -> torch.Tensor:
    """Rows of ``x`` (one per patch, windows after each other) in the layout of MLMP's code.

    ``windows``: (number of windows, patches per window) of each group of rows, in order. A group
    of B windows of P patches, x of shape (B P) x C, is read as MLMP's (B, C, P) tensor and cut
    with ``reshape(-1, C)``: x.reshape(B, P, C).transpose(1, 2).reshape(-1, C).
    """
    out, start = [], 0
    for count, patches in windows:
        chunk = x[start : start + count * patches]
        out.append(chunk.reshape(count, patches, -1).transpose(1, 2).reshape(-1, x.shape[-1]))
        start += count * patches
    if start != x.shape[0]:
        raise ValueError(f"windows cover {start} rows, x has {x.shape[0]}")
    return torch.cat(out)


def similarity_targets(image: torch.Tensor, text: torch.Tensor, tau: float = 0.01) -> torch.Tensor:
    """Soft pseudo-labels N x N from normalised patch features and their pseudo-label texts (N x E)."""
    return torch.softmax((image @ image.T + text @ text.T) / (2 * tau), dim=-1)


def distillation_loss(image: torch.Tensor, text: torch.Tensor, scale: float = 100.0, tau: float = 0.01,
                      published: list[tuple[int, int]] | None = None) -> torch.Tensor:
    """Mean cross-entropy between ``similarity_targets`` and the logits scale x image @ text^T.

    ``published``: the windows layout (see ``mlmp_rows``); the logits' rows are then MLMP's.
    """
    targets = similarity_targets(image, text, tau)
    logits = scale * image @ text.T
    if published is not None:
        logits = mlmp_rows(logits, published)
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def topk_prompts(logits: torch.Tensor, queries: list[str], k: int, template: str = REFERENCE_TEMPLATE,
                 published: list[tuple[int, int]] | None = None) -> list[str]:
    """One pseudo-label prompt per row of ``logits`` (N x Q): its top-k queries joined by "or".

    ``published``: the windows layout; the rows of top-k indices are then MLMP's ``view(-1, k)``.
    """
    top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices
    if published is not None:
        top = mlmp_rows(top, published)
    return [template.format(" or ".join(queries[c] for c in row)) for row in top.tolist()]


def window_layout(per_group: list[torch.Tensor]) -> list[tuple[int, int]]:
    """(windows, patches per window) of each group of B x h x w x E patch features."""
    return [(f.shape[0], f.shape[1] * f.shape[2]) for f in per_group]


class CLIPArTT(TestTimeAdaptation):
    """Transductive pseudo-labels from top-K classes, distilled into the vision LayerNorms."""

    name = "clipartt"
    title = "CLIPArTT"

    def __init__(self, k: int = 3, tau: float = 0.01, published_reshape: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.k, self.tau, self.published_reshape = int(k), float(tau), bool(published_reshape)

    def hparams(self):
        return {**super().hparams(), "k": self.k, "tau": self.tau, "reference_template": REFERENCE_TEMPLATE,
                "published_reshape": self.published_reshape}

    def adapt(self, segmenter, batch, classes, params, optimizer):
        reference = self.template_text(segmenter, classes, [REFERENCE_TEMPLATE])[0]  # Q x E
        queries = classes.queries
        losses = []
        for _ in range(self.steps):
            per_group = [segmenter.patch_features(w) for w in batch.groups]
            layout = window_layout(per_group) if self.published_reshape else None
            feats = torch.cat([f.flatten(0, 2) for f in per_group])  # N x E
            prompts = topk_prompts(self.logit_scale * feats.detach() @ reference.T, queries, self.k, published=layout)
            unique = sorted(set(prompts))  # patches share few top-K sets: encode each once
            emb = segmenter.text.encode_texts(unique).to(feats.device)
            index = {p: i for i, p in enumerate(unique)}
            text = emb[torch.tensor([index[p] for p in prompts], device=feats.device)]
            losses.append(self.step(optimizer, distillation_loss(feats, text, self.logit_scale, self.tau, layout)))
        return losses
