"""The published numbers ovss compares itself with: ``published.csv``, one row per cell.

Why a data file: every number has to carry where it was read (paper and table, or repository
README and commit), so that a reader can check it, and a test can check that no row lacks one.
A value left empty is a number that was looked for and not found; its ``note`` says why.

Columns:
  table     the ``ovss reproduce`` table the row belongs to
  method    the column of that table (a method as its paper names it, an adaptation method, or a head)
  backbone  as the source states it (ViT-B/16, ViT-L/14, ovss-tiny)
  dataset   an ovss dataset name (``ovss data list``), or a name ovss does not have (then not run)
  scenario  ``original``, a corruption, ``average`` (a row the table defines), or an IoU-single concept source
  protocol  the ovss preset that reproduces the source's settings; empty: ovss cannot run it
  head      the dense head when it is not the preset's own
  metric    mIoU or IoU-single (percent)
  value     the number exactly as printed; empty when not found
  source    where it was read
  note      what a reader needs to judge it
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import OvssError

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
FIELDS = ("table", "method", "backbone", "dataset", "scenario", "protocol", "head", "metric", "value", "source", "note")
METRICS = ("mIoU", "IoU-single")


@dataclass(frozen=True)
class Published:
    table: str
    method: str
    backbone: str
    dataset: str
    scenario: str
    protocol: str
    head: str
    metric: str
    value: float | None
    text: str  # the value as printed ("77", "64.07"): its number of decimals says how it was rounded
    source: str
    note: str

    @property
    def decimals(self) -> int:
        return len(self.text.partition(".")[2])


def load_published(path: str | os.PathLike | None = None) -> list[Published]:
    """Every row of ``published.csv`` (or ``path``), checked: the columns, a source on every row,
    a number or nothing in ``value``, and a note on every row without a value."""
    path = Path(path) if path is not None else PUBLISHED_CSV
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise OvssError(f"{path}: columns must be {', '.join(FIELDS)}, found {', '.join(reader.fieldnames or ())}")
        rows = []
        for i, r in enumerate(reader, start=2):
            where = f"{path}:{i}"
            if not r["source"].strip():
                raise OvssError(f"{where}: every published number needs a source")
            if r["metric"] not in METRICS:
                raise OvssError(f"{where}: metric must be one of {', '.join(METRICS)}, got {r['metric']!r}")
            text = r["value"].strip()
            try:
                value = float(text) if text else None
            except ValueError:
                raise OvssError(f"{where}: value must be a number or empty, got {text!r}") from None
            if value is None and not r["note"].strip():
                raise OvssError(f"{where}: a row without a value needs a note saying why")
            rows.append(Published(
                table=r["table"], method=r["method"], backbone=r["backbone"], dataset=r["dataset"],
                scenario=r["scenario"] or "original", protocol=r["protocol"], head=r["head"], metric=r["metric"],
                value=value, text=text, source=r["source"], note=r["note"],
            ))
    keys = [(r.table, r.method, r.dataset, r.scenario) for r in rows]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise OvssError(f"{path}: the cell {dup} is listed twice")
    return rows
