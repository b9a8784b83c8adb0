"""How class scores become probabilities: the way the model was trained to score.

CLIP (and EVA-02, PE-Core, MetaCLIP, DFN) is trained with a softmax over the texts of a batch, so a
pixel's probabilities are softmax(scale x cos) over the queries. SigLIP and SigLIP 2 are trained
with a sigmoid per image-text pair, with a learned logit bias: a query's probability is
sigmoid(scale x cos + bias), on its own. Labels (the best query) are the same either way; the
probabilities differ, and with them every probability threshold (``prob_thd``, ResCLIP's
``sfr_threshold``) and the confidence. A sigmoid model's probabilities are meaningful with its own
scale only, so its scale is the checkpoint's unless one is given (``Segmenter``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Scoring:
    """``kind``: ``softmax`` (over the queries) or ``sigmoid`` (per query, with ``bias``)."""

    kind: str = "softmax"
    bias: float = 0.0

    def probs(self, scaled: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Probabilities of scaled scores (queries along ``dim``)."""
        if self.kind == "sigmoid":
            return torch.sigmoid(scaled + self.bias)
        return scaled.softmax(dim=dim)

    def describe(self) -> dict:
        return {"scoring": self.kind, **({"logit_bias": self.bias} if self.kind == "sigmoid" else {})}


SOFTMAX = Scoring()


def model_scoring(model) -> Scoring:
    """The scoring ``model`` (a ClipModel or an open_clip model) was trained with: sigmoid with its
    logit bias where it has one (SigLIP), else softmax."""
    bias = getattr(getattr(model, "clip", model), "logit_bias", None)
    if bias is None:
        return SOFTMAX
    with torch.no_grad():
        value = float(torch.as_tensor(bias).float())
    return Scoring("sigmoid", value) if math.isfinite(value) else SOFTMAX
