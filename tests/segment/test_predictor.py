import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovss.errors import OvssError
from ovss.segment import Segmenter, get_preset
from ovss.segment.predictor import EncodedImage
from ovss.segment.sliding import resized_size, window_boxes
from ovss.text import parse_classes


class TestSlidingGeometry:
    def test_windows_cover_image_mmseg_rule(self):
        boxes = window_boxes(336, 448, 224, 112)
        assert boxes == [(0, 224, 0, 224), (0, 224, 112, 336), (0, 224, 224, 448),
                         (112, 336, 0, 224), (112, 336, 112, 336), (112, 336, 224, 448)]

    def test_last_window_is_shifted_to_the_border(self):
        # 300 wide: windows at 0 and 112, the third would end at 448 > 300, so it is shifted to 76..300
        assert [b[2:] for b in window_boxes(224, 300, 224, 112)] == [(0, 224), (76, 300)]

    def test_small_image_gives_one_window_of_its_size(self):
        assert window_boxes(50, 70, 224, 112) == [(0, 50, 0, 70)]
        assert window_boxes(500, 700, None, None) == [(0, 500, 0, 700)]

    def test_resize_short_side_with_long_cap(self):
        assert resized_size(480, 640, 336) == (336, 448)
        assert resized_size(100, 3000, 336) == (68, 2048)  # scale min(2048/3000, 3.36)
        assert resized_size(480, 640, None, fixed=(224, 224)) == (224, 224)


class TestPresets:
    def test_per_dataset_settings(self):
        assert get_preset("sclip", "voc21").logit_scale == 65.0
        assert get_preset("sclip", "voc21").prob_thd == 0.1
        assert get_preset("sclip", "cityscapes").resize_short == 560
        assert get_preset("clearclip", "context60").prob_thd == 0.15
        assert get_preset("naclip", "voc20").crop is None
        assert get_preset("mlmp").resize_to == (224, 224)

    def test_unknown_preset(self):
        with pytest.raises(OvssError, match="unknown preset 'nope'"):
            get_preset("nope")


def _encoded(features: torch.Tensor, boxes, input_size, padded) -> EncodedImage:
    return EncodedImage(size=input_size, input_size=input_size, image=torch.zeros(1, 3, *input_size),
                        boxes=boxes, features=features, padded=padded)


class TestMaxOverClasses:
    def test_equals_torch_max_and_argmax_first_on_ties(self):
        from ovss.segment.results import max_over_classes as _max_over_classes

        p = torch.rand(6, 17, 9, generator=torch.Generator().manual_seed(0))
        p[2, 0, 0] = p[4, 0, 0] = 5.0  # a tie: the first index wins, as in torch.argmax
        best, labels = _max_over_classes(p)
        assert torch.equal(labels, p.argmax(0)) and torch.equal(best, p.max(0).values)
        assert labels[0, 0] == 2


