"""User-facing errors.

A user mistake (missing file, unknown head, bad class list) raises ``OvssError``; the command line
prints its one-line message and exits non-zero, without a traceback. Anything else is a bug and
keeps its traceback.
"""


class OvssError(Exception):
    """A problem the user can fix; the message names the problem and the fix in one line."""
