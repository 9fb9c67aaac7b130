"""Figures for LAAT's anchor analyses (Table 1, Fig. 4, Table 8, Tables S2-S3); each returns a Figure.

The numbers come from :mod:`zslab.anchors` and :mod:`zslab.experiments.laat_anchors`. The rank
block (:func:`rank_block`) is a seaborn heat map: annotated cells with a text colour that contrasts
with each cell.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

__all__ = ["expansion_sphere", "cosine_histograms", "polar_angle_histograms", "mean_cosine_bars",
           "consistency_bars", "rank_block"]

_TRAIN_C, _NOVEL_C = "tab:blue", "tab:orange"


def _sphere(ax):
    u, w = np.mgrid[0:2 * np.pi:30j, 0:np.pi:16j]
    ax.plot_wireframe(np.cos(w), np.sin(w) * np.cos(u), np.sin(w) * np.sin(u), color="0.85", linewidth=0.4)
    t = np.linspace(0, 2 * np.pi, 100)
    ax.plot(np.zeros_like(t), np.cos(t), np.sin(t), color="0.4", linewidth=0.8, linestyle="--")  # equator
    ax.quiver(0, 0, 0, 1.25, 0, 0, color="k", arrow_length_ratio=0.08, linewidth=1.2)
    ax.text(1.32, 0, 0, "centre v", fontsize=8)
    ax.set_xlim(-1, 1); ax.set_ylim(-1, 1); ax.set_zlim(-1, 1)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("along v"); ax.set_ylabel("PC 1 ⊥ v"); ax.set_zlabel("PC 2 ⊥ v")


def expansion_sphere(before: np.ndarray, after: np.ndarray, train_mask: Sequence[bool], *,
                     subtitles: Sequence[str] = ("before expansion", "after expansion"),
                     title: str = "Anchor expansion on the unit sphere (LAAT Fig. 4)", elev: float = 20,
                     azim: float = -35):
    """Two 3-D panels (before / after) of unit-sphere points ``(n, 3)`` whose first axis is the
    centre ``v`` (from :func:`zslab.experiments.laat_anchors.sphere_projection`); training classes
    blue, novel classes orange, the equator (polar angle 90 deg) dashed."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    m = np.asarray(train_mask, bool)
    if before.shape != after.shape or before.ndim != 2 or before.shape[1] != 3 or len(m) != len(before):
        raise ValueError(f"expected two (n, 3) arrays and n flags, got {before.shape}, {after.shape}, {len(m)}")
    fig = plt.figure(figsize=(11, 5.2))
    for k, (pts, sub) in enumerate(zip((before, after), subtitles)):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        _sphere(ax)
        ax.scatter(*pts[m].T, s=12, c=_TRAIN_C, label=f"training classes ({m.sum()})", depthshade=False)
        if (~m).any():
            ax.scatter(*pts[~m].T, s=16, c=_NOVEL_C, marker="^", label=f"novel classes ({(~m).sum()})",
                       depthshade=False)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(sub)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cosine_histograms(before: np.ndarray, after: np.ndarray, *, mmc_cos: float | None = None, bins: int = 40,
                      title: str = "Pairwise cosine between anchors"):
    """Histograms of pairwise cosines (pairs i < j) before and after the expansion, their means as
    vertical lines, and the MMC value ``-1/(n-1)`` for comparison."""
    before, after = np.asarray(before, float).ravel(), np.asarray(after, float).ravel()
    fig, ax = plt.subplots(figsize=(7, 4))
    edges = np.linspace(min(before.min(), after.min(), -0.1 if mmc_cos is None else mmc_cos - 0.05), 1.0, bins + 1)
    for x, lab, c in ((before, "original", "tab:red"), (after, "expanded", "tab:green")):
        ax.hist(x, bins=edges, alpha=0.55, color=c, label=f"{lab} (mean {x.mean():.3f})")
        ax.axvline(x.mean(), color=c, linewidth=1.5)
    if mmc_cos is not None:
        ax.axvline(mmc_cos, color="k", linestyle=":", linewidth=1.5, label=f"MMC anchors ({mmc_cos:.3f})")
    ax.set_xlabel("cosine similarity cos(a_i, a_j), i < j")
    ax.set_ylabel("number of pairs")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def polar_angle_histograms(theta_before: np.ndarray, theta_after: np.ndarray, train_mask: Sequence[bool],
                           theta0: float, *, step_deg: float = 5.0,
                           title: str = "Polar angles around the training centre"):
    """Polar angles (degrees) of training and novel anchors before and after the expansion, in
    bins of ``step_deg`` whose right edges are closed (so the farthest training anchor, at 90 deg
    up to rounding, counts below the equator); the training maximum ``theta0`` (radians) maps to 90 deg."""
    tb, ta = np.degrees(np.asarray(theta_before, float)), np.degrees(np.asarray(theta_after, float))
    m = np.asarray(train_mask, bool)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    top = max(100.0, step_deg * np.ceil(max(tb.max(), ta.max()) / step_deg - 1e-6) + step_deg)
    edges = np.arange(0.0, top + step_deg / 2, step_deg) + 1e-6
    edges[0] = 0.0
    for ax, th, sub in ((axes[0], tb, "before expansion"), (axes[1], ta, "after expansion")):
        ax.hist(th[m], bins=edges, alpha=0.7, color=_TRAIN_C, label="training classes")
        if (~m).any():
            ax.hist(th[~m], bins=edges, alpha=0.7, color=_NOVEL_C, label="novel classes")
        ax.axvline(90, color="k", linestyle="--", linewidth=1, label="equator (90°)")
        ax.set_xlabel("polar angle θ to the centre v (degrees)")
        ax.set_title(sub)
    axes[0].axvline(np.degrees(theta0), color="tab:red", linewidth=1.2, label=f"θ₀ = {np.degrees(theta0):.1f}°")
    axes[0].set_ylabel("number of anchors")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def mean_cosine_bars(rows: Mapping[str, Mapping[str, float]], *, title: str = "Average CoS between anchors"):
    """Grouped bars: for each row label, ``{"original": x, "expanded": y}`` (either may be missing,
    e.g. the MMC row has only ``original``); values printed on the bars."""
    labels = list(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(labels) + 2), 4.2))
    x = np.arange(len(labels))
    for k, (key, c) in enumerate((("original", "tab:red"), ("expanded", "tab:green"))):
        vals = [rows[r].get(key, np.nan) for r in labels]
        bars = ax.bar(x + (k - 0.5) * 0.38, vals, width=0.38, color=c, label=key)
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + (0.01 if v >= 0 else -0.04), f"{v:.3f}",
                        ha="center", fontsize=7)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("mean pairwise cosine")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def consistency_bars(per_group: Mapping[str, Mapping[str, Mapping[str, float]]], *, metric: str = "rank_sum",
                     title: str = "Semantic consistency per CIFAR-100 super-class (LAAT App. G)"):
    """Horizontal bars of one metric (``rank_sum`` or ``top5_ratio``) per super-class, one bar per
    anchor set: ``per_group[set_label][group] = {"rank_sum": ..., "top5_ratio": ...}``."""
    sets = list(per_group)
    groups = sorted(set().union(*[set(per_group[s]) for s in sets]))
    fig, ax = plt.subplots(figsize=(8, 0.18 * len(groups) * max(1, len(sets)) + 1.5))
    y = np.arange(len(groups))
    h = 0.8 / max(1, len(sets))
    for k, s in enumerate(sets):
        vals = [per_group[s].get(g, {}).get(metric, np.nan) for g in groups]
        vals = [100 * v for v in vals] if metric == "top5_ratio" else vals
        ax.barh(y + (k - (len(sets) - 1) / 2) * h, vals, height=h, label=s)
    ax.set_yticks(y)
    ax.set_yticklabels([g.replace("_", " ") for g in groups], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel({"rank_sum": "sum of the 5×5 within-group ranks (lower = more consistent)",
                   "top5_ratio": "top-5 ratio of within-group ranks (%, higher = more consistent)"}.get(metric, metric))
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def rank_block(ranks: np.ndarray, classes: Sequence[str], *, title: str = "Within-group cosine ranks (LAAT Table S2)"):
    """A ``k x k`` block of cosine ranks (row class ranks column classes; 0 = itself) as an annotated
    seaborn heat map; ranks <= 4 (the "top-5") are printed in bold."""
    r = np.asarray(ranks)
    names = [c.replace("_", " ") for c in classes]
    fig, ax = plt.subplots(figsize=(1.0 * len(classes) + 2, 0.8 * len(classes) + 1.2))
    sns.heatmap(r.astype(int), ax=ax, cmap="viridis_r", annot=True, fmt="d", annot_kws={"fontsize": 9},
                xticklabels=names, yticklabels=names, cbar_kws={"label": "rank"})
    for t in ax.texts:  # seaborn writes one text per cell, at the cell's centre
        x, y = t.get_position()
        if r[int(y), int(x)] <= 4:
            t.set_fontweight("bold")
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_yticklabels(names, rotation=0)
    ax.set_xlabel("column class"); ax.set_ylabel("row class (ranks the others by cosine)")
    ax.set_title(f"{title}\nsum {int(r.sum())}, top-5 ratio {np.mean(r <= 4):.0%}")
    fig.tight_layout()
    return fig
