"""Every code block of the README runs as written: Python blocks are executed (in a folder holding
the ``photo.jpg`` they read, a ShapesWorld scene), and every ``ovss`` command line of the shell
blocks is parsed by the real argument parser, so a renamed or removed flag fails here."""
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from ovss.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _ovss_commands() -> list[str]:
    commands = []
    for block in _blocks("bash"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("ovss ") and "..." not in line:
                commands.append(line)
    return commands


def test_python_blocks_run_as_written(tmp_path, monkeypatch):
    from ovss.world import make_scene

    blocks = _blocks("python")
    assert blocks, "the README has a Python example"
    Image.fromarray(make_scene(5, size=112).image).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        scope: dict = {}
        exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
        if "out" in scope:
            assert tuple(scope["out"].labels.shape) == (112, 112)


@pytest.mark.parametrize("command", _ovss_commands())
def test_shell_commands_parse(command):
    parser = build_parser()
    args = parser.parse_args(shlex.split(command)[1:])
    assert getattr(args, "func", None) is not None
