"""One contract every registry entry passes, kornia style: a head, preset, TTA method, dataset
reader or corruption added to its table is tested here automatically (shapes, dtypes, bad-input
errors, determinism, and for TTA methods that the model is left as it was)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ovss.adaptation import METHODS, get_method
from ovss.corruptions import CORRUPTION_NAMES, corrupt
from ovss.data import DATASETS, SegDataset
from ovss.data.classnames import class_names
from ovss.dense import HEADS, get_head
from ovss.errors import OvssError
from ovss.segment import PRESETS, Segmenter
from ovss.text import parse_classes

IMAGE = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
CLASSES = parse_classes("sky, grass, boat")


# ----------------------------------------------------------------------------- heads


@pytest.mark.parametrize("name", sorted(HEADS))
class TestHeadContract:
    def test_shapes_dtype_and_finite(self, name, tiny_random, make_encoder):
        enc = make_encoder(tiny_random.visual, name)
        torch.manual_seed(0)
        x = torch.randn(2, 3, 112, 168)
        with torch.no_grad():
            out = enc(x).patch
        p = tiny_random.patch_size
        assert out.shape[:3] == (2, 112 // p[0], 168 // p[1]) and out.dtype == torch.float32
        assert torch.isfinite(out).all()

    def test_deterministic_and_batch_independent(self, name, tiny_random, make_encoder):
        enc = make_encoder(tiny_random.visual, name)
        torch.manual_seed(1)
        x = torch.randn(3, 3, 112, 112)
        with torch.no_grad():
            a, b, one = enc(x).patch, enc(x).patch, enc(x[1:2]).patch
        assert torch.equal(a, b)
        torch.testing.assert_close(one[0], a[1], atol=1e-5, rtol=1e-5)


def test_unknown_head_is_one_line():
    with pytest.raises(OvssError, match="unknown head 'nope'; choose one of"):
        get_head("nope")


# ----------------------------------------------------------------------------- presets


def _random_second(name):
    """Presets with a second backbone run it with random weights here (no checkpoint in tests)."""
    return {"second_weights": "none"} if PRESETS[name].second_backbone else {}


@pytest.mark.parametrize("name", sorted(PRESETS))
class TestPresetContract:
    def test_predicts_labels_of_the_scored_size(self, name, tiny_random):
        seg = Segmenter(tiny_random, preset=name, **_random_second(name))
        out = seg.predict(IMAGE, CLASSES)
        expected = tuple(seg.preset.resize_to) if seg.preset.eval_at_input_size and seg.preset.resize_to else IMAGE.shape[:2]
        assert tuple(out.labels.shape) == expected and out.labels.dtype == torch.long
        assert 0 <= int(out.labels.min()) and int(out.labels.max()) < len(CLASSES)
        assert out.logits.shape[0] == len(CLASSES) and torch.isfinite(out.logits).all()
        assert abs(sum(out.shares().values()) - 1) < 1e-9

    def test_settings_are_json_and_honest(self, name, tiny_random):
        seg = Segmenter(tiny_random, preset=name, head="clip")  # clip has no second backbone: none to give
        s = json.loads(json.dumps(seg.settings()))
        assert s["name"] == name and s["head"] == "clip" and s["model"] == "ovss-tiny"

    def test_every_per_dataset_entry_is_a_known_dataset_and_setting(self, name):
        preset = PRESETS[name]
        for dataset, values in preset.per_dataset.items():
            assert dataset in DATASETS, (name, dataset)
            applied = preset.for_dataset(dataset)
            assert all(getattr(applied, k) == (tuple(v) if isinstance(v, list) else v) for k, v in values.items())


# ----------------------------------------------------------------------------- TTA methods


def _fast(name):
    """The method with the fewest steps its checks allow, so the contract stays quick."""
    fast = {"steps": 1} if name != "none" else {}
    if name == "tpt":
        fast["views"] = 4
    if name == "watt":
        fast["rounds"] = 1
    return get_method(name, **fast)


@pytest.mark.parametrize("name", sorted(METHODS))
class TestAdaptationContract:
    def test_labels_per_image_and_model_left_as_it_was(self, name, tiny_random):
        seg = Segmenter(tiny_random, preset="shapesworld")
        before = {k: v.clone() for k, v in tiny_random.clip.state_dict().items()}
        method = _fast(name)
        torch.manual_seed(0)
        images = [IMAGE, IMAGE[:, ::-1].copy()]
        labels = method(seg, images, CLASSES, [i.shape[:2] for i in images])
        assert len(labels) == 2 and all(tuple(l.shape) == IMAGE.shape[:2] for l in labels)
        assert all(int(l.max()) < len(CLASSES) for l in labels)
        after = tiny_random.clip.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), "episodic methods restore the model"

    def test_deterministic_with_a_seed_and_hparams_are_json(self, name, tiny_random):
        seg = Segmenter(tiny_random, preset="shapesworld")
        runs = []
        for _ in range(2):
            torch.manual_seed(3)
            runs.append(_fast(name)(seg, [IMAGE], CLASSES, [IMAGE.shape[:2]])[0])
        assert torch.equal(runs[0], runs[1])
        assert json.loads(json.dumps(_fast(name).hparams()))


def test_unknown_method_is_one_line():
    with pytest.raises(OvssError, match="unknown adaptation method 'nope'"):
        get_method("nope")


# ----------------------------------------------------------------------------- datasets


def _fake_layout(spec, root, split="val"):
    """One 6 x 8 image and label in ``spec``'s layout, labels 0..2 (and 255)."""
    image_dir = root / spec.path(spec.image_dir, split)
    ann_dir = root / spec.path(spec.ann_dir, split)
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    name = "img1"
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(image_dir / f"{name}{spec.image_suffix}")
    label = np.array([[0, 1, 2, 255] * 2] * 6, np.uint8)
    Image.fromarray(label).save(ann_dir / f"{name}{spec.ann_suffix}")
    if spec.split_file:
        split_path = root / spec.path(spec.split_file, split)
        split_path.parent.mkdir(parents=True, exist_ok=True)
        split_path.write_text(name + "\n")
    if spec.classes_in_root:
        (root / spec.class_file).write_text("a\nb\nc\n")
    return label


