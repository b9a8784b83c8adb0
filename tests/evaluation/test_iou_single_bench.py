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
