"""A window that is not a multiple of the patch size: NACLIP's and MLMP's forward_feature feed it
to conv1 as it is (the last partial patch is dropped) and stretch the logits over the whole
window; ovss's own presets zero-pad instead."""
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from ovss.segment import Segmenter, get_preset
from ovss.text import parse_classes


def test_presets_say_how_the_remainder_is_handled():
    assert get_preset("naclip").window_remainder == "floor"
    assert get_preset("mlmp").window_remainder == "floor"
    assert get_preset("shapesworld").window_remainder == "pad"


def test_floor_drops_the_partial_patch_and_stretches_the_logits(tiny_random):
    ph, pw = tiny_random.patch_size
    h, w = 3 * ph + 5, 2 * pw + 3  # one whole-image window, not a multiple of the patch size
    image = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    classes = parse_classes("red square, blue circle")
    whole = replace(get_preset("naclip"), crop=None, stride=None, resize_short=None, pamr=False)  # no resize
    seg = Segmenter(tiny_random, preset=whole)
    enc = seg.set_image(image)
    assert enc.padded == (h, w) and enc.features.shape[1:3] == (3, 2)
    # by hand: the encoder on the window cut to whole patches, cosine logits resized to the window
    x = seg.preprocess(image)
    feats = F.normalize(seg.encoder(x[..., : 3 * ph, : 2 * pw]).patch.float(), dim=-1)
    assert torch.allclose(enc.features, feats, atol=1e-6)
    text = seg.class_embeddings(classes)
    cos = torch.einsum("bhwe,qe->bqhw", feats, text)
    expected = F.interpolate(cos, size=(h, w), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(seg.window_logits_to_image(enc, enc.features, text), expected, atol=1e-6)
    # pad: a fourth patch row and a third patch column of zeros, logits cropped back
    padded = Segmenter(tiny_random, preset=replace(whole, window_remainder="pad")).set_image(image)
    assert padded.padded == (4 * ph, 3 * pw) and padded.features.shape[1:3] == (4, 3)
    assert seg.settings()["window_remainder"] == "floor"
