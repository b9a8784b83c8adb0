"""From dense features and class embeddings to per-pixel labels."""
from .predictor import SegmentationResult, Segmenter, check_second_backbone, label_shares, stitch_patch_features
from .presets import PRESETS, Preset, default_preset, get_preset

__all__ = ["Segmenter", "SegmentationResult", "label_shares", "stitch_patch_features", "check_second_backbone", "PRESETS", "Preset", "get_preset", "default_preset"]
