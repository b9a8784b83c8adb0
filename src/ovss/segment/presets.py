"""Published evaluation protocols as data.

Each preset reproduces one system's inference settings (values and sources in docs/protocols.md,
read off the official code); ``per_dataset`` holds the settings that system changes per dataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import OvssError
from .resize import RESIZE_MODES


@dataclass(frozen=True)
class Preset:
    """Inference settings.

    resize_short: scale so the short side is this (long side capped at ``max_long``), keep ratio.
    resize_to: (h, w) fixed size instead (the mlmp protocol). Neither: keep the image size.
    resize_mode: "opencv" resizes uint8 images as uint8 with OpenCV bilinear (mmcv's imresize /
    imrescale, as every mmseg-based protocol does); "torch" resizes normalised floats with torch.
    crop / stride: sliding window in pixels; crop None: the whole image in one forward.
    logit_scale: multiplies cosine similarities before the softmax over queries.
    logit_scale_from_checkpoint: use the model's own ``logit_scale.exp()`` instead (MLMP's code);
    the value used is what ``Segmenter.settings()`` records as logit_scale.
    prob_thd: pixels whose best class probability is below it become class 0 (background).
    area_thd: classes covering less than this share of the image are dropped (SCLIP on VOC21).
    eval_at_input_size: compare with ground truth resized (nearest) to the input size (mlmp).
    cuda_precision: "fp32", or "fp16-ln-fp32" (fp16 weights, LayerNorm in fp32: the precision of
    MLMP's published CUDA numbers), applied to the model when it runs on CUDA; CPU stays fp32.
    window_remainder: what a window whose size is not a multiple of the patch size does with the
    last partial patch: "pad" (zero-pad to the next multiple, crop the logits back) or "floor"
    (the patch embedding drops it, and the coarser logits are stretched over the whole window:
    NACLIP's and MLMP's ``forward_feature``, conv1 with stride = patch size on the raw window).
    class_set: the protocol's own class-name files (``ovss/data/classnames/<class_set>/``) replace
    the dataset's where that folder has one; None: the dataset's files. ``sclip_naclip`` holds the
    lists SCLIP, NACLIP, SC-CLIP, ResCLIP and MLMP read (ClearCLIP and ProxyCLIP too, except where
    ``per_dataset`` points them at ``clearclip`` / ``proxyclip``); see docs/parity.md.
    rcs_weights: ResCLIP's (tau, lambda) for heads with its attention mix (``naclip+rcs`` ...).
    sfr_weights / sfr_threshold: ResCLIP's semantic feedback refinement, (tau, lambda) and the
    first segmentation's probability below which a pixel counts as query 0 (``temp_thd``); None:
    no feedback (``ovss.dense.feedback``, a step of ``Segmenter.predict``).
    second_backbone / second_weights: for heads with a second backbone (ProxyCLIP): its name
    (``ovss.model.second``; None: the head's default) and a local checkpoint file or ``none``.
    """

    name: str
    head: str = "naclip"
    resize_short: int | None = None
    max_long: int = 2048
    resize_to: tuple[int, int] | None = None
    resize_mode: str = "opencv"
    crop: int | None = 224
    stride: int | None = 112
    logit_scale: float = 50.0
    logit_scale_from_checkpoint: bool = False
    prob_thd: float = 0.0
    area_thd: float = 0.0
    templates: str = "imagenet80"
    pamr: bool = False
    eval_at_input_size: bool = False
    class_set: str | None = None
    cuda_precision: str = "fp32"
    rcs_weights: tuple[float, float] | None = None
    sfr_weights: tuple[float, float] | None = None
    sfr_threshold: float = 0.0
    second_backbone: str | None = None
    second_weights: str | None = None
    window_remainder: str = "pad"
    per_dataset: dict = field(default_factory=dict, compare=False, hash=False)
    description: str = ""

    def for_dataset(self, dataset: str | None) -> "Preset":
        """This preset with the per-dataset settings of ``dataset`` applied."""
        if dataset is None or dataset not in self.per_dataset:
            return self
        return replace(self, **self.per_dataset[dataset])

    def with_overrides(self, **overrides) -> "Preset":
        overrides = {k: v for k, v in overrides.items() if v is not None}
        unknown = [k for k in overrides if k not in self.__dataclass_fields__]
        if unknown:
            raise OvssError(f"unknown preset setting '{unknown[0]}'; known: {', '.join(self.__dataclass_fields__)}")
        check_ranges(overrides)
        mode = overrides.get("resize_mode")
        if mode is not None and mode not in RESIZE_MODES:
            raise OvssError(f"unknown resize_mode '{mode}'; choose one of: {', '.join(RESIZE_MODES)}")
        remainder = overrides.get("window_remainder")
        if remainder is not None and remainder not in ("pad", "floor"):
            raise OvssError(f"unknown window_remainder '{remainder}'; choose pad or floor")
        class_set = overrides.get("class_set")
        if class_set is not None:
            from ..data import class_set_folder  # late import: ovss.data loads image libraries the table does not need

            class_set_folder(class_set)  # one line naming the folders if it is not one
        precision = overrides.get("cuda_precision")
        if precision is not None and precision not in ("fp32", "fp16-ln-fp32"):
            raise OvssError(f"unknown cuda_precision '{precision}'; choose fp32 or fp16-ln-fp32")
        return replace(self, **overrides)

    def settings(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("per_dataset", "description")}
        if d["resize_to"] is not None:
            d["resize_to"] = list(d["resize_to"])
        return d


# numeric settings a caller may override, and the values that make sense: one message each
FRACTIONS = ("prob_thd", "area_thd", "sfr_threshold")  # probabilities and shares: 0..1
POSITIVE_INTS = ("resize_short", "max_long", "crop", "stride")  # pixels


def check_ranges(overrides: dict) -> None:
    """One line for a numeric override out of its range, named by its keyword (``prob_thd=2.0``
    would label every pixel 0; a logit scale of 0 makes every class equally likely)."""
    import math

    for key, value in overrides.items():
        if value is None:
            continue
        if key in FRACTIONS + ("logit_scale",) + POSITIVE_INTS and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise OvssError(f"{key} must be a finite number, got {value!r}", param=key)
        if key in FRACTIONS and not 0 <= value <= 1:
            raise OvssError(f"{key} must be between 0 and 1, got {value}", param=key)
        if key == "logit_scale" and value <= 0:
            raise OvssError(f"logit_scale must be above 0, got {value}", param=key)
        if key in POSITIVE_INTS and (value != int(value) or value < 1):
            raise OvssError(f"{key} must be a whole number of pixels, 1 or more, got {value}", param=key)
        if key in ("rcs_weights", "sfr_weights"):
            if not (isinstance(value, (tuple, list)) and len(value) == 2
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
                raise OvssError(f"{key} must be two numbers (tau, lambda), got {value!r}", param=key)
        if key == "resize_to":
            if not (isinstance(value, (tuple, list)) and len(value) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
                raise OvssError(f"resize_to must be two whole numbers (height, width), got {value!r}", param=key)


_BG = ("voc21", "context60", "coco_object")

PRESETS: dict[str, Preset] = {
    "sclip": Preset(
        "sclip", head="sclip", resize_short=336, crop=224, stride=112, logit_scale=40.0, class_set="sclip_naclip",
        per_dataset={
            "voc21": dict(prob_thd=0.1, area_thd=0.1, logit_scale=65.0),
            "context60": dict(prob_thd=0.1, logit_scale=50.0),
            "coco_object": dict(prob_thd=0.1, logit_scale=50.0),
            "cityscapes": dict(resize_short=560),
            "coco_stuff164k": dict(resize_short=448),
        },
        description="SCLIP: short side 336, windows 224/112, logit scale 40",
    ),
    "naclip": Preset(
        "naclip", head="naclip", resize_short=336, crop=224, stride=112, logit_scale=40.0, pamr=True,
        window_remainder="floor", class_set="sclip_naclip",
        per_dataset={
            "voc21": dict(prob_thd=0.1, crop=None, stride=None),
            "voc20": dict(crop=None, stride=None),
            "context60": dict(prob_thd=0.1),
            "coco_object": dict(prob_thd=0.1),
            "cityscapes": dict(resize_short=560),
        },
        description="NACLIP: short side 336, windows 224/112 (VOC whole image), PAMR on",
    ),
    "clearclip": Preset(
        "clearclip", head="clearclip", resize_short=448, crop=448, stride=224, logit_scale=50.0, class_set="sclip_naclip",
        per_dataset={  # ClearCLIP's own VOC and COCO-Object lists: one name per class, "background" queried as is
            "voc21": dict(prob_thd=0.5, class_set="clearclip"),
            "voc20": dict(class_set="clearclip"),
            "context60": dict(prob_thd=0.15),
            "coco_object": dict(prob_thd=0.4, class_set="clearclip"),
            "cityscapes": dict(crop=224, stride=224),
        },
        description="ClearCLIP: short side 448, windows 448/224",
    ),
    "gem": Preset(
        "gem", head="gem", resize_to=(448, 448), crop=None, stride=None, logit_scale=100.0, templates="single",
        description="GEM: resize to 448 x 448, whole image, 'a photo of a {}.', logit scale 100 (its released wrapper)",
    ),
    "scclip": Preset(
        "scclip", head="scclip", resize_short=336, crop=224, stride=112, logit_scale=40.0, class_set="sclip_naclip",
        per_dataset={
            "voc21": dict(area_thd=0.1, logit_scale=50.0, prob_thd=0.15),
            "context60": dict(prob_thd=0.15),
            "coco_object": dict(logit_scale=55.0, prob_thd=0.35),
            "cityscapes": dict(resize_short=560),
        },
        description="SC-CLIP: short side 336, windows 224/112, logit scale 40, no PAMR",
    ),
    "resclip-rcs": Preset(
        # no dataset: ResCLIP's demo.py weights (its VOC20 config's); each dataset its config's
        "resclip-rcs", head="naclip+rcs", resize_short=336, crop=224, stride=112, logit_scale=40.0, rcs_weights=(2.0, 0.6),
        class_set="sclip_naclip",
        per_dataset={
            "voc21": dict(prob_thd=0.1, crop=None, stride=None, rcs_weights=(2.0, 0.3)),
            "voc20": dict(crop=None, stride=None, rcs_weights=(2.0, 0.6)),
            "context60": dict(prob_thd=0.1, rcs_weights=(2.0, 0.3)),
            "context59": dict(rcs_weights=(2.0, 0.4)),
            "coco_object": dict(prob_thd=0.1, rcs_weights=(2.0, 0.4)),
            "coco_stuff164k": dict(rcs_weights=(2.0, 0.4)),
            "cityscapes": dict(resize_short=560, rcs_weights=(2.0, 0.2)),
            "ade20k": dict(rcs_weights=(2.0, 0.3)),  # cfg_ade20k.py
        },
        description="ResCLIP without its semantic feedback (RCS on NACLIP): short side 336, windows 224/112",
    ),
    "resclip": Preset(
        # configs/cfg_*.py of yvhangyang/ResCLIP @ 0e085f7; ResCLIP's forward_feature is NACLIP's
        # (conv1 drops a partial patch), hence window_remainder="floor". No dataset (a photo): the
        # settings of its demo.py, which are also its VOC20 config's: RCS (2.0, 0.6), SFR (2.1, 0.6),
        # temp_thd 0.10
        "resclip", head="naclip+rcs", resize_short=336, crop=224, stride=112, logit_scale=40.0, window_remainder="floor",
        class_set="sclip_naclip",
        rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6), sfr_threshold=0.1,
        per_dataset={
            "voc21": dict(prob_thd=0.1, crop=None, stride=None, rcs_weights=(2.0, 0.3), sfr_weights=(2.2, 0.7),
                          sfr_threshold=0.5),
            "voc20": dict(crop=None, stride=None, rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6), sfr_threshold=0.1),
            "context60": dict(prob_thd=0.1, rcs_weights=(2.0, 0.3), sfr_weights=(1.8, 0.7), sfr_threshold=0.3),
            "context59": dict(rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), sfr_threshold=0.25),
            "coco_object": dict(prob_thd=0.1, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), sfr_threshold=0.11),
            "coco_stuff164k": dict(rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), sfr_threshold=0.11),
            "cityscapes": dict(resize_short=560, rcs_weights=(2.0, 0.2), sfr_weights=(2.1, 0.6), sfr_threshold=0.1),
            "ade20k": dict(rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7), sfr_threshold=0.25),
        },
        description="ResCLIP (RCS + semantic feedback on NACLIP): short side 336, windows 224/112 (VOC whole image)",
    ),
    "proxyclip": Preset(
        "proxyclip", head="proxyclip", resize_short=336, crop=336, stride=112, logit_scale=40.0,
        second_backbone="dino-vitb8", class_set="sclip_naclip",
        per_dataset={  # ProxyCLIP's own VOC21 / COCO-Object lists (shorter background lists); its VOC20 is ClearCLIP's
            "voc21": dict(prob_thd=0.2, class_set="proxyclip"),
            "voc20": dict(class_set="clearclip"),
            "context60": dict(prob_thd=0.15),
            "coco_object": dict(prob_thd=0.25, class_set="proxyclip"),
            "ade20k": dict(resize_short=448),
            "cityscapes": dict(resize_short=448, crop=224, stride=112),
        },
        description="ProxyCLIP with DINO ViT-B/8: short side 336, windows 336/112, logit scale 40",
    ),
    "mlmp": Preset(
        "mlmp", head="naclip", resize_to=(224, 224), crop=224, stride=112, logit_scale=100.0,
        # templates: MLMP's NoAdapt. column is main.py without --adapt, i.e. its TENT class's
        # evaluate() with no prompt file: the single "a photo of a {}" (MLMP itself and WATT take
        # prompts.yaml's seven through their protocol hyper-parameters)
        logit_scale_from_checkpoint=True, templates="mlmp_reference", eval_at_input_size=True,
        class_set="sclip_naclip",  # MLMP's utils/class_extensions lists are these
        cuda_precision="fp16-ln-fp32", window_remainder="floor",
        per_dataset={"cityscapes": dict(resize_to=(560, 1120)),
                     "ade20k": dict(class_set=None)},  # MLMP ships no ADE20K list: the dataset's own
        description="MLMP benchmark: resize to 224x224, ground truth resized with nearest",
    ),
    "shapesworld": Preset(
        "shapesworld", head="naclip", resize_short=None, crop=112, stride=56, logit_scale=100.0,
        templates="seven",
        description="the embedded tiny model on ShapesWorld: windows of its native 112 px, stride 56",
    ),
}


def check_second_backbone(head: str | None, preset, dataset: str | None = None, second_backbone: str | None = None,
                          second_weights: str | None = None) -> None:
    """A second backbone (or its weights) given for a head that has none is one line: the setting
    would be ignored and the run would not be the one asked for. Checked before a model loads."""
    if second_backbone is None and second_weights is None:
        return
    from ..dense import HEADS, get_head

    name = head or get_preset(preset or "naclip", dataset).head
    if name not in HEADS or get_head(name).second:
        return  # an unknown head gets its own message
    key, value = ("second_backbone", second_backbone) if second_backbone is not None else ("second_weights", second_weights)
    with_second = ", ".join(h for h in HEADS if HEADS[h].second)
    raise OvssError(f"{key}={value!r} is for heads with a second backbone ({with_second}); head '{name}' has none: "
                    f"drop {key} or choose head='proxyclip'", param=key)


def default_preset(model, dataset: str | None = None) -> str:
    """The one rule for the preset when none is chosen (Python API, ``segment``, ``bench``): the
    embedded models' own protocol on any image or on ShapesWorld, the NACLIP protocol otherwise."""
    from ..model import is_embedded

    return "shapesworld" if is_embedded(model) and dataset in (None, "shapesworld") else "naclip"


def get_preset(name: str | Preset, dataset: str | None = None) -> Preset:
    if isinstance(name, Preset):
        return name.for_dataset(dataset)
    if name not in PRESETS:
        raise OvssError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name].for_dataset(dataset)
