"""``ovss data check`` / ``ovss data list`` through a local parser (other commands may not exist yet)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ovss.cli import data as data_cli


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ovss")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_check_ok(tmp_path: Path, capsys) -> None:
    base = tmp_path / "ADEChallengeData2016"
    for i in range(3):
        (base / "images/validation").mkdir(parents=True, exist_ok=True)
        (base / "annotations/validation").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(base / f"images/validation/ADE_val_{i:08d}.jpg")
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(base / f"annotations/validation/ADE_val_{i:08d}.png")
    assert _run(["data", "check", str(tmp_path), "--dataset", "ade20k"]) == 0
    assert capsys.readouterr().out.strip() == "ok: 3 images, 3 annotations, 150 classes"


def test_check_problems_exit_non_zero(tmp_path: Path, capsys) -> None:
    assert _run(["data", "check", str(tmp_path), "--dataset", "cityscapes"]) != 0
    err = capsys.readouterr().err
    assert str(tmp_path / "leftImg8bit/val") in err and "ovss data prepare cityscapes --from DOWNLOADS --out ROOT" in err


def test_list_prints_every_dataset(capsys) -> None:
    assert _run(["data", "list"]) == 0
    out = capsys.readouterr().out
    from ovss.data import DATASETS

    for name in DATASETS:
        assert f"\n{name} " in out
    # where each comes from: the official downloads through `data prepare`, ShapesWorld from `world make`
    assert "ovss data prepare context59 -> ROOT/VOCdevkit/VOC2010" in out and "ovss world make" in out


def _world(tmp_path: Path, n: int = 4) -> Path:
    from ovss.world import write_dataset

    return write_dataset(tmp_path / "sw", n=n, seed=1, split="val", size=24, progress=False)


def test_check_lists_an_image_replaced_by_garbage(tmp_path: Path, capsys) -> None:
    root = _world(tmp_path)
    images = sorted((root / "images/val").glob("*.png"))
    images[1].write_bytes(b"this is not a PNG at all" * 10)
    truncated = sorted((root / "annotations/val").glob("*.png"))[2]
    truncated.write_bytes(truncated.read_bytes()[:40])  # a cut-off download: header there, data gone
    assert _run(["data", "check", str(root), "--dataset", "shapesworld"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("- ")]
    assert len(lines) == 2, err
    assert str(images[1]) in lines[0] and "cannot read image" in lines[0] and "UnidentifiedImageError" in lines[0]
    assert str(truncated) in lines[1] and "cannot read annotation" in lines[1]
    assert "2 problem(s)" in err


def test_check_finds_an_annotation_of_another_size(tmp_path: Path, capsys) -> None:
    root = _world(tmp_path, n=2)
    label = sorted((root / "annotations/val").glob("*.png"))[0]
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(label)
    assert _run(["data", "check", str(root), "--dataset", "shapesworld"]) == 1
    err = capsys.readouterr().err
    assert f"annotation {label} is 20x24 but image" in err and "is 24x24" in err


def test_check_of_a_clean_world_is_ok(tmp_path: Path, capsys) -> None:
    root = _world(tmp_path, n=3)
    assert _run(["data", "check", str(root), "--dataset", "shapesworld"]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 images, 3 annotations")


def test_check_finds_a_truncated_jpeg(tmp_path: Path) -> None:
    # issue 22: PIL's verify passes a JPEG cut short (it checks nothing past the header)
    from types import SimpleNamespace

    from ovss.data.integrity import check_files

    rng = np.random.default_rng(0)
    label = tmp_path / "a.png"
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(label)
    whole, cut, padded = tmp_path / "whole.jpg", tmp_path / "cut.jpg", tmp_path / "padded.jpg"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(whole, quality=90)
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])  # an interrupted download
    padded.write_bytes(data + b"\x00" * 5000)  # bytes after the end marker: still a whole picture
    with Image.open(cut) as im:
        im.verify()  # what the check relied on: it passes the cut file
    items = [SimpleNamespace(image=p, label=label) for p in (whole, cut, padded)]
    problems = check_files(items)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"cannot read image {cut} (OSError: image file is truncated")
