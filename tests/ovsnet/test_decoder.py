"""OVSNet's small decoder, its losses and trainer on random features (fast, no CLIP needed)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovss.ovsnet import OVSNet, OVSNetConfig, TrainSettings, class_logits, dense_features, evaluate, mask_pool, train_ovsnet
from ovss.data import resize_label
from ovss.ovsnet.train import EncodedSet, ovsnet_loss
from ovss.text import ClassList



def features(b=2, h=6, w=6, e=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, h, w, e, generator=g), dim=-1)


def test_class_logits_take_the_best_synonym():
    emb = torch.tensor([[1.0, 0.0]])
    text = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    logits = class_logits(emb, text, torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(logits, torch.tensor([[1.0, 0.6]]))


def test_mask_pool_averages_under_the_mask():
    feats = torch.zeros(1, 2, 2, 2)
    feats[0, 0, 0] = torch.tensor([1.0, 0.0])
    feats[0, 1, 1] = torch.tensor([0.0, 1.0])
    masks = torch.full((1, 1, 2, 2), -30.0)
    masks[0, 0, 0, 0] = 30.0
    assert torch.allclose(mask_pool(masks, feats)[0, 0], torch.tensor([1.0, 0.0]), atol=1e-6)


def test_forward_shapes_and_switches():
    torch.manual_seed(0)
    x = features()
    for cfg in (OVSNetConfig(queries=5, hidden=32), OVSNetConfig(queries=5, hidden=32, gfa=True)):
        model = OVSNet(16, cfg)
        out = model(x)
        assert out.masks.shape == (2, 5, 6, 6) and out.f_q.shape == (2, 5, 16) and out.f_c.shape == (2, 5, 16)
    plain = model(x, use_gfa=False)
    assert torch.allclose(plain.f_q.norm(dim=-1), torch.ones(2, 5), atol=1e-5)  # unit norm before GFA
    assert not torch.allclose(plain.f_q, out.f_q)
    text = F.normalize(torch.randn(4, 16), dim=-1)
    seen = torch.tensor([True, False, True])
    scores = model.semantic(x, text, torch.tensor([0, 1, 2, 2]), 3, seen, 50.0, (12, 12))
    assert scores.shape == (2, 3, 12, 12) and bool((scores >= 0).all())


@pytest.mark.parametrize("pc", [False, True])
def test_loss_backward_reaches_the_decoder(pc):
    torch.manual_seed(0)
    model = OVSNet(16, OVSNetConfig(queries=6, hidden=32, gfa=True, pc=pc))
    labels = torch.full((2, 12, 12), 255, dtype=torch.long)
    labels[0, :6] = 0
    labels[0, 6:] = 1
    labels[1, :, :4] = 2
    text = F.normalize(torch.randn(3, 16), dim=-1)
    losses = ovsnet_loss(model, model(features()), labels, text, torch.arange(3), 3, np.random.default_rng(0))
    assert set(losses) == {"class", "mask", "dice"} | ({"pc"} if pc else set())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.decoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_train_and_evaluate_a_few_steps():
    x = features(b=4, seed=1).half()
    labels = [np.where(np.arange(48)[None, :] < 24, 0, 1).repeat(48, 0).astype(np.uint8) for _ in range(4)]
    labels[1][:10] = 2  # class 2 is unseen in training: the label map sends it to 255
    data = EncodedSet(x, labels, 0.0)
    label_map = np.full(256, 255, dtype=np.uint8)
    label_map[[0, 1]] = [0, 1]
    text = F.normalize(torch.randn(2, 16), dim=-1)
    cfg = OVSNetConfig(queries=4, hidden=32, pc=True)
    model, log = train_ovsnet(data, label_map, text, torch.arange(2), 2, cfg, TrainSettings(steps=3, batch_size=2), progress=False)
    assert len(log["log"]) == 2 and not model.training
    classes = ClassList((("a",), ("b",), ("c",)))
    m = evaluate(model, data, classes, F.normalize(torch.randn(3, 16), dim=-1), torch.tensor([True, True, False]), 50.0)
    assert 0 <= m["mIoU"] <= 100 and set(m["IoU"]) == {"a", "b", "c"}


def test_resize_labels_samples_centres():
    label = np.arange(16).reshape(4, 4)
    assert resize_label(label, (2, 2), sampling="centre").tolist() == [[5, 7], [13, 15]]


def test_dense_features_average_overlapping_windows():
    # two 2x2-patch windows of a 2x3-patch image, overlapping in the middle column
    f = torch.zeros(2, 2, 2, 2)
    f[0, ..., 0] = 1.0
    f[1, ..., 1] = 1.0
    enc = SimpleNamespace(input_size=(16, 24), boxes=[(0, 16, 0, 16), (0, 16, 8, 24)], features=f)
    seg = SimpleNamespace(set_image=lambda image: enc, model=SimpleNamespace(patch_size=(8, 8)))
    out = dense_features(seg, None)
    assert out.shape == (2, 3, 2)
    assert torch.allclose(out[0, 0], torch.tensor([1.0, 0.0]))
    assert torch.allclose(out[0, 1], torch.tensor([2 ** -0.5, 2 ** -0.5]))  # mean of both, normalised
    assert torch.allclose(out[1, 2], torch.tensor([0.0, 1.0]))
