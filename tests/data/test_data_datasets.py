"""SegDataset and check_layout on tiny fake layouts written the way each benchmark is prepared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovss.data import DATASETS, SegDataset, check_layout, class_names, get_spec, scan_layout
from ovss.errors import OvssError

# A hand-made label with every interesting value: 0 (background / "other"), small ids, a high id, ignore.
RAW = np.array([[0, 1, 2], [5, 19, 255]], dtype=np.uint8)
REDUCED = np.array([[255, 0, 1], [4, 18, 255]], dtype=np.uint8)  # 0 -> 255, k -> k-1, 255 stays

# dataset -> (sub-folder the user's download sits in, image paths, annotation paths, split file or None).
# Written from MMSegmentation's prepare guide / dataset classes and SCLIP's configs, not from our registry.
LAYOUTS = {
    "voc21": ("VOCdevkit/VOC2012",
              ["JPEGImages/2007_000033.jpg", "JPEGImages/2007_000042.jpg"],
              ["SegmentationClass/2007_000033.png", "SegmentationClass/2007_000042.png"],
              "ImageSets/Segmentation/val.txt"),
    "voc20": ("VOCdevkit/VOC2012",
              ["JPEGImages/2007_000033.jpg", "JPEGImages/2007_000042.jpg"],
              ["SegmentationClass/2007_000033.png", "SegmentationClass/2007_000042.png"],
              "ImageSets/Segmentation/val.txt"),
    "context60": ("VOCdevkit/VOC2010",
                  ["JPEGImages/2008_000002.jpg", "JPEGImages/2008_000003.jpg"],
                  ["SegmentationClassContext/2008_000002.png", "SegmentationClassContext/2008_000003.png"],
                  "ImageSets/SegmentationContext/val.txt"),
    "context59": ("VOCdevkit/VOC2010",
                  ["JPEGImages/2008_000002.jpg", "JPEGImages/2008_000003.jpg"],
                  ["SegmentationClassContext/2008_000002.png", "SegmentationClassContext/2008_000003.png"],
                  "ImageSets/SegmentationContext/val.txt"),
    "coco_object": ("coco_stuff164k",
                    ["images/val2017/000000000139.jpg", "images/val2017/000000000285.jpg"],
                    ["annotations/val2017/000000000139_instanceTrainIds.png",
                     "annotations/val2017/000000000285_instanceTrainIds.png"],
                    None),
    "coco_stuff164k": ("coco_stuff164k",
                       ["images/val2017/000000000139.jpg", "images/val2017/000000000285.jpg"],
                       ["annotations/val2017/000000000139_labelTrainIds.png",
                        "annotations/val2017/000000000285_labelTrainIds.png"],
                       None),
    "cityscapes": ("cityscapes",
                   ["leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png",
                    "leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png"],
                   ["gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png",
                    "gtFine/val/lindau/lindau_000000_000019_gtFine_labelTrainIds.png"],
                   None),
    "ade20k": ("ade/ADEChallengeData2016",
               ["images/validation/ADE_val_00000001.jpg", "images/validation/ADE_val_00000002.jpg"],
               ["annotations/validation/ADE_val_00000001.png", "annotations/validation/ADE_val_00000002.png"],
               None),
    "shapesworld": ("shapes",
                    ["images/val/000000.png", "images/val/000001.png"],
                    ["annotations/val/000000.png", "annotations/val/000001.png"],
                    "val.txt"),
}
REDUCES = {"voc20", "context59", "ade20k"}
EXPECTED_NAMES = {
    "cityscapes": ["frankfurt/frankfurt_000000_000294", "lindau/lindau_000000_000019"],
}


def _write_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, size=(RAW.shape[0], RAW.shape[1], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def _write_label(path: Path, label: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(label, mode="L")
    if palette:  # Pascal VOC ships palette PNGs whose indices are the labels
        im = im.convert("P")
        im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    im.save(path)


def make_layout(root: Path, name: str, label: np.ndarray = RAW) -> Path:
    """Write a two-image fake of ``name`` under ``root``; returns the dataset folder itself."""
    sub, images, anns, split = LAYOUTS[name]
    base = root / sub
    for i, (img, ann) in enumerate(zip(images, anns)):
        _write_image(base / img, i)
        _write_label(base / ann, label, palette=name.startswith("voc"))
    if split:
        stems = [Path(p).stem for p in images]
        (base / split).parent.mkdir(parents=True, exist_ok=True)
        (base / split).write_text("\n".join(reversed(stems)) + "\n")  # unsorted on purpose
    if name == "coco_stuff164k":  # raw stuffthingmaps and COCO-Object labels sit next to the train ids
        Image.fromarray(label).save(base / "annotations/val2017/000000000139.png")
        Image.fromarray(label).save(base / "annotations/val2017/000000000139_instanceTrainIds.png")
    if name == "shapesworld":
        (base / "classes.txt").write_text("background\ncircle, disc\nsquare\ntriangle\n")
    return base


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_reads_each_layout_with_its_label_reduction(tmp_path: Path, name: str) -> None:
    make_layout(tmp_path, name)
    # pass the folder above the dataset, as users often do: the usual sub-folder is found
    root = tmp_path if name != "shapesworld" else tmp_path / "shapes"
    ds = SegDataset(name, root)
    assert len(ds) == 2
    names = [ds[i]["name"] for i in range(len(ds))]
    assert names == sorted(names)
    if name in EXPECTED_NAMES:
        assert names == EXPECTED_NAMES[name]
    item = ds[0]
    assert item["image"].dtype == np.uint8 and item["image"].shape == (2, 3, 3)
    expected = REDUCED if name in REDUCES else RAW
    np.testing.assert_array_equal(item["label"], expected)
    assert check_layout(name, root) == []


def test_voc20_and_voc21_differ_only_in_reduction(tmp_path: Path) -> None:
    make_layout(tmp_path, "voc21")
    with_bg, without_bg = SegDataset("voc21", tmp_path), SegDataset("voc20", tmp_path)
    np.testing.assert_array_equal(with_bg[0]["label"], RAW)
    np.testing.assert_array_equal(without_bg[0]["label"], REDUCED)
    assert with_bg.has_background and with_bg.background_index == 0 and with_bg.num_classes == 21
    assert not without_bg.has_background and without_bg.background_index is None and without_bg.num_classes == 20


def test_shapesworld_classes_and_background_come_from_root(tmp_path: Path) -> None:
    base = make_layout(tmp_path, "shapesworld")
    ds = SegDataset("shapesworld", base)
    assert ds.classes == [["background"], ["circle", "disc"], ["square"], ["triangle"]]
    assert ds.has_background and ds.background_index == 0
    assert class_names("shapesworld", base) == ds.classes
    (base / "meta.json").write_text('{"background_index": null}')
    assert SegDataset("shapesworld", base).background_index is None


def test_shapesworld_split_file_may_carry_suffixes(tmp_path: Path) -> None:
    base = make_layout(tmp_path, "shapesworld")
    (base / "val.txt").write_text("000001.png\nimages/val/000000.png\n\n")
    assert [ds["name"] for ds in SegDataset("shapesworld", base)] == ["000000", "000001"]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_check_layout_on_empty_folder_names_the_folder_and_the_hint(tmp_path: Path, name: str) -> None:
    problems = check_layout(name, tmp_path)
    assert problems
    spec = get_spec(name)
    image_dir = spec.image_dir.format(split=spec.split_dirs.get("val", "val"))
    assert any(str(tmp_path / image_dir) in p for p in problems), problems
    assert any(spec.prepare in p for p in problems), problems
    with pytest.raises(OvssError):
        SegDataset(name, tmp_path)


def test_check_layout_counts_images_without_annotations(tmp_path: Path) -> None:
    # COCO-Stuff prepared but not converted to COCO-Object: the *_instanceTrainIds.png files are missing
    base = make_layout(tmp_path, "coco_stuff164k")
    (base / "annotations/val2017/000000000139_instanceTrainIds.png").unlink()
    report = scan_layout("coco_object", base)
    assert report.images == 2 and report.annotations == 0
    assert len(report.problems) == 1
    assert "2 of 2 images have no *_instanceTrainIds.png annotation" in report.problems[0]
    assert "ovss data prepare coco_object" in report.problems[0]


def test_check_layout_reports_split_entries_without_images(tmp_path: Path) -> None:
    base = make_layout(tmp_path, "voc21")
    (base / "JPEGImages/2007_000042.jpg").unlink()
    problems = check_layout("voc21", tmp_path)
    assert len(problems) == 1 and "1 of 2 images listed in val.txt are missing" in problems[0]


def test_check_layout_missing_root(tmp_path: Path) -> None:
    problems = check_layout("ade20k", tmp_path / "nowhere")
    assert len(problems) == 1 and "does not exist" in problems[0] and "ADEChallengeData2016.zip" in problems[0]


def test_shard_partitions_items_and_limit_applies_first(tmp_path: Path) -> None:
    base = tmp_path / "shapes"
    for i in range(7):
        _write_image(base / f"images/val/{i:06d}.png", i)
        _write_label(base / f"annotations/val/{i:06d}.png", RAW)
    (base / "val.txt").write_text("\n".join(f"{i:06d}" for i in range(7)))
    (base / "classes.txt").write_text("background\ncircle\n")
    every = [it.name for it in SegDataset("shapesworld", base).items]
    for world in (1, 2, 3, 8):
        shards = [[it.name for it in SegDataset("shapesworld", base, shard=(r, world)).items] for r in range(world)]
        assert sorted(sum(shards, [])) == every
        assert sum(len(s) for s in shards) == len(every)
    limited = [[it.name for it in SegDataset("shapesworld", base, limit=5, shard=(r, 2)).items] for r in range(2)]
    assert sorted(sum(limited, [])) == every[:5]
    assert limited[0] == every[0:5:2]
    for bad in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(OvssError):
            SegDataset("shapesworld", base, shard=bad)
    with pytest.raises(OvssError):
        SegDataset("shapesworld", base, limit=0)


def test_unknown_dataset_is_one_line_listing_valid_names(tmp_path: Path) -> None:
    for call in (lambda: SegDataset("pascal", tmp_path), lambda: check_layout("pascal", tmp_path),
                 lambda: class_names("pascal")):
        with pytest.raises(OvssError) as e:
            call()
        message = str(e.value)
        assert "\n" not in message and "'pascal'" in message
        assert all(name in message for name in DATASETS)


def test_colour_annotation_and_size_mismatch_are_user_errors(tmp_path: Path) -> None:
    base = make_layout(tmp_path, "ade20k")
    ann = base / LAYOUTS["ade20k"][2][0]
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (2, 3, 3), dtype=np.uint8)).save(ann)
    ds = SegDataset("ade20k", base)
    with pytest.raises(OvssError, match="colour image"):
        ds[0]
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(ann)
    with pytest.raises(OvssError, match="4x4"):
        ds[0]


def test_registry_matches_class_files() -> None:
    for name, spec in DATASETS.items():
        if spec.classes_in_root:
            continue
        classes = class_names(name)
        assert len(classes) == spec.num_classes, name
        if spec.has_background:
            assert classes[spec.background_index][0] == "background", name
