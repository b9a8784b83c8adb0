"""Dense, text-aligned patch features from a frozen CLIP vision encoder."""
from .encoder import DenseEncoder, DenseFeatures, resize_pos_embed
from .heads import HEADS, DenseHead, get_head
from .precision import PRECISIONS, check_precision

__all__ = ["DenseEncoder", "DenseFeatures", "resize_pos_embed", "HEADS", "DenseHead", "get_head", "PRECISIONS", "check_precision"]
