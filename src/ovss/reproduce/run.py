"""``reproduce_table``: run one published table's protocol and put ovss's numbers beside the paper's.

Each runnable column is one configuration and gets its own run folder, ``RUN/{column}/``, run by
the benchmark runner (``evaluation.runner.run_benchmark``): a rerun skips finished scenarios and
resumes unfinished ones, and under ``torchrun`` the images are sharded across processes. The
comparison is written beside them: ``RUN/reproduce.{md,csv,json,png}``.

Data: ``data_root`` is the one folder that holds the datasets, as ``ovss data prepare NAME --from
DOWNLOADS --out ROOT`` writes them (``ROOT/VOCdevkit/VOC2012``, ``ROOT/coco_stuff164k``, ...; the
dataset finds its folder below ROOT), or a dataset's own root. ShapesWorld is looked for in
``ROOT/shapesworld``, then ROOT. Every missing dataset is one line naming the command that makes
it, before the model runs.
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Sequence

from ..data import DATASETS
from ..errors import OvssError
from ..evaluation.runner import open_dataset, run_benchmark
from ..outputs import as_job
from ..files import JSON_MARK_KEY, OVSS_MARK, atomic_write, write_json, write_text, written_by_ovss
from .tables import Column, Table, average_members, get_table

OUTPUTS = ("reproduce.json", "reproduce.md", "reproduce.csv", "reproduce.png")


def select(table: Table, rows: Sequence[str] | None = None, columns: Sequence[str] | None = None
           ) -> tuple[list[str], list[Column]]:
    """The rows and runnable columns to run (all by default); unknown names are one line."""
    if not table.spec.runnable:
        raise OvssError(f"table {table.name} is reference only: {table.spec.why_not}")
    runnable = table.runnable_columns()
    if not runnable:
        raise OvssError(f"table {table.name} has no column ovss can run (no ovss preset reproduces its settings)")
    chosen_rows = [r for r in table.rows if r != "average"]
    if rows:
        wanted = [r.strip().lower() for r in rows if r.strip()]
        bad = [r for r in wanted if r not in chosen_rows]
        if bad:
            raise OvssError(f"table {table.name} has no row {', '.join(bad)}; rows: {', '.join(chosen_rows)}", param="rows")
        chosen_rows = [r for r in chosen_rows if r in wanted]
    chosen_cols = runnable
    if columns:
        by_name = {c.name.lower(): c for c in runnable}
        wanted = [c.strip().lower() for c in columns if c.strip()]
        bad = [c for c in wanted if c not in by_name]
        if bad:
            raise OvssError(f"table {table.name} has no runnable column {', '.join(bad)}; "
                            f"columns: {', '.join(c.name for c in runnable)}", param="columns")
        chosen_cols = [c for c in runnable if c.name.lower() in wanted]
    return chosen_rows, chosen_cols


def _runnable(table: Table, row: str, col: Column) -> bool:
    cell = table.cell(row, col.name)
    dataset = row if table.spec.rows_are == "dataset" else table.datasets[0]
    return cell is not None and bool(cell.protocol) and dataset in DATASETS


def dataset_roots(table: Table, data_root: str | os.PathLike, datasets: Sequence[str]) -> dict[str, Path]:
    """``ROOT/{dataset}`` where that folder exists, else ``ROOT`` (below which each dataset finds its
    own folder); every dataset that does not open is one line naming the command that makes it
    (raised together, before any model runs)."""
    base = Path(data_root).expanduser()
    roots, missing = {}, []
    for name in datasets:
        root = base / name if (base / name).is_dir() else base
        try:
            open_dataset(name, root, "val", table.spec.limit)
        except OvssError as e:
            make = (table.spec.prepare.format(root=base / name) if table.spec.prepare
                    else f"ovss data prepare {name} --from DOWNLOADS --out {base}")
            why = str(e).split(" (diagnose")[0].split("; how to prepare")[0]
            missing.append(f"{name}: not found under {base} ({why}); make it with `{make}`")
            continue
        wrong = _wrong_world(table, root)
        if wrong:
            missing.append(f"{name}: {root} is a {wrong} export; the table is measured on "
                           f"{_table_world(table)}: make it with `{table.spec.prepare.format(root=base / name)}`")
            continue
        roots[name] = root
    if missing:
        raise OvssError(f"{len(missing)} dataset(s) of table {table.name} missing:\n  " + "\n  ".join(missing),
                        param="data_root")
    return roots


def _table_world(table: Table) -> str | None:
    from ..model import EMBEDDED_WORLDS

    return EMBEDDED_WORLDS.get(table.spec.embedded_tag) if table.spec.embedded_tag else None


def _wrong_world(table: Table, root: Path) -> str | None:
    """The world of an export at ``root`` when it is not the one the table's embedded weights know
    (a ShapesWorld 2 export given to a ShapesWorld table gives numbers, all wrong), else None."""
    from ..world.export import export_world

    want, have = _table_world(table), export_world(root)
    return have if want is not None and have is not None and have != want else None


def check_run_folder(out: str | os.PathLike, table: Table) -> None:
    """Never write over a comparison ovss did not write, nor over another table's."""
    out = Path(out)
    record = out / OUTPUTS[0]
    if record.exists():
        if not written_by_ovss(record):
            raise OvssError(f"refusing to write over {record}: ovss did not write it; choose another out folder", param="out")
        import json

        previous = json.loads(record.read_text(encoding="utf-8")).get("table")
        if previous != table.name:
            raise OvssError(f"{out} holds table {previous}; reproduce {table.name} into another out folder", param="out")
    else:
        for name in OUTPUTS[1:]:
            if (out / name).exists():
                raise OvssError(f"refusing to write over {out / name}: ovss did not write it; choose another out folder",
                                param="out")


