"""Segmentation, scoring, test-time adaptation and OpenDAS prompts on every tower family (tiny
random models of ``tiny_towers.build_tiny_clip``); SigLIP scores with a sigmoid and its logit bias."""
import importlib.util
import math

import numpy as np
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from tiny_towers import TINY_FAMILIES
from ovss.adaptation import get_method
from ovss.errors import OvssError
from ovss.model import ClipModel, load_model
from ovss.model.loading import open_clip_with_ovss_configs
from ovss.model.towers import FAMILIES, family_of, tower_for
from ovss.segment import Segmenter
from ovss.segment.scoring import Scoring, model_scoring

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _model(tiny_clip, name) -> ClipModel:
    """A ClipModel of the tiny ``name`` with open_clip's CLIP tokenizer (ids fit every text tower
    here; SigLIP's own tokenizer is the optional extra ovss[siglip])."""
    clip = tiny_clip(name)
    return ClipModel(clip, SimpleTokenizer(context_length=clip.context_length), name, "none", MEAN, STD)


def _image(seed=0, shape=(48, 64, 3)):
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_family_table_agrees_with_the_built_towers(tiny_clip, name):
    """``ovss models`` reads the family from open_clip's config; the built tower is of that family,
    with the class token and the scoring the table says."""
    config = open_clip_with_ovss_configs().get_model_config(name)
    family = FAMILIES[family_of(name, config)]
    tower = tower_for(tiny_clip(name).visual, name)
    assert family.name == tower.family == TINY_FAMILIES[name]
    assert family.prefix == tower.prefix
    assert family.scoring == model_scoring(tiny_clip(name)).kind


def test_siglip_scores_with_a_sigmoid_and_its_bias(tiny_clip):
    """open_clip initialises SigLIP's logit bias at -10 and its scale at 1 / 0.07: each class's
    probability is sigmoid(cos / 0.07 - 10) on its own, with the checkpoint's scale."""
    model = _model(tiny_clip, "ViT-B-16-SigLIP2")
    seg = Segmenter(model, head="naclip", preset="shapesworld")
    assert seg.scoring == Scoring("sigmoid", -10.0)
    res = seg.predict(_image(), "cat, dog, sky")
    settings = seg.settings()
    assert settings["scoring"] == "sigmoid" and settings["logit_bias"] == -10.0
    assert math.isclose(settings["logit_scale"], 1 / 0.07, rel_tol=1e-6)
    torch.testing.assert_close(res.probs, torch.sigmoid(res.logits - 10.0), rtol=0, atol=1e-7)
    assert torch.equal(res.labels, res.logits.argmax(dim=0))  # labels do not depend on the scoring
    assert float(res.probs.sum(dim=0).max()) < 3 * torch.sigmoid(torch.tensor(1 / 0.07 - 10.0))  # not a softmax


def test_siglip_probability_threshold_uses_the_sigmoid(tiny_clip):
    """prob_thd compares the sigmoid probabilities: below it a pixel is background (class 0)."""
    model = _model(tiny_clip, "ViT-B-16-SigLIP2")
    plain = Segmenter(model, head="naclip", preset="shapesworld").predict(_image(), "sky, cat, dog")
    thd = float(plain.confidence.median())
    res = Segmenter(model, head="naclip", preset="shapesworld", prob_thd=thd).predict(_image(), "sky, cat, dog")
    low = plain.confidence < thd
    assert low.any() and (~low).any()
    assert bool((res.labels[low] == 0).all())
    assert torch.equal(res.labels[~low], plain.labels[~low])


def test_clip_keeps_the_softmax_unrecorded(tiny_clip):
    seg = Segmenter(_model(tiny_clip, "ViT-B-16"), head="naclip", preset="shapesworld")
    res = seg.predict(_image(), "cat, dog, sky")
    torch.testing.assert_close(res.probs.sum(dim=0), torch.ones(res.probs.shape[1:]), rtol=0, atol=1e-5)
    assert "scoring" not in seg.settings()  # results from before SigLIP keep their settings


def test_siglip_tokenizer_is_an_optional_extra():
    if all(importlib.util.find_spec(p) for p in ("transformers", "sentencepiece")):
        pytest.skip("transformers and sentencepiece are installed")
    with pytest.raises(OvssError) as e:
        load_model("ViT-B-16-SigLIP2", "none")
    assert "ovss[siglip]" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
