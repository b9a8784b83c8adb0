"""MLMP's NoAdapt. column: main.py without --adapt runs its TENT class's evaluate() with no prompt
file, i.e. the single text "a photo of a {}" (no period); MLMP and WATT keep prompts.yaml's seven."""
import numpy as np
import torch

from ovss.adaptation import get_method
from ovss.segment import Segmenter
from ovss.text import get_templates, parse_classes


def test_mlmp_preset_segments_with_mlmp_reference_prompt(tiny_random):
    seg = Segmenter(tiny_random, preset="mlmp")
    classes = parse_classes("red square, blue circle")
    single = seg.text.encode_classes(classes, ("a photo of a {}",))
    seven = seg.text.encode_classes(classes, get_templates("seven"))
    assert torch.equal(seg.class_embeddings(classes).cpu(), single.cpu())
    assert not torch.allclose(single, seven)  # the choice matters on these weights
    assert seg.settings()["templates"] == "mlmp_reference"


def test_noadapt_labels_are_the_single_prompt_argmax(tiny_random):
    seg = Segmenter(tiny_random, preset="mlmp")
    classes = parse_classes("red square, blue circle, green triangle")
    image = (np.random.default_rng(3).random((61, 47, 3)) * 255).astype(np.uint8)
    labels = get_method("none", protocol="mlmp")(seg, [image], classes, [(224, 224)])[0]
    enc = seg.set_image(image)
    text = seg.text.encode_classes(classes, ("a photo of a {}",)).to(seg.device)
    cos = seg.window_logits_to_image(enc, enc.features, text)  # 3 x 224 x 224, one name per class
    assert labels.shape == (224, 224)
    assert torch.equal(labels, cos.argmax(dim=0))


def test_mlmp_and_watt_keep_prompts_yaml_under_the_protocol():
    assert get_method("mlmp", protocol="mlmp").templates == get_templates("seven")
    assert get_method("watt", protocol="mlmp").templates == get_templates("seven")
    assert get_method("tent", protocol="mlmp").templates == ("a photo of a {}",)
