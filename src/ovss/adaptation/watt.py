"""WATT (Osowiechi et al., NeurIPS 2024) for dense segmentation: weight averaging across templates.

For ``rounds`` rounds (m = 5): for each template, ``steps`` updates (l = 2) of the vision LayerNorms
with CLIPArTT's transductive loss, where each patch's pseudo-label is its top-1 class under that
template; the LayerNorm weights reached after each template are kept; their mean starts the next
round and is the final model. Evaluation uses the template-averaged text.

``parallel=False`` (default) follows the MLMP code: within a round the templates are visited one
after another from the previous template's weights, with one Adam state throughout (WATT-S).
``parallel=True`` starts every template from the round's weights with a fresh optimiser (WATT-P).
``published_reshape=True`` arranges the loss's logits as MLMP's code does (``clipartt.mlmp_rows``:
rows mix patches and texts); the ``mlmp`` protocol turns it on to reproduce MLMP's table.
"""
from __future__ import annotations

import torch

from ..errors import OvssError
from .clipartt import distillation_loss, window_layout
from .common import ParamSnapshot, TestTimeAdaptation, average_weights


class WATT(TestTimeAdaptation):
    """Weight Average Test-Time adaptation over the 7 templates."""

    name = "watt"
    title = "WATT"

    def __init__(self, steps: int = 2, rounds: int = 5, templates="seven", parallel: bool = False,
                 tau: float = 0.01, published_reshape: bool = False, **kwargs):
        super().__init__(steps=steps, templates=templates, **kwargs)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise OvssError(f"watt: rounds must be a positive integer, got {rounds!r}")
        self.rounds, self.parallel, self.tau = rounds, bool(parallel), float(tau)
        self.published_reshape = bool(published_reshape)

    def hparams(self):
        return {**super().hparams(), "rounds": self.rounds, "parallel": self.parallel, "tau": self.tau,
                "published_reshape": self.published_reshape}

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
                    per_group = [segmenter.patch_features(w) for w in batch.groups]
                    layout = window_layout(per_group) if self.published_reshape else None
                    feats = torch.cat([f.flatten(0, 2) for f in per_group])  # N x E
                    pseudo = text[(feats.detach() @ text.T).argmax(dim=-1)]
                    loss = distillation_loss(feats, pseudo, self.logit_scale, self.tau, layout)
                    losses.append(self.step(optimizer, loss))
                reached.append({n: p.detach().clone() for n, p in params.items()})
            with torch.no_grad():
                for n, value in average_weights(reached).items():
                    params[n].copy_(value)
        return losses
