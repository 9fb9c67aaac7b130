"""Figures of the HAS paper (notebooks 10–14); each function returns a titled, labelled Figure.

Inputs are the rows / summaries of :mod:`zslab.experiments.has_study` (accuracies as
fractions; shown in %). The annotated heat map (:func:`distortion_heatmap`) and the per-seed
figure (:func:`seed_spread`) are drawn with seaborn, which annotates cells with a contrasting text
colour, masks missing cells, and places per-seed dots beside their mean ± std without overlap.
"""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.ticker import NullFormatter
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

from zslab.viz.plots import _img

__all__ = ["summary_table", "seed_spread", "SEED_SPREAD_SHIFT", "sensitivity_curves", "delta_bars",
           "distortion_heatmap", "attribute_prediction_panel", "feature_drift_tsne", "drift_curve", "perturbation_panel",
           "attention_comparison", "METRIC_LABELS"]

#: where :func:`seed_spread` draws a mean ± std: this fraction of a metric's slot right of its swarm's centre
SEED_SPREAD_SHIFT = 0.3

METRIC_LABELS = {"zsl_t1": "ZSL T1 (%)", "gzsl_u": "GZSL U (%)", "gzsl_s": "GZSL S (%)", "gzsl_h": "GZSL H (%)",
                 "localisation": "attention in part (%)"}


def _fmt(entry) -> str:
    if isinstance(entry, dict):
        m, s, n = entry["mean"], entry.get("std", 0.0), entry.get("n", 1)
        if not math.isfinite(m):
            return "-"
        return f"{100 * m:.1f} ± {100 * s:.1f}" if n > 1 else f"{100 * m:.1f}"
    if isinstance(entry, (int, float)) and math.isfinite(entry):
        return f"{100 * entry:.1f}"
    return "-"


def summary_table(summary: dict[str, dict], metrics=("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"),
                  title: str = "Results", row_labels: dict[str, str] | None = None):
    """Table of mean ± std (%) over seeds, one row per key of ``summary`` (from ``summarize``)."""
    names = list(summary)
    cells = [[_fmt(summary[n].get(m)) for m in metrics] for n in names]
    labels = [(row_labels or {}).get(n, n) for n in names]
    fig, ax = plt.subplots(figsize=(1.9 * len(metrics) + 2.6, 0.45 * len(names) + 1.2))
    ax.axis("off")
    tab = ax.table(cellText=cells, rowLabels=labels, colLabels=[METRIC_LABELS.get(m, m) for m in metrics],
                   loc="center")
    tab.scale(1, 1.4)
    n_seeds = max((summary[n][m]["n"] for n in names for m in metrics if isinstance(summary[n].get(m), dict)),
                  default=1)
    ax.set_title(f"{title}\n(mean ± std over {n_seeds} seeds)" if n_seeds > 1 else f"{title}\n(one seed)")
    fig.tight_layout()
    return fig


