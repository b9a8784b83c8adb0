"""The dense heads against a hand-written last block, on a random tiny open_clip ViT.

The expected features are written out here with explicit q/k/v, per-head einsums, a Gaussian
window built by loops over patches, out_proj, residual/FFN, ln_post and proj, following the
official code of each method (MaskCLIP, SCLIP, ClearCLIP, NACLIP).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ovss.dense import HEADS, DenseEncoder, get_head, resize_pos_embed
from ovss.dense.encoder import gaussian_window
from ovss.errors import OvssError
from ovss.model import load_model

ATOL = 1e-5



@pytest.fixture(scope="module")
def clip_model():
    torch.manual_seed(0)
    model = load_model("ovss-tiny", "none").clip.eval()
    # Random init leaves LayerNorms at (1, 0) and attention biases at 0: perturb every one of
    # them so that a missing or misplaced LN/bias shows up in the comparison.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.visual.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith("ln_"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def visual(clip_model):
    return clip_model.visual


@pytest.fixture(scope="module")
def trainable_ln_visual():
    """A separate tiny ViT whose LayerNorms alone require gradients (as in test-time adaptation)."""
    torch.manual_seed(0)
    visual = load_model("ovss-tiny", "none").clip.visual
    visual.requires_grad_(False)
    for m in visual.modules():
        if isinstance(m, nn.LayerNorm):
            m.requires_grad_(True)
    return visual


def _images(h: int, w: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- hand-written reference


def _layer_norm(x, ln):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _pos_embed_by_hand(visual, grid, rule):
    n = visual.grid_size[0]
    pos = visual.positional_embedding
    if tuple(grid) == (n, n):
        return pos
    dim = pos.shape[-1]
    patch = pos[1:].reshape(1, n, n, dim).permute(0, 3, 1, 2)
    h, w = grid
    if rule == "size":  # MaskCLIP: resize(..., size=hw_shape, mode='bicubic', align_corners=False)
        patch = F.interpolate(patch, size=(h, w), mode="bicubic", align_corners=False)
    else:  # NACLIP/SCLIP/ClearCLIP: scale_factor=((h + 0.1) / n, (w + 0.1) / n)
        patch = F.interpolate(patch, scale_factor=((h + 0.1) / n, (w + 0.1) / n), mode="bicubic", align_corners=False)
    assert patch.shape[-2:] == (h, w)
    return torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(h * w, dim)], dim=0)


def _gaussian_by_loops(h: int, w: int, std: float) -> torch.Tensor:
    """(1 + hw)^2, zero on the class token's row and column, exp(-d^2 / (2 std^2)) between patches."""
    out = torch.zeros(h * w + 1, h * w + 1)
    for i in range(h):
        for j in range(w):
            for k in range(h):
                for l in range(w):
                    d2 = (i - k) ** 2 + (j - l) ** 2
                    out[1 + i * w + j, 1 + k * w + l] = math.exp(-d2 / (2 * std * std))
    return out


def _tokens_before_last_block(visual, images, rule):
    x = visual.conv1(images)
    B, D, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.view(1, 1, D).expand(B, 1, D)
    x = torch.cat([cls, x], dim=1) + _pos_embed_by_hand(visual, (h, w), rule)
    x = _layer_norm(x, visual.ln_pre)
    for block in visual.transformer.resblocks[:-1]:  # unchanged blocks
        x = block(x)
    return x, (h, w)


