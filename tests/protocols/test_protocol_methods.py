"""MLMP's baselines as its scripts run them, per-method hyper-parameters in bench, WATT/CLIPArTT's
published logits layout against hand computations, and the checkpoint's logit scale."""
import json
import math

import numpy as np
import pytest
import torch

from ovss.adaptation import PROTOCOL_HPARAMS, get_method, parse_method_args
from ovss.adaptation.clipartt import distillation_loss, mlmp_rows, similarity_targets, topk_prompts
from ovss.cli import main
from ovss.errors import OvssError
from ovss.segment import Segmenter
from ovss.world import write_dataset

MODEL = ["--model", "ovss-tiny", "--pretrained", "none"]


class TestPublishedLayout:
    def test_rows_hand_computed(self):
        # 2 windows x 2 patches (rows b0p0, b0p1, b1p0, b1p1), 4 texts: L[r, t] = 10 r + t
        L = torch.tensor([[10.0 * r + t for t in range(4)] for r in range(4)])
        # MLMP reads window b as a (text, patch) block and cuts it into rows of 4 values:
        # b0: L00 L10 | L01 L11 | L02 L12 | L03 L13  -> rows [L00 L10 L01 L11], [L02 L12 L03 L13]
        expected = torch.tensor([[0.0, 10, 1, 11], [2, 12, 3, 13], [20, 30, 21, 31], [22, 32, 23, 33]])
        assert torch.equal(mlmp_rows(L, [(2, 2)]), expected)
        # groups of windows of different sizes are laid out one after the other
        assert torch.equal(mlmp_rows(L, [(1, 2), (1, 2)]), expected)
        # one patch per window: nothing mixes, the layouts agree
        assert torch.equal(mlmp_rows(L, [(4, 1)]), L)

    def test_distillation_loss_both_layouts_by_hand(self):
        img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=-1)  # 1 window, 2 patches
        txt = torch.nn.functional.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0]]), dim=-1)
        scale, tau = 10.0, 0.5
        # targets: softmax_j((cos(fi, fj) + cos(ti, tj)) / (2 tau)); cos(f0, f1) = 0.6, cos(t0, t1) = 0.6
        a = math.exp(2.0 / 1.0)
        b = math.exp(1.2 / 1.0)
        t_same, t_other = a / (a + b), b / (a + b)
        assert torch.allclose(similarity_targets(img, txt, tau), torch.tensor([[t_same, t_other], [t_other, t_same]]))
        # logits 10 x cos: f0.t0 = 0.8, f0.t1 = 0, f1.t0 = 0.96, f1.t1 = 0.8
        def ce(row, target):
            m = max(row)
            lse = m + math.log(sum(math.exp(v - m) for v in row))
            return -sum(p * (v - lse) for p, v in zip(target, row))

        meaning = (ce([8.0, 0.0], [t_same, t_other]) + ce([9.6, 8.0], [t_other, t_same])) / 2
        published = (ce([8.0, 9.6], [t_same, t_other]) + ce([0.0, 8.0], [t_other, t_same])) / 2  # rows = L^T
        assert distillation_loss(img, txt, scale, tau).item() == pytest.approx(meaning, rel=1e-5)
        assert distillation_loss(img, txt, scale, tau, published=[(1, 2)]).item() == pytest.approx(published, rel=1e-5)

    def test_clipartt_pseudo_labels_published_view(self):
        # 1 window, 3 patches, 4 queries; top-2 per patch: p0 (3, 2), p1 (0, 1), p2 (2, 0)
        logits = torch.tensor([[0.0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
        q = ["a", "b", "c", "d"]
        assert topk_prompts(logits, q, 2, "{}") == ["d or c", "a or b", "c or a"]
        # MLMP: (1, 2, 3) tensor of ranks x patches = [[3, 0, 2], [2, 1, 0]], view(-1, 2): [3 0] [2 2] [1 0]
        assert topk_prompts(logits, q, 2, "{}", published=[(1, 3)]) == ["d or a", "c or c", "b or a"]


class TestProtocolHparams:
    def test_mlmp_protocol_baselines(self):
        tent = get_method("tent", protocol="mlmp")
        assert tent.templates == ("a photo of a {}",) and tent.steps == 10 and tent.lr == 1e-3
        assert tent.hparams()["logit_scale"] == "checkpoint" and tent.hparams()["protocol"] == "mlmp"
        watt = get_method("watt", protocol="mlmp")
        assert watt.published_reshape and watt.steps == 2 and watt.rounds == 5 and watt.templates[0] == "itap of a {}"
        clipartt = get_method("clipartt", protocol="mlmp")
        assert clipartt.published_reshape and clipartt.k == 3 and clipartt.templates == ("a photo of a {}",)
        tpt = get_method("tpt", protocol="mlmp")
        assert (tpt.views, tpt.select_ratio, tpt.suffix, tpt.steps) == (1, 1.0, "", 10)
        assert set(PROTOCOL_HPARAMS["mlmp"]) == {"tent", "tpt", "watt", "clipartt", "mlmp"}

    def test_defaults_outside_the_protocol_and_overrides_win(self):
        tent = get_method("tent", protocol="naclip")
        assert tent.templates is None and tent.logit_scale == 100.0 and tent.hparams()["protocol"] is None
        assert not get_method("watt").published_reshape
        assert get_method("tent", protocol="mlmp", lr=1e-4).lr == 1e-4

    def test_parse_method_args(self):
        got = parse_method_args("tent.lr=1e-4, watt.rounds=3,watt.parallel=true,tent.templates=seven", ["tent", "watt"])
        assert got == {"tent": {"lr": 1e-4, "templates": "seven"}, "watt": {"rounds": 3, "parallel": True}}
        with pytest.raises(OvssError, match="must look like METHOD.NAME=VALUE"):
            parse_method_args("lr=1e-4", ["tent"])
        with pytest.raises(OvssError, match=r"names 'mlmp', which is not among the methods \(tent\)"):
            parse_method_args("mlmp.steps=2", ["tent"])


class TestLogitScale:
    def test_mlmp_preset_takes_the_checkpoints(self, tiny_random):
        expected = float(tiny_random.clip.logit_scale.detach().exp())
        assert expected == pytest.approx(1 / 0.07, rel=1e-5)  # open_clip's initial value on random weights
        assert Segmenter(tiny_random, preset="mlmp").settings()["logit_scale"] == pytest.approx(expected)
        assert Segmenter(tiny_random, preset="mlmp", logit_scale=7.0).settings()["logit_scale"] == 7.0
        assert Segmenter(tiny_random, preset="naclip").settings()["logit_scale"] == 40.0

    def test_method_resolves_checkpoint_scale_on_call(self, tiny_random):
        seg = Segmenter(tiny_random, preset="shapesworld")
        tent = get_method("tent", logit_scale="checkpoint", steps=1, batch_size=1)
        image = np.random.default_rng(0).integers(0, 256, (56, 56, 3), dtype=np.uint8)
        tent(seg, [image], "circle, square", [(56, 56)])
        assert tent.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)
        with pytest.raises(OvssError, match="logit_scale must be a number or 'checkpoint'"):
            get_method("tent", logit_scale="ckpt")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("sw") / "sw", n=2, seed=1, split="val", size=112, progress=False)


def test_bench_passes_and_records_method_args(world, tmp_path):
    out = tmp_path / "run"
    args = ["bench", "--dataset", "shapesworld", "--data-root", str(world), "--corruptions", "original",
            "--methods", "tent", "--method-args", "tent.steps=1,tent.lr=0.0005", "--preset", "mlmp",
            "--limit", "2", "--workers", "0", "--no-progress", *MODEL, "--out", str(out)]
    assert main(args) == 0
    data = json.loads((out / "shapesworld" / "tent" / "original.json").read_text())
    h = data["settings"]["hparams"]
    assert h["steps"] == 1 and h["lr"] == 0.0005 and h["protocol"] == "mlmp"
    assert h["templates"] == ["a photo of a {}"] and h["logit_scale"] == "checkpoint"
    assert data["settings"]["segmenter"]["resize_mode"] == "opencv"
    assert data["data"]["class_source"] == "dataset"  # MLMP has no ShapesWorld list
