"""Abstract-concept filters: drop words that name nothing one can see ("liberty").

The contrastive-concepts paper asks an LLM whether a word is visible. Offline, WordNet answers the same question: a noun
none of whose senses descends from "physical_entity" names no thing. WordNet's own database files
are read directly, so no Python package is needed; install them with either of

    apt-get install --no-install-recommends wordnet-base    # Debian/Ubuntu: /usr/share/wordnet
    pip install nltk && python -m nltk.downloader wordnet    # ~/nltk_data/corpora/wordnet(.zip)

(``WNSEARCHDIR`` or ``NLTK_DATA`` point elsewhere). Without them a built-in list of common abstract
caption words is used. Registry: ``ABSTRACT_FILTERS`` (auto, wordnet, list, llm, none).
"""
from __future__ import annotations

import mmap
import os
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..errors import OvssError
from .vocabulary import singular

# Abstract words that are common in captions, for machines without WordNet.
ABSTRACT_WORDS: frozenset[str] = frozenset(
    """
    liberty freedom love happiness joy peace hope faith beauty fun idea concept thought memory dream
    emotion feeling mood spirit soul style design quality quantity success failure power energy
    nature culture history future past moment time era age life death health wealth
    knowledge information truth justice inspiration motivation creativity business economy service
    support way kind type sort lot variety number amount size color colour shape pattern texture
    fashion trend tradition holiday season event experience adventure travel journey vacation
    lifestyle theme meaning reason purpose
    opportunity challenge problem solution strategy management marketing education science technology
    """.split()
)

_INSTALL = ("install WordNet with `apt-get install --no-install-recommends wordnet-base` or "
            "`pip install nltk && python -m nltk.downloader wordnet`, or use abstract='list'")


class WordNet:
    """WordNet 3 noun database (index.noun, data.noun) read from a folder or an NLTK zip."""

    def __init__(self, location: str | Path):
        location = Path(location)
        if location.suffix == ".zip":
            with zipfile.ZipFile(location) as z:
                names = {Path(n).name: n for n in z.namelist()}
                if "index.noun" not in names or "data.noun" not in names:
                    raise OvssError(f"{location} holds no WordNet noun files; {_INSTALL}", param="abstract")
                index, self._data = z.read(names["index.noun"]), z.read(names["data.noun"])
        else:
            if not (location / "index.noun").is_file() or not (location / "data.noun").is_file():
                raise OvssError(f"{location} holds no WordNet noun files (index.noun, data.noun); {_INSTALL}", param="abstract")
            index, self._data = _map(location / "index.noun"), _map(location / "data.noun")
        self.location = location
        self._index = index
        self._start = _first_entry(index)
        self._synsets: dict[int, tuple[list[str], list[int]]] = {}

    @classmethod
    def find(cls) -> "WordNet | None":
        """The first WordNet found in the usual places, or None."""
        for place in _search_places():
            if (place / "index.noun").is_file() or (place.suffix == ".zip" and place.is_file()):
                try:
                    return cls(place)
                except (OvssError, OSError, zipfile.BadZipFile, ValueError, IndexError):
                    continue
        return None

    def senses(self, word: str) -> list[int]:
        """Synset offsets of the noun ``word`` (spaces become underscores), most frequent first."""
        key = word.strip().lower().replace(" ", "_")
        for k in dict.fromkeys((key, singular(key))):
            line = self._index_line(k)
            if line is not None:
                f = line.split()
                n_ptr, n_senses = int(f[3]), int(f[2])
                return [int(o) for o in f[4 + n_ptr + 2: 4 + n_ptr + 2 + n_senses]]
        return []

    def _index_line(self, key: str) -> str | None:
        """Binary search of index.noun, which WordNet keeps sorted by lemma."""
        data, target = self._index, key.encode("utf-8")
        lo, hi = self._start, len(data)
        while lo < hi:
            mid = (lo + hi) // 2
            start = data.rfind(b"\n", 0, mid) + 1
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            word = data[start:end].split(b" ", 1)[0]
            if word == target:
                return data[start:end].decode("utf-8", "replace")
            if word < target:
                lo = end + 1
            else:
                hi = start
        return None

    def synset(self, offset: int) -> tuple[list[str], list[int]]:
        """(lemmas, hypernym offsets) of the synset at byte ``offset`` of data.noun."""
        if offset not in self._synsets:
            end = self._data.find(b"\n", offset)
            f = self._data[offset:end].split(b"|")[0].decode("utf-8", "replace").split()
            n_words = int(f[3], 16)
            lemmas = [f[4 + 2 * k].lower() for k in range(n_words)]
            p = 4 + 2 * n_words
            n_ptr = int(f[p])
            hypernyms = [int(f[p + 1 + 4 * k + 1]) for k in range(n_ptr) if f[p + 1 + 4 * k] in ("@", "@i")]
            self._synsets[offset] = (lemmas, hypernyms)
        return self._synsets[offset]

    def is_physical(self, offset: int) -> bool:
        """Whether the synset descends from physical_entity (through hypernyms)."""
        todo, seen = [offset], set()
        while todo:
            o = todo.pop()
            if o in seen:
                continue
            seen.add(o)
            lemmas, parents = self.synset(o)
            if "physical_entity" in lemmas:
                return True
            todo.extend(parents)
        return False

    def is_abstract(self, word: str) -> bool | None:
        """None when WordNet lacks the noun; else True when its most frequent sense and most of its
        senses are not physical ("love", "liberty"), so a word with a common visible sense stays
        ("kite": a cheque, but also a toy and a bird)."""
        senses = self.senses(word)
        if not senses:
            return None
        physical = [self.is_physical(o) for o in senses]
        return not physical[0] and sum(physical) * 2 < len(physical)


