import math

import numpy as np
import pytest
import torch

from ovss.opendas import classification_scores, format_table, hardest_negatives, ramp, triplet_loss
from ovss.opendas.metrics import format_params, per_class_f1


class TestHardestNegatives:
    def test_hand_case(self):
        texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
        anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
        # anchor 0 (class 0): d(t1) = 1.414, d(t2) = 0.632 -> 2; anchor 1 (class 1): d(t0) = 1.414,
        # d(t2) = 0.894 -> 2; anchor 2 (class 2): d(t0) = 0.632, d(t1) = 0.894 -> 0
        assert hardest_negatives(anchors, texts, torch.tensor([0, 1, 2])).tolist() == [2, 2, 0]

    def test_never_its_own_class_even_when_closest(self):
        texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        anchors = torch.tensor([[0.0, 1.0]])
        assert hardest_negatives(anchors, texts, torch.tensor([1])).item() in (0, 2)
        assert hardest_negatives(anchors, texts, torch.tensor([0])).item() == 1


class TestTripletLoss:
    def test_hand_value_margin_1_5(self):
        anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        positive = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
        negative = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
        # first: 0.894427 - 1.414214 + 1.5 = 0.980213; second: max(0, 0 - 2 + 1.5) = 0
        loss = triplet_loss(anchor, positive, negative, margin=1.5)
        assert loss.item() == pytest.approx((math.sqrt(0.8) - math.sqrt(2) + 1.5) / 2, abs=1e-6)

    def test_gradient_is_finite_at_zero_distance(self):
        a = torch.tensor([[1.0, 0.0]], requires_grad=True)
        triplet_loss(a, a.detach(), torch.tensor([[0.0, 1.0]])).backward()
        assert torch.isfinite(a.grad).all()

    def test_lambda_ramp(self):
        assert [ramp(s, 5, 2.0) for s in range(5)] == [0.0, 0.5, 1.0, 1.5, 2.0]


class TestMetrics:
    # classes 0, 1 base; 2, 3 novel
    target = [0, 0, 0, 1, 1, 2, 2, 3]
    pred = [0, 0, 1, 1, 2, 2, 0, 1]

    def test_per_class_f1_by_hand(self):
        f1, support = per_class_f1(self.pred, self.target, 4)
        # F1 = 2TP / (predicted + support): 4/6, 2/5, 2/4, 0/1
        np.testing.assert_allclose(f1, [4 / 6, 2 / 5, 2 / 4, 0.0])
        assert support.tolist() == [3, 2, 2, 1]

    def test_scores_by_hand(self):
        s = classification_scores(self.pred, self.target, 4, base=[0, 1])
        assert s["Acc"] == pytest.approx(50.0)
        assert s["W-F1"] == pytest.approx((3 * 4 / 6 + 2 * 0.4 + 2 * 0.5) / 8 * 100)  # 47.5
        assert s["B-F1"] == pytest.approx((3 * 4 / 6 + 2 * 0.4) / 5 * 100)  # 56.0
        assert s["N-F1"] == pytest.approx((2 * 0.5 + 0) / 3 * 100)  # 33.3
        # W-F1 is the segment-weighted mix of B-F1 and N-F1
        assert s["W-F1"] == pytest.approx((5 * s["B-F1"] + 3 * s["N-F1"]) / 8)

    def test_no_novel_segments_is_nan(self):
        s = classification_scores([0, 1], [0, 1], 3, base=[0, 1])
        assert s["Acc"] == 100.0 and math.isnan(s["N-F1"])

    def test_params_and_table_layout(self):
        assert [format_params(n) for n in (512, 7680, 233472, 18935000)] == ["512", "7.7K", "233K", "18935K"]
        rows = [{"method": "No adaptation", "params": 0, "scores": {"night": {"Acc": 10, "W-F1": 11, "B-F1": 12, "N-F1": 13}}},
                {"method": "opendas", "params": 7680, "scores": {"night": {"Acc": 20, "W-F1": 21, "B-F1": 22, "N-F1": 15}}}]
        lines = format_table(rows, ["night"]).splitlines()
        assert lines[0].startswith("|  |  | night |")
        assert lines[2] == "| Method | # Params | Acc | W-F1 | B-F1 | N-F1 |"
        assert lines[4] == "| opendas | 7.7K | 20.0 | 21.0 | 22.0 | 15.0 (+2.0) |"
