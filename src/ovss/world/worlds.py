"""The registry of synthetic worlds a tiny CLIP can be trained on and exported: ShapesWorld (the
original, 19 classes) and ShapesWorld 2 (189 classes in contexts). One small table, so the
trainer and the exporter need no branch per world."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import OvssError


@dataclass(frozen=True)
class World:
    name: str
    classes: tuple[str, ...]
    things: tuple[str, ...]
    styles: tuple[str, ...]
    synonyms: dict
    make_scene: Callable            # (seed, size, style) -> Scene
    object_image: Callable          # (name, seed, size, style) -> (image, mask, colour or None)
    caption: Callable               # (scene, present, rng) -> a caption naming every class in present
    thing_colors: Callable          # name -> colours a thing may have (for single-thing captions)


def _sw1() -> World:
    from .captions import caption_for
    from .classes import CLASSES, OBJECT_COLORS, OBJECTS, STYLES, SYNONYMS
    from .scene import make_object_image, make_scene

    def object_image(name, seed, size, style):
        image, mask = make_object_image(name, seed, size=size, style=style)
        return image, mask, None

    return World("shapesworld", CLASSES, OBJECTS, STYLES, SYNONYMS, make_scene, object_image,
                 lambda scene, present, rng: caption_for(present, rng), lambda name: OBJECT_COLORS[name])


def _sw2() -> World:
    from .sw2_classes import CLASSES2, STYLES2, SYNONYMS2, THINGS
    from .sw2_scene import caption2, make_object_image2, make_scene2

    return World("shapesworld2", CLASSES2, THINGS, STYLES2, SYNONYMS2,
                 lambda seed, size=224, style="default": make_scene2(seed, size=size, style=style),
                 lambda name, seed, size, style: make_object_image2(name, seed, size=size, style=style),
                 lambda scene, present, rng: caption2(present, getattr(scene, "context", None), rng, complete=True),
                 lambda name: ())


WORLDS: dict[str, Callable[[], World]] = {"shapesworld": _sw1, "shapesworld2": _sw2}


def get_world(name: str) -> World:
    if name not in WORLDS:
        raise OvssError(f"unknown world {name!r}; valid worlds: {', '.join(WORLDS)}")
    return WORLDS[name]()


def single_thing_caption(world: World, name: str, color: str | None, rng: np.random.Generator) -> str:
    """"a red car" style captions for single-thing images."""
    if color is None and world.thing_colors(name):
        color = str(rng.choice(world.thing_colors(name)))
    form = str(rng.choice(("a {}", "a photo of a {}.", "a {} on its own")))
    return form.format(f"{color} {name}" if color else name)
