"""Figures of the LAAT paper's training experiments (notebook ``21_laat_robustness``); each
function returns a titled, labelled matplotlib Figure.

Inputs are the outputs of :mod:`zslab.experiments.laat_study` (accuracies as fractions,
shown in %): :func:`anchor_curves` ← ``learning_curves`` (LAAT Fig. 3), :func:`ablation_bars`
and :func:`ablation_table` ← ``summarize`` (Tables 4, 5, 6, S1), :func:`few_shot_plot` ←
``few_shot_curves`` (Fig. 5).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from zslab.viz.has_plots import summary_table

__all__ = ["LAAT_METRIC_LABELS", "anchor_curves", "ablation_bars", "ablation_table", "few_shot_plot"]

LAAT_METRIC_LABELS = {"zs_clean": "ZS clean (%)", "zs_pgd": "ZS PGD (%)", "gzsl_clean": "GZSL clean (%)",
                      "gzsl_pgd": "GZSL PGD (%)", "gzsl_cs_u": "GZSL-CS U (%)", "gzsl_cs_s": "GZSL-CS S (%)",
                      "gzsl_cs_h": "GZSL-CS H (%)", "gzsl_cs_h_uncalibrated": "GZSL H, μ=0 (%)"}


def anchor_curves(curves: dict[str, dict], title: str = "Validation zero-shot accuracy per epoch (LAAT Fig. 3)",
                  chance: float | None = None):
    """Fig. 3: one line per anchor kind (mean over seeds, ±std band), accuracy (%) vs epoch;
    ``chance`` (a fraction) is drawn as a dotted line."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ep = np.asarray(c["epoch"])
        m, s = 100 * np.asarray(c["mean"]), 100 * np.asarray(c["std"])
        ax.plot(ep, m, marker="o", label=f"{name} anchors")
        if c.get("n", 1) > 1:
            ax.fill_between(ep, m - s, m + s, alpha=0.2)
    if chance is not None:
        ax.axhline(100 * chance, ls=":", color="grey", label="chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val zero-shot accuracy (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def ablation_bars(summary: dict[str, dict], metrics=("zs_clean", "zs_pgd"), title: str = "Ablation",
                  row_labels: dict[str, str] | None = None):
    """Grouped bars (%) per row of a ``summarize`` result, one bar per metric, ±std error bars."""
    names = list(summary)
    x = np.arange(len(names))
    w = 0.8 / max(len(metrics), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) + 2), 4))
    for i, m in enumerate(metrics):
        mean = [100 * summary[n][m]["mean"] for n in names]
        std = [100 * summary[n][m]["std"] for n in names]
        ax.bar(x + (i - (len(metrics) - 1) / 2) * w, mean, w, yerr=std, capsize=3,
               label=LAAT_METRIC_LABELS.get(m, m))
    ax.set_xticks(x)
    ax.set_xticklabels([(row_labels or {}).get(n, n) for n in names], rotation=20, ha="right")
    ax.set_xlabel("row")
    ax.set_ylabel("accuracy (%)")
    n_seeds = max(summary[n][m]["n"] for n in names for m in metrics)
    ax.set_title(f"{title} ({n_seeds} seed{'s' if n_seeds > 1 else ''})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def ablation_table(summary: dict[str, dict], metrics=("zs_clean", "zs_pgd", "gzsl_clean", "gzsl_pgd"),
                   title: str = "LAAT ablation", row_labels: dict[str, str] | None = None):
    """Table of mean ± std (%) per row (:func:`zslab.viz.has_plots.summary_table` with LAAT's
    metric names as column headers)."""
    fig = summary_table(summary, metrics=metrics, title=title, row_labels=row_labels)
    tab = fig.axes[0].tables[0]
    for j, m in enumerate(metrics):
        tab[0, j].get_text().set_text(LAAT_METRIC_LABELS.get(m, m))
    return fig


def few_shot_plot(curves: dict[str, dict], title: str = "Few-shot accuracy on novel classes (LAAT Fig. 5)"):
    """Fig. 5: accuracy (%) vs shots per anchor mode (``prototype``, ``blend``), clean solid
    with its 95% interval as error bars, PGD dashed when present."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, c in curves.items():
        k = np.asarray(c["shots"])
        line = ax.errorbar(k, 100 * np.asarray(c["clean"]), yerr=100 * np.asarray(c.get("clean_ci95", np.zeros(len(k)))),
                           marker="o", capsize=3, label=f"{mode} (clean)")
        if "pgd" in c and all(math.isfinite(v) for v in c["pgd"]):
            ax.plot(k, 100 * np.asarray(c["pgd"]), ls="--", marker="s", color=line[0].get_color(),
                    label=f"{mode} (PGD)")
    ax.set_xlabel("shots per class")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(sorted({int(s) for c in curves.values() for s in c["shots"]}))
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