def seed_spread(rows: list[dict], metrics=("zsl_t1", "gzsl_h"), by: str = "name",
                title: str = "Results per seed", row_labels: dict[str, str] | None = None,
                labels: dict[str, str] | None = None, xlabel: str | None = None):
    """Every run's value (one dot per seed) beside the mean ± std over seeds, per row and metric (%).

    ``rows``: one dict per trained run (:func:`zslab.experiments.has_study.run_study` rows, or
    LAAT's with ``labels=zslab.viz.laat_plots.LAAT_METRIC_LABELS``) holding ``seed``, ``rows[i][by]``
    (the row name) and the metrics as fractions. The mean and the sample std (ddof 1) are those of
    :func:`zslab.experiments.has_study.summarize`; with one seed a row has no error bar. Seaborn's
    swarm places the seeds' dots side by side, so equal values stay visible. ``row_labels`` renames
    rows, ``labels`` metrics (added to :data:`METRIC_LABELS`); ``xlabel`` defaults to ``by`` (none
    for ``"name"``)."""
    names = list(dict.fromkeys(r[by] for r in rows))
    labels = {**METRIC_LABELS, **(labels or {})}
    row_label = lambda n: (row_labels or {}).get(n, n)  # noqa: E731
    long = pd.DataFrame([{"row": row_label(r[by]), "metric": labels.get(m, m), "seed": r.get("seed"),
                          "value": 100 * float(r[m])} for r in rows for m in metrics
                         if m in r and math.isfinite(float(r[m]))])
    order = [row_label(n) for n in names]
    hue_order = [labels.get(m, m) for m in metrics]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) * len(metrics) ** 0.5 + 2.5), 4.0))
    n_seeds = int(long.groupby("row")["seed"].nunique().max()) if len(long) else 0
    if len(long):
        sns.swarmplot(long, x="row", y="value", hue="metric", order=order, hue_order=hue_order, dodge=True, size=5,
                      alpha=0.7, ax=ax, legend=False)
        # seaborn spreads n hues over 0.8 of a slot; each mean ± std goes just right of its swarm
        first = len(ax.lines)
        sns.pointplot(long, x="row", y="value", hue="metric", order=order, hue_order=hue_order, estimator="mean",
                      errorbar="sd", dodge=0.8 * (len(metrics) - 1) / len(metrics) if len(metrics) > 1 else False,
                      linestyle="none", markers="D", markersize=5, capsize=0.06, err_kws={"linewidth": 1.2}, ax=ax)
        for line in ax.lines[first:]:
            line.set_xdata(np.asarray(line.get_xdata(), dtype=float) + SEED_SPREAD_SHIFT * 0.8 / len(metrics))
        legend = ax.get_legend()
        if legend is not None:
            legend.set_title(f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "one seed")
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8, title_fontsize=8)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=20 if len(order) > 3 else 0, ha="right" if len(order) > 3 else "center")
    ax.set_xlabel(xlabel if xlabel is not None else "" if by == "name" else by)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{title}\n(dots: single seeds; diamonds: mean ± std)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def sensitivity_curves(sweeps: dict[str, dict], labels: dict[str, str] | None = None, baseline: dict | None = None,
                       metrics=("zsl_t1", "gzsl_h"), title: str = "HAS hyper-parameter sensitivity",
                       spread: dict | None = None, defaults: dict[str, float] | None = None):
    """Fig. 4: one panel per sweep, accuracy (%) vs the swept value (log axis), ±std bars.

    ``sweeps``: ``{param: summary}`` where each summary entry has ``value`` and the metrics;
    ``baseline``: an APN summary entry drawn as dashed horizontal lines.
    ``spread``: a summary entry of the *default* configuration trained at several seeds; each
    panel then shades ±1 std of it around the curve's value at ``defaults[param]`` (or around
    the spread's mean where the sweep has no point there), so a reader can tell which changes
    of a one-seed sweep exceed the seed-to-seed spread.
    """
    params = list(sweeps)
    ncols = len(params) if len(params) <= 4 else 3  # five or more panels wrap onto rows of three
    nrows = math.ceil(len(params) / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.8 * nrows), squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(params):]:
        fig.delaxes(ax)
    legend = {m: [] for m in metrics}  # the first panel's artists, one legend column per metric
    for ax, p in zip(axes, params):
        entries = sorted(sweeps[p].values(), key=lambda e: e["value"])
        xs = np.array([e["value"] for e in entries])
        for j, m in enumerate(metrics):
            ys = np.array([100 * e[m]["mean"] for e in entries])
            es = np.array([100 * e[m]["std"] for e in entries])
            line = ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=f"HAS {METRIC_LABELS.get(m, m)}")
            artists = [line]
            if baseline is not None and m in baseline:
                artists.append(ax.axhline(100 * baseline[m]["mean"], ls="--", color=line[0].get_color(), alpha=0.7,
                                          label=f"APN {METRIC_LABELS.get(m, m)}"))
            if spread is not None and m in spread:
                at = [y for x, y in zip(xs, ys) if p in (defaults or {}) and math.isclose(x, defaults[p])]
                mid, sd = (at[0] if at else 100 * spread[m]["mean"]), 100 * spread[m]["std"]
                artists.append(ax.axhspan(mid - sd, mid + sd, color=line[0].get_color(), alpha=0.12, lw=0,
                                          label=f"default's {METRIC_LABELS.get(m, m)}: ±1 std over "
                                                f"{spread[m]['n']} seeds"))
            if ax is axes[0]:
                legend[m] = artists
        if len(xs) > 1 and xs.min() > 0 and xs.max() / xs.min() > 5:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{v * 255:.3g}" if p == "step_size" else f"{v:.3g}" for v in xs])
        ax.set_xlabel("\n".join(textwrap.wrap((labels or {}).get(p, p), 34)))
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"({chr(97 + params.index(p))}) {p}")
        ax.grid(alpha=0.3)
    # one legend for all panels, below them, so it never hides a curve (a panel's own legend did);
    # a column per metric (matplotlib fills columns first): its HAS curve, APN line and seed band
    handles = [a for m in metrics for a in legend[m]]
    legend_rows = max(len(v) for v in legend.values())
    fig.suptitle(title)
    fig.legend(handles, [a.get_label() for a in handles], loc="lower center", ncol=len(metrics), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, (0.22 * legend_rows + 0.12) / fig.get_size_inches()[1], 1, 1))
    return fig


