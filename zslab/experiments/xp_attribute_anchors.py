"""Cross-paper experiment: expanded attribute anchors (notebook 32; issue 7 item 3, second bullet).

Question. LAAT (Li et al., "Language-Driven Anchors for Zero-Shot Adversarial Robustness", CVPR
2024) finds that CLIP text anchors are nearly parallel (the high cosine-similarity problem, Sec. 3.3,
Table 1) and fixes it with an *expansion* of the anchors around their centre (Sec. 3.4, Eq. 1-2,
Appendix C Algorithm 1), fitted on the training classes and applied unchanged to novel ones (Sec.
3.6). The class attribute vectors of attribute ZSL (φ(y) of HAS, Chen et al., "Zero-Shot Learning by
Harnessing Adversarial Samples", ACM MM 2023, Eq. 1/8) have the same problem: all entries are
non-negative, so the mean pairwise cosine of the real AwA2 and CUB matrices is about 0.58-0.59 and
that of the embedded ``shapes`` matrix about 0.47. Does expanding them help

* APN (and HAS) — the class attributes are the ZSL classifier (HAS Eq. 1/8: s(y) = g(x)ᵀVφ(y)) and
  L_LOC's regression target (Eq. 2) — on clean ZSL and under zero-shot attacks, and
* LAAT-style adversarial training (A-CE to frozen anchors, Eq. 3/4/8) with the attribute vectors as
  anchors, compared with the raw attribute anchors and with LAAT's own text anchors?

Rows (:data:`ROWS`): ``apn-raw`` / ``apn-expanded`` and ``has-raw`` / ``has-expanded`` (dataset option
``data.attributes``, :func:`zslab.data.expand_class_attributes`), ``laat-attr-raw`` /
``laat-attr-expanded`` (``encoder: attributes`` with ``expand`` false / true) and ``laat-text``
(:func:`zslab.experiments.cross_paper.laat_config`'s default: MiniLM text anchors, expanded).
Every row trains on the same shapes data and is evaluated by
:func:`zslab.experiments.cross_paper.zsl_robustness` (unseen classes only, the same attacks and ε for
every model). ``apn-raw``, ``has-raw`` and ``laat-text`` are exactly the configs of notebooks 11/31, so
their runs are shared through the run cache.

APN caveat (documented, measured in the notebook): the expanded vectors are unit-norm directions with
negative entries. The classifier (dot product) and L_CLS are unaffected in form, but L_LOC's target
(the max-pooled prototype response, Eq. 2) becomes a signed, smaller-scale vector (raw shapes rows
have norm ≈ 2.4), so the localisation term is relatively weaker at the same λ_loc, and an entry is no
longer "how much of attribute k" but a signed deviation from the centre direction. Per-image attribute
labels are left raw.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np

from zslab import ZSLabError
from zslab.anchors import AnchorExpansion, mean_pairwise_cosine, normalize
from zslab.data import ATTRIBUTE_OPTIONS, expand_class_attributes
from zslab.data.xlsa17 import _loadmat, _mat_strings, _read_names
from zslab.experiments import cross_paper as cp
from zslab.experiments import paths, runner
from zslab.experiments.runner import summarize as hs_summarize
from zslab.train.engine import read_run_config

#: Every row of the study (run table ``attribute_anchors`` of ``recipes/studies/cross_paper.yaml``)
#: with its tags: ``family`` (apn | has | laat), ``attributes`` (the class attribute matrix the model
#: sees: raw | expanded | text for text anchors), ``label`` for text, ``short`` for axes.
ROWS: dict[str, dict] = {n: r["tags"] for n, r in
                         runner.table_rows(runner.table_spec("cross_paper", "attribute_anchors")).items()}

#: Rows trained per preset. ``full`` leaves out HAS for its cost: measured on the shared 2-core CPU
#: (one torch thread, 1 epoch of the full preset), HAS takes 41.6 CPU-s per epoch against 11.9 for
#: APN, i.e. about 21 CPU-min per HAS run of 30 epochs (63 for the 3 seeds of ``has-expanded``);
#: pass ``rows=`` to add ``has-raw`` / ``has-expanded``.
PRESET_ROWS: dict[str, tuple[str, ...]] = {p: x["rows"]["attribute_anchors"] or tuple(ROWS)
                                           for p, x in cp.XP_PRESETS.items()}

#: Zero-shot robustness protocol changes per preset on top of the cross-paper preset's (attacks, ε,
#: ``max_images``): ``smoke`` attacks 10 unseen images (one per unseen class) so a fresh smoke run of
#: notebook 32 stays short; ``full`` uses the cross-paper protocol unchanged (150 images).
EVAL_OVERRIDES: dict[str, dict] = {"smoke": {"max_images": 10}, "full": {}}

#: Zero-shot robustness columns (fractions in [0, 1]) for every row.
ROBUST_METRICS = ("clean", "fgsm", "pgd20", "worst")
#: APN/HAS's own protocol (HAS Eq. 8-9; μ calibrated on the validation split).
ZSL_METRICS = ("zsl_t1", "gzsl_h")


def _row(name: str) -> dict:
    if name not in ROWS:
        raise ZSLabError(f"unknown row {name!r} of the expanded-attribute study; choose from {', '.join(ROWS)}")
    return ROWS[name]


def rows_of(preset: str, rows=None) -> tuple[str, ...]:
    cp.xp_preset(preset)
    names = tuple(PRESET_ROWS.get(preset, tuple(ROWS)) if rows is None else rows)
    for n in names:
        _row(n)
    return names


def row_config(name: str, preset: str = "smoke", seed: int = 0, overrides: dict | None = None) -> dict:
    """The engine config of row ``name`` (see :data:`ROWS`) under cross-paper ``preset``."""
    return runner.study_runs("cross_paper", "attribute_anchors", preset, [name], [seed], overrides)[0]["config"]


def study_runs(preset: str = "smoke", seeds=None, rows=None, overrides: dict | None = None) -> list[dict]:
    """``{"name", "config", "family", "attributes", "label", "short"}`` for every row × seed."""
    return runner.study_runs("cross_paper", "attribute_anchors", preset, rows_of(preset, rows), seeds, overrides)


def data_for(config: dict, data):
    """The dataset a config trains on, derived from the raw dataset ``data`` (load it once with
    :func:`zslab.experiments.cross_paper.load_xp_data`): ``data.attributes: expanded`` configs get
    :func:`zslab.data.expand_class_attributes` of it (cached on the object), others ``data``."""
    mode = (config.get("data") or {}).get("attributes", "raw")
    if mode not in ATTRIBUTE_OPTIONS:
        raise ZSLabError(f"config data.attributes={mode!r} is unknown; choose one of {', '.join(ATTRIBUTE_OPTIONS)}")
    if data is None or mode == "raw":
        return data
    if (data.meta or {}).get("attributes") == "expanded":
        raise ZSLabError("data_for expects the raw dataset (its class attributes are already expanded)")
    cached = getattr(data, "_xp_expanded", None)
    if cached is None:
        cached = expand_class_attributes(data)
        data._xp_expanded = cached  # one expansion per loaded dataset
    return cached


def train_rows(runs: list[dict], cache_dir: str | Path, data=None, progress: bool = False,
               device: str | None = None) -> list[dict]:
    """Train or reuse (run cache in ``cache_dir``) every run, each with its own dataset view
    (:func:`data_for`), via :func:`zslab.experiments.cross_paper.run_rows`; one row per run."""
    rows = []
    for run in runs:
        rows += cp.run_rows([run], cache_dir, data=data_for(run["config"], data), progress=progress, device=device)
    return rows


def protocol(preset: str) -> dict:
    """The zero-shot robustness protocol of ``preset``: ``{"attacks", "eps", "max_images", "seed"}``
    (the cross-paper preset's with :data:`EVAL_OVERRIDES`; attack seed 0 for every run)."""
    xp = cp.xp_preset(preset)
    out = {"attacks": list(xp["ablation_attacks"]), "eps": float(xp["eps"]), "max_images": xp["max_images"], "seed": 0}
    out.update(EVAL_OVERRIDES.get(preset, {}))
    return out


def robustness(rows: list[dict], preset: str = "smoke", data=None, device: str | None = None,
               progress: bool = False) -> list[dict]:
    """Add zero-shot clean/FGSM/PGD-20/worst accuracy (:data:`ROBUST_METRICS`) to each row:
    :func:`zslab.experiments.cross_paper.zsl_robustness` under :func:`protocol`, which caches each
    result next to its run (shared with notebooks 31 and 33 for the runs they also attack)."""
    proto = protocol(preset)
    out = []
    for row in rows:
        run_dir = Path(row["run_dir"])
        if not (run_dir / "config.json").is_file():
            raise ZSLabError(f"{run_dir} is not a zslab run directory (no config.json); train the row first "
                             f"(train_rows)")
        config = read_run_config(run_dir)
        res = cp.zsl_robustness(run_dir, attacks=proto["attacks"], eps=proto["eps"], max_images=proto["max_images"],
                                data=data_for(config, data), device=device, seed=proto["seed"], progress=progress)
        new = dict(row, clean=res["clean"], worst=res["worst"], n_eval=res["n"], eps=res["eps"],
                   robust_warnings=list(res.get("warnings", [])))
        for a, v in res["robust"].items():
            new[a] = v
        out.append(new)
    return out


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Mean ± sample std over seeds per row: :data:`ROBUST_METRICS` for every row, plus
    :data:`ZSL_METRICS` for APN/HAS rows and LAAT's episode metrics ``zs_clean``/``zs_pgd``
    for LAAT rows. ``{name: {"family", "attributes", "label", metric: {"mean", "std", "n"}}}``."""
    out: dict[str, dict] = {}
    names = list(dict.fromkeys(r["name"] for r in rows))
    for n in names:
        rs = [r for r in rows if r["name"] == n]
        fam = ROWS[n]["family"] if n in ROWS else rs[0].get("family")
        extra = ZSL_METRICS if fam in ("apn", "has") else ("zs_clean", "zs_pgd")
        metrics = tuple(m for m in ROBUST_METRICS + extra if all(m in r for r in rs))
        s = hs_summarize(rs, metrics=metrics)[n]
        out[n] = {"family": fam, "attributes": ROWS.get(n, {}).get("attributes"),
                  "label": ROWS.get(n, {}).get("label", n), "short": ROWS.get(n, {}).get("short", n),
                  **{m: s[m] for m in metrics}}
    return out


# ------------------------------------------------------------------------------ cosine statistics
def pairwise_cosines(matrix) -> np.ndarray:
    """Cosines ``cos(a_i, a_j)`` of the rows over the pairs ``i < j`` (a flat array)."""
    a = np.asarray(normalize(np.asarray(matrix, dtype=np.float64)))
    i, j = np.triu_indices(a.shape[0], k=1)
    return (a @ a.T)[i, j]


def cosine_stats(class_attributes, train_classes, unseen_classes=None, val_classes=None,
                 class_names=None) -> dict:
    """Mean pairwise cosine (LAAT's "average CoS", Table 1; pairs i ≠ j) of a class attribute matrix
    before and after the expansion fitted on ``train_classes`` (:class:`zslab.anchors.AnchorExpansion`,
    LAAT Appendix C Alg. 1; other classes transformed by the same map), over the train, validation,
    unseen and all classes; ``theta0_deg`` (the fit's largest training polar angle) and the largest
    polar angle of the unseen classes; ``pairs_before``/``pairs_after``: every pairwise cosine over all
    classes (for histograms)."""
    A = np.asarray(class_attributes.detach().cpu() if hasattr(class_attributes, "detach") else class_attributes,
                   dtype=np.float64)
    groups = {"train": train_classes, "val": val_classes, "unseen": unseen_classes, "all": range(A.shape[0])}
    groups = {k: np.asarray(list(v), dtype=np.int64) for k, v in groups.items() if v is not None}
    names = None if class_names is None else list(class_names)
    exp = AnchorExpansion().fit(A[groups["train"]], None if names is None else [names[i] for i in groups["train"]])
    E = exp.transform(A, names)
    stats = {"n_classes": int(A.shape[0]), "n_train": int(len(groups["train"])), "dim": int(A.shape[1]), "theta0_deg": math.degrees(exp.theta0_),
             "before": {}, "after": {}, "min_value_after": float(E.min()),
             "negative_fraction_after": float((E < 0).mean())}
    for k, idx in groups.items():
        if len(idx) >= 2:
            stats["before"][k] = mean_pairwise_cosine(A[idx])
            stats["after"][k] = mean_pairwise_cosine(E[idx])
    if "unseen" in groups and len(groups["unseen"]):
        stats["max_unseen_polar_deg"] = float(np.degrees(exp.polar_angles(A[groups["unseen"]]).max()))
    stats["pairs_before"] = pairwise_cosines(A)
    stats["pairs_after"] = pairwise_cosines(E)
    return stats


def data_cosine_stats(data) -> dict:
    """:func:`cosine_stats` of a dataset's (raw) class attribute matrix and class splits."""
    if data.class_attributes is None:
        raise ZSLabError(f"dataset '{data.name}' has no class attribute matrix")
    return cosine_stats(data.class_attributes, data.train_classes.tolist(), data.unseen_classes.tolist(),
                        data.val_classes.tolist(), data.class_names)


def xlsa17_cosine_stats(name: str, split_dir: str | Path) -> dict:
    """:func:`cosine_stats` of an xlsa17 ``att_splits.mat`` (``att``, the L2-normalised class
    attributes) in ``split_dir``: training classes ``trainclasses1.txt``, validation
    ``valclasses1.txt``, unseen ``testclasses.txt`` (the proposed split; no images needed).
    Raises :class:`ZSLabError` naming the missing file."""
    split_dir = Path(split_dir)
    need = ["att_splits.mat", "trainclasses1.txt", "valclasses1.txt", "testclasses.txt"]
    missing = [f for f in need if not (split_dir / f).is_file()]
    if missing:
        raise ZSLabError(f"{name}: {', '.join(missing)} not found in {split_dir}; put the xlsa17 proposed-split "
                         f"files of xlsa17/data/{name}/ there")
    m = _loadmat(split_dir / "att_splits.mat", "att_splits.mat", variable_names=["att", "allclasses_names"])
    classes = _mat_strings(m["allclasses_names"], "allclasses_names", split_dir / "att_splits.mat")
    A = np.asarray(m["att"], dtype=np.float64).T
    index = {c: i for i, c in enumerate(classes)}

    def ids(f):
        names = _read_names(split_dir / f)
        unknown = [c for c in names if c not in index]
        if unknown:
            raise ZSLabError(f"{split_dir / f}: classes not in att_splits.mat's allclasses_names: {unknown[:5]}")
        return [index[c] for c in names]

    stats = cosine_stats(A, ids("trainclasses1.txt"), ids("testclasses.txt"), ids("valclasses1.txt"), classes)
    stats["source"] = str(split_dir / "att_splits.mat")
    return stats


def real_cosine_stats(root: str | Path | None = None, names=("AWA2", "CUB")) -> tuple[dict, list[str]]:
    """:func:`xlsa17_cosine_stats` for each of ``names`` found under ``root`` (default
    ``$ZSLAB_DATA/xlsa17``, :func:`zslab.experiments.paths.data_root`); returns ``(stats by name,
    notes for the ones skipped)``. The package does not depend on this data: absent folders (or no
    ``$ZSLAB_DATA``) are skipped with a note."""
    root = Path(root) if root is not None else paths.data_root("xlsa17")
    if root is None:
        return {}, [f"{', '.join(names)}: ${paths.DATA_ENV} is not set; skipped ({paths.missing_data_hint('xlsa17')})"]
    out, notes = {}, []
    for n in names:
        d = root / n
        if not (d / "att_splits.mat").is_file():
            notes.append(f"{n}: {d / 'att_splits.mat'} not found; skipped (put the xlsa17 files there to include it, or "
                         f"{paths.missing_data_hint('xlsa17')})")
            continue
        out[n] = xlsa17_cosine_stats(n, d)
    return out, notes


def cosine_table(stats: dict[str, dict]) -> list[dict]:
    """Flat rows (dataset, classes, θ₀, mean cos before/after on train / unseen / all) for printing and JSON."""
    rows = []
    for name, s in stats.items():
        rows.append({"dataset": name, "classes": s["n_classes"], "dim": s["dim"], "theta0_deg": s["theta0_deg"],
                     **{f"{w}_{k}": s[w].get(k, float("nan")) for w in ("before", "after")
                        for k in ("train", "unseen", "all")},
                     "max_unseen_polar_deg": s.get("max_unseen_polar_deg", float("nan"))})
    return rows


# ------------------------------------------------------------------------------ conclusions
def _m(summary: dict, row: str, metric: str):
    e = summary.get(row, {}).get(metric)
    return None if e is None else e


def compare(summary: dict, a: str, b: str, metric: str) -> dict | None:
    """``b − a`` of ``metric`` (means, percentage points) and whether it exceeds twice the larger
    per-row std over seeds (``clear``; ``None`` with one seed: no spread to judge by)."""
    ea, eb = _m(summary, a, metric), _m(summary, b, metric)
    if ea is None or eb is None:
        return None
    diff = 100 * (eb["mean"] - ea["mean"])
    n = min(ea["n"], eb["n"])
    clear = None if n < 2 else abs(diff) > 2 * 100 * max(ea["std"], eb["std"])
    return {"a": a, "b": b, "metric": metric, "diff_pp": diff, "n": n, "clear": clear,
            "a_mean": 100 * ea["mean"], "b_mean": 100 * eb["mean"]}


COMPARISONS = (
    ("apn-raw", "apn-expanded", ("zsl_t1", "gzsl_h", "clean", "pgd20", "worst")),
    ("has-raw", "has-expanded", ("zsl_t1", "gzsl_h", "clean", "pgd20", "worst")),
    ("laat-attr-raw", "laat-attr-expanded", ("clean", "pgd20", "worst")),
    ("laat-text", "laat-attr-expanded", ("clean", "pgd20", "worst")),
    ("apn-expanded", "laat-attr-expanded", ("clean", "worst")),
)

_LABEL = {"zsl_t1": "ZSL T1 (HAS protocol)", "gzsl_h": "GZSL H", "clean": "clean unseen accuracy",
          "pgd20": "PGD-20 accuracy", "worst": "worst-case robust accuracy (per image, over the attacks run)",
          "fgsm": "FGSM accuracy", "autoattack": "AutoAttack accuracy"}


def conclusions(summary: dict, cos: dict | None = None) -> list[str]:
    """Sentences computed from the numbers (no hard-coded claims): the cosine reduction, then each
    comparison of :data:`COMPARISONS` present in ``summary`` with its difference in points and
    whether it is beyond 2 std over seeds."""
    lines = []
    for name, s in (cos or {}).items():
        lines.append(f"{name}: the expansion fitted on the {s['n_train']} training classes lowers the mean pairwise cosine of the training classes from "
                     f"{s['before']['train']:.3f} to {s['after']['train']:.3f} and of the unseen classes from "
                     f"{s['before'].get('unseen', float('nan')):.3f} to {s['after'].get('unseen', float('nan')):.3f} "
                     f"(θ₀ = {s['theta0_deg']:.1f}°).")
    for a, b, metrics in COMPARISONS:
        parts = []
        for m in metrics:
            c = compare(summary, a, b, m)
            if c is None:
                continue
            verdict = ("one seed, no spread estimate" if c["clear"] is None else
                       "beyond 2 std over seeds" if c["clear"] else "within 2 std over seeds: not distinguishable")
            parts.append(f"{_LABEL.get(m, m)} {c['a_mean']:.1f}% → {c['b_mean']:.1f}% "
                         f"({c['diff_pp']:+.1f} points; {verdict})")
        if parts:
            lines.append(f"{ROWS[b]['label']} vs {ROWS[a]['label']}: " + "; ".join(parts) + ".")
    if not any(summary.get(n, {}).get("clean", {}).get("n", 0) > 1 for n in summary):
        lines.append("Only one seed per row: these numbers show that the pipeline runs, not an effect; the full "
                     "preset (3 seeds) answers the question.")
    return lines


def results(summary: dict, cos: dict, notes: list[str], preset: str, seeds, rows: list[dict],
            figures: list[str]) -> dict:
    """The notebook's ``results.json`` content (cosine statistics without the pair lists)."""
    cos_small = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("pairs_")} for k, v in cos.items()}
    return {"preset": preset, "seeds": list(seeds), "protocol": protocol(preset),
            "cosine": cos_small, "cosine_notes": list(notes), "summary": copy.deepcopy(summary),
            "runs": [{k: r.get(k) for k in ("name", "seed", "run_dir", "cached", "train_seconds") + ROBUST_METRICS
                      + ZSL_METRICS + ("zs_clean", "zs_pgd") if k in r} for r in rows],
            "conclusions": conclusions(summary, cos), "figures": list(figures)}


__all__ = ["ROWS", "PRESET_ROWS", "EVAL_OVERRIDES", "ROBUST_METRICS", "ZSL_METRICS", "protocol", "rows_of", "row_config", "study_runs",
           "data_for", "train_rows", "robustness", "summarize", "pairwise_cosines", "cosine_stats",
           "data_cosine_stats", "xlsa17_cosine_stats", "real_cosine_stats", "cosine_table",
           "compare", "conclusions", "results", "COMPARISONS"]
