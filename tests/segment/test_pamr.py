"""Pixel-Adaptive Mask Refinement on small hand-made cases."""
from __future__ import annotations

import pytest
import torch

from ovss.segment.pamr import local_affinity, pamr



def _two_halves(h: int = 48, w: int = 64, edge: int = 29) -> tuple[torch.Tensor, torch.Tensor]:
    """A red left part and a blue right part (columns < edge are red), and its label map."""
    image = torch.zeros(1, 3, h, w)
    image[:, 0, :, :edge] = 1.0
    image[:, 2, :, edge:] = 1.0
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[:, edge:] = 1
    return image, labels


class TestPamr:
    def test_labels_follow_the_colour_edge(self):
        image, labels = _two_halves()
        g = torch.Generator().manual_seed(0)
        clean = torch.nn.functional.one_hot(labels, 2).permute(2, 0, 1).float()[None]
        noisy = clean + 0.9 * torch.randn(clean.shape, generator=g)
        assert (noisy[0].argmax(0) != labels).float().mean() > 0.1  # the input is really noisy
        refined = pamr(image, noisy)
        assert torch.equal(refined[0].argmax(0), labels)

    def test_shifted_boundary_snaps_to_the_edge(self):
        image, labels = _two_halves(edge=29)
        coarse = torch.zeros(1, 2, 48, 64)
        coarse[:, 0, :, :25] = 1.0  # the logits put the boundary 4 pixels too far left
        coarse[:, 1, :, 25:] = 1.0
        refined = pamr(image, coarse, num_iter=30)
        assert torch.equal(refined[0].argmax(0), labels)

    def test_output_shape_and_resize(self):
        image = torch.rand(2, 3, 40, 56)
        logits = torch.randn(2, 7, 10, 14)
        out = pamr(image, logits)
        assert out.shape == (2, 7, 40, 56)
        assert out.dtype == logits.dtype

    def test_constant_image_keeps_constant_logits(self):
        image = torch.full((1, 3, 32, 32), 0.3)
        logits = torch.tensor([1.5, -2.0, 0.25]).view(1, 3, 1, 1).expand(1, 3, 32, 32).contiguous()
        torch.testing.assert_close(pamr(image, logits), logits)

    def test_constant_image_averages_uniformly(self):
        image = torch.ones(1, 3, 40, 40)
        aff = local_affinity(image, dilations=(8, 16))
        assert aff.shape == (1, 16, 40, 40)
        torch.testing.assert_close(aff, torch.full_like(aff, 1 / 16))

    def test_affinities_sum_to_one(self):
        aff = local_affinity(torch.rand(2, 3, 20, 24), dilations=(1, 2))
        torch.testing.assert_close(aff.sum(1), torch.ones(2, 20, 24))

    def test_convex_combination_preserves_range(self):
        g = torch.Generator().manual_seed(3)
        image, logits = torch.rand(1, 3, 30, 30, generator=g), torch.rand(1, 4, 30, 30, generator=g)
        out = pamr(image, logits)
        assert out.min() >= logits.min() - 1e-6 and out.max() <= logits.max() + 1e-6

    def test_invariant_to_per_channel_affine_image_change(self):
        """Raw [0, 1] image or CLIP-normalised image: the same refinement."""
        g = torch.Generator().manual_seed(1)
        image = torch.rand(1, 3, 36, 36, generator=g)
        logits = torch.randn(1, 5, 36, 36, generator=g)
        mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
        std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
        torch.testing.assert_close(pamr((image - mean) / std, logits), pamr(image, logits), atol=1e-4, rtol=0)

    def test_zero_iterations_is_identity(self):
        image, logits = torch.rand(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
        torch.testing.assert_close(pamr(image, logits, num_iter=0), logits)

    def test_bad_inputs(self):
        with pytest.raises(ValueError):
            pamr(torch.rand(3, 16, 16), torch.rand(1, 2, 16, 16))
        with pytest.raises(ValueError):
            pamr(torch.rand(2, 3, 16, 16), torch.rand(1, 2, 16, 16))
        with pytest.raises(ValueError):
            pamr(torch.rand(1, 3, 16, 16), torch.rand(1, 2, 16, 16), dilations=(0,))

    def test_one_step_by_hand(self):
        """One step at dilation 1 on a constant image (all affinities 1/8): each pixel becomes the
        mean of its 8 neighbours, borders replicated."""
        logits = torch.arange(9.0).reshape(1, 1, 3, 3)
        out = pamr(torch.ones(1, 3, 3, 3), logits, num_iter=1, dilations=(1,))
        # centre: mean of the 8 others = (36 - 4) / 8; corner (0,0): neighbours 0,0,1 / 0,1 / 3,3,4
        assert out[0, 0, 1, 1].item() == pytest.approx(4.0)
        assert out[0, 0, 0, 0].item() == pytest.approx((0 + 0 + 1 + 0 + 1 + 3 + 3 + 4) / 8)

    @pytest.mark.parametrize("band", [1, 7 * 3, 10**9])
    def test_bands_of_rows_equal_the_whole_image_bit_for_bit(self, monkeypatch, band):
        """The step runs a few rows at a time (for the cache); any band size gives the same bits."""
        import ovss.segment.pamr as module

        g = torch.Generator().manual_seed(0)
        image, logits = torch.randn(2, 3, 37, 23, generator=g), torch.randn(2, 5, 19, 12, generator=g)
        monkeypatch.setattr(module, "BAND_ELEMENTS", 10**9)
        whole = pamr(image, logits, num_iter=3, dilations=(2, 4))
        monkeypatch.setattr(module, "BAND_ELEMENTS", band)
        assert torch.equal(pamr(image, logits, num_iter=3, dilations=(2, 4)), whole)
