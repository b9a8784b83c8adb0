import json

import numpy as np
import pytest
from PIL import Image

from ovss.cli import main

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)).save(d / "rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(d / "gray.png")
    Image.fromarray(rng.integers(0, 255, (33, 47, 4), dtype=np.uint8)).save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (20, 25), dtype=np.uint8)).convert("P").save(d / "palette.png")
    Image.fromarray(rng.integers(0, 65535, (31, 29)).astype(np.uint16)).save(d / "deep16.png")
    return d


class TestSegmentCommand:
    def test_odd_images_are_converted_and_segmented(self, images, tmp_path, capsys):
        out = tmp_path / "out"
        rc = main(["segment", str(images), "--classes", "boat, sky, grass", *MODEL, "--preset", "naclip", "--out", str(out)])
        assert rc == 0
        for name, size in [("rgb", (60, 90)), ("gray", (40, 30)), ("rgba", (33, 47)), ("palette", (20, 25)), ("deep16", (31, 29))]:
            labels = np.asarray(Image.open(out / f"{name}.png"))
            assert labels.shape == size and labels.max() < 3
            assert Image.open(out / f"{name}.png").mode == "P"
            overlay = Image.open(out / f"{name}_overlay.png")
            assert overlay.height >= size[0] and overlay.width > size[1]  # image plus legend
            meta = json.loads((out / f"{name}.json").read_text())
            assert meta["classes"] == [["boat"], ["sky"], ["grass"]]
            assert abs(sum(meta["pixel_share"].values()) - 1) < 1e-9
            assert meta["settings"]["head"] == "naclip" and meta["settings"]["crop"] == 224
            shares = np.bincount(labels.flatten(), minlength=3) / labels.size
            assert np.allclose(list(meta["pixel_share"].values()), shares)

    def test_bad_files_do_not_stop_the_batch(self, images, tmp_path, capsys):
        (images / "notes.png").write_text("not an image")
        out = tmp_path / "out"
        rc = main(["segment", str(images / "rgb.jpg"), str(images / "notes.png"), str(tmp_path / "missing.jpg"),
                   "--classes", "a, b", *MODEL, "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 1
        assert "cannot read" in err and "notes.png" in err
        assert "image not found" in err and "Traceback" not in err
        assert (out / "rgb.png").exists()

    @pytest.mark.parametrize("args,msg", [
        (["--classes", " , "], "class list"),
        (["--classes", "cat, cat"], "appears twice"),
        (["--classes", "cat", "--head", "nohead"], "unknown head 'nohead'"),
        (["--classes", "cat", "--preset", "nopreset"], "unknown preset 'nopreset'"),
        (["--classes", "cat", "--model", "ViT-Z-1"], "unknown model"),
        ([], "no class names given; pass --classes 'cat, sofa' or a class file"),
    ])
    def test_user_mistakes_are_one_line(self, images, tmp_path, capsys, args, msg):
        base = ["segment", str(images / "rgb.jpg"), "--out", str(tmp_path / "o")]
        model = [] if "--model" in args else MODEL
        rc = main(base + model + args)
        err = capsys.readouterr().err.strip()
        assert rc == 2
        assert msg in err and len(err.splitlines()) == 1 and err.startswith("ovss: error:")


class TestModelsCommand:
    def test_lists_default_heads_and_presets(self, capsys):
        assert main(["models"]) == 0
        out = capsys.readouterr().out
        assert "ovss-tiny" in out and "(default, embedded)" in out
        for name in ("clip", "maskclip", "sclip", "clearclip", "naclip", "mlmp"):
            assert name in out


def test_animated_gif_and_multipage_tiff_say_the_first_frame_is_segmented(tmp_path, capsys):
    # issue 22: an animated GIF or a multi-page TIFF was silently reduced to its first frame
    import json

    import numpy as np
    from PIL import Image

    from ovss.cli import main

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(tmp_path / "pages.tiff", save_all=True, append_images=frames[1:2])
    frames[0].save(tmp_path / "plain.png")
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "anim.gif"), str(tmp_path / "pages.tiff"), str(tmp_path / "plain.png"),
                 "--classes", "a, b", "--model", "ovss-tiny", "--pretrained", "none", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"ovss: note: {tmp_path / 'anim.gif'} holds 3 frames (an animation or a multi-page file); only the first is segmented" in err
    assert f"{tmp_path / 'pages.tiff'} holds 2 frames" in err and "plain.png holds" not in err
    assert json.loads((out / "anim.json").read_text())["frames"] == {"in_file": 3, "segmented": "first"}
    assert json.loads((out / "pages.json").read_text())["frames"] == {"in_file": 2, "segmented": "first"}
    assert "frames" not in json.loads((out / "plain.json").read_text())


def test_user_mistakes_exit_2_partial_batches_exit_1(tmp_path, capsys):
    # issue 22: a missing image, a file that is no image, a dataset root that is not there exited 1
    from ovss.cli import main

    (tmp_path / "notes.png").write_text("not an image")
    model = ["--classes", "a, b", *MODEL]
    assert main(["segment", str(tmp_path / "missing.png"), *model, "--out", str(tmp_path / "o1")]) == 2
    assert main(["segment", str(tmp_path / "notes.png"), *model, "--out", str(tmp_path / "o2")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["segment", str(empty), *model, "--out", str(tmp_path / "o3")]) == 2
    assert main(["data", "check", str(tmp_path / "nodir"), "--dataset", "voc21"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"ovss: error: dataset root {tmp_path / 'nodir'} does not exist or is not a folder; pass the folder holding "
        "the dataset (or the folder above it)")
    assert main(["data", "check", str(tmp_path / "nodir"), "--dataset", "scene3d"]) == 2


def test_segment_help_lists_every_preset_and_no_progress():
    from ovss.cli import build_parser, command_parser
    from ovss.segment import PRESETS

    parser = build_parser()
    text = command_parser(parser, parser.parse_args(["segment", "x.png", "--out", "o"])).format_help()
    start = text.index("inference protocol:")
    listed = text[start:text.index("--dataset", start)]
    assert all(name in listed.replace("\n", " ") for name in PRESETS), listed
    assert "resclip," in " ".join(listed.split()) and "--no-progress" in text


def test_segment_writes_no_carriage_return_bars_into_a_log(tmp_path):
    # issue 22: a log file (stderr not a terminal) got \r progress bars
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((16, 20, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    log = tmp_path / "log.txt"
    with open(log, "w") as err:
        rc = subprocess.run([sys.executable, "-m", "ovss", "segment", *(str(tmp_path / f"{i}.png") for i in range(3)),
                             "--classes", "a, b", *MODEL, "--out", str(tmp_path / "out")], stderr=err,
                            stdout=subprocess.DEVNULL).returncode
    assert rc == 0 and "\r" not in log.read_text() and "segment:" not in log.read_text()


    def test_lists_the_heads_each_backbone_family_supports(self, capsys):
        assert main(["models"]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        siglip = lines[[i for i, line in enumerate(lines) if line.strip().startswith("timm-vit")][0] + 1]
        eva = lines[[i for i, line in enumerate(lines) if line.strip().startswith("eva ")][0] + 1]
        assert "naclip" in siglip and "not: scclip (needs a class token)" in siglip
        assert "scclip" in eva and "not:" not in eva
        assert "ovss[siglip]" in out and "PE-Core" in out and "EVA02" in out

    def test_siglip_without_its_tokenizer_is_one_line(self, images, tmp_path, capsys):
        import importlib.util

        if importlib.util.find_spec("transformers") and importlib.util.find_spec("sentencepiece"):
            pytest.skip("transformers and sentencepiece are installed")
        rc = main(["segment", str(images / "rgb.jpg"), "--out", str(tmp_path / "o"), "--classes", "cat",
                   "--model", "ViT-B-16-SigLIP2", "--pretrained", "none"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "ovss[siglip]" in err
