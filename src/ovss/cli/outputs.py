"""Which commands write, where, and what they read: the table ``main`` opens ``ovss.outputs.OutputRun``
from, before the command does any work, so that every writing command follows one output contract
(README, "What ovss guarantees"). A command added later that writes must be listed here; a test
(tests/test_output_contract.py) runs every entry through the contract's cases.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable


def paths(*values) -> list[str]:
    """Every path named by option values: lists, comma-separated lists, and NAME=ROOT items."""
    found: list[str] = []
    for value in values:
        if value is None:
            continue
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        for item in items:
            item = str(item).strip()
            if item:
                found.append(item.split("=", 1)[1] if "=" in item else item)
    return found


@dataclass(frozen=True)
class Writer:
    """A command's output: the job kind its files are tagged with, the option holding the output
    (``dest``), whether it is a file, whether a rerun continues an earlier run's files
    (``resumes``), the paths it reads (``inputs``), which the output must not be, and the folders it
    reads whole (``input_folders``), which the output must not lie inside. ``target`` names the
    folder the job really writes when the option names a shared parent (``data prepare``'s data root
    holds every dataset; its own folder is ``ROOT/VOCdevkit/VOC2012``, ...)."""

    kind: str
    dest: str = "out"
    is_file: bool = False
    resumes: bool = True
    inputs: Callable[[argparse.Namespace], list[str]] = lambda args: []
    input_folders: Callable[[argparse.Namespace], list[str]] = lambda args: []
    target: Callable[[argparse.Namespace], str] | None = None

    def open(self, args: argparse.Namespace):
        from ..outputs import OutputRun

        out = self.target(args) if self.target is not None else getattr(args, self.dest)
        return OutputRun(self.kind, out, inputs=self.inputs(args),
                         input_folders=self.input_folders(args), is_file=self.is_file,
                         resumes=self.resumes, overwrite=bool(getattr(args, "overwrite", False)),
                         param=self.dest)


def prepared_folder(args: argparse.Namespace) -> str:
    """The folder ``ovss data prepare NAME --out ROOT`` writes: the dataset's own, below the root
    (the root itself for a name the command will refuse)."""
    from pathlib import Path

    from ..data.prepare import PREPARERS
    from ..data.specs import DATASETS

    spec = DATASETS.get(str(args.dataset).lower())
    preparer = PREPARERS.get(spec.name) if spec is not None else None
    return str(Path(args.out) / preparer.folder) if preparer is not None else str(args.out)


WRITERS: dict[str, Writer] = {
    "ovss segment": Writer("segment", resumes=False, inputs=lambda a: paths(a.classes_file, a.prompts),
                           input_folders=lambda a: paths(a.inputs)),
    "ovss bench": Writer("bench", inputs=lambda a: paths(a.data_root, a.prompts, a.concepts_dict)),
    "ovss world make": Writer("world make", dest="out_dir"),
    "ovss world make3d": Writer("world make3d", dest="out_dir"),
    "ovss world train": Writer("world train", is_file=True),
    "ovss world eval": Writer("world eval", is_file=True, resumes=False, inputs=lambda a: paths(a.weights)),
    "ovss adapt train": Writer("adapt train", inputs=lambda a: paths(a.data, a.eval_data, a.negatives)),
    "ovss adapt eval": Writer("adapt eval", is_file=True, resumes=False, inputs=lambda a: paths(a.prompts, a.data)),
    "ovss adapt segments-miou": Writer("adapt segments-miou", is_file=True, resumes=False,
                                       inputs=lambda a: paths(a.prompts, a.data)),
    "ovss adapt negatives": Writer("adapt negatives", is_file=True, resumes=False, inputs=lambda a: paths(a.classes_file)),
    "ovss concepts build": Writer("concepts build", is_file=True, resumes=False, inputs=lambda a: paths(a.captions)),
    "ovss openbench stats": Writer("openbench stats", resumes=False,
                                   inputs=lambda a: paths(a.train_vocab, a.datasets)),
    "ovss openbench build": Writer("openbench build", inputs=lambda a: paths(a.sources, a.train_vocab, a.merge)),
    "ovss openbench classcount": Writer("openbench classcount", inputs=lambda a: paths(a.data_root, a.pool)),
    "ovss ovsnet ablation": Writer("ovsnet ablation", inputs=lambda a: paths(a.train_data, a.val_data, a.open_data)),
    "ovss 3d classify": Writer("3d classify", inputs=lambda a: paths(a.scene, a.masks, a.classes_file, a.prompts)),
    "ovss data prepare": Writer("data prepare", input_folders=lambda a: paths(a.downloads), target=prepared_folder),
    "ovss reproduce": Writer("reproduce", inputs=lambda a: paths(a.data_root, a.pretrained, a.second_weights)),
    "ovss 3d eval": Writer("3d eval", is_file=True, resumes=False, inputs=lambda a: paths(a.base_classes),
                           input_folders=lambda a: paths(a.results)),
}

OVERWRITE_HELP = ("replace files at the output that another ovss job or run wrote (default: stop and say which); "
                  "a file ovss did not write is never replaced")


def add_overwrite_flags(parsers) -> None:
    """``--overwrite`` on every writing command that lacks one (``ovss bench`` has its own)."""
    for parser in parsers:
        if parser.prog in WRITERS and not any(a.dest == "overwrite" for a in parser._actions):
            parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
