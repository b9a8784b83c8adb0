"""ShapesWorld 2 generation is pinned: the same seed gives bit-identical images, labels, instances
and captions, scene by scene and in the training stream. The hashes were taken on the code before
the speed-ups (caching of resized icons, rendering only the training window); a faster generator
must keep them, so training data and exported splits stay what they were."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ovss.world.sw2_scene import make_object_image2, make_scene2


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.shape, p.dtype.str)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:16]


def scene_digest(seed: int, size: int, style: str) -> str:
    s = make_scene2(seed, size=size, style=style)
    masks = [m for _, m in s.instances]
    return _digest(s.image, s.labels, [c for c, _ in s.instances], *masks, s.attributes,
                   sorted(s.present.items()), s.caption, s.context)


def object_digest(name: str, seed: int, size: int, style: str) -> str:
    image, mask, color = make_object_image2(name, seed, size=size, style=style)
    return _digest(image, mask, color)


def stream_digest(n: int) -> str:
    from ovss.text.templates import SEVEN
    from ovss.tinyclip.recipe import TinyClipRecipe
    from ovss.tinyclip.train import PairStream

    cfg = TinyClipRecipe(world="shapesworld2", augment=0.3, level_weight=0.5, batch_size=64)
    stream = PairStream(cfg, tuple(SEVEN))
    rng = np.random.default_rng([cfg.seed, 0])
    parts = []
    for _ in range(n):
        image, caption, boxes, region_captions, _labels = stream.sample(rng)
        parts += [image.numpy(), caption, boxes.numpy(), region_captions]
    return _digest(*parts)


SCENES = {
    (3, 112, "default"): "bad0fabb85989d28", (17, 160, "default"): "0af10ffa0e6f879b", (42, 224, "night"): "ce7d9a9f4ba503d1", (5, 320, "default"): "e469856dff997b36",
    (8, 200, "sketch"): "69610637c321d808", (11, 137, "painting"): "b8873444835c42e4", (123456789, 250, "default"): "0186003768220b19",
    (10**10 + 77, 301, "default"): "ae6ab2262c3039c8",
}
OBJECTS = {("dog", 4, 112, "default"): "00b01fdd8ee0b3d1", ("car", 9, 112, "night"): "41c59a089c7c5bbe", ("sea", 2, 112, "default"): "90b440561df0cabb",
           ("banana", 31, 96, "sketch"): "e708efd2df6f27ac"}
STREAM = "d034b63f5dd7dbc7"


@pytest.mark.parametrize("key", list(SCENES))
def test_scene_pinned(key):
    assert scene_digest(*key) == SCENES[key]


@pytest.mark.parametrize("key", list(OBJECTS))
def test_object_image_pinned(key):
    assert object_digest(*key) == OBJECTS[key]


def test_training_stream_pinned():
    # 24 samples of the issue-25 fine-tune's stream (scene windows, single things, augmentation)
    assert stream_digest(24) == STREAM
