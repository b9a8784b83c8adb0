"""Where ``ovss segment`` writes: one label PNG, one overlay PNG and one JSON per input image.

The plan is made before any model loads, so that every way of losing a user's file is refused
up front: an output folder that is (or lies inside) an input folder, an output path that is an
input image, and any existing file at an output path that ovss did not write.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import OvssError
from ..files import check_not_foreign

OUTPUT_SUFFIXES = (".png", "_overlay.png", ".json")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def plan_outputs(images: list[Path], input_dirs: list[Path], out: Path) -> list[str]:
    """The output stem of each image in ``images``, unique within the run.

    ``OUTPUT_SUFFIXES`` appended to a stem give its three files in ``out``. Raises ``OvssError``
    naming both paths when an output would land on an input or in an input folder, and when an
    output path holds a file that ovss did not write.
    """
    out_r = out.expanduser().resolve()
    for folder in input_dirs:
        folder_r = folder.resolve()
        if _inside(out_r, folder_r):
            raise OvssError(
                f"the output folder {out} is inside the input folder {folder}: outputs would mix with the "
                "images and be read as inputs next time; choose an output folder outside it"
            )
    inputs = {p.expanduser().resolve() for p in images}
    used: set[str] = set()
    stems: list[str] = []
    for path in images:
        base, k = path.stem, 0
        stem = base
        while any(stem + s in used for s in OUTPUT_SUFFIXES):
            k += 1
            stem = f"{base}_{k}"
        for s in OUTPUT_SUFFIXES:
            target = out_r / (stem + s)
            if target in inputs:
                raise OvssError(f"the output {out / (stem + s)} would overwrite the input image {path}; choose another output folder")
            used.add(stem + s)
        stems.append(stem)
    check_not_foreign([out / (stem + s) for stem in stems for s in OUTPUT_SUFFIXES],
                      "choose another output folder or move that file")
    return stems
