"""ResCLIP's semantic feedback refinement (SFR), checked against hand computations.

The side-by-side comparison with ResCLIP's own code is in docs/parity.md.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ovss.dense import DenseEncoder
from ovss.dense.feedback import SemanticFeedback, SfrSettings, feedback_attention, line_stays_in_label, patch_labels
from ovss.dense.multilevel import merge_heads, split_heads
from ovss.errors import OvssError
from ovss.segment import Segmenter
from ovss.segment.presets import PRESETS

IMAGE = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
CLASSES = "sky, grass, boat"


def test_patch_labels_majority_threshold_ties_and_remainder():
    # 2 queries on a 4 x 5 window of 2 x 2 patches: the fifth column is beyond the last patch
    probs = torch.zeros(2, 4, 5)
    probs[0] = 0.6
    probs[1] = 0.4
    probs[1, 0:2, 2:4] = 0.9  # patch (0, 1): all query 1
    probs[1, 2, 0:2] = 0.9  # patch (1, 0): a 2-2 tie between 0 and 1 -> the smaller label, 0
    probs[0, 2:4, 2:4] = 0.3  # patch (1, 1): best is query 1 at 0.35 < threshold -> query 0
    probs[1, 2:4, 2:4] = 0.35
    probs[1, :, 4] = 0.99  # beyond the last whole patch: not counted
    labels = patch_labels(probs, (2, 2), threshold=0.5)
    assert labels.tolist() == [[0, 1], [0, 0]]
    assert patch_labels(probs, (2, 2), threshold=0.0).tolist() == [[0, 1], [0, 1]]


def test_path_test_by_hand():
    labels = torch.tensor([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    ok = line_stays_in_label(labels)

    def at(a, b):
        return bool(ok[a[0] * 3 + a[1], b[0] * 3 + b[1]])

    # n = 2 steps for every pair; points i + (j - i) k / 2, k <= Chebyshev distance, rounded half to even
    assert not at((0, 0), (0, 2))  # through (0, 1), label 1
    assert not at((0, 2), (0, 0))
    assert at((0, 0), (2, 2)) and at((2, 0), (0, 2))  # through the centre, label 0
    assert not at((1, 0), (0, 2))  # k = 1: (0.5, 1) rounds to (0, 1)
    # one step apart: k = 1 is half way, (0, 0.5) rounds to (0, 0): only the start is looked at
    assert at((0, 0), (0, 1))
    assert not at((0, 1), (0, 0))  # start label 1; (0, 0.5) rounds to (0, 0), label 0
    assert not at((0, 1), (0, 2))  # (0, 1.5) rounds to (0, 2), label 0
    assert at((0, 2), (0, 1))  # (0, 1.5) -> (0, 2): the start itself
    # row chunks give the same rows
    torch.testing.assert_close(line_stays_in_label(labels, slice(3, 7)), ok[3:7])


def test_feedback_matrix_by_hand():
    # a 1 x 3 window, labels 0 1 0: patches 0 and 2 share a label across patch 1 -> decayed by exp(-2/2)
    std = 0.5  # kernel length min(3, int(6 * 0.5 + 1)) = 3: weights a, b, a
    got = feedback_attention(torch.tensor([[0, 1, 0]]), SfrSettings(blur_std=std))
    e = math.exp(-1 / (2 * std * std))
    a, b = e / (1 + 2 * e), 1 / (1 + 2 * e)
    d = math.exp(-1.0)
    rows = [[b, a * (1 + d), b * d], [a, b, a], [b * d, a * (1 + d), b]]  # rows convolved, zero padding
    rows = [[v / (sum(r) + 1e-8) for v in r] for r in rows]
    top = max(max(r) for r in rows)
    expected = torch.zeros(4, 4)
    expected[1:, 1:] = torch.tensor(rows) / top
    torch.testing.assert_close(got, expected, atol=1e-7, rtol=0)
    assert got.dtype == torch.float32 and got[0].abs().sum() == 0 and got[:, 0].abs().sum() == 0
    # without the decay the corner entries keep their full weight
    plain = feedback_attention(torch.tensor([[0, 1, 0]]), SfrSettings(blur_std=std, distance_decay=False))
    assert plain[1, 3] > got[1, 3]


def test_one_label_window_and_blur_over_the_flat_index():
    # one label everywhere: every pair counts, rows are blurred sums of ones over the row-major index
    std = 0.4  # kernel length int(6 * 0.4 + 1) = 3
    got = feedback_attention(torch.zeros(2, 3, dtype=torch.long), SfrSettings(blur_std=std))
    e = math.exp(-1 / (2 * std * std))
    a, b = e / (1 + 2 * e), 1 / (1 + 2 * e)
    row_edge = [b + a, 2 * a + b, 2 * a + b, 2 * a + b, 2 * a + b, b + a]
    expected = torch.tensor([v / sum(row_edge) for v in row_edge])
    top = max(expected)
    torch.testing.assert_close(got[1, 1:], expected / top, atol=1e-7, rtol=0)


@pytest.mark.parametrize("base", ["clearclip", "naclip+rcs", "sclip+rcs"])
def test_last_block_mixes_feedback_into_each_term_before_softmax(tiny_random, base):
    enc = DenseEncoder(tiny_random.visual, base)
    torch.manual_seed(0)
    x = torch.randn(1, 1 + 3 * 4, tiny_random.visual.transformer.width)
    matrix = torch.rand(1, 1, 13, 13)
    tau, lam = 2.1, 0.6
    mix = torch.rand(1, enc.blocks[-1].attn.num_heads, 13, 13) if enc.head.rcs else None
    with torch.no_grad():
        got = enc.head_block(x, (3, 4), mix=mix, feedback=SemanticFeedback(matrix, (tau, lam)))
        block = enc.blocks[-1]
        q, k, v = split_heads(block, block.ln_1(x))
        s = q.shape[-1] ** -0.5
        terms = {"clearclip": [(q, q)], "naclip+rcs": [(k, k)], "sclip+rcs": [(q, q), (k, k)]}[base]
        bias = enc._window((3, 4), 0, x.device, x.dtype) if enc.head.gaussian_std else 0
        weights = sum((tau * ((1 - lam) * (a @ c.transpose(-2, -1) * s) + lam * matrix) + bias).softmax(-1) for a, c in terms)
        if mix is not None:
            t, l = enc.head.rcs
            weights = t * ((1 - l) * weights + l * mix)
        out = block.attn.out_proj(merge_heads(weights @ v))
        if enc.head.residual:
            out = x + out
            out = out + block.mlp(block.ln_2(out))
    torch.testing.assert_close(got, out, atol=1e-5, rtol=0)


def test_segmenter_runs_sfr_and_records_it(tiny_random):
    seg = Segmenter(tiny_random, preset="resclip", dataset="voc21")
    s = seg.settings()
    assert s["sfr_weights"] == [2.2, 0.7] and s["sfr_threshold"] == 0.5 and s["rcs_weights"] == [2.0, 0.3]
    assert s["sfr"]["blur_std"] == 5.0 and s["sfr"]["pamr_iterations"] == 10 and s["window_remainder"] == "floor"
    small = replace(PRESETS["resclip"].for_dataset("voc21"), resize_short=None, sfr_threshold=0.2)  # a 6 x 8 grid
    with_sfr = Segmenter(tiny_random, preset=small).predict(IMAGE, CLASSES).logits
    # tau 1, lambda 0 leaves every logit as it was: the result is RCS alone, exactly
    neutral = Segmenter(tiny_random, preset=replace(small, sfr_weights=(1.0, 0.0))).predict(IMAGE, CLASSES).logits
    rcs_only = Segmenter(tiny_random, preset=replace(small, sfr_weights=None)).predict(IMAGE, CLASSES).logits
    torch.testing.assert_close(neutral, rcs_only, atol=1e-6, rtol=0)
    assert (with_sfr - rcs_only).abs().max() > 1e-3


def test_heads_without_similarity_terms_record_no_feedback(tiny_random):
    seg = Segmenter(tiny_random, preset="resclip", head="gem")
    assert seg.sfr is None and seg.settings()["sfr_weights"] is None and seg.settings()["sfr"] is None


def test_tta_refuses_the_feedback_in_one_line(tiny_random):
    from ovss.adaptation import get_method

    seg = Segmenter(tiny_random, preset="resclip")
    with pytest.raises(OvssError, match="does not run ResCLIP's semantic feedback"):
        get_method("tent", steps=1)(seg, [IMAGE], CLASSES, [IMAGE.shape[:2]])
