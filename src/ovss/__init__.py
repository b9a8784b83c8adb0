"""ovss: open-vocabulary semantic segmentation with dense CLIP.

Pipeline: model (``load_model``) -> dense features (``ovss.dense``) -> text (``ovss.text``) ->
segmentation (``Segmenter``) -> adaptation -> evaluation -> command line (``ovss.cli``).

The public names are imported on first use (PEP 562), so that ``ovss --help`` answers without
importing torch.
"""
from .errors import OvssError

__version__ = "0.1.0"
__all__ = ["OvssError", "ClipModel", "load_model", "Segmenter", "SegmentationResult", "__version__"]

_LAZY = {"ClipModel": "model", "load_model": "model", "Segmenter": "segment", "SegmentationResult": "segment"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ovss' has no attribute '{name}'")
