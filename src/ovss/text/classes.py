"""Class lists: each class is one or more synonyms; its score is the max over its synonyms."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import OvssError


@dataclass(frozen=True)
class ClassList:
    """Classes with synonyms, e.g. ``[["person", "people"], ["sofa", "couch"]]``.

    ``queries`` flattens the synonyms; ``query_to_class[i]`` is the class of query i.
    """

    synonyms: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> list[str]:
        return [s[0] for s in self.synonyms]

    @property
    def queries(self) -> list[str]:
        return [q for syn in self.synonyms for q in syn]

    @property
    def query_to_class(self) -> list[int]:
        return [i for i, syn in enumerate(self.synonyms) for _ in syn]

    def __len__(self) -> int:
        return len(self.synonyms)


def _check(synonyms: list[list[str]], where: str) -> ClassList:
    synonyms = [[s.strip() for s in syn if s.strip()] for syn in synonyms]
    synonyms = [syn for syn in synonyms if syn]
    if not synonyms:
        raise OvssError(f"the class list {where} is empty; give at least one class, e.g. classes=\"cat, sofa\"", param="classes")
    seen: dict[str, int] = {}
    for i, syn in enumerate(synonyms):
        for s in syn:
            key = s.lower()
            if key in seen:
                raise OvssError(f"class '{s}' appears twice in the class list {where}; remove the duplicate")
            seen[key] = i
    return ClassList(tuple(tuple(s) for s in synonyms))


def parse_classes(classes: str | list | tuple | ClassList | None = None, classes_file: str | Path | None = None) -> ClassList:
    """Classes from a comma-separated string, a list (items may be synonym lists) or a class file.

    A class file (the ``cls_*.txt`` format of SCLIP/NACLIP) has one class per line with
    comma-separated synonyms. On the command line, ``--classes "cat, sofa"`` lists two classes.
    """
    if isinstance(classes, ClassList):
        return classes
    if classes is not None and classes_file is not None:
        raise OvssError("give either a class list or a class file, not both", param="classes")
    if classes_file is not None:
        from ..data.classnames import read_class_file

        return ClassList(tuple(tuple(names) for names in read_class_file(classes_file)))
    if classes is None:
        raise OvssError("no class names given; pass classes=\"cat, sofa\" or a class file", param="classes")
    if isinstance(classes, str):
        return _check([[c] for c in classes.split(",")], f"'{classes}'")
    return _check([[c] if isinstance(c, str) else list(c) for c in classes], "given")
