"""Is-a relations between class names, for the OVSNet paper's "fine granularity" and "semantic duplication".

A class is a kind of another when WordNet lists the other among the hypernyms of its sense
("screen door" -> "door", "oystercatcher" -> "bird"), or, for a multi-word name WordNet lacks,
when its last word is the other's name ("tv stand" -> "stand"). Each class gets one sense: the one
whose lemmas cover most of its synonyms ("washer, washing machine" is the machine), else the most
frequent sense of its first name; a person sense yields to an artifact or food sense of the same
word, since label sets name things ("toaster" is the appliance, not who proposes a toast).
WordNet is read by ``ovss.concepts.filters.WordNet``; without it the head-noun rule alone applies.
"""
from __future__ import annotations

from typing import Sequence

from ..concepts.filters import find_wordnet
from ..concepts.vocabulary import singular

Classes = Sequence[Sequence[str]]  # classes in label order, each a list of synonyms
THING_ROOTS = ("artifact", "food")  # senses under these win over a person sense of the same word


def _key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


class Hierarchy:
    """``is_a(child, parent)`` over class synonym lists; ``wordnet=None`` uses the head-noun rule only.

    ``wordnet`` is anything with ``senses(word) -> [offset]`` and ``synset(offset) -> (lemmas,
    hypernyms)`` (``ovss.concepts.filters.WordNet``, or a stub in tests).
    """

    def __init__(self, wordnet=None):
        self.wordnet = wordnet
        self._ancestors: dict[int, frozenset[int]] = {}
        self._nodes: dict[tuple, tuple] = {}

    @classmethod
    def auto(cls) -> "Hierarchy":
        """WordNet when installed, else the head-noun rule."""
        return cls(find_wordnet())

    @property
    def source(self) -> str:
        return "WordNet hypernyms + head nouns" if self.wordnet is not None else "head nouns (WordNet not installed)"

    def _ancestors_of(self, offset: int) -> frozenset[int]:
        """Every hypernym above ``offset`` (not ``offset`` itself)."""
        if offset not in self._ancestors:
            seen: set[int] = set()
            todo = list(self.wordnet.synset(offset)[1])
            while todo:
                o = todo.pop()
                if o not in seen:
                    seen.add(o)
                    todo.extend(self.wordnet.synset(o)[1])
            self._ancestors[offset] = frozenset(seen)
        return self._ancestors[offset]

    def _under(self, offset: int, lemmas: Sequence[str]) -> bool:
        return any(set(lemmas) & set(self.wordnet.synset(a)[0]) for a in self._ancestors_of(offset))

    def _sense(self, cls: Sequence[str]) -> int | None:
        """The class's WordNet sense (see the module docstring), or None when WordNet lacks its names."""
        if self.wordnet is None:
            return None
        names = {_key(n).replace(" ", "_") for n in cls}
        best, best_key = None, None
        for rank_name, name in enumerate(cls):
            senses = self.wordnet.senses(name)
            has_thing = any(self._under(o, THING_ROOTS) for o in senses)
            for rank, offset in enumerate(senses):
                cover = len(names & set(self.wordnet.synset(offset)[0]))
                demoted = has_thing and self._under(offset, ("person",))
                key = (-cover, rank_name, demoted, rank)
                if best_key is None or key < best_key:
                    best, best_key = offset, key
        return best

    def _node(self, cls: Sequence[str]) -> tuple[frozenset, frozenset, frozenset, frozenset]:
        """(names, head nouns, sense, its ancestors) of a class, looked up once."""
        key = tuple(cls)
        if key not in self._nodes:
            names = frozenset(_key(n) for n in cls)
            heads = set()
            for n in names:
                words = n.split()
                if len(words) > 1 and (self.wordnet is None or not self.wordnet.senses(n)):
                    heads |= {words[-1], singular(words[-1])}
            sense = self._sense(cls)
            senses = frozenset() if sense is None else frozenset([sense])
            ancestors = frozenset() if sense is None else self._ancestors_of(sense)
            self._nodes[key] = (names, frozenset(heads), senses, ancestors)
        return self._nodes[key]

    def is_a(self, child: Sequence[str], parent: Sequence[str]) -> bool:
        """Whether the class ``child`` (its synonyms) is a strict kind of the class ``parent``."""
        c_names, c_heads, c_senses, c_ancestors = self._node(child)
        p_names, _, p_senses, _ = self._node(parent)
        if c_names & p_names or c_senses & p_senses:
            return False  # the same class under a shared name or meaning, not a kind of it
        return bool(c_heads & p_names) or bool(c_ancestors & p_senses)


def semantic_duplicates(classes: Classes, hierarchy: Hierarchy) -> list[tuple[str, str]]:
    """(child, parent) display-name pairs of one label set where the child is a kind of the parent.

    The OVSNet paper's "semantic duplication": a region labelled "double door" is scored wrong when the
    model says "door", although both are true.
    """
    return [(c[0], p[0]) for c in classes for p in classes if c is not p and hierarchy.is_a(c, p)]


def fine_grained(classes: Classes, train_vocab: Classes, hierarchy: Hierarchy) -> list[tuple[str, str]]:
    """(class, training class) pairs where a test class is finer than the finest training class above it.

    The OVSNet paper's "fine granularity": "oystercatcher" under the training class "bird". Only training
    classes with no kind of their own in the training vocabulary count, so a catch-all such as
    COCO-Stuff's "furniture" (with "chair" beside it) does not make "chair" fine-grained.
    """
    leaves = [t for t in train_vocab if not any(u is not t and hierarchy.is_a(u, t) for u in train_vocab)]
    pairs = []
    for cls in classes:
        parent = next((t for t in leaves if hierarchy.is_a(cls, t)), None)
        if parent is not None:
            pairs.append((cls[0], parent[0]))
    return pairs
