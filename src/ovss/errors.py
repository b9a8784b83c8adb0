"""User-facing errors.

A user mistake (missing file, unknown head, bad class list) raises ``OvssError``; the command line
prints its one-line message and exits non-zero, without a traceback. Anything else is a bug and
keeps its traceback.

The library speaks of values, not command-line flags: a Python caller never typed ``--workers``.
A message names the value by its Python keyword (``workers must be 0 or more, got -1``) and
``param`` says which keyword that is, so ``ovss.cli`` can print the flag instead
(``--workers must be 0 or more, got -1``) without the library knowing any flag.
"""
from __future__ import annotations

import re


class OvssError(Exception):
    """A problem the user can fix; the message names the problem and the fix in one line.

    ``param``: the Python keyword the message is about (e.g. ``"workers"``), or None.
    """

    def __init__(self, message: str = "", param: str | None = None):
        super().__init__(message)
        self.param = param

    def __reduce__(self):  # keep ``param`` across pickling (errors raised in worker processes)
        return (self.__class__, (str(self), self.param))

    def renamed(self, name: str, quote=repr, switch: bool = False) -> str:
        """The message with ``param`` called ``name`` (a flag, a control of the page).

        ``param=value`` becomes ``name <value>`` (``quote`` formats the bare value; with ``switch``
        just ``name``), and the bare keyword as a word becomes ``name``, never inside a path, a
        quote or a longer name (``out`` in ``out_dir``).
        """
        text = str(self)
        if not self.param:
            return text
        key = re.escape(self.param)

        def with_value(match: re.Match) -> str:
            if switch:
                return name
            value = match.group(1)
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            return f"{name} {quote(value)}"

        # one pass, so a name that contains the keyword ("the preset menu") is not replaced again
        pattern = rf"(?<![\w./\\'\"`=-]){key}(?:=('[^']*'|\"[^\"]*\"|[^\s,;()]+)|(?![\w/\\'\"`=-]|\.\w))"
        return re.sub(pattern, lambda m: name if m.group(1) is None else with_value(m), text)
