import json

import pytest

from ovss.cli import main
from ovss.world import write_dataset

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=4, seed=1, split="val", size=112, progress=False)


class TestBenchCommand:
    def test_run_then_report_only(self, world, tmp_path, capsys):
        out = tmp_path / "run"
        args = ["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "snow",
                "--limit", "3", "--workers", "0", "--preset", "shapesworld", "--no-progress", *MODEL, "--out", str(out)]
        assert main(args) == 0
        printed = capsys.readouterr().out
        assert "| Corruption | Images | NoAdapt. |" in printed and "| Snow | 3 |" in printed
        assert "| SHAPESWORLD-C (Average) |" in printed
        data = json.loads((out / "shapesworld" / "none" / "snow.json").read_text())
        assert data["timing"]["images"] == 3 and data["settings"]["limit"] == 3
        for name in ("summary.md", "summary.csv", "shapesworld_bar.png"):
            assert (out / name).is_file()

        (out / "summary.md").unlink()
        assert main(["bench", "--report-only", "--out", str(out)]) == 0
        assert capsys.readouterr().out == printed
        assert (out / "summary.md").read_text() == printed

    def test_default_preset_follows_the_model(self, world, tmp_path, capsys):
        out = tmp_path / "run"
        # random weights are not the embedded model: the naclip protocol applies
        assert main(["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                     "--limit", "1", "--workers", "0", "--no-progress", *MODEL, "--out", str(out)]) == 0
        data = json.loads((out / "shapesworld" / "none" / "original.json").read_text())
        assert data["settings"]["segmenter"]["name"] == "naclip"

    def test_default_weights_follow_the_exports_world(self, world, tmp_path, capsys):
        """No --pretrained on a ShapesWorld export: the embedded weights trained on ShapesWorld (the
        default, shapesworld2, knows only ShapesWorld 2's classes), said on stderr and recorded."""
        out = tmp_path / "run"
        assert main(["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                     "--limit", "1", "--workers", "0", "--no-progress", "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert "weights: ovss-tiny 'shapesworld', the embedded weights trained on the data's world (shapesworld)" in err
        data = json.loads((out / "shapesworld" / "none" / "original.json").read_text())
        assert data["model"]["pretrained"] == "shapesworld" and data["settings"]["segmenter"]["name"] == "shapesworld"
        # --pretrained wins: the default tag runs on the same export, with no note
        out2 = tmp_path / "run2"
        assert main(["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                     "--limit", "1", "--workers", "0", "--no-progress", "--pretrained", "shapesworld2",
                     "--out", str(out2)]) == 0
        assert "weights:" not in capsys.readouterr().err
        assert json.loads((out2 / "shapesworld" / "none" / "original.json").read_text())["model"]["pretrained"] == "shapesworld2"

    def test_exports_of_both_worlds_need_named_weights(self, world, tmp_path, capsys):
        """Each embedded weight file knows one world: exports of both given to one command (adapt
        eval takes several roots), with no weights named, are refused; named weights are kept."""
        import argparse

        from ovss.cli.common import weights_for_data
        from ovss.errors import OvssError

        sw2 = write_dataset(tmp_path / "sw2", n=1, seed=1, split="val", size=112, progress=False, world="shapesworld2")
        args = argparse.Namespace(model=None, pretrained=None)
        with pytest.raises(OvssError, match="exports of shapesworld and shapesworld2, and each embedded weight file"):
            weights_for_data(args, [world, sw2])
        assert weights_for_data(argparse.Namespace(model=None, pretrained="shapesworld2"), [world, sw2]) is None
        assert weights_for_data(args, [sw2, tmp_path]) is None and args.pretrained is None  # not all exports
        assert weights_for_data(args, [world]) == "shapesworld" and args.pretrained == "shapesworld"

    @pytest.mark.parametrize("extra,msg", [
        (["--dataset", "voc99"], "unknown dataset 'voc99'"),
        (["--data-root", "/nonexistent/data"], "ovss data check /nonexistent/data --dataset shapesworld"),
        (["--corruptions", "gaussian_noise,rain"], "unknown corruption 'rain'"),
        (["--severity", "6"], "--severity must be one of 1, 2, 3, 4, 5"),
        (["--methods", "none,tent2"], "unknown adaptation method 'tent2'"),
        (["--seeds", "0,x"], "--seeds must be comma-separated integers"),
        (["--limit", "0"], "--limit must be a positive number"),
        (["--data-root", "a,b"], "--data-root lists 2 roots for 1 datasets"),
        (["--model", "ViT-Z-1"], "unknown model"),
    ])
    def test_errors_are_one_line(self, world, tmp_path, capsys, extra, msg):
        base = {"--dataset": "shapesworld", "--data-root": str(world), "--corruptions": "original", "--workers": "0"}
        for flag, value in zip(extra[::2], extra[1::2]):
            base[flag] = value
        args = ["bench", *[x for kv in base.items() for x in kv], "--no-progress", "--out", str(tmp_path / "run")]
        if "--model" not in base:
            args += MODEL
        assert main(args) == 2
        err = capsys.readouterr().err
        assert msg in err
        assert err.count("\n") == 1 and "Traceback" not in err

    def test_report_only_without_results(self, tmp_path, capsys):
        assert main(["bench", "--report-only", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "no benchmark results under" in err and err.count("\n") == 1
