"""LLM-generated contrastive concepts (the contrastive-concepts paper, CC^L) from any OpenAI-compatible endpoint.

Uses the standard library only (urllib): POST ``{endpoint}/chat/completions`` with the contrastive-concepts paper's
prompt, parse the answer into words, and cache it on disk keyed by (endpoint, model, prompt), so a
benchmark asks each question once. An answer is cached only after it parsed, so a timeout or a
malformed answer is asked again next time instead of being remembered.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import OvssError
from ..files import write_json

T = TypeVar("T")

# The contrastive-concepts paper's prompts (its appendix 6.3.2) without Mixtral's <s> [INST] markers: a chat-completions
# server applies its model's own chat template. {q} is the query.
CONTRASTIVE_PROMPT = """You are a helpful AI assistant with visual abilities.

Given an input object O, I want you to generate a list of words related to objects that can be surrounding input object O in an image to help me perform semantic segmentation.

For example:

* If the input object is 'fork', you can generate a list of words such as '["bottle", "knife", "table", "napkin", "bread"]'.

* If the input object is 'child', you can generate a list of words such as '["toy", "drawing", "bed", "room", "playground"]'.

You should not generate synonyms of input object O, nor parts of input object O.

Generate a list of objects surrounding the input object {q} without any synonym nor parts, nor content of it. Answer with a list of words.

No explanation.