@as_job("reproduce")  # called from Python, its files (the columns' bench results too) name a reproduce job
def reproduce_table(
    name: str,
    model,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    rows: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    workers: int = 2,
    progress: bool = True,
    overwrite: bool = False,
    second_weights: str | None = None,
) -> dict:
    """Run table ``name`` (or the chosen ``rows`` / ``columns`` of it) and write the comparison.

    ``limit``: evaluate only the first N images (a smoke run; recorded, and the comparison says it
    is not the source's protocol). ``second_weights``: the DINO checkpoint for ProxyCLIP columns.
    Call it on every rank of a distributed run; rank 0 writes the comparison and gets it back.
    """
    from ..evaluation.distributed import rank_world

    table = get_table(name)
    chosen_rows, chosen_cols = select(table, rows, columns)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise OvssError(f"limit must be a positive number of images, got {limit!r}", param="limit")
    want = table.spec.model or "ovss-tiny"
    info = model.describe()
    if info.get("model") != want:
        raise OvssError(f"table {table.name} is measured with {want}; the model given is {info.get('model')}", param="model")
    tag = table.spec.embedded_tag
    if table.spec.model is None and info.get("pretrained") != tag:  # the docs' figures: these embedded weights
        raise OvssError(f"table {table.name} is measured with the embedded ovss-tiny weights {tag!r}, "
                        f"not {info.get('pretrained')!r}", param="pretrained")
    if second_weights is None and any(c.protocol == "proxyclip" for c in chosen_cols):
        raise OvssError("ProxyCLIP columns need the DINO checkpoint: pass second_weights (dino_vitbase8_pretrain.pth)",
                        param="second_weights")
    images = limit if limit is not None else table.spec.limit
    if table.spec.rows_are == "dataset":
        datasets = [r for r in chosen_rows if any(_runnable(table, r, c) for c in chosen_cols)]
    else:
        datasets = table.datasets[:1]
    roots = dataset_roots(table, data_root, datasets)
    check_run_folder(out, table)
    out = Path(out)

    from ..adaptation import get_method

    for col in chosen_cols:
        runs = [d for d in datasets if table.spec.rows_are == "scenario" or _runnable(table, d, col)]
        if not runs:
            continue
        corruptions = ("original",) if table.spec.rows_are == "dataset" else [r for r in chosen_rows if _runnable(table, r, col)]
        method = get_method(col.method, protocol=col.protocol)  # as `ovss bench --preset P --methods M`
        seeds = table.spec.seeds if col.method != "none" else (0,)
        overrides = {"second_weights": second_weights} if second_weights is not None else {}
        run_benchmark(
            model, [(d, roots[d]) for d in runs], out / col.folder, corruptions=corruptions, methods=[method],
            seeds=seeds, limit=images, workers=workers, head=col.head, preset=col.protocol, progress=progress,
            overwrite=overwrite, **overrides,
        )
    rank, _ = rank_world()
    if rank != 0:
        return {}
    # columns run earlier into this folder stay in the comparison
    shown = [c for c in table.runnable_columns() if c in chosen_cols or (out / c.folder).is_dir()]
    return write_comparison(table, out, chosen_rows, shown, images, model.describe())


@as_job("reproduce")
def report_table(name: str, out: str | os.PathLike) -> dict:
    """Rebuild ``RUN/reproduce.*`` from the result JSONs already in ``out`` (no model, no data):
    every row of the table, every column that has a run folder."""
    import json

    table = get_table(name)
    out = Path(out)
    check_run_folder(out, table)
    shown = [c for c in table.runnable_columns() if (out / c.folder).is_dir()]
    if not shown:
        raise OvssError(f"{out} holds no results of table {table.name}; run it first", param="out")
    record = out / OUTPUTS[0]
    previous = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
    rows = [r for r in table.rows if r != "average"]
    images = previous.get("images_per_dataset", table.spec.limit)
    return write_comparison(table, out, rows, shown, images, previous.get("model", {}))


def measured_value(run: Path, dataset: str, method: str, scenario: str) -> tuple[float | None, int]:
    """Mean mIoU over the seeds found for one cell (None when the cell has not run), and the seed count."""
    import json

    folder = run / dataset / method
    files = sorted(folder.glob(f"{scenario}.json")) + sorted(folder.glob(f"{scenario}.seed*.json"))
    values = []
    for f in files:
        v = json.loads(f.read_text(encoding="utf-8"))["metrics"]["mIoU"]
        if v is not None:
            values.append(float(v))
    return (sum(values) / len(values) if values else None), len(values)


