"""`ovss bench --metric iou-single`: one JSON per concept source, a table, reruns skip."""
import json

from ovss.cli import main
from ovss.world import write_dataset

MODEL = ["--model", "ovss-tiny", "--pretrained", "none", "--preset", "shapesworld", "--no-progress"]


class TestIoUSingleBench:
    def test_sources_written_and_skipped_on_rerun(self, tmp_path, capsys, monkeypatch):
        root = write_dataset(tmp_path / "sw", n=3, seed=1, split="val", size=112, progress=False)
        out = tmp_path / "run"
        args = ["bench", "--dataset", "shapesworld", "--data-root", str(root), "--metric", "iou-single",
                "--concepts", "background,oracle", "--out", str(out), *MODEL]
        assert main(args) == 0
        table = capsys.readouterr().out
        results = {s: json.loads((out / "shapesworld" / "iou_single" / f"{s}.json").read_text()) for s in ("background", "oracle")}
        for source, r in results.items():
            assert r["source"] == source and 0.0 <= r["mIoU_single"] <= 100.0
            assert f"{r['mIoU_single']:.2f}" in table
        # a rerun with the same settings evaluates nothing
        import ovss.concepts

        def refuse(*a, **k):
            raise AssertionError("re-evaluated a finished source")

        monkeypatch.setattr(ovss.concepts, "evaluate_iou_single", refuse)
        assert main(args) == 0
        assert "| shapesworld |" in capsys.readouterr().out

    def test_a_built_dictionary_feeds_cooc_and_is_recorded(self, tmp_path, capsys):
        root = write_dataset(tmp_path / "sw", n=2, seed=1, split="val", size=112, progress=False)
        corpus = tmp_path / "captions.txt"
        # "lighthouse" co-occurs with every class: the one concept a built dictionary adds
        corpus.write_text("".join(f"a {c} near a lighthouse\n" for c in ("boat", "car", "tree", "sky", "grass", "road")))
        cooc = tmp_path / "cooc.json"
        assert main(["concepts", "build", "--captions", str(corpus), "--out", str(cooc), "--no-progress"]) == 0
        out = tmp_path / "run"
        args = ["bench", "--dataset", "shapesworld", "--data-root", str(root), "--metric", "iou-single",
                "--concepts", "cooc", "--concepts-dict", str(cooc), "--out", str(out), *MODEL]
        assert main(args) == 0
        capsys.readouterr()
        result = json.loads((out / "shapesworld" / "iou_single" / "cooc.json").read_text())
        assert result["run_settings"]["dictionary"] == str(cooc.resolve())
        assert len(result["run_settings"]["dictionary_sha256"]) == 16
        assert result["settings"]["dictionary"]["captions"] == 6  # the built one, not the shipped one
        # a changed dictionary is another setting: its result is recomputed, not read back
        corpus.write_text(corpus.read_text() + "a boat near a windmill\n")
        assert main(["concepts", "build", "--captions", str(corpus), "--out", str(cooc), "--no-progress",
                     "--overwrite"]) == 0
        assert main(args + ["--overwrite"]) == 0
        again = json.loads((out / "shapesworld" / "iou_single" / "cooc.json").read_text())
        assert again["settings"]["dictionary"]["captions"] == 7

    def test_the_dictionary_follows_the_exports_world(self, tmp_path, capsys):
        """No --concepts-dict: a ShapesWorld export's cooc concepts come from ShapesWorld's shipped
        dictionary (said on stderr), a ShapesWorld 2 export's from the default, shapesworld2; each
        result names the dictionary and its hash, so neither is read back as the other."""
        from ovss.concepts.cooccurrence import DEFAULT_DICTIONARY

        assert DEFAULT_DICTIONARY == "shapesworld2"
        records = {}
        for world in ("shapesworld", "shapesworld2"):
            root = write_dataset(tmp_path / world, n=1, seed=1, split="val", size=112, progress=False, world=world)
            out = tmp_path / f"run_{world}"
            assert main(["bench", "--dataset", "shapesworld", "--data-root", str(root), "--metric", "iou-single",
                         "--concepts", "cooc", "--out", str(out), *MODEL]) == 0
            err = capsys.readouterr().err
            assert ("concepts: the shipped shapesworld co-occurrence dictionary" in err) == (world == "shapesworld")
            records[world] = json.loads((out / "shapesworld" / "iou_single" / "cooc.json").read_text())["run_settings"]
        assert records["shapesworld"]["dictionary"] == "shapesworld (shipped)"
        assert records["shapesworld2"]["dictionary"] == "shapesworld2 (shipped)"
        assert records["shapesworld"]["dictionary_sha256"] != records["shapesworld2"]["dictionary_sha256"]

    def test_dictionary_errors_are_one_line(self, tmp_path, capsys):
        root = write_dataset(tmp_path / "sw", n=1, seed=1, split="val", size=112, progress=False)
        base = ["bench", "--dataset", "shapesworld", "--data-root", str(root), "--out", str(tmp_path / "r"), *MODEL]
        assert main(base + ["--metric", "iou-single", "--concepts-dict", str(tmp_path / "none.json")]) == 2
        assert "no such file; build one with `ovss concepts build`" in capsys.readouterr().err
        (tmp_path / "d.json").write_text("{}")
        assert main(base + ["--concepts-dict", str(tmp_path / "d.json")]) == 2
        assert "--concepts-dict applies to --metric iou-single only" in capsys.readouterr().err

    def test_the_abstract_filter_that_ran_is_recorded_and_a_change_recomputes(self, tmp_path, capsys, monkeypatch):
        # "auto" runs WordNet where it is installed and the built-in list elsewhere: they keep
        # different concepts, so a result says which one ran, and a folder made without WordNet
        # is recomputed once WordNet is there, not read back
        from ovss.concepts import filters

        root = write_dataset(tmp_path / "sw", n=2, seed=1, split="val", size=112, progress=False)
        out = tmp_path / "run"
        args = ["bench", "--dataset", "shapesworld", "--data-root", str(root), "--metric", "iou-single",
                "--concepts", "cooc", "--out", str(out), *MODEL]
        monkeypatch.setattr(filters, "find_wordnet", lambda: None)
        assert main(args) == 0
        path = out / "shapesworld" / "iou_single" / "cooc.json"
        first = json.loads(path.read_text())
        assert first["run_settings"]["abstract_filter"] == "list"
        assert (first["settings"]["abstract"], first["settings"]["abstract_filter"]) == ("auto", "list")

        class FakeWordNet:
            location = "/nowhere/wordnet"

            def is_abstract(self, word):
                return None  # unknown to it: the built-in list answers, as for a missing noun

        monkeypatch.setattr(filters, "find_wordnet", lambda: FakeWordNet())
        capsys.readouterr()
        # the folder holds the list's result: another configuration, refused in one line
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "abstract_filter: list -> wordnet (/nowhere/wordnet)" in err and "another configuration" in err
        assert json.loads(path.read_text()) == first  # untouched
        assert main(args + ["--overwrite"]) == 0
        assert "replacing 1 IoU-single result(s)" in capsys.readouterr().err
        second = json.loads(path.read_text())
        assert second["run_settings"]["abstract_filter"] == "wordnet (/nowhere/wordnet)"
        assert second["settings"]["abstract_filter"] == "wordnet (/nowhere/wordnet)"
        capsys.readouterr()
