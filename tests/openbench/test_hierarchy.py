"""Is-a relations for semantic duplication and fine granularity: head nouns and a stub WordNet."""
from ovss.openbench import Hierarchy, fine_grained, semantic_duplicates


class StubWordNet:
    """senses(word) -> offsets, synset(offset) -> (lemmas, hypernyms), like ovss.concepts.filters.WordNet."""

    SYNSETS = {
        1: (["entity"], []), 2: (["artifact"], [1]), 3: (["organism"], [1]), 4: (["person"], [3]),
        5: (["animal"], [3]), 6: (["bird"], [5]), 7: (["shorebird"], [6]), 8: (["oystercatcher"], [7]),
        9: (["toaster"], [4]), 10: (["toaster"], [2]), 11: (["dog"], [5]),
        12: (["washer"], [4]), 13: (["washer", "washing_machine"], [2]), 14: (["appliance"], [2]),
    }
    SENSES = {"entity": [1], "artifact": [2], "person": [4], "animal": [5], "bird": [6], "shorebird": [7],
              "oystercatcher": [8], "toaster": [9, 10], "dog": [11], "washer": [12, 13], "washing machine": [13],
              "appliance": [14]}

    def senses(self, word):
        return self.SENSES.get(word.lower(), [])

    def synset(self, offset):
        return self.SYNSETS[offset]


def test_head_nouns_without_wordnet():
    h = Hierarchy(None)
    assert h.is_a(["double door"], ["door"]) and not h.is_a(["door"], ["double door"])
    assert h.is_a(["street lights"], ["light", "lamp"])  # plural head noun
    assert not h.is_a(["sofa", "couch"], ["couch"])  # a shared name is the same class
    classes = [["door"], ["double door"], ["sofa"], ["window"]]
    assert semantic_duplicates(classes, h) == [("double door", "door")]


def test_wordnet_hypernyms_and_fine_granularity():
    h = Hierarchy(StubWordNet())
    assert h.is_a(["oystercatcher"], ["bird"]) and h.is_a(["oystercatcher"], ["animal"])
    assert not h.is_a(["bird"], ["oystercatcher"])
    # fine-grained: below the finest training class above it; "animal" has "dog" under it in training
    train = [["animal"], ["dog"], ["bird"]]
    assert fine_grained([["oystercatcher"], ["dog"], ["shorebird"]], train, h) == [("oystercatcher", "bird"), ("shorebird", "bird")]
    assert fine_grained([["dog"]], [["animal"]], h) == [("dog", "animal")]
    assert fine_grained([["bird"]], [["animal"], ["dog"]], h) == []  # "animal" is a catch-all beside "dog"


def test_senses_follow_synonyms_and_prefer_things_over_people():
    h = Hierarchy(StubWordNet())
    assert not h.is_a(["toaster"], ["person"]) and h.is_a(["toaster"], ["artifact"])
    assert not h.is_a(["washer"], ["person"])
    assert h.is_a(["washer", "washing machine"], ["artifact"])
    assert semantic_duplicates([["person"], ["toaster"], ["dog"], ["animal"]], h) == [("dog", "animal")]
