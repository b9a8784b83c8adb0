"""CLIPArTT (Osowiechi et al., WACV 2025) for dense segmentation.

Each step, every patch of the batch gets a pseudo-label text: its top-K classes under the
reference template, "a photo of a c1 or c2 or c3". The soft targets are transductive: patch i's
target over patches j is softmax_j((cos(f_i, f_j) + cos(t_i, t_j)) / (2 tau)), tau = 0.01, mixing
image-image and text-text similarities; the loss is the cross-entropy between those targets and
logits 100 x cos(f_i, t_j). Only the vision LayerNorms are updated (Adam, lr 1e-3, 10 steps).
As in the authors' code, the targets are not detached (the image similarities carry gradient).
"""
from __future__ import annotations

import torch

from .common import TestTimeAdaptation

REFERENCE_TEMPLATE = "a photo of a {}"


def similarity_targets(image: torch.Tensor, text: torch.Tensor, tau: float = 0.01) -> torch.Tensor:
    """Soft pseudo-labels N x N from normalised patch features and their pseudo-label texts (N x E)."""
    return torch.softmax((image @ image.T + text @ text.T) / (2 * tau), dim=-1)


def distillation_loss(image: torch.Tensor, text: torch.Tensor, scale: float = 100.0, tau: float = 0.01) -> torch.Tensor:
    """Mean cross-entropy between ``similarity_targets`` and the logits scale x image @ text^T."""
    targets = similarity_targets(image, text, tau)
    return -(targets * torch.log_softmax(scale * image @ text.T, dim=-1)).sum(dim=-1).mean()


def topk_prompts(logits: torch.Tensor, queries: list[str], k: int, template: str = REFERENCE_TEMPLATE) -> list[str]:
    """One pseudo-label prompt per row of ``logits`` (N x Q): its top-k queries joined by "or"."""
    top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices.tolist()
    return [template.format(" or ".join(queries[c] for c in row)) for row in top]


class CLIPArTT(TestTimeAdaptation):
    """Transductive pseudo-labels from top-K classes, distilled into the vision LayerNorms."""

    name = "clipartt"
    title = "CLIPArTT"

    def __init__(self, k: int = 3, tau: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.k, self.tau = int(k), float(tau)

    def hparams(self):
        return {**super().hparams(), "k": self.k, "tau": self.tau, "reference_template": REFERENCE_TEMPLATE}

    def adapt(self, segmenter, batch, classes, params, optimizer):
        reference = self.template_text(segmenter, classes, [REFERENCE_TEMPLATE])[0]  # Q x E
        queries = classes.queries
        losses = []
        for _ in range(self.steps):
            feats = torch.cat([segmenter.patch_features(w).flatten(0, 2) for w in batch.groups])  # N x E
            prompts = topk_prompts(self.logit_scale * feats.detach() @ reference.T, queries, self.k)
            unique = sorted(set(prompts))  # patches share few top-K sets: encode each once
            emb = segmenter.text.encode_texts(unique).to(feats.device)
            index = {p: i for i, p in enumerate(unique)}
            text = emb[torch.tensor([index[p] for p in prompts], device=feats.device)]
            losses.append(self.step(optimizer, distillation_loss(feats, text, self.logit_scale, self.tau)))
        return losses
