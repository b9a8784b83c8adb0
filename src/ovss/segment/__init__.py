"""From dense features and class embeddings to per-pixel labels."""
from .predictor import SegmentationResult, Segmenter, label_shares, stitch_patch_features
from .presets import PRESETS, Preset, check_second_backbone, default_preset, get_preset

__all__ = ["Segmenter", "SegmentationResult", "label_shares", "stitch_patch_features", "check_second_backbone", "PRESETS", "Preset", "get_preset", "default_preset"]
