"""The ``ovss`` command line: one sub-command per job.

Each command module exposes ``add_parser(subparsers)``; the parser it adds sets ``func`` to the
function that runs the command. Errors the user can fix (``OvssError``) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import OvssError

# module name -> sub-command modules, in the order ``ovss --help`` lists them
COMMAND_MODULES = ("segment", "models", "world", "data", "bench", "concepts", "openbench", "adapt", "ovsnet", "scene3d")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovss", description="Open-vocabulary semantic segmentation: any image, any words."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OvssError as e:
        print(f"ovss: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ovss: interrupted; finished results are kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
