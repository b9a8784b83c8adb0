"""The benchmark runner and its report: files, skipping, resuming, seeds, scoring size, tables."""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ovss.adaptation import METHODS, NoAdaptation, get_method
from ovss.errors import OvssError
from ovss.evaluation.report import load_results, write_report
from ovss.data import resize_label
from ovss.evaluation.runner import rank_indices, run_benchmark
from ovss.world import write_dataset

FAST = dict(preset="shapesworld", workers=0, progress=False)



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=5, seed=1, split="val", size=112, progress=False)


def _json(path):
    return json.loads(path.read_text())


class TestAdaptationRegistry:
    def test_none_is_registered_and_unknown_lists_names(self):
        assert METHODS["none"] is NoAdaptation
        assert get_method("none").batch_size == 1
        with pytest.raises(OvssError, match="unknown adaptation method 'tentt'; choose from: .*none"):
            get_method("tentt")


class TestRunAndResume:
    def test_scenarios_written_then_skipped(self, world, tiny_random, tmp_path, monkeypatch):
        out = tmp_path / "run"
        res = run_benchmark(tiny_random, [("shapesworld", world)], out, corruptions="gaussian_noise", **{**FAST, "workers": 2})
        assert len(res) == 2
        for c in ("original", "gaussian_noise"):
            data = _json(out / "shapesworld" / "none" / f"{c}.json")
            assert data["scenario"] == {"dataset": "shapesworld", "method": "none", "corruption": c, "seed": 0}
            assert set(data["metrics"]) == {"mIoU", "mAcc", "aAcc", "IoU", "Acc"}
            assert list(data["metrics"]["IoU"])[:2] == ["sky", "grass"]
            s = data["settings"]
            assert s["segmenter"]["name"] == "shapesworld" and s["segmenter"]["model"] == "ovss-tiny"
            assert (s["dataset"], s["split"], s["limit"], s["method"], s["seed"]) == ("shapesworld", "val", None, "none", 0)
            assert s["severity"] == (None if c == "original" else 5)
            assert data["model"]["weights"] == "random initialisation"
            assert set(data["versions"]) == {"ovss", "torch", "open_clip", "python"}
            t = data["timing"]
            assert t["images"] == 5 and t["seconds"] > 0 and 0 <= t["seconds_outside_model"] <= t["seconds"]
            assert np.asarray(data["confusion_matrix"]).sum() > 0

        # same settings: nothing runs again (the spy sees no image)
        seen, plain = [], NoAdaptation.__call__
        monkeypatch.setattr(NoAdaptation, "__call__", lambda self, seg, images, *a: seen.extend(images) or plain(self, seg, images, *a))
        again = run_benchmark(tiny_random, [("shapesworld", world)], out, corruptions="gaussian_noise", **FAST)
        assert seen == [] and len(again) == 2
        # another severity: the folder holds one configuration, so the run stops and names the difference
        with pytest.raises(OvssError, match=r"another configuration \(severity: 5 -> 3\).*\(overwrite=True\)"):
            run_benchmark(tiny_random, [("shapesworld", world)], out, corruptions="gaussian_noise", severity=3, **FAST)
        assert seen == []
        # with overwrite: only the corrupted scenario runs again (original has no severity)
        run_benchmark(tiny_random, [("shapesworld", world)], out, corruptions="gaussian_noise", severity=3,
                      overwrite=True, **FAST)
        assert len(seen) == 5
        assert _json(out / "shapesworld" / "none" / "gaussian_noise.json")["settings"]["severity"] == 3

    def test_killed_run_resumes_from_checkpoint(self, world, tiny_random, tmp_path):
        class Flaky(NoAdaptation):
            name = "flaky"
            fail_after = 3  # images; the first run dies while on the 4th
            seen = 0

            def __call__(self, segmenter, images, classes, output_sizes):
                if Flaky.fail_after is not None and Flaky.seen >= Flaky.fail_after:
                    Flaky.fail_after = None
                    raise RuntimeError("killed")
                Flaky.seen += len(images)
                return super().__call__(segmenter, images, classes, output_sizes)

        out = tmp_path / "run"
        args = dict(corruptions="fog", seeds="0,1", checkpoint_every=2, **FAST)
        with pytest.raises(RuntimeError, match="killed"):
            run_benchmark(tiny_random, [("shapesworld", world)], out, methods=[Flaky()], **args)
        partial = out / ".partial" / "shapesworld" / "flaky"
        assert _json(partial / "original.seed0.json")["done"] == 2  # checkpoint after 2 images; image 3 is lost
        assert (partial / "original.seed0.npz").is_file()
        assert not (out / "shapesworld" / "flaky" / "original.seed0.json").exists()

        Flaky.seen = 0
        run_benchmark(tiny_random, [("shapesworld", world)], out, methods=[Flaky()], **args)
        assert Flaky.seen == 3 + 5 * 3  # seed 0 original resumed at image 2, the 3 other scenarios in full
        assert not list(partial.iterdir())

        ref = tmp_path / "ref"
        run_benchmark(tiny_random, [("shapesworld", world)], ref, **args)
        for name in ("original.seed0", "fog.seed0", "original.seed1"):
            got = _json(out / "shapesworld" / "flaky" / f"{name}.json")
            want = _json(ref / "shapesworld" / "none" / f"{name}.json")
            assert got["confusion_matrix"] == want["confusion_matrix"]
            assert got["metrics"] == want["metrics"]
        assert _json(out / "shapesworld" / "flaky" / "original.seed0.json")["timing"]["resumed_at"] == 2

    def test_seeds_draw_other_corruptions(self, world, tiny_random):
        from ovss.corruptions import corrupt
        from ovss.data import SegDataset
        from ovss.evaluation.runner import ScenarioData, corruption_key
        from ovss.segment.presets import PRESETS

        ds = SegDataset("shapesworld", world, "val")
        image, name = ds[0]["image"], ds[0]["name"]
        assert corruption_key(name, 0) == name  # seed 0 keeps the draws keyed by name alone
        noisy = [ScenarioData(ds, "gaussian_noise", 5, PRESETS["shapesworld"], [0], seed)[0]["image"] for seed in (0, 1, 2)]
        assert np.array_equal(noisy[0], corrupt(image, "gaussian_noise", 5, key=name))
        assert not np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[1], noisy[2])
        assert np.array_equal(noisy[1], ScenarioData(ds, "gaussian_noise", 5, PRESETS["shapesworld"], [0], 1)[0]["image"])
        blurred = [ScenarioData(ds, "defocus_blur", 5, PRESETS["shapesworld"], [0], seed)[0]["image"] for seed in (0, 1)]
        assert np.array_equal(*blurred)  # no randomness in it: every seed sees the same image

    def test_seeds_give_one_json_each_and_mean_std(self, world, tiny_random, tmp_path):
        class Noisy(NoAdaptation):
            """Random labels from torch's generator: shows the per-seed (and per-batch) seeding."""

            name = "noisy"

            def __call__(self, segmenter, images, classes, output_sizes):
                return [torch.randint(0, len(classes), size) for size in output_sizes]

        out = tmp_path / "run"
        run_benchmark(tiny_random, [("shapesworld", world)], out, methods=[Noisy()], seeds="0,1,2",
                      corruptions="original", limit=2, **FAST)
        folder = out / "shapesworld" / "noisy"
        values = [_json(folder / f"original.seed{s}.json")["metrics"]["mIoU"] for s in (0, 1, 2)]
        assert len(set(values)) == 3  # different seeds, different draws
        assert not (folder / "original.json").exists()

        again = tmp_path / "again"  # same seeds, same numbers
        run_benchmark(tiny_random, [("shapesworld", world)], again, methods=[Noisy()], seeds=[1], limit=2, **FAST)
        assert _json(again / "shapesworld" / "noisy" / "original.json")["metrics"]["mIoU"] == values[1]

        text = write_report(out)
        mean, std = sum(values) / 3, math.sqrt(sum((v - sum(values) / 3) ** 2 for v in values) / 3)
        assert f"| Original | 2 | {mean:.2f} ± {std:.2f} |" in text
        assert "mean ± std over seeds 0, 1, 2" in text
        rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
        assert float(rows[0]["NOISY"]) == pytest.approx(round(mean, 2))
        assert float(rows[0]["NOISY std"]) == pytest.approx(round(std, 2))

    def test_ground_truth_resized_with_nearest_to_input_size(self, world, tiny_random, tmp_path):
        class Zeros(NoAdaptation):
            name = "zeros"
            sizes: list = []

            def __call__(self, segmenter, images, classes, output_sizes):
                Zeros.sizes += list(output_sizes)
                return [torch.zeros(size, dtype=torch.long) for size in output_sizes]

        from ovss.data import SegDataset

        out = tmp_path / "run"
        run_benchmark(tiny_random, [("shapesworld", world)], out, methods=[Zeros()], limit=3,
                      resize_to=(72, 90), eval_at_input_size=True, **FAST)
        assert Zeros.sizes == [(72, 90)] * 3
        ds = SegDataset("shapesworld", world, limit=3)
        counts = sum(np.bincount(resize_label(ds[i]["label"], (72, 90)).ravel(), minlength=256)[: ds.num_classes]
                     for i in range(3))
        cm = np.asarray(_json(out / "shapesworld" / "zeros" / "original.json")["confusion_matrix"])
        assert cm[:, 0].tolist() == counts.tolist()  # every scored pixel predicted 0: column 0 = resized label histogram

    @pytest.mark.parametrize("size", [(72, 90), (224, 224), (50, 113), (112, 112)])
    def test_resize_nearest_matches_floor_rule(self, size):
        label = np.random.default_rng(0).integers(0, 20, (112, 97)).astype(np.uint8)
        ref = F.interpolate(torch.from_numpy(label)[None, None].float(), size=size, mode="nearest")[0, 0]
        got = resize_label(label, size)
        assert got.dtype == np.uint8 and got.shape == size
        assert np.array_equal(got, ref.numpy().astype(np.uint8))

    def test_rank_indices_split_whole_batches(self):
        assert rank_indices(7, 1, 0, 2) == [0, 2, 4, 6] and rank_indices(7, 1, 1, 2) == [1, 3, 5]
        assert rank_indices(7, 2, 0, 2) == [0, 1, 4, 5] and rank_indices(7, 2, 1, 2) == [2, 3, 6]
        assert sorted(rank_indices(7, 3, 0, 3) + rank_indices(7, 3, 1, 3) + rank_indices(7, 3, 2, 3)) == list(range(7))


