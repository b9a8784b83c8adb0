"""Bundled examples: a few scenes of the model's world, drawn by ``ovss.world`` when the page starts.

Nothing is shipped as a file: a world's ``make_scene(seed)`` depends on nothing but its arguments,
so the examples are the same on every machine and cost no repository space.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ..files import save_image

EXAMPLE_SEEDS = (7, 3, 11)  # ShapesWorld 2: a snowfield, the sea floor and an office


def write_examples(folder: str | os.PathLike, seeds=EXAMPLE_SEEDS, size: int = 224,
                   world: str = "shapesworld2") -> list[tuple[Path, str]]:
    """Write ``<world>_<seed>.png`` into ``folder``; return (path, classes text) per scene.

    The classes text lists every class present in the scene, as a user would type what they see.
    """
    from ..world.worlds import get_world

    drawn = get_world(world)
    out = []
    for seed in seeds:
        scene = drawn.make_scene(seed, size)
        path = save_image(Path(folder) / f"{world}_{seed}.png", Image.fromarray(scene.image))
        present = [c for i, c in enumerate(drawn.classes) if (scene.labels == i).any()]
        out.append((path, ", ".join(present)))
    return out


def examples_world(model) -> str:
    """The world whose scenes suit ``model``: its own for embedded weights, else ShapesWorld 2."""
    from ..model import EMBEDDED_WORLDS, is_embedded

    return EMBEDDED_WORLDS.get(model.pretrained, "shapesworld2") if is_embedded(model) else "shapesworld2"
