"""``--precision`` and ``--threads`` of ``ovss segment`` and ``ovss bench``: recorded, checked, one-line errors."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ovss.cli import main
from ovss.world import write_dataset

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=2, seed=1, split="val", size=64, progress=False)


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_segment_records_the_precision(tmp_path, keep_threads):
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(image)
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        assert main(["segment", str(image), "--classes", "a, b", *MODEL, "--precision", precision, "--preset", "shapesworld",
                     "--threads", "1", "--out", str(out)]) == 0
        assert json.loads((out / "a.json").read_text())["settings"]["precision"] == precision
    assert torch.get_num_threads() == 1


def test_bench_records_the_precision(world, tmp_path, keep_threads):
    out = tmp_path / "run"
    assert main(["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                 "--workers", "0", "--no-progress", *MODEL, "--preset", "shapesworld", "--precision", "int8", "--out", str(out)]) == 0
    data = json.loads((out / "shapesworld" / "none" / "original.json").read_text())
    assert data["settings"]["segmenter"]["precision"] == "int8"


@pytest.mark.parametrize("command,extra,msg", [
    ("segment", ["--precision", "fp8"], "unknown precision 'fp8'"),
    ("segment", ["--precision", "fp16"], "needs a CUDA device"),
    ("segment", ["--threads", "0"], "--threads must be 1 or more"),
    ("segment", ["--precision", "int8", "--tta", "tent"], "int8 is for inference only"),
    ("bench", ["--precision", "int8", "--methods", "none,tent"], "int8 is for inference only"),
    ("bench", ["--precision", "bf16", "--metric", "iou-single"], "--precision applies to the mIoU grid only"),
])
def test_mistakes_are_one_line(world, tmp_path, capsys, command, extra, msg):
    if command == "segment":
        args = ["segment", str(next((world / "images" / "val").glob("*.png"))), "--classes", "a, b"]
    else:
        args = ["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
                "--workers", "0", "--no-progress"]
    assert main(args + MODEL + extra + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_folder_with_semantic_feedback_segments_each_image_as_one(world, tmp_path):
    """ResCLIP's feedback needs what only set_image keeps: the folder's shared encoding steps aside."""
    import numpy as np
    from PIL import Image

    images = sorted((world / "images" / "val").glob("*.png"))[:2]
    folder = tmp_path / "in"
    folder.mkdir()
    for p in images:
        (folder / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "o"
    assert main(["segment", str(folder), "--classes", "sky, grass, water", *MODEL, "--preset", "resclip",
                 "--out", str(out)]) == 0
    for p in images:
        assert main(["segment", str(p), "--classes", "sky, grass, water", *MODEL, "--preset", "resclip",
                     "--out", str(tmp_path / "one" / p.stem)]) == 0
        assert np.array_equal(np.asarray(Image.open(out / p.name)), np.asarray(Image.open(tmp_path / "one" / p.stem / p.name)))
        assert json.loads((out / f"{p.stem}.json").read_text())["settings"]["sfr_weights"] is not None
