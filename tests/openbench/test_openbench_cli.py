"""``ovss openbench``: stats, build and classcount from the command line, and one-line errors."""
import json

import pytest

from ovss.cli import main
from ovss.openbench import irrelevant_names
from ovss.world import write_dataset

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=4, seed=1, split="val", size=112, progress=False)


def test_stats_build_then_stats_of_the_result(world, tmp_path, capsys):
    out = tmp_path / "open"
    assert main(["openbench", "build", "--sources", str(world), "--train-vocab", "shapesworld-base", "--sigma1", "0.99",
                 "--sigma2", "0.99", "--others-names", "--no-progress", "--out", str(out), *MODEL]) == 0
    printed = capsys.readouterr().out
    assert "OpenBench:" in printed and "--data-root" in printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["images"] >= 1 and meta["classes"][0]["name"] == "others"
    assert main(["openbench", "stats", "--train-vocab", "shapesworld-base", "--datasets",
                 f"shapesworld-novel,shapesworld={world},{out}", "--out", str(tmp_path / "stats"), *MODEL]) == 0
    printed = capsys.readouterr().out
    assert "| shapesworld-novel | 6 | - |" in printed and "| sw | 19 | 4 |" in printed and f"| open | {len(meta['classes']) - 1} |" in printed
    for name in ("openness.md", "openness.json", "openness_hist.png"):
        assert (tmp_path / "stats" / name).is_file()


def test_classcount(world, tmp_path, capsys):
    assert main(["openbench", "classcount", "--dataset", "shapesworld", "--data-root", str(world), "--extra-classes", "0,3",
                 "--limit", "2", "--preset", "shapesworld", "--no-progress", "--out", str(tmp_path), *MODEL]) == 0
    result = json.loads((tmp_path / "classcount.json").read_text())
    assert [r["classes"] for r in result["rows"]] == [19, 22] and len(result["extras"]) == 3
    assert (tmp_path / "classcount.png").is_file() and "| 3 | 22 |" in capsys.readouterr().out


def test_bench_extra_classes_is_the_same_curve(world, tmp_path, capsys):
    common = ["--dataset", "shapesworld", "--data-root", str(world), "--extra-classes", "0,3", "--limit", "2",
              "--preset", "shapesworld", "--no-progress", *MODEL]
    assert main(["openbench", "classcount", *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["bench", *common, "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "classcount.json").read_text()) for d in "ab")
    assert a["rows"] == b["rows"] and a["extras"] == b["extras"]
    capsys.readouterr()
    assert main(["bench", *common, "--methods", "tent", "--out", str(tmp_path / "c")]) == 2
    assert "--extra-classes measures mIoU without adaptation" in capsys.readouterr().err


def test_irrelevant_names_skip_the_dataset_and_nest():
    names = irrelevant_names([["cat", "kitty"], ["dog"]], ["Cat", "kitty", "bus", "tree", "dog", "lamp"], seed=3)
    assert sorted(names) == ["bus", "lamp", "tree"]
    assert names == irrelevant_names([["cat", "kitty"], ["dog"]], ["Cat", "kitty", "bus", "tree", "dog", "lamp"], seed=3)


@pytest.mark.parametrize("args,msg", [
    (["stats", "--train-vocab", "cocoa", "--datasets", "voc20"], "unknown vocabulary 'cocoa'"),
    (["stats", "--train-vocab", "voc20", "--datasets", " , "], "--datasets is empty"),
    (["build", "--sources", "voc20", "--train-vocab", "voc20", "--sigma1", "0.5", "--sigma2", "0.8", "--out", "x"],
     "source 'voc20' has no images"),
    (["build", "--sources", "voc20", "--train-vocab", "voc20", "--sigma1", "2", "--sigma2", "0.8", "--out", "x"],
     "--sigma1 must be a cosine similarity"),
    (["build", "--sources", "voc20=/nonexistent", "--train-vocab", "voc20", "--sigma1", "0.5", "--sigma2", "0.8", "--out", "x"],
     "ovss data check /nonexistent --dataset voc20"),
    (["build", "--sources", "voc20", "--train-vocab", "voc20", "--sigma1", "0.5", "--sigma2", "0.8", "--merge", "/no/file",
      "--out", "x"], "merge file not found"),
    (["classcount", "--dataset", "voc20", "--data-root", "/nonexistent", "--extra-classes", "0,x", "--out", "x"],
     "--extra-classes must be comma-separated integers"),
    (["classcount", "--dataset", "voc99", "--data-root", "/nonexistent", "--out", "x"], "unknown dataset 'voc99'"),
])
def test_errors_are_one_line(capsys, args, msg):
    assert main(["openbench", *args, *MODEL]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err