def compare(table: Table, out: Path, rows: list[str], cols: list[Column]) -> list[dict]:
    """One record per (row, column) shown: published, measured, delta (measured - published)."""
    records = []
    for col in table.columns:
        if col not in cols and col.protocol:
            continue
        measured_rows = {}
        for row in rows:
            cell = table.cell(row, col.name)
            dataset = row if table.spec.rows_are == "dataset" else table.datasets[0]
            scenario = "original" if table.spec.rows_are == "dataset" else row
            measured, seeds = (None, 0)
            if col.protocol and cell is not None and cell.protocol:
                measured, seeds = measured_value(out / col.folder, dataset, col.method, scenario)
            measured_rows[row] = measured
            records.append(_record(row, col, cell, measured, seeds))
        if "average" in table.rows:
            members = average_members(table)
            vals = [measured_rows.get(m) for m in members]
            avg = sum(vals) / len(vals) if vals and all(v is not None for v in vals) else None
            records.append(_record("average", col, table.cell("average", col.name), avg, None))
    return records


def _record(row: str, col: Column, cell, measured: float | None, seeds: int | None) -> dict:
    published = cell.value if cell is not None else None
    delta = measured - published if measured is not None and published is not None else None
    return {
        "row": row, "column": col.name, "protocol": col.protocol or None, "head": col.head,
        "published": published, "published_text": cell.text if cell is not None else "",
        "measured": measured, "delta": delta, "seeds": seeds,
        "source": cell.source if cell is not None else "", "note": cell.note if cell is not None else "",
    }


def _fmt(v: float | None, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    v = round(v, 2) + 0.0  # no "-0.00"
    return f"{v:+.2f}" if sign and v != 0 else f"{v:.2f}"


def markdown(table: Table, records: list[dict], images: int | None) -> str:
    cols = list(dict.fromkeys(r["column"] for r in records))
    rows = list(dict.fromkeys(r["row"] for r in records))
    by = {(r["row"], r["column"]): r for r in records}
    lines = [f"### {table.name}: {table.spec.paper}, {table.spec.table}", "",
             "measured | published | delta (mIoU %, delta = measured - published); '-': not run or not published", "",
             "| row | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            r = by.get((row, c))
            cells.append("" if r is None else f"{_fmt(r['measured'])} \\| {r['published_text'] or '-'} \\| {_fmt(r['delta'], True)}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines.append("")
    if images is not None and images != table.spec.limit:
        lines.append(f"Not the source's protocol: only the first {images} images of each dataset were evaluated.")
    sources = list(dict.fromkeys(r["source"] for r in records if r["source"]))
    lines += ["Sources:"] + [f"- {s}" for s in sources] + [""]
    return "\n".join(lines)


def csv_text(records: list[dict]) -> str:
    buf = io.StringIO()
    fields = ["row", "column", "protocol", "head", "measured", "published", "delta", "seeds", "source"]
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({**r, "measured": _fmt(r["measured"]), "published": r["published_text"], "delta": _fmt(r["delta"], True)})
    return buf.getvalue()


def scatter(path: Path, table: Table, records: list[dict]) -> Path:
    """Measured against published, one colour per column, the diagonal for equality; PNG, atomic."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    pairs = [r for r in records if r["measured"] is not None and r["published"] is not None]
    hi = max([max(r["measured"], r["published"]) for r in pairs] + [1.0]) * 1.05
    ax.plot([0, hi], [0, hi], color="0.6", lw=1, ls="--", label="equal")
    for col in dict.fromkeys(r["column"] for r in pairs):
        pts = [r for r in pairs if r["column"] == col]
        ax.scatter([r["published"] for r in pts], [r["measured"] for r in pts], s=18, label=col)
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("published mIoU (%)")
    ax.set_ylabel("measured by ovss (%)")
    ax.set_title(f"{table.name}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def write_comparison(table: Table, out: Path, rows: list[str], cols: list[Column], images: int | None,
                     model_info: dict) -> dict:
    """``RUN/reproduce.{json,md,csv,png}`` from the result JSONs found in the column folders."""
    records = compare(table, out, rows, cols)
    text = markdown(table, records, images)
    data = {
        JSON_MARK_KEY: OVSS_MARK, "table": table.name, "paper": table.spec.paper, "source_table": table.spec.table,
        "model": model_info, "images_per_dataset": images, "protocol_images": table.spec.limit,
        "rows": rows, "columns": [{"name": c.name, "protocol": c.protocol, "head": c.head, "method": c.method,
                                   "seeds": list(table.spec.seeds if c.method != "none" else (0,)),
                                   "run_folder": c.folder} for c in cols],
        "cells": records,
    }
    write_json(out / "reproduce.json", data)
    write_text(out / "reproduce.md", text)
    write_text(out / "reproduce.csv", csv_text(records))
    scatter(out / "reproduce.png", table, records)
    return {**data, "markdown": text}
