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


def get_method(name: str, **hparams) -> AdaptationMethod:
    """An instance of the method registered as ``name``; unknown names list the known ones."""
    cls = METHODS.get(str(name).strip().lower())
    if cls is None:
        raise OvssError(f"unknown adaptation method '{name}'; choose from: {', '.join(METHODS)}")
    try:
        return cls(**hparams)
    except TypeError as e:
        raise OvssError(f"method {cls.name}: {e}") from None


__all__ = ["METHODS", "AdaptationMethod", "NoAdaptation", "TestTimeAdaptation", "TENT", "TPT", "WATT", "CLIPArTT",
           "MLMP", "get_method"]
