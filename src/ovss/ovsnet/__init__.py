"""OVSNet (the OVSNet/OpenBench paper): Gradient-Free Aggregation, Proxy Calibration, and a small mask decoder.

``gfa`` and ``proxy_loss`` are reusable on their own (any N x E query / region embeddings);
``OVSNet`` is the small decoder that uses both on frozen dense CLIP features, and
``run_ablation`` trains its four variants (baseline, +GFA, +PC, both) on ShapesWorld.
"""
from .ablation import VARIANTS, ablation_table, prepare_data, run_ablation
from .decoder import OVSNet, OVSNetConfig, OVSNetOutput, class_logits, mask_pool
from .gfa import convergence_bound, gfa, gfa_iterative
from .proxy import mix, proxy_loss, sample_alpha, sample_pairs
from .train import TrainSettings, dense_features, encode_dataset, evaluate, train_ovsnet

__all__ = [
    "OVSNet", "OVSNetConfig", "OVSNetOutput", "TrainSettings", "VARIANTS", "ablation_table", "class_logits",
    "convergence_bound", "dense_features", "encode_dataset", "evaluate", "gfa", "gfa_iterative", "mask_pool", "mix",
    "prepare_data", "proxy_loss", "run_ablation", "sample_alpha", "sample_pairs", "train_ovsnet",
]
