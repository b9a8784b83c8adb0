"""Numeric precision of the vision encoder's forward: exact fp32 (default) or an opt-in fast mode.

The fast modes wrap the whole encoder forward, never a single head, so every head (and every head
added later) runs in them unchanged:

- ``bf16``: bfloat16 autocast. On CPUs with AMX / AVX512-BF16 the matmuls run several times faster
  than fp32; LayerNorm and the heads' attention softmaxes stay in float32.
- ``fp16``: float16 autocast, CUDA only (CPUs have no fast fp16 matmul).
- ``int8``: a copy of the encoder whose ``nn.Linear`` layers (the MLPs) hold int8 weights and run
  dynamically quantised matmuls; activations stay float. Everything else (LayerNorms, embeddings,
  attention projections) is shared with the original model, so updates to it are seen. Inference
  only: the quantised matmul has no gradient, so test-time adaptation refuses it. CPU only.

Which modes pass the quality bar (label agreement with fp32, mIoU) is measured in
docs/benchmarks.md; fp32 stays the default so published numbers stay exact.
"""
from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn

from ..errors import OvssError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``precision`` if it exists and runs on ``device``; else one line naming the fix."""
    if precision not in PRECISIONS:
        raise OvssError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        raise OvssError("precision='fp16' needs a CUDA device (CPUs have no fast fp16 matmul); use bf16 or int8 on CPU",
                        param="precision")
    if precision == "int8" and kind != "cpu":
        raise OvssError("precision='int8' runs on CPU only (dynamic quantisation); use fp16 or bf16 on CUDA", param="precision")
    return precision


def autocast(precision: str, device: str | torch.device = "cpu"):
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32 and int8)."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def quantized_copy(visual: nn.Module) -> nn.Module:
    """``visual`` with its ``nn.Linear`` layers dynamically quantised to int8 weights.

    Only the Linear modules are copied (and quantised); every other parameter and buffer is the
    original tensor, so the copy sees later changes to LayerNorms, embeddings or attention weights.
    The original model is left untouched.
    """
    linear = {id(p) for m in visual.modules() if type(m) is nn.Linear for p in m.parameters(recurse=False)}
    shared = {id(t): t for t in list(visual.parameters()) + list(visual.buffers()) if id(t) not in linear}
    clone = copy.deepcopy(visual, memo=dict(shared))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that eager quantisation moves to torchao
        return torch.ao.quantization.quantize_dynamic(clone, {nn.Linear}, dtype=torch.qint8, inplace=True)
