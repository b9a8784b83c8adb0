"""Each mmseg-based preset queries exactly the class names its authors' code reads (their
``configs/cls_<dataset>.txt``), written as ovss class files in ``classnames/<folder>/`` with the
source named; label order and the result's per-class keys stay the dataset's."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from ovss.data import CLASSNAMES_DIR, get_spec, protocol_class_file, read_class_file
from ovss.errors import OvssError
from ovss.evaluation.runner import run_benchmark
from ovss.segment import PRESETS, get_preset

BENCHMARKS = ("voc21", "voc20", "context60", "context59", "coco_object", "coco_stuff164k", "cityscapes", "ade20k")
SHARED = "sclip_naclip"
# preset -> {dataset: folder} where it is not SHARED (None: the dataset's own ovss list)
EXCEPTIONS = {
    "sclip": {}, "naclip": {}, "scclip": {}, "resclip-rcs": {}, "resclip": {},
    "clearclip": {"voc21": "clearclip", "voc20": "clearclip", "coco_object": "clearclip"},
    "proxyclip": {"voc21": "proxyclip", "voc20": "clearclip", "coco_object": "proxyclip"},
    "mlmp": {"ade20k": None},
    "gem": dict.fromkeys(BENCHMARKS),  # GEM's repository ships no dataset evaluation, hence no lists
    "shapesworld": dict.fromkeys(BENCHMARKS),
}
PAIRS = [(p, d) for p in EXCEPTIONS for d in BENCHMARKS]

BACKGROUND_26 = ["sky", "wall", "tree", "wood", "grass", "road", "sea", "river", "mountain", "sands", "desk", "bed",
                 "building", "cloud", "lamp", "door", "window", "wardrobe", "ceiling", "shelf", "curtain", "stair",
                 "floor", "hill", "rail", "fence"]
PERSON = ["person", "person in shirt", "person in jeans", "person in dress", "person in sweater", "person in skirt",
          "person in jacket"]


def test_every_preset_is_listed():
    assert set(EXCEPTIONS) == set(PRESETS)


@pytest.mark.parametrize("preset,dataset", PAIRS)
def test_each_preset_and_dataset_resolve_to_the_expected_file(preset, dataset):
    folder = EXCEPTIONS[preset].get(dataset, SHARED)
    path = protocol_class_file(dataset, get_preset(preset, dataset).class_set)
    if folder is None:
        assert path is None
    else:
        assert path == CLASSNAMES_DIR / folder / get_spec(dataset).class_file
        assert len(read_class_file(path)) == get_spec(dataset).num_classes  # line i is label i


@pytest.mark.parametrize("preset", list(EXCEPTIONS))
def test_shapesworld_keeps_its_own_classes(preset):
    assert protocol_class_file("shapesworld", get_preset(preset, "shapesworld").class_set) is None


def _lists(folder, name):
    return read_class_file(CLASSNAMES_DIR / folder / f"{name}.txt")


def _queries(classes):
    return sum(len(c) for c in classes)


def test_voc_lists_as_each_author_ships_them():
    shared = _lists(SHARED, "voc20")  # SCLIP, NACLIP, SC-CLIP, ResCLIP, MLMP
    assert (len(shared), _queries(shared)) == (20, 30)
    assert shared[3] == ["ship"] and shared[14] == PERSON
    assert shared[19] == ["television monitor", "tv monitor", "monitor", "television", "screen"]
    clear = _lists("clearclip", "voc20")  # ClearCLIP and ProxyCLIP: one name per class
    assert (len(clear), _queries(clear)) == (20, 20)
    assert clear[14] == ["person"] and clear[19] == ["tvmonitor"]
    assert sum(a != b for a, b in zip(shared, clear)) == 2
    own = read_class_file(CLASSNAMES_DIR / "voc20.txt")  # ovss's own list: what the presets queried before
    assert sum(a != b for a, b in zip(shared, own)) == 9 and _queries(own) == 35

    voc21 = _lists(SHARED, "voc21")
    assert voc21[0] == BACKGROUND_26 and (len(voc21), _queries(voc21)) == (21, 56)
    clear21 = _lists("clearclip", "voc21")
    assert clear21[0] == ["background"] and clear21[1:] == clear and _queries(clear21) == 21
    proxy21 = _lists("proxyclip", "voc21")  # ProxyCLIP separates names with "; "
    assert proxy21[0] == BACKGROUND_26 and proxy21[1:] == clear and _queries(proxy21) == 46


def test_coco_object_lists_as_each_author_ships_them():
    shared = _lists(SHARED, "coco_object")
    assert shared[0] == BACKGROUND_26 and shared[1] == PERSON + ["body"] and _queries(shared) == 113
    clear = _lists("clearclip", "coco_object")
    assert clear[:2] == [["background"], ["person"]] and (len(clear), _queries(clear)) == (81, 81)
    proxy = _lists("proxyclip", "coco_object")
    assert proxy[0] == ["sky", "wall", "tree", "wood", "grass", "road", "sea", "river", "mountain", "sands", "desk",
                        "bed", "building", "cloud", "floor", "hill", "rail"]
    assert proxy[1:] == clear[1:] and _queries(proxy) == 97


def test_ade20k_and_the_lists_every_author_shares():
    ade = _lists(SHARED, "ade20k")  # NACLIP's file (the six repositories ship the same one)
    assert [c for c in ade[:4]] == [["wall"], ["building"], ["sky"], ["floor"]]
    assert (len(ade), _queries(ade)) == (150, 150)
    own = read_class_file(CLASSNAMES_DIR / "ade20k.txt")
    assert sum(a != b for a, b in zip(ade, own)) == 82 and _queries(own) == 252
    # same classes in the same order, without ovss's synonyms; 15 names are written without their
    # spaces in the authors' file, and that is what their code queries
    joined = {i: (a[0], o[0]) for i, (a, o) in enumerate(zip(ade, own)) if a[0] != o[0]}
    assert len(joined) == 15 and joined[44] == ("chestofdrawers", "chest of drawers")
    assert joined[136] == ("trafficlight", "traffic light")
    assert all(a == o.replace(" ", "") for a, o in joined.values())
    for name, n in (("context60", 60), ("context59", 59), ("coco_stuff", 171), ("city_scapes", 19)):
        classes = _lists(SHARED, name)
        assert len(classes) == _queries(classes) == n  # one name per class in every repository


SOURCE = re.compile(r"^#   [\w.-]+/[\w.-]+@[0-9a-f]{7} \S+\.txt$")


@pytest.mark.parametrize("path", sorted(p for d in (SHARED, "clearclip", "proxyclip")
                                        for p in (CLASSNAMES_DIR / d).glob("*.txt")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_names_its_sources(path):
    sources = [line for line in path.read_text(encoding="utf-8").splitlines() if SOURCE.match(line)]
    assert sources, f"{path} names no repo@commit file"
    repos = {s.split()[1].split("@")[0] for s in sources}
    if path.parent.name == SHARED:
        assert {"wangf3014/SCLIP", "sinahmr/NACLIP", "SuleBai/SC-CLIP", "yvhangyang/ResCLIP"} <= repos
        assert ("dosowiechi/MLMP" in repos) == (path.name != "ade20k.txt")
        shared_by_all = path.name not in ("voc21.txt", "voc20.txt", "coco_object.txt")
        assert ({"mc-lan/ClearCLIP", "mc-lan/ProxyCLIP"} <= repos) == shared_by_all


def test_unknown_class_set_is_one_clear_error():
    with pytest.raises(OvssError, match=r"unknown class_set 'naclp'; choose one of: clearclip, proxyclip, sclip_naclip"):
        get_preset("naclip").with_overrides(class_set="naclp")
    with pytest.raises(OvssError, match="unknown class_set 'nope'"):
        protocol_class_file("voc20", "nope")
    assert get_preset("naclip").with_overrides(class_set="clearclip").class_set == "clearclip"


def _fake_voc(root):
    """One 24 x 36 VOC image whose label holds classes 1 (aeroplane) and 15 (person)."""
    base = root / "VOCdevkit" / "VOC2012"
    (base / "JPEGImages").mkdir(parents=True)
    (base / "SegmentationClass").mkdir()
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    rgb = np.random.default_rng(0).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(base / "JPEGImages" / "a.jpg")
    label = np.ones((24, 36), np.uint8)
    label[:, 18:] = 15
    Image.fromarray(label, mode="L").convert("P").save(base / "SegmentationClass" / "a.png")
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n")
    return root


def test_bench_records_the_class_source_and_keeps_the_dataset_names(tiny_random, tmp_path):
    root = _fake_voc(tmp_path / "voc")
    out = tmp_path / "run"
    fast = dict(preset="naclip", workers=0, progress=False, templates="single", resize_short=56, pamr=False)
    run_benchmark(tiny_random, [("voc20", root)], out, **fast)
    data = json.loads((out / "voc20" / "none" / "original.json").read_text())
    assert data["data"]["class_source"] == "sclip_naclip/voc20.txt"
    assert len(data["data"]["classes"]) == 20 and _queries(data["data"]["classes"]) == 30
    assert data["data"]["classes"][14] == PERSON
    assert data["settings"]["segmenter"]["class_set"] == "sclip_naclip"
    own = [c[0] for c in read_class_file(CLASSNAMES_DIR / "voc20.txt")]
    assert list(data["metrics"]["IoU"]) == own  # keys: the dataset's display names ("tv monitor", ...)
    # a folder run with another list says so on resume instead of mixing the two
    with pytest.raises(OvssError, match=r"another configuration.*class_set.*sclip_naclip -> clearclip"):
        run_benchmark(tiny_random, [("voc20", root)], out, **fast, class_set="clearclip")
