"""``ovss data prepare``: synthetic downloads in each official format -> the layout ``data check`` accepts,
with label maps derived by hand (the reference converters give the same maps: docs/parity.md)."""
from __future__ import annotations

import argparse
import hashlib
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ovss.cli import data as data_cli
from ovss.data import SegDataset, read_label, scan_layout
from ovss.data.integrity import check_files
from ovss.data.prepare import LOG_NAME, prepare_dataset
from ovss.data.prepare.rle import decode_rle, string_counts
from ovss.errors import OvssError

from .prepare_archives import (
    ADE_LABEL,
    CITY_EXPECTED,
    CITY_NAME,
    COCO_OBJECT_EXPECTED,
    COCO_STUFF_EXPECTED,
    CONTEXT_EXPECTED,
    VOC_LABELS,
    ade_zip,
    city_polygons,
    cityscapes_downloads,
    coco_downloads,
    context_downloads,
    voc2012_tar,
    write_zip,
)


def _ready(name: str, out: Path) -> SegDataset:
    report = scan_layout(name, out)
    assert report.problems == [] and check_files(report.items) == []
    return SegDataset(name, out)


# ---------------------------------------------------------------- RLE


def test_compact_rle_strings_decode_as_hand_derived():
    assert string_counts("534") == [5, 3, 4]
    assert string_counts("641M") == [6, 4, 1, 1]  # 'M' = group 29: sign bit set, -3 + the run two before (4)
    assert string_counts("X1") == [40]  # 'X' = 8 with the "more" bit, then 1 << 5
    mask = decode_rle({"size": [2, 3], "counts": [1, 2, 2, 1]})  # column-major: pixels 1, 2 and 5
    assert mask.tolist() == [[0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="cover 5 pixels"):
        decode_rle({"size": [2, 3], "counts": [1, 4]})


# ---------------------------------------------------------------- each dataset


def test_voc_copies_the_split_unchanged(tmp_path):
    voc2012_tar(tmp_path)
    result = prepare_dataset("voc21", tmp_path, tmp_path / "data", checksum=False)
    base = tmp_path / "data/VOCdevkit/VOC2012"
    assert (result.folder, result.written, result.skipped) == (base, 5, 0)
    assert (base / "ImageSets/Segmentation/val.txt").read_bytes() == b"2007_000002\n2007_000001\n"
    assert not (base / "JPEGImages/2007_000003.jpg").exists()  # train only: not asked for
    for name in ("2007_000001", "2007_000002"):
        assert np.array_equal(read_label(base / f"SegmentationClass/{name}.png"), VOC_LABELS[name])
    voc20 = _ready("voc20", tmp_path / "data")
    assert [item["label"].tolist() for item in voc20] == [[[255, 0, 0], [255, 14, 255], [19, 19, 255]], [[2, 2], [255, 255]]]
    assert prepare_dataset("voc20", tmp_path, tmp_path / "data", checksum=False).skipped == 5  # same files: kept


def test_context_decodes_the_detail_json(tmp_path):
    context_downloads(tmp_path)
    prepare_dataset("context60", tmp_path, tmp_path / "data", checksum=False)
    base = tmp_path / "data/VOCdevkit/VOC2010"
    assert (base / "ImageSets/SegmentationContext/val.txt").read_text() == "2008_000001\n2008_000002\n"
    assert np.array_equal(read_label(base / "SegmentationClassContext/2008_000001.png"), CONTEXT_EXPECTED)
    assert read_label(base / "SegmentationClassContext/2008_000002.png").tolist() == [[0, 0], [0, 0]]
    assert not (base / "JPEGImages/2008_000003.jpg").exists()
    assert len(_ready("context60", tmp_path / "data")) == 2
    train = prepare_dataset("context59", tmp_path, tmp_path / "data", split="train", checksum=False)
    assert train.written == 3 and read_label(base / "SegmentationClassContext/2008_000003.png").tolist() == [[2, 2], [2, 2]]


def test_context_refuses_a_category_outside_the_60(tmp_path):
    context_downloads(tmp_path, extra_category=17)
    with pytest.raises(OvssError, match=r"2008_000002.jpg has category 17, not one of Pascal Context's 60"):
        prepare_dataset("context59", tmp_path, tmp_path / "data", checksum=False)


def test_coco_stuff_and_object_share_the_images(tmp_path):
    coco_downloads(tmp_path)
    first = prepare_dataset("coco_stuff164k", tmp_path, tmp_path / "data", checksum=False)
    second = prepare_dataset("coco_object", tmp_path, tmp_path / "data", checksum=False)
    assert (first.written, second.written, second.skipped) == (4, 2, 2)
    ann = tmp_path / "data/coco_stuff164k/annotations/val2017"
    assert np.array_equal(read_label(ann / "000000000139_labelTrainIds.png"), COCO_STUFF_EXPECTED)
    assert np.array_equal(read_label(ann / "000000000139_instanceTrainIds.png"), COCO_OBJECT_EXPECTED)
    # unlabeled pixels: ignored in COCO-Stuff, background in COCO-Object (as SCLIP's script writes them)
    assert read_label(ann / "000000000285_labelTrainIds.png").tolist() == [[255, 255]] * 3
    assert read_label(ann / "000000000285_instanceTrainIds.png").tolist() == [[0, 0]] * 3
    assert len(_ready("coco_object", tmp_path / "data")) == len(_ready("coco_stuff164k", tmp_path / "data")) == 2


def test_cityscapes_draws_the_polygons(tmp_path):
    cityscapes_downloads(tmp_path)
    prepare_dataset("cityscapes", tmp_path, tmp_path / "data", checksum=False)
    label = tmp_path / f"data/cityscapes/gtFine/val/{CITY_NAME}_gtFine_labelTrainIds.png"
    assert np.array_equal(read_label(label), CITY_EXPECTED)
    assert [item["name"] for item in _ready("cityscapes", tmp_path / "data")] == [CITY_NAME]


def test_cityscapes_refuses_an_unknown_label(tmp_path):
    polygons = city_polygons()
    polygons["objects"].append({"label": "spaceship", "polygon": [[0, 0], [1, 0], [1, 1]]})
    cityscapes_downloads(tmp_path, polygons)
    with pytest.raises(OvssError, match="has label 'spaceship', not a Cityscapes label"):
        prepare_dataset("cityscapes", tmp_path, tmp_path / "data", checksum=False)
    assert not (tmp_path / f"data/cityscapes/gtFine/val/{CITY_NAME}_gtFine_labelTrainIds.png").exists()


def test_ade_copies_the_validation_split(tmp_path):
    ade_zip(tmp_path)
    prepare_dataset("ade20k", tmp_path, tmp_path / "data", checksum=False)
    base = tmp_path / "data/ADEChallengeData2016"
    assert np.array_equal(read_label(base / "annotations/validation/ADE_val_00000001.png"), ADE_LABEL)
    assert not (base / "images/training").exists()
    assert _ready("ade20k", tmp_path / "data")[0]["label"].tolist() == [[255, 0, 149], [11, 11, 255]]


# ---------------------------------------------------------------- resuming, ownership, broken downloads


def test_resume_writes_only_what_is_missing(tmp_path):
    coco_downloads(tmp_path)
    prepare_dataset("coco_stuff164k", tmp_path, tmp_path / "data", checksum=False)
    base = tmp_path / "data/coco_stuff164k"
    (base / "annotations/val2017/000000000285_labelTrainIds.png").unlink()  # as if killed before this file
    again = prepare_dataset("coco_stuff164k", tmp_path, tmp_path / "data", checksum=False)
    assert (again.written, again.skipped) == (1, 3)
    assert sorted((base / LOG_NAME).read_text().split()) == sorted([
        "annotations/val2017/000000000139_labelTrainIds.png", "annotations/val2017/000000000285_labelTrainIds.png",
        "images/val2017/000000000139.jpg", "images/val2017/000000000285.jpg"])


def test_never_writes_over_a_file_it_did_not_write(tmp_path):
    ade_zip(tmp_path)
    mine = tmp_path / "data/ADEChallengeData2016/annotations/validation/ADE_val_00000001.png"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's own file")
    with pytest.raises(OvssError, match=r"refusing to write over .*ADE_val_00000001.png: ovss did not write it") as e:
        prepare_dataset("ade20k", tmp_path, tmp_path / "data", checksum=False)
    assert e.value.param == "out" and mine.read_bytes() == b"the user's own file"
    assert not (tmp_path / "data/ADEChallengeData2016/images").exists()  # checked before any work


@pytest.mark.parametrize("where", ["middle", "member end"])
def test_a_truncated_archive_is_one_line(tmp_path, where):
    tar = voc2012_tar(tmp_path)
    with tarfile.open(tar) as tf:
        tf.getmembers()
        end = tf.offset  # just after the last member's data: every member whole, the end blocks gone
    cut = tar.stat().st_size // 2 if where == "middle" else end
    tar.write_bytes(tar.read_bytes()[:cut])
    with pytest.raises(OvssError, match=r"VOCtrainval_11-May-2012.tar is damaged or truncated \(.*\); download it again$"):
        prepare_dataset("voc21", tmp_path, tmp_path / "data", checksum=False)


def test_a_truncated_zip_is_one_line(tmp_path):
    zipped = ade_zip(tmp_path)
    zipped.write_bytes(zipped.read_bytes()[:-30])
    with pytest.raises(OvssError, match=r"ADEChallengeData2016.zip is damaged or truncated"):
        prepare_dataset("ade20k", tmp_path, tmp_path / "data", checksum=False)


def test_a_corrupt_zip_member_is_one_line(tmp_path):
    coco_downloads(tmp_path)
    zipped = tmp_path / "stuffthingmaps_trainval2017.zip"
    data = bytearray(zipped.read_bytes())
    at = data.index(b"val2017/000000000139.png") + len("val2017/000000000139.png") + 20  # inside the member's data
    data[at] ^= 0xFF
    zipped.write_bytes(bytes(data))
    with pytest.raises(OvssError, match=r"stuffthingmaps_trainval2017.zip is damaged or truncated"):
        prepare_dataset("coco_object", tmp_path, tmp_path / "data", checksum=False)


def test_the_published_checksum_is_checked(tmp_path):
    tar = voc2012_tar(tmp_path)
    md5 = hashlib.md5(tar.read_bytes()).hexdigest()
    with pytest.raises(OvssError) as e:
        prepare_dataset("voc21", tmp_path, tmp_path / "data")
    assert str(e.value) == (f"{tar} has md5 {md5}, but the official VOCtrainval_11-May-2012.tar has "
                            "6cd6e144f989b92b3379bac3b3de84fd; download it again (or pass checksum=False for a copy you trust)")
    assert e.value.param == "checksum"


def test_missing_download_and_wrong_split(tmp_path):
    with pytest.raises(OvssError, match=r"^val2017.zip not found in .*; how to get it: download val2017.zip \(http"):
        prepare_dataset("coco_object", tmp_path, tmp_path / "data")
    with pytest.raises(OvssError, match="split must be one of val, train for ade20k, got 'test'"):
        prepare_dataset("ade20k", tmp_path, tmp_path / "data", split="test")
    with pytest.raises(OvssError, match="shapesworld is not prepared from downloads"):
        prepare_dataset("shapesworld", tmp_path, tmp_path / "data")


# ---------------------------------------------------------------- the command


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ovss")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prepares_then_checks(tmp_path, capsys):
    voc2012_tar(tmp_path)
    assert _run(["data", "prepare", "voc21", "--from", str(tmp_path), "--out", str(tmp_path / "data"), "--no-checksum"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"voc21 (val): 5 file(s) written, 0 kept from an earlier run, in {tmp_path / 'data/VOCdevkit/VOC2012'}"
    assert out[1] == "ok: 2 images, 2 annotations, 21 classes"


def test_cli_names_the_flag(tmp_path, capsys):
    from ovss.cli import main

    assert main(["data", "prepare", "ade20k", "--from", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ovss: error: --from folder {tmp_path / 'nowhere'} does not exist or is not a folder"


def test_a_killed_run_resumes_to_the_same_files(tmp_path, monkeypatch):
    from ovss.data.prepare.output import OutputFolder

    context_downloads(tmp_path)
    real = OutputFolder.write_label
    calls = []

    def dies_on_the_second(self, rel, label):
        calls.append(rel)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user's Ctrl-C, between two files
        return real(self, rel, label)

    monkeypatch.setattr(OutputFolder, "write_label", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("context60", tmp_path, tmp_path / "data", checksum=False)
    monkeypatch.setattr(OutputFolder, "write_label", real)
    base = tmp_path / "data/VOCdevkit/VOC2010"
    finished = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and p.name != LOG_NAME)
    assert "SegmentationClassContext/2008_000001.png" in finished and len(finished) == 3
    again = prepare_dataset("context60", tmp_path, tmp_path / "data", checksum=False)
    assert (again.written, again.skipped) == (2, 3)  # what was written before the kill is kept
    assert np.array_equal(read_label(base / "SegmentationClassContext/2008_000001.png"), CONTEXT_EXPECTED)
    assert not list(base.rglob("*.tmp"))


def test_not_an_archive_is_one_line(tmp_path):
    (tmp_path / "VOCtrainval_11-May-2012.tar").write_bytes(b"<html>404 Not Found</html>" * 40)
    with pytest.raises(OvssError, match=r"VOCtrainval_11-May-2012.tar is damaged or truncated \(.*\); download it again$"):
        prepare_dataset("voc21", tmp_path, tmp_path / "data", checksum=False)


def test_a_repacked_zip_with_a_wrapping_folder_is_read_the_same(tmp_path):
    coco_downloads(tmp_path)
    stuff = tmp_path / "stuffthingmaps_trainval2017.zip"
    with zipfile.ZipFile(stuff) as z:
        members = {"stuffthingmaps/" + n: z.read(n) for n in z.namelist()}
    write_zip(stuff, members)
    prepare_dataset("coco_stuff164k", tmp_path, tmp_path / "data", checksum=False)
    ann = tmp_path / "data/coco_stuff164k/annotations/val2017"
    assert np.array_equal(read_label(ann / "000000000139_labelTrainIds.png"), COCO_STUFF_EXPECTED)


def test_data_check_advice_names_ovss_data_prepare():
    from ovss.data import DATASETS
    from ovss.data.prepare import PREPARERS

    assert set(PREPARERS) == set(DATASETS) - {"shapesworld"}
    for name in PREPARERS:
        assert DATASETS[name].prepare.endswith(f"then run `ovss data prepare {name} --from DOWNLOADS --out ROOT`")
        assert "mmseg" not in DATASETS[name].prepare and "dataset_converters" not in DATASETS[name].prepare
