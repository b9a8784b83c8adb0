"""Test-time adaptation methods, by name: the columns of the benchmark tables.

``METHODS`` maps a name to an ``AdaptationMethod`` subclass; ``get_method(name, **hparams)``
builds one. The adapting methods share ``TestTimeAdaptation`` (common.py): LayerNorm parameters of
the vision encoder, Adam lr 1e-3, 10 steps, batch 2, episodic, as in MLMP.
"""
from __future__ import annotations

from ..errors import OvssError
from .base import AdaptationMethod, NoAdaptation
from .clipartt import CLIPArTT
from .common import TestTimeAdaptation
from .mlmp import MLMP
from .tent import TENT
from .tpt import TPT
from .watt import WATT

METHODS: dict[str, type[AdaptationMethod]] = {
    "none": NoAdaptation, "tent": TENT, "tpt": TPT, "watt": WATT, "clipartt": CLIPArTT, "mlmp": MLMP,
}


# What a published protocol's own scripts pass to each method. mlmp: MLMP's bash/<dataset>/*.sh
# and adapt/*.py (github.com/dosowiechi/MLMP 2a887de): Adam lr 1e-3, 10 steps, batch 2, episodic,
# logits scaled by the checkpoint's logit_scale.exp(); TENT and CLIPArTT use the single template
# "a photo of a {}" (no prompt file passed), WATT and MLMP prompts.yaml's seven; TPT tunes the
# "a photo of a" context on the windows themselves (no augmented views, no confidence selection);
# WATT (l = 2, m = 5) and CLIPArTT (K = 3) keep the published logits layout (see clipartt.py).
_MLMP_COMMON = dict(lr=1e-3, optimizer="adam", batch_size=2, episodic=True, logit_scale="checkpoint")
PROTOCOL_HPARAMS: dict[str, dict[str, dict]] = {
    "mlmp": {
        "tent": dict(_MLMP_COMMON, steps=10, templates="mlmp_reference"),
        "tpt": dict(_MLMP_COMMON, steps=10, views=1, select_ratio=1.0, ctx_init="a photo of a", suffix=""),
        "watt": dict(_MLMP_COMMON, steps=2, rounds=5, templates="seven", parallel=False, published_reshape=True),
        "clipartt": dict(_MLMP_COMMON, steps=10, k=3, templates="mlmp_reference", published_reshape=True),
        "mlmp": dict(_MLMP_COMMON, steps=10, templates="seven", layer_fraction=0.75, alpha_cls=1.0),
    },
}


def get_method(name: str, protocol: str | None = None, **hparams) -> AdaptationMethod:
    """An instance of the method registered as ``name``; unknown names list the known ones.

    ``protocol`` (a key of ``PROTOCOL_HPARAMS``, e.g. the ``mlmp`` preset's name) supplies that
    protocol's hyper-parameters; ``hparams`` override them. Other protocols: ovss's defaults.
    """
    cls = METHODS.get(str(name).strip().lower())
    if cls is None:
        raise OvssError(f"unknown adaptation method '{name}'; choose from: {', '.join(METHODS)}")
    chosen = PROTOCOL_HPARAMS.get(protocol or "", {}).get(cls.name, {}) if protocol else {}
    try:
        method = cls(**{**chosen, **hparams})
    except TypeError as e:
        raise OvssError(f"method {cls.name}: {e}") from None
    if chosen:
        method.protocol = protocol
    return method


def parse_method_args(text: str | None, methods: list[str]) -> dict[str, dict]:
    """``tent.lr=1e-4,watt.rounds=3`` -> {"tent": {"lr": 0.0001}, "watt": {"rounds": 3}}.

    Values are read as JSON where they parse (numbers, true/false, null), else kept as strings.
    """
    import json

    out: dict[str, dict] = {m: {} for m in methods}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        method, dot, name = key.strip().partition(".")
        method, name = method.strip().lower(), name.strip()
        if not eq or not dot or not method or not name:
            raise OvssError(f"method_args item '{item}' must look like METHOD.NAME=VALUE, e.g. tent.lr=1e-4", param="method_args")
        if method not in out:
            raise OvssError(f"method_args names '{method}', which is not among the methods ({', '.join(methods)})",
                            param="method_args")
        try:
            out[method][name] = json.loads(value.strip())
        except ValueError:
            out[method][name] = value.strip()
    return out


__all__ = ["METHODS", "AdaptationMethod", "NoAdaptation", "TestTimeAdaptation", "TENT", "TPT", "WATT", "CLIPArTT",
           "MLMP", "PROTOCOL_HPARAMS", "get_method", "parse_method_args"]
