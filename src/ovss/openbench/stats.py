"""How open is a benchmark? Its classes' CLIP text similarity to a training vocabulary (the OVSNet/OpenBench paper).

For every class of a dataset, the maximum cosine similarity of its name to the training classes'
names is measured with the segmenter's own text encoder; the table gives mean / median / min / max
of those maxima (the OVSNet paper's Table 1), plus the share of fine-grained classes and the semantic
duplicates in the label set; the histogram is the OVSNet paper's Figure 1a. Names are the classes' display
names (the first name of each line), one embedding per category, as the OVSNet paper compares them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..concepts.similarity import TextSimilarity
from ..data import DATASETS, SegDataset, class_names, read_class_file
from ..errors import OvssError
from .hierarchy import Hierarchy, fine_grained, semantic_duplicates

Classes = list[list[str]]

# A dataset is marked fine-grained when at least this share of its classes are kinds of training classes.
FINE_SHARE = 0.1


def _shapesworld(which: str) -> Classes:
    from ..world import BASE_CLASSES, CLASSES, NOVEL_CLASSES, SYNONYMS

    names = {"base": BASE_CLASSES, "novel": NOVEL_CLASSES, "all": CLASSES}[which]
    return [[c, *SYNONYMS[c]] for c in names]


# Vocabularies that are not a class file: ShapesWorld's training (base) and held-out (novel) classes.
VOCABULARIES = {
    "shapesworld-base": lambda: _shapesworld("base"),
    "shapesworld-novel": lambda: _shapesworld("novel"),
    "shapesworld-all": lambda: _shapesworld("all"),
}


def _looks_like_path(spec: str) -> bool:
    return any(c in spec for c in "/\\") or spec.startswith((".", "~")) or spec.endswith(".txt")


def resolve_vocabulary(spec: str) -> tuple[str, Classes]:
    """(label, classes) of a class file, a named vocabulary, or a dataset's shipped class list."""
    spec = str(spec).strip()
    path = Path(spec).expanduser()
    if path.is_file():
        return path.stem, read_class_file(path)
    if path.is_dir() and (path / "classes.txt").is_file():
        return path.name, read_class_file(path / "classes.txt")
    if spec.lower() in VOCABULARIES:
        return spec.lower(), VOCABULARIES[spec.lower()]()
    if spec.lower() == "shapesworld":  # the name `ovss data list` uses: all of its classes
        return "shapesworld", VOCABULARIES["shapesworld-all"]()
    if spec.lower() in DATASETS and not DATASETS[spec.lower()].classes_in_root:
        return spec.lower(), class_names(spec.lower())
    known = ", ".join(["shapesworld", *VOCABULARIES] + [n for n, s in DATASETS.items() if not s.classes_in_root])
    if _looks_like_path(spec):
        if not path.exists():
            raise OvssError(f"{spec}: no such file or folder; give a class file, a dataset folder, or one of: {known}")
        if path.is_dir():
            raise OvssError(f"{spec} is a folder but not a dataset layout (no classes.txt in it); "
                            "give a folder made by `ovss world make` / `ovss openbench build`, or NAME=ROOT for a benchmark")
    raise OvssError(f"unknown vocabulary '{spec}'; give a class file, a dataset folder with classes.txt, or one of: {known}")


@dataclass
class DatasetEntry:
    """A label set to measure, with its images when a root is known."""

    label: str
    classes: Classes
    dataset: SegDataset | None = None


def parse_dataset(spec: str, split: str = "val") -> DatasetEntry:
    """``NAME`` (class list only), ``NAME=ROOT`` (with its images), or a folder / class file.

    A folder is read as an ``ovss world make`` / ``ovss openbench build`` export (the shapesworld layout).
    """
    spec = str(spec).strip()
    if "=" in spec:
        name, root = (s.strip() for s in spec.split("=", 1))
        ds = _open(name.lower(), root, split)
        return DatasetEntry(name.lower() if name.lower() != "shapesworld" else Path(root).name, ds.classes, ds)
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "classes.txt").is_file():
        ds = _open("shapesworld", path, split)
        return DatasetEntry(path.name, ds.classes, ds)
    label, classes = resolve_vocabulary(spec)
    return DatasetEntry(label, classes)


def _open(name: str, root: str | os.PathLike, split: str) -> SegDataset:
    if name not in DATASETS:
        raise OvssError(f"unknown dataset '{name}' in '{name}={root}'; valid names: {', '.join(DATASETS)}")
    try:
        return SegDataset(name, root, split)
    except OvssError as e:
        raise OvssError(f"{e} (diagnose with `ovss data check {root} --dataset {name} --split {split}`)") from None


