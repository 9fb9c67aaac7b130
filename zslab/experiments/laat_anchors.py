"""Anchor analyses behind notebook ``20_anchor_expansion`` (LAAT Table 1, Fig. 4, Table 8, Tables S2-S3).

LAAT = Li et al., "Language-Driven Anchors for Zero-Shot Adversarial Robustness", CVPR 2024:

* Table 1 (Sec. 3.3): average cosine similarity ("CoS") between CLIP anchors of the CIFAR-100
  classes before and after the expansion of Sec. 3.4 / Appendix C;
* Fig. 4: the expansion pictured in 3-D (polar angles around the centre stretched to the
  hemisphere);
* Table 8 / Sec. 3.3: MMC anchors (mean CoS -1/(n-1), "-0.01" for 100 classes);
* Appendix G, Tables S2-S3: semantic consistency (rank sum and top-5 ratio per super-class).

The numerical work lives in :mod:`zslab.anchors` (expansion, cosines, MMC, consistency) and
:func:`zslab.cli_anchors.anchor_stats`; this module gathers anchor sources, the paper's numbers,
the two mean-cosine conventions, and the 3-D projection used for the Fig. 4 picture.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from zslab import ZSLabError
from zslab.anchors import (AnchorExpansion, expand, load_anchor_file, mean_pairwise_cosine, mmc_anchors, normalize,
                           semantic_consistency)
from zslab.cli_anchors import anchor_stats
from zslab.config.resolve import study_presets
from zslab.data.cifarfs import CIFAR_FS_CLASSES, superclass_pairs
from zslab.experiments import paths
from zslab.paper_numbers import paper_value
from zslab.text import class_anchors

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE_S2_FRUIT",
    "PAPER_TABLE_S3",
    "PAPER_MMC_COS",
    "PRESETS",
    "CLIP_FILES",
    "clip_anchor_sources",
    "minilm_anchor_sources",
    "expansion_summary",
    "consistency_summary",
    "mmc_summary",
    "pairwise_cosines",
    "fit_sphere_basis",
    "sphere_projection",
]

# The paper's numbers live once, in zslab.paper_numbers; these are the notebooks' views of them.
_ENCODERS = ("RN50x4", "RN50x16", "ViT-B/32", "ViT-B/16", "ViT-L/14")
#: LAAT Table 1: average CoS of CIFAR-100 anchors (original, expanded) per CLIP text encoder
PAPER_TABLE1 = {e: (paper_value("LAAT Table 1", e, "Original"), paper_value("LAAT Table 1", e, "Expanded"))
                for e in _ENCODERS}
#: LAAT Table S2: ViT-B/16 ranks in the super-class *fruit and vegetables* (text: sum 219, 14/25 = 56%)
PAPER_TABLE_S2_FRUIT = {"rank_sum": paper_value("LAAT Table S2", "fruit and vegetables", "Sum of rank"),
                        "top5_ratio": paper_value("LAAT Table S2", "fruit and vegetables", "Top-5 ratio") / 100}
#: LAAT Table S3: average rank sum and top-5 ratio over the 20 CIFAR-100 super-classes
PAPER_TABLE_S3 = {e: (paper_value("LAAT Table S3", e, "Sum of rank"),
                      round(paper_value("LAAT Table S3", e, "Top-5 ratio") / 100, 4)) for e in _ENCODERS}
#: LAAT Sec. 3.3: "the CoS between ... MMC anchors (-0.01)" (100 classes: -1/99)
PAPER_MMC_COS = paper_value("LAAT Sec. 3.3", "MMC (100 classes)", "Average CoS")

#: notebook presets; the analysis is cheap, the full preset only adds more anchor sets
PRESETS = study_presets("laat_anchors")  # zslab/config/recipes/studies/laat_anchors.yaml

#: the LAAT release's CLIP ViT-B/16 text features (prompt "This is a photo of a {}", LAAT Sec. 4.1),
#: in ``$ZSLAB_DATA/clip_text_anchors``: rows 64 train, 16 val, 20 test classes (CIFAR-FS and
#: MiniImageNet splits, LAAT Sec. 4.1 "Datasets")
CLIP_FILES = {
    "CIFAR-FS": ("cifarfs_vitb16_text_features.npy", "cifarfs_classes.txt"),
    "MiniImageNet": ("miniimagenet_vitb16_text_features.npy", "miniimagenet_classes.txt"),
}
N_TRAIN = 64  # training classes of both CIFAR-FS and MiniImageNet (first rows of the anchor files)


def _source(name, encoder, dataset, anchors, class_names, fit_rows, prompt=None):
    a = np.asarray(anchors, dtype=np.float64)
    if not 2 <= fit_rows <= a.shape[0]:
        raise ZSLabError(f"{name}: fit_rows={fit_rows} must be in [2, {a.shape[0]}]")
    return {"name": name, "encoder": encoder, "dataset": dataset, "prompt": prompt, "anchors": a,
            "class_names": list(class_names), "fit_rows": int(fit_rows)}


def clip_anchor_sources(data_root=None) -> tuple[list[dict], str | None]:
    """The real CLIP ViT-B/16 anchors of ``data_root/clip_text_anchors`` (CIFAR-FS, MiniImageNet);
    ``data_root`` defaults to ``$ZSLAB_DATA`` (:func:`zslab.experiments.paths.data_root`).

    Returns ``(sources, message)``: ``sources`` is empty and ``message`` says why when the folder
    (or a file) is missing, so notebooks can skip the real-CLIP parts on a fresh machine.
    Each source is a dict with ``anchors`` (raw rows, float64), ``class_names`` and ``fit_rows=64``.
    """
    root = Path(data_root) if data_root is not None else paths.data_root()
    folder = None if root is None else root / "clip_text_anchors"
    if folder is None or not folder.is_dir():
        where = f"${paths.DATA_ENV} is not set" if root is None else f"{folder} does not exist"
        return [], (f"skipping the real CLIP ViT-B/16 anchors: {where} (put the LAAT release's "
                    "cifarfs/miniimagenet_vitb16_text_features.npy and *_classes.txt in a clip_text_anchors/ "
                    f"folder, then {paths.missing_data_hint('clip_text_anchors')})")
    out, missing = [], []
    for dataset, (npy, txt) in CLIP_FILES.items():
        if not (folder / npy).is_file() or not (folder / txt).is_file():
            missing.append(npy)
            continue
        arr, names = load_anchor_file(folder / npy, folder / txt)
        out.append(_source(f"CLIP ViT-B/16 · {dataset}", "CLIP ViT-B/16", dataset, arr, names, N_TRAIN))
    msg = f"missing in {folder}: {missing}" if missing else None
    return out, msg


def minilm_anchor_sources(prompts: Sequence[str], cache_dir=None, *, miniimagenet_classes=None,
                          device=None) -> list[dict]:
    """Offline all-MiniLM-L6-v2 anchors (:func:`zslab.text.class_anchors`) of the CIFAR-FS classes
    (embedded list, LAAT anchor-file order: 64 train first) for each prompt, and of the
    MiniImageNet classes when a class list (64 train first) is given. ``cache_dir``: where the
    encoded anchors are cached (relative: under the project folder,
    :func:`zslab.experiments.paths.work_path`; ``None``: zslab.text's default cache; ``False``: none)."""
    if not prompts:
        raise ZSLabError("minilm_anchor_sources: give at least one prompt")
    if cache_dir is not None and cache_dir is not False:
        cache_dir = paths.work_path(cache_dir)
    out = []
    sets = [("CIFAR-FS", list(CIFAR_FS_CLASSES))]
    if miniimagenet_classes is not None:
        sets.append(("MiniImageNet", list(miniimagenet_classes)))
    for dataset, names in sets:
        for k, prompt in enumerate(prompts):
            a = class_anchors("minilm", names, prompt=prompt, cache_dir=cache_dir, device=device).numpy()
            tag = "" if k == 0 else f" · prompt {prompt!r}"
            out.append(_source(f"MiniLM · {dataset}{tag}", "all-MiniLM-L6-v2", dataset, a, names, N_TRAIN, prompt))
    return out


def expansion_summary(anchors, fit_rows: int) -> dict:
    """Mean pairwise cosine before/after the expansion, in both conventions and both fits (Table 1).

    * ``train_fit``: the expansion fitted on rows ``0..fit_rows-1`` (training classes, Sec. 3.6)
      and applied to all rows: what LAAT training uses;
    * ``all_fit``: fitted on every row: what Table 1 reports for "Cifar100 categories".

    Each has ``mean_cos_before/after`` (pairs i != j) and ``..._with_self`` (full n x n matrix,
    diagonal included; the convention matching Table 1's 0.761 -> 0.195), from
    :func:`zslab.cli_anchors.anchor_stats`.  ``novel`` gives the novel rows' polar angles relative to
    the training ``theta_0`` (a novel row with ``theta > theta_0`` lands beyond the equator).
    """
    a = np.asarray(anchors, dtype=np.float64)
    n = a.shape[0]
    exp = AnchorExpansion().fit(a[:fit_rows])
    theta = exp.polar_angles(a)
    res = {"n_classes": int(n), "fit_rows": int(fit_rows), "train_fit": anchor_stats(a, fit_rows),
           "all_fit": anchor_stats(a, None)}
    if fit_rows < n:
        res["novel"] = {"max_theta_deg": float(np.degrees(theta[fit_rows:].max())),
                        "theta0_deg": float(np.degrees(exp.theta0_)),
                        "n_beyond_theta0": int((theta[fit_rows:] > exp.theta0_).sum())}
    return res


def consistency_summary(anchors, class_names: Sequence[str], fit_rows: int, groups=None) -> dict:
    """Appendix G metrics (Tables S2-S3) of the original anchors and of the expanded ones
    (fitted on the training rows, and on all rows).  ``groups``: ``(super-class, class)`` pairs,
    default the CIFAR-100 super-classes (:func:`zslab.data.cifarfs.superclass_pairs`)."""
    groups = list(superclass_pairs() if groups is None else groups)
    names = list(class_names)
    out = {}
    for key, arr in (("original", anchors),
                     ("expanded_train_fit", expand(anchors, fit_rows=fit_rows, beyond_pi="clamp")),
                     ("expanded_all_fit", expand(anchors, fit_rows=len(names)))):
        r = semantic_consistency(arr, names, groups)
        out[key] = {"rank_sum": r["rank_sum"], "top5_ratio": r["top5_ratio"], "n_groups": r["n_groups"],
                    "per_group": {g: {"rank_sum": d["rank_sum"], "top5_ratio": d["top5_ratio"]}
                                  for g, d in r["per_group"].items()}}
    return out


def mmc_summary(n_classes: int, dim: int, seed: int = 0) -> dict:
    """Mean pairwise cosine of MMC anchors (Table 8's "None (MMC)" row; -1/(n-1) exactly)."""
    m = mmc_anchors(n_classes, dim, seed=seed)
    return {"n_classes": int(n_classes), "dim": int(dim), "mean_cos": mean_pairwise_cosine(m),
            "mean_cos_with_self": mean_pairwise_cosine(m, include_self=True),
            "expected": -1.0 / (n_classes - 1), "anchors": m}


def pairwise_cosines(anchors) -> np.ndarray:
    """Cosines of the unordered pairs ``i < j`` of the L2-normalised rows (for histograms)."""
    a = normalize(np.asarray(anchors, dtype=np.float64))
    iu = np.triu_indices(a.shape[0], k=1)
    return (a @ a.T)[iu]


def fit_sphere_basis(train_anchors, center) -> np.ndarray:
    """Two orthonormal directions orthogonal to ``center``: the top-2 principal directions of the
    training anchors' azimuthal unit directions ``u_i = (a_i - <a_i,v> v)/||...||`` (uncentred PCA,
    i.e. the top right-singular vectors).  Returns ``(2, dim)``."""
    a = normalize(np.asarray(train_anchors, dtype=np.float64))
    v = np.asarray(center, dtype=np.float64)
    v = v / np.linalg.norm(v)
    if a.shape[1] < 3:
        raise ZSLabError(f"a 3-D picture needs anchors of dimension >= 3, got {a.shape[1]}")
    w = a - np.outer(a @ v, v)
    nrm = np.linalg.norm(w, axis=1, keepdims=True)
    u = np.divide(w, nrm, out=np.zeros_like(w), where=nrm > 1e-12)
    _, _, vt = np.linalg.svd(u, full_matrices=False)
    basis = vt[:2]
    basis = basis - np.outer(basis @ v, v)  # exact orthogonality to v despite rounding
    if np.linalg.matrix_rank(basis, tol=1e-9) < 2:
        raise ZSLabError("the training anchors span fewer than 2 directions around the centre: no 3-D picture")
    q, _ = np.linalg.qr(basis.T)
    return q.T[:2]


def sphere_projection(anchors, center, basis) -> np.ndarray:
    """3-D points on the unit sphere for the Fig. 4 picture: ``(cos t, sin t * w/||w||)`` where
    ``t`` is each anchor's polar angle around ``center`` (kept exactly) and ``w`` the coordinates of
    its azimuthal direction in ``basis`` (2 orthonormal directions orthogonal to the centre; the
    azimuth is taken in that plane).  Because the expansion keeps the azimuthal direction and only
    stretches ``t`` (Eq. 7), the same projection before and after shows exactly the polar-angle
    stretch.  Anchors lying in ``span(center, basis)`` are mapped isometrically (all pairwise
    angles kept); an azimuth orthogonal to the plane gets azimuth 0."""
    a = normalize(np.asarray(anchors, dtype=np.float64))
    v = np.asarray(center, dtype=np.float64)
    v = v / np.linalg.norm(v)
    b = np.asarray(basis, dtype=np.float64)
    if b.shape != (2, a.shape[1]):
        raise ZSLabError(f"basis must have shape (2, {a.shape[1]}), got {b.shape}")
    c = np.clip(a @ v, -1.0, 1.0)
    w = a - np.outer(c, v)
    t = np.arctan2(np.linalg.norm(w, axis=1), c)
    xy = w @ b.T
    r = np.linalg.norm(xy, axis=1, keepdims=True)
    xy = np.divide(xy, r, out=np.tile([1.0, 0.0], (len(a), 1)), where=r > 1e-12)
    return np.column_stack([np.cos(t), np.sin(t)[:, None] * xy])
