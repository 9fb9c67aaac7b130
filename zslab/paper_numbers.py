"""The two papers' published numbers, as data, and which notebook results they sit beside.

Every number below is copied from the papers' texts (HAS: Chen et al.,
"Zero-Shot Learning by Harnessing Adversarial Samples", ACM MM 2023; LAAT: Li et al.,
"Language-Driven Anchors for Zero-Shot Adversarial Robustness", CVPR 2024), with the table,
row and column it comes from.  Accuracies are in percent as printed; cosines and rank sums as
printed.  Where the text is ambiguous the number is left out and the table's ``notes`` say so.

:data:`PAPER_TABLES` holds the tables (key -> :class:`PaperTable`); :data:`NOTEBOOK_COMPARISONS`
maps a notebook name to the small list of :class:`Comparison` entries that say which rows and
metrics of its ``results.json`` correspond to which paper rows and columns.  ``zslab.report``
renders them side by side; notebooks without an entry show measured values only.

Not included, because no notebook reproduces them: HAS Fig. 4 (a plot, no numbers in the text);
LAAT Tables 2, 3, 7, 8 (5-way comparisons with few-shot methods, ImageNet-1K GZSL transfer,
image models, text encoders).
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HAS_CITATION", "LAAT_CITATION", "PaperTable", "Comparison", "PAPER_TABLES", "NOTEBOOK_COMPARISONS",
           "paper_value", "comparisons_for"]

HAS_CITATION = ("Chen et al., \"Zero-Shot Learning by Harnessing Adversarial Samples\" (HAS), ACM MM 2023")
LAAT_CITATION = ("Li et al., \"Language-Driven Anchors for Zero-Shot Adversarial Robustness\" (LAAT), CVPR 2024")


@dataclass(frozen=True)
class PaperTable:
    """One published table (or the part of it zslab compares with).

    ``values[row][group][column]``: ``group`` is a dataset column group (HAS: CUB / AwA2 / SUN) or
    ``""`` for tables without groups.  A cell absent from ``values`` is not published (or left out
    as ambiguous, see ``notes``).  ``percent``: the columns printed in percent; measured fractions
    are multiplied by 100 before they are shown next to them.
    """

    key: str
    citation: str
    where: str                       # "Table 1", "Appendix G, Table S3", ...
    caption: str
    setting: str                     # what the published numbers were measured on
    groups: tuple[str, ...]
    columns: tuple[str, ...]
    values: dict[str, dict[str, dict[str, float]]]
    percent: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    decimals: dict[str, int] = field(default_factory=dict)   # digits printed per column (default 2)

    def cite(self, row: str | None = None, group: str | None = None, column: str | None = None) -> str:
        """``"<paper>, <table>, row '...', column '...'"``."""
        parts = [self.citation, self.where]
        if row is not None:
            parts.append(f"row '{row}'")
        if column is not None:
            parts.append(f"column '{(group + ' ') if group else ''}{column}'")
        return ", ".join(parts)


@dataclass(frozen=True)
class Comparison:
    """Which measured values of a notebook's ``results.json`` sit beside which paper cells.

    ``at``: the key path in ``results.json`` to a dict of measured rows; ``rows``: measured row
    key -> paper row of :attr:`table`; ``metrics``: measured metric (a key, or a dotted path
    inside the row; a ``{"mean", "std", "n"}`` dict counts as its mean) -> paper column.  The
    paper column is shown for every group of the table (HAS: CUB, AwA2, SUN).
    """

    table: str
    at: tuple[str, ...]
    rows: dict[str, str]
    metrics: dict[str, str]
    note: str = ""
    measured_on: str = ""


def _grid(groups, columns, rows: dict[str, tuple]) -> dict:
    """``{row: flat tuple over groups x columns}`` -> nested values; ``None`` = not published."""
    out = {}
    for row, flat in rows.items():
        assert len(flat) == len(groups) * len(columns), row
        cells = {}
        for gi, g in enumerate(groups):
            vals = {c: flat[gi * len(columns) + ci] for ci, c in enumerate(columns)}
            cells[g] = {c: v for c, v in vals.items() if v is not None}
        out[row] = cells
    return out


_HAS_DS = ("CUB", "AwA2", "SUN")
_HAS_SETTING = "ResNet-101 backbone, 448 px images; CUB / AwA2 / SUN proposed splits (xlsa17)"
_LAAT_FS = "Conv4-512 on CIFAR-FS, 5-way zero-shot episodes on novel classes, ε = 8/255, robust = PGD-20"

PAPER_TABLES: dict[str, PaperTable] = {t.key: t for t in (
    PaperTable(
        key="HAS Table 1", citation=HAS_CITATION, where="Table 1",
        caption="ZSL (T1) and GZSL (U, S, H) accuracy (%), APN vs HAS",
        setting=_HAS_SETTING + "; APN: 224 px, APN*: 448 px",
        groups=_HAS_DS, columns=("T1", "U", "S", "H"),
        values=_grid(_HAS_DS, ("T1", "U", "S", "H"), {
            "APN": (72.0, 65.3, 69.3, 67.2, 68.4, 56.5, 78.0, 65.5, 61.6, 41.9, 34.0, 37.6),
            "APN*": (75.6, 68.6, 71.6, 70.1, 69.8, 60.1, 86.5, 71.0, 62.6, 42.8, 37.7, 40.1),
            "HAS": (76.5, 69.6, 74.1, 71.8, 71.4, 63.1, 87.3, 73.3, 63.2, 42.8, 38.9, 40.8),
        }),
        percent=frozenset({"T1", "U", "S", "H"}), decimals=dict.fromkeys(("T1", "U", "S", "H"), 1),
        notes=("Only the APN, APN* and HAS rows are kept (the other methods are not reproduced).",
               "The text's AwA2 header lost its 'U' label ('T1 · S H'); every row has four AwA2 values, read in "
               "the T1 U S H order of the CUB and SUN headers.")),
    PaperTable(
        key="HAS Table 2", citation=HAS_CITATION, where="Table 2",
        caption="Ablation of the generator's loss terms: ZSL T1 and GZSL H (%)",
        setting=_HAS_SETTING, groups=_HAS_DS, columns=("T1", "H"),
        values=_grid(_HAS_DS, ("T1", "H"), {
            "Baseline (APN*)": (75.6, 70.1, 69.8, 71.0, 62.6, 40.1),
            "+L_CLS": (74.3, 68.9, 68.6, 70.2, 59.2, 37.8),
            "+L_CLS+L_ROB": (74.7, 68.5, 68.5, 69.3, 60.1, 37.9),
            "+L_CLS+L_DIV": (69.2, 68.2, 67.6, 69.9, 60.8, 38.4),
            "+L_CLS+L_ROB+L_REL": (76.0, 71.5, 71.2, 72.6, 62.9, 40.3),
            "+L_CLS+L_DIV+L_REL": (76.1, 70.9, 70.7, 72.8, 61.8, 40.7),
            "HAS (ours)": (76.5, 71.8, 71.4, 73.3, 63.2, 40.8),
        }),
        percent=frozenset({"T1", "H"}), decimals=dict.fromkeys(("T1", "H"), 1)),
    PaperTable(
        key="HAS Table 3", citation=HAS_CITATION, where="Table 3",
        caption="APN trained with traditional augmentations: CZSL (T1) and GZSL (%)",
        setting="APN (the 224 px baseline of Table 1); CUB / AwA2 / SUN",
        groups=_HAS_DS, columns=("CZSL", "GZSL"),
        values=_grid(_HAS_DS, ("CZSL", "GZSL"), {
            "Baseline": (72.0, 67.2, 68.4, 67.4, 61.6, 37.6),
            "ColorJitter0.2": (66.8, 61.1, 66.5, 65.1, 59.9, 37.4),
            "ColorJitter0.4": (67.3, 60.9, 66.6, 64.9, 59.7, 37.0),
            "GrayScale0.2": (69.6, 65.1, 68.0, 66.8, 60.1, 37.1),
            "GrayScale0.4": (68.4, 63.3, 66.6, 66.0, 59.9, 37.0),
            "GaussianBlur(L)": (71.1, 65.9, 69.1, 65.7, 60.8, 37.0),
            "GaussianBlur(H)": (68.7, 62.1, 62.5, 56.2, 58.5, 34.3),
            "RandomRotate": (65.8, 59.5, 56.6, 54.8, 46.7, 21.7),
            "RandomCrop": (67.0, 60.8, 60.8, 58.8, 36.1, 14.9),
            "CutOut": (70.5, 65.5, 62.5, 60.2, 60.1, 35.2),
            "MixUp": (66.4, 59.5, 38.9, 39.1, 51.8, 28.2),
            "CutMix": (68.5, 62.4, 53.6, 42.0, 57.2, 29.8),
            "SnapMix": (69.0, 61.1, 51.3, 45.4, 56.5, 30.1),
        }),
        percent=frozenset({"CZSL", "GZSL"}), decimals=dict.fromkeys(("CZSL", "GZSL"), 1),
        notes=("The caption says 'on the CUB dataset' but the table has CUB, AwA2 and SUN columns.",
               "GZSL is read as H: the Baseline row equals Table 1's APN H on CUB (67.2) and SUN (37.6); on AwA2 "
               "it prints 67.4 where Table 1 prints 65.5 (the paper's own inconsistency, copied as printed).")),
    PaperTable(
        key="LAAT Table 1", citation=LAAT_CITATION, where="Table 1",
        caption="Average cosine (CoS) between CIFAR-100 text anchors before and after the expansion",
        setting="CLIP text encoders, CIFAR-100 class names, prompt 'This is a photo of a {}'",
        groups=("",), columns=("Original", "Expanded"),
        values={enc: {"": {"Original": o, "Expanded": e}} for enc, (o, e) in {
            "RN50x4": (0.700, 0.238), "RN50x16": (0.710, 0.253), "ViT-B/32": (0.779, 0.199),
            "ViT-B/16": (0.761, 0.195), "ViT-L/14": (0.746, 0.222)}.items()},
        decimals={"Original": 3, "Expanded": 3},
        notes=("Transposed: the paper's rows (Original, Expanded) are columns here and its encoder columns rows.",
               "The paper does not say whether the mean includes the diagonal or which classes the expansion is "
               "fitted on; 0.761 -> 0.195 matches the mean over the full matrix (diagonal included) with the "
               "expansion fitted on all 100 classes (notebook 20).")),
    PaperTable(
        key="LAAT Sec. 3.3", citation=LAAT_CITATION, where="Sec. 3.3",
        caption="Average CoS between MMC anchors ('close to 0 (e.g., -0.01 on Cifar100)')",
        setting="Max-Mahalanobis centres for the 100 CIFAR-100 classes",
        groups=("",), columns=("Average CoS",),
        values={"MMC (100 classes)": {"": {"Average CoS": -0.01}}}),
    PaperTable(
        key="LAAT Table S2", citation=LAAT_CITATION, where="Appendix G, Table S2 (totals from the text)",
        caption="Semantic consistency of the super-class 'fruit and vegetables' (ViT-B/16 anchors)",
        setting="CLIP ViT-B/16 anchors of the 100 CIFAR-100 classes",
        groups=("",), columns=("Sum of rank", "Top-5 ratio"),
        values={"fruit and vegetables": {"": {"Sum of rank": 219, "Top-5 ratio": 56.0}}},
        percent=frozenset({"Top-5 ratio"}), decimals={"Sum of rank": 0, "Top-5 ratio": 1},
        notes=("Appendix G's text gives the totals of Table S2's 5x5 ranks: sum 219 and 14/25 = 56%; the ranks "
               "printed in Table S2 add up to the same.",)),
    PaperTable(
        key="LAAT Table S3", citation=LAAT_CITATION, where="Appendix G, Table S3",
        caption="Average rank sum and top-5 ratio over the 20 CIFAR-100 super-classes",
        setting="CLIP text encoders, original (not expanded) anchors of the 100 CIFAR-100 classes",
        groups=("",), columns=("Sum of rank", "Top-5 ratio"),
        values={enc: {"": {"Sum of rank": s, "Top-5 ratio": r}} for enc, (s, r) in {
            "RN50x4": (332, 54.6), "RN50x16": (319, 54.4), "ViT-B/32": (286, 60.6), "ViT-B/16": (225, 61.4),
            "ViT-L/14": (284, 58.2)}.items()},
        percent=frozenset({"Top-5 ratio"}), decimals={"Sum of rank": 0, "Top-5 ratio": 1}),
    PaperTable(
        key="LAAT Table 4", citation=LAAT_CITATION, where="Table 4",
        caption="Zero-shot accuracy (%) with the original CLIP anchors and different objectives",
        setting=_LAAT_FS + "; original (not expanded) anchors, no smoothness loss",
        groups=("",), columns=("Clean", "Robust"),
        values={r: {"": {"Clean": c, "Robust": a}} for r, (c, a) in {
            "Eucl": (39.17, 28.04), "θ": (37.92, 27.84), "cosθ": (41.91, 27.91)}.items()},
        percent=frozenset({"Clean", "Robust"})),
    PaperTable(
        key="LAAT Table 5", citation=LAAT_CITATION, where="Table 5",
        caption="Ablation of the expansion (EXP), A-CE and the smoothness loss (SM): zero-shot accuracy (%)",
        setting=_LAAT_FS,
        groups=("",), columns=("Clean", "Robust"),
        values={r: {"": {"Clean": c, "Robust": a}} for r, (c, a) in {
            "none (cosθ)": (41.91, 27.91), "EXP (cosθ)": (46.98, 32.71), "EXP + A-CE": (54.02, 37.69),
            "EXP + A-CE + SM": (55.60, 40.12)}.items()},
        percent=frozenset({"Clean", "Robust"}),
        notes=("The text's check-mark columns lost their alignment; the rows are read from the caption ('the "
               "first two lines were the results obtained with cosθ') and Sec. 4.4 ('EXP and EXP + A-CE').",)),
    PaperTable(
        key="LAAT Table 6", citation=LAAT_CITATION, where="Table 6",
        caption="Smoothness loss (SM) vs TRADES as the consistency term: zero-shot accuracy (%)",
        setting=_LAAT_FS + "; expanded anchors, A-CE",
        groups=("",), columns=("Clean", "Robust"),
        values={r: {"": {"Clean": c, "Robust": a}} for r, (c, a) in {
            "TRADES 1/λ = 1": (55.26, 19.22), "TRADES 1/λ = 6": (55.82, 25.02), "SM α = 1.0": (55.62, 39.95),
            "SM α = 3.0": (55.60, 40.12), "SM α = 6.0": (53.01, 40.29)}.items()},
        percent=frozenset({"Clean", "Robust"})),
    PaperTable(
        key="LAAT Table S1", citation=LAAT_CITATION, where="Appendix D, Table S1",
        caption="Temperature τ of A-CE (Eq. 8): zero-shot accuracy (%)",
        setting=_LAAT_FS + "; expanded anchors, A-CE and smoothness loss",
        groups=("",), columns=("Clean", "Robust"),
        values={r: {"": {"Clean": c, "Robust": a}} for r, (c, a) in {
            "τ = 0.03": (44.37, 32.51), "τ = 0.07": (51.43, 35.23), "τ = 0.2": (58.80, 37.52),
            "τ = 0.5": (56.07, 40.17), "τ = 1.0": (55.60, 40.12)}.items()},
        percent=frozenset({"Clean", "Robust"})),
)}

_HAS_METRICS = {"zsl_t1": "T1", "gzsl_u": "U", "gzsl_s": "S", "gzsl_h": "H"}
_LAAT_METRICS = {"zs_clean": "Clean", "zs_pgd": "Robust"}
_SHAPES = "the embedded shapes dataset (smoke: a tiny pipeline check; full: 3 seeds)"
_CLIP_CIFAR = "CLIP ViT-B/16 · CIFAR-FS"   # notebook 20's source name for the released anchors

#: notebook name -> the comparisons its report section shows (explicit, small; see :class:`Comparison`)
NOTEBOOK_COMPARISONS: dict[str, tuple[Comparison, ...]] = {
    "11_has_vs_apn": (
        Comparison("HAS Table 1", ("summary",), {"baseline": "APN*", "has": "HAS"}, _HAS_METRICS,
                   note="zslab's APN baseline is compared with APN*, the baseline HAS reports in Tables 1–2.",
                   measured_on=_SHAPES),
        Comparison("HAS Table 2", ("summary",),
                   {"baseline": "Baseline (APN*)", "cls": "+L_CLS", "cls+rob": "+L_CLS+L_ROB",
                    "cls+div": "+L_CLS+L_DIV", "cls+rob+rel": "+L_CLS+L_ROB+L_REL",
                    "cls+div+rel": "+L_CLS+L_DIV+L_REL", "has": "HAS (ours)"},
                   {"zsl_t1": "T1", "gzsl_h": "H"}, measured_on=_SHAPES),
    ),
    "10_semantic_distortion": (
        Comparison("HAS Table 3", ("table3",),
                   {"none": "Baseline", "colorjitter0.2": "ColorJitter0.2", "colorjitter0.4": "ColorJitter0.4",
                    "grayscale0.2": "GrayScale0.2", "grayscale0.4": "GrayScale0.4", "blur_low": "GaussianBlur(L)",
                    "blur_high": "GaussianBlur(H)", "rotate": "RandomRotate", "crop_half": "RandomCrop",
                    "cutout": "CutOut", "mixup": "MixUp", "cutmix": "CutMix", "snapmix": "SnapMix"},
                   {"zsl_t1": "CZSL", "gzsl_h": "GZSL"}, measured_on=_SHAPES),
    ),
    "20_anchor_expansion": (
        Comparison("LAAT Table 1", ("table1",), {_CLIP_CIFAR: "ViT-B/16"},
                   {"all_fit.mean_cos_before_with_self": "Original", "all_fit.mean_cos_after_with_self": "Expanded"},
                   note="Measured: mean over the full cosine matrix (diagonal included), expansion fitted on all 100 "
                        "classes: the convention that reproduces the paper.",
                   measured_on="the LAAT authors' released CLIP ViT-B/16 CIFAR-FS anchors (100 classes)"),
        Comparison("LAAT Sec. 3.3", ("mmc",), {"100": "MMC (100 classes)"}, {"mean_cos": "Average CoS"},
                   note="Measured: mean over pairs i ≠ j (exactly −1/99 for a regular simplex).",
                   measured_on="zslab.anchors MMC anchors, 100 classes"),
        Comparison("LAAT Table S3", ("consistency",), {_CLIP_CIFAR: "ViT-B/16"},
                   {"original.rank_sum": "Sum of rank", "original.top5_ratio": "Top-5 ratio"},
                   measured_on="the released CLIP ViT-B/16 CIFAR-FS anchors"),
        Comparison("LAAT Table S2", ("consistency", _CLIP_CIFAR, "original", "per_group"),
                   {"fruit_and_vegetables": "fruit and vegetables"},
                   {"rank_sum": "Sum of rank", "top5_ratio": "Top-5 ratio"},
                   measured_on="the released CLIP ViT-B/16 CIFAR-FS anchors"),
    ),
    "21_laat_robustness": (
        Comparison("LAAT Table 5", ("robustness",), {"expanded": "EXP + A-CE", "expanded+sm": "EXP + A-CE + SM"},
                   _LAAT_METRICS, note="The anchors × smoothness study: its expanded rows are Table 5's last two.",
                   measured_on="smoke: shapes; full: CIFAR-10 with cat, dog, ship novel (3-way)"),
        Comparison("LAAT Table 4", ("ablations", "table5", "summary"), {"baseline": "Eucl"}, _LAAT_METRICS,
                   note="zslab's Table 5 'baseline' (original anchors, Euclidean objective, no SM) is the setting of "
                        "the paper's Table 4 'Eucl' row.",
                   measured_on="smoke: shapes; full: CIFAR-10 (3-way)"),
        Comparison("LAAT Table 5", ("ablations", "table5", "summary"),
                   {"exp+ace": "EXP + A-CE", "exp+ace+sm": "EXP + A-CE + SM"}, _LAAT_METRICS,
                   note="zslab's rows without expansion ('ace', 'ace+sm') have no published counterpart.",
                   measured_on="smoke: shapes; full: CIFAR-10 (3-way)"),
        Comparison("LAAT Table 4", ("ablations", "table4", "summary"),
                   {"euclid": "Eucl", "theta": "θ", "cos": "cosθ"}, _LAAT_METRICS,
                   note="Not the same setting: the paper's Table 4 uses the original anchors without SM, zslab's "
                        "Table 4 rows use expanded anchors and α = 3; the paper column is context only.",
                   measured_on="smoke: shapes; full: CIFAR-10 (3-way)"),
        Comparison("LAAT Table 5", ("ablations", "table4", "summary"), {"ace": "EXP + A-CE + SM"}, _LAAT_METRICS,
                   note="zslab's Table 4 'ace' row (expanded anchors, A-CE, α = 3) is LAAT's full method.",
                   measured_on="smoke: shapes; full: CIFAR-10 (3-way)"),
        Comparison("LAAT Table 6", ("ablations", "table6", "summary"),
                   {"trades1": "TRADES 1/λ = 1", "trades6": "TRADES 1/λ = 6", "sm1": "SM α = 1.0",
                    "sm3": "SM α = 3.0"}, _LAAT_METRICS, measured_on="smoke: shapes; full: CIFAR-10 (3-way)"),
        Comparison("LAAT Table S1", ("ablations", "tableS1", "summary"),
                   {"tau=0.03": "τ = 0.03", "tau=0.07": "τ = 0.07", "tau=0.2": "τ = 0.2", "tau=0.5": "τ = 0.5",
                    "tau=1": "τ = 1.0"}, _LAAT_METRICS, measured_on="smoke: shapes; full: CIFAR-10 (3-way)"),
    ),
}


def paper_value(table: str, row: str, column: str, group: str = "") -> float | None:
    """The published number, or ``None`` where the paper has none (or it was left out as ambiguous)."""
    return PAPER_TABLES[table].values.get(row, {}).get(group, {}).get(column)


def comparisons_for(notebook: str) -> tuple[Comparison, ...]:
    """The comparisons of ``notebook`` (its name without ``.ipynb``); ``()`` when it has none."""
    return NOTEBOOK_COMPARISONS.get(notebook, ())
