"""Where contrastive concepts come from, and how several queries share them.

A source proposes concepts for one query and says why each was kept or dropped (``Decision``);
``contrastive_concepts`` unites the proposals of several queries, drops concepts too similar to
any query (beta) and adds "background". Registry: ``SOURCES`` (background, cooc, llm, oracle); a
file of concepts is a source too (``FileSource``). Defaults are the contrastive-concepts paper's: gamma 0.01, delta 0.8,
beta 0.9.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import OvssError
from .cooccurrence import CooccurrenceDictionary, load_dictionary
from .filters import AbstractFilter, make_abstract_filter, resolved_filter
from .vocabulary import UNINFORMATIVE, normalise

if TYPE_CHECKING:  # annotations only: similarity imports torch, which the command line's help avoids
    from .similarity import TextSimilarity

GAMMA = 0.01  # keep concepts whose normalised co-occurrence with the query is above this
DELTA = 0.8  # drop co-occurring concepts whose text similarity to the query is above this
BETA = 0.9  # with several queries, drop concepts whose similarity to any query is above this
BACKGROUND = "background"


@dataclass
class Decision:
    """One proposed concept for one query: kept or dropped, and why."""

    query: str
    concept: str
    kept: bool
    reason: str


@dataclass
class ConceptSet:
    """The contrastive concepts of some queries, with every decision that led to them."""

    queries: list[str]
    concepts: list[str]
    source: str
    decisions: list[Decision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "queries": self.queries, "source": self.source, "concepts": self.concepts, "notes": self.notes,
            "decisions": [d.__dict__ for d in self.decisions],
        }


class Source:
    """Base of the sources: proposes nothing, so "background" alone contrasts with the query."""

    name = "background"
    adds_background = True  # whether "background" joins the proposed concepts
    filter_similar = True  # whether the beta filter applies with several queries

    def propose(self, query: str, similarity: TextSimilarity | None = None) -> tuple[list[Decision], list[str]]:
        """Decisions about the concepts for ``query``, and notes (e.g. a nearest-concept lookup)."""
        return [], []

    def describe(self) -> dict:
        return {"source": self.name}


class BackgroundSource(Source):
    """CC^BG: the generic word "background" only."""


class CooccurrenceSource(Source):
    """CC^D: concepts that co-occur with the query in a caption corpus, filtered as in the contrastive-concepts paper.

    For target concept i: keep j with pairs[i][j] / counts[i] > gamma, then drop uninformative
    words, abstract concepts, and concepts whose text similarity to i is above delta. A query not in
    the dictionary borrows the concepts of its nearest dictionary concept in CLIP text space.
    """

    name = "cooc"

    def __init__(self, dictionary: str | Path | CooccurrenceDictionary | None = None, gamma: float = GAMMA,
                 delta: float = DELTA, abstract: str | AbstractFilter = "auto", llm=None,
                 uninformative: frozenset[str] = UNINFORMATIVE):
        self.dictionary = load_dictionary(dictionary)
        if gamma < self.dictionary.min_frequency:
            raise OvssError(f"gamma={gamma} is below the dictionary's stored minimum {self.dictionary.min_frequency}; "
                            "use a larger gamma or rebuild the dictionary with a smaller min_frequency", param="gamma")
        self.gamma, self.delta = float(gamma), float(delta)
        self._abstract_spec, self._llm = abstract, llm
        self._abstract: AbstractFilter | None = None
        self._abstract_cache: dict[str, str | None] = {}
        self.uninformative = uninformative

    def describe(self) -> dict:
        spec = self._abstract_spec if isinstance(self._abstract_spec, str) else "custom"
        return {"source": self.name, "gamma": self.gamma, "delta": self.delta, "abstract": spec,
                "abstract_filter": resolved_filter(spec),
                "dictionary": {"captions": self.dictionary.captions, "concepts": len(self.dictionary.counts),
                               **self.dictionary.info}}

    def abstract_reason(self, word: str) -> str | None:
        if self._abstract is None:
            self._abstract = make_abstract_filter(self._abstract_spec, self._llm)
        if word not in self._abstract_cache:
            self._abstract_cache[word] = self._abstract(word)
        return self._abstract_cache[word]

    def anchor(self, query: str, similarity: TextSimilarity | None) -> tuple[str, list[str]]:
        """The dictionary concept standing for ``query``: itself, its singular, or its nearest."""
        found = self.dictionary.lookup(query)
        if found is not None:
            return found, []
        candidates = [c for c in self.dictionary.concepts if c not in self.uninformative]
        if similarity is None:
            raise OvssError(f"'{query}' is not in the co-occurrence dictionary and no text model was given to find its nearest concept")
        if not candidates:
            raise OvssError("the co-occurrence dictionary has no concepts; rebuild it from a larger corpus")
        sims = similarity([query], candidates)[0]
        best = int(sims.argmax())
        return candidates[best], [f"'{query}' is not in the dictionary; using its nearest concept '{candidates[best]}' (text similarity {sims[best]:.2f})"]

    def propose(self, query: str, similarity: TextSimilarity | None = None) -> tuple[list[Decision], list[str]]:
        target, notes = self.anchor(query, similarity)
        decisions: list[Decision] = []
        pending: list[tuple[str, float]] = []
        for concept, freq in self.dictionary.frequency(target).items():
            share = f"co-occurrence {freq:.3f}"
            if freq <= self.gamma:
                decisions.append(Decision(query, concept, False, f"{share} <= gamma {self.gamma:g}"))
            elif concept in self.uninformative:
                decisions.append(Decision(query, concept, False, "uninformative word"))
            elif (why := self.abstract_reason(concept)) is not None:
                decisions.append(Decision(query, concept, False, why))
            else:
                pending.append((concept, freq))
        sims = similarity([target], [c for c, _ in pending])[0] if similarity is not None and pending else None
        for k, (concept, freq) in enumerate(pending):
            share = f"co-occurrence {freq:.3f} > gamma {self.gamma:g}"
            if sims is None:
                decisions.append(Decision(query, concept, True, f"{share} (delta not checked: no text model)"))
            elif sims[k] > self.delta:
                decisions.append(Decision(query, concept, False, f"text similarity {sims[k]:.2f} to '{target}' > delta {self.delta:g}"))
            else:
                decisions.append(Decision(query, concept, True, f"{share}, text similarity {sims[k]:.2f} <= delta {self.delta:g}"))
        return decisions, notes


class LLMSource(Source):
    """CC^L: the list an LLM gives for the contrastive-concepts paper's prompt (no further filtering, as in the contrastive-concepts paper)."""

    name = "llm"

    def __init__(self, client):
        self.client = client

    def describe(self) -> dict:
        return {"source": self.name, "endpoint": self.client.url, "model": self.client.model}

    def propose(self, query: str, similarity: TextSimilarity | None = None) -> tuple[list[Decision], list[str]]:
        words = self.client.contrastive_concepts(query)
        return [Decision(query, w, True, f"proposed by the LLM ({self.client.model})") for w in words], []