def delta_bars(summary: dict[str, dict], baseline: str = "none", metrics=("zsl_t1", "gzsl_h"),
               title: str = "Change vs no augmentation", xlabel: str = "augmentation used to train APN",
               deltas: dict[str, dict] | None = None, baseline_label: str | None = None):
    """Table 3 as bars: mean accuracy change (percentage points) of each entry vs ``baseline``.

    ``deltas`` (:func:`zslab.experiments.has_study.paired_deltas` of the same rows): bar heights
    and error bars are the mean ± std over seeds of the seed-paired differences, and each bar is
    labelled, beyond its error bar, with how many seeds it fell below the baseline (e.g. "3/3").
    Without it the error bar is the entry's own std over seeds. ``baseline_label`` names the
    baseline on the y axis (default: its key). The legend and the reading note sit right of the
    axes, outside the bars."""
    if baseline not in summary:
        raise KeyError(f"baseline {baseline!r} not in summary ({', '.join(summary)})")
    names = [n for n in summary if n != baseline]
    if deltas is not None and [n for n in names if n not in deltas]:
        raise KeyError(f"deltas lack the rows {[n for n in names if n not in deltas]}")
    if deltas is not None and names and {deltas[n].get("baseline", baseline) for n in names} != {baseline}:
        raise ValueError(f"deltas are against {sorted({deltas[n].get('baseline') for n in names})}, not {baseline!r}")
    w_in = max(6.0, 0.8 * len(names) + 2) + 2.0  # + the legend column
    fig, ax = plt.subplots(figsize=(w_in, 4.0))
    width = 0.8 / len(metrics)
    x = np.arange(len(names))
    n_seeds = max((deltas[k][m]["n"] for k in names for m in metrics), default=0) if deltas is not None else 0
    ends = [0.0]  # bar tips and error-bar ends, for the y limits
    for j, m in enumerate(metrics):
        if deltas is None:
            d = [100 * (summary[n][m]["mean"] - summary[baseline][m]["mean"]) for n in names]
            e = [100 * summary[n][m]["std"] for n in names]
        else:
            d = [100 * deltas[n][m]["mean"] for n in names]
            e = [100 * deltas[n][m]["std"] for n in names]
        xs = x + (j - (len(metrics) - 1) / 2) * width
        bars = ax.bar(xs, d, width, yerr=e, capsize=2, label=METRIC_LABELS.get(m, m))
        ends += [v + s for v, s in zip(d, e)] + [v - s for v, s in zip(d, e)]
        if n_seeds > 1:  # bar_label puts each count past the end of the bar's error bar
            ax.bar_label(bars, labels=[f"{deltas[n][m]['worse']}/{deltas[n][m]['n']}" for n in names],
                         fontsize=6, padding=2)
    lo, hi = min(ends), max(ends)
    pad = 0.12 * ((hi - lo) or 1.0)  # room for the seed labels
    ax.set_ylim(lo - pad, hi + pad)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=35, ha="right")
    ax.set_ylabel(f"change vs {baseline_label or repr(baseline)}\n(percentage points)")
    note = None
    if deltas is not None:
        note = (f"seed-paired change\nover {n_seeds} seeds\nerror bar = std\nlabel: seeds below\nthe baseline"
                if n_seeds > 1 else "change at one seed")
    ax.set_xlabel(xlabel)
    ax.set_title("\n".join(textwrap.wrap(title, int(8 * (w_in - 2.0)))))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=note, title_fontsize=7,
              alignment="left", frameon=False)
    fig.tight_layout()
    return fig


