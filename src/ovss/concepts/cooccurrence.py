"""Co-occurrence dictionary of concepts mined from a caption corpus (the contrastive-concepts paper, CC^D).

Two concepts co-occur when one caption mentions both. ``counts[i]`` is the number of captions that
mention i, ``pairs[i][j]`` the number that mention i and j; the contrastive-concepts paper normalises row i by
``counts[i]``, so ``frequency(i)[j] = pairs[i][j] / counts[i]`` is the share of i's captions that
also mention j. Raw counts are stored, so any threshold gamma can be applied when querying.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import OvssError
from ..files import write_json
from .vocabulary import extract_concepts, normalise
from ..outputs import as_job

FORMAT = "ovss-cooccurrence"
VERSION = 1
DATA_DIR = Path(__file__).parent / "data"
# shapesworld2: mined from 2000 ShapesWorld 2 training captions (docs/benchmarks.md says how); the
# default, as ShapesWorld 2 is the default world and its weights the default model
SHIPPED = {"shapesworld": DATA_DIR / "shapesworld_cooc.json", "shapesworld2": DATA_DIR / "shapesworld2_cooc.json"}
DEFAULT_DICTIONARY = "shapesworld2"


@dataclass
class CooccurrenceDictionary:
    """Concept counts and pair counts of a caption corpus."""

    counts: dict[str, int]
    pairs: dict[str, dict[str, int]]
    captions: int
    min_count: int = 1
    min_frequency: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def concepts(self) -> list[str]:
        return list(self.counts)

    def __contains__(self, concept: str) -> bool:
        return concept in self.counts

    def frequency(self, concept: str) -> dict[str, float]:
        """Normalised co-occurrence of every stored partner of ``concept``, highest first."""
        n = self.counts[concept]
        row = self.pairs.get(concept, {})
        return dict(sorted(((j, c / n) for j, c in row.items()), key=lambda kv: (-kv[1], kv[0])))

    def lookup(self, query: str) -> str | None:
        """The dictionary's spelling of ``query`` (as written, or singular), None when absent."""
        for key in (query.strip().lower(), normalise(query)):
            if key in self.counts:
                return key
        return None

    def to_json(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "captions": self.captions,
            "min_count": self.min_count, "min_frequency": self.min_frequency, "info": self.info,
            "concepts": self.counts, "cooccurrence": self.pairs,
        }

    @classmethod
    def from_json(cls, data: dict, where: str = "the dictionary") -> "CooccurrenceDictionary":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise OvssError(f"{where} is not an ovss co-occurrence dictionary; build one with `ovss concepts build`")
        if data.get("version") != VERSION:
            raise OvssError(f"{where} has dictionary version {data.get('version')}, this ovss reads {VERSION}; rebuild it with `ovss concepts build`")
        return cls(
            counts={str(k): int(v) for k, v in data["concepts"].items()},
            pairs={str(i): {str(j): int(c) for j, c in row.items()} for i, row in data["cooccurrence"].items()},
            captions=int(data["captions"]), min_count=int(data.get("min_count", 1)),
            min_frequency=float(data.get("min_frequency", 0.0)), info=dict(data.get("info", {})),
        )


def build_dictionary(
    captions: Iterable[str],
    min_count: int = 1,
    min_frequency: float = 0.0,
    progress: bool = False,
    total: int | None = None,
) -> CooccurrenceDictionary:
    """Count concepts and co-occurring pairs over ``captions`` (one string per image).

    ``min_count`` drops concepts seen in fewer captions; ``min_frequency`` keeps only the pairs whose
    normalised co-occurrence reaches it, which keeps dictionaries of large corpora small (a query
    may then use any gamma >= min_frequency).
    """
    from tqdm import tqdm

    if min_count < 1:
        raise OvssError(f"min_count must be at least 1 (got {min_count})", param="min_count")
    if not 0.0 <= min_frequency < 1.0:
        raise OvssError(f"min_frequency must be in [0, 1) (got {min_frequency})", param="min_frequency")
    counts: Counter[str] = Counter()
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    n = 0
    for caption in tqdm(captions, desc="captions", unit="cap", total=total, disable=not progress):
        if not caption.strip():
            continue
        n += 1
        found = extract_concepts(caption)
        counts.update(found)
        for i in found:
            row = pairs[i]
            for j in found:
                if j != i:
                    row[j] += 1
    if n == 0:
        raise OvssError("the caption corpus is empty; give a text file with one caption a line")
    kept = {c: k for c, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if k >= min_count}
    table: dict[str, dict[str, int]] = {}
    for i, n_i in kept.items():
        row = {j: c for j, c in pairs[i].items() if j in kept and c / n_i >= min_frequency}
        if row:
            table[i] = dict(sorted(row.items(), key=lambda kv: (-kv[1], kv[0])))
    return CooccurrenceDictionary(kept, table, n, min_count, min_frequency)


def build_from_file(path: str | Path, min_count: int = 1, min_frequency: float = 0.0,
                    progress: bool = True) -> CooccurrenceDictionary:
    """``build_dictionary`` over a text file with one caption a line."""
    path = Path(path)
    if not path.is_file():
        raise OvssError(f"caption file not found: {path} (give a text file with one caption a line)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise OvssError(f"{path} is not UTF-8 text; give a text file with one caption a line") from None
    d = build_dictionary(lines, min_count, min_frequency, progress=progress, total=len(lines))
    if not d.counts:  # a dictionary with no concepts gives every query no contrastive concepts, silently
        if not any(line.strip() for line in lines):
            raise OvssError(f"{path} holds no captions; give a text file with one caption a line")
        kept = build_dictionary(lines, 1, 0.0, progress=False, total=len(lines)).counts if (min_count > 1 or min_frequency > 0) else {}
        limits = f"min_count={min_count}" + (f" and min_frequency={min_frequency}" if min_frequency > 0 else "")
        why = (f"none of its {len(kept)} concepts reaches {limits}"
               if kept else "its words are all stop words, counts or too short to be concepts")
        raise OvssError(f"{path} gives an empty dictionary: {why}; give captions that name things "
                        "(e.g. \"a boat on the sea\")", param="min_count" if kept else None)
    d.info = {"corpus": path.name}
    return d


@as_job("concepts build")
def save_dictionary(dictionary: CooccurrenceDictionary, path: str | Path) -> Path:
    return write_json(path, dictionary.to_json())


def load_dictionary(path: str | Path | CooccurrenceDictionary | None = None) -> CooccurrenceDictionary:
    """A dictionary from a JSON file, or a shipped one by name (default: ShapesWorld 2's)."""
    if isinstance(path, CooccurrenceDictionary):
        return path
    key = str(path) if path is not None else DEFAULT_DICTIONARY
    file = SHIPPED.get(key, Path(key))
    if not file.is_file():
        shipped = ", ".join(SHIPPED)
        raise OvssError(f"co-occurrence dictionary not found: {file} (build one with `ovss concepts build` or use a shipped one: {shipped})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise OvssError(f"{file} is not readable JSON; rebuild it with `ovss concepts build`") from None
    return CooccurrenceDictionary.from_json(data, str(file))
