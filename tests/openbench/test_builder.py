"""The OpenBench builder on a tiny hand-made dataset in MMSeg layout, with a stub similarity."""
import json

import numpy as np
import pytest
from PIL import Image

from ovss.data import SegDataset
from ovss.errors import OvssError
from ovss.openbench import build_openbench, read_merge_file

CLASSES = ["background", "cat", "lion", "truck", "dog"]
TRAIN = [["cat"], ["dog"]]
# similarity to the training vocabulary: cat 1.0, dog 1.0, lion 0.8, truck 0.3
B, C, L, T, D, X = 0, 1, 2, 3, 4, 255
LABELS = {
    "a": [[C, C], [D, D]],  # min 1.0: dropped
    "b": [[C, C], [L, L]],  # min 0.8: dropped with sigma1 0.5
    "c": [[C, T], [T, T]],  # min 0.3: kept; cat -> others
    "d": [[L, T], [B, X]],  # min 0.3: kept; lion kept (0.8 <= sigma2), background -> others, 255 stays
}


def make_source(root):
    """4 images of 2 x 2 pixels in the layout ``ovss world make`` writes (shapesworld spec)."""
    for name, label in LABELS.items():
        (root / "images" / "val").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / "val").mkdir(parents=True, exist_ok=True)
        rgb = np.full((2, 2, 3), 40 * (ord(name) - 96), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "images" / "val" / f"{name}.png")
        Image.fromarray(np.array(label, dtype=np.uint8)).save(root / "annotations" / "val" / f"{name}.png")
    (root / "val.txt").write_text("".join(n + "\n" for n in LABELS))
    (root / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    (root / "meta.json").write_text(json.dumps({"background_index": 0}))
    return SegDataset("shapesworld", root, "val")


def read_out(out):
    ds = SegDataset("shapesworld", out, "val")
    return ds, {item["name"]: item["label"].tolist() for item in ds}


def test_filtering_and_remapping(tmp_path, stub_similarity):
    src = make_source(tmp_path / "src")
    summary = build_openbench([src], TRAIN, stub_similarity, sigma1=0.5, sigma2=0.9, out=tmp_path / "out",
                              source_labels=["hand"], progress=False)
    ds, labels = read_out(tmp_path / "out")
    assert ds.classes == [["others"], ["lion"], ["truck"]] and ds.background_index == 0
    assert labels == {"hand_c": [[0, 2], [2, 2]], "hand_d": [[1, 2], [0, 255]]}
    assert summary["images"] == 2 and summary["to_others"] == ["cat"]
    by_name = {c["name"]: c for c in summary["classes"]}
    assert by_name["truck"]["pixels"] == 4 and by_name["truck"]["images"] == 2 and by_name["lion"]["similarity"] == 0.8
    assert np.array_equal(ds[0]["image"], np.full((2, 2, 3), 120, dtype=np.uint8))  # image c, unchanged


def test_sigma2_sends_close_classes_to_others(tmp_path, stub_similarity):
    src = make_source(tmp_path / "src")
    build_openbench([src], TRAIN, stub_similarity, sigma1=0.5, sigma2=0.5, out=tmp_path / "out",
                    others_names=True, progress=False)
    ds, labels = read_out(tmp_path / "out")
    assert ds.classes == [["others", "cat", "lion"], ["truck"]]  # the merged names as synonyms of "others"
    assert labels["shapesworld_d"] == [[0, 1], [0, 255]]


def test_merge_list_renames_and_drops(tmp_path, stub_similarity):
    src = make_source(tmp_path / "src")
    rules = tmp_path / "merge.txt"
    rules.write_text("# manual filtering\nlion -> big cat\ntruck -> ignore   # not wanted\n")
    merge = read_merge_file(rules)
    assert merge == {"lion": "big cat", "truck": "ignore"}
    summary = build_openbench([src], TRAIN, stub_similarity, 0.5, 0.9, tmp_path / "out", merge=merge, progress=False)
    ds, labels = read_out(tmp_path / "out")
    assert ds.classes == [["others"], ["big cat"]]
    assert labels["shapesworld_c"] == [[0, 255], [255, 255]] and labels["shapesworld_d"] == [[1, 255], [0, 255]]
    assert summary["dropped"] == ["truck"]


def test_builder_errors(tmp_path, stub_similarity):
    src = make_source(tmp_path / "src")
    with pytest.raises(OvssError, match="no image has a class below sigma1=0.2"):
        build_openbench([src], TRAIN, stub_similarity, 0.2, 0.9, tmp_path / "out", progress=False)
    with pytest.raises(OvssError, match="merge rule for 'tiger'"):
        build_openbench([src], TRAIN, stub_similarity, 0.5, 0.9, tmp_path / "out", merge={"tiger": "cat"}, progress=False)
    with pytest.raises(OvssError, match="raise sigma2"):
        build_openbench([src], TRAIN, stub_similarity, 0.5, 0.1, tmp_path / "out", progress=False)
    bad = tmp_path / "bad.txt"
    bad.write_text("lion = cat\n")
    with pytest.raises(OvssError, match="bad.txt:1: 'lion = cat' is not a rule"):
        read_merge_file(bad)