@pytest.mark.parametrize("name", sorted(DATASETS))
class TestDatasetContract:
    def test_reads_its_layout(self, name, tmp_path):
        spec = DATASETS[name]
        raw = _fake_layout(spec, tmp_path)
        ds = SegDataset(name, tmp_path, "val")
        item = ds[0]
        assert item["image"].shape == (6, 8, 3) and item["image"].dtype == np.uint8
        assert item["label"].shape == (6, 8) and item["label"].dtype == np.uint8
        if spec.reduce_zero_label:  # 0 -> ignored, k -> k - 1
            assert item["label"][0, :4].tolist() == [255, 0, 1, 255]
        elif spec.label_map is None:
            assert np.array_equal(item["label"], raw)
        assert ds.num_classes == len(ds.classes)

    def test_class_count_and_missing_root(self, name, tmp_path):
        spec = DATASETS[name]
        if not spec.classes_in_root:
            assert len(class_names(name)) == spec.num_classes
        with pytest.raises(OvssError) as e:
            SegDataset(name, tmp_path / "missing", "val")
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
class TestCorruptionContract:
    def test_shape_dtype_determinism_and_effect(self, name):
        image = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        a = corrupt(image, name, 5, key="img-a")
        assert a.shape == image.shape and a.dtype == np.uint8
        assert np.array_equal(a, corrupt(image, name, 5, key="img-a"))
        assert not np.array_equal(a, image)
        assert np.array_equal(image, np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8))  # input untouched

    def test_bad_input_is_one_line(self, name):
        with pytest.raises(OvssError):
            corrupt(np.zeros((4, 4), np.uint8), name, 5)
        with pytest.raises(OvssError):
            corrupt(np.zeros((4, 4, 3), np.uint8), name, 9)
