"""Negative queries: names that look like a class to a model but not to a person.

They widen the label space of both training stages and give the triplet loss hard negatives
(OpenDAS, sec. 4.4 and appendix C). They come from a JSON file (class -> list of names), the file
shipped for ShapesWorld, or an OpenAI-compatible LLM asked OpenDAS's instruction through the
shared client of ``ovss.concepts.llm``.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import OvssError
from ..outputs import without_tags

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED: dict[str, Path] = {"shapesworld": DATA_DIR / "shapesworld_negatives.json"}

# Appendix C of OpenDAS, word for word; the class list is appended after it.
INSTRUCTION = (
    "Your task is to produce five distinct examples for each class provided in the list, ensuring that the "
    "examples are not subcategories of each other but rather represent clear and separate entities within the "
    "same class. This means that each example should not be a subset or type of another example within the same "
    "category. The objective is to create similar examples that might be confused by a machine learning model but "
    "remain discernible to a human observer to be used as clear negative examples for triplet loss training. "
    "The output format should be a Python dictionary for easy integration."
)


def _check_table(table, where: str) -> dict[str, list[str]]:
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in table.items()):
        raise OvssError(f"{where} must map each class to a list of names, e.g. {{\"boat\": [\"buoy\", \"raft\"]}}")
    return {" ".join(k.lower().split()): [" ".join(x.split()) for x in v if x.strip()] for k, v in table.items()}


def read_negatives(path: str | Path) -> dict[str, list[str]]:
    """A negatives JSON file: {"class": ["negative", ...], ...}."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OvssError(f"negatives file not found: {path} (a JSON object: class -> list of names)") from None
    except (OSError, ValueError) as e:
        raise OvssError(f"cannot read {path} as JSON ({e.__class__.__name__}); write class -> list of names") from None
    return _check_table(without_tags(table), str(path))


def prompt_for(classes: Sequence[str]) -> str:
    return INSTRUCTION + "\n\nClasses: " + json.dumps(list(classes))


def parse_negative_dict(text: str) -> dict[str, list[str]]:
    """The dictionary in an LLM answer (JSON or Python, code fences and thinking stripped)."""
    text = re.sub(r"<think>.*?</think>", " ", text or "", flags=re.S)
    text = re.sub(r"```[a-zA-Z]*", "\n", text)
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        for load in (json.loads, ast.literal_eval):
            try:
                return _check_table(load(text[start:end + 1]), "the LLM answer")
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, OvssError):
                continue
    short = " ".join(text.split())[:80]
    raise OvssError(f"malformed LLM answer: expected a dictionary class -> list of names, got {short!r}; nothing was cached")


def generate_negatives(client, classes: Sequence[str]) -> dict[str, list[str]]:
    """Ask ``client`` (an ``ovss.concepts.LLMClient``) OpenDAS's instruction for ``classes``."""
    return client.ask(prompt_for(classes), parse_negative_dict)


def negative_queries(classes: Iterable[str], table: dict[str, list[str]], exclude: Iterable[str] = ()) -> list[str]:
    """The negatives of ``classes``, each once, without any name in ``exclude`` (the dataset's
    classes and synonyms: a negative must never be a name the test may ask for)."""
    banned = {" ".join(x.lower().split()) for x in exclude}
    out: dict[str, None] = {}
    for c in classes:
        for name in table.get(" ".join(c.lower().split()), []):
            if name.lower() not in banned:
                out.setdefault(name, None)
    return list(out)
