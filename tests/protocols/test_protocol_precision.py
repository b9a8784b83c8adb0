"""The mlmp protocol's CUDA precision (fp16 weights, fp32 LayerNorm): its numerics, checked on CPU."""
import copy

import numpy as np
import torch

from ovss.segment import Segmenter, get_preset
from ovss.segment.protocol import FP16_LN_FP32, fp16_with_fp32_layernorm


def test_fp16_weights_fp32_layernorm(tiny_random):
    model = copy.deepcopy(tiny_random)
    fp16_with_fp32_layernorm(model)
    visual = model.clip.visual
    assert visual.conv1.weight.dtype == torch.float16
    assert visual.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert visual.ln_post.weight.dtype == torch.float32 and model.clip.logit_scale.dtype == torch.float32
    assert model.describe()["weights_precision"] == FP16_LN_FP32
    # LayerNorm: fp16 in, computed in fp32, fp16 out
    x = torch.randn(2, 5, visual.ln_post.weight.shape[0], generator=torch.Generator().manual_seed(0)).half()
    ref = torch.nn.functional.layer_norm(x.float(), visual.ln_post.normalized_shape, visual.ln_post.weight,
                                         visual.ln_post.bias, visual.ln_post.eps).half()
    assert torch.equal(visual.ln_post(x), ref)


def test_fp16_segmentation_close_to_fp32(tiny_random):
    model = copy.deepcopy(tiny_random)
    fp16_with_fp32_layernorm(model)
    image = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    a = Segmenter(tiny_random, preset="shapesworld").predict(image, "circle, square, triangle")
    b = Segmenter(model, preset="shapesworld").predict(image, "circle, square, triangle")
    assert b.logits.dtype == torch.float32
    # fp16 rounding (about 1e-3 relative) moves the scaled logits by far less than the class margins here
    assert (a.logits - b.logits).abs().max() < 0.05 * a.logits.abs().max()
    assert (a.labels == b.labels).float().mean() > 0.99


def test_only_the_mlmp_preset_asks_for_it_and_cpu_stays_fp32(tiny_random):
    assert get_preset("mlmp").cuda_precision == FP16_LN_FP32
    assert get_preset("naclip").cuda_precision == "fp32"
    seg = Segmenter(tiny_random, preset="mlmp")  # on CPU: no conversion
    assert tiny_random.clip.visual.conv1.weight.dtype == torch.float32 and "weights_precision" not in seg.settings() and seg.settings()["precision"] == "fp32"
