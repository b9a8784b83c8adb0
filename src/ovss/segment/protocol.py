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
