"""The library's errors name values by their Python keyword; only ``ovss.cli`` names flags.

A Python caller never typed ``--workers``: ``run_benchmark(workers=-1)`` says ``workers must be 0 or
more`` and sets ``param="workers"``; ``ovss bench --workers -1`` prints the same line with the flag.
"""
import argparse
import ast
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovss.cli import build_parser, command_parser, main
from ovss.cli.common import flag_message
from ovss.errors import OvssError

SRC = Path(__file__).resolve().parents[1] / "src" / "ovss"
MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


# 1. library calls: the value's Python name, no flag, and param set


def test_precision_names_the_value():
    from ovss.dense import check_precision

    with pytest.raises(OvssError) as e:
        check_precision("fp16", "cpu")
    assert str(e.value).startswith("precision='fp16' needs a CUDA device") and "--" not in str(e.value)
    assert e.value.param == "precision"


def test_run_benchmark_names_workers(tmp_path):
    from ovss.evaluation.runner import run_benchmark

    with pytest.raises(OvssError) as e:  # checked before the model or any dataset is touched
        run_benchmark(None, [], tmp_path / "run", workers=-1)
    assert str(e.value) == "workers must be 0 or more, got -1" and e.value.param == "workers"
    with pytest.raises(OvssError) as e:
        run_benchmark(None, [], tmp_path / "run", checkpoint_every=0)
    assert str(e.value) == "checkpoint_every must be a positive number of images, got 0"
    assert e.value.param == "checkpoint_every"


def _train_config():
    from ovss.opendas import PromptTrainConfig

    PromptTrainConfig(triplet_weight=-2.0).check()


def _feature_config():
    from ovss.scene3d.features import FeatureConfig

    FeatureConfig(levels=0).check()


def _seeds():
    from ovss.evaluation.plan import parse_seeds

    parse_seeds("0,x")


@pytest.mark.parametrize("make,param,text", [
    (_train_config, "triplet_weight", "triplet_weight must not be negative, got -2.0"),
    (_feature_config, "levels", "levels must be at least 1, got 0"),
    (_seeds, "seeds", "seeds must be comma-separated integers such as 0,1,2, got '0,x'"),
])
def test_config_checks_name_the_field(make, param, text):
    with pytest.raises(OvssError) as e:
        make()
    assert str(e.value) == text and e.value.param == param


def test_param_survives_pickling():
    """Errors raised in worker processes reach the parent with their keyword."""
    err = pickle.loads(pickle.dumps(OvssError("workers must be 0 or more, got -1", param="workers")))
    assert str(err) == "workers must be 0 or more, got -1" and err.param == "workers"
    assert OvssError("plain").param is None


# 2. the same mistakes on the command line: the flag, one line, exit 2


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ovss: error: ") and "Traceback" not in err, err
    return err.strip()


def test_cli_precision_names_the_flag(image, tmp_path, capsys):
    rc = main(["segment", str(image), "--classes", "a, b", *MODEL, "--precision", "fp16", "--out", str(tmp_path / "o")])
    err = _one_line(capsys)
    assert rc == 2
    assert err == ("ovss: error: --precision fp16 needs a CUDA device (CPUs have no fast fp16 matmul); "
                   "use bf16 or int8 on CPU")


