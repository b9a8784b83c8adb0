"""Summaries of a benchmark run in MLMP's layout: Markdown, CSV and a bar chart per dataset.

One table per dataset. Rows: Original, each corruption present (in ImageNet-C order, title case as
MLMP writes them), and "DATASET-C (Average)", the mean over the corruption rows present.
Columns: methods ("NoAdapt." for none). Cells: mIoU in percent with 2 decimals; with several seeds,
mean ± std over seeds (population std, ``np.std``, as MLMP reports its 3 trials). The average row of
a seed is taken first, then mean ± std over seeds.

Everything is read back from the per-scenario JSONs, so ``ovss bench --report-only`` rebuilds the
summary of any run folder, finished or not.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..corruptions import CORRUPTION_NAMES
from ..errors import OvssError
from ..files import atomic_write, write_text

ROW_TITLES = {"original": "Original", "jpeg_compression": "JPEG Compression"}
AVERAGE = "average"
SEED_COLUMNS = ("none", "tent", "tpt", "watt", "clipartt", "mlmp")  # MLMP's column order; others follow


def row_title(corruption: str) -> str:
    return ROW_TITLES.get(corruption, corruption.replace("_", " ").title())


def average_title(dataset: str) -> str:
    return f"{dataset.upper()}-C (Average)"


def method_title(method: str) -> str:
    """The column name: the method class's ``title`` if it has one, else the upper-case name."""
    from ..adaptation import METHODS

    cls = METHODS.get(method)
    return getattr(cls, "title", None) or ("NoAdapt." if method == "none" else method.upper())


def load_results(run_dir: str | os.PathLike) -> list[dict]:
    """Every result JSON under ``RUN/{dataset}/{method}/``; one per (dataset, method, corruption, seed),
    the newest file when a scenario was written under both seed namings."""
    run_dir = Path(run_dir)
    found: dict[tuple, tuple[float, dict]] = {}
    for path in sorted(run_dir.glob("*/*/*.json")):
        if path.parts[-3].startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            sc = data["scenario"]
            key = (sc["dataset"], sc["method"], sc["corruption"], int(sc["seed"]))
            if "mIoU" not in data["metrics"]:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a result file
        mtime = path.stat().st_mtime
        if key not in found or mtime > found[key][0]:
            found[key] = (mtime, data)
    return [data for _, data in found.values()]


def summarize(results: list[dict]) -> dict[str, dict]:
    """dataset -> {"methods": [...], "rows": [corruption..., "average"], "cells": {(row, method): [mIoU per seed]},
    "seeds": sorted seeds, "corruptions": number of corruption rows}."""
    from ..adaptation import METHODS

    by_dataset: dict[str, dict[tuple[str, str, int], float]] = {}
    counts: dict[str, dict[str, set[int]]] = {}  # dataset -> corruption -> image counts of its results
    for r in results:
        sc = r["scenario"]
        miou = r["metrics"]["mIoU"]
        by_dataset.setdefault(sc["dataset"], {})[(sc["corruption"], sc["method"], int(sc["seed"]))] = (
            math.nan if miou is None else float(miou))
        n = result_images(r)
        if n is not None:
            counts.setdefault(sc["dataset"], {}).setdefault(sc["corruption"], set()).add(n)
    order = {name: i for i, name in enumerate(dict.fromkeys([*SEED_COLUMNS, *METHODS]))}
    summary = {}
    for dataset in sorted(by_dataset):
        values = by_dataset[dataset]
        methods = sorted({m for _, m, _ in values}, key=lambda m: (order.get(m, len(order)), m))
        present = {c for c, _, _ in values}
        corruptions = [c for c in CORRUPTION_NAMES if c in present]
        rows = (["original"] if "original" in present else []) + corruptions
        seeds = sorted({s for _, _, s in values})
        cells: dict[tuple[str, str], list[float]] = {}
        cell_seeds: dict[tuple[str, str], list[int]] = {}  # the seeds each cell is over (a folder may mix)
        for row in rows:
            for m in methods:
                cell_seeds[(row, m)] = [s for s in seeds if (row, m, s) in values]
                cells[(row, m)] = [values[(row, m, s)] for s in cell_seeds[(row, m)]]
        if corruptions:
            rows.append(AVERAGE)
            for m in methods:
                per_seed, over = [], []
                for s in seeds:
                    got = [values[(c, m, s)] for c in corruptions if (c, m, s) in values]
                    if got:
                        per_seed.append(float(np.mean(got)))
                        over.append(s)
                cells[(AVERAGE, m)] = per_seed
                cell_seeds[(AVERAGE, m)] = over
        images = {row: set(counts.get(dataset, {}).get(row, set())) for row in rows if row != AVERAGE}
        if corruptions:
            images[AVERAGE] = set().union(*(images[c] for c in corruptions))
        summary[dataset] = {"methods": methods, "rows": rows, "cells": cells, "cell_seeds": cell_seeds, "seeds": seeds,
                            "corruptions": len(corruptions), "images": images}
    return summary


def result_images(result: dict) -> int | None:
    """How many images a result was computed on (its timing, else its settings)."""
    for value in ((result.get("timing") or {}).get("images"), (result.get("settings") or {}).get("images")):
        if isinstance(value, int):
            return value
    return None


