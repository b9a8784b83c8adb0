"""TENT (Wang et al., ICLR 2021) for dense segmentation: minimise the entropy of every patch's
class prediction by updating the vision encoder's LayerNorm affine parameters.

The prediction is the segmenter's own (its dense head, the template-averaged text of its preset)
at patch resolution with logits = 100 x cosine, so TENT differs from no adaptation only by the
update. (The MLMP code's TENT uses the single template "a photo of a {}"; pass ``templates`` to
reproduce that.)
"""
from __future__ import annotations

from .common import TestTimeAdaptation, entropy, mean_of


class TENT(TestTimeAdaptation):
    """Patch-level entropy minimisation (Adam, lr 1e-3, 10 steps, batch 2, episodic)."""

    name = "tent"
    title = "TENT"

    def adapt(self, segmenter, batch, classes, params, optimizer):
        text = self.eval_text(segmenter, classes)
        losses = []
        for _ in range(self.steps):
            per_group = [entropy(self.logit_scale * segmenter.patch_features(w) @ text.T) for w in batch.groups]
            losses.append(self.step(optimizer, mean_of(per_group)))
        return losses
