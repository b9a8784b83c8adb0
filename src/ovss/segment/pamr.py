"""Pixel-Adaptive Mask Refinement (PAMR; Araslanov & Roth, CVPR 2020).

Class scores are propagated between pixels that look alike. For every pixel, its 8 neighbours at
each dilation ``d`` (offsets in {-d, 0, d}^2 without the centre) get an affinity

    a_p = softmax_p( mean_c  -|I_c(x) - I_c(x + o_p)| / (1e-8 + 0.1 * sigma_c(x)) )

where ``sigma_c(x)`` is the (unbiased) standard deviation of channel ``c`` over the 3x3 dilated
window of every dilation taken together (the centre counted once per dilation), and the softmax
runs over all ``8 * len(dilations)`` neighbours at once. The scores are then replaced
``num_iter`` times by the affinity-weighted sum of the neighbours' scores (the pixel itself
does not take part). Borders replicate the edge pixels.

NACLIP applies it with 10 iterations and dilations (8, 16) to the raw cosine similarities
(before the logit scale), after they are resized to the image, using the CLIP-normalised image
at that size. Because every channel's differences are divided by that channel's own local
deviation, a per-channel affine change of the image (raw [0, 1] versus CLIP-normalised) leaves
the result unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

_EPS = 1e-8
_SIGMA_WEIGHT = 0.1


def _offsets(dilation: int, centre: bool = False) -> list[tuple[int, int]]:
    return [
        (dy * dilation, dx * dilation)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if centre or (dy, dx) != (0, 0)
    ]


def _shifted(padded: torch.Tensor, pad: int, offset: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """The value at ``x + offset`` for every pixel ``x``, read from a replicate-padded map."""
    dy, dx = offset
    h, w = size
    return padded[..., pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def _neighbourhood(x: torch.Tensor, dilations: Sequence[int], centre: bool) -> torch.Tensor:
    """B x C x P x H x W: the neighbours of every pixel, dilation by dilation."""
    size = x.shape[-2:]
    pad = max(dilations)
    padded = F.pad(x, [pad] * 4, mode="replicate")
    return torch.stack(
        [_shifted(padded, pad, o, size) for d in dilations for o in _offsets(d, centre)], dim=2
    )


def local_affinity(image: torch.Tensor, dilations: Sequence[int] = (8, 16)) -> torch.Tensor:
    """B x P x H x W affinities to the ``P = 8 * len(dilations)`` neighbours; they sum to 1 over P."""
    image = image.float() if not image.is_floating_point() else image
    window = _neighbourhood(image, dilations, centre=True)  # B x K x 9D x H x W
    sigma = window.std(dim=2, keepdim=True)  # unbiased, over all dilations together
    neighbours = _neighbourhood(image, dilations, centre=False)  # B x K x 8D x H x W
    diff = -(image.unsqueeze(2) - neighbours).abs() / (_EPS + _SIGMA_WEIGHT * sigma)
    return diff.mean(dim=1).softmax(dim=1)


def pamr(
    image: torch.Tensor,
    logits: torch.Tensor,
    num_iter: int = 10,
    dilations: Sequence[int] = (8, 16),
) -> torch.Tensor:
    """Refine ``logits`` (B x C x h x w) with the local colour affinities of ``image`` (B x 3 x H x W).

    Logits of another size are first resized bilinearly (align_corners=True) to the image. The
    result has the image's spatial size and the logits' dtype.
    """
    if image.dim() != 4 or logits.dim() != 4:
        raise ValueError(f"pamr expects B x K x H x W image and B x C x H x W logits, got {tuple(image.shape)} and {tuple(logits.shape)}")
    if image.shape[0] != logits.shape[0]:
        raise ValueError(f"batch sizes differ: image {image.shape[0]}, logits {logits.shape[0]}")
    dilations = tuple(int(d) for d in dilations)
    if not dilations or min(dilations) < 1:
        raise ValueError(f"dilations must be positive integers, got {dilations}")
    out_dtype = logits.dtype
    size = tuple(image.shape[-2:])
    mask = logits.to(image.dtype) if image.is_floating_point() else logits.float()
    if tuple(mask.shape[-2:]) != size:
        mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=True)

    affinity = local_affinity(image, dilations).to(mask.dtype)  # B x P x H x W
    offsets = [o for d in dilations for o in _offsets(d)]
    pad = max(dilations)
    for _ in range(num_iter):
        mask = _propagate(mask, affinity, offsets, pad)
    return mask.to(out_dtype)


# Elements of one band of rows (all classes): 256 KiB of float32, so a band, its neighbours' rows and
# the running sum stay in the CPU's L2 cache while the 8 x len(dilations) products are added.
BAND_ELEMENTS = 65536


def _propagate(mask: torch.Tensor, affinity: torch.Tensor, offsets: list[tuple[int, int]], pad: int) -> torch.Tensor:
    """One PAMR step: every pixel's scores become the affinity-weighted sum of its neighbours'.

    Why bands: over the whole image each of the 16 products streams the full B x C x H x W map
    through memory; a few rows at a time keep it in cache (about 2 x faster on CPU). Every element
    is the same sum in the same order (zero, then one product per offset), so the result is
    identical to the whole-image computation, bit for bit.
    """
    h, w = mask.shape[-2:]
    rows = max(1, BAND_ELEMENTS // max(1, mask.shape[0] * mask.shape[1] * w))
    padded = F.pad(mask, [pad] * 4, mode="replicate")
    refined = torch.empty_like(mask)
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        total = torch.zeros_like(refined[..., y0:y1, :])
        for p, (dy, dx) in enumerate(offsets):  # never holds C x P x H x W at once
            total = total + affinity[:, p : p + 1, y0:y1] * padded[..., pad + dy + y0 : pad + dy + y1, pad + dx : pad + dx + w]
        refined[..., y0:y1, :] = total
    return refined
