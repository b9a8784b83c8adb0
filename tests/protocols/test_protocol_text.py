"""MLMP's exact template strings and its own class lists (written from its repository's files,
which are SCLIP's and NACLIP's: ``classnames/sclip_naclip``)."""
import pytest

from ovss.data import CLASSNAMES_DIR, get_spec, protocol_class_file, read_class_file
from ovss.segment import get_preset
from ovss.text import get_templates

# prompts.yaml of github.com/dosowiechi/MLMP (2a887de), character for character
MLMP_PROMPTS = ("itap of a {}", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
                "a {} in a video game.", "art of the {}.", "a photo of the small {}.")


def test_seven_templates_are_mlmp_prompts_yaml():
    assert get_templates("seven") == MLMP_PROMPTS
    assert get_preset("mlmp").templates == "mlmp_reference"  # NoAdapt. as MLMP's main.py runs it
    assert get_templates("mlmp_reference") == ("a photo of a {}",)  # MLMP's REFERENCE_PROMPT, no period


# (dataset, classes, queries) as MLMP's utils/class_extensions/<name>.txt lists them
COUNTS = [("voc20", 20, 30), ("voc21", 21, 56), ("context59", 59, 59), ("context60", 60, 60),
          ("coco_object", 81, 113), ("cityscapes", 19, 19), ("coco_stuff164k", 171, 171)]


@pytest.mark.parametrize("dataset,n_classes,n_queries", COUNTS)
def test_mlmp_class_files_match_the_source_counts(dataset, n_classes, n_queries):
    path = protocol_class_file(dataset, get_preset("mlmp", dataset).class_set)
    assert path is not None and path.parent == CLASSNAMES_DIR / "sclip_naclip"  # MLMP's lists are SCLIP's and NACLIP's
    classes = read_class_file(path)
    assert len(classes) == n_classes == get_spec(dataset).num_classes
    assert sum(len(c) for c in classes) == n_queries
    assert any(line.startswith("#   dosowiechi/MLMP@2a887de utils/class_extensions/")
               for line in path.read_text(encoding="utf-8").splitlines())  # the source is named


def test_mlmp_voc20_lines_and_how_they_differ_from_ovss():
    mlmp = read_class_file(protocol_class_file("voc20", "sclip_naclip"))
    assert mlmp[3] == ["ship"] and mlmp[10] == ["table"] and mlmp[15] == ["pottedplant"]
    assert mlmp[14] == ["person", "person in shirt", "person in jeans", "person in dress", "person in sweater",
                        "person in skirt", "person in jacket"]
    assert mlmp[19] == ["television monitor", "tv monitor", "monitor", "television", "screen"]
    ours = read_class_file(CLASSNAMES_DIR / "voc20.txt")
    assert sum(a != b for a, b in zip(mlmp, ours)) == 9  # the "9 of 20 lines differ"
    assert sum(len(c) for c in ours) == 35


def test_mlmp_keeps_the_dataset_list_where_it_has_none():
    assert get_preset("mlmp").class_set == "sclip_naclip"
    assert get_preset("mlmp", "ade20k").class_set is None  # MLMP has no ADE20K list: the dataset's own
    assert get_preset("shapesworld").class_set is None
    assert protocol_class_file("voc20", None) is None


def test_comment_and_blank_lines_are_skipped(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("# source: somewhere\n\ncat, kitty\n   # indented comment\ndog\n", encoding="utf-8")
    assert read_class_file(f) == [["cat", "kitty"], ["dog"]]


def test_bench_queries_the_protocol_list_and_says_so():
    from types import SimpleNamespace

    from ovss.evaluation.runner import protocol_classes

    ds = SimpleNamespace(spec=SimpleNamespace(name="voc20"), classes=read_class_file(CLASSNAMES_DIR / "voc20.txt"))
    classes, source = protocol_classes(ds, get_preset("mlmp", "voc20"))
    assert source == "sclip_naclip/voc20.txt" and classes[3] == ["ship"]
    classes, source = protocol_classes(ds, get_preset("gem", "voc20"))  # GEM's repository ships no lists
    assert source == "dataset" and classes is ds.classes
