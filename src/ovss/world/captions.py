"""Captions that name exactly the classes a scene (or a crop of it) shows, in varied sentences.

Every class name appears as its own word (objects may be plural), and filler words never contain
a class name, so ``classes_in_caption`` can recover the named classes by splitting into words.
"""
from __future__ import annotations

import re

import numpy as np

from .classes import BACKDROPS, CLASSES, OBJECTS, PLURALS, PREPOSITIONS, STUFF

_WORD_TO_CLASS = {name: name for name in CLASSES} | {p: n for n, p in PLURALS.items()}
_NUMBERS = {2: "two", 3: "three", 4: "four"}
_PREFIXES = ("", "a photo of ", "a picture of ", "an image of ", "a view of ", "there is ")
# Mass nouns read naturally without an article ("grass and water").
_MASS = {"grass", "water", "sand", "snow"}


def classes_in_caption(caption: str) -> set[str]:
    """The class names a caption mentions (plural object names count as the class)."""
    return {_WORD_TO_CLASS[t] for t in re.findall(r"[a-z]+", caption.lower()) if t in _WORD_TO_CLASS}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _object_phrase(name: str, info: dict, rng: np.random.Generator, use_color: bool) -> str:
    count = int(info.get("count", 1))
    color = info.get("color") if use_color else None
    if count <= 1:
        words = f"{color} {name}" if color else name
        return f"{_article(words)} {words}"
    noun = PLURALS[name]
    amount = _NUMBERS.get(count, "some") if rng.random() < 0.7 else "some"
    return f"{amount} {color} {noun}" if color else f"{amount} {noun}"


def _stuff_phrase(name: str, rng: np.random.Generator) -> str:
    if name in _MASS and rng.random() < 0.5:
        return name
    return f"the {name}"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def caption_for(present: dict[str, dict], rng: np.random.Generator) -> str:
    """A sentence naming every class in ``present`` and nothing else.

    ``present`` maps class names to info dicts; objects may carry "count", "color" and "host" (the
    stuff they stand on), which make for phrases like "two red boats on the water".
    """
    objects = [n for n in present if n in OBJECTS]
    stuff = [n for n in present if n in STUFF]
    if not objects and not stuff:
        return "an empty picture."
    rng.shuffle(objects)
    rng.shuffle(stuff)
    use_color = bool(rng.random() < 0.75)
    phrases = {n: _object_phrase(n, present[n], rng, use_color) for n in objects}
    prefix = str(rng.choice(_PREFIXES))
    end = "." if rng.random() < 0.5 else ""
    form = rng.random()

    if not objects:
        tops = [s for s in stuff if s in BACKDROPS]
        grounds = [s for s in stuff if s not in BACKDROPS]
        if tops and grounds and form < 0.5:
            word = "above" if rng.random() < 0.5 else "over"
            text = f"{_stuff_phrase(tops[0], rng)} {word} {_join([_stuff_phrase(g, rng) for g in grounds])}"
        else:
            text = _join([_stuff_phrase(s, rng) for s in stuff])
        return prefix + text + end

    if form < 0.25:
        # A plain list, in any order: "grass, a tree and a house".
        items = [phrases[n] for n in objects] + [_stuff_phrase(s, rng) for s in stuff]
        order = rng.permutation(len(items))
        return _join([items[i] for i in order]) + end

    if form < 0.45 and stuff:
        # "a photo of a star and a sun with the sky and water"
        return f"{prefix}{_join([phrases[n] for n in objects])} with {_join([_stuff_phrase(s, rng) for s in stuff])}{end}"

    # Relational: group objects by the stuff they stand on, then mention the rest of the stuff.
    groups: dict[str | None, list[str]] = {}
    for n in objects:
        host = present[n].get("host")
        groups.setdefault(host if host in stuff else None, []).append(n)
    clauses, used = [], set()
    for host, names in groups.items():
        clause = _join([phrases[n] for n in names])
        if host is not None:
            prep = "in" if host == "water" and names == ["fish"] else PREPOSITIONS[host]
            clause += f" {prep} {_stuff_phrase(host, rng)}"
            used.add(host)
        clauses.append(clause)
    text = ", ".join(clauses) if rng.random() < 0.5 else " and ".join(clauses)
    rest = [s for s in stuff if s not in used]
    if rest:
        if rest == ["sky"]:
            text += " under the sky"
        elif len(rest) == 1 and rest[0] in ("water", "road", "wall") and rng.random() < 0.5:
            text += f" near {_stuff_phrase(rest[0], rng)}"
        else:
            text += f" with {_join([_stuff_phrase(s, rng) for s in rest])}"
    return prefix + text + end
