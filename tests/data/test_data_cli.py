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
    assert str(tmp_path / "leftImg8bit/val") in err and "tools/dataset_converters/cityscapes.py" in err


def test_list_prints_every_dataset(capsys) -> None:
    assert _run(["data", "list"]) == 0
    out = capsys.readouterr().out
    from ovss.data import DATASETS

    for name in DATASETS:
        assert f"\n{name} " in out