def _expected_patch_features(visual, images, head_name):
    head = HEADS[head_name]
    x, (h, w) = _tokens_before_last_block(visual, images, head.pos_resize)
    blk = visual.transformer.resblocks[-1]
    B, N, D = x.shape
    H = blk.attn.num_heads
    d = D // H
    scale = d ** -0.5

    y = _layer_norm(x, blk.ln_1)
    W, b = blk.attn.in_proj_weight, blk.attn.in_proj_bias
    q = (y @ W[:D].T + b[:D]).reshape(B, N, H, d)
    k = (y @ W[D : 2 * D].T + b[D : 2 * D]).reshape(B, N, H, d)
    v = (y @ W[2 * D :].T + b[2 * D :]).reshape(B, N, H, d)

    def sim(a, c):
        return torch.einsum("bnhd,bmhd->bhnm", a, c) * scale

    if head_name == "clip":
        attn = sim(q, k).softmax(-1)
    elif head_name == "maskclip":  # identity attention: every token keeps its own value
        attn = torch.eye(N).expand(B, H, N, N)
    elif head_name == "sclip":  # two softmaxes, summed (not averaged)
        attn = sim(q, q).softmax(-1) + sim(k, k).softmax(-1)
    elif head_name == "clearclip":
        attn = sim(q, q).softmax(-1)
    elif head_name == "naclip":  # Gaussian added after the scale, before the softmax
        attn = (sim(k, k) + _gaussian_by_loops(h, w, head.gaussian_std)).softmax(-1)
    else:
        raise AssertionError(head_name)

    out = torch.einsum("bhnm,bmhd->bnhd", attn, v).reshape(B, N, D)
    out = out @ blk.attn.out_proj.weight.T + blk.attn.out_proj.bias
    if head.residual:
        out = x + out
    if head.ffn:
        assert isinstance(blk.mlp.gelu, nn.GELU)
        z = _layer_norm(out, blk.ln_2)
        z = F.gelu(z @ blk.mlp.c_fc.weight.T + blk.mlp.c_fc.bias)
        out = out + (z @ blk.mlp.c_proj.weight.T + blk.mlp.c_proj.bias)
    patch = _layer_norm(out[:, 1:], visual.ln_post) @ visual.proj
    return patch.reshape(B, h, w, -1)


# --------------------------------------------------------------------------- tests


class TestDenseHeads:
    @pytest.mark.parametrize("head", ["clip", "maskclip", "sclip", "clearclip", "naclip"])
    @pytest.mark.parametrize("size", [(112, 112), (96, 128)], ids=["native", "non-square"])
    def test_matches_hand_written_last_block(self, visual, head, size):
        images = _images(*size)
        with torch.no_grad():
            got = DenseEncoder(visual, head)(images).patch
            expected = _expected_patch_features(visual, images, head)
        assert got.shape == expected.shape == (2, size[0] // 8, size[1] // 8, 128)
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)

    def test_heads_differ(self, visual, make_encoder):
        images = _images(112, 112)
        with torch.no_grad():
            feats = {name: make_encoder(visual, name)(images).patch for name in HEADS}
        names = list(feats)
        for i, a in enumerate(names):
            for b_ in names[i + 1 :]:
                assert not torch.allclose(feats[a], feats[b_], atol=1e-3), (a, b_)

    def test_vanilla_equals_open_clip_forward(self, clip_model, visual):
        images = _images(112, 112)
        enc = DenseEncoder(visual, "clip")
        visual.output_tokens = True
        try:
            with torch.no_grad():
                _, tokens = visual(images)  # ln_post'd patch tokens, not projected
        finally:
            visual.output_tokens = False
        with torch.no_grad():
            out = enc(images, with_global=True)
            glob = clip_model.encode_image(images)
        torch.testing.assert_close(out.patch.flatten(1, 2), tokens @ visual.proj, atol=ATOL, rtol=0)
        torch.testing.assert_close(out.global_embedding, glob, atol=ATOL, rtol=0)

    @pytest.mark.parametrize("head", ["maskclip", "naclip"])
    def test_global_embedding_is_the_unchanged_model(self, clip_model, visual, head):
        images = _images(112, 112)
        with torch.no_grad():
            out = DenseEncoder(visual, head)(images, with_global=True)
            glob = clip_model.encode_image(images)
        torch.testing.assert_close(out.global_embedding, glob, atol=ATOL, rtol=0)

    @pytest.mark.parametrize("head", list(HEADS))
    @pytest.mark.parametrize("size", [(64, 160), (120, 88), (200, 200)])
    def test_shapes(self, visual, head, size, make_encoder):
        with torch.no_grad():
            out = make_encoder(visual, head)(_images(*size, batch=1))
        h, w = size[0] // 8, size[1] // 8
        assert out.grid == (h, w)
        assert out.patch.shape == (1, h, w, 128)
        assert torch.isfinite(out.patch).all()

    @pytest.mark.parametrize("head", list(HEADS))
    def test_layers_returned(self, visual, head, make_encoder):
        with torch.no_grad():
            out = make_encoder(visual, head)(_images(112, 112, batch=1), layers=(0, -2, -1))
        assert set(out.layers) == {0, 4, 5}
        assert out.layers[0].shape == (1, 1 + 14 * 14, 128)

    @pytest.mark.parametrize("head", list(HEADS))
    def test_gradients_reach_layer_norms(self, trainable_ln_visual, head, make_encoder):
        visual = trainable_ln_visual
        visual.zero_grad(set_to_none=True)
        make_encoder(visual, head)(_images(96, 128, batch=1)).patch.square().sum().backward()
        last = visual.transformer.resblocks[-1]
        must = [visual.ln_pre, visual.ln_post, visual.transformer.resblocks[0].ln_1, last.ln_1]
        if HEADS[head].ffn:
            must.append(last.ln_2)
        for m in must:
            assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0
            assert m.bias.grad is not None and m.bias.grad.abs().sum() > 0
        assert visual.conv1.weight.grad is None  # frozen parameters stay untouched

    def test_unknown_head(self, visual):
        with pytest.raises(OvssError, match="unknown head"):
            get_head("nope")
        with pytest.raises(OvssError, match="unknown head"):
            DenseEncoder(visual, "nope")

    def test_head_table(self):
        assert HEADS["sclip"].terms == ("qq", "kk")
        assert (HEADS["naclip"].residual, HEADS["naclip"].ffn, HEADS["naclip"].gaussian_std) == (False, False, 5.0)
        assert (HEADS["clearclip"].residual, HEADS["clearclip"].ffn) == (False, False)
        assert (HEADS["maskclip"].residual, HEADS["maskclip"].ffn, HEADS["maskclip"].pos_resize) == (True, True, "size")
        assert get_head(HEADS["clip"]) is HEADS["clip"]