class OracleSource(Source):
    """The dataset's own other classes: the closed-world upper bound of the contrastive-concepts paper's tables.

    The classes already say what every other pixel is, so "background" is not added (a dataset
    with a background class lists it) and the beta filter does not apply.
    """

    name = "oracle"
    adds_background = False
    filter_similar = False

    def __init__(self, class_names: Sequence[str | Sequence[str]]):
        self.classes = [[c] if isinstance(c, str) else list(c) for c in class_names]
        if not self.classes:
            raise OvssError("the oracle source needs the dataset's class names; give at least one class")

    def describe(self) -> dict:
        return {"source": self.name, "classes": len(self.classes)}

    def propose(self, query: str, similarity: TextSimilarity | None = None) -> tuple[list[Decision], list[str]]:
        q = query.strip().lower()
        own = [c for c in self.classes if q in (s.lower() for s in c)]
        return [Decision(query, c[0], True, "another class of the dataset") for c in self.classes if c not in own], []


class FileSource(Source):
    """Concepts read from a file: a JSON list or {query: [concepts]}, or text lines.

    Text: ``query: concept, concept`` gives one query its concepts; other lines (comma-separated
    or one a line) are used for any query without its own line; ``#`` starts a comment.
    """

    name = "file"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.per_query, self.general = _read_concept_file(self.path)

    def describe(self) -> dict:
        return {"source": self.name, "file": str(self.path)}

    def propose(self, query: str, similarity: TextSimilarity | None = None) -> tuple[list[Decision], list[str]]:
        for key in (query.strip().lower(), normalise(query)):
            if key in self.per_query:
                return [Decision(query, c, True, f"listed for '{key}' in {self.path.name}") for c in self.per_query[key]], []
        if not self.general and self.per_query:
            raise OvssError(f"{self.path} lists no concepts for '{query}'; add a line '{query}: concept, concept'")
        return [Decision(query, c, True, f"listed in {self.path.name}") for c in self.general], []


