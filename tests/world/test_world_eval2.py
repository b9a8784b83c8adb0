"""``ovss world eval --world shapesworld2``: the model card's ShapesWorld 2 report, its per-class
table, and why it counts 500 scenes."""
import json

import numpy as np
import pytest

from ovss.cli import main
from ovss.tinyclip.quality2 import EVAL_SCENES, EVAL_SEED, benchmark_labels
from ovss.world.export import scene_seed
from ovss.world.sw2_classes import BENCHMARKS
from ovss.world.sw2_scene import make_scene2


def scene_counts(n: int, seed: int, benchmark: str = "sw2-20") -> np.ndarray:
    """In how many of the first ``n`` validation scenes each class of ``benchmark`` occurs, by hand."""
    counts = np.zeros(len(BENCHMARKS[benchmark]), dtype=int)
    for i in range(n):
        labels = benchmark_labels(make_scene2(scene_seed(seed, "val", i), 224).labels, benchmark)
        for k in set(labels.ravel().tolist()) - {255}:
            counts[k] += 1
    return counts


def test_report_on_the_shapesworld2_weights_with_per_class_table(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["world", "eval", "--world", "shapesworld2", "--n", "3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    # the shapesworld2 tag, not the default (ShapesWorld) weights, when --weights is left out
    assert report["model"]["pretrained"] == "shapesworld2"
    assert (report["n_scenes"], report["scene_seed"], report["head"]) == (3, EVAL_SEED, "naclip")
    per_class = report["per_class"]["sw2-20"]
    assert list(per_class) == list(BENCHMARKS["sw2-20"])
    assert [v["scenes"] for v in per_class.values()] == scene_counts(3, EVAL_SEED).tolist()
    # the mean of the classes that have an IoU is the mIoU
    ious = [v["iou"] for v in per_class.values() if v["iou"] is not None]
    assert report["miou"]["sw2-20"] == pytest.approx(sum(ious) / len(ious), abs=0.011)
    markdown = out.with_suffix(".md").read_text()
    assert "| sw2-20 |" in markdown and "| person |" in markdown
    assert markdown in capsys.readouterr().out


def test_the_report_counts_enough_scenes_for_every_default_class():
    # the reason EVAL_SCENES is 500: every sw2-20 class occurs in at least 7 of the 500 seed-1
    # scenes (counted: 7 to 119), where the first 50 miss 5 of the 20 classes
    counts = scene_counts(EVAL_SCENES, EVAL_SEED)
    assert counts.min() >= 7, dict(zip(BENCHMARKS["sw2-20"], counts.tolist()))
    assert (scene_counts(50, EVAL_SEED) == 0).sum() == 5


@pytest.mark.parametrize("args, words", [
    (["--world", "shapesworld2", "--benchmark", "sw2-7"], "unknown benchmark 'sw2-7'"),
    (["--world", "shapesworld", "--benchmark", "sw2-59"], "add --world shapesworld2"),
    (["--world", "shapesworld3"], "unknown world"),
    (["--world", "shapesworld2", "--n", "0"], "--n must be at least 1"),
])
def test_bad_arguments_are_one_line(args, words, capsys):
    assert main(["world", "eval", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_users_markdown_beside_the_report_is_never_replaced(tmp_path, capsys):
    # the Markdown report goes next to --out and cannot carry a job tag: an existing one is
    # replaced only with --overwrite, as the JSON report itself
    out, notes = tmp_path / "report.json", tmp_path / "report.md"
    notes.write_text("my notes\n")
    args = ["world", "eval", "--world", "shapesworld2", "--n", "1", "--benchmark", "sw2-20", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"refusing to write over {notes}" in err and len(err.strip().splitlines()) == 1
    assert notes.read_text() == "my notes\n" and not out.exists()  # refused before any work
    assert main(args + ["--overwrite"]) == 0
    assert notes.read_text().startswith("Zero-shot classification")
    assert main(args) == 2  # a rerun does not replace the pair without --overwrite either
    assert notes.read_text().startswith("Zero-shot classification")
    capsys.readouterr()
