"""Dense, text-aligned patch features from a frozen CLIP vision encoder."""
from .encoder import DenseEncoder, DenseFeatures, resize_pos_embed
from .heads import HEADS, DenseHead, get_head

__all__ = ["DenseEncoder", "DenseFeatures", "resize_pos_embed", "HEADS", "DenseHead", "get_head"]
