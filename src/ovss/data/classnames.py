"""Class-name files: one class per line, synonyms separated by commas.

The format is the one SCLIP and NACLIP use for their ``configs/cls_*.txt`` files, e.g.
``person, people, man, woman``. The first name of a line is the class's display name; the others
are extra prompts for the same label index. Line order is label order, so the files in
``classnames/`` follow each benchmark's official class order (MMSegmentation's ``METAINFO``).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import OvssError

CLASSNAMES_DIR = Path(__file__).resolve().with_name("classnames")


def _key(name: str) -> str:
    return " ".join(name.lower().split())


def read_class_file(path: str | os.PathLike) -> list[list[str]]:
    """Read a class-name file as ``[[name, synonym, ...], ...]`` in label order.

    Blank lines and comment lines (first non-space character ``#``) are skipped, so a file can
    name its source; a file with no class line is an error. Two classes with the same (first) name are an error. A synonym
    shared by two classes is allowed, as in the published files (SCLIP's COCO-Object list has
    "bed" among the background synonyms and as a class): both classes then score it.
    """
    path = Path(path)
    if not path.is_file():
        raise OvssError(f"class-name file not found: {path} (write one class per line, synonyms separated by commas)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise OvssError(f"cannot read class-name file {path} ({e.__class__.__name__}); save it as UTF-8 text") from None
    classes: list[list[str]] = []
    seen: dict[str, int] = {}  # normalised first name -> line number
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        names: list[str] = []
        for raw in line.split(","):
            name = " ".join(raw.split())
            if not name or _key(name) in (_key(n) for n in names):
                continue  # empty piece ("a,,b") or a repeat within the same class
            names.append(name)
        if not names:
            raise OvssError(f"{path}:{lineno}: line has no class name (only commas); remove it or name the class")
        if _key(names[0]) in seen:
            raise OvssError(
                f"{path}:{lineno}: class '{names[0]}' is already defined on line {seen[_key(names[0])]}; "
                "remove the duplicate line"
            )
        seen[_key(names[0])] = lineno
        classes.append(names)
    if not classes:
        raise OvssError(f"class-name file {path} is empty (no class, only blank or # comment lines); write one class per line, synonyms separated by commas")
    return classes


def class_names(dataset: str, root: str | os.PathLike | None = None) -> list[list[str]]:
    """Class names of a registered dataset, in label order.

    Benchmarks use the files shipped in ``ovss/data/classnames/``; ``shapesworld`` lists its own
    classes in ``ROOT/classes.txt``, so it needs ``root``.
    """
    from .specs import get_spec, resolve_root  # late import: the layout scan imports this module

    spec = get_spec(dataset)
    if spec.classes_in_root:
        if root is None:
            raise OvssError(f"{spec.name} lists its classes in ROOT/{spec.class_file}; pass the dataset root")
        return read_class_file(resolve_root(spec, root) / spec.class_file)
    return read_class_file(CLASSNAMES_DIR / spec.class_file)


def class_set_folders() -> list[str]:
    """The protocol class-list folders shipped in ``classnames/`` (each holds some datasets' files)."""
    return sorted(d.name for d in CLASSNAMES_DIR.iterdir() if d.is_dir() and any(d.glob("*.txt")))


def class_set_folder(class_set: str) -> Path:
    """The folder of ``class_set``; a name that is not one is an error naming the ones there are, so
    a typo never falls back to the dataset's own lists unnoticed."""
    folders = class_set_folders()
    if class_set not in folders:
        raise OvssError(f"unknown class_set '{class_set}'; choose one of: {', '.join(folders)} (or none of them: "
                        "leave class_set unset for the datasets' own lists)")
    return CLASSNAMES_DIR / class_set


def protocol_class_file(dataset: str, class_set: str | None) -> Path | None:
    """The class file a published protocol uses for ``dataset`` instead of ovss's own, or None.

    ``class_set`` names a folder of ``classnames/`` (``sclip_naclip``: the lists SCLIP, NACLIP,
    SC-CLIP, ResCLIP and MLMP read; ``clearclip``, ``proxyclip``: where those two differ); a
    dataset the folder has no list for keeps its own file (None is returned). Each file's header
    names the repositories, commits and files it was written from.
    """
    if not class_set:
        return None
    folder = class_set_folder(class_set)
    from .specs import get_spec  # late import: the layout scan imports this module

    spec = get_spec(dataset)
    if spec.classes_in_root:
        return None
    path = folder / spec.class_file
    return path if path.is_file() else None