class TestResizePosEmbed:
    def test_native_grid_is_untouched(self, visual):
        pos = visual.positional_embedding
        for rule in ("offset", "size"):
            assert resize_pos_embed(pos, (14, 14), (14, 14), rule) is pos

    @pytest.mark.parametrize("grid", [(12, 16), (20, 7), (28, 28)])
    def test_offset_rule(self, visual, grid):
        pos = visual.positional_embedding.detach()
        n, (h, w) = 14, grid
        patch = pos[1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        ref = F.interpolate(patch, scale_factor=((h + 0.1) / n, (w + 0.1) / n), mode="bicubic", align_corners=False)
        ref = torch.cat([pos[:1], ref.permute(0, 2, 3, 1).reshape(h * w, -1)])
        got = resize_pos_embed(pos, (n, n), grid, "offset")
        assert got.shape == (1 + h * w, pos.shape[1])
        torch.testing.assert_close(got, ref, atol=0, rtol=0)

    @pytest.mark.parametrize("grid", [(12, 16), (20, 7)])
    def test_size_rule(self, visual, grid):
        pos = visual.positional_embedding.detach()
        n, (h, w) = 14, grid
        patch = pos[1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        ref = F.interpolate(patch, size=(h, w), mode="bicubic", align_corners=False)
        ref = torch.cat([pos[:1], ref.permute(0, 2, 3, 1).reshape(h * w, -1)])
        torch.testing.assert_close(resize_pos_embed(pos, (n, n), grid, "size"), ref, atol=0, rtol=0)

    def test_rules_differ(self, visual):
        pos = visual.positional_embedding.detach()
        a = resize_pos_embed(pos, (14, 14), (21, 28), "offset")
        b = resize_pos_embed(pos, (14, 14), (21, 28), "size")
        torch.testing.assert_close(a[0], b[0])  # the class token is kept by both
        assert (a[1:] - b[1:]).abs().max() > 1e-3

    def test_unknown_rule(self, visual):
        with pytest.raises(ValueError):
            resize_pos_embed(visual.positional_embedding, (14, 14), (10, 10), "nearest")


class TestGaussianWindow:
    def test_two_by_two_by_hand(self):
        std = 2.0
        e1 = math.exp(-1 / (2 * std**2))  # 4-neighbours, distance 1
        e2 = math.exp(-2 / (2 * std**2))  # diagonal, distance sqrt(2)
        expected = torch.tensor(
            [
                [0, 0, 0, 0, 0],
                [0, 1, e1, e1, e2],  # patch (0, 0)
                [0, e1, 1, e2, e1],  # patch (0, 1)
                [0, e1, e2, 1, e1],  # patch (1, 0)
                [0, e2, e1, e1, 1],  # patch (1, 1)
            ],
            dtype=torch.float32,
        )
        torch.testing.assert_close(gaussian_window((2, 2), std), expected, atol=1e-7, rtol=0)

    @pytest.mark.parametrize("grid", [(3, 5), (4, 4)])
    def test_matches_loops(self, grid):
        torch.testing.assert_close(gaussian_window(grid, 5.0), _gaussian_by_loops(*grid, 5.0), atol=1e-7, rtol=0)
