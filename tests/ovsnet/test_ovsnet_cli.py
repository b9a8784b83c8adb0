"""``ovss ovsnet ablation``: a tiny end-to-end run and one-line errors."""
import json

import pytest

from ovss.cli import main

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]



def test_tiny_ablation_run_and_resume(tmp_path, capsys):
    args = ["ovsnet", "ablation", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
            "--variants", "baseline,gfa", "--train-n", "3", "--val-n", "4", "--steps", "2", "--batch-size", "2",
            "--queries", "4", "--no-progress", *MODEL]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| Baseline |" in printed and "| + GFA |" in printed and "GFA adds" in printed
    result = json.loads((tmp_path / "run" / "gfa.json").read_text())
    assert result["settings"]["config"]["gfa"] is True and "open" in result["metrics"]
    assert (tmp_path / "run" / "baseline.safetensors").is_file()
    assert (tmp_path / "data" / "open" / "classes.txt").read_text().startswith("others")
    assert main(args) == 0  # finished variants are read back
    assert capsys.readouterr().out == printed


def test_datasets_given_by_name_and_root(tmp_path, capsys):
    from ovss.world import write_dataset

    train = write_dataset(tmp_path / "tr", n=3, seed=5, split="train", size=112, progress=False)
    val = write_dataset(tmp_path / "va", n=2, seed=6, split="val", size=112, progress=False)
    args = ["ovsnet", "ablation", "--train-data", f"shapesworld={train}", "--val-data", f"shapesworld={val}",
            "--open-data", f"shapesworld={val}", "--out", str(tmp_path / "run"), "--variants", "baseline",
            "--steps", "1", "--batch-size", "2", "--queries", "4", "--no-progress", *MODEL]
    assert main(args) == 0
    result = json.loads((tmp_path / "run" / "baseline.json").read_text())
    assert result["settings"]["data"]["train"] == f"shapesworld:{train}:train"
    assert result["metrics"]["open"]["mIoU"] == result["metrics"]["val"]["mIoU"]  # the same set twice
    capsys.readouterr()
    assert main(args[:5] + args[7:]) == 2  # --open-data left out
    assert "missing --open-data" in capsys.readouterr().err


@pytest.mark.parametrize("extra,msg", [
    (["--variants", "baseline,attn"], "unknown variant 'attn'"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--w", "1.5"], "--w must lie strictly between 0 and 1"),
    (["--queries", "100"], "GFA may not converge with 100 queries"),
    (["--gamma", "0"], "--gamma must be positive"),
    (["--train-data", "ade20k", "--val-data", "x=y", "--open-data", "x=y"], "--train-data must be NAME=ROOT"),
    (["--train-data", "voc99=r", "--val-data", "x=y", "--open-data", "x=y"], "unknown dataset 'voc99'"),
])
def test_errors_are_one_line(tmp_path, capsys, extra, msg):
    args = ["ovsnet", "ablation", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), *extra, *MODEL]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_shapesworld2_exports_learn_their_own_base_classes(tmp_path, capsys):
    from ovss.world.export import export_base_classes
    from ovss.world.sw2_classes import BENCHMARKS, is_novel

    args = ["ovsnet", "ablation", "--world", "shapesworld2", "--benchmark", "sw2-59", "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "run"), "--variants", "baseline", "--train-n", "2", "--val-n", "3", "--steps", "1",
            "--batch-size", "2", "--queries", "4", "--no-progress", *MODEL]
    assert main(args) == 0
    base = [c for c in BENCHMARKS["sw2-59"] if not is_novel(c)]
    assert export_base_classes(tmp_path / "data" / "train") == base
    meta = json.loads((tmp_path / "data" / "val" / "meta.json").read_text())
    assert meta["world"] == "shapesworld2" and meta["benchmark"] == "sw2-59"
    # the open split is measured against the export's base classes: a base class is 1.0 similar
    opened = json.loads((tmp_path / "data" / "open" / "meta.json").read_text())
    assert opened["ablation"]["world"] == "shapesworld2"
    assert all(opened["source_similarity"][c] == pytest.approx(1.0, abs=1e-5) for c in base
               if c in opened["source_similarity"])
    assert export_base_classes(tmp_path / "run") is None  # not an export: ShapesWorld's own split applies
    capsys.readouterr()
    assert main(args[:2] + ["--world", "shapesworld", "--benchmark", "sw2-20", "--data", str(tmp_path / "d2"), "--out", str(tmp_path / "r2"),
                            *MODEL]) == 2
    assert "--benchmark applies to --world shapesworld2 only" in capsys.readouterr().err