Answer:"""

VISIBLE_PROMPT = "Please specify whether {q} is something that one can see. Reply with 'yes' or 'no' only. No explanation. Answer:"

MAX_WORDS = 4  # an item longer than this is prose, not a concept
# Words that mark an item as prose ("I am sorry", "sure") rather than the name of a thing.
PROSE_WORDS = frozenset(
    "i i'm am is are was were be you your we me my it's cannot can't can sorry please sure certainly "
    "here unable apologize apologise however would could should will not don't".split()
)


def default_cache_dir() -> Path:
    """``$OVSS_CACHE/llm``, else ``$XDG_CACHE_HOME/ovss/llm``, else ``~/.cache/ovss/llm``."""
    if os.environ.get("OVSS_CACHE"):
        return Path(os.environ["OVSS_CACHE"]) / "llm"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ovss" / "llm"


class LLMClient:
    """Chat completions from an OpenAI-compatible server, with a disk cache of parsed answers.

    ``endpoint`` is the API base (``http://localhost:8000/v1``) or the full ``.../chat/completions``
    URL; ``cache_dir=False`` turns the cache off.
    """

    def __init__(self, endpoint: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 cache_dir: str | Path | bool | None = None, temperature: float = 0.0):
        if not endpoint or not endpoint.startswith(("http://", "https://")):
            raise OvssError(f"LLM endpoint must be an http(s) URL such as http://localhost:8000/v1 (got {endpoint!r})")
        if not model:
            # no param: the command line's --model is the CLIP model (its llm_from_args checks --llm-model)
            raise OvssError("no LLM model name given; pass the model name as the server lists it")
        if timeout <= 0:
            raise OvssError(f"timeout must be positive (got {timeout})", param="timeout")
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = float(timeout)
        self.temperature = temperature
        self.cache_dir = None if cache_dir is False else Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir()

    def cache_path(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(json.dumps([self.url, self.model, prompt]).encode("utf-8")).hexdigest()
        return self.cache_dir / f"{key[:32]}.json"

    def ask(self, prompt: str, parse: Callable[[str], T]) -> T:
        """``parse`` of the model's answer to ``prompt``; the answer is cached once it parses."""
        path = self.cache_path(prompt)
        if path is not None and path.is_file():
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                if entry.get("prompt") == prompt and entry.get("model") == self.model:
                    return parse(entry["answer"])
            except (OSError, ValueError, KeyError, OvssError):
                pass  # an unreadable entry is asked again and overwritten
        answer = self.complete(prompt)
        parsed = parse(answer)
        if path is not None:
            write_json(path, {"endpoint": self.url, "model": self.model, "prompt": prompt, "answer": answer})
        return parsed

    def complete(self, prompt: str) -> str:
        """The raw text of one chat completion (no cache)."""
        body = json.dumps({
            "model": self.model, "temperature": self.temperature,
            "messages": [{"role": "user", "content": prompt}],
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            hint = "; check the API key (or OVSS_LLM_API_KEY)" if e.code in (401, 403) else "; check the endpoint URL and the model name"
            raise OvssError(f"LLM endpoint {self.url} answered HTTP {e.code} {e.reason}{hint}") from None
        except (TimeoutError, socket.timeout):
            raise OvssError(f"LLM endpoint {self.url} did not answer within {self.timeout:g} s; check the server or raise the LLM timeout") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise OvssError(f"LLM endpoint {self.url} did not answer within {self.timeout:g} s; check the server or raise the LLM timeout") from None
            raise OvssError(f"cannot reach LLM endpoint {self.url} ({e.reason}); check that the server runs and the URL") from None
        try:
            data = json.loads(raw.decode("utf-8"))
            content = data["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError):
            raise OvssError(f"LLM endpoint {self.url} sent a malformed response ({_short(raw)}); expected an OpenAI chat-completions JSON") from None
        return content

    def contrastive_concepts(self, query: str) -> list[str]:
        """The contrastive-concepts paper's CC^L list for ``query``."""
        return self.ask(CONTRASTIVE_PROMPT.replace("{q}", query), lambda text: parse_concept_list(text, query))

    def is_visible(self, word: str) -> bool:
        """The contrastive-concepts paper's yes/no question: can one see ``word``?"""
        return self.ask(VISIBLE_PROMPT.replace("{q}", word), lambda text: parse_yes_no(text, word))


def _short(text: str | bytes, n: int = 80) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return repr(text[:n] + ("..." if len(text) > n else ""))


_BULLET = re.compile(r"^\s*(?:[-*\u2022\u00b7+>]+|\(?\d+[.):]|[a-z][.)])\s+")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def _clean(item: str) -> str:
    item = _BULLET.sub("", item.strip())
    item = item.strip().strip(_QUOTES + " .;:![]()").strip(_QUOTES + " ")
    item = re.sub(r"^(?:and|or)\s+", "", item.lower())
    return " ".join(item.split())


def _from_brackets(text: str) -> list | None:
    """A JSON or Python list (or an object holding one) inside ``text``, if any."""
    for opener, closer in (("[", "]"), ("{", "}")):
        start, end = text.find(opener), text.rfind(closer)
        if start < 0 or end <= start:
            continue
        chunk = text[start:end + 1]
        for load in (json.loads, ast.literal_eval):
            try:
                value = load(chunk)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                value = next((v for v in value.values() if isinstance(v, (list, tuple))), None)
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return list(value)
    return None


def parse_concept_list(text: str, query: str = "the query") -> list[str]:
    """Words from an LLM answer: a JSON/Python list, bullets, numbering, lines or commas.

    Raises ``OvssError`` when nothing word-like is found (e.g. a refusal or an empty answer).
    """
    text = re.sub(r"<think>.*?</think>", " ", text or "", flags=re.S)
    text = re.sub(r"```[a-zA-Z]*", "\n", text)
    items = _from_brackets(text)
    if items is None:
        items = []
        for line in text.splitlines():
            bare = _BULLET.sub("", line.strip())
            if ":" in bare:  # "- dock: where boats moor" vs "Here are some: dock, sky"
                bare = bare.split(":", 1)[0] if bare != line.strip() else bare.rsplit(":", 1)[1]
            items += re.split(r"[,;]", bare)
    words: dict[str, None] = {}
    for item in items:
        word = _clean(item)
        tokens = word.split()
        if tokens and re.search(r"[a-z]", word) and len(tokens) <= MAX_WORDS and len(word) <= 40 \
                and not PROSE_WORDS.intersection(tokens):
            words.setdefault(word, None)
    if not words:
        raise OvssError(f"malformed LLM answer for {query!r}: expected a list of words, got {_short(text)}; nothing was cached")
    return list(words)


def parse_yes_no(text: str, word: str = "the word") -> bool:
    """True for an answer starting with yes, False for no; anything else is malformed."""
    text = re.sub(r"<think>.*?</think>", " ", text or "", flags=re.S)
    first = re.findall(r"[a-z]+", text.lower())[:1]
    if first == ["yes"]:
        return True
    if first == ["no"]:
        return False
    raise OvssError(f"malformed LLM answer to whether {word!r} can be seen: expected yes or no, got {_short(text)}; nothing was cached")
