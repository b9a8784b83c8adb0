"""MLMP: Multi-Level Multi-Prompt entropy minimisation for open-vocabulary segmentation.

Levels: the last ``layer_fraction`` of the vision blocks. An intermediate block's dense feature is
its plain attention output (ln_1, q.k attention, out_proj; no residual, no FFN); the last block's
is the dense head's (NACLIP). Features are fused before ln_post and proj.

Adaptation (10 Adam steps on the vision LayerNorms): the levels are averaged with equal weights;
the loss is the patch entropy under each template's text embedding, averaged over templates,
windows and patches, plus ``alpha_cls`` times the entropy of the global embedding of the unchanged
last block under each template, averaged over templates and windows (logits = 100 x cosine).

Evaluation: per window, level l gets weight softmax_l(-mean patch entropy of level l's own
prediction) with the template-averaged text; the fused feature is the weighted mean of the levels.
The weights are computed without gradient (evaluation only, as in the authors' code).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..dense import DenseEncoder
from ..errors import OvssError
from .common import TestTimeAdaptation, decode_labels, entropy, mean_of


def fused_layers(num_blocks: int, fraction: float) -> list[int]:
    """The last ``fraction`` of the blocks (0-based indices; 18 of 24 for 0.75), at least the last one."""
    n = max(1, min(num_blocks, int(fraction * num_blocks + 0.5)))
    return list(range(num_blocks - n, num_blocks))


def level_tokens(encoder: DenseEncoder, images: torch.Tensor, layers: Sequence[int],
                 with_global: bool = False) -> tuple[dict[int, torch.Tensor], tuple[int, int], torch.Tensor | None]:
    """Dense tokens (B x (1 + hw) x D, before ln_post) of the requested blocks, and the grid.

    Block l < last: its attention output alone, ``ls_1(attn(ln_1(x)))``, while the residual stream
    runs on exactly as in ``block(x)``. Last block: the head's output (``encoder.head_block``).
    ``with_global``: also CLIP's global embedding from the unchanged last block.
    """
    with encoder.autocast():
        return _level_tokens(encoder, images, layers, with_global)


def _level_tokens(encoder, images, layers, with_global):
    n = len(encoder.blocks)
    wanted = {l % n for l in layers}
    if encoder.head.second:  # ProxyCLIP: its features must lie on CLIP's grid to be fused with the levels
        grid, proxy_grid = encoder.embed(images[:1])[1], tuple(encoder.proxy_features(images[:1]).shape[-2:])
        if proxy_grid != tuple(grid):
            raise OvssError(f"mlmp fuses CLIP's levels on its {grid[0]} x {grid[1]} grid; the {encoder.head.name} "
                            f"head's second backbone gives {proxy_grid[0]} x {proxy_grid[1]}: pick a second backbone "
                            "with CLIP's patch size (dino-vitb16 for a /16 CLIP) or another head")
    # one forward of the encoder: attention outputs tapped from the intermediate blocks, the head's
    # tokens from the last one, the global embedding from the same pass (shared ln_1 / qkv). The
    # base class's forward, without prompts: MLMP's levels are CLIP's own (as before this hook).
    out = DenseEncoder.forward(encoder, images, layers=[n - 1] if n - 1 in wanted else [],
                               with_global=with_global, attention_taps=sorted(wanted - {n - 1}), shared_global=True,
                               prompts=None)
    tokens = dict(out.attention)
    if n - 1 in wanted:
        tokens[n - 1] = out.layers[n - 1]
    return tokens, out.grid, out.global_embedding


def patch_features(encoder: DenseEncoder, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Normalised projected patch features ... x h x w x E from tokens ... x (1 + hw) x D (projected
    in float32: tokens from a fast precision's autocast come in bfloat16)."""
    feats = encoder.project(tokens[..., encoder.prefix:, :].float()).float()
    return F.normalize(feats, dim=-1).reshape(*feats.shape[:-2], grid[0], grid[1], -1)


def layer_weights(layer_logits: torch.Tensor) -> torch.Tensor:
    """MLMP's level weights from logits L x B x ... x Q: softmax over L of -(mean entropy per level and image)."""
    ent = entropy(layer_logits).flatten(2).mean(dim=2)  # L x B
    return torch.softmax(-ent, dim=0)


class MLMP(TestTimeAdaptation):
    """Multi-level, multi-prompt (7 templates), global + local entropy minimisation."""

    name = "mlmp"
    title = "MLMP"

    def __init__(self, layer_fraction: float = 0.75, alpha_cls: float = 1.0, templates="seven", **kwargs):
        super().__init__(templates=templates, **kwargs)
        if not 0 < float(layer_fraction) <= 1:
            raise OvssError(f"mlmp: layer_fraction must be in (0, 1], got {layer_fraction!r}")
        self.layer_fraction = float(layer_fraction)
        self.alpha_cls = float(alpha_cls)

    def hparams(self):
        return {**super().hparams(), "layer_fraction": self.layer_fraction, "alpha_cls": self.alpha_cls}

    def layers(self, segmenter) -> list[int]:
        return fused_layers(len(segmenter.encoder.blocks), self.layer_fraction)

    def adapt(self, segmenter, batch, classes, params, optimizer):
        encoder, layers = segmenter.encoder, self.layers(segmenter)
        texts = self.template_text(segmenter, classes, self.templates)  # T x Q x E
        losses = []
        for _ in range(self.steps):
            local, global_ = [], []
            for windows in batch.groups:
                tokens, grid, glob = level_tokens(encoder, windows, layers, with_global=self.alpha_cls != 0)
                fused = torch.stack([tokens[l] for l in layers]).mean(dim=0)
                feats = patch_features(encoder, fused, grid)  # B x h x w x E
                local.append(entropy(self.logit_scale * torch.einsum("bhwe,tqe->tbhwq", feats, texts)))
                if glob is not None:
                    g = F.normalize(glob.float(), dim=-1)
                    global_.append(entropy(self.logit_scale * torch.einsum("be,tqe->tbq", g, texts)))
            loss = mean_of(local)
            if global_:
                loss = loss + self.alpha_cls * mean_of(global_)
            losses.append(self.step(optimizer, loss))
        return losses

    def fuse(self, segmenter, windows: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Entropy-weighted fused patch features (B x h x w x E, normalised) and the weights (L x B)."""
        encoder, layers = segmenter.encoder, self.layers(segmenter)
        tokens, grid, _ = level_tokens(encoder, windows, layers)
        stack = torch.stack([tokens[l] for l in layers])  # L x B x N x D
        logits = self.logit_scale * patch_features(encoder, stack, grid) @ text.T  # L x B x h x w x Q
        weights = layer_weights(logits)
        fused = (weights[:, :, None, None].to(stack.dtype) * stack).sum(dim=0)
        return patch_features(encoder, fused, grid), weights

    def predict(self, segmenter, batch, classes, output_sizes):
        text = self.eval_text(segmenter, classes)
        feats = [self.fuse(segmenter, w, text)[0] for w in batch.groups]
        return decode_labels(segmenter, batch, feats, text, classes, output_sizes)