class TestSegmenter:
    def test_overlapping_windows_are_averaged(self, tiny_random):
        seg = Segmenter(tiny_random, head="clip", preset="shapesworld")
        # two 2x2-patch windows on a 16 x 24 image, overlapping on columns 8..16
        f = torch.zeros(2, 2, 2, 128)
        f[0, ..., 0] = 1.0
        f[1, ..., 0] = 3.0
        text = torch.zeros(1, 128)
        text[0, 0] = 1.0
        enc = _encoded(f, [(0, 16, 0, 16), (0, 16, 8, 24)], (16, 24), (16, 16))
        out = seg.window_logits_to_image(enc, f, text)
        assert out.shape == (1, 16, 24)
        assert torch.allclose(out[0, :, :8], torch.tensor(1.0))
        assert torch.allclose(out[0, :, 8:16], torch.tensor(2.0))
        assert torch.allclose(out[0, :, 16:], torch.tensor(3.0))

    def test_synonyms_max_pool_and_softmax_over_queries(self, tiny_random):
        seg = Segmenter(tiny_random, preset="shapesworld", logit_scale=10.0)
        classes = parse_classes([["a", "b"], "c"])
        q = torch.tensor([0.1, 0.5, 0.3]).view(3, 1, 1).expand(3, 2, 2).clone()
        enc = _encoded(None, [], (2, 2), (2, 2))
        out = seg.decode(q, classes, enc)
        p = torch.softmax(torch.tensor([1.0, 5.0, 3.0]), 0)
        assert torch.allclose(out.logits[:, 0, 0], torch.tensor([5.0, 3.0]))
        assert torch.allclose(out.probs[:, 0, 0], torch.stack([p[1], p[2]]))
        assert (out.labels == 0).all()

    def test_prob_thd_sends_unsure_pixels_to_class_0(self, tiny_random):
        seg = Segmenter(tiny_random, preset="shapesworld", logit_scale=1.0, prob_thd=0.6)
        classes = parse_classes("bg, x, y")
        q = torch.zeros(3, 1, 2)
        q[:, 0, 0] = torch.tensor([0.0, 0.0, 0.1])  # unsure: best prob about 0.36
        q[:, 0, 1] = torch.tensor([0.0, 0.0, 9.0])  # sure
        out = seg.decode(q, classes, _encoded(None, [], (1, 2), (1, 2)))
        assert out.labels.tolist() == [[0, 2]]

    def test_area_thd_drops_small_foreground_classes(self, tiny_random):
        # SCLIP on VOC21: a foreground class predicted on <= area_thd of the foreground pixels
        # gives its pixels to the next best class; background (class 0) is never dropped.
        seg = Segmenter(tiny_random, preset="shapesworld", logit_scale=1.0, area_thd=0.2)
        classes = parse_classes("bg, big, small")
        q = torch.zeros(3, 1, 10)
        q[1, 0, :9] = 5.0  # 'big' wins 9 pixels
        q[2, 0, 9] = 5.0  # 'small' wins 1 pixel: 1 / 10 foreground pixels <= 0.2
        q[0, 0, 9] = 1.0  # background is next best there
        out = seg.decode(q, classes, _encoded(None, [], (1, 10), (1, 10)))
        assert out.labels.tolist() == [[1] * 9 + [0]]

    def test_whole_image_equals_hand_computation(self, tiny_random):
        seg = Segmenter(tiny_random, head="naclip", preset="shapesworld", crop=None, stride=None)
        rng = np.random.default_rng(0)
        image = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        classes = parse_classes("boat, sky, grass")
        out = seg.predict(image, classes)
        mean = torch.tensor(tiny_random.mean).view(1, 3, 1, 1)
        std = torch.tensor(tiny_random.std).view(1, 3, 1, 1)
        x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - mean) / std
        with torch.no_grad():
            feats = F.normalize(seg.encoder(x).patch, dim=-1)
            text = seg.text.encode_classes(classes, seg.preset.templates)
            lg = torch.einsum("bhwe,qe->bqhw", feats, text)
            lg = F.interpolate(lg, size=(40, 48), mode="bilinear", align_corners=False)[0] * seg.preset.logit_scale
        assert out.logits.shape == (3, 40, 48) and out.labels.shape == (40, 48)
        assert torch.allclose(out.logits, lg, atol=1e-4)
        assert torch.equal(out.labels, lg.argmax(0))

    def test_image_encoded_once_answers_many_class_lists(self, tiny_random):
        seg = Segmenter(tiny_random, preset="shapesworld")
        calls = []
        handle = seg.encoder.visual.conv1.register_forward_hook(lambda *a: calls.append(1))
        try:
            seg.set_image(np.zeros((30, 30, 3), dtype=np.uint8))
            a = seg.predict(classes="boat, sky")
            b = seg.predict(classes="sun, water, road")
        finally:
            handle.remove()
        assert len(calls) == 1
        assert a.logits.shape == (2, 30, 30) and b.logits.shape == (3, 30, 30)

    def test_image_smaller_than_window_and_odd_size(self, tiny_random):
        seg = Segmenter(tiny_random, preset="naclip")
        out = seg.predict(np.zeros((37, 53, 3), dtype=np.uint8), "a, b")
        assert out.labels.shape == (37, 53)

    def test_sliding_output_has_original_size(self, tiny_random):
        seg = Segmenter(tiny_random, preset="sclip")
        out = seg.predict(np.zeros((120, 500, 3), dtype=np.uint8), "a, b")
        assert out.labels.shape == (120, 500)

    def test_bad_image_shape(self, tiny_random):
        with pytest.raises(OvssError, match="H x W x 3"):
            Segmenter(tiny_random, preset="shapesworld").predict(np.zeros((10, 10)), "a")

    def test_predict_without_image(self, tiny_random):
        with pytest.raises(OvssError, match="no image"):
            Segmenter(tiny_random, preset="shapesworld").predict(classes="a")