def distortion_heatmap(rows: list[dict], value: str = "agreement",
                       title: str = "Attribute predictions kept under augmentation",
                       ylabel: str = "augmentation applied at test time"):
    """Fig. 2 quantified: augmentation × attribute group heat map of ``value`` (%), annotated.
    ``ylabel`` names what the rows' ``augmentation`` is (applied at test time, or used in training)."""
    augs = list(dict.fromkeys(r["augmentation"] for r in rows))
    groups = list(dict.fromkeys(r["group"] for r in rows))
    M = np.full((len(augs), len(groups)), np.nan)
    for r in rows:
        M[augs.index(r["augmentation"]), groups.index(r["group"])] = 100 * r[value]
    fig, ax = plt.subplots(figsize=(0.9 * len(groups) + 3, 0.5 * len(augs) + 2))
    signed = value == "drop"
    lim = float(np.nanmax(np.abs(M))) if np.isfinite(M).any() else 1.0
    lim = lim or 1.0  # a drop is signed: 0 sits at the colour map's neutral middle
    names = {"agreement": "predicted value unchanged (%)", "drop": "accuracy drop (points)",
             "aug_acc": "accuracy on augmented (%)", "clean_acc": "accuracy on clean (%)"}
    # missing cells (NaN) are left blank; each cell is annotated in a colour that contrasts with it
    sns.heatmap(M, ax=ax, cmap="RdYlGn" if value in ("agreement", "aug_acc", "clean_acc") else "RdYlGn_r",
                vmin=-lim if signed else 0, vmax=lim if signed else 100, annot=True, fmt=".0f",
                annot_kws={"fontsize": 7}, xticklabels=groups, yticklabels=augs,
                cbar_kws={"label": names.get(value, value)})
    ax.set_xticklabels(groups, rotation=40, ha="right")
    ax.set_yticklabels(augs, rotation=0)
    ax.set_xlabel("attribute group")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def attribute_prediction_panel(examples: dict, attributes: list[int], attribute_names: list[str],
                               captions: list[str] | None = None,
                               title: str = "APN attribute predictions on clean and augmented images"):
    """Fig. 2: per example image, the image under each augmentation and grouped bars of the
    predicted scores of ``attributes`` (e.g. the body-colour attributes), one bar colour per
    augmentation. ``examples`` from :func:`zslab.experiments.has_study.augment_examples`."""
    augs = list(examples["images"])
    n = len(examples["labels"])
    fig, axes = plt.subplots(n, len(augs) + 1, figsize=(1.7 * len(augs) + 4.5, 2.1 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * len(augs) + [3]})
    cmap = plt.get_cmap("tab10")
    for i in range(n):
        for j, a in enumerate(augs):
            ax = axes[i][j]
            ax.imshow(_img(examples["images"][a][i]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(a if a != "none" else "clean", fontsize=8)
        if captions:
            axes[i][0].set_ylabel("\n".join(textwrap.wrap(captions[i], 18)), fontsize=6)
        ax = axes[i][-1]
        w = 0.8 / len(augs)
        xk = np.arange(len(attributes))
        for j, a in enumerate(augs):
            ax.bar(xk + (j - (len(augs) - 1) / 2) * w, examples["attr"][a][i, attributes].numpy(), w,
                   color=cmap(j % 10), label=a if a != "none" else "clean")
        ax.set_xticks(xk)
        ax.set_xticklabels([attribute_names[k] for k in attributes], fontsize=6, rotation=20, ha="right")
        ax.set_ylabel("predicted score", fontsize=7)
        if i == 0:
            ax.legend(fontsize=6, ncol=2)
            ax.set_title("predicted attribute scores â", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_drift_tsne(embedding: dict[str, torch.Tensor], title: str = "Visual features over HAS perturbation steps"):
    """Fig. 5: one panel per generator variant; points are 2-D t-SNE coordinates of the pooled
    features, ``embedding[label]`` shaped (T+1, N, 2) (step, image); darker = later step; a
    thin line follows each image from its clean position."""
    labels = list(embedding)
    fig, axes = plt.subplots(1, len(labels), figsize=(5.0 * len(labels), 4.4), squeeze=False)
    allpts = torch.cat([e.reshape(-1, 2) for e in embedding.values()])
    lo, hi = allpts.min(0).values, allpts.max(0).values
    pad = 0.05 * (hi - lo)
    cmaps = ["Blues", "Reds", "Greens", "Purples"]
    for ax, lab, cm in zip(axes[0], labels, cmaps):
        e = embedding[lab]
        T = e.shape[0] - 1
        for i in range(e.shape[1]):
            ax.plot(e[:, i, 0], e[:, i, 1], color="0.7", lw=0.4, zorder=1)
        # the colour map's light end is cut off so that step 0 stays visible; the scale runs 0..T
        cmap = ListedColormap(plt.get_cmap(cm)(np.linspace(0.25, 1.0, 256)))
        for t in range(T + 1):
            sc = ax.scatter(e[t, :, 0], e[t, :, 1], s=10, c=np.full(e.shape[1], t), cmap=cmap, vmin=0,
                            vmax=max(T, 1), zorder=2)
        ax.set_xlim(float(lo[0] - pad[0]), float(hi[0] + pad[0]))
        ax.set_ylim(float(lo[1] - pad[1]), float(hi[1] + pad[1]))
        ax.set_title(lab)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        fig.colorbar(sc, ax=ax, label="perturbation step (0 = clean; darker = later)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def drift_curve(trajectories: dict[str, dict], title: str = "Feature drift from the clean image"):
    """Mean ‖g(f(I_t)) − g(f(I_0))‖ per HAS step t for each variant (``feature_trajectory`` output)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for lab, tr in trajectories.items():
        ax.plot(range(len(tr["drift"])), tr["drift"], marker="o", label=lab)
    ax.set_xlabel("perturbation step t")
    ax.set_ylabel("mean ‖g_t − g_0‖ (feature distance)")
    ax.set_title("\n".join(textwrap.wrap(title, 48)))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def perturbation_panel(parts: dict, n: int | None = None, captions: list[str] | None = None,
                       title: str = "HAS perturbation: object (foreground) vs background"):
    """Fig. 7: per image (a) original, (b) normalised perturbation, (c) adversarial image,
    (d) foreground part, (e) background part of the perturbation (``perturbation_parts`` output;
    mean |δ| inside/outside the object in the panel titles)."""
    n = len(parts["clean"]) if n is None else min(n, len(parts["clean"]))
    cols = [("clean", "(a) original"), ("delta_norm", "(b) perturbation (normalised)"),
            ("adv", "(c) adversarial image"), ("foreground", "(d) foreground part"),
            ("background", "(e) background part")]
    fig, axes = plt.subplots(n, 5, figsize=(11, 2.3 * n), squeeze=False)
    for i in range(n):
        for j, (key, name) in enumerate(cols):
            ax = axes[i][j]
            ax.imshow(_img(parts[key][i]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            t = name if i == 0 else ""
            if key == "foreground":
                t += f"\nmean |δ| = {255 * parts['fg_mean_abs'][i]:.2f}/255"
            elif key == "background":
                t += f"\nmean |δ| = {255 * parts['bg_mean_abs'][i]:.2f}/255"
            ax.set_title(t.strip(), fontsize=7)
        if captions:
            axes[i][0].set_ylabel("\n".join(textwrap.wrap(captions[i], 20)), fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def attention_comparison(image: torch.Tensor, maps: dict[str, torch.Tensor], attribute_names: list[str],
                         attributes: list[int], title: str = "Attribute attention maps"):
    """Fig. 6: rows = models (e.g. APN, HAS), columns = the image then one overlaid attention
    map h(x)_k per attribute in ``attributes`` (each map min–max scaled, upsampled bilinearly)."""
    H, W = image.shape[-2:]
    models = list(maps)
    fig, axes = plt.subplots(len(models), len(attributes) + 1, figsize=(1.9 * (len(attributes) + 1), 2.2 * len(models)),
                             squeeze=False)
    img = _img(image)
    for r, m in enumerate(models):
        up = F.interpolate(maps[m][None].float().cpu(), size=(H, W), mode="bilinear", align_corners=False)[0]
        ax = axes[r][0]
        ax.imshow(img, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(m, fontsize=10)
        ax.set_title("image" if r == 0 else "", fontsize=8)
        for c, k in enumerate(attributes, start=1):
            a = up[k].numpy()
            a = (a - a.min()) / (a.max() - a.min() + 1e-8)
            ax = axes[r][c]
            ax.imshow(img, interpolation="nearest")
            ax.imshow(a, cmap="jet", alpha=0.5, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("\n".join(textwrap.wrap(attribute_names[k], 16)), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
