import pytest

from ovss.concepts.vocabulary import extract_concepts, normalise, singular


@pytest.mark.parametrize("plural,single", [
    ("boats", "boat"), ("skies", "sky"), ("benches", "bench"), ("boxes", "box"), ("houses", "house"),
    ("glasses", "glass"), ("leaves", "leaf"), ("people", "person"), ("children", "child"), ("fish", "fish"),
    ("grass", "grass"), ("bus", "bus"), ("cactus", "cactus"), ("shoes", "shoe"), ("tomatoes", "tomato"),
    ("sky", "sky"), ("gas", "gas"),
])
def test_singular(plural, single):
    assert singular(plural) == single


@pytest.mark.parametrize("caption,concepts", [
    ("a photo of two red boats on the water.", ["photo", "boat", "water"]),
    ("There is a car in front of the wall", ["car", "wall"]),
    ("grass, a tree and a house", ["grass", "tree", "house"]),
    ("some dogs running on the beach; dogs again", ["dog", "beach"]),
    ("an image of", ["image"]),
    ("", []),
])
def test_extract_concepts_keeps_head_nouns_once(caption, concepts):
    assert extract_concepts(caption) == concepts


def test_normalise_is_the_lookup_form():
    assert normalise("  Boats ") == "boat"
    assert normalise("Sail_Boats") == "sail boat"
