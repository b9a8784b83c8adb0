"""Every dense head on every family of vision towers (ovss.model.towers).

(a) Equivalence across tower classes: a tiny open_clip VisionTransformer is converted, weight for
weight, into a timm VisionTransformer and into a timm Eva (both inside open_clip's TimmModel);
every head gives the same dense features on all three (float64, relative difference < 1e-6), so
the adapters add nothing of their own.
(b) Contract: every head x {ViT-B-16, ViT-B-16-SigLIP2, EVA02-B-16, PE-Core-B-16} at tiny sizes:
shapes, finite values, determinism, and a last block that differs from the unchanged one.
"""
from functools import partial
from unittest import mock

import pytest
import torch

from tiny_towers import TINY_FAMILIES
from ovss.dense import HEADS, DenseEncoder
from ovss.dense.heads import head_fits
from ovss.errors import OvssError
from ovss.model.towers import tower_for

WIDTH, DEPTH, HEADS_N, EMBED = 32, 3, 4, 24


def _images(shape=(2, 3, 64, 64), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _randomise(module, seed):
    """Every parameter drawn at random (LayerNorm weights around 1): a random init leaves biases
    at zero and norms at one, which would hide a bias or a norm read from the wrong place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            p.copy_(1 + 0.1 * noise if name.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight"))
                    else 0.2 * noise)


@pytest.fixture(scope="module")
def three_towers():
    """(open_clip ViT, the same weights in a timm ViT, the same in a timm Eva), float64."""
    import open_clip
    import timm
    from open_clip.timm_model import TimmModel
    from timm.layers import LayerNorm
    from timm.models.eva import Eva

    from ovss.model.loading import open_clip_with_ovss_configs

    oc = open_clip_with_ovss_configs()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip = oc.create_model("ViT-B-16", pretrained=None, embed_dim=EMBED,
                               vision_cfg=dict(image_size=64, layers=DEPTH, width=WIDTH, patch_size=16,
                                               head_width=WIDTH // HEADS_N),
                               text_cfg=dict(width=32, heads=2, layers=1))
    src = clip.visual.double().eval()
    _randomise(src, 1)
    D = WIDTH
    with torch.no_grad():  # timm's Eva holds no k bias (zero buffer): the source gets none either
        for blk in src.transformer.resblocks:
            blk.attn.in_proj_bias[D:2 * D] = 0

    def wrapped(factory):
        with mock.patch.object(timm, "create_model", factory):
            return TimmModel("converted", embed_dim=EMBED, image_size=64, pool="token", proj=None).double().eval()

    real = timm.create_model
    vit = wrapped(lambda name, **kw: real(
        "vit_base_patch16_clip_224", **kw, depth=DEPTH, embed_dim=D, num_heads=HEADS_N, img_size=64))
    eva = wrapped(lambda name, pretrained, **kw: Eva(img_size=64, patch_size=16, embed_dim=D, depth=DEPTH, num_heads=HEADS_N,
                                         use_pre_transformer_norm=True, norm_layer=partial(LayerNorm, eps=1e-5), **kw))
    with torch.no_grad():
        for target in (vit.trunk, eva.trunk):
            target.patch_embed.proj.weight.copy_(src.conv1.weight)
            target.cls_token.copy_(src.class_embedding.view(1, 1, -1))
            target.pos_embed.copy_(src.positional_embedding[None])
            target.norm_pre.load_state_dict(src.ln_pre.state_dict())
            target.norm.load_state_dict(src.ln_post.state_dict())
            target.head.weight.copy_(src.proj.T)
            target.head.bias.zero_()
            for blk, b in zip(src.transformer.resblocks, target.blocks):
                b.norm1.load_state_dict(blk.ln_1.state_dict())
                b.norm2.load_state_dict(blk.ln_2.state_dict())
                b.attn.qkv.weight.copy_(blk.attn.in_proj_weight)
                if getattr(b.attn, "q_bias", None) is not None:  # Eva: q and v biases apart
                    b.attn.q_bias.copy_(blk.attn.in_proj_bias[:D])
                    b.attn.v_bias.copy_(blk.attn.in_proj_bias[2 * D:])
                else:
                    b.attn.qkv.bias.copy_(blk.attn.in_proj_bias)
                b.attn.proj.load_state_dict(blk.attn.out_proj.state_dict())
                b.mlp.fc1.load_state_dict(blk.mlp.c_fc.state_dict())
                b.mlp.fc2.load_state_dict(blk.mlp.c_proj.state_dict())
    return src, vit, eva


def test_the_converted_towers_are_the_model(three_towers):
    src, vit, eva = three_towers
    assert [tower_for(v).family for v in three_towers] == ["openclip", "timm-vit", "eva"]
    x = _images()
    with torch.no_grad():
        ref = src(x)
        for other in (vit, eva):
            torch.testing.assert_close(other(x), ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("size", [(64, 64), (64, 96)])  # native grid, and a resized position embedding
@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_is_the_same_on_every_tower_class(three_towers, make_encoder, head, size):
    x = _images((2, 3, *size))
    feats = []
    with torch.no_grad():
        for visual in three_towers:
            enc = make_encoder(visual, head)  # ProxyCLIP: the same float32 second backbone for all three
            out = enc(x, with_global=True)
            feats.append((out.patch, out.global_embedding))
    (ref, ref_glob) = feats[0]
    assert ref.dtype == torch.float64 and ref.shape[0] == 2
    for patch, glob in feats[1:]:
        assert float((patch - ref).norm() / ref.norm()) < 1e-6
        assert float((glob - ref_glob).norm() / ref_glob.norm()) < 1e-6


# ------------------------------------------------------------------------------ (b) contract


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_tower_loop_equals_the_models_own_forward(tiny_clip, name):
    """The adapter's embedding, blocks (rotary embeddings included) and pooling give the model's
    own image embedding."""
    visual = tiny_clip(name).visual
    enc = DenseEncoder(visual, "clip", model_name=name)
    assert enc.tower.family == TINY_FAMILIES[name]
    x = _images().float()
    with torch.no_grad():
        torch.testing.assert_close(enc.image_embedding(x), visual(x), rtol=1e-5, atol=1e-6)
        out = enc(x, with_global=True)
        # MLMP's one pass (head and CLIP's last block sharing q / k / v; the class token's row only
        # where the model pools its class token)
        shared = DenseEncoder(visual, "naclip", model_name=name)(x, with_global=True, shared_global=True)
        alone = DenseEncoder(visual, "naclip", model_name=name)(x)
    torch.testing.assert_close(out.global_embedding, visual(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(shared.global_embedding, visual(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(shared.patch, alone.patch, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_on_every_family(tiny_clip, make_encoder, name, head):
    visual = tiny_clip(name).visual
    tower = tower_for(visual, name)
    if head_fits(HEADS[head], tower) is not None:
        with pytest.raises(OvssError, match=f"the {head} head needs .*{name}"):
            make_encoder(visual, head, model_name=name)
        return
    enc = make_encoder(visual, head, model_name=name)
    plain = DenseEncoder(visual, "clip", model_name=name)
    x = _images((2, 3, 64, 96), seed=3).float()
    with torch.no_grad():
        a, b, ref = enc(x).patch, enc(x).patch, plain(x).patch
    grid = (8, 12) if HEADS[head].second else (4, 6)  # ProxyCLIP: the second backbone's grid (patch 8)
    with torch.no_grad():
        embed_dim = visual(_images((1, 3, 64, 64)).float()).shape[-1]
    assert a.shape == (2, *grid, embed_dim)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    if head != "clip":
        if a.shape == ref.shape:
            assert float((a - ref).abs().max()) > 1e-4 * float(ref.abs().max())
    else:
        torch.testing.assert_close(a, ref, rtol=0, atol=0)


def test_siglip_refuses_scclip_in_one_line(tiny_clip):
    with pytest.raises(OvssError) as e:
        DenseEncoder(tiny_clip("ViT-B-16-SigLIP2").visual, "scclip", model_name="ViT-B-16-SigLIP2")
    msg = str(e.value)
    assert "\n" not in msg and "scclip" in msg and "ViT-B-16-SigLIP2" in msg and "class token" in msg
    assert e.value.param == "head"


def test_rotary_embeddings_follow_the_grid(tiny_clip):
    """EVA's rope is rebuilt for a new grid and the native one is put back for the model's own forward."""
    visual = tiny_clip("EVA02-B-16").visual
    tower = tower_for(visual)
    native = tower.rope(tower.native_grid)
    other = tower.rope((4, 6))
    assert native.shape[0] == 16 and other.shape[0] == 24
    torch.testing.assert_close(visual.trunk.rope.get_embed(), native, rtol=0, atol=0)
    x = _images((1, 3, 64, 96)).float()
    enc = DenseEncoder(visual, "naclip")
    with torch.no_grad():
        wide = enc(x).patch
    assert wide.shape[1:3] == (4, 6) and torch.isfinite(wide).all()


def test_resnet_towers_are_refused_in_one_line():
    from torch import nn

    with pytest.raises(OvssError, match="ResNet"):
        tower_for(nn.Linear(2, 2), "RN50")


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_fast_precisions_on_every_family(tiny_clip, name):
    """bf16 autocast and the int8 copy (its quantised Linear layers include timm's q/k/v and the
    attention pool) run on every family and stay close to fp32."""
    visual = tiny_clip(name).visual
    x = _images((1, 3, 64, 64), seed=5).float()
    with torch.no_grad():
        ref = DenseEncoder(visual, "naclip").forward(x).patch.flatten()
        for precision in ("bf16", "int8"):
            got = DenseEncoder(visual, "naclip", precision=precision).forward(x).patch.float().flatten()
            assert float(torch.nn.functional.cosine_similarity(got, ref, dim=0)) > 0.99


def _family_models():
    from ovss.model.loading import open_clip_with_ovss_configs
    from ovss.model.towers import family_of

    oc = open_clip_with_ovss_configs()
    return [n for n in oc.list_models() if family_of(n, oc.get_model_config(n)) is not None]


@pytest.mark.parametrize("name", _family_models())
def test_every_vit_model_of_open_clip(name):
    """Every ViT name of open_clip (its own ViTs, SigLIP / SigLIP 2, EVA, PE-Core), built tiny: the
    tower loop gives the model's own embedding, or the model is refused in one line (EVA02-E's
    post-norm blocks)."""
    import importlib.util

    from tiny_towers import build_tiny_clip
    from ovss.model.loading import open_clip_with_ovss_configs

    text = open_clip_with_ovss_configs().get_model_config(name)["text_cfg"]
    if text.get("hf_model_name") and importlib.util.find_spec("transformers") is None:
        pytest.skip("a Hugging Face text tower (NLLB-CLIP, mT5, RoBERTa): transformers is not installed")
    visual = build_tiny_clip(name, width=64).visual
    try:
        enc = DenseEncoder(visual, "naclip", model_name=name)
    except OvssError as e:
        assert "\n" not in str(e) and name in str(e) and "EVA02-E" in name
        return
    x = _images((1, 3, 64, 64), seed=7).float()
    with torch.no_grad():
        torch.testing.assert_close(enc.image_embedding(x), visual(x), rtol=1e-5, atol=1e-6)
        assert torch.isfinite(enc(x).patch).all()



def test_a_tower_missing_an_operation_fails_when_created():
    """Tower is abstract: a new family's adapter that forgets one operation (here ``project``)
    fails at construction, not in the middle of a segmentation."""
    import pytest as _pytest

    from ovss.model.towers import OpenClipTower, Tower

    class HalfTower(Tower):
        prefix = 1
        native_grid = (2, 2)
        patch_size = (8, 8)
        width = 4
        modules = []

        def embed(self, images, rule):
            return images, (2, 2)

        def global_embedding(self, tokens):
            return tokens

    with _pytest.raises(TypeError, match="project"):
        HalfTower(None)
    assert not OpenClipTower.__abstractmethods__


def test_a_block_adapter_missing_an_operation_fails_when_created():
    """BlockAdapter is abstract too: a block that forgets ``ffn`` fails when it is wrapped."""
    import pytest as _pytest

    from ovss.model.blocks import BlockAdapter, OpenClipBlock, TimmBlock

    class HalfBlock(BlockAdapter):
        def ln_1(self, x):
            return x

        def qkv(self, y, grid=None, skip=0):
            return y, y, y

        def out(self, o):
            return o

        def ls_1(self, a):
            return a

    with _pytest.raises(TypeError, match="ffn"):
        HalfBlock(None, None)
    assert not OpenClipBlock.__abstractmethods__ and not TimmBlock.__abstractmethods__
