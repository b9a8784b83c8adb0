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


def run_iou_single(model, datasets: Sequence[SegDataset], out: str | os.PathLike, sources: Sequence[str],
                   head: str | None = None, preset: str | None = None, progress: bool = True) -> str:
    """Evaluate every source on every dataset; return (and write) the Markdown table."""
    from .openworld import evaluate_iou_single
    from ..segment import Segmenter, default_preset

    out = Path(out)
    rows: dict[str, dict[str, float]] = {}
    for ds in datasets:
        seg = Segmenter(model, head=head, preset=preset or default_preset(model, ds.spec.name), dataset=ds.spec.name)
        settings = {"dataset": ds.spec.name, "images": len(ds), "segmenter": seg.settings()}
        items = None
        for source in sources:
            path = out / ds.spec.name / "iou_single" / f"{Path(source).stem}.json"
            if path.is_file():
                done = json.loads(path.read_text())
                if done.get("run_settings") == json.loads(json.dumps(settings)):
                    rows.setdefault(ds.spec.name, {})[source] = done["mIoU_single"]
                    continue
            items = items if items is not None else [ds[i] for i in range(len(ds))]
            result = evaluate_iou_single(seg, items, ds.classes, source, background_index=ds.background_index,
                                         ignore_index=ds.ignore_index, progress=progress)
            result["run_settings"] = settings
            write_json(path, result)
            rows.setdefault(ds.spec.name, {})[source] = result["mIoU_single"]
    lines = ["| dataset | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{vals[s]:.2f}" for s in sources) + " |")
    text = "mIoU-single (%), each class present in an image queried alone, by concept source:\n\n" + "\n".join(lines) + "\n"
    write_text(out / "iou_single.md", text)
    return text
