"""The training recipe of ovss-tiny as data, in a module without torch, so that the command line
can show its defaults in ``ovss world train --help`` without importing torch."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TinyClipRecipe:
    steps: int = 600
    batch_size: int = 96
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 60
    seed: int = 0
    image_size: int = 112
    object_share: float = 0.3  # single-object images
    template_share: float = 0.4  # captions written with a prompt template instead of a sentence
    object_crop_share: float = 0.4  # scene windows placed on an object, so objects fill more of them
    regions: int = 2  # captioned sub-windows per scene image, embedded by pooling their patch tokens
    style_share: float = 0.0  # training scenes rendered in the non-default styles (0: default only)
    # Regions can also be pooled from the attention outputs of the intermediate blocks that MLMP
    # fuses (the last `level_fraction` of the blocks, the last one excluded), in a second contrastive
    # term of weight `level_weight`: 0 (off) for the "shapesworld" weights, 0.5 for "shapesworld-levels" and "shapesworld2".
    level_fraction: float = 0.75
    level_weight: float = 0.0
    workers: int = 1
    bf16: bool = True
    world: str = "shapesworld"  # the world the images come from: shapesworld or shapesworld2
    # share of training images given a random photometric augmentation (noise, blur, haze,
    # contrast, brightness, colour jitter, grey): the partial robustness real CLIPs get from data
    augment: float = 0.0
    # weights to start from ("" = from scratch): a fine-tune of an embedded model on a new world
    # keeps what it learnt (stuff textures, the prompt templates) and needs far fewer steps
    init: str = ""
    # weight of the per-patch term: every 8 x 8 patch's value-path feature (and, with level_weight,
    # each fused level's) classified against the text embeddings of all the world's class names,
    # the target being the patch's class shares from the scene's labels (0: off)
    dense_weight: float = 0.0
    checkpoint_every: int = 50  # steps between resumable checkpoints (FILE.ckpt.pt); 0: none


# The recipe of each embedded weight file, by its tag (the logs in docs/ovss-tiny-*.train.json
# record the same settings): `ovss world train --recipe TAG` retrains it, flags change single settings.
RECIPES: dict[str, TinyClipRecipe] = {
    "shapesworld": TinyClipRecipe(),
    "shapesworld-levels": TinyClipRecipe(level_weight=0.5),
    "shapesworld2": TinyClipRecipe(steps=2150, batch_size=64, level_weight=0.5, world="shapesworld2", augment=0.3,
                                   dense_weight=3.0),
}