def _read_concept_file(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    if not path.is_file():
        raise OvssError(f"concept file not found: {path} (or choose a source: {', '.join(SOURCES)})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise OvssError(f"cannot read {path} as UTF-8 text; give one concept a line or 'query: a, b'") from None
    split = lambda s: [w.strip().lower() for w in s.split(",") if w.strip()]  # noqa: E731
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            raise OvssError(f"{path} is not valid JSON; give a list of concepts or {{\"query\": [concepts]}}") from None
        if isinstance(data, list) and all(isinstance(w, str) for w in data):
            return {}, [w.strip().lower() for w in data if w.strip()]
        if isinstance(data, dict) and all(isinstance(v, list) and all(isinstance(w, str) for w in v) for v in data.values()):
            return {k.strip().lower(): [w.strip().lower() for w in v if w.strip()] for k, v in data.items()}, []
        raise OvssError(f"{path} must hold a JSON list of concepts or {{\"query\": [concepts]}}")
    per_query: dict[str, list[str]] = {}
    general: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" in line:
            key, rest = line.split(":", 1)
            per_query.setdefault(key.strip().lower(), []).extend(split(rest))
        else:
            general.extend(split(line))
    if not per_query and not general:
        raise OvssError(f"{path} lists no concepts; write one concept a line or 'query: a, b'")
    return per_query, list(dict.fromkeys(general))


SOURCES: dict[str, type[Source]] = {
    "background": BackgroundSource,
    "cooc": CooccurrenceSource,
    "llm": LLMSource,
    "oracle": OracleSource,
}


def make_source(spec: str | Source = "cooc", *, class_names: Sequence[str | Sequence[str]] | None = None,
                dictionary: str | Path | CooccurrenceDictionary | None = None, gamma: float = GAMMA,
                delta: float = DELTA, abstract: str | AbstractFilter = "auto", llm=None) -> Source:
    """A source by registry name (background, cooc, llm, oracle) or the path of a concept file.

    ``llm`` is an ``LLMClient`` (needed by "llm", and by ``abstract="llm"``); ``class_names`` the
    dataset's classes (needed by "oracle").
    """
    if isinstance(spec, Source):
        return spec
    if spec == "background":
        return BackgroundSource()
    if spec == "cooc":
        return CooccurrenceSource(dictionary, gamma, delta, abstract, llm)
    if spec == "llm":
        if llm is None:
            raise OvssError("the llm source needs an LLM: pass llm, an LLMClient of an OpenAI-compatible server", param="llm")
        return LLMSource(llm)
    if spec == "oracle":
        return OracleSource(class_names or [])
    if Path(spec).is_file():
        return FileSource(spec)
    raise OvssError(f"unknown concept source '{spec}'; choose {', '.join(SOURCES)} or the path of a concept file")


def contrastive_concepts(
    queries: str | Sequence[str],
    source: Source,
    similarity: TextSimilarity | None = None,
    beta: float | None = BETA,
    background: bool = True,
    exclude: Sequence[str] = (),
) -> ConceptSet:
    """CC_Q: the union of each query's concepts, minus those too similar to any query.

    The beta filter (similarity > beta to any query) applies when there are several queries, as in
    the contrastive-concepts paper; concepts equal to a query (or to a word in ``exclude``, e.g. a query's synonyms) are
    always dropped. "background" is added when the source adds it and ``background`` is true.
    """
    queries = [queries] if isinstance(queries, str) else [q.strip() for q in queries]
    if not queries or not all(queries):
        raise OvssError("no query given; pass at least one word, e.g. \"boat\"")
    taken = {q.lower() for q in queries} | {w.lower() for w in exclude}
    decisions: list[Decision] = []
    notes: list[str] = []
    union: dict[str, int] = {}  # kept concept -> index of its decision
    for q in queries:
        proposed, found = source.propose(q, similarity)
        notes += found
        for d in proposed:
            if d.kept and d.concept.lower() in taken:
                d = Decision(d.query, d.concept, False, "is one of the queries")
            elif d.kept and d.concept in union:
                d = Decision(d.query, d.concept, False, f"already proposed for '{decisions[union[d.concept]].query}'")
            elif d.kept:
                union[d.concept] = len(decisions)
            decisions.append(d)
    kept = list(union)
    if len(queries) > 1 and beta is not None and source.filter_similar and kept:
        if similarity is None:
            notes.append("beta not checked: no text model")
        else:
            sims = similarity(kept, queries)
            for k, concept in enumerate(list(kept)):
                j = int(sims[k].argmax())
                if sims[k, j] > beta:
                    kept.remove(concept)
                    first = decisions[union[concept]]
                    decisions[union[concept]] = Decision(first.query, concept, False,
                                                         f"text similarity {sims[k, j]:.2f} to query '{queries[j]}' > beta {beta:g}")
    if background and source.adds_background and BACKGROUND not in taken and BACKGROUND not in kept:
        kept.append(BACKGROUND)
        decisions.append(Decision(queries[0], BACKGROUND, True, "always added"))
    return ConceptSet(queries, kept, source.name, decisions, notes)
