"""The tables ``ovss reproduce`` knows: how each one is run, beside its published cells.

A table's cells come from ``published.csv`` (rows: datasets or scenarios; columns: methods). What
the CSV cannot say lives here, once per table: the model and weights, the data, a column's
adaptation method, the image limit of the source's own run, how ``average`` is formed, and a
rough GPU-time estimate with its basis. A column runs when its published rows name an ovss
preset (``protocol``); other columns are shown, never run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..corruptions import CORRUPTION_NAMES
from ..data import DATASETS
from ..errors import OvssError
from .published import Published, load_published

# validation images per dataset (MMSegmentation's splits), for the GPU-time estimates
VAL_IMAGES = {"voc21": 1449, "voc20": 1449, "context60": 5105, "context59": 5105, "coco_object": 5000,
              "coco_stuff164k": 5000, "cityscapes": 500, "ade20k": 2000}
# rough seconds per image on one GPU, training-free presets with sliding windows (not measured
# by ovss: no GPU was available when these tables were added; Cityscapes images have about 5 x the windows)
_SECONDS = {"ViT-B/16": 0.1, "ViT-L/14": 0.3}
_CITYSCAPES_FACTOR = 5.0
# MLMP's published per-sample cost on a V100, ViT-L/14, adapt + eval seconds (shared/reference/protocols.md)
_MLMP_SECONDS = {"none": 0.02, "tent": 0.462 + 0.018, "tpt": 0.445 + 0.031, "clipartt": 3.494 + 0.031,
                 "watt": 5.197 + 0.018, "mlmp": 0.541 + 0.041}

OPENAI_WEIGHTS = ("OpenAI CLIP {}: --pretrained openai (open_clip downloads it) or a local file "
                  "(e.g. OpenAI's {}.pt)")


@dataclass(frozen=True)
class Column:
    """One configuration: one run folder."""
    name: str  # the published method name (the CSV's ``method``)
    protocol: str  # ovss preset; "" = not runnable
    head: str | None  # None: the preset's head
    method: str = "none"  # adaptation method

    @property
    def folder(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name.lower().replace("+", "-plus-"))


@dataclass(frozen=True)
class TableSpec:
    name: str
    paper: str
    table: str  # which table of the source
    model: str | None  # open_clip architecture; None = the embedded ovss-tiny
    weights: str  # what --pretrained must give
    rows_are: str = "dataset"  # "dataset" (rows = datasets) or "scenario" (rows = corruptions of one dataset)
    limit: int | None = None  # images per dataset in the source's own run (None: the full split)
    seeds: tuple[int, ...] = (0,)  # seeds of adapting columns (their mean is compared)
    average_of: str = ""  # what the published ``average`` row averages, or ""
    prepare: str = ""  # command that makes the data, for datasets ``ovss data prepare`` does not make
    runnable: bool = True
    why_not: str = ""  # why the table is reference-only
    method_columns: bool = False  # the columns are adaptation methods (mlmp's table)
    extra: dict = field(default_factory=dict)  # preset overrides every column gets
    embedded_tag: str | None = None  # for model None: the embedded weights the table is measured with


SPECS = {s.name: s for s in (
    TableSpec("naclip-readme", "NACLIP (WACV 2025)", "README results (sinahmr/NACLIP @ 0cac3a6)", "ViT-B-16",
              OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16"), average_of="the 8 datasets"),
    TableSpec("sclip-readme", "SCLIP (ECCV 2024)", "README results (wangf3014/SCLIP @ 5f69176)", "ViT-B-16",
              OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16")),
    TableSpec("resclip-vitb16", "ResCLIP (CVPR 2025)", "main tables, ViT-B/16 (README figures @ 0e085f7)", "ViT-B-16",
              OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16")),
    TableSpec("resclip-vitl14", "ResCLIP (CVPR 2025)", "main tables, ViT-L/14 (README figures @ 0e085f7)", "ViT-L-14",
              OPENAI_WEIGHTS.format("ViT-L/14", "ViT-L-14")),
    TableSpec("clearclip-appendix-vitb16", "ClearCLIP (ECCV 2024)", "appendix Table 2, ViT-B (README figure @ ad68a40)",
              "ViT-B-16", OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16")),
    TableSpec("clearclip-appendix-vitl14", "ClearCLIP (ECCV 2024)", "appendix Table 2, ViT-L (README figure @ ad68a40)",
              "ViT-L-14", OPENAI_WEIGHTS.format("ViT-L/14", "ViT-L-14")),
    TableSpec("gem-vitb16", "GEM (CVPR 2024)", "VOC21 / Context60 as ResCLIP's table reports them", "ViT-B-16",
              OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16")),
    TableSpec("scclip-vitb16", "SC-CLIP (IEEE TIP 2025)", "Table I (cells not found offline; its average from the text)",
              "ViT-B-16", OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16"), average_of="the 8 datasets"),
    TableSpec("proxyclip-vitb16", "ProxyCLIP (ECCV 2024)", "as Trident's main table reports it (README figure @ a93b346)",
              "ViT-B-16", OPENAI_WEIGHTS.format("ViT-B/16", "ViT-B-16") + "; plus DINO ViT-B/8 (--vfm-weights dino_vitbase8_pretrain.pth)",
              average_of="the 8 datasets"),
    TableSpec("mlmp-v20c", "MLMP (NeurIPS 2025)", "V20-C results (README, shared/papers/000)", "ViT-L-14",
              OPENAI_WEIGHTS.format("ViT-L/14", "ViT-L-14"), rows_are="scenario", seeds=(0, 1, 2),
              average_of="the 15 corruptions", method_columns=True),
    TableSpec("contrastive-concepts-table1", "contrastive concepts (2024)", "Table 1, IoU-single", "ViT-B-16",
              "OpenAI CLIP ViT-B/16 (MaskCLIP) and MetaCLIP ViT-B/16 (GEM)", runnable=False,
              why_not="IoU-single is not wired into ovss reproduce; run `ovss bench --metric iou-single`"),
    TableSpec("ovsnet-table2", "OVSNet/OpenBench (2025)", "Table 2", None, "-", runnable=False,
              why_not="needs a Mask2Former decoder trained on COCO-Panoptic"),
    TableSpec("opendas-main", "OpenDAS (2024)", "main tables", None, "-", runnable=False,
              why_not="needs OpenDAS's own 2D/3D domain data and prompt training"),
    TableSpec("shapesworld-c", "ovss docs/benchmarks.md", "ShapesWorld-C with the embedded model (issue 4)", None,
              "the embedded ovss-tiny shapesworld weights (no --pretrained)", rows_are="scenario",
              average_of="the 15 corruptions", embedded_tag="shapesworld",
              prepare="ovss world make --world shapesworld --out {root} --n 50 --seed 1 --split val"),
    TableSpec("shapesworld-heads", "ovss docs/benchmarks.md", "the 2024-2025 heads on ShapesWorld-C (issue 17)", None,
              "the embedded ovss-tiny shapesworld weights (no --pretrained)", rows_are="scenario", limit=20,
              average_of="the 15 corruptions", embedded_tag="shapesworld",
              prepare="ovss world make --world shapesworld --out {root} --n 50 --seed 1 --split val"),
)}


@dataclass
class Table:
    spec: TableSpec
    cells: list[Published]
    columns: list[Column]
    rows: list[str]  # datasets or scenarios, in the CSV's order; "average" last where defined

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(c.dataset for c in self.cells if c.dataset and c.dataset != "average"))

    @property
    def backbone(self) -> str:
        return ", ".join(dict.fromkeys(c.backbone for c in self.cells))

    def row_of(self, cell: Published) -> str:
        return cell.dataset if self.spec.rows_are == "dataset" else cell.scenario

    def cell(self, row: str, column: str) -> Published | None:
        return next((c for c in self.cells if self.row_of(c) == row and c.method == column), None)

    def runnable_columns(self) -> list[Column]:
        return [c for c in self.columns if c.protocol] if self.spec.runnable else []

    def gpu_estimate(self) -> str:
        """Rough GPU hours for the whole table, with what the figure rests on."""
        if not self.spec.runnable:
            return "-"
        cols = self.runnable_columns()
        if self.spec.model is None:
            return "CPU minutes (embedded ovss-tiny)"
        if self.spec.method_columns:
            n = VAL_IMAGES[self.datasets[0]] * len([r for r in self.rows if r != "average"])
            secs = sum(n * _MLMP_SECONDS.get(c.method, 1.0) * (1 if c.method == "none" else len(self.spec.seeds)) for c in cols)
            return f"~{secs / 3600:.0f} h (MLMP's published V100 seconds per sample x images x scenarios x trials)"
        per = _SECONDS.get(self.backbone.split(",")[0], 0.3)
        images = sum(VAL_IMAGES.get(d, 0) * (_CITYSCAPES_FACTOR if d == "cityscapes" else 1)
                     for d in self.datasets if d in VAL_IMAGES)
        secs = images * per * len(cols)
        return f"~{secs / 3600:.1f} h (rough: {per} s / image, not measured on a GPU)"


@lru_cache(maxsize=1)
def _published() -> tuple[Published, ...]:
    return tuple(load_published())


def build_table(spec: TableSpec, rows: list[Published]) -> Table:
    columns: dict[str, Column] = {}
    for r in rows:
        col = Column(r.method, r.protocol, r.head or None, r.method if spec.method_columns else "none")
        prev = columns.setdefault(r.method, col)
        if prev.protocol != col.protocol or prev.head != col.head:
            if prev.protocol and col.protocol:
                raise OvssError(f"published.csv: {spec.name} column {r.method} names two configurations")
            if col.protocol:  # a runnable cell makes the column runnable
                columns[r.method] = col
    order = list(dict.fromkeys((r.dataset if spec.rows_are == "dataset" else r.scenario) for r in rows))
    if "average" in order:
        order = [o for o in order if o != "average"] + ["average"]
    return Table(spec, list(rows), list(columns.values()), order)


def get_table(name: str) -> Table:
    spec = SPECS.get(str(name).strip().lower())
    if spec is None:
        raise OvssError(f"unknown table '{name}'; known tables: {', '.join(SPECS)} (list them with `ovss reproduce --list`)")
    return build_table(spec, [r for r in _published() if r.table == spec.name])


def list_tables() -> list[Table]:
    return [get_table(name) for name in SPECS]


def average_members(table: Table) -> list[str]:
    """The rows ``average`` is the mean of: the 15 corruptions, or every dataset row."""
    if table.spec.rows_are == "scenario":
        return [r for r in table.rows if r in CORRUPTION_NAMES]
    return [r for r in table.rows if r != "average"]


def data_text(table: Table) -> str:
    """How the table's data is made, in one line."""
    if table.spec.prepare:
        return "`" + table.spec.prepare.format(root="ROOT/shapesworld") + "`"
    names = [d for d in table.datasets if d in DATASETS]
    if not names:
        return "-"
    return f"`ovss data prepare NAME --from DOWNLOADS --out ROOT` for NAME in {', '.join(names)}"


def list_text() -> str:
    """What ``ovss reproduce --list`` prints: one block per table."""
    lines = []
    for t in list_tables():
        found = sum(c.value is not None for c in t.cells)
        state = "runnable" if t.spec.runnable and t.runnable_columns() else f"reference only: {t.spec.why_not or 'no ovss preset'}"
        lines += [
            f"{t.name}  [{state}]",
            f"  paper: {t.spec.paper}; {t.spec.table}",
            f"  backbone: {t.backbone}; weights: {t.spec.weights}",
            f"  datasets: {', '.join(t.datasets)}" + (f" ({t.spec.limit} images)" if t.spec.limit else ""),
            f"  data: {data_text(t)}",
            f"  columns: {', '.join(c.name + ('' if c.protocol else ' (not run)') for c in t.columns)}",
            f"  published cells: {found} of {len(t.cells)} found; GPU time: {t.gpu_estimate()}",
            "",
        ]
    return "\n".join(lines)
