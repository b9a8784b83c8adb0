"""The output contract, for every command that writes (issue 22, items 1-10; README "What ovss guarantees").

Every entry of ``ovss.cli.outputs.WRITERS`` is run through the cases that hold before any work
(``--out`` under a file, the output equal to or inside an input); the commands cheap enough to run
to their first write also through a full disk. Then one test per item: another run's and another
job's files, the lock, seeds that add, a stopped 3d classify, safetensors and the umask.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ovss.cli import build_parser, main
from ovss.cli.outputs import WRITERS
from ovss.errors import OvssError

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


def _one_line(capsys) -> str:
    """The one error line (a progress bar's carriage returns before it are not lines of the message)."""
    err = capsys.readouterr().err
    assert err.count("ovss: error: ") == 1 and "Traceback" not in err, err
    return "ovss: error: " + err.split("ovss: error: ", 1)[1].splitlines()[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Small inputs every command can name: a ShapesWorld folder, a room, a caption file, a class
    file, a classify result folder."""
    root = tmp_path_factory.mktemp("inputs")
    assert main(["world", "make", "--world", "shapesworld", "--out", str(root / "w"), "--n", "2", "--size", "48"]) == 0
    assert main(["world", "make3d", "--out", str(root / "r"), "--n", "1", "--frames", "2", "--points", "800",
                 "--objects", "2", "--size", "48x64", "--no-progress"]) == 0
    (root / "captions.txt").write_text("a dog on the grass\na cat on a sofa\na dog and a cat\n")
    (root / "classes.txt").write_text("dog\ncat\n")
    room = next((root / "r" / "val").iterdir())
    assert main(["3d", "classify", str(room), "--classes-file", str(root / "r" / "classes.txt"), *MODEL, "--out",
                 str(root / "c"), "--views", "1", "--no-progress"]) == 0
    (root / "F").write_text("a file")
    from data.prepare_archives import ade_zip  # tests/data: the official archives, small

    (root / "downloads").mkdir()
    ade_zip(root / "downloads")
    import torch

    from ovss.files import save_safetensors
    from ovss.outputs import OutputRun

    with OutputRun("adapt train", root / "run"):
        save_safetensors(root / "run" / "prompts.safetensors", {"a": torch.zeros(1)})
    return {"root": root, "w": root / "w", "room": room, "captions": root / "captions.txt",
            "classes": root / "classes.txt", "c": root / "c", "F": root / "F", "downloads": root / "downloads"}


def argv(prog: str, out: str, i: dict) -> list[str]:
    """A small command line of each writing command, writing to ``out``."""
    w, room, c = str(i["w"]), str(i["room"]), str(i["c"])
    return {
        "ovss segment": ["segment", str(i["w"] / "images" / "val"), "--classes", "a, b", *MODEL, "--out", out],
        "ovss bench": ["bench", "--dataset", "shapesworld", "--data-root", w, "--corruptions", "original", "--limit", "1",
                       "--workers", "0", "--no-progress", *MODEL, "--out", out],
        "ovss world make": ["world", "make", "--world", "shapesworld", "--n", "1", "--size", "32", "--out", out],
        "ovss world make3d": ["world", "make3d", "--n", "1", "--frames", "1", "--points", "800", "--objects", "1",
                              "--size", "32x40", "--no-progress", "--out", out],
        "ovss world train": ["world", "train", "--steps", "1", "--batch-size", "2", "--workers", "0", "--no-progress",
                             "--out", out + ".safetensors"],
        "ovss world eval": ["world", "eval", "--quick", "--n", "1", "--out", out],
        "ovss adapt train": ["adapt", "train", "--data", w, "--split", "val", "--epochs", "1", "--negatives", "none", *MODEL,
                             "--out", out],
        "ovss adapt eval": ["adapt", "eval", "--data", w, *MODEL, "--out", out],
        "ovss adapt segments-miou": ["adapt", "segments-miou", "--data", w, *MODEL, "--out", out],
        "ovss adapt negatives": ["adapt", "negatives", "--classes-file", str(i["classes"]), "--out", out],
        "ovss concepts build": ["concepts", "build", "--captions", str(i["captions"]), "--no-progress", "--out", out],
        "ovss openbench stats": ["openbench", "stats", "--train-vocab", "shapesworld", "--datasets", w, *MODEL, "--out", out],
        "ovss openbench build": ["openbench", "build", "--sources", w, "--train-vocab", str(i["classes"]), "--sigma1", "0.99",
                                 "--sigma2", "0.99", "--no-progress", *MODEL, "--out", out],
        "ovss openbench classcount": ["openbench", "classcount", "--dataset", "shapesworld", "--data-root", w,
                                      "--extra-classes", "0", "--limit", "1", "--no-progress", *MODEL, "--out", out],
        "ovss ovsnet ablation": ["ovsnet", "ablation", "--world", "shapesworld", "--data", str(i["root"] / "d"), "--steps", "1", "--train-n", "2",
                                 "--val-n", "2", "--variants", "baseline", "--no-progress", *MODEL, "--out", out],
        "ovss 3d classify": ["3d", "classify", room, "--classes", "box, ball", "--views", "1", "--no-progress", *MODEL,
                             "--out", out],
        "ovss 3d eval": ["3d", "eval", c, "--out", out],
        "ovss data prepare": ["data", "prepare", "ade20k", "--from", str(i["downloads"]), "--no-checksum", "--out", out],
        "ovss reproduce": ["reproduce", "shapesworld-heads", "--data-root", w, "--rows", "original", "--columns", "naclip",
                           "--limit", "1", "--workers", "0", "--no-progress", "--out", out],
    }[prog]


def test_every_writing_command_is_in_the_table():
    """A command with an ``--out`` that is not in WRITERS would write outside the contract."""
    from ovss.cli import _all_parsers

    writing = {p.prog for p in _all_parsers(build_parser()) if any("--out" in a.option_strings for a in p._actions)}
    assert writing == set(WRITERS)


def _snapshot(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("prog", sorted(WRITERS))
def test_out_under_a_file_is_one_line_before_any_work(prog, inputs, capsys):
    """Item 9: a traceback (or 600 training steps first) in 8 commands."""
    before = _snapshot(inputs["root"])
    rc = main(argv(prog, str(inputs["F"] / "x"), inputs))
    err = _one_line(capsys)
    assert rc == 2 and f"--out {inputs['F']}/x" in err and "is a file, not a folder" in err, err
    assert _snapshot(inputs["root"]) == before


# the output is an input (or lies in an input folder): the case of each command; the commands that
# read nothing (world make, make3d, train) meet instead a folder of another job
SAME = {
    "ovss segment": lambda i: str(i["w"] / "images" / "val"),
    "ovss bench": lambda i: str(i["w"]),
    "ovss world make": lambda i: str(i["c"]),
    "ovss world make3d": lambda i: str(i["w"]),
    "ovss world train": lambda i: str(i["root"] / "run" / "prompts"),  # + .safetensors: adapt train's
    "ovss world eval": lambda i: str(i["c"] / "instances.json"),
    "ovss adapt train": lambda i: str(i["w"]),
    "ovss adapt eval": lambda i: str(i["w"]),
    "ovss adapt segments-miou": lambda i: str(i["w"]),
    "ovss adapt negatives": lambda i: str(i["classes"]),
    "ovss concepts build": lambda i: str(i["captions"]),
    "ovss openbench stats": lambda i: str(i["w"]),
    "ovss openbench build": lambda i: str(i["w"]),
    "ovss openbench classcount": lambda i: str(i["w"]),
    "ovss ovsnet ablation": lambda i: str(i["c"]),
    "ovss 3d classify": lambda i: str(i["room"]),
    "ovss 3d eval": lambda i: str(i["c"] / "instances.json"),
    "ovss data prepare": lambda i: str(i["downloads"]),  # its dataset folder would lie inside the downloads
    "ovss reproduce": lambda i: str(i["w"]),
}


@pytest.mark.parametrize("prog", sorted(WRITERS))
def test_output_that_is_an_input_is_one_line_before_any_work(prog, inputs, capsys):
    """Items 1-3 and 6: the source dataset, the caption corpus, the classify result were replaced."""
    out = SAME[prog](inputs)
    before = _snapshot(inputs["root"])
    rc = main(argv(prog, out, inputs))
    err = _one_line(capsys)
    assert rc == 2, err
    assert ("is the input" in err or "inside the input folder" in err or "holds results of `ovss" in err
            or "wrote it, not `ovss" in err or "is a folder" in err), err
    assert _snapshot(inputs["root"]) == before


def test_openbench_build_into_its_source_keeps_the_source(inputs, capsys):
    """Item 1, the exact case: classes.txt, val.txt, meta.json of the source stay as they were."""
    files = {n: (inputs["w"] / n).read_bytes() for n in ("classes.txt", "val.txt", "meta.json")}
    assert main(argv("ovss openbench build", str(inputs["w"]), inputs)) == 2
    assert f"the output {inputs['w']} is the input {inputs['w']}" in _one_line(capsys)
    assert {n: (inputs["w"] / n).read_bytes() for n in files} == files


# a full disk: every command, run (small) to its first write; an LLM answer is stubbed
FILE_OUT = ("ovss 3d eval", "ovss concepts build", "ovss world eval", "ovss adapt eval", "ovss adapt segments-miou",
            "ovss adapt negatives")


def _no_llm(monkeypatch):
    import ovss.cli.adapt as adapt
    import ovss.opendas as opendas

    monkeypatch.setattr(adapt, "_llm", lambda args: None)
    monkeypatch.setattr(opendas, "generate_negatives", lambda client, classes: {c: ["wolf"] for c in classes})


def _full_disk(monkeypatch, under, only=None):
    real = os.replace

    def replace(src, dst, *a, **k):
        if str(dst).startswith(str(under)) and not os.path.basename(str(dst)).startswith(".ovss") and \
                (only is None or str(dst).endswith(only)):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("prog", sorted(WRITERS))
def test_full_disk_is_one_line_and_leaves_nothing_half_written(prog, inputs, tmp_path, monkeypatch, capsys):
    """Item 8: a traceback (OSError: [Errno 28]) in segment and bench."""
    out = tmp_path / "out"
    _no_llm(monkeypatch)
    _full_disk(monkeypatch, tmp_path)
    rc = main(argv(prog, str(out / "x.json") if prog in FILE_OUT else str(out), inputs))
    err = _one_line(capsys)
    assert rc == 2 and "no space left" in err, err
    left = [p for p in tmp_path.rglob("*") if p.is_file() and (p.suffix in (".png", ".json", ".safetensors", ".ply")
                                                              or p.name.endswith(".tmp"))]
    assert left == []


def test_full_disk_at_the_json_removes_the_label_png(inputs, tmp_path, monkeypatch, capsys):
    """Item 8: a label PNG without its JSON was left behind."""
    image = inputs["w"] / "images" / "val" / "sw_400000.png"
    _full_disk(monkeypatch, tmp_path, only=".json")
    rc = main(["segment", str(image), "--classes", "a, b", *MODEL, "--out", str(tmp_path / "o")])
    assert rc == 2 and "no space left to write" in _one_line(capsys)
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_a_raw_full_disk_error_is_one_line(monkeypatch, tmp_path, capsys):
    """Writes outside atomic_write (a log line) end in the same line, not a traceback."""
    import ovss.cli.world as world

    def boom(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "w" / "train.log"))

    monkeypatch.setattr(world, "run_make", boom)
    assert main(["world", "make", "--world", "shapesworld", "--out", str(tmp_path / "w"), "--n", "1"]) == 2
    assert "no space left on the device writing" in _one_line(capsys)


# ----------------------------------------------------------------------------- runs and jobs


def test_another_kind_of_job_at_an_output_path_is_refused(inputs, tmp_path, capsys):
    """Item 6: a ShapesWorld image at a segment output path was overwritten (both said "ovss")."""
    world = tmp_path / "w"
    assert main(["world", "make", "--world", "shapesworld", "--out", str(world), "--n", "1", "--size", "32"]) == 0
    target = world / "images" / "val" / "sw_400000.png"
    assert Image.open(target).text["ovss-job"] == "world make"
    before = target.read_bytes()
    photo = tmp_path / "p" / "sw_400000.png"
    photo.parent.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    capsys.readouterr()
    assert main(["segment", str(photo), "--classes", "a, b", *MODEL, "--out", str(target.parent)]) == 2
    assert "`ovss world make` wrote it, not `ovss segment`" in _one_line(capsys)
    assert target.read_bytes() == before


def test_a_running_job_locks_its_output(tmp_path, capsys):
    """Item 4 (at once): a second run into a folder being written gets one line naming the lock and pid."""
    out = tmp_path / "w"
    out.mkdir()
    (out / ".ovss.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                                "kind": "world make", "run": "other", "since": "now"}))
    assert main(["world", "make", "--world", "shapesworld", "--out", str(out), "--n", "1", "--size", "32"]) == 2
    err = _one_line(capsys)
    assert f"pid {os.getpid()}" in err and str(out / ".ovss.lock") in err and "another ovss job" in err
    assert sorted(os.listdir(out)) == [".ovss.lock"]


def test_a_dead_jobs_lock_is_taken_over_and_released(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "w"
    out.mkdir()
    (out / ".ovss.lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "kind": "world make"}))
    assert main(["world", "make", "--world", "shapesworld", "--out", str(out), "--n", "1", "--size", "32"]) == 0
    assert not (out / ".ovss.lock").exists() and (out / "meta.json").exists()


def test_a_stopped_3d_classify_resumes_into_its_folder(inputs, tmp_path, capsys):
    """Item 7: after SIGKILL (views/ and labelled.ply written, instances.json not yet, the lock left)
    a rerun said the folder held files "that ovss did not write"."""
    out = tmp_path / "c"
    args = ["3d", "classify", str(inputs["room"]), "--classes", "box, ball", "--views", "1", "--no-progress", *MODEL,
            "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "instances.json").read_text())
    (out / "instances.json").unlink()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".ovss.lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "kind": "3d classify"}))
    capsys.readouterr()
    assert main(args) == 0, capsys.readouterr().err
    again = json.loads((out / "instances.json").read_text())
    assert [i["label"] for i in again["instances"]] == [i["label"] for i in first["instances"]]
    # a user's file where the views go is still refused
    (out / "instances.json").unlink()
    (out / "views" / "mine.png").write_bytes(b"x")
    assert main(args) == 2 and "that ovss did not write" in _one_line(capsys)


def test_bench_seeds_add_and_the_summary_says_over_which(inputs, tmp_path, capsys):
    """Item 5: --seeds 1 into a folder of seed-0 results replaced them ("recomputing it")."""
    out = tmp_path / "b"
    args = argv("ovss bench", str(out), inputs)
    assert main(args) == 0
    seed0 = (out / "shapesworld" / "none" / "original.json").read_bytes()
    capsys.readouterr()
    assert main(args + ["--seeds", "1"]) == 0
    assert "recomputing" not in capsys.readouterr().err
    assert (out / "shapesworld" / "none" / "original.json").read_bytes() == seed0  # kept, not replaced
    seed1 = json.loads((out / "shapesworld" / "none" / "original.seed1.json").read_text())
    assert seed1["settings"]["seed"] == 1 and seed1["ovss_job"]["kind"] == "bench"
    assert main(args + ["--seeds", "0,1"]) == 0  # both done: nothing recomputed, nothing removed
    assert (out / "shapesworld" / "none" / "original.json").read_bytes() == seed0
    assert "mean ± std over seeds 0, 1" in (out / "summary.md").read_text()


def test_a_cell_over_fewer_seeds_names_them(tmp_path):
    from ovss.evaluation.report import write_report

    for c, seeds in (("original", (0, 1)), ("fog", (1,))):
        for s in seeds:
            path = tmp_path / "d" / "none" / f"{c}.seed{s}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"scenario": {"dataset": "d", "method": "none", "corruption": c, "seed": s},
                                        "metrics": {"mIoU": 40.0 + s}, "timing": {"images": 2}}))
    text = write_report(tmp_path)
    assert "| Original | 2 | 40.50 ± 0.50 |" in text
    assert "| Fog | 2 | 41.00 (seed 1) |" in text
    assert "mean ± std over seeds 0, 1; a cell over fewer seeds names them" in text


# ----------------------------------------------------------------------------- the library


def test_safetensors_follow_the_umask_and_name_the_job(tmp_path):
    """Item 10: every .safetensors was 0600 under umask 022."""
    import torch

    from ovss.files import save_safetensors
    from ovss.outputs import OutputRun, file_job

    old = os.umask(0o022)
    try:
        with OutputRun("adapt train", tmp_path / "run") as run:
            path = save_safetensors(tmp_path / "run" / "p.safetensors", {"a": torch.zeros(2)}, {"k": "v"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert file_job(path) == ("adapt train", run.job.run)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert f.metadata()["k"] == "v"


def test_library_messages_name_the_keyword(tmp_path):
    from ovss.outputs import OutputRun

    (tmp_path / "f").write_text("x")
    with pytest.raises(OvssError) as e:
        OutputRun("segment", tmp_path / "f" / "o").check()
    assert str(e.value).startswith(f"out='{tmp_path}/f/o': ") and e.value.param == "out"
    with pytest.raises(OvssError) as e:
        OutputRun("concepts build", tmp_path / "f", inputs=[tmp_path / "f"], is_file=True).check()
    assert "is the input" in str(e.value) and "--" not in str(e.value)


def test_files_older_than_the_tags_stay_readable_and_are_another_run(tmp_path):
    """An ovss PNG without a job tag (written before the tags) is read as before; a job that does not
    resume treats it as another run's, a job that resumes continues it."""
    from ovss.files import save_image, written_by_ovss
    from ovss.outputs import Job, claim_problem, file_job

    path = save_image(tmp_path / "a.png", Image.fromarray(np.zeros((4, 4), np.uint8)))
    assert written_by_ovss(path) and file_job(path) is None
    assert claim_problem(path, Job("segment", "r1", resumes=False)) == "an earlier ovss run wrote it"
    assert claim_problem(path, Job("world make", "r1")) is None
    assert claim_problem(path, Job("segment", "r1", resumes=False, overwrite=True)) is None


def test_a_file_output_replaces_only_its_own_kind_and_asks_for_another_run(inputs, tmp_path, capsys):
    """A single-file output (concepts build): a user's file there, or an earlier run's dictionary,
    is replaced only with --overwrite; what it writes names its job whatever the file is called."""
    out = tmp_path / "dict.txt"
    out.write_text("my notes\n")
    args = ["concepts", "build", "--captions", str(inputs["captions"]), "--no-progress", "--out", str(out)]
    assert main(args) == 2 and "no ovss job wrote it" in _one_line(capsys)
    assert out.read_text() == "my notes\n"
    assert main(args + ["--overwrite"]) == 0
    first = json.loads(out.read_text())
    assert first["ovss_job"]["kind"] == "concepts build" and first["format"] == "ovss-cooccurrence"
    capsys.readouterr()
    assert main(args) == 2 and "another `ovss concepts build` run" in _one_line(capsys)
    assert json.loads(out.read_text()) == first


def test_data_prepare_shares_a_data_root_with_other_jobs(inputs, tmp_path, capsys):
    """`data prepare` writes its dataset's own folder below the root (ROOT/ADEChallengeData2016), so a
    root that already holds a ShapesWorld export (another kind of job) is no conflict, and a second
    preparation resumes into the same folder."""
    root = tmp_path / "data"
    assert main(["world", "make", "--world", "shapesworld", "--out", str(root / "shapesworld"), "--n", "1", "--size", "32"]) == 0
    argv_prepare = ["data", "prepare", "ade20k", "--from", str(inputs["downloads"]), "--no-checksum", "--out", str(root)]
    assert main(argv_prepare) == 0
    assert (root / "ADEChallengeData2016" / "annotations" / "validation" / "ADE_val_00000001.png").is_file()
    assert main(argv_prepare) == 0  # resumes: every file is already there
    assert not (root / "ADEChallengeData2016" / ".ovss.lock").exists()
