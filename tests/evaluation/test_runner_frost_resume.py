"""A run folder with frost results resumes: the frost source is a per-scenario setting."""
from __future__ import annotations

import json

from ovss.corruptions.frost import frost_source
from ovss.evaluation.runner import find_conflicts, run_benchmark
from ovss.world import write_dataset


def test_rerun_with_frost_skips_instead_of_conflicting(tiny_random, tmp_path):
    world = write_dataset(tmp_path / "sw", n=2, seed=1, split="val", size=112, progress=False)
    out = tmp_path / "run"
    kw = dict(corruptions="frost", preset="shapesworld", workers=0, progress=False)
    first = run_benchmark(tiny_random, [("shapesworld", world)], out, **kw)
    frost_file = out / "shapesworld" / "none" / "frost.json"
    saved = json.loads(frost_file.read_text())
    assert saved["settings"]["frost"] == frost_source()
    assert "frost" not in json.loads((out / "shapesworld" / "none" / "original.json").read_text())["settings"]
    mtime = frost_file.stat().st_mtime_ns
    # the same command again: nothing conflicts, both scenarios are read back, nothing recomputed
    again = run_benchmark(tiny_random, [("shapesworld", world)], out, **kw)
    assert [r["metrics"]["mIoU"] for r in again] == [r["metrics"]["mIoU"] for r in first]
    assert frost_file.stat().st_mtime_ns == mtime


def test_frost_source_differs_only_in_its_own_scenario(tmp_path):
    base = {"dataset": "shapesworld", "split": "val", "limit": 2, "images": 2, "segmenter": {"name": "shapesworld"},
            "severity": 5, "method": "none", "hparams": {"batch_size": 1}, "seed": 0}
    planned = [{**base, "corruption": "original", "severity": None}, {**base, "corruption": "frost", "frost": "procedural"}]
    path = tmp_path / "shapesworld" / "none" / "frost.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"scenario": {}, "settings": {**base, "corruption": "frost", "frost": "pictures"}}))
    # not a run-level conflict (the scenario itself is recomputed by the per-scenario comparison)
    assert find_conflicts(tmp_path, planned) == []
    # a run-level setting still conflicts
    path.write_text(json.dumps({"scenario": {}, "settings": {**base, "limit": 3, "corruption": "frost", "frost": "pictures"}}))
    assert [d for _, d in find_conflicts(tmp_path, planned)] == [["limit: 3 -> 2"]]
