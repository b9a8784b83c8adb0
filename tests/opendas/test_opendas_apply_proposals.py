import numpy as np
import torch

from ovss.opendas import PromptLearner, classify_proposals, load_prompt_addition, save_prompts, segments_miou, slic_superpixels
from ovss.segment import Segmenter
from ovss.text import parse_classes


def test_prompts_given_to_the_segmenter_are_used(tiny, tmp_path):
    learner = PromptLearner(tiny, seed=1)
    with torch.no_grad():
        learner.text[1].add_(0.5)  # move the text away from CLIP's, so a prompted embedding is recognisable
    path = save_prompts(tmp_path / "prompts.safetensors", learner, {"method": "opendas"})
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    classes = parse_classes("sky, boat")
    plain = Segmenter(tiny, head="naclip", preset="naclip")
    adapted = Segmenter(tiny, head="naclip", preset="naclip", prompts=load_prompt_addition(path, tiny))
    x = plain.preprocess(image)
    with torch.no_grad():
        torch.testing.assert_close(adapted.encoder(x).patch, plain.encoder(x, prompts=learner.visual_prompts()).patch)
        torch.testing.assert_close(adapted.class_embeddings(classes), learner.encode_names(["sky", "boat"]))
    assert adapted.predict(image, classes).labels.shape == (32, 32)
    assert adapted.settings()["prompts"]["method"] == "opendas"
    assert "prompts" not in plain.settings()
    # the CLIP behind both segmenters is untouched
    assert not any(p is q for p in adapted.encoder.parameters() for q in learner.parameters())


def test_slic_superpixels_follow_a_colour_edge():
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 255
    ids = slic_superpixels(image, n_segments=4, compactness=1.0)
    assert set(np.unique(ids[:, :16])).isdisjoint(np.unique(ids[:, 16:]))


def test_classify_proposals_paints_each_mask(tiny):
    learner = PromptLearner.unprompted(tiny)
    image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    left = np.zeros((24, 24), dtype=bool)
    left[:, :12] = True
    text = torch.nn.functional.normalize(torch.randn(3, 128), dim=-1)
    out = classify_proposals(learner, image, [left], text)
    assert out.dtype == np.uint8 and (out[:, 12:] == 255).all()  # no proposal there: unlabelled
    assert len(np.unique(out[:, :12])) == 1 and out[0, 0] < 3


def test_gt_proposals_miou_on_shapesworld(tiny, tmp_path):
    from ovss.data import SegDataset
    from ovss.world import write_dataset

    root = write_dataset(tmp_path / "sw", n=2, size=48, split="val", progress=False)
    ds = SegDataset("shapesworld", root, "val")
    result = segments_miou(PromptLearner.unprompted(tiny), ds, "gt", base=["sky", "boat"], progress=False)
    assert 0.0 <= result["mIoU"] <= 100.0 and result["images"] == 2 and "mIoU novel" in result