@pytest.mark.parametrize("method", ["tent", "mlmp"])
def test_test_time_adaptation_on_every_family(tiny_clip, name, method):
    """TENT and MLMP (levels from every block of the tiny tower) adapt the LayerNorms of every
    family, change the prediction's features, repeat, and leave the model as they found it."""
    model = _model(tiny_clip, name)
    seg = Segmenter(model, head="naclip", preset="shapesworld")
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    images = [_image(1), _image(2, (48, 48, 3))]
    m = get_method(method, steps=2, lr=0.1)
    assert len(m.trainable(seg)) >= 2 * len(seg.encoder.blocks)  # two LayerNorms a block at least
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(m(seg, images, "cat, dog, sky", [im.shape[:2] for im in images]))
        assert all(math.isfinite(x) for x in m.last_losses) and len(m.last_losses) == 2
    assert [tuple(r.shape) for r in runs[0]] == [(48, 64), (48, 48)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert m.last_losses[1] != m.last_losses[0]  # the first step changed the parameters
    after = model.clip.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_opendas_deep_prompts_on_every_family(tiny_clip, name):
    """Visual prompts enter after the class token (none on SigLIP), skip rotary embeddings, and
    change the dense features and the image embedding."""
    from ovss.opendas.apply import PromptedDenseEncoder
    from ovss.opendas.prompts import PromptLearner

    model = _model(tiny_clip, name)
    if TINY_FAMILIES[name] == "timm-vit":  # SigLIP's text tower: no start token for the text prompts to follow
        with pytest.raises(OvssError, match="text prompts need CLIP's text tower"):
            PromptLearner(model, visual_k=2, text_k=2)
    learner = PromptLearner(model, visual_k=2, text_k=0)
    plain = PromptLearner.unprompted(model)
    x = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    enc = PromptedDenseEncoder(model.visual, "naclip", learner, model_name=name)
    ref = PromptedDenseEncoder(model.visual, "naclip", plain, model_name=name)
    with torch.no_grad():
        a, b, r = enc(x).patch, enc(x).patch, ref(x).patch
        e, e0 = learner.encode_images(x[..., :64]), plain.encode_images(x[..., :64])
    assert a.shape == r.shape == (2, 4, 5, 32) and torch.isfinite(a).all()
    assert torch.equal(a, b) and float((a - r).abs().max()) > 1e-3 * float(r.abs().max())
    assert float((e - e0).abs().max()) > 1e-3
    torch.testing.assert_close(e0, torch.nn.functional.normalize(model.visual(x[..., :64]), dim=-1), rtol=1e-5, atol=1e-6)


def test_the_page_runs_siglip_and_refuses_scclip_in_one_line(tiny_clip, tmp_path):
    """The page's session on a SigLIP model: naclip segments (with the sigmoid's probabilities in the
    record), SC-CLIP is one line naming head and backbone (the page shows it as its error)."""
    import json

    from ovss.app.page import page_message
    from ovss.app.session import ImageSession, RunSettings

    session = ImageSession(_model(tiny_clip, "ViT-B-16-SigLIP2"), tmp_path / "s")
    session.set_image(_image())
    run = session.run("cat, dog, sky", RunSettings(head="naclip", preset="shapesworld"))
    assert run.labels.shape == (48, 64)
    record = json.loads(run.files.record.read_text())
    assert "sigmoid" in json.dumps(record)
    with pytest.raises(OvssError) as e:
        session.run("cat, dog, sky", RunSettings(head="scclip", preset="shapesworld"))
    message = page_message(e.value)
    assert "\n" not in message and "scclip" in message and "ViT-B-16-SigLIP2" in message


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_every_preset_on_every_family(tiny_clip, name):
    """Every published protocol (ResCLIP's semantic feedback, ProxyCLIP's random DINO and MLMP's
    fp16 setting included) segments with every family, or refuses in one line naming the head."""
    from ovss.dense.heads import get_head, head_fits
    from ovss.segment import PRESETS

    model = _model(tiny_clip, name)
    tower = tower_for(model.visual, name)
    image = _image(4, (64, 96, 3))
    for preset in PRESETS:
        p = PRESETS[preset]
        extra = {"second_weights": "none"} if get_head(p.head).second else {}
        # the protocols' sizes cut to the tiny models' (the steps stay the protocol's)
        extra.update({"resize_short": 64} if p.resize_short else {}, **({"resize_to": (64, 96)} if p.resize_to else {}),
                     **({"crop": 64, "stride": 32} if p.crop else {}))
        if head_fits(get_head(PRESETS[preset].head), tower) is not None:
            with pytest.raises(OvssError, match=f"{PRESETS[preset].head} head needs"):
                Segmenter(model, preset=preset, **extra)
            continue
        res = Segmenter(model, preset=preset, **extra).predict(image, "cat, dog")
        assert res.labels.shape == (64, 96) and torch.isfinite(res.probs).all(), preset
