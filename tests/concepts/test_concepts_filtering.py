"""Each CC^D step on a tiny hand-made corpus, with counts worked out by hand."""
import numpy as np
import pytest

from ovss.concepts import (
    BackgroundSource, CooccurrenceDictionary, CooccurrenceSource, FileSource, build_dictionary,
    contrastive_concepts, load_dictionary, save_dictionary,
)
from ovss.concepts.filters import list_filter
from ovss.errors import OvssError

CORPUS = [
    "a boat on the water",                      # boat, water
    "two boats on the water under the sky",     # boat, water, sky
    "a photo of a boat next to a ship",         # photo, boat, ship
    "a boat with liberty",                      # boat, liberty
    "the sky above the water",                  # sky, water
    "",                                         # blank lines are not captions
]


class StubSimilarity:
    """Cosine similarities from a table (symmetric), 1 on the diagonal, 0.1 elsewhere."""

    def __init__(self, table):
        self.table = {frozenset(k): v for k, v in table.items()}
        self.calls = []

    def __call__(self, a, b):
        self.calls.append((list(a), list(b)))
        return np.array([[1.0 if x == y else self.table.get(frozenset((x, y)), 0.1) for y in b] for x in a])


SIM = {("boat", "ship"): 0.9, ("boat", "water"): 0.3, ("vessel", "boat"): 0.7, ("vessel", "photo"): 0.99}


@pytest.fixture
def dictionary():
    return build_dictionary(CORPUS)


def kept(decisions):
    return [d.concept for d in decisions if d.kept]


def reason(decisions, concept):
    return next(d.reason for d in decisions if d.concept == concept)


def test_counts_and_row_normalisation_by_hand(dictionary):
    assert dictionary.captions == 5
    assert dictionary.counts == {"boat": 4, "water": 3, "sky": 2, "liberty": 1, "photo": 1, "ship": 1}
    assert dictionary.pairs["boat"] == {"water": 2, "liberty": 1, "photo": 1, "ship": 1, "sky": 1}
    assert dictionary.pairs["water"] == {"boat": 2, "sky": 2}
    # row i divided by the number of captions mentioning i: 2 / 4 and 1 / 4
    assert dictionary.frequency("boat") == {"water": 0.5, "liberty": 0.25, "photo": 0.25, "ship": 0.25, "sky": 0.25}
    assert dictionary.frequency("water") == {"boat": 2 / 3, "sky": 2 / 3}


def test_min_count_and_min_frequency_prune(dictionary):
    small = build_dictionary(CORPUS, min_count=2, min_frequency=0.3)
    assert small.counts == {"boat": 4, "water": 3, "sky": 2}
    assert small.pairs["boat"] == {"water": 2}  # sky: 1 / 4 < 0.3
    with pytest.raises(OvssError, match="below the dictionary's stored minimum"):
        CooccurrenceSource(small, gamma=0.01, abstract="list")


def test_save_and_load_round_trip(dictionary, tmp_path):
    path = save_dictionary(dictionary, tmp_path / "d.json")
    again = load_dictionary(path)
    assert again.counts == dictionary.counts and again.pairs == dictionary.pairs and again.captions == 5
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(OvssError, match="not an ovss co-occurrence dictionary"):
        load_dictionary(tmp_path / "bad.json")
    with pytest.raises(OvssError, match="not found"):
        load_dictionary(tmp_path / "missing.json")


def test_shipped_dictionary_covers_shapesworld():
    from ovss.world import CLASSES

    d = load_dictionary("shapesworld")
    assert set(CLASSES) <= set(d.counts)
    assert max(d.frequency("boat"), key=d.frequency("boat").get) == "water"


def test_gamma_keeps_only_frequent_partners(dictionary):
    decisions, _ = CooccurrenceSource(dictionary, gamma=0.25, abstract="none").propose("boat")
    assert kept(decisions) == ["water"]  # 0.5 > 0.25; every 0.25 is not strictly above gamma
    assert reason(decisions, "sky") == "co-occurrence 0.250 <= gamma 0.25"


def test_uninformative_words_are_dropped(dictionary):
    decisions, _ = CooccurrenceSource(dictionary, abstract="none").propose("boat")
    assert reason(decisions, "photo") == "uninformative word"
    assert "photo" not in kept(decisions) and "liberty" in kept(decisions)


