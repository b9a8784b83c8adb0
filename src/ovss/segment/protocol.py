"""Protocol settings that depend on the loaded model rather than on the preset alone."""
from __future__ import annotations

import math

import torch


def checkpoint_logit_scale(model) -> float:
    """CLIP's learned temperature, ``logit_scale.exp()`` of the checkpoint (MLMP's code multiplies
    cosine similarities by it; 100.0 for OpenAI's weights, other values for other checkpoints).
    Models without one get CLIP's initial value 1 / 0.07."""
    scale = getattr(getattr(model, "clip", model), "logit_scale", None)
    if scale is None:
        return 1 / 0.07
    with torch.no_grad():
        value = float(torch.as_tensor(scale).float().exp())
    return value if math.isfinite(value) else 1 / 0.07


FP16_LN_FP32 = "fp16-ln-fp32"


class _Fp32LayerNorm(torch.nn.LayerNorm):
    """A LayerNorm that normalises in fp32 and returns the input's dtype (OpenAI CLIP's LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def fp16_with_fp32_layernorm(model) -> None:
    """Convert ``model`` in place to the precision of MLMP's published CUDA runs: fp16 weights,
    LayerNorm weights and arithmetic in fp32 (OpenAI CLIP's ``convert_weights`` and LayerNorm).

    Every parameter and buffer but LayerNorms' and ``logit_scale`` becomes fp16; embeddings kept
    in fp32 by OpenAI's code are cast to fp16 where they are used, so halving them here gives the
    same numbers. ``model.info["weights_precision"]`` records it (results carry it through ``describe``).
    CUDA is where it pays; on CPU it runs, slowly, and gives the same roundings.
    """
    clip = getattr(model, "clip", model)
    for module in clip.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.float()
            if type(module) is not _Fp32LayerNorm:
                module.__class__ = _Fp32LayerNorm
            continue
        for name, p in module.named_parameters(recurse=False):
            if name != "logit_scale" and p.is_floating_point():
                p.data = p.data.half()
        for name, b in module.named_buffers(recurse=False):
            if b.is_floating_point():
                setattr(module, name, b.half())
    if hasattr(model, "info"):
        model.info["weights_precision"] = FP16_LN_FP32