def _fake(dataset, method, corruption, seed, miou, images=10):
    return {"scenario": {"dataset": dataset, "method": method, "corruption": corruption, "seed": seed},
            "metrics": {"mIoU": miou}, "timing": {"images": images}}


class TestReport:
    def test_table_layout_average_csv_and_chart(self, tmp_path):
        values = {  # corruption -> (none, tent)
            "original": (75.911, 77.0), "gaussian_noise": (62.894, 63.02), "fog": (70.69, 70.54),
            "jpeg_compression": (72.59, 71.846),
        }
        for c, (a, b) in values.items():
            for method, v in (("none", a), ("tent", b)):
                path = tmp_path / "voc20" / method / f"{c}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(_fake("voc20", method, c, 0, v)))
        (tmp_path / ".partial" / "voc20" / "none").mkdir(parents=True)
        (tmp_path / ".partial" / "voc20" / "none" / "fog.json").write_text("{}")

        text = write_report(tmp_path)
        lines = [l for l in text.splitlines() if l.startswith("|")]
        assert lines[0] == "| Corruption | Images | NoAdapt. | TENT |"
        titles = [l.split("|")[1].strip() for l in lines[2:]]
        assert titles == ["Original", "Gaussian Noise", "Fog", "JPEG Compression", "VOC20-C (Average)"]
        avg_none = (62.894 + 70.69 + 72.59) / 3
        avg_tent = (63.02 + 70.54 + 71.846) / 3
        assert lines[-1] == f"| VOC20-C (Average) | 10 | {avg_none:.2f} | {avg_tent:.2f} |"
        assert lines[2] == "| Original | 10 | 75.91 | 77.00 |"
        assert "average over the 3 of 15 corruptions present" in text
        assert (tmp_path / "summary.md").read_text() == text

        rows = list(csv.reader(io.StringIO((tmp_path / "summary.csv").read_text())))
        assert rows[0] == ["dataset", "Corruption", "images", "NoAdapt.", "TENT"]
        assert rows[-1] == ["voc20", "VOC20-C (Average)", "10", f"{avg_none:.2f}", f"{avg_tent:.2f}"]
        assert len(rows) == 1 + 5

        with Image.open(tmp_path / "voc20_bar.png") as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 200

    def test_duplicate_seed_namings_are_read_once(self, tmp_path):
        for name in ("original.json", "original.seed0.json"):
            path = tmp_path / "d" / "none" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_fake("d", "none", "original", 0, 50.0)))
        assert len(load_results(tmp_path)) == 1
        assert "| Original | 10 | 50.00 |" in write_report(tmp_path)

    def test_rows_state_their_image_counts_and_mixed_counts_are_flagged(self, tmp_path):
        for method, images in (("none", 4), ("tent", 6)):
            path = tmp_path / "d" / method / "original.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_fake("d", method, "original", 0, 50.0, images=images)))
        text = write_report(tmp_path)
        assert "| Original | 4/6 | 50.00 | 50.00 |" in text
        assert "WARNING: rows computed on different image counts are mixed" in text

    def test_empty_run_folder_is_a_clear_error(self, tmp_path):
        with pytest.raises(OvssError, match="no benchmark results under"):
            write_report(tmp_path)
