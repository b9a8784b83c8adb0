"""Bundled examples: a few ShapesWorld scenes, drawn by ``ovss.world`` when the page starts.

Nothing is shipped as a file: ``make_scene(seed)`` depends on nothing but its arguments, so the
examples are the same on every machine and cost no repository space.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ..files import save_image

EXAMPLE_SEEDS = (7, 3, 11)


def write_examples(folder: str | os.PathLike, seeds=EXAMPLE_SEEDS, size: int = 224) -> list[tuple[Path, str]]:
    """Write ``shapesworld_<seed>.png`` into ``folder``; return (path, classes text) per scene.

    The classes text lists every class present in the scene, as a user would type what they see.
    """
    from ..world import CLASSES, make_scene

    out = []
    for seed in seeds:
        scene = make_scene(seed, size)
        path = save_image(Path(folder) / f"shapesworld_{seed}.png", Image.fromarray(scene.image))
        present = [c for c in CLASSES if (scene.labels == CLASSES.index(c)).any()]
        out.append((path, ", ".join(present)))
    return out
