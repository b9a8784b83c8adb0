"""From dense features and class embeddings to per-pixel labels."""
from .predictor import SegmentationResult, Segmenter
from .presets import PRESETS, Preset, default_preset, get_preset

__all__ = ["Segmenter", "SegmentationResult", "PRESETS", "Preset", "get_preset", "default_preset"]
