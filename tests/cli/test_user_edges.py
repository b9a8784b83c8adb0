"""The edges where users meet ovss: each case here lost a file, gave a wrong result, or answered
with a traceback before (issue "Nothing lost, nothing silent")."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from ovss.cli import main
from ovss.segment import Segmenter
from ovss.world import write_dataset

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(d / "photo.png")
    return d


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ovss: error:") and "Traceback" not in err, err
    return err


class TestInputsAreNeverWritten:
    def test_output_folder_equal_to_input_folder_is_refused(self, photos, capsys):
        before = (photos / "photo.png").read_bytes()
        rc = main(["segment", str(photos), "--classes", "a, b", *MODEL, "--out", str(photos)])
        err = _one_error_line(capsys)
        assert rc == 2 and str(photos) in err and "inside the input folder" in err
        assert (photos / "photo.png").read_bytes() == before and sorted(os.listdir(photos)) == ["photo.png"]

    def test_output_folder_inside_input_folder_is_refused(self, photos, capsys):
        rc = main(["segment", str(photos), "--classes", "a, b", *MODEL, "--out", str(photos / "seg")])
        assert rc == 2 and "inside the input folder" in _one_error_line(capsys)
        assert not (photos / "seg").exists() or not any((photos / "seg").iterdir())

    def test_input_file_at_an_output_path_is_refused(self, photos, capsys):
        before = (photos / "photo.png").read_bytes()
        rc = main(["segment", str(photos / "photo.png"), "--classes", "a, b", *MODEL, "--out", str(photos)])
        err = _one_error_line(capsys)
        assert rc == 2 and "would overwrite the input image" in err and "photo.png" in err
        assert (photos / "photo.png").read_bytes() == before

    def test_user_file_in_output_folder_is_never_overwritten(self, photos, tmp_path, capsys):
        out = tmp_path / "out"
        out.mkdir()
        (out / "photo.json").write_text('{"mine": true}')
        rc = main(["segment", str(photos), "--classes", "a, b", *MODEL, "--out", str(out)])
        err = _one_error_line(capsys)
        assert rc == 2 and "refusing to write over" in err and "photo.json" in err
        assert (out / "photo.json").read_text() == '{"mine": true}' and sorted(os.listdir(out)) == ["photo.json"]

    def test_another_runs_outputs_are_rewritten_only_with_overwrite(self, photos, tmp_path, capsys):
        """Issue 22, item 4: a second run with the same names used to replace the first one's results."""
        out = tmp_path / "out"
        args = ["segment", str(photos), "--classes", "a, b", *MODEL, "--out", str(out)]
        assert main(args) == 0
        first = json.loads((out / "photo.json").read_text())
        assert first["written_by"] == "ovss" and first["ovss_job"]["kind"] == "segment"
        assert Image.open(out / "photo.png").text["Software"] == "ovss"
        assert Image.open(out / "photo.png").text["ovss-run"] == first["ovss_job"]["run"]
        capsys.readouterr()
        assert main(args) == 2  # another run's files: refused, kept
        err = _one_error_line(capsys)
        assert "another `ovss segment` run" in err and "--overwrite" in err
        assert json.loads((out / "photo.json").read_text()) == first
        assert main(args + ["--overwrite"]) == 0  # asked for: rewritten
        assert json.loads((out / "photo.json").read_text())["ovss_job"]["run"] != first["ovss_job"]["run"]
        assert sorted(os.listdir(out)) == ["photo.json", "photo.png", "photo_overlay.png"]

    def test_names_that_would_collide_get_distinct_outputs(self, tmp_path):
        a, b = tmp_path / "a", tmp_path / "b"
        for d in (a, b):
            d.mkdir()
            Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(d / "x.png")
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(a / "x_overlay.png")
        out = tmp_path / "out"
        assert main(["segment", str(a), str(b), "--classes", "a, b", *MODEL, "--out", str(out)]) == 0
        images = sorted(json.loads((out / f).read_text())["image"] for f in os.listdir(out) if f.endswith(".json"))
        assert images == sorted([str(a / "x.png"), str(a / "x_overlay.png"), str(b / "x.png")])


