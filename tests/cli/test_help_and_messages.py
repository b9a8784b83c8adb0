"""Help, version and messages: what a user reads before anything runs."""
import subprocess
import sys

import pytest

from ovss.cli import _all_parsers, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == "ovss 0.1.0"


def test_help_does_not_import_torch():
    """Heavy imports only in the commands that need them, so every --help answers at once."""
    code = "import sys, ovss.cli; ovss.cli.build_parser(); print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_every_help_shows_defaults_and_names_papers():
    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 20
    for p in parsers:
        text = p.format_help()
        for word in ("seed 00", "the seed's", "The seed's", "(seed "):
            assert word not in text, (p.prog, word)
    train = next(p for p in parsers if p.prog == "ovss world train").format_help()
    flat = " ".join(train.split())
    assert "--recipe" in flat and "(default: shapesworld2;" in flat
    assert "shapesworld2's is 2150)" in flat and "shapesworld2's is 64)" in flat and "shapesworld2's is 0)" in flat
    segment = next(p for p in parsers if p.prog == "ovss segment").format_help()
    assert "required with any other --model" in segment.replace("\n", " ").replace("  ", " ") or "required with" in segment
    for prog in ("ovss models", "ovss data list", "ovss data check"):
        p = next(p for p in parsers if p.prog == prog)
        assert p.description, prog


def test_shapesworld_is_a_vocabulary_name():
    from ovss.openbench import resolve_vocabulary
    from ovss.world import CLASSES

    label, classes = resolve_vocabulary("shapesworld")
    assert label == "shapesworld" and [c[0] for c in classes] == list(CLASSES)


def test_openbench_missing_folder_is_named(tmp_path, capsys):
    rc = main(["openbench", "stats", "--train-vocab", "shapesworld-base", "--datasets", str(tmp_path / "nope")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "no such file or folder" in err and "unknown vocabulary" not in err
    (tmp_path / "empty").mkdir()
    rc = main(["openbench", "stats", "--train-vocab", "shapesworld-base", "--datasets", str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not a dataset layout" in err


@pytest.mark.parametrize("flag,value,named", [("--lr", "-1", "--lr must be positive"), ("--lambda", "-2", "--lambda"),
                                              ("--margin", "-1", "--margin"), ("--proxy-weight", "-1", "--proxy-weight")])
def test_adapt_train_errors_name_the_flag_typed(tmp_path, capsys, flag, value, named):
    rc = main(["adapt", "train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), flag, value])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and named in err and "warmup" not in err and len(err.splitlines()) == 1


def test_embedded_model_default_preset_is_the_same_in_python_and_cli(tmp_path):
    """One rule for defaults: Segmenter(model) and `ovss segment` give the same labels."""
    import json

    import numpy as np
    from PIL import Image

    from ovss import Segmenter, load_model
    from ovss.world import make_scene

    scene = make_scene(3, size=112)
    Image.fromarray(scene.image).save(tmp_path / "s.png")
    model = load_model()
    seg = Segmenter(model)
    assert seg.preset.name == "shapesworld"
    labels = seg.predict(scene.image, ["sky", "grass", "water"]).labels.numpy()
    assert main(["segment", str(tmp_path / "s.png"), "--classes", "sky, grass, water", "--out", str(tmp_path / "o")]) == 0
    cli = np.asarray(Image.open(tmp_path / "o" / "s.png"))
    assert json.loads((tmp_path / "o" / "s.json").read_text())["settings"]["name"] == "shapesworld"
    assert np.array_equal(labels, cli)
