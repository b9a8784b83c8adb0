"""GEM, SC-CLIP and ResCLIP's attention mix (heads that read earlier blocks) against hand computations on a random tiny open_clip ViT.

Each operation is checked on a case small enough to work out on paper (LOF scores of four points
on a line, a 3 x 3 repair, a two-token aggregation), and each head end to end against a
reference written here with explicit per-head einsums, following the authors' code (WalBouss/GEM
``gem_utils.py``, SuleBai/SC-CLIP ``clip/model.py``, yvhangyang/ResCLIP ``clip/model.py``).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ovss.model.blocks import OpenClipBlock
from ovss.adaptation.mlmp import level_tokens
from ovss.dense import HEADS, DenseEncoder
from ovss.dense.encoder import gaussian_window
from ovss.dense.heads import with_rcs
from ovss.dense.multilevel import (
    GEM,
    RCS,
    SCCLIP,
    ScClipSettings,
    aggregate,
    anomaly_mask,
    guided_attention,
    local_outlier_scores,
    repair_anomalies,
    self_self_attention,
)
from ovss.errors import OvssError
from ovss.model import load_model
from ovss.segment import Segmenter

ATOL = 1e-5
MULTILEVEL = [name for name, h in HEADS.items() if h.levels]
HISTORY_HEADS = [name for name, h in HEADS.items() if h.needs_history]  # multi-level heads and the +rcs ones


@pytest.fixture(scope="module")
def visual():
    torch.manual_seed(0)
    visual = load_model("ovss-tiny", "none").clip.visual.eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # perturb every LN and bias, so that a missing one shows
        for name, p in visual.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith("ln_"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return visual


def _images(h, w, batch=2, seed=0):
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _ln(x, ln):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _qkv(attn, y):
    B, N, D = y.shape
    H = attn.num_heads
    W, b = attn.in_proj_weight, attn.in_proj_bias
    return [(y @ W[i * D:(i + 1) * D].T + b[i * D:(i + 1) * D]).reshape(B, N, H, D // H) for i in range(3)]


def _out_proj(attn, out):  # out: B x N x H x d
    return out.flatten(2) @ attn.out_proj.weight.T + attn.out_proj.bias


def _block_inputs(visual, images, rule):
    """Tokens entering each block, computed with an explicit embedding."""
    x = visual.conv1(images)
    B, D, h, w = x.shape
    n = visual.grid_size[0]
    pos = visual.positional_embedding
    patch = pos[1:].reshape(1, n, n, D).permute(0, 3, 1, 2)
    if (h, w) != (n, n):
        if rule == "size-aa":
            patch = F.interpolate(patch, size=(h, w), mode="bicubic", antialias=True)
        else:
            patch = F.interpolate(patch, scale_factor=((h + 0.1) / n, (w + 0.1) / n), mode="bicubic")
    pos = torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(h * w, D)])
    x = torch.cat([visual.class_embedding.view(1, 1, D).expand(B, 1, D), x.flatten(2).transpose(1, 2)], 1) + pos
    x = _ln(x, visual.ln_pre)
    inputs = []
    for blk in visual.transformer.resblocks:
        inputs.append(x)
        x = blk(x)
    return inputs, (h, w)


def _project(visual, tokens, grid):
    return (_ln(tokens[:, 1:], visual.ln_post) @ visual.proj).reshape(tokens.shape[0], *grid, -1)


# ------------------------------------------------------------------------------------------- GEM


def _gem_attention_by_hand(attn, y):
    q, k, v = _qkv(attn, y)  # B x N x H x d
    d = q.shape[-1]
    tau = torch.stack([y[b].norm(dim=-1).mean() for b in range(y.shape[0])]) * d ** -0.5  # per image
    outs = []
    for t in (v, k, q):
        t = F.normalize(t, dim=-1)
        a = (torch.einsum("bnhd,bmhd->bhnm", t, t) * tau.view(-1, 1, 1, 1)).softmax(-1)
        t = F.normalize(torch.einsum("bhnm,bmhd->bnhd", a, t), dim=-1)  # one clustering step
        a = (torch.einsum("bnhd,bmhd->bhnm", t, t) * tau.view(-1, 1, 1, 1)).softmax(-1)
        outs.append(torch.einsum("bhnm,bmhd->bnhd", a, v))
    return _out_proj(attn, (outs[0] + outs[1] + outs[2]) / 3)


class TestGEM:
    def test_settings_are_the_authors(self):
        assert (GEM.blocks, GEM.iterations, GEM.temperature) == (6, 1, None)
        assert HEADS["gem"].pos_resize == "size-aa"

    @pytest.mark.parametrize("size", [(112, 112), (96, 128)], ids=["native", "non-square"])
    def test_matches_hand_written_path(self, visual, size):
        images = _images(*size)
        with torch.no_grad():
            inputs, grid = _block_inputs(visual, images, "size-aa")
            blocks = visual.transformer.resblocks
            path = inputs[0]  # the tiny model has 6 blocks: the path spans all of them
            for blk, x in zip(blocks, inputs):
                path = path + _gem_attention_by_hand(blk.attn, _ln(x, blk.ln_1))
            expected = _project(visual, path, grid)
            got = DenseEncoder(visual, "gem")(images).patch
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)

    def test_temperature_is_per_image(self, visual):
        """Scaling one image's tokens changes its temperature, not the other image's output."""
        blk = visual.transformer.resblocks[-1]
        y = torch.randn(2, 5, 128, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            a = self_self_attention(OpenClipBlock(blk, None), y)
            y2 = y.clone()
            y2[1] *= 3
            b = self_self_attention(OpenClipBlock(blk, None), y2)
            torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(a, _gem_attention_by_hand(blk.attn, y), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------- SC-CLIP


class TestScClipOperations:
    def test_lof_four_points_on_a_line(self):
        # x = 0, 1, 3, 10; k = 2; squared distances. k-distances: 9, 4, 9, 81 -> densities
        # 2/9, 1/2, 2/9, 2/81; scores = mean density of the two neighbours / own density.
        x = torch.tensor([[0.0], [1.0], [3.0], [10.0]], dtype=torch.float64)
        d = [2 / 9, 1 / 2, 2 / 9, 2 / 81]
        expected = torch.tensor([
            (d[1] + d[2]) / 2 / d[0],  # 1.625
            (d[0] + d[2]) / 2 / d[1],  # 4/9
            (d[1] + d[0]) / 2 / d[2],  # 1.625
            (d[2] + d[1]) / 2 / d[3],  # 14.625
        ], dtype=torch.float64)
        torch.testing.assert_close(local_outlier_scores(x, 2), expected, atol=1e-12, rtol=0)
        assert abs(float(expected[3]) - 14.625) < 1e-12

    def test_anomaly_mask_takes_scores_above_the_quantile(self):
        x = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
        # quantile 0.75 of (4/9, 1.625, 1.625, 14.625) = 1.625 + 0.25 * 13 = 4.875: only x = 10
        mask = anomaly_mask(x, (2, 2), ScClipSettings(neighbours=2, contamination=0.25))
        assert mask.tolist() == [[False, False], [False, True]]

    def test_anomaly_mask_finds_a_planted_outlier(self):
        g = torch.Generator().manual_seed(0)
        patches = torch.randn(49, 8, generator=g) * 0.1
        patches[17] += 5.0
        mask = anomaly_mask(patches, (7, 7))
        assert mask[17 // 7, 17 % 7]
        assert int(mask.sum()) == 3  # strictly above the 95 % quantile of 49 scores

    def test_repair_by_hand(self):
        fmap = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # 1 2 3 / 4 5 6 / 7 8 9
        mask = torch.tensor([[True, False, False], [False, True, False], [False, False, False]])
        out = repair_anomalies(fmap, mask)
        expected = fmap.clone()
        expected[0, 0, 1, 1] = (2 + 3 + 4 + 6 + 7 + 8 + 9) / 7  # the anomalous corner does not count
        expected[0, 0, 0, 0] = (2 + 4) / 2  # inside the grid and not anomalous: 2 and 4 only
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)

    def test_repair_without_valid_neighbours_keeps_the_value(self):
        fmap = torch.tensor([[[[1.0, 2.0]]]])
        out = repair_anomalies(fmap, torch.tensor([[True, True]]))
        assert out.tolist() == fmap.tolist()

    def test_aggregate_by_hand(self):
        tokens = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]])
        sim = torch.tensor([[[1.0, 0.5, 0.3], [0.5, 1.0, 0.0], [0.3, 0.0, 1.0]]])
        out = aggregate(tokens, sim, cut=0.4)  # 0.3 is cut
        expected = torch.tensor([[[1 / 1.5, 0.5 / 1.5], [0.5 / 1.5, 1 / 1.5], [2.0, 2.0]]])
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)  # the +1e-6 in the denominator

    def test_guided_attention_by_hand(self, visual):
        blk = visual.transformer.resblocks[-1]
        y = torch.randn(1, 6, 128, generator=torch.Generator().manual_seed(4))
        sim = F.normalize(torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(5)), dim=-1)
        sim = sim @ sim.transpose(1, 2)
        q, k, v = _qkv(blk.attn, y)
        guide = (sim - sim.mean()) * 3
        guide = torch.where(guide < 0, torch.full_like(guide, float("-inf")), guide).softmax(-1)
        kk = (torch.einsum("bnhd,bmhd->bhnm", k, k) * (k.shape[-1] ** -0.5)).softmax(-1)
        expected = _out_proj(blk.attn, torch.einsum("bhnm,bmhd->bnhd", (guide[:, None] + kk) / 2, v))
        with torch.no_grad():
            torch.testing.assert_close(guided_attention(OpenClipBlock(blk, None), y, sim), expected.detach(), atol=1e-6, rtol=0)

    def test_block_indices(self):
        assert SCCLIP.blocks(12) == (8, 3, 3, 10)  # the authors' ViT-B/16 defaults
        assert SCCLIP.blocks(6) == (4, 2, 2, 5)  # halved, rounded half up
        assert SCCLIP.blocks(24) == (16, 6, 6, 20)


def _scclip_by_hand(visual, images):
    inputs, (h, w) = _block_inputs(visual, images, "offset")
    blocks = visual.transformer.resblocks
    n = len(blocks)
    sim_i, refine_i, lo, hi = SCCLIP.blocks(n)
    outputs = inputs[1:]  # outputs[i]: after block i
    last = blocks[-1]
    D = inputs[0].shape[-1]
    out = []
    for b in range(images.shape[0]):
        x = inputs[-1][b]
        cls = x[:1]
        mask = anomaly_mask(x[1:], (h, w))

        def repair(p):
            return repair_anomalies(p.T.reshape(1, D, h, w), mask).reshape(D, h * w).T

        def sim(p):
            p = F.normalize(p, dim=-1)
            return p @ p.T

        def agg(t, s):
            s = torch.where(s < 0.4, torch.zeros_like(s), s)
            return (s / (s.sum(-1, keepdim=True) + 1e-6)) @ t

        guide = sim(repair(outputs[sim_i][b, 1:]))
        refine = sim(outputs[refine_i][b, 1:])
        t = agg(repair(x[1:]), guide)
        t = guided_attention(OpenClipBlock(last, None), _ln(t, last.ln_1)[None], guide[None])[0] + 0.3 * cls
        t = agg(t, refine)
        fused = sum(outputs[i][b] for i in range(lo, hi))
        e = guided_attention(OpenClipBlock(last, None), _ln(fused[1:], last.ln_1)[None], guide[None])[0] + 0.3 * fused[:1]
        out.append(torch.cat([cls, t + agg(e, refine)]))
    return _project(visual, torch.stack(out), (h, w))


class TestScClip:
    @pytest.mark.parametrize("size", [(112, 112), (96, 128), (128, 96)], ids=["native", "wide", "tall"])
    def test_matches_hand_written_pipeline(self, visual, size):
        images = _images(*size)
        with torch.no_grad():
            got = DenseEncoder(visual, "scclip")(images).patch
            expected = _scclip_by_hand(visual, images)
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)

    def test_images_of_a_batch_are_independent(self, visual):
        images = _images(112, 112, batch=3)
        with torch.no_grad():
            batch = DenseEncoder(visual, "scclip")(images).patch
            single = DenseEncoder(visual, "scclip")(images[1:2]).patch
        torch.testing.assert_close(batch[1:2], single, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------- everywhere a head goes


# --------------------------------------------------------------------------------------- ResCLIP


def _rcs_by_hand(visual, images, base, weights):
    inputs, grid = _block_inputs(visual, images, "offset")
    blocks = visual.transformer.resblocks
    scale = 32 ** -0.5  # head width of the tiny model

    def sim(a, c):
        return torch.einsum("bnhd,bmhd->bhnm", a, c) * scale

    maps = []
    for i in (3, 4):  # ResCLIP's blocks 5..8 of 12, on 6 blocks
        q, k, _ = _qkv(blocks[i].attn, _ln(inputs[i], blocks[i].ln_1))
        maps.append(sim(q, k).softmax(-1))
    r = (maps[0] + maps[1]) / 2
    last, x = blocks[-1], inputs[-1]
    q, k, v = _qkv(last.attn, _ln(x, last.ln_1))
    if base == "sclip":
        a = sim(q, q).softmax(-1) + sim(k, k).softmax(-1)
    elif base == "clearclip":
        a = sim(q, q).softmax(-1)
    else:
        a = (sim(k, k) + gaussian_window(grid, 5.0)).softmax(-1)
    tau, lam = weights
    a = tau * ((1 - lam) * a + lam * r)
    out = _out_proj(last.attn, torch.einsum("bhnm,bmhd->bnhd", a, v))
    if HEADS[base].residual:
        out = x + out
        out = out + last.mlp(_ln(out, last.ln_2))
    return _project(visual, out, grid)


class TestResCLIP:
    def test_blocks(self):
        assert RCS.blocks(12) == range(5, 9)  # attn_map[5] .. attn_map[8]
        assert RCS.blocks(6) == range(3, 5)

    @pytest.mark.parametrize("base", ["sclip", "clearclip", "naclip"])
    @pytest.mark.parametrize("size", [(112, 112), (96, 128)], ids=["native", "non-square"])
    def test_matches_hand_written_mix(self, visual, base, size):
        images = _images(*size)
        weights = (2.0, 0.3)
        with torch.no_grad():
            got = DenseEncoder(visual, with_rcs(HEADS[base], weights))(images).patch
            expected = _rcs_by_hand(visual, images, base, weights)
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)

    @pytest.mark.parametrize("base", ["sclip", "naclip"])
    def test_no_mix_is_the_base_head(self, visual, base):
        images = _images(96, 128)
        with torch.no_grad():
            plain = DenseEncoder(visual, base)(images).patch
            mixed = DenseEncoder(visual, with_rcs(HEADS[base], (1.0, 0.0)))(images).patch
            default = DenseEncoder(visual, f"{base}+rcs")(images).patch
        torch.testing.assert_close(mixed, plain, atol=1e-6, rtol=0)
        assert (default - plain).abs().max() > 1e-3

    @pytest.mark.parametrize("base", ["clip", "maskclip", "gem", "naclip+rcs"])
    def test_only_similarity_heads_take_the_mix(self, base):
        with pytest.raises(OvssError, match="similarity terms"):
            with_rcs(HEADS[base])

    def test_preset_weights_reach_the_head_and_the_record(self, tiny_random):
        seg = Segmenter(tiny_random, preset="resclip-rcs", dataset="voc20")
        assert seg.head.name == "naclip+rcs" and seg.head.rcs == (2.0, 0.6)
        assert seg.settings()["rcs_weights"] == [2.0, 0.6] and seg.settings()["crop"] is None
        seg = Segmenter(tiny_random, head="clearclip+rcs", preset="naclip")  # no weights in the preset: ResCLIP's demo's
        assert seg.head.rcs == (2.0, 0.6) and seg.settings()["rcs_weights"] == [2.0, 0.6]

    def test_visual_prompts_are_refused(self, visual):
        with pytest.raises(OvssError, match="visual prompts"):
            DenseEncoder(visual, "naclip+rcs")(_images(112, 112, batch=1), prompts=[torch.zeros(2, 128)])


@pytest.mark.parametrize("head", HISTORY_HEADS)
class TestHistoryHeadsEverywhere:
    def test_mlmp_last_level_is_the_head(self, tiny_random, head):
        seg = Segmenter(tiny_random, head=head, preset="shapesworld")
        w = _images(112, 112, batch=1)
        n = len(seg.encoder.blocks)
        with torch.no_grad():
            tokens, grid, glob = level_tokens(seg.encoder, w, [n - 2, n - 1], with_global=True)
            ref = seg.encoder(w, with_global=True)
        torch.testing.assert_close(seg.encoder.project(tokens[n - 1][:, 1:]).reshape(ref.patch.shape), ref.patch,
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(glob, ref.global_embedding, atol=1e-6, rtol=0)

    def test_visual_prompts_pass_through(self, visual, head):
        if HEADS[head].rcs is not None:
            pytest.skip("the +rcs heads refuse visual prompts (tested above)")
        enc = DenseEncoder(visual, head)
        images = _images(96, 128, batch=1)
        with torch.no_grad():
            plain = enc(images).patch
            none = enc(images, prompts=[None] * 6).patch
            prompted = enc(images, prompts=[torch.randn(2, 128, generator=torch.Generator().manual_seed(0))]).patch
        torch.testing.assert_close(none, plain, atol=0, rtol=0)
        assert prompted.shape == plain.shape and torch.isfinite(prompted).all()
        assert (prompted - plain).abs().max() > 1e-4  # the prompts reach the later blocks

    def test_segmenter_predicts(self, tiny_random, head):
        seg = Segmenter(tiny_random, head=head, preset="shapesworld")
        image = (torch.rand(70, 150, 3, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8).numpy()
        result = seg.predict(image, "red circle, blue square, background")
        assert result.labels.shape == (70, 150)
        torch.testing.assert_close(result.probs.sum(0), torch.ones(70, 150), atol=1e-4, rtol=0)
        assert seg.settings()["head"] == head

    def test_tiny_grids(self, visual, head, make_encoder):
        """A window of a few patches (small images are not resized by every preset) still works."""
        with torch.no_grad():
            out = make_encoder(visual, head)(_images(8, 16, batch=1)).patch
        assert out.shape == (1, 1, 2, 128) and torch.isfinite(out).all()


def test_models_lists_the_heads_and_presets(capsys):
    from ovss.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    heads = out.split("dense heads:")[1].split("presets:")[0]
    presets = out.split("presets:")[1]
    for name in HISTORY_HEADS:
        assert f"  {name} " in heads
    for name in ("gem", "scclip", "resclip-rcs"):
        assert f"  {name} " in presets


def test_resclip_without_a_dataset_runs_the_authors_demo_settings(tiny_random):
    # ResCLIP's demo.py (and cfg_voc20.py): RCS (2.0, 0.6), SFR (2.1, 0.6), temp_thd 0.10
    from ovss.dense.heads import RCS_DEFAULT
    from ovss.segment import get_preset

    assert RCS_DEFAULT == (2.0, 0.6)
    p = get_preset("resclip")
    assert (p.rcs_weights, p.sfr_weights, p.sfr_threshold) == ((2.0, 0.6), (2.1, 0.6), 0.1)
    assert get_preset("resclip-rcs").rcs_weights == (2.0, 0.6)
    settings = Segmenter(tiny_random, preset="resclip").settings()
    assert settings["rcs_weights"] == [2.0, 0.6] and settings["sfr_weights"] == [2.1, 0.6]
    assert settings["sfr_threshold"] == 0.1
    # each dataset keeps its own config's values (cfg_context59.py, cfg_coco_object.py, cfg_coco_stuff164k.py)
    for dataset, thd in (("context59", 0.25), ("coco_object", 0.11), ("coco_stuff164k", 0.11)):
        p = get_preset("resclip", dataset)
        assert (p.rcs_weights, p.sfr_weights, p.sfr_threshold) == ((2.0, 0.4), (1.8, 0.7), thd), dataset
        assert get_preset("resclip-rcs", dataset).rcs_weights == (2.0, 0.4)
    assert get_preset("resclip", "context60").sfr_weights == (1.8, 0.7)
