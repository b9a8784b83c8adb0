import json
import re

import numpy as np
import pytest
from PIL import Image

from ovss.cli import main

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


@pytest.fixture
def captions(tmp_path):
    f = tmp_path / "captions.txt"
    f.write_text("a boat on the water\ntwo boats on the water under the sky\na photo of a boat\n"
                 "a boat with liberty\nthe sky above the water\n")
    return f


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def test_build_then_show(captions, tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["concepts", "build", "--captions", str(captions), "--out", str(out), "--no-progress"]) == 0
    assert "5 concepts" in capsys.readouterr().out
    assert json.loads(out.read_text())["concepts"]["boat"] == 4
    rc = main(["concepts", "show", "boats", "--dict", str(out), "--abstract", "list", "--delta", "1", *MODEL])
    text = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"dropped  photo +uninformative word", text)
    assert re.search(r"dropped  liberty +abstract \(built-in list\)", text)
    assert re.search(r"kept     water +co-occurrence 0.500 > gamma 0.01", text) and "always added" in text
    assert text.strip().endswith("segment with: boats || water, sky, background")


def test_show_background_and_file_sources(tmp_path, capsys):
    assert main(["concepts", "show", "boat", "--source", "background"]) == 0
    assert "segment with: boat || background" in capsys.readouterr().out
    f = tmp_path / "cc.txt"
    f.write_text("boat: water, pier\n")
    assert main(["concepts", "show", "boat", "--source", str(f)]) == 0
    assert "listed for 'boat' in cc.txt" in capsys.readouterr().out


def test_segment_open_world(image, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["segment", str(image), "--classes", "boat", "--open-world", "--concepts", "cooc", "--abstract", "list",
               *MODEL, "--out", str(out)])
    assert rc == 0
    labels = np.asarray(Image.open(out / "img.png"))
    assert labels.shape == (40, 56) and set(np.unique(labels)) <= {0, 255}
    meta = json.loads((out / "img.json").read_text())
    assert meta["open_world"]["source"] == "cooc" and "background" in meta["open_world"]["concepts"]
    assert set(meta["pixel_share"]) == {"boat", "(unlabelled)"}
    assert abs(sum(meta["pixel_share"].values()) - 1) < 1e-9
    assert Image.open(out / "img_overlay.png").width > 56


@pytest.mark.parametrize("args,msg", [
    (["concepts", "build", "--captions", "missing.txt", "--out", "d.json"], "caption file not found"),
    (["concepts", "build", "--captions", "EMPTY", "--out", "d.json", "--no-progress"], "corpus is empty"),
    (["concepts", "show", "boat", "--source", "nosuch"], "unknown concept source 'nosuch'"),
    (["concepts", "show", "boat", "--source", "llm"], "needs an endpoint"),
    (["concepts", "show", "boat", "--source", "llm", "--llm-endpoint", "localhost", "--llm-model", "m"], "http(s) URL"),
    (["concepts", "show", "boat", "--source", "oracle"], "needs the dataset's class names"),
    (["concepts", "show", "boat", "--dict", "nodict.json", *MODEL], "dictionary not found"),
    (["concepts", "show", "boat", "--gamma", "3"], "--gamma must be between"),
    (["concepts", "show", " , "], "no query given"),
    (["segment", "IMAGE", "--classes", "boat", "--concepts", "cooc", *MODEL, "--out", "o"], "works with --open-world"),
    (["segment", "IMAGE", "--classes", "boat", "--open-world", "--concepts", "llm", *MODEL, "--out", "o"], "needs an endpoint"),
])
def test_errors_are_one_line(args, msg, tmp_path, image, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OVSS_LLM_ENDPOINT", raising=False)
    monkeypatch.delenv("OVSS_LLM_MODEL", raising=False)
    (tmp_path / "EMPTY").write_text("\n\n")
    args = [str(image) if a == "IMAGE" else a for a in args]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    assert msg in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("ovss: error: ")


def test_a_corpus_giving_an_empty_dictionary_is_an_error(tmp_path, capsys):
    # issue 22: a corpus of stop words built an empty dictionary with rc 0
    stop = tmp_path / "stop.txt"
    stop.write_text("the of and\na an the\nof to in\n")
    out = tmp_path / "d.json"
    assert main(["concepts", "build", "--captions", str(stop), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"ovss: error: {stop} gives an empty dictionary: its words are all stop words, counts or too "
                   'short to be concepts; give captions that name things (e.g. "a boat on the sea")')
    assert not out.exists()
    rare = tmp_path / "rare.txt"
    rare.write_text("a boat\na cat\n")
    assert main(["concepts", "build", "--captions", str(rare), "--out", str(out), "--no-progress", "--min-count", "2"]) == 2
    assert "none of its 2 concepts reaches --min-count 2; give captions" in capsys.readouterr().err
    assert not out.exists()
