"""write_dataset writes MMSegmentation's layout, resumes, and refuses mismatched folders; the CLI."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

from ovss.errors import OvssError
from ovss.world import CLASSES, make_scene, scene_seed, write_dataset
from ovss.world.export import read_labels


def test_layout_and_round_trip(tmp_path):
    out = write_dataset(tmp_path / "sw", n=3, seed=2, split="val", size=64, progress=False)
    names = (out / "val.txt").read_text().split()
    captions = (out / "captions.txt").read_text().splitlines()
    assert len(names) == 3 and len(captions) == 3 and len(set(names)) == 3
    classes = (out / "classes.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in classes] == list(CLASSES)
    assert "boat, ship" in (out / "classes.txt").read_text()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n"] == 3 and meta["style"] == "default" and meta["seed"] == 2 and meta["classes"] == list(CLASSES)
    assert set(meta["base_classes"]) | set(meta["novel_classes"]) == set(CLASSES)
    for i, (name, cap) in enumerate(zip(names, captions)):
        scene = make_scene(scene_seed(2, "val", i), 64)
        assert name == f"sw_{scene.seed:06d}" and cap == scene.caption
        with Image.open(out / "annotations" / "val" / f"{name}.png") as im:
            assert im.mode == "L"
        assert np.array_equal(read_labels(out / "annotations" / "val" / f"{name}.png"), scene.labels)
        with Image.open(out / "images" / "val" / f"{name}.png") as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), scene.image)


def test_resume_and_mismatch(tmp_path):
    out = write_dataset(tmp_path / "sw", n=2, size=48, progress=False)
    img = out / "images" / "val" / (out / "val.txt").read_text().split()[0]
    img = img.with_suffix(".png")
    before = img.stat().st_mtime_ns
    (out / "val.txt").unlink()  # as if the run was killed before the end
    write_dataset(out, n=2, size=48, progress=False)
    assert img.stat().st_mtime_ns == before  # done images are kept, not rewritten
    assert len((out / "val.txt").read_text().split()) == 2
    write_dataset(out, n=4, size=48, progress=False)  # growing the same dataset is fine
    assert len((out / "captions.txt").read_text().splitlines()) == 4
    with pytest.raises(OvssError, match="style"):
        write_dataset(out, n=4, size=48, style="night", progress=False)


def test_splits_and_seeds_do_not_overlap():
    seeds = {scene_seed(k, split, i) for k in (0, 1) for split in ("train", "val", "test", "extra") for i in range(1000)}
    assert len(seeds) == 8000
    assert max(seeds) < 10**10


def _parser():
    from ovss.cli.world import add_parser

    p = argparse.ArgumentParser(prog="ovss")
    add_parser(p.add_subparsers(dest="command"))
    return p


def test_cli_make(tmp_path, capsys):
    args = _parser().parse_args(["world", "make", "--out", str(tmp_path / "d"), "--n", "2", "--size", "48x64",
                                 "--style", "sketch", "--seed", "3"])
    assert args.func(args) == 0
    names = (tmp_path / "d" / "val.txt").read_text().split()
    with Image.open(tmp_path / "d" / "images" / "val" / f"{names[0]}.png") as im:
        assert im.size == (64, 48)
    assert "ShapesWorld 2: 2 sketch images" in capsys.readouterr().out
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())  # the default world and its default benchmark
    assert (meta["world"], meta["benchmark"]) == ("shapesworld2", "sw2-20")
    args = _parser().parse_args(["world", "make", "--world", "shapesworld", "--out", str(tmp_path / "d1"), "--n", "1",
                                 "--size", "48"])
    assert args.func(args) == 0
    assert "world" not in json.loads((tmp_path / "d1" / "meta.json").read_text())  # ShapesWorld's meta as before
    assert len((tmp_path / "d1" / "classes.txt").read_text().splitlines()) == 19


@pytest.mark.parametrize("argv,msg", [
    (["--style", "cartoon"], "valid ShapesWorld 2 styles: default, night, sketch, painting"),
    (["--style", "painting", "--world", "shapesworld"], "valid styles: default, night, sketch"),
    (["--size", "big"], "--size"),
    (["--n", "0"], "--n must be at least 1 (got 0)"),
])
def test_cli_user_errors(tmp_path, capsys, argv, msg):
    from ovss.cli import main

    assert main(["world", "make", "--out", str(tmp_path / "d"), "--n", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and err.startswith("ovss: error: ")
    assert not (tmp_path / "d" / "meta.json").exists()


def test_make_never_writes_over_a_users_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "classes.txt").write_text("my own classes\n")
    with pytest.raises(OvssError, match="refusing to write over .*classes.txt"):
        write_dataset(out, n=1, seed=1, split="val", size=64, progress=False)
    assert (out / "classes.txt").read_text() == "my own classes\n"
