"""Files ovss writes follow the umask; photos are read upright (EXIF orientation), and the JSON says so."""
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ovss.cli import main
from ovss.files import read_image, read_rgb, write_json


def _modes(root):
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, expected):
    out = tmp_path / "world"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ovss", "world", "make", "--world", "shapesworld", "--out", str(out), "--n", "1", "--size", "32"],
        env=env, capture_output=True, text=True, preexec_fn=lambda: os.umask(umask), timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    modes = _modes(out)
    # images and annotations (save_image), classes.txt (write_text), meta.json (write_json): all atomic writes
    assert {"classes.txt", "meta.json", "images/val/sw_400000.png", "annotations/val/sw_400000.png"} <= set(modes)
    assert set(modes.values()) == {expected}, modes


def test_atomic_write_in_process_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640


def _sideways_photo(path, orientation=6):
    """20 x 30 stored pixels: the top row red, the rest blue; EXIF says 'rotate 90 degrees clockwise to view'."""
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[...] = (0, 0, 255)
    pixels[0] = (255, 0, 0)
    im = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, exif=exif)
    return pixels


def test_read_rgb_applies_exif_orientation(tmp_path):
    _sideways_photo(tmp_path / "p.png")
    rgb = read_rgb(tmp_path / "p.png")
    # turned 90 degrees clockwise: 30 rows of 20, and the stored top row is now the right column
    assert rgb.shape == (30, 20, 3)
    assert (rgb[:, -1] == (255, 0, 0)).all()
    assert (rgb[:, :-1] == (0, 0, 255)).all()
    loaded = read_image(tmp_path / "p.png")
    assert loaded.describe() == {"exif_orientation": 6, "exif_orientation_applied": True}


def test_orientation_1_and_none_leave_pixels_as_stored(tmp_path):
    stored = _sideways_photo(tmp_path / "upright.png", orientation=1)
    Image.fromarray(stored).save(tmp_path / "plain.png")
    assert np.array_equal(read_rgb(tmp_path / "upright.png"), stored)
    assert read_image(tmp_path / "upright.png").describe() == {"exif_orientation": 1, "exif_orientation_applied": False}
    assert read_image(tmp_path / "plain.png").describe() == {"exif_orientation": None, "exif_orientation_applied": False}


def test_segment_labels_a_sideways_photo_upright_and_records_it(tmp_path, capsys):
    _sideways_photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    rc = main(["segment", str(tmp_path / "photo.png"), "--classes", "red, blue", "--model", "ovss-tiny",
               "--pretrained", "none", "--preset", "shapesworld", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    labels = np.asarray(Image.open(out / "photo.png"))
    assert labels.shape == (30, 20)  # the upright photo's size, not the stored 20 x 30
    meta = json.loads((out / "photo.json").read_text())
    assert meta["size"] == [30, 20]
    assert meta["exif_orientation"] == 6 and meta["exif_orientation_applied"] is True