class TestSettingsAreHonest:
    def test_chosen_head_is_the_recorded_head(self, tiny_random):
        seg = Segmenter(tiny_random, head="sclip", preset="naclip")
        assert seg.settings()["head"] == "sclip" and seg.head.name == "sclip"
        assert seg.settings()["name"] == "naclip"  # the preset's name; its other values kept
        assert seg.settings()["pamr"] is True

    def test_bench_does_not_reuse_a_result_of_another_head(self, tmp_path, capsys):
        world = write_dataset(tmp_path / "sw", n=2, seed=1, split="val", size=112, progress=False)
        out = tmp_path / "run"
        base = ["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                "--workers", "0", "--no-progress", *MODEL, "--preset", "naclip", "--out", str(out)]
        assert main(base) == 0
        assert json.loads((out / "shapesworld/none/original.json").read_text())["settings"]["segmenter"]["head"] == "naclip"
        capsys.readouterr()
        assert main(base + ["--head", "sclip"]) == 2
        err = _one_error_line(capsys)
        assert "segmenter.head: naclip -> sclip" in err and "--overwrite" in err
        assert main(base + ["--head", "sclip", "--overwrite"]) == 0
        assert json.loads((out / "shapesworld/none/original.json").read_text())["settings"]["segmenter"]["head"] == "sclip"

    def test_bench_rerun_with_another_limit_stops_and_says_what_differs(self, tmp_path, capsys):
        world = write_dataset(tmp_path / "sw", n=3, seed=1, split="val", size=112, progress=False)
        out = tmp_path / "run"
        base = ["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                "--workers", "0", "--no-progress", *MODEL, "--out", str(out)]
        assert main(base + ["--limit", "2"]) == 0
        first = (out / "shapesworld/none/original.json").read_text()
        capsys.readouterr()
        assert main(base + ["--limit", "3", "--methods", "tent"]) == 2  # another method, but 3 images
        err = _one_error_line(capsys)
        assert "limit: 2 -> 3" in err and "images: 2 -> 3" in err
        assert (out / "shapesworld/none/original.json").read_text() == first
        assert not (out / "shapesworld/tent").exists()


class TestModelWeights:
    def test_named_model_without_weights_is_refused(self, photos, tmp_path, capsys):
        rc = main(["segment", str(photos), "--classes", "a", "--model", "ViT-B-16", "--out", str(tmp_path / "o")])
        err = _one_error_line(capsys)
        assert rc == 2 and "--model ViT-B-16 needs --pretrained" in err and "none" in err and "openai" in err
        assert not (tmp_path / "o").exists()

    def test_library_refuses_too(self):
        from ovss.errors import OvssError
        from ovss.model import load_model

        with pytest.raises(OvssError, match="needs weights"):
            load_model("ViT-B-16")


class TestClassFiles:
    def test_comments_and_blank_lines_are_skipped(self, photos, tmp_path):
        cls = tmp_path / "cls.txt"
        cls.write_text("# my classes (from somewhere)\n\nsky\n  # another comment\ngrass, lawn\n\n")
        out = tmp_path / "out"
        assert main(["segment", str(photos), "--classes-file", str(cls), *MODEL, "--out", str(out)]) == 0
        assert json.loads((out / "photo.json").read_text())["classes"] == [["sky"], ["grass", "lawn"]]

    def test_file_of_only_comments_is_an_error_naming_it(self, photos, tmp_path, capsys):
        cls = tmp_path / "cls.txt"
        cls.write_text("# nothing here\n\n   \n#\n")
        rc = main(["segment", str(photos), "--classes-file", str(cls), *MODEL, "--out", str(tmp_path / "o")])
        err = _one_error_line(capsys)
        assert rc == 2 and str(cls) in err and "no class" in err


class TestOneClearLine:
    @pytest.mark.parametrize("where", ["file", "under_file", "proc"])
    def test_bad_output_locations(self, photos, tmp_path, capsys, where):
        target = {"file": tmp_path / "f.txt", "under_file": tmp_path / "f.txt" / "sub", "proc": "/proc/ovss-out"}[where]
        (tmp_path / "f.txt").write_text("x")
        rc = main(["segment", str(photos), "--classes", "a", *MODEL, "--out", str(target)])
        err = _one_error_line(capsys)
        assert rc == 2 and f"--out {target}" in err
        assert {"file": "is a file", "under_file": "which is a file", "proc": "pseudo file system"}[where] in err
        assert (tmp_path / "f.txt").read_text() == "x"

    def test_bench_out_that_is_a_file(self, tmp_path, capsys):
        world = write_dataset(tmp_path / "sw", n=1, seed=1, split="val", size=112, progress=False)
        (tmp_path / "f.txt").write_text("x")
        rc = main(["bench", "--dataset", "shapesworld", "--data-root", str(world), *MODEL, "--out", str(tmp_path / "f.txt")])
        assert rc == 2 and "is a file" in _one_error_line(capsys)

    @pytest.mark.parametrize("device,msg", [("cuda", "CUDA is not available"), ("tpu", "unknown device 'tpu'"),
                                            ("cuda:7", "CUDA is not available")])
    def test_devices(self, photos, tmp_path, capsys, device, msg):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        rc = main(["segment", str(photos), "--classes", "a", *MODEL, "--device", device, "--out", str(tmp_path / "o")])
        err = _one_error_line(capsys)
        assert rc == 2 and msg in err and f"--device {device}" in err

    def test_unknown_dataset_on_segment(self, photos, tmp_path, capsys):
        rc = main(["segment", str(photos), "--classes", "a", *MODEL, "--dataset", "foo", "--out", str(tmp_path / "o")])
        err = _one_error_line(capsys)
        assert rc == 2 and "unknown --dataset 'foo'" in err and "voc21" in err
