"""published.csv: its schema, a source on every row, and values checked by hand against the sources."""
import csv
import statistics

import pytest

from ovss.corruptions import CORRUPTION_NAMES
from ovss.data import DATASETS
from ovss.errors import OvssError
from ovss.reproduce import FIELDS, PUBLISHED_CSV, SPECS, get_table, load_published
from ovss.segment.presets import PRESETS

ROWS = load_published()
CONCEPTS = {"background", "cooc", "llm", "oracle"}


def test_schema_and_a_source_on_every_row():
    with open(PUBLISHED_CSV, newline="", encoding="utf-8") as f:
        assert tuple(csv.DictReader(f).fieldnames) == FIELDS
    assert len(ROWS) > 400
    for r in ROWS:
        assert r.source.strip(), r
        assert r.table in SPECS, r
        assert r.value is not None or r.note.strip(), r  # a number not found says why
        assert r.scenario in {"original", "average"} | set(CORRUPTION_NAMES) | CONCEPTS, r
        if r.protocol:  # a runnable cell names a preset ovss has, on a dataset ovss has
            assert r.protocol in PRESETS, r
            assert r.dataset in DATASETS or r.dataset == "average", r


def test_every_table_has_cells_and_the_seven_heads_and_mlmp_are_listed():
    for name in SPECS:
        assert get_table(name).cells, name
    methods_b16 = {r.method for r in ROWS if r.backbone == "ViT-B/16"}
    assert {"SCLIP", "ClearCLIP", "NACLIP", "GEM", "SC-CLIP", "NACLIP+ResCLIP", "ProxyCLIP"} <= methods_b16
    eight = {"voc21", "context60", "coco_object", "voc20", "context59", "coco_stuff164k", "cityscapes", "ade20k"}
    for table in ("naclip-readme", "sclip-readme", "resclip-vitb16", "gem-vitb16", "scclip-vitb16", "proxyclip-vitb16"):
        assert eight <= set(get_table(table).datasets), table
    assert len(get_table("mlmp-v20c").cells) == 6 * 17


@pytest.mark.parametrize("table, method, row, text", [
    ("naclip-readme", "NACLIP", "voc21", "64.07"),  # NACLIP README @ 0cac3a6
    ("naclip-readme", "NACLIP", "average", "42.46"),
    ("sclip-readme", "SCLIP", "ade20k", "16.45"),  # SCLIP README @ 5f69176
    ("resclip-vitb16", "NACLIP+ResCLIP", "voc20", "86.0"),  # ResCLIP figs/main_results_wo.png
    ("resclip-vitb16", "NACLIP", "voc21", "58.9"),  # figs/main_results_w.png
    ("resclip-vitl14", "ClearCLIP+ResCLIP", "cityscapes", "34.1"),
    ("clearclip-appendix-vitb16", "GEM", "voc20", "79.9"),  # ClearCLIP assets/results.png
    ("clearclip-appendix-vitl14", "ClearCLIP", "ade20k", "15.0"),
    ("proxyclip-vitb16", "ProxyCLIP", "context59", "39.1"),  # Trident assets/data_result.png
    ("proxyclip-vitb16", "ProxyCLIP (OpenCLIP ViT-H/14)", "average", "44.4"),
    ("mlmp-v20c", "mlmp", "original", "83.76"),  # MLMP README (shared/papers/000)
    ("mlmp-v20c", "tent", "original", "77"),
    ("shapesworld-heads", "naclip", "original", "44.86"),  # docs/benchmarks.md
    ("shapesworld-c", "clearclip", "average", "25.41"),
])
def test_hand_checked_values(table, method, row, text):
    cell = get_table(table).cell(row, method)
    assert cell is not None and cell.text == text and cell.value == float(text)


def test_not_found_is_empty_with_a_note():
    cells = [c for c in get_table("scclip-vitb16").cells if c.dataset != "average"]
    assert len(cells) == 8 and all(c.value is None and "not found" in c.note for c in cells)
    assert get_table("scclip-vitb16").cell("average", "SC-CLIP").text == "43.9"  # SC-CLIP (TIP 2025), Sec. IV-B
    gem = get_table("gem-vitb16")
    assert [c.dataset for c in gem.cells if c.value is None] == ["coco_object", "voc20", "context59", "coco_stuff164k",
                                                                  "cityscapes", "ade20k"]


def test_published_eight_dataset_averages_are_the_mean():
    """NACLIP's README and Trident's ProxyCLIP rows print an average of the eight datasets: it must be
    the mean of the transcribed cells (to the printed rounding)."""
    for table, method, abs_ in [("naclip-readme", "NACLIP", 0.006), ("proxyclip-vitb16", "ProxyCLIP", 0.06),
                                ("proxyclip-vitb16", "ProxyCLIP (OpenCLIP ViT-H/14)", 0.06)]:
        t = get_table(table)
        cells = [c.value for c in t.cells if c.method == method and c.dataset not in ("average", "coco_stuff10k")]
        assert len(cells) == 8
        assert statistics.fmean(cells) == pytest.approx(t.cell("average", method).value, abs=abs_), (table, method)


@pytest.mark.parametrize("table", ["mlmp-v20c", "shapesworld-c", "shapesworld-heads"])
def test_published_averages_are_the_mean_of_the_15_corruptions(table):
    """A transcription check: each source's average row equals the mean of its 15 corruption rows."""
    t = get_table(table)
    for col in t.columns:
        values = [t.cell(c, col.name).value for c in CORRUPTION_NAMES]
        assert statistics.fmean(values) == pytest.approx(t.cell("average", col.name).value, abs=0.006), col.name


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


BASE = dict(table="t", method="m", backbone="b", dataset="voc21", scenario="original", protocol="naclip", head="",
            metric="mIoU", value="1.5", source="s", note="")


@pytest.mark.parametrize("change, message", [
    ({"source": ""}, "needs a source"),
    ({"value": "abc"}, "must be a number or empty"),
    ({"value": ""}, "needs a note"),
    ({"metric": "acc"}, "metric must be one of"),
])
def test_bad_rows_are_one_line(tmp_path, change, message):
    _write(tmp_path / "p.csv", [{**BASE, **change}])
    with pytest.raises(OvssError, match=message):
        load_published(tmp_path / "p.csv")


def test_a_cell_listed_twice_is_refused(tmp_path):
    _write(tmp_path / "p.csv", [BASE, BASE])
    with pytest.raises(OvssError, match="listed twice"):
        load_published(tmp_path / "p.csv")


def test_docs_protocols_resclip_table_is_the_csv():
    """docs/protocols.md prints ResCLIP's published rows; they must be published.csv's, cell by cell."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "protocols.md").read_text(encoding="utf-8")
    order = ["voc21", "context60", "coco_object", "voc20", "context59", "coco_stuff164k", "cityscapes", "ade20k"]
    names = {"NACLIP + ResCLIP": "NACLIP+ResCLIP", "SCLIP + ResCLIP": "SCLIP+ResCLIP", "ClearCLIP + ResCLIP": "ClearCLIP+ResCLIP"}
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ViT-")]
    assert len(rows) == 6
    for backbone, method, *values in rows:
        table = get_table("resclip-vitb16" if backbone.strip() == "ViT-B/16" else "resclip-vitl14")
        for dataset, value in zip(order, values):
            assert table.cell(dataset, names[method.split("(")[0].strip()]).text == value.strip(), (backbone, method, dataset)
