import json
import re

import pytest

from ovss.cli import main
from ovss.opendas import generate_negatives, negative_queries, read_negatives
from ovss.opendas.negatives import INSTRUCTION, SHIPPED, parse_negative_dict
from ovss.errors import OvssError


def test_shipped_shapesworld_negatives_name_no_shapesworld_class():
    from ovss.world import CLASSES, SYNONYMS
    from ovss.world.classes import PLURALS

    table = read_negatives(SHIPPED["shapesworld"])
    assert set(table) == set(CLASSES) and all(len(v) == 5 for v in table.values())
    names = set(CLASSES) | {s for syn in SYNONYMS.values() for s in syn} | set(PLURALS.values())
    for cls, negatives in table.items():
        for neg in negatives:
            words = set(re.findall(r"[a-z]+", neg.lower()))
            assert not words & names and neg.lower() not in names, (cls, neg)


def test_negative_queries_dedup_and_exclude():
    table = {"boat": ["buoy", "ship", "raft"], "car": ["truck", "raft"]}
    assert negative_queries(["boat", "car"], table, exclude=["ship"]) == ["buoy", "raft", "truck"]


def test_llm_negatives_use_opendas_instruction_and_parse_a_python_dict():
    class FakeClient:
        def ask(self, prompt, parse):
            self.prompt = prompt
            return parse("Sure!\n```python\n{'boat': ['buoy', 'raft'], 'Car': ['truck']}\n```")

    client = FakeClient()
    assert generate_negatives(client, ["boat", "car"]) == {"boat": ["buoy", "raft"], "car": ["truck"]}
    assert client.prompt.startswith(INSTRUCTION) and '["boat", "car"]' in client.prompt
    with pytest.raises(OvssError, match="malformed LLM answer"):
        parse_negative_dict("I cannot help with that.")


def _one_line_error(capsys, argv, pattern):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ovss: error: ") and re.search(pattern, err), err


def test_cli_errors_are_one_line(capsys, tmp_path):
    _one_line_error(capsys, ["adapt", "train", "--method", "maple", "--data", "x", "--out", str(tmp_path)],
                    "unknown adaptation method 'maple'")
    _one_line_error(capsys, ["adapt", "train", "--data", "x", "--out", str(tmp_path), "--epochs", "0"],
                    "--epochs must be at least 1")
    _one_line_error(capsys, ["adapt", "eval", "--prompts", str(tmp_path / "none.safetensors"), "--data", "x"],
                    "prompts file not found")
    _one_line_error(capsys, ["adapt", "segments-miou", "--data", "x", "--proposals", "sam"], "unknown proposals 'sam'")
    _one_line_error(capsys, ["adapt", "train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run"),
                             "--model", "ovss-tiny", "--pretrained", "none"], "does not exist")
    _one_line_error(capsys, ["adapt", "train", "--data", "x", "--dataset", "voc21", "--out", str(tmp_path)],
                    "--base-classes FILE is required for dataset voc21")
    _one_line_error(capsys, ["adapt", "negatives", "--classes", "boat", "--out", str(tmp_path / "n.json"),
                             "--llm-endpoint", "", "--llm-model", ""], "need --llm-endpoint")


def test_cli_train_eval_and_miou_end_to_end(capsys, tmp_path):
    from ovss.world import write_dataset

    train = write_dataset(tmp_path / "train", n=3, size=64, split="train", style="night", progress=False)
    val = write_dataset(tmp_path / "val", n=2, size=64, split="val", style="night", progress=False)
    common = ["--model", "ovss-tiny", "--pretrained", "none", "--cache", str(tmp_path / "cache"), "--no-progress"]
    run = tmp_path / "run"
    assert main(["adapt", "train", "--method", "coop", "--data", str(train), "--eval-data", str(val), "--out", str(run),
                 "--epochs", "1", *common]) == 0
    table = capsys.readouterr().out
    assert "| Method | # Params | Acc | W-F1 | B-F1 | N-F1 |" in table and "| coop | 512 |" in table
    info = json.loads((run / "prompts.json").read_text())
    assert info["method"] == "coop" and info["text"] == {"k": 4, "depth": 1, "width": 128} and info["params"] == 512
    assert "stage 1/1 (text) epoch 1/1" in (run / "train.log").read_text()

    prompts = str(run / "prompts.safetensors")
    assert main(["adapt", "eval", "--prompts", prompts, "--data", str(val), str(train), "--split", "val", *common]) == 2
    assert "missing image folder" in capsys.readouterr().err  # the train folder has no val split
    assert main(["adapt", "eval", "--prompts", prompts, "--data", str(val), *common]) == 0
    out = capsys.readouterr().out
    assert "No adaptation" in out and "coop" in out and "val (val)" in out
    assert main(["adapt", "segments-miou", "--prompts", prompts, "--data", str(val), "--proposals", "slic", *common]) == 0
    assert re.search(r"coop, slic proposals, 2 images: mIoU \d", capsys.readouterr().out)


def test_sibling_negatives_come_from_the_hierarchy():
    from ovss.world.sw2_classes import CATEGORY, sibling_negatives

    table = sibling_negatives()
    # THINGS lists the mammals as dog, cat, horse, cow, sheep, pig, goat, ...
    assert table["dog"] == ["cat", "horse", "cow", "sheep", "pig"]
    assert table["cat"] == ["dog", "horse", "cow", "sheep", "pig"]
    assert all(c not in v and len(v) <= 5 and all(CATEGORY[o] == CATEGORY[c] for o in v) for c, v in table.items())
    # names a dataset queries are skipped, and the next siblings take their places
    assert sibling_negatives(exclude=["Cat", "cow"])["dog"] == ["horse", "sheep", "pig", "goat", "rabbit"]


def test_a_shapesworld2_export_brings_its_split_and_negatives(tmp_path, capsys):
    from ovss.world import write_dataset
    from ovss.world.sw2_classes import BENCHMARKS, SYNONYMS2, is_novel

    data = write_dataset(tmp_path / "d", n=3, seed=2, split="train", size=112, progress=False,
                         world="shapesworld2", benchmark="sw2-59")
    out = tmp_path / "run"
    args = ["adapt", "train", "--method", "opendas", "--data", str(data), "--out", str(out), "--epochs", "1",
            "--model", "ovss-tiny", "--pretrained", "none", "--no-progress"]
    assert main(args) == 0
    log = (out / "train.log").read_text()
    assert "ShapesWorld 2's hierarchy" in log
    base = [c for c in BENCHMARKS["sw2-59"] if not is_novel(c)]
    assert f"{len(base)} base classes" in capsys.readouterr().out + log
    negatives = {k: v for k, v in json.loads((out / "negatives.json").read_text()).items() if k in base}
    assert list(negatives) == base
    asked = {n for c in BENCHMARKS["sw2-59"] for n in (c, *SYNONYMS2[c])}
    assert negatives["dog"] and not any(n in asked for v in negatives.values() for n in v)
