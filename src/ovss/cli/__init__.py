"""The ``ovss`` command line: one sub-command per job.

Each command module exposes ``add_parser(subparsers)``; the parser it adds sets ``func`` to the
function that runs the command. Errors the user can fix (``OvssError``) print one line and exit 2;
a library error about a Python keyword (``err.param``) names the running command's flag instead.
A command that writes (``outputs.WRITERS``) runs inside its output contract (``ovss.outputs``).
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from ..errors import OvssError
from .common import flag_message

# module name -> sub-command modules, in the order ``ovss --help`` lists them
COMMAND_MODULES = ("segment", "models", "world", "data", "bench", "reproduce", "concepts", "openbench", "adapt", "ovsnet", "scene3d", "app")


class DefaultsFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if "default" in text or unset or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _all_parsers(child)


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command ``args`` ran (``ovss world make`` -> the ``make`` parser): every
    sub-command level stores its choice under its own ``dest`` (``command``, ``world_verb``, ...)."""
    while True:
        subs = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = subs.choices.get(getattr(args, subs.dest, None)) if subs is not None else None
        if chosen is None:
            return parser
        parser = chosen


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="ovss", description="Open-vocabulary semantic segmentation: any image, any words."
    )
    parser.add_argument("--version", action="version", version=f"ovss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.add_parser(sub)
    from .outputs import add_overwrite_flags

    add_overwrite_flags(_all_parsers(parser))
    for p in _all_parsers(parser):  # the command modules build their parsers with argparse's plain formatter
        p.formatter_class = DefaultsFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ..files import DISK_FULL
    from .outputs import WRITERS

    previous = _stop_on_sigterm()
    command = command_parser(parser, args)
    writer = WRITERS.get(command.prog)
    try:
        if writer is not None and getattr(args, writer.dest, None) is not None:
            with writer.open(args):  # the output contract: checked, locked, tagged, before any work
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        name = f" writing {e.filename}" if e.filename else ""
        print(f"ovss: error: no space left on the device{name} ({e.strerror}); free some space or choose an output "
              "on another disk, then rerun", file=sys.stderr)
        return 2
    except OvssError as e:
        print(f"ovss: error: {flag_message(e, command)}", file=sys.stderr)
        return 2
    except Terminated:
        print("ovss: terminated (SIGTERM); finished results are kept and a rerun resumes", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("ovss: interrupted; finished results are kept and a rerun resumes", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's time limit) unwinds like Ctrl-C: checkpoints are saved,
    DataLoader workers are shut down, and the user gets one line instead of a silent death."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _stop_on_sigterm():
    """Turn SIGTERM into ``Terminated`` while a command runs; returns the handler to restore."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (main() called from a thread): leave signals alone
        return None


if __name__ == "__main__":
    sys.exit(main())
