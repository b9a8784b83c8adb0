import pytest
import torch

from ovss.opendas import PromptLearner, PromptTrainConfig, get_prompt_method, learning_rate, train_prompts
from ovss.opendas.train import CHECKPOINT, read_checkpoint
from ovss.errors import OvssError

BASE = ["sky", "boat", "car"]  # "kite" stays novel
NEGATIVES = ["buoy", "truck"]


def _cfg(**kw):
    return PromptTrainConfig(**{"epochs": 2, "batch_size": 4, "checkpoint_every": 100, **kw})


def test_learning_rate_warm_up_then_cosine():
    cfg = PromptTrainConfig(epochs=5, lr=0.0025, warmup_epochs=1, warmup_lr=1e-5)
    assert learning_rate(0, 10, cfg) == learning_rate(9, 10, cfg) == 1e-5
    assert learning_rate(10, 10, cfg) == pytest.approx(0.0025)
    assert learning_rate(30, 10, cfg) == pytest.approx(0.0025 / 2)  # half-way through the cosine
    assert learning_rate(49, 10, cfg) < 1e-4


def test_frozen_clip_weights_never_change(tiny, tiny_segments):
    before = {k: v.detach().clone() for k, v in tiny.clip.state_dict().items()}
    flags = [p.requires_grad for p in tiny.clip.parameters()]
    learner, state = train_prompts(tiny, get_prompt_method("opendas"), tiny_segments, BASE, NEGATIVES,
                                   cfg=_cfg(lr=0.05, warmup_epochs=0), progress=False, log=lambda s: None)
    assert state["done"] and len(state["log"]) == 4  # 2 stages x 2 epochs
    after = tiny.clip.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in tiny.clip.parameters()] == flags
    # ... while the prompts did learn
    init = PromptLearner(tiny, seed=0)
    assert not torch.equal(learner.visual[0], init.visual[0]) and not torch.equal(learner.text[1], init.text[1])


def test_resume_continues_at_the_right_step(tiny, tiny_segments, tmp_path):
    method = get_prompt_method("opendas")  # 9 base segments, batch 4: 3 steps per epoch, 6 per stage
    args = (tiny, method, tiny_segments, BASE, NEGATIVES)
    quiet = {"progress": False, "log": lambda s: None}
    whole, _ = train_prompts(*args, out=tmp_path / "a", cfg=_cfg(), **quiet)

    _, state = train_prompts(*args, out=tmp_path / "b", cfg=_cfg(), stop_after=4, **quiet)
    assert not state["done"] and (state["stage"], state["step"]) == (0, 4)
    _, saved = read_checkpoint(tmp_path / "b" / CHECKPOINT)
    assert (saved["stage"], saved["step"]) == (0, 4)
    _, state = train_prompts(*args, out=tmp_path / "b", cfg=_cfg(), stop_after=4, **quiet)  # 2 + 2 steps
    assert (state["stage"], state["step"]) == (1, 2)  # mid-epoch in the text stage
    resumed, state = train_prompts(*args, out=tmp_path / "b", cfg=_cfg(), **quiet)
    assert state["done"] and [(e["stage"], e["epoch"]) for e in state["log"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)  # exactly the steps of the uninterrupted run


def test_checkpoint_of_other_settings_is_refused(tiny, tiny_segments, tmp_path):
    quiet = {"progress": False, "log": lambda s: None}
    train_prompts(tiny, get_prompt_method("vpt"), tiny_segments, BASE, out=tmp_path, cfg=_cfg(), stop_after=1, **quiet)
    with pytest.raises(OvssError, match="other settings \\(config\\)"):
        train_prompts(tiny, get_prompt_method("vpt"), tiny_segments, BASE, out=tmp_path, cfg=_cfg(lr=0.1), **quiet)


def test_user_errors(tiny, tiny_segments):
    with pytest.raises(OvssError, match="base class 'tree' is not a class"):
        train_prompts(tiny, get_prompt_method("coop"), tiny_segments, ["sky", "tree"], cfg=_cfg(), progress=False)
    with pytest.raises(OvssError, match="^epochs must be at least 1, got 0$"):
        PromptTrainConfig(epochs=0).check()


def test_proxy_calibration_joins_the_loss(tiny, tiny_segments):
    quiet = {"progress": False, "log": lambda s: None}
    args = (tiny, get_prompt_method("opendas"), tiny_segments, BASE, NEGATIVES)
    plain, _ = train_prompts(*args, cfg=_cfg(lr=0.05, warmup_epochs=0), **quiet)
    again, _ = train_prompts(*args, cfg=_cfg(lr=0.05, warmup_epochs=0, proxy_weight=0.0), **quiet)
    calibrated, state = train_prompts(*args, cfg=_cfg(lr=0.05, warmup_epochs=0, proxy_weight=1.0), **quiet)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), again.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(plain.parameters(), calibrated.parameters()))
    assert all(torch.isfinite(p).all() for p in calibrated.parameters()) and state["done"]
    with pytest.raises(OvssError, match="^proxy_weight must not be negative"):
        PromptTrainConfig(proxy_weight=-1).check()