def test_cli_workers_names_the_flag(tmp_path, capsys):
    rc = main(["bench", "--dataset", "shapesworld", "--data-root", str(tmp_path), "--workers", "-1", *MODEL,
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "--workers must be 0 or more, got -1" in _one_line(capsys)


def test_cli_flag_whose_dest_differs(tmp_path, capsys):
    """--lambda sets triplet_weight; the library says triplet_weight, the command line --lambda."""
    rc = main(["adapt", "train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--lambda", "-2"])
    assert rc == 2 and _one_line(capsys) == "ovss: error: --lambda must not be negative, got -2.0"


def test_cli_world_make_names_n(tmp_path, capsys):
    rc = main(["world", "make", "--out", str(tmp_path / "w"), "--n", "0"])
    assert rc == 2 and _one_line(capsys) == "ovss: error: --n must be at least 1 (got 0)"


# the translation itself


def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("--precision")
    p.add_argument("--out")
    p.add_argument("--lambda", dest="triplet_weight", type=float)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--classes")
    return p


@pytest.mark.parametrize("message,param,printed", [
    ("precision='fp16' needs a CUDA device", "precision", "--precision fp16 needs a CUDA device"),
    ("triplet_weight must not be negative, got -1.0", "triplet_weight", "--lambda must not be negative, got -1.0"),
    ("replace those results (overwrite=True)", "overwrite", "replace those results (--overwrite)"),
    ('e.g. classes="cat, sofa"', "classes", "e.g. --classes 'cat, sofa'"),
    # a path that holds the keyword is left alone, as is the keyword inside a quote or another name
    ("/tmp/out/x.json was not written by ovss; choose another out folder", "out",
     "/tmp/out/x.json was not written by ovss; choose another --out folder"),
    ("'out' holds views/; choose another out folder", "out", "'out' holds views/; choose another --out folder"),
    ("out_dir and outer are other words", "out", "out_dir and outer are other words"),
    # no option for the keyword, or no keyword: unchanged
    ("workers must be 0 or more, got -1", "workers", "workers must be 0 or more, got -1"),
    ("precision='fp16' needs a CUDA device", None, "precision='fp16' needs a CUDA device"),
])
def test_flag_message(message, param, printed):
    assert flag_message(OvssError(message, param=param), _parser()) == printed


def test_command_parser_follows_the_verbs():
    parser = build_parser()
    args = parser.parse_args(["world", "make", "--out", "x", "--n", "1"])
    assert command_parser(parser, args).prog == "ovss world make"
    assert command_parser(parser, parser.parse_args(["models"])).prog == "ovss models"
    assert command_parser(parser, parser.parse_args([])) is parser


# 3. the rule stays true: no OvssError message outside cli/ names a flag


def flag_texts(source: str) -> list[str]:
    """The message texts of the ``OvssError(...)`` calls in ``source`` that name a flag (``--word`` or
    ``--{name}``). A whole command to run, in backticks (`ovss data check ROOT --dataset NAME`), is
    advice for a shell, not a flag of the call, and is allowed."""
    found = []
    for node in ast.walk(ast.parse(source)):
        func = getattr(node, "func", None)
        if not isinstance(node, ast.Call) or getattr(func, "id", getattr(func, "attr", None)) != "OvssError":
            continue
        parts = list(ast.walk(node.args[0])) if node.args else []
        inner = {id(v) for part in parts if isinstance(part, ast.JoinedStr) for v in part.values}
        for part in parts:
            if id(part) in inner:  # a piece of an f-string, read with the whole f-string
                continue
            if isinstance(part, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in part.values)
            elif isinstance(part, ast.Constant) and isinstance(part.value, str):
                text = part.value
            else:
                continue
            if re.search(r"--[A-Za-z{]", re.sub(r"`ovss [^`]*`", "", text)):
                found.append(text)
    return found


def test_the_scan_sees_flags():
    assert flag_texts('OvssError(f"--workers must be 0 or more, got {w}")') == ["--workers must be 0 or more, got {}"]
    assert flag_texts('OvssError(f"--{name} must be at least 1")') == ["--{} must be at least 1"]
    assert flag_texts('OvssError("a " + ("pass --out" if x else ""))') == ["pass --out"]
    assert flag_texts('OvssError(f"run `ovss data check {r} --dataset x`", param="x")') == []
    assert flag_texts('print("--workers")') == []


def test_library_errors_name_no_flags():
    files = [p for p in SRC.rglob("*.py") if "cli" not in p.relative_to(SRC).parts[:1]]
    assert len(files) > 100
    bad = {str(p.relative_to(SRC)): found for p in files if (found := flag_texts(p.read_text(encoding="utf-8")))}
    assert bad == {}


def test_renamed_is_one_pass_and_the_page_names_its_controls():
    """A name containing the keyword is not replaced again; the page speaks of its own controls."""
    from ovss.app.page import page_message

    err = OvssError("preset='resclip-rcs' refuses visual prompts; choose another preset", param="preset")
    assert err.renamed("the preset menu") == "the preset menu 'resclip-rcs' refuses visual prompts; choose another the preset menu"
    assert page_message(err) == "preset 'resclip-rcs' refuses visual prompts; choose another preset"
    assert page_message(OvssError("prob_thd must be in [0, 1], got 2", param="prob_thd")) == \
        "probability threshold must be in [0, 1], got 2"
    assert page_message(OvssError("workers must be 0 or more", param="workers")) == "workers must be 0 or more"
