"""ProxyCLIP and the second backbone, against hand computations.

The proxy attention is written out with loops over token pairs, the second backbone's forward
with explicit q/k/v, following mc-lan/ProxyCLIP ``custom_attn`` and DINO's
``get_intermediate_layers`` (the second backbone is a small random timm ViT here; the real
DINO ViT-B/8 and B/16 are compared with the authors' code in docs/parity.md).
"""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovss.model.blocks import OpenClipBlock
from ovss.adaptation.mlmp import level_tokens
from ovss.dense import DenseEncoder, resize_pos_embed
from ovss.dense.proxy import PROXY, proxy_attention, renormalise, second_features
from ovss.errors import OvssError
from ovss.model import load_model
from ovss.model.second import SECOND_BACKBONES, SecondBackbone, dino_backbone_state, load_second_backbone
from ovss.segment import Segmenter

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope="module")
def visual():
    torch.manual_seed(0)
    visual = load_model("ovss-tiny", "none").clip.visual.eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in visual.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith("ln_"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return visual


@pytest.fixture(scope="module")
def second(make_encoder):
    """The small test backbone with every bias and norm perturbed, so that a missing one shows."""
    vit = copy.deepcopy(make_encoder.second.vit)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return SecondBackbone(make_encoder.second.spec, vit, "none")


def _images(h, w, batch=2, seed=0):
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _ln(x, ln):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _vit_by_hand(vit, images):
    """DINO's forward: conv patches, class token, position embedding (bicubic, scale (g + 0.1) / n),
    blocks with explicit attention, final norm; patch tokens B x C x h x w."""
    x = vit.patch_embed.proj(images)
    B, D, h, w = x.shape
    x = torch.cat([vit.cls_token.expand(B, 1, D), x.flatten(2).transpose(1, 2)], 1)
    pos = vit.pos_embed[0]
    n = int(math.isqrt(pos.shape[0] - 1))
    patch = pos[1:].reshape(1, n, n, D).permute(0, 3, 1, 2)
    if (h, w) != (n, n):
        patch = F.interpolate(patch, scale_factor=((h + 0.1) / n, (w + 0.1) / n), mode="bicubic")
    x = x + torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(h * w, D)])
    for blk in vit.blocks:
        y = _ln(x, blk.norm1)
        H = blk.attn.num_heads
        q, k, v = (y @ blk.attn.qkv.weight.T + blk.attn.qkv.bias).reshape(B, -1, 3, H, D // H).unbind(2)
        a = (torch.einsum("bnhd,bmhd->bhnm", q, k) * (D // H) ** -0.5).softmax(-1)
        o = torch.einsum("bhnm,bmhd->bnhd", a, v).reshape(B, -1, D)
        x = x + (o @ blk.attn.proj.weight.T + blk.attn.proj.bias)
        z = F.gelu(_ln(x, blk.norm2) @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias)
        x = x + (z @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias)
    x = _ln(x, vit.norm)
    return x[:, 1:].transpose(1, 2).reshape(B, D, h, w)


def _proxy_by_hand(attn, y, grid, proxy, loops=True):
    """Cosine similarities by loops over token pairs (or, for larger grids, by explicit norms and a
    product); bilinear upsampling of the values by F.interpolate (checked by hand separately)."""
    B, N, D = y.shape
    C, Hp, Wp = proxy.shape[1:]
    W, b = attn.in_proj_weight, attn.in_proj_bias
    v = (y @ W[2 * D:].T + b[2 * D:])[:, 1:].reshape(B, *grid, D).permute(0, 3, 1, 2)
    v = F.interpolate(v, size=(Hp, Wp), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)  # B x HW x D
    out = []
    for i in range(B):
        f = proxy[i].reshape(C, -1)
        m = f.shape[1]
        if loops:
            sim = torch.zeros(m, m)
            for r in range(m):
                for c in range(m):
                    sim[r, c] = torch.dot(f[:, r], f[:, c]) / (f[:, r].norm() * f[:, c].norm())
        else:
            unit = f / f.norm(dim=0, keepdim=True)
            sim = unit.T @ unit
        s = (sim - sim.mean() * PROXY.beta) * PROXY.gamma
        wts = torch.where(s < 0, torch.full_like(s, float("-inf")), s).softmax(-1)
        out.append(wts @ v[i])  # the same weights for every head: they act on each head's channels alike
    out = torch.stack(out)
    return out @ attn.out_proj.weight.T + attn.out_proj.bias


class TestOperations:
    def test_renormalise_by_hand(self):
        x = torch.zeros(1, 3, 1, 1)  # CLIP's mean colour
        got = renormalise(x, CLIP_MEAN, CLIP_STD, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        expected = [(0.48145466 - 0.485) / 0.229, (0.4578275 - 0.456) / 0.224, (0.40821073 - 0.406) / 0.225]
        torch.testing.assert_close(got.flatten(), torch.tensor(expected), atol=1e-6, rtol=0)
        ones = renormalise(torch.ones(1, 3, 1, 1), (0, 0, 0), (1, 1, 1), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        assert ones.flatten().tolist() == [2.0, 2.0, 2.0]  # (1 - 0.5) / 0.25

    def test_bilinear_value_upsampling_by_hand(self):
        # what the proxy attention does to CLIP's values: 1 x 2 -> 1 x 4, align_corners False
        row = torch.tensor([[[[1.0, 5.0]]]])
        got = F.interpolate(row, size=(1, 4), mode="bilinear", align_corners=False)
        assert got.flatten().tolist() == [1.0, 2.0, 4.0, 5.0]  # a, .75a+.25b, .25a+.75b, b

    @pytest.mark.parametrize("grid,proxy_grid", [((2, 2), (4, 4)), ((2, 3), (4, 6)), ((3, 3), (3, 3))])
    def test_proxy_attention_by_hand(self, visual, grid, proxy_grid):
        attn = visual.transformer.resblocks[-1].attn
        g = torch.Generator().manual_seed(3)
        y = torch.randn(2, 1 + grid[0] * grid[1], 128, generator=g)
        proxy = torch.randn(2, 5, *proxy_grid, generator=g)
        with torch.no_grad():
            got = proxy_attention(OpenClipBlock(visual.transformer.resblocks[-1], None), y, grid, proxy)
            expected = _proxy_by_hand(attn, y, grid, proxy)
        assert got.shape == (2, proxy_grid[0] * proxy_grid[1], 128)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)

    def test_negative_shifted_similarities_get_no_weight(self, visual):
        """Two groups of orthogonal proxy features: a token attends to its own group only."""
        attn = visual.transformer.resblocks[-1].attn
        proxy = torch.zeros(1, 2, 2, 2)
        proxy[0, 0, 0, :] = 1.0  # top row: feature e0
        proxy[0, 1, 1, :] = 1.0  # bottom row: feature e1
        y = torch.randn(1, 5, 128, generator=torch.Generator().manual_seed(4))
        with torch.no_grad():
            out = proxy_attention(OpenClipBlock(visual.transformer.resblocks[-1], None), y, (2, 2), proxy)
        # similarity 1 within a row, 0 across; mean 0.5; (s - 0.6) * 3: 1.2 within, -1.8 across (masked)
        v = (y @ attn.in_proj_weight[256:].T + attn.in_proj_bias[256:])[:, 1:]
        top = (v[0, 0] + v[0, 1]) / 2
        expected_top = top @ attn.out_proj.weight.T + attn.out_proj.bias
        torch.testing.assert_close(out[0, 0], expected_top.detach(), atol=1e-5, rtol=0)
        torch.testing.assert_close(out[0, 1], expected_top.detach(), atol=1e-5, rtol=0)

    @pytest.mark.parametrize("size", [(112, 112), (96, 128)])
    def test_second_features_match_a_hand_written_vit(self, second, size):
        images = _images(*size)
        with torch.no_grad():
            got = second_features(second, images, resize_pos_embed)
            expected = _vit_by_hand(second.vit, images)
        assert got.shape == (2, 64, size[0] // 8, size[1] // 8)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def _expected_head(visual, second, images):
    x = visual.conv1(images)
    B, D, h, w = x.shape
    x = torch.cat([visual.class_embedding.view(1, 1, D).expand(B, 1, D), x.flatten(2).transpose(1, 2)], 1)
    x = _ln(x + resize_pos_embed(visual.positional_embedding, (14, 14), (h, w), "offset"), visual.ln_pre)
    for blk in visual.transformer.resblocks[:-1]:
        x = blk(x)
    last = visual.transformer.resblocks[-1]
    raw = images * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    dino_in = (raw - torch.tensor(second.spec.mean).view(1, 3, 1, 1)) / torch.tensor(second.spec.std).view(1, 3, 1, 1)
    proxy = _vit_by_hand(second.vit, dino_in)
    out = _proxy_by_hand(last.attn, _ln(x, last.ln_1), (h, w), proxy, loops=False)
    return (_ln(out, visual.ln_post) @ visual.proj).reshape(B, *proxy.shape[-2:], -1)


class TestProxyHead:
    @pytest.mark.parametrize("size", [(112, 112), (64, 96)], ids=["native", "non-square"])
    def test_matches_hand_written_pipeline(self, visual, second, size):
        images = _images(*size)
        enc = DenseEncoder(visual, "proxyclip", second=second, input_mean=CLIP_MEAN, input_std=CLIP_STD)
        with torch.no_grad():
            got = enc(images)
            expected = _expected_head(visual, second, images)
        assert got.grid == (size[0] // 8, size[1] // 8)
        torch.testing.assert_close(got.patch, expected, atol=1e-5, rtol=0)

    def test_windows_of_a_batch_are_independent(self, visual, second):
        images = _images(64, 64, batch=3)
        enc = DenseEncoder(visual, "proxyclip", second=second, input_mean=CLIP_MEAN, input_std=CLIP_STD)
        with torch.no_grad():
            torch.testing.assert_close(enc(images).patch[1:2], enc(images[1:2]).patch, atol=1e-5, rtol=0)

    def test_without_a_second_backbone_it_says_so(self, visual):
        with pytest.raises(OvssError, match="needs a second backbone"):
            DenseEncoder(visual, "proxyclip")(_images(64, 64))

    def test_second_backbone_is_not_a_parameter_of_the_encoder(self, visual, second):
        enc = DenseEncoder(visual, "proxyclip", second=second, input_mean=CLIP_MEAN, input_std=CLIP_STD)
        assert sum(p.numel() for p in enc.parameters()) == sum(p.numel() for p in visual.parameters())

    def test_mlmp_last_level(self, visual, second, make_encoder):
        enc = DenseEncoder(visual, "proxyclip", second=second, input_mean=CLIP_MEAN, input_std=CLIP_STD)
        images = _images(112, 112, batch=1)
        with torch.no_grad():
            tokens, grid, _ = level_tokens(enc, images, [4, 5])
            ref = enc(images).patch
        torch.testing.assert_close(enc.project(tokens[5][:, 1:]).reshape(ref.shape), ref, atol=1e-6, rtol=0)

    def test_mlmp_refuses_a_grid_it_cannot_fuse(self, visual, second):
        coarse = SecondBackbone(SECOND_BACKBONES["dino-vitb16"], second.vit, "none")  # claims patch 16
        enc = DenseEncoder(visual, "proxyclip", second=coarse, input_mean=CLIP_MEAN, input_std=CLIP_STD)
        enc.proxy_features = lambda images: torch.zeros(images.shape[0], 64, 7, 7)
        with pytest.raises(OvssError, match="mlmp fuses"):
            level_tokens(enc, _images(112, 112, batch=1), [4, 5])


@pytest.fixture
def small_spec(monkeypatch):
    """A table entry for a small timm ViT, so that loading tests do not build 86 M parameters."""
    from ovss.model.second import SecondBackboneSpec

    spec = SecondBackboneSpec("test-small", "vit_tiny_patch16_224", 16, 192, 12, checkpoint="small.pth",
                              description="test")
    monkeypatch.setitem(SECOND_BACKBONES, "test-small", spec)
    return spec


class TestLoading:
    def test_weights_are_required(self):
        with pytest.raises(OvssError, match="pass second_weights=PATH") as e:
            load_second_backbone("dino-vitb8", None)
        assert e.value.param == "second_weights"

    def test_unknown_name_and_missing_file(self, tmp_path, small_spec):
        with pytest.raises(OvssError, match="unknown second backbone"):
            load_second_backbone("dino-vitz", "none")
        with pytest.raises(OvssError, match="not found"):
            load_second_backbone("test-small", str(tmp_path / "nope.pth"))

    def test_checkpoints_load_safely_and_must_fit(self, tmp_path, small_spec):
        from safetensors.torch import save_file

        a = load_second_backbone("test-small", "none")
        state = {k: v + 1.0 for k, v in a.vit.state_dict().items()}
        torch.save(state, tmp_path / "small.pth")  # a plain state dict, read with weights_only=True
        b = load_second_backbone("test-small", str(tmp_path / "small.pth"))
        assert torch.equal(b.vit.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])
        assert b.describe()["second_weights"] == str(tmp_path / "small.pth")
        save_file({"cls_token": torch.zeros(1, 1, 384)}, str(tmp_path / "other.safetensors"))
        with pytest.raises(OvssError, match="does not fit test-small"):
            load_second_backbone("test-small", str(tmp_path / "other.safetensors"))

    def test_dino_training_checkpoint_keys(self):
        state = {"teacher": {"backbone.cls_token": 1, "backbone.blocks.0.norm1.weight": 2, "head.mlp.0.weight": 3}}
        assert dino_backbone_state(state) == {"cls_token": 1, "blocks.0.norm1.weight": 2}
        assert dino_backbone_state({"pos_embed": 4}) == {"pos_embed": 4}

    def test_random_weights_repeat(self, small_spec):
        torch.manual_seed(5)  # the caller's random state does not matter
        a = load_second_backbone("test-small", "none")
        b = load_second_backbone("test-small", "none")
        assert torch.equal(a.vit.blocks[0].attn.qkv.weight, b.vit.blocks[0].attn.qkv.weight)
        assert a.describe() == {"second_backbone": "test-small", "second_weights": "none"}

    def test_the_table_builds_dino_b8_and_b16(self):
        import timm

        for name, patch in (("dino-vitb8", 8), ("dino-vitb16", 16)):
            spec = SECOND_BACKBONES[name]
            vit = timm.create_model(spec.timm_name, pretrained=False, num_classes=0, depth=1)  # one block: the stem
            assert vit.patch_embed.patch_size == (patch, patch) and vit.embed_dim == spec.width == 768
            assert vit.blocks[0].norm1.eps == 1e-6 and vit.blocks[0].attn.qkv.bias is not None  # DINO's ViT


class TestSegmenterAndCli:
    def test_segmenter_records_the_second_backbone(self, tiny_random, small_spec):
        with pytest.raises(OvssError, match="second_weights"):
            Segmenter(tiny_random, head="proxyclip", preset="shapesworld")
        seg = Segmenter(tiny_random, head="proxyclip", preset="shapesworld", second_backbone="test-small",
                        second_weights="none")
        image = (torch.rand(60, 90, 3, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8).numpy()
        result = seg.predict(image, "red circle, blue square")
        assert result.labels.shape == (60, 90)
        s = seg.settings()
        assert (s["head"], s["second_backbone"], s["second_weights"]) == ("proxyclip", "test-small", "none")

    def test_segment_command(self, tmp_path, capsys, small_spec):
        from PIL import Image

        from ovss.cli import main

        Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "a.png")
        base = ["segment", str(tmp_path / "a.png"), "--classes", "cat, dog", "--model", "ovss-tiny", "--pretrained",
                "none", "--preset", "shapesworld", "--head", "proxyclip", "--out", str(tmp_path / "out")]
        assert main(base) == 2
        err = capsys.readouterr().err.strip()
        assert "--vfm-weights" in err and len(err.splitlines()) == 1
        assert main(base + ["--vfm", "test-small", "--vfm-weights", "none"]) == 0
        meta = json.loads((tmp_path / "out" / "a.json").read_text())
        assert meta["settings"]["second_backbone"] == "test-small" and meta["settings"]["second_weights"] == "none"


def test_parity_notes_say_what_official_proxyclip_does_on_non_square_windows():
    # issue 22: the official segmentor does not raise on 224 x 336 windows; it folds DINO's tokens
    # into channels (reshape with -1) and returns logits on a square grid, for B/8 and B/16 alike
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "parity.md").read_text(encoding="utf-8")
    note = text[text.index("**ProxyCLIP bugs, non-square windows"):text.index("- ResCLIP with its semantic feedback")]
    assert "runs and returns logits on the wrong" in note and "B/8 and B/16 alike" in note
    assert "RuntimeError" not in note and "28 x 28 with B/8, 14 x 14 with B/16" in note
    rows = [line for line in text.splitlines() if line.startswith("| `proxyclip`, DINO")]
    assert len(rows) == 2 and all("fails" not in row and "wrong grid" in row for row in rows)


def test_a_second_backbone_for_a_head_without_one_is_one_line(tiny_random, tmp_path, capsys):
    # issue 22: --vfm with a head that ignores it was silent
    from PIL import Image

    from ovss.cli import main
    from ovss.errors import OvssError
    from ovss.segment import Segmenter

    with pytest.raises(OvssError) as e:
        Segmenter(tiny_random, head="naclip", preset="shapesworld", second_backbone="dino-vitb16")
    assert str(e.value) == ("second_backbone='dino-vitb16' is for heads with a second backbone (proxyclip); head "
                            "'naclip' has none: drop second_backbone or choose head='proxyclip'")
    assert e.value.param == "second_backbone"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "a.png")
    base = ["segment", str(tmp_path / "a.png"), "--classes", "a, b", "--model", "ovss-tiny", "--pretrained", "none",
            "--out", str(tmp_path / "out")]
    assert main(base + ["--vfm", "dino-vitb16"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ovss: error: --vfm dino-vitb16 is for heads with a second backbone (proxyclip); head 'naclip' has none: "
        "drop --vfm or choose head='proxyclip'")
    assert main(base + ["--preset", "sclip", "--vfm-weights", "x.pth"]) == 2
    assert "--vfm-weights x.pth is for heads with a second backbone (proxyclip); head 'sclip' has none" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
