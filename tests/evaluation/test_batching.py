"""Batching changes how the work is cut, never the outputs: persistent bench workers, several images
per forward in ``Segmenter.encode_images`` and ``ovss segment`` on a folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ovss import Segmenter
from ovss.cli import main
from ovss.evaluation.runner import ScenarioData, ScenarioLoaders, open_dataset, run_benchmark
from ovss.segment import get_preset
from ovss.world import write_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=3, seed=1, split="val", size=64, progress=False)


def test_persistent_loader_serves_each_scenario_as_a_fresh_one(world):
    ds = open_dataset("shapesworld", world)
    preset = get_preset("shapesworld")
    loaders = ScenarioLoaders(workers=1, severity=5)
    try:
        first = loaders.batches(ds, preset, "fog", 1, [0, 1, 2], batch_size=2)
        got_fog = [item for batch in first for item in batch]
        second = loaders.batches(ds, preset, "gaussian_noise", 0, [2, 0], batch_size=2)
        got_noise = [item for batch in second for item in batch]
        assert second is first  # the same worker processes, reset for the next scenario
    finally:
        loaders.close()
    for got, fresh in ((got_fog, ScenarioData(ds, "fog", 5, preset, [0, 1, 2], seed=1)),
                       (got_noise, ScenarioData(ds, "gaussian_noise", 5, preset, [2, 0], seed=0))):
        assert [g["index"] for g in got] == fresh.indices
        for g, i in zip(got, range(len(fresh))):
            want = fresh[i]
            assert np.array_equal(g["image"], want["image"]) and np.array_equal(g["label"], want["label"])


def test_bench_results_equal_with_and_without_workers(world, tiny_random, tmp_path):
    kw = dict(corruptions="gaussian_noise,fog", preset="shapesworld", progress=False)
    a = run_benchmark(tiny_random, [("shapesworld", world)], tmp_path / "a", workers=0, **kw)
    b = run_benchmark(tiny_random, [("shapesworld", world)], tmp_path / "b", workers=2, **kw)
    assert [r["confusion_matrix"] for r in a] == [r["confusion_matrix"] for r in b]


def _images():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 255, shape, dtype=np.uint8) for shape in [(60, 70, 3), (64, 64, 3), (60, 70, 3), (90, 40, 3)]]


def test_encode_images_equals_one_image_at_a_time(tiny_random):
    seg = Segmenter(tiny_random, preset="shapesworld")
    images = _images()
    classes = "a, b, c"
    together = seg.encode_images(images, max_windows=5)  # several forwards, some shared between images
    for image, enc in zip(images, together):
        alone = seg.set_image(image)
        torch.testing.assert_close(enc.features, alone.features, rtol=1e-5, atol=1e-5)
        assert enc.boxes == alone.boxes and enc.size == alone.size
        assert torch.equal(seg.predict(classes=classes, encoded=enc).labels, seg.predict(image, classes).labels)


def test_segment_folder_writes_what_single_images_write(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(_images()):
        Image.fromarray(image).save(folder / f"im{i}.png")
    (folder / "broken.png").write_text("not an image")
    model = ["--preset", "shapesworld", "--classes", "a, b, c"]  # the embedded model: fixed weights in every run
    assert main(["segment", str(folder), *model, "--out", str(tmp_path / "all")]) == 1  # the broken file
    for i in range(4):
        assert main(["segment", str(folder / f"im{i}.png"), *model, "--out", str(tmp_path / f"one{i}")]) == 0
        for suffix in (".png", "_overlay.png"):  # the same pixels (each file names its own run)
            with Image.open(tmp_path / "all" / f"im{i}{suffix}") as a, Image.open(tmp_path / f"one{i}" / f"im{i}{suffix}") as b:
                assert a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))
        together = json.loads((tmp_path / "all" / f"im{i}.json").read_text())
        alone = json.loads((tmp_path / f"one{i}" / f"im{i}.json").read_text())
        assert together["pixel_share"] == alone["pixel_share"]