def _map(path: Path) -> mmap.mmap:
    """The file mapped read-only: lookups touch a few pages instead of reading 20 MB."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _first_entry(index) -> int:
    """Byte offset of the first line after the licence header (header lines start with spaces)."""
    pos = 0
    while index[pos:pos + 1] == b" ":
        pos = index.find(b"\n", pos) + 1
    return pos


def _search_places() -> list[Path]:
    places: list[Path] = []
    if os.environ.get("WNSEARCHDIR"):
        places.append(Path(os.environ["WNSEARCHDIR"]))
    if os.environ.get("WNHOME"):
        places.append(Path(os.environ["WNHOME"]) / "dict")
    places += [Path("/usr/share/wordnet"), Path("/usr/local/share/wordnet"), Path("/usr/local/WordNet-3.0/dict")]
    nltk_roots = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    nltk_roots += [Path.home() / "nltk_data", Path("/usr/share/nltk_data"), Path("/usr/local/share/nltk_data"),
                   Path("/usr/lib/nltk_data"), Path("/usr/local/lib/nltk_data")]
    for root in nltk_roots:
        places += [root / "corpora" / "wordnet", root / "corpora" / "wordnet.zip"]
    return places


@lru_cache(maxsize=1)
def find_wordnet() -> WordNet | None:
    """The installed WordNet, loaded once per process."""
    return WordNet.find()


# ------------------------------------------------------------------------------ the filters
# A filter maps a word to the reason it is abstract, or None when it may be seen.
AbstractFilter = Callable[[str], "str | None"]


def list_filter(words: frozenset[str] = ABSTRACT_WORDS) -> AbstractFilter:
    def check(word: str) -> str | None:
        w = word.lower()
        return "abstract (built-in list)" if w in words or singular(w) in words else None

    return check


def wordnet_filter(wordnet: WordNet | None = None) -> AbstractFilter:
    """WordNet's answer; words WordNet does not know go to the built-in list."""
    wn = wordnet or find_wordnet()
    if wn is None:
        raise OvssError(f"WordNet files not found; {_INSTALL}", param="abstract")
    fallback = list_filter()

    def check(word: str) -> str | None:
        abstract = wn.is_abstract(word)
        if abstract is None:
            return fallback(word)
        return "abstract (WordNet: its main senses are not physical entities)" if abstract else None

    return check


def auto_filter() -> AbstractFilter:
    """WordNet when installed, else the built-in list."""
    return wordnet_filter() if find_wordnet() is not None else list_filter()


def resolved_filter(spec: str) -> str:
    """The filter ``spec`` runs on this machine, as a result records it: "auto" is WordNet where it
    is installed and the built-in list elsewhere, and the two keep different concepts, so a result
    names the one that ran (and where WordNet was read from)."""
    if spec in ("auto", "wordnet"):
        wn = find_wordnet()
        if wn is not None:
            return f"wordnet ({wn.location})"
        return "list" if spec == "auto" else "wordnet (not found)"
    return spec


def llm_filter(client) -> AbstractFilter:
    """The contrastive-concepts paper's yes/no question to an LLM (an ``ovss.concepts.llm.LLMClient``)."""
    def check(word: str) -> str | None:
        return None if client.is_visible(word) else "abstract (the LLM says it cannot be seen)"

    return check


def no_filter() -> AbstractFilter:
    return lambda word: None


ABSTRACT_FILTERS: dict[str, Callable[..., AbstractFilter]] = {
    "auto": auto_filter,
    "wordnet": wordnet_filter,
    "list": list_filter,
    "llm": llm_filter,
    "none": no_filter,
}


def make_abstract_filter(name: str | AbstractFilter = "auto", llm=None) -> AbstractFilter:
    """A filter by registry name; ``llm`` (an LLMClient) is needed for "llm"."""
    if callable(name):
        return name
    if name not in ABSTRACT_FILTERS:
        raise OvssError(f"unknown abstract filter '{name}'; choose one of: {', '.join(ABSTRACT_FILTERS)}")
    if name == "llm":
        if llm is None:
            raise OvssError("abstract='llm' needs an LLM: pass llm, an LLMClient of an OpenAI-compatible server",
                            param="abstract")
        return llm_filter(llm)
    return ABSTRACT_FILTERS[name]()
