"""Proxy Calibration (the OVSNet paper, eq. 5-7) on hand cases with fixed Beta draws."""
import numpy as np
import pytest
import torch

from ovss.ovsnet.proxy import cosine_loss, mix, proxy_loss, sample_alpha, sample_pairs


def test_mix_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    out = mix(x, torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([0.25, 0.5]))
    assert torch.allclose(out, torch.tensor([[0.25, 0.75], [1.5, 1.0]]))


def test_alpha_is_beta_from_a_seeded_generator():
    a = sample_alpha(5, 2.0, np.random.default_rng(7))
    assert torch.allclose(a, torch.from_numpy(np.random.default_rng(7).beta(2.0, 2.0, 5)).float())
    many = sample_alpha(20000, 2.0, np.random.default_rng(0))
    assert 0 < float(many.min()) and float(many.max()) < 1
    assert float(many.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(many.var()) == pytest.approx(1 / 20, abs=0.003)  # Beta(2, 2): variance 1/20
    with pytest.raises(ValueError, match="gamma"):
        sample_alpha(1, 0.0, np.random.default_rng(0))


def test_pairs_mix_two_different_classes():
    labels = torch.tensor([0, 0, 1, 2, 2, 1])
    m, n = sample_pairs(labels, np.random.default_rng(3))
    assert len(m) > 0 and bool((labels[m] != labels[n]).all())
    m, n = sample_pairs(torch.tensor([4, 4, 4]), np.random.default_rng(0))
    assert len(m) == 0


def test_loss_by_hand():
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pairs = (torch.tensor([0]), torch.tensor([1]))
    alpha = torch.tensor([0.5])
    # visual equal to text: the mixes coincide, loss 0 for each of F_Q and F_C
    assert float(proxy_loss([text, text * 3], text, torch.tensor([0, 1]), pairs=pairs, alpha=alpha)) == pytest.approx(0.0, abs=1e-6)
    # visual swapped: mix 0.25 of (1,0) and 0.75 of (0,1) is (0.25, 0.75) against text mix (0.75, 0.25)
    swapped = text.flip(0)
    expected = 1 - (0.25 * 0.75 * 2) / (0.25 ** 2 + 0.75 ** 2)
    loss = proxy_loss(swapped, text, torch.tensor([0, 1]), pairs=pairs, alpha=torch.tensor([0.75]))
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    # two visual embeddings (F_Q and F_C): the losses add up
    loss2 = proxy_loss([swapped, swapped], text, torch.tensor([0, 1]), pairs=pairs, alpha=torch.tensor([0.75]))
    assert float(loss2) == pytest.approx(2 * expected, abs=1e-6)
    assert float(cosine_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[-2.0, 0.0]]))) == pytest.approx(2.0)


def test_seeded_loss_is_reproducible_and_trains():
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    visual = torch.randn(6, 8, requires_grad=True)
    a = proxy_loss(visual, text, labels, rng=np.random.default_rng(1))
    b = proxy_loss(visual, text, labels, rng=np.random.default_rng(1))
    assert float(a.detach()) == float(b.detach())
    a.backward()
    assert visual.grad is not None and float(visual.grad.abs().sum()) > 0
    none = proxy_loss(visual, text, torch.zeros(6, dtype=torch.long), rng=np.random.default_rng(0))
    assert float(none.detach()) == 0.0 and none.requires_grad
