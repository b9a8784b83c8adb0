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
    """What identifies the co-occurrence dictionary in a result: its path and content hash."""
    if dictionary is None:
        return {"dictionary": "shipped"}
    import hashlib

    from ..errors import OvssError

    from .cooccurrence import SHIPPED

    path = SHIPPED.get(str(dictionary), Path(dictionary))
    if not path.is_file():
        raise OvssError(f"co-occurrence dictionary {path} not found; build one with `ovss concepts build`")
    name = f"{dictionary} (shipped)" if str(dictionary) in SHIPPED else str(path.resolve())
    return {"dictionary": name, "dictionary_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


def run_iou_single(model, datasets: Sequence[SegDataset], out: str | os.PathLike, sources: Sequence[str],
                   head: str | None = None, preset: str | None = None, progress: bool = True,
                   dictionary: str | os.PathLike | None = None) -> str:
    """Evaluate every source on every dataset; return (and write) the Markdown table.

    ``dictionary``: the co-occurrence dictionary of the "cooc" source (default: the shipped
    ShapesWorld one), e.g. one built from a ShapesWorld 2 export's captions; recorded in its result."""
    from .openworld import evaluate_iou_single
    from ..segment import Segmenter, default_preset

    out = Path(out)
    rows: dict[str, dict[str, float]] = {}
    for ds in datasets:
        seg = Segmenter(model, head=head, preset=preset or default_preset(model, ds.spec.name), dataset=ds.spec.name)
        settings = {"dataset": ds.spec.name, "images": len(ds), "segmenter": seg.settings()}
        items = None
        cooc = _dictionary_record(dictionary) if "cooc" in sources else {}
        for source in sources:
            settings = {k: v for k, v in settings.items() if k not in ("dictionary", "dictionary_sha256")}
            if source == "cooc":
                settings.update(cooc)
            path = out / ds.spec.name / "iou_single" / f"{Path(source).stem}.json"
            if path.is_file():
                done = json.loads(path.read_text())
                if done.get("run_settings") == json.loads(json.dumps(settings)):
                    rows.setdefault(ds.spec.name, {})[source] = done["mIoU_single"]
                    continue
            items = items if items is not None else [ds[i] for i in range(len(ds))]
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
