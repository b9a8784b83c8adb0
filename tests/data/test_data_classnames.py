"""Class-name files: counts, no shared names, and the official label order of each benchmark."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovss.data import CLASSNAMES_DIR, read_class_file
from ovss.errors import OvssError

COUNTS = {
    "voc21": 21, "voc20": 20, "context60": 60, "context59": 59, "coco_object": 81,
    "coco_stuff": 171, "city_scapes": 19, "ade20k": 150,
}

# Official label orders (MMSegmentation METAINFO), to catch a shifted line.
VOC = ("aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
       "pottedplant sheep sofa train tvmonitor").split()
CONTEXT = ("aeroplane bag bed bedclothes bench bicycle bird boat book bottle building bus cabinet car cat ceiling "
           "chair cloth computer cow cup curtain dog door fence floor flower food grass ground horse keyboard light "
           "motorbike mountain mouse person plate platform pottedplant road rock sheep shelves sidewalk sign sky snow "
           "sofa table track train tree truck tvmonitor wall water window wood").split()
COCO_THINGS = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]
COCO_STUFF = (
    "banner blanket branch bridge building-other bush cabinet cage cardboard carpet ceiling-other ceiling-tile "
    "cloth clothes clouds counter cupboard curtain desk-stuff dirt door-stuff fence floor-marble floor-other "
    "floor-stone floor-tile floor-wood flower fog food-other fruit furniture-other grass gravel ground-other hill "
    "house leaves light mat metal mirror-stuff moss mountain mud napkin net paper pavement pillow plant-other "
    "plastic platform playingfield railing railroad river road rock roof rug salad sand sea shelf sky-other "
    "skyscraper snow solid-other stairs stone straw structural-other table tent textile-other towel tree "
    "vegetable wall-brick wall-concrete wall-other wall-panel wall-stone wall-tile wall-wood water-other "
    "waterdrops window-blind window-other wood"
).split()
CITYSCAPES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
              "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
              "bicycle"]
ADE_SPOT = {0: "wall", 7: "bed", 12: "person", 44: "chest of drawers", 56: "pool table", 89: "television receiver",
            100: "poster", 123: "trade name", 141: "crt screen", 149: "flag"}


def _norm(name: str) -> str:
    return name.lower().replace(" ", "").replace("-", "")


def _stuff_matches(official: str, names: list[str]) -> bool:
    """'wall-brick' matches 'brick wall', 'floor-other' matches 'floor', 'playingfield' matches 'playing field'."""
    renamed = {"structural-other": "structure", "floor-wood": "woodenfloor", "wall-wood": "woodenwall"}
    words = [w for w in official.split("-") if w not in ("other", "stuff")]
    wanted = {"".join(words), "".join(reversed(words)), renamed.get(official, "")}
    return any(_norm(n) in wanted for n in names)


@pytest.mark.parametrize("stem,count", sorted(COUNTS.items()))
def test_counts_and_no_shared_names(stem: str, count: int) -> None:
    classes = read_class_file(CLASSNAMES_DIR / f"{stem}.txt")
    assert len(classes) == count
    flat = [_norm(n) for names in classes for n in names]
    assert len(flat) == len(set(flat))
    assert all(n == n.strip() and n for names in classes for n in names)


def test_official_orders() -> None:
    def first(stem: str) -> list[str]:
        return [_norm(c[0]) for c in read_class_file(CLASSNAMES_DIR / f"{stem}.txt")]

    assert first("voc20") == [_norm(n) for n in VOC]
    assert first("voc21") == ["background"] + [_norm(n) for n in VOC]
    assert first("context59") == [_norm(n) for n in CONTEXT]
    assert first("context60") == ["background"] + [_norm(n) for n in CONTEXT]
    assert first("coco_object") == ["background"] + [_norm(n) for n in COCO_THINGS]
    assert first("city_scapes") == [_norm(n) for n in CITYSCAPES]
    stuff = read_class_file(CLASSNAMES_DIR / "coco_stuff.txt")
    assert [_norm(c[0]) for c in stuff[:80]] == [_norm(n) for n in COCO_THINGS]
    for official, names in zip(COCO_STUFF, stuff[80:]):
        assert _stuff_matches(official, names), (official, names)
    ade = first("ade20k")
    for index, name in ADE_SPOT.items():
        assert ade[index] == _norm(name)


def test_synonyms_are_split_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "cls.txt"
    path.write_text("\ufeffperson ,  people,man\n\n  sky  \ncar,, automobile, car\n")
    assert read_class_file(path) == [["person", "people", "man"], ["sky"], ["car", "automobile"]]


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"),
    ("\n  \n", "empty"),
    ("cat\ndog\ncat\n", "line 1"),
    ("cat\n , ,\n", "no class name"),
])
def test_bad_files_are_one_line_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "cls.txt"
    path.write_text(text)
    with pytest.raises(OvssError) as e:
        read_class_file(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_shared_synonym_is_allowed_as_in_published_files(tmp_path: Path) -> None:
    # SCLIP's COCO-Object list names "bed" among the background synonyms and as a class.
    path = tmp_path / "cls.txt"
    path.write_text("background, bed, wall\nbed\n")
    assert read_class_file(path) == [["background", "bed", "wall"], ["bed"]]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OvssError, match="not found"):
        read_class_file(tmp_path / "nope.txt")
