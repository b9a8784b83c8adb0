"""Concept vocabulary of a caption: the head nouns of its noun phrases, singular.

Dependency-free on purpose, so a dictionary can be built offline from any corpus: a caption is cut
into chunks at function words and punctuation ("two red boats | water"), and the last word of each
chunk (its head noun, in English) is kept after turning plurals into singulars. Modifiers such as
colours and counts fall away because they precede the head.
"""
from __future__ import annotations

import re

# Words the contrastive-concepts paper drops from every concept list: they describe the
# picture, not something in it.
UNINFORMATIVE: frozenset[str] = frozenset({"image", "photo", "picture", "view"})

# Function words, counts, and a few verbs common in captions; they end a noun-phrase chunk.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a an the this that these those some any many much more most few several each every all both no
    other another such own same
    and or but nor so yet if then than as of in on at by for with without within into onto over
    under above below near beside besides behind between among through across along around about
    against after before during from to toward towards up down out off upon via beneath inside
    outside underneath atop amid
    i me my we us our you your he him his she her it its they them their who whom whose which what
    where when why how there here
    is are was were be been being am has have had having do does did will would can could shall
    should may might must get gets got
    not very too also just only really quite almost still even again ever
    one two three four five six seven eight nine ten eleven twelve dozen hundred thousand first
    second third
    sitting standing lying walking running flying floating swimming looking holding playing parked
    made seen shown taken covered filled surrounded
    while
    """.split()
)

# Multi-word prepositions whose noun ("front", "top") is not a concept: removed before chunking.
_PHRASES = (
    "in front of", "on top of", "next to", "close to", "in the middle of", "at the bottom of",
    "at the top of", "on the side of", "in the background", "in the foreground", "the background of",
)

# Irregular plurals; regular ones follow the suffix rules in ``singular``.
IRREGULAR: dict[str, str] = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
    "feet": "foot", "teeth": "tooth", "geese": "goose", "oxen": "ox", "dice": "die",
    "leaves": "leaf", "knives": "knife", "wives": "wife", "lives": "life", "wolves": "wolf",
    "shelves": "shelf", "halves": "half", "loaves": "loaf", "calves": "calf", "scarves": "scarf",
    "thieves": "thief", "elves": "elf", "selves": "self", "hooves": "hoof", "buses": "bus",
    "shoes": "shoe", "toes": "toe", "canoes": "canoe", "horseshoes": "horseshoe", "cookies": "cookie",
    "movies": "movie", "pies": "pie", "ties": "tie", "lies": "lie", "zombies": "zombie",
    "species": "species", "series": "series", "news": "news", "fish": "fish", "sheep": "sheep",
    "deer": "deer", "aircraft": "aircraft", "pants": "pants",
    "trousers": "trousers", "scissors": "scissors", "jeans": "jeans", "shorts": "shorts",
}
# Singular words that end like plurals.
_SINGULAR_S = frozenset(
    "bus gas lens canvas christmas atlas iris cactus octopus virus circus campus bonus status "
    "walrus hippopotamus asparagus hummus bus tennis chess mattress grass glass dress moss cross "
    "class boss bass kiss compass fortress address business princess goddess lioness".split()
)

_WORD = re.compile(r"[a-z][a-z'-]*")


def singular(word: str) -> str:
    """The singular of an English noun by suffix rules ("boats" -> "boat", "skies" -> "sky")."""
    w = word.lower()
    if w in IRREGULAR:
        return IRREGULAR[w]
    if len(w) <= 3 or w in _SINGULAR_S or not w.endswith("s"):
        return w
    if w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("sses", "ches", "shes", "xes", "zes", "oes")):
        return w[:-2]
    return w[:-1]


def normalise(text: str) -> str:
    """Lowercase, words only, plurals singular: the form concepts are stored and looked up in."""
    words = _WORD.findall(text.lower().replace("_", " "))
    return " ".join(words[:-1] + [singular(words[-1])]) if words else ""


def chunks(caption: str) -> list[list[str]]:
    """Runs of content words between function words and punctuation, in order."""
    text = " " + caption.lower() + " "
    for phrase in _PHRASES:
        text = text.replace(" " + phrase + " ", " , ")
    out: list[list[str]] = []
    for piece in re.split(r"[^a-z'\- ]+", text):
        run: list[str] = []
        for token in piece.split():
            token = token.strip("'-")
            if not token or token in STOP_WORDS or not _WORD.fullmatch(token):
                if run:
                    out.append(run)
                run = []
            else:
                run.append(token)
        if run:
            out.append(run)
    return out


def extract_concepts(caption: str) -> list[str]:
    """The distinct concepts (singular head nouns) a caption mentions, in order of appearance."""
    seen: dict[str, None] = {}
    for run in chunks(caption):
        head = singular(run[-1])
        if len(head) > 1:
            seen.setdefault(head, None)
    return list(seen)
