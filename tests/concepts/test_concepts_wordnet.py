"""The offline abstract filter: WordNet's database files, read without any Python package."""
import zipfile

import pytest

from ovss.concepts import CooccurrenceSource, WordNet, build_dictionary, find_wordnet, make_abstract_filter
from ovss.errors import OvssError

# name -> (lemmas, hypernyms); senses lists each word's noun senses, most frequent first
SYNSETS = {
    "entity": (["entity"], []),
    "physical": (["physical_entity"], ["entity"]),
    "abstraction": (["abstraction", "abstract_entity"], ["entity"]),
    "object": (["object"], ["physical"]),
    "boat": (["boat"], ["object"]),
    "liberty": (["liberty", "freedom"], ["abstraction"]),
    "cheque": (["kite", "check"], ["abstraction"]),
    "toy": (["kite"], ["object"]),
    "raptor": (["kite"], ["object"]),
    "emotion": (["love"], ["abstraction"]),
    "beloved": (["love", "dear"], ["object"]),
    "score": (["love", "nil"], ["abstraction"]),
}
SENSES = {
    "boat": ["boat"], "liberty": ["liberty"], "freedom": ["liberty"], "kite": ["cheque", "toy", "raptor"],
    "love": ["emotion", "beloved", "score"], "physical_entity": ["physical"], "entity": ["entity"],
}


def write_wordnet(folder):
    """index.noun and data.noun in WordNet's format, byte offsets and all."""
    folder.mkdir(parents=True, exist_ok=True)
    header = "  1 This is a tiny test WordNet.  \n"

    def line(name, offsets):
        lemmas, parents = SYNSETS[name]
        words = " ".join(f"{w} 0" for w in lemmas)
        ptrs = " ".join(f"@ {offsets[p]:08d} n 0000" for p in parents)
        return f"{offsets[name]:08d} 03 n {len(lemmas):02x} {words} {len(parents):03d} {ptrs} | gloss of {name}  \n"

    offsets = {name: 0 for name in SYNSETS}  # every offset has 8 digits, so lengths do not change
    pos = len(header)
    for name in SYNSETS:
        offsets[name] = pos
        pos += len(line(name, offsets).encode())
    (folder / "data.noun").write_text(header + "".join(line(n, offsets) for n in SYNSETS))
    index = [f"{w} n {len(s)} 1 @ {len(s)} 0 " + " ".join(f"{offsets[x]:08d}" for x in s) + "  \n"
             for w, s in sorted(SENSES.items())]
    (folder / "index.noun").write_text(header + "".join(index))
    return folder


def test_wordnet_reader_on_a_tiny_database(tmp_path):
    wn = WordNet(write_wordnet(tmp_path / "dict"))
    assert len(wn.senses("kite")) == 3 and wn.senses("kites") == wn.senses("kite")
    assert wn.is_abstract("liberty") is True and wn.is_abstract("freedom") is True
    assert wn.is_abstract("boat") is False and wn.is_abstract("boats") is False
    assert wn.is_abstract("kite") is False  # first sense abstract, but most senses are things
    assert wn.is_abstract("love") is True  # first sense and most senses abstract
    assert wn.is_abstract("zebra") is None  # unknown to WordNet
    for word in ("entity", "physical_entity", "aaa", "zzz"):
        wn.senses(word)  # binary search reaches both ends without error


def test_wordnet_from_an_nltk_zip_and_the_search_path(tmp_path, monkeypatch):
    folder = write_wordnet(tmp_path / "plain")
    corpora = tmp_path / "nltk_data" / "corpora"
    corpora.mkdir(parents=True)
    with zipfile.ZipFile(corpora / "wordnet.zip", "w") as z:
        for name in ("index.noun", "data.noun"):
            z.write(folder / name, f"wordnet/{name}")
    assert WordNet(corpora / "wordnet.zip").is_abstract("liberty") is True
    monkeypatch.setenv("WNSEARCHDIR", str(folder))
    found = WordNet.find()
    assert found is not None and found.location == folder


def test_wordnet_filter_in_the_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("WNSEARCHDIR", str(write_wordnet(tmp_path / "dict")))
    find_wordnet.cache_clear()
    try:
        d = build_dictionary(["a boat with liberty and a kite", "a boat and love"])
        decisions, _ = CooccurrenceSource(d, abstract="wordnet").propose("boat")
        reasons = {x.concept: x.reason for x in decisions if not x.kept}
        assert reasons == {"liberty": "abstract (WordNet: its main senses are not physical entities)",
                           "love": "abstract (WordNet: its main senses are not physical entities)"}
    finally:
        find_wordnet.cache_clear()


def test_missing_wordnet_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(OvssError, match="apt-get install --no-install-recommends wordnet-base"):
        WordNet(tmp_path)
    with pytest.raises(OvssError, match="unknown abstract filter 'maybe'"):
        make_abstract_filter("maybe")
    with pytest.raises(OvssError, match="needs an LLM"):
        make_abstract_filter("llm")


@pytest.mark.skipif(find_wordnet() is None, reason="WordNet not installed (apt-get install wordnet-base)")
def test_installed_wordnet():
    wn = find_wordnet()
    assert wn.is_abstract("liberty") and not wn.is_abstract("boat") and not wn.is_abstract("kite")