def images_text(counts: set[int]) -> str:
    """The image count of a row; several counts (a folder mixing runs) are all shown, never hidden."""
    return "/".join(str(n) for n in sorted(counts)) if counts else "?"


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population std (ddof 0) of the values; NaN when there are none."""
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def cell_text(values: list[float], over: list[int] | None = None, seeds: list[int] | None = None) -> str:
    """Mean (± std over seeds); a cell over fewer seeds than its table names them, e.g. "41.20 (seed 0)"."""
    if not values:
        return "-"
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "n/a"
    text = f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"
    if over is not None and seeds is not None and len(seeds) > 1 and list(over) != list(seeds):
        text += f" (seed{'s' if len(over) > 1 else ''} {', '.join(map(str, over))})"
    return text


def markdown(summary: dict[str, dict]) -> str:
    """One Markdown table per dataset, in MLMP's layout."""
    blocks = []
    for dataset, s in summary.items():
        titles = [method_title(m) for m in s["methods"]]
        lines = [f"### {dataset}", "", "| Corruption | Images | " + " | ".join(titles) + " |",
                 "|---|---|" + "---|" * len(titles)]
        images = s.get("images", {})
        for row in s["rows"]:
            title = average_title(dataset) if row == AVERAGE else row_title(row)
            lines.append(f"| {title} | {images_text(images.get(row, set()))} | "
                         + " | ".join(cell_text(s["cells"][(row, m)], s.get("cell_seeds", {}).get((row, m)), s["seeds"])
                                      for m in s["methods"]) + " |")
        notes = ["mIoU (%)"]
        if any(len(v) > 1 for v in images.values()):
            notes.append("WARNING: rows computed on different image counts are mixed in this folder")
        if len(s["seeds"]) > 1:
            partial = any(list(v) != list(s["seeds"]) for v in s.get("cell_seeds", {}).values() if v)
            notes.append(f"mean ± std over seeds {', '.join(map(str, s['seeds']))}"
                         + ("; a cell over fewer seeds names them" if partial else ""))
        if 0 < s["corruptions"] < len(CORRUPTION_NAMES):
            notes.append(f"average over the {s['corruptions']} of {len(CORRUPTION_NAMES)} corruptions present")
        lines += ["", "; ".join(notes) + "."]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def csv_text(summary: dict[str, dict]) -> str:
    """The same tables as CSV: dataset, Corruption, one column per method (and "<method> std" with several seeds)."""
    methods: list[str] = []
    for s in summary.values():
        methods += [m for m in s["methods"] if m not in methods]
    several = any(len(s["seeds"]) > 1 for s in summary.values())
    header = ["dataset", "Corruption", "images"]
    for m in methods:
        header += [method_title(m)] + ([f"{method_title(m)} std"] if several else [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for dataset, s in summary.items():
        for row in s["rows"]:
            line = [dataset, average_title(dataset) if row == AVERAGE else row_title(row),
                    images_text(s.get("images", {}).get(row, set()))]
            for m in methods:
                mean, std = mean_std(s["cells"].get((row, m), []))
                line.append("" if math.isnan(mean) else f"{mean:.2f}")
                if several:
                    line.append("" if math.isnan(std) else f"{std:.2f}")
            writer.writerow(line)
    return buf.getvalue()


def bar_chart(path: str | os.PathLike, dataset: str, s: dict) -> Path:
    """Grouped bars of mIoU per scenario (x) and method (colour), std as error bars; PNG, atomic."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, methods = s["rows"], s["methods"]
    labels = [average_title(dataset) if r == AVERAGE else row_title(r) for r in rows]
    fig = Figure(figsize=(min(18.0, max(6.0, 3 + 0.3 * len(rows) * max(1, len(methods)))), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(rows))
    for i, m in enumerate(methods):
        stats = [mean_std(s["cells"][(r, m)]) for r in rows]
        means = [0.0 if math.isnan(a) else a for a, _ in stats]
        errs = [0.0 if math.isnan(b) else b for _, b in stats] if len(s["seeds"]) > 1 else None
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, means, width, yerr=errs, capsize=2, label=method_title(m))
    ax.set_xticks(x)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{dataset}: mIoU per scenario")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def cost_markdown(results: list[dict]) -> str:
    """MLMP's cost table: per method, adaptation and evaluation seconds per image, peak
    memory and learnable parameters, averaged over the scenarios that recorded them."""
    rows: dict[str, list[dict]] = {}
    for r in results:
        if r.get("cost") and r["cost"].get("images"):
            rows.setdefault(r["scenario"]["method"], []).append(r["cost"])
    if not rows:
        return ""
    lines = ["| method | adapt s / image | eval s / image | peak memory MB | learnable parameters |", "|---|---|---|---|---|"]
    for method, costs in rows.items():
        mean = lambda key: sum(c[key] for c in costs) / len(costs)  # noqa: E731
        peak = max(c["peak_memory_mb"] or 0 for c in costs)
        lines.append(f"| {method_title(method)} | {mean('adapt_seconds_per_image'):.3f} | {mean('eval_seconds_per_image'):.3f} "
                     f"| {peak:.0f} | {costs[0]['learnable_params']} |")
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | os.PathLike, results: list[dict] | None = None) -> str:
    """Write RUN/summary.md, RUN/summary.csv and RUN/{dataset}_bar.png; return the Markdown."""
    run_dir = Path(run_dir)
    results = load_results(run_dir) if results is None else results
    if not results:
        raise OvssError(f"no benchmark results under {run_dir}; run the benchmark into that folder first")
    summary = summarize(results)
    text = markdown(summary)
    cost = cost_markdown(results)
    if cost:
        text += "\nCost per image (rank 0's share; memory: peak resident set on CPU, allocated on CUDA):\n\n" + cost
    write_text(run_dir / "summary.md", text)
    write_text(run_dir / "summary.csv", csv_text(summary))
    for dataset, s in summary.items():
        bar_chart(run_dir / f"{dataset}_bar.png", dataset, s)
    return text
