"""Openness statistics (the OVSNet paper Table 1) on a hand vocabulary with a stub text similarity."""
import pytest

from ovss.errors import OvssError
from ovss.openbench import (
    DatasetEntry, Hierarchy, max_similarity, openness_stats, parse_dataset, plot_histogram, resolve_vocabulary, stats_table,
)

TRAIN = [["cat"], ["dog"]]


def test_max_similarity_by_hand(stub_similarity):
    sims = max_similarity([["cat"], ["lion"], ["truck"], ["zebra"]], TRAIN, stub_similarity)
    assert sims.tolist() == [1.0, 0.8, 0.3, 0.4]


def test_stats_by_hand(stub_similarity):
    entry = DatasetEntry("hand", [["background"], ["cat"], ["lion"], ["truck"], ["zebra"]])
    s = openness_stats(entry, TRAIN, stub_similarity, Hierarchy(None))
    # maxima 1.0, 0.8, 0.3, 0.4 ("background" names no category and is left out)
    assert s.classes == 4 and s.images is None
    assert s.mean == pytest.approx(0.625) and s.median == pytest.approx(0.6)
    assert s.min == pytest.approx(0.3) and s.max == pytest.approx(1.0)
    assert s.similarities == {"cat": 1.0, "lion": 0.8, "truck": 0.3, "zebra": 0.4}
    assert not s.semantic_duplication and not s.fine_granularity
    table = stats_table([s])
    assert "| hand | 4 | - | 0.6250 | 0.6000 | 0.3000 | 1.0000 | × (0 %) | × | 0 |" in table


def test_unknown_words_are_counted(stub_similarity):
    stub_similarity.unknown_words = lambda words: [w for w in words if w == "zebra"]
    s = openness_stats(DatasetEntry("hand", [["cat"], ["zebra"]]), TRAIN, stub_similarity, Hierarchy(None))
    assert s.unknown == ["zebra"] and s.as_dict()["unknown_to_model"] == ["zebra"]
    assert stats_table([s]).splitlines()[-1].endswith("| 1 |")


def test_duplication_and_fine_granularity_columns(stub_similarity):
    entry = DatasetEntry("doors", [["door"], ["double door"], ["cat"], ["tabby cat"]])
    s = openness_stats(entry, TRAIN, stub_similarity, Hierarchy(None))
    assert s.duplicates == [("double door", "door"), ("tabby cat", "cat")]
    assert s.fine_pairs == [("tabby cat", "cat")] and s.fine_share == 0.25 and s.fine_granularity
    assert "✓ (25 %)" in stats_table([s]) and "✓ (2 pairs)" in stats_table([s])


def test_histogram_png(tmp_path, stub_similarity):
    s = openness_stats(DatasetEntry("hand", [["lion"], ["truck"]]), TRAIN, stub_similarity)
    path = plot_histogram([s], tmp_path / "hist.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vocabularies_and_datasets(tmp_path):
    label, classes = resolve_vocabulary("shapesworld-base")
    assert label == "shapesworld-base" and ["boat", "ship", "sailboat"] in classes and not any(c[0] == "sand" for c in classes)
    assert len(resolve_vocabulary("voc20")[1]) == 20
    f = tmp_path / "mine.txt"
    f.write_text("cat, kitty\ndog\n")
    assert resolve_vocabulary(str(f)) == ("mine", [["cat", "kitty"], ["dog"]])
    assert parse_dataset("ade20k").dataset is None and len(parse_dataset("ade20k").classes) == 150
    with pytest.raises(OvssError, match="unknown vocabulary 'cocoa'"):
        resolve_vocabulary("cocoa")
    with pytest.raises(OvssError, match="unknown dataset 'voc99'"):
        parse_dataset(f"voc99={tmp_path}")
