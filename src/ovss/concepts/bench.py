"""IoU-single per concept source (the contrastive-concepts paper): each class present in an image queried alone.

One JSON per (dataset, source) under RUN/{dataset}/iou_single/, written atomically and skipped
when it exists with the same settings; clean images only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..data import SegDataset
from ..files import write_json, write_text


def _dictionary_record(dictionary: str | os.PathLike | None) -> dict:
    """What identifies the cooc source's concepts in a result: the dictionary's path and content
    hash, and the abstract filter that runs here (WordNet or the built-in list keep different
    concepts, so a result made without WordNet is recomputed once WordNet is installed)."""
    from .filters import resolved_filter

    import hashlib

    from ..errors import OvssError

    from .cooccurrence import DEFAULT_DICTIONARY, SHIPPED

    if dictionary is None:  # named, so that a result of an earlier default is not read back as this one
        dictionary = DEFAULT_DICTIONARY

    path = SHIPPED.get(str(dictionary), Path(dictionary))
    if not path.is_file():
        raise OvssError(f"co-occurrence dictionary {path} not found; build one with `ovss concepts build`")
    name = f"{dictionary} (shipped)" if str(dictionary) in SHIPPED else str(path.resolve())
    return {"dictionary": name, "dictionary_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            "abstract_filter": resolved_filter("auto")}


def run_iou_single(model, datasets: Sequence[SegDataset], out: str | os.PathLike, sources: Sequence[str],
                   head: str | None = None, preset: str | None = None, progress: bool = True,
                   dictionary: str | os.PathLike | None = None, overwrite: bool = False) -> str:
    """Evaluate every source on every dataset; return (and write) the Markdown table.

    ``dictionary``: the co-occurrence dictionary of the "cooc" source (default: the shipped
    ShapesWorld one), e.g. one built from a ShapesWorld 2 export's captions; recorded in its result.
    A result of the same settings is read back; one of other settings is a conflict, refused in
    one line before any work unless ``overwrite`` (a run folder holds one configuration)."""
    import sys

    from ..errors import OvssError
    from ..evaluation.store import conflict_message, differences
    from .openworld import evaluate_iou_single
    from ..segment import Segmenter, default_preset

    out = Path(out)
    cooc = _dictionary_record(dictionary) if "cooc" in sources else {}
    plan = []  # (dataset, segmenter, source, settings, result path, finished result or None)
    conflicts = []
    for ds in datasets:
        seg = Segmenter(model, head=head, preset=preset or default_preset(model, ds.spec.name), dataset=ds.spec.name)
        base = {"dataset": ds.spec.name, "images": len(ds), "segmenter": seg.settings()}
        for source in sources:
            settings = json.loads(json.dumps({**base, **(cooc if source == "cooc" else {})}))
            path = out / ds.spec.name / "iou_single" / f"{Path(source).stem}.json"
            done = json.loads(path.read_text()) if path.is_file() else None
            if done is not None and done.get("run_settings") != settings:
                conflicts.append((path, differences(done.get("run_settings") or {}, settings)))
                done = None
            plan.append((ds, seg, source, settings, path, done))
    if conflicts and not overwrite:
        raise OvssError(conflict_message(out, conflicts), param="overwrite")
    if conflicts:
        print(f"ovss bench: overwrite: replacing {len(conflicts)} IoU-single result(s) of another configuration "
              f"in {out}", file=sys.stderr)
    rows: dict[str, dict[str, float]] = {}
    loaded, items = None, []  # one dataset's images in memory at a time (the plan is by dataset)
    for ds, seg, source, settings, path, done in plan:
        if done is not None:
            rows.setdefault(ds.spec.name, {})[source] = done["mIoU_single"]
            continue
        if loaded is not ds:
            loaded, items = ds, [ds[i] for i in range(len(ds))]
        options = {"dictionary": dictionary} if source == "cooc" and dictionary is not None else {}
        result = evaluate_iou_single(seg, items, ds.classes, source, background_index=ds.background_index,
                                     ignore_index=ds.ignore_index, progress=progress, **options)
        result["run_settings"] = settings
        write_json(path, result)
        rows.setdefault(ds.spec.name, {})[source] = result["mIoU_single"]
    lines = ["| dataset | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{vals[s]:.2f}" for s in sources) + " |")
    text = "mIoU-single (%), each class present in an image queried alone, by concept source:\n\n" + "\n".join(lines) + "\n"
    write_text(out / "iou_single.md", text)
    return text
