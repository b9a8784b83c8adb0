"""Open-vocabulary domain adaptation (OpenDAS): prompt tuning of a frozen CLIP on the
segments of a target domain, so that it names that domain's classes better (base) without
forgetting words it never saw during adaptation (novel).

``load_segments`` cuts and caches a dataset's segments; ``train_prompts`` learns a method's prompts
(``PROMPT_METHODS``: opendas, coop, vpt); ``evaluate_segments`` scores Acc / W-F1 / B-F1 / N-F1;
``load_prompt_addition`` gives prompts to a ``Segmenter`` (``prompts=``); ``segments_miou`` names mask proposals.
"""
from .apply import PromptAddition, PromptedDenseEncoder, PromptedTextEncoder, load_prompt_addition
from .evaluate import encode_segments, evaluate_segments, predict_segments
from .losses import MARGIN, hardest_negatives, ramp, triplet_loss
from .methods import PROMPT_METHODS, Method, Stage, get_prompt_method
from .metrics import classification_scores, format_table, per_class_f1, weighted_f1
from .negatives import generate_negatives, negative_queries, read_negatives
from .prompts import PromptLearner, load_prompts, read_sidecar, save_prompts
from .proposals import PROPOSALS, classify_proposals, segments_miou, slic_superpixels
from .segments import SegmentSet, class_masks, cut_segment, load_segments, mean_pixel
from .train import PromptTrainConfig, learning_rate, train_prompts

__all__ = [
    "MARGIN", "PROMPT_METHODS", "PROPOSALS", "Method", "PromptLearner", "PromptedDenseEncoder", "PromptedTextEncoder",
    "SegmentSet", "Stage", "PromptTrainConfig", "load_prompt_addition", "PromptAddition", "class_masks", "classification_scores",
    "classify_proposals", "cut_segment", "encode_segments", "evaluate_segments", "format_table",
    "generate_negatives", "get_prompt_method", "hardest_negatives", "learning_rate", "load_prompts", "load_segments",
    "mean_pixel", "negative_queries", "per_class_f1", "predict_segments", "ramp", "read_negatives",
    "read_sidecar", "save_prompts", "segments_miou", "slic_superpixels", "train_prompts", "triplet_loss",
    "weighted_f1",
]