def max_similarity(classes: Classes, train_vocab: Classes, similarity: TextSimilarity) -> np.ndarray:
    """Per class, the highest cosine similarity of its display name to a training class's name."""
    if not classes or not train_vocab:
        raise OvssError("both the dataset and the training vocabulary need at least one class")
    sims = np.asarray(similarity([c[0] for c in classes], [t[0] for t in train_vocab]), dtype=np.float64)
    return np.clip(sims.max(axis=1), -1.0, 1.0)


@dataclass
class OpennessStats:
    """One row of the OVSNet paper's Table 1, with the per-class similarities behind it."""

    dataset: str
    classes: int
    images: int | None
    mean: float
    median: float
    min: float
    max: float
    fine_share: float
    fine_pairs: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    similarities: dict[str, float] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)  # class names holding words the model never learned

    @property
    def fine_granularity(self) -> bool:
        return self.fine_share >= FINE_SHARE

    @property
    def semantic_duplication(self) -> bool:
        return bool(self.duplicates)

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset, "classes": self.classes, "images": self.images,
            "mean": self.mean, "median": self.median, "min": self.min, "max": self.max,
            "fine_granularity": self.fine_granularity, "fine_share": self.fine_share,
            "fine_pairs": [list(p) for p in self.fine_pairs],
            "semantic_duplication": self.semantic_duplication, "duplicates": [list(p) for p in self.duplicates],
            "similarities": self.similarities, "unknown_to_model": self.unknown,
        }


def openness_stats(entry: DatasetEntry, train_vocab: Classes, similarity: TextSimilarity,
                   hierarchy: Hierarchy | None = None, ignore: Sequence[str] = ("background", "others")) -> OpennessStats:
    """Table 1's row for one label set. Catch-all classes (``ignore``) name no category and are left out."""
    skip = {n.lower() for n in ignore}
    classes = [c for c in entry.classes if c[0].lower() not in skip]
    sims = max_similarity(classes, train_vocab, similarity)
    hierarchy = hierarchy or Hierarchy(None)
    fine = fine_grained(classes, train_vocab, hierarchy)
    unknown_words = getattr(similarity, "unknown_words", None)
    unknown = unknown_words([c[0] for c in classes]) if unknown_words is not None else []
    return OpennessStats(
        dataset=entry.label, classes=len(classes), images=len(entry.dataset) if entry.dataset is not None else None,
        mean=float(sims.mean()), median=float(np.median(sims)), min=float(sims.min()), max=float(sims.max()),
        fine_share=len(fine) / len(classes), fine_pairs=fine, duplicates=semantic_duplicates(classes, hierarchy),
        similarities={c[0]: float(s) for c, s in zip(classes, sims)}, unknown=unknown,
    )


def stats_table(rows: Sequence[OpennessStats]) -> str:
    """The OVSNet paper's Table 1 as markdown (✓ / ×, with the fine-grained share and the duplicate count).

    A last column counts the classes whose names the model cannot read (see ``unknown_words``).
    """
    lines = [
        "| Dataset | Cls Num. | Img Num. | Mean Sim. | Median Sim. | Min Sim. | Max Sim. | Fine Granularity | "
        "Semantic Duplication | Unknown to Model |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for r in rows:
        images = "-" if r.images is None else str(r.images)
        fine = f"{'✓' if r.fine_granularity else '×'} ({100 * r.fine_share:.0f} %)"
        dup = f"✓ ({len(r.duplicates)} pairs)" if r.semantic_duplication else "×"
        lines.append(f"| {r.dataset} | {r.classes} | {images} | {r.mean:.4f} | {r.median:.4f} | {r.min:.4f} | "
                     f"{r.max:.4f} | {fine} | {dup} | {len(r.unknown)} |")
    return "\n".join(lines) + "\n"


def plot_histogram(rows: Sequence[OpennessStats], path: str | os.PathLike, train_label: str | None = None) -> Path:
    """The OVSNet paper's Figure 1a: per dataset, the distribution of its classes' maximum similarity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import atomic_write

    values = [np.array(list(r.similarities.values())) for r in rows]
    lo = min(0.0, math.floor(min(v.min() for v in values) * 10) / 10)
    bins = np.linspace(lo, 1.0, int(round((1.0 - lo) / 0.025)) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for r, v in zip(rows, values):
        weights = np.full(len(v), 100.0 / len(v))
        ax.hist(v, bins=bins, weights=weights, alpha=0.55, label=f"{r.dataset} (mean {r.mean:.2f})")
    ax.set_xlabel("max cosine similarity to the training vocabulary" + (f" ({train_label})" if train_label else ""))
    ax.set_ylabel("% of the dataset's classes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return Path(path)
