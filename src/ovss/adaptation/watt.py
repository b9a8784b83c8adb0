"""WATT (Osowiechi et al., NeurIPS 2024) for dense segmentation: weight averaging across templates.

For ``rounds`` rounds (m = 5): for each template, ``steps`` updates (l = 2) of the vision LayerNorms
with CLIPArTT's transductive loss, where each patch's pseudo-label is its top-1 class under that
template; the LayerNorm weights reached after each template are kept; their mean starts the next
round and is the final model. Evaluation uses the template-averaged text.

``parallel=False`` (default) follows the MLMP code: within a round the templates are visited one
after another from the previous template's weights, with one Adam state throughout (WATT-S).
``parallel=True`` starts every template from the round's weights with a fresh optimiser (WATT-P).
"""
from __future__ import annotations

import torch

from ..errors import OvssError
from .clipartt import distillation_loss
from .common import ParamSnapshot, TestTimeAdaptation, average_weights


class WATT(TestTimeAdaptation):
    """Weight Average Test-Time adaptation over the 7 templates."""

    name = "watt"
    title = "WATT"

    def __init__(self, steps: int = 2, rounds: int = 5, templates="seven", parallel: bool = False,
                 tau: float = 0.01, **kwargs):
        super().__init__(steps=steps, templates=templates, **kwargs)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise OvssError(f"watt: rounds must be a positive integer, got {rounds!r}")
        self.rounds, self.parallel, self.tau = rounds, bool(parallel), float(tau)

    def hparams(self):
        return {**super().hparams(), "rounds": self.rounds, "parallel": self.parallel, "tau": self.tau}

    def adapt(self, segmenter, batch, classes, params, optimizer):
        texts = self.template_text(segmenter, classes, self.templates)  # T x Q x E
        losses = []
        for _ in range(self.rounds):
            start = ParamSnapshot(params)
            reached = []
            for text in texts:
                if self.parallel:
                    start.restore()
                    optimizer = self.make_optimizer(params)
                for _ in range(self.steps):
                    feats = torch.cat([segmenter.patch_features(w).flatten(0, 2) for w in batch.groups])  # N x E
                    pseudo = text[(feats.detach() @ text.T).argmax(dim=-1)]
                    losses.append(self.step(optimizer, distillation_loss(feats, pseudo, self.logit_scale, self.tau)))
                reached.append({n: p.detach().clone() for n, p in params.items()})
            with torch.no_grad():
                for n, value in average_weights(reached).items():
                    params[n].copy_(value)
        return losses