def test_abstract_concepts_are_dropped_with_the_builtin_list(dictionary):
    decisions, _ = CooccurrenceSource(dictionary, abstract="list").propose("boat")
    assert reason(decisions, "liberty") == "abstract (built-in list)"
    assert kept(decisions) == ["water", "ship", "sky"]
    assert list_filter()("liberties") is not None and list_filter()("boat") is None


def test_delta_drops_concepts_too_similar_to_the_query(dictionary):
    sim = StubSimilarity(SIM)
    decisions, _ = CooccurrenceSource(dictionary, abstract="list").propose("boat", sim)
    assert kept(decisions) == ["water", "sky"]
    assert reason(decisions, "ship") == "text similarity 0.90 to 'boat' > delta 0.8"
    assert "0.30 <= delta 0.8" in reason(decisions, "water")
    decisions, _ = CooccurrenceSource(dictionary, abstract="list", delta=0.95).propose("boat", sim)
    assert "ship" in kept(decisions)


def test_full_pipeline_adds_background(dictionary):
    cc = contrastive_concepts("boat", CooccurrenceSource(dictionary, abstract="list"), StubSimilarity(SIM))
    assert cc.concepts == ["water", "sky", "background"]
    assert reason(cc.decisions, "background") == "always added"


def test_plural_query_uses_its_singular(dictionary):
    cc = contrastive_concepts("Boats", CooccurrenceSource(dictionary, abstract="list"), StubSimilarity(SIM))
    assert cc.concepts == ["water", "sky", "background"] and cc.notes == []


def test_unknown_query_uses_its_nearest_concept(dictionary):
    sim = StubSimilarity(SIM)
    cc = contrastive_concepts("vessel", CooccurrenceSource(dictionary, abstract="list"), sim)
    # "photo" is nearer (0.99) but uninformative words are never anchors
    assert cc.notes == ["'vessel' is not in the dictionary; using its nearest concept 'boat' (text similarity 0.70)"]
    assert cc.concepts == ["water", "sky", "background"]
    with pytest.raises(OvssError, match="not in the co-occurrence dictionary"):
        CooccurrenceSource(dictionary, abstract="list").propose("vessel", None)


def test_beta_union_of_several_queries(tmp_path):
    concepts = tmp_path / "cc.txt"
    concepts.write_text("# per query\nboat: water, tree, vehicle\ncar: road, tree, boat\n")
    source = FileSource(concepts)
    sim = StubSimilarity({("vehicle", "car"): 0.95, ("road", "car"): 0.85})
    cc = contrastive_concepts(["boat", "car"], source, sim)
    assert cc.concepts == ["water", "tree", "road", "background"]
    assert reason(cc.decisions, "vehicle") == "text similarity 0.95 to query 'car' > beta 0.9"
    dropped = {d.concept: d.reason for d in cc.decisions if not d.kept}
    assert dropped["boat"] == "is one of the queries"
    assert dropped["tree"] == "already proposed for 'boat'"
    # beta off, or a single query: vehicle stays
    assert "vehicle" in contrastive_concepts(["boat", "car"], source, sim, beta=None).concepts
    assert contrastive_concepts("boat", source, sim).concepts == ["water", "tree", "vehicle", "background"]


def test_background_source_and_file_errors(tmp_path):
    assert contrastive_concepts("boat", BackgroundSource()).concepts == ["background"]
    f = tmp_path / "cc.txt"
    f.write_text("boat: water\n")
    with pytest.raises(OvssError, match="lists no concepts for 'car'"):
        FileSource(f).propose("car")
    (tmp_path / "general.json").write_text('["Water", "sky"]')
    assert contrastive_concepts("car", FileSource(tmp_path / "general.json")).concepts == ["water", "sky", "background"]


def test_dictionary_lookup():
    d = CooccurrenceDictionary({"boat": 2}, {}, 2)
    assert d.lookup("Boats") == "boat" and d.lookup("ship") is None


def test_shipped_shapesworld2_dictionary_is_mined_from_its_captions():
    """2000 ShapesWorld 2 training captions: their place words (no class list has them) are
    concepts, and a boat is seen most with the sky and the sea, as its contexts (beach, lake)
    draw it."""
    d = load_dictionary("shapesworld2")
    assert {"kitchen", "harbour", "dog", "sofa", "sky"} <= set(d.counts)
    top = sorted(d.frequency("boat").items(), key=lambda kv: -kv[1])
    assert [c for c, _ in top[:2]] == ["sky", "sea"]
