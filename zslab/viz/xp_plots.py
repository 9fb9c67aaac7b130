"""Figures of the cross-paper notebooks (31–33): zero-shot robustness of attribute and anchor
models side by side. Summaries are ``name -> metric -> {mean, std, n}`` with accuracies in
[0, 1] (e.g. :func:`zslab.experiments.xp_robustness.summarize`); plots show percentages."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["ROBUSTNESS_LABELS", "robustness_bars", "eps_curves"]

ROBUSTNESS_LABELS = {"clean": "clean", "fgsm": "FGSM", "pgd20": "PGD-20", "autoattack": "AutoAttack",
                     "worst": "worst case", "zsl_t1": "ZSL T1", "gzsl_h": "GZSL H", "zs_clean": "5-way ZS clean",
                     "zs_pgd": "5-way ZS PGD"}


def robustness_bars(summary: dict, metrics=("clean", "fgsm", "pgd20", "autoattack"), *, eps_text: str = "8/255",
                    title: str = "Zero-shot accuracy on unseen classes", row_labels: dict | None = None,
                    chance: float | None = None):
    """Grouped bars (%) per model row, one bar per metric (clean and each attack at ε), ±std over seeds."""
    names = list(summary)
    x = np.arange(len(names))
    w = 0.8 / max(len(metrics), 1)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(names) + 2.5), 4))
    for i, m in enumerate(metrics):
        mean = [100 * summary[n][m]["mean"] if m in summary[n] else np.nan for n in names]
        std = [100 * summary[n][m]["std"] if m in summary[n] else 0.0 for n in names]
        ax.bar(x + (i - (len(metrics) - 1) / 2) * w, mean, w, yerr=std, capsize=3, label=ROBUSTNESS_LABELS.get(m, m))
    if chance is not None:
        ax.axhline(100 * chance, color="k", ls=":", lw=1, label="chance")
    ax.set_xticks(x)
    ax.set_xticklabels([(row_labels or {}).get(n, n) for n in names])
    ax.set_ylabel("zero-shot accuracy (%)")
    n_seeds = max(summary[n][m]["n"] for n in names for m in metrics if m in summary[n])
    ax.set_title(f"{title}\n(attacks at ε = {eps_text}, L∞; mean ± std over {n_seeds} seed{'s' if n_seeds > 1 else ''})")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def eps_curves(summary: dict, prefix: str = "pgd20@", *, title: str = "PGD-20 zero-shot accuracy vs attack radius",
               row_labels: dict | None = None, chance: float | None = None):
    """Robust accuracy (%) vs ε (x in 1/255 units, ε = 0 is the clean accuracy), one line per row
    with a ±std band."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for n, m in summary.items():
        keys = [k for k in m if k.startswith(prefix)]
        eps = [float(k[len(prefix):].split("/")[0]) for k in keys]
        order = np.argsort(eps)
        xs = [0.0] + [eps[i] for i in order]
        mean = np.array([m["clean"]["mean"]] + [m[keys[i]]["mean"] for i in order]) * 100
        std = np.array([m["clean"]["std"]] + [m[keys[i]]["std"] for i in order]) * 100
        ax.plot(xs, mean, marker="o", label=(row_labels or {}).get(n, n))
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    if chance is not None:
        ax.axhline(100 * chance, color="k", ls=":", lw=1, label="chance")
    ax.set_xlabel("ε (× 1/255, L∞)")
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
