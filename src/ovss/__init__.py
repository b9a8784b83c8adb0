"""ovss: open-vocabulary semantic segmentation with dense CLIP.

Pipeline: model (``load_model``) -> dense features (``ovss.dense``) -> text (``ovss.text``) ->
segmentation (``Segmenter``) -> adaptation -> evaluation -> command line (``ovss.cli``).
"""
from .errors import OvssError
from .model import ClipModel, load_model
from .segment import Segmenter, SegmentationResult

__version__ = "0.1.0"
__all__ = ["OvssError", "ClipModel", "load_model", "Segmenter", "SegmentationResult", "__version__"]
