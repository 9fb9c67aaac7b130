"""Plotting helpers that notebooks call; each returns a titled, labelled Figure."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F


def _img(x: torch.Tensor) -> np.ndarray:
    x = x.detach().float().cpu()
    if x.dtype == torch.uint8:
        x = x / 255
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def image_gallery(images: torch.Tensor, captions: list[str], ncols: int = 6, title: str = "", wrap: int = 26):
    """Grid of images (N, 3, H, W) in [0, 1] with a caption under each."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        x = images[i]
        ax.imshow(_img(x.float() / 255 if x.dtype == torch.uint8 else x), interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(captions[i], wrap)), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def learning_curves(history: list[dict], keys=("train_loss", "val_zsl", "val_h"), title: str = "Learning curves"):
    """Per-epoch curves from a run's ``metrics.json`` history: losses left, accuracies right."""
    epochs = [r["epoch"] for r in history]
    loss_keys = [k for k in keys if "loss" in k or k in ("train_cls", "train_loc")]
    acc_keys = [k for k in keys if k not in loss_keys]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k in loss_keys:
        a1.plot(epochs, [r[k] for r in history], marker="o", label=k)
    a1.set_xlabel("epoch"); a1.set_ylabel("loss"); a1.set_title("Training loss"); a1.legend()
    for k in acc_keys:
        a2.plot(epochs, [100 * r[k] for r in history], marker="o", label=k)
    a2.set_xlabel("epoch"); a2.set_ylabel("accuracy (%)"); a2.set_title("Validation accuracy (selection split)")
    a2.set_ylim(0, 100); a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def attention_maps(image: torch.Tensor, attention: torch.Tensor, attribute_names: list[str],
                   attributes: list[int] | None = None, scores: torch.Tensor | None = None,
                   title: str = "Attribute attention maps", ncols: int = 6):
    """An image followed by its attention maps h(x)_k, upsampled bilinearly and overlaid.

    ``attention`` is (K, h, w) for this image; ``attributes`` selects which k to show
    (default: the 5 with the highest max-pooled attention); ``scores`` optional per-attribute
    predictions printed in the panel titles.
    """
    K = attention.shape[0]
    if attributes is None:
        attributes = attention.flatten(1).amax(1).topk(min(5, K)).indices.tolist()
    H, W = image.shape[-2:]
    up = F.interpolate(attention[None].float().cpu(), size=(H, W), mode="bilinear", align_corners=False)[0]
    n = len(attributes) + 1
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.4 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    img = _img(image)
    axes.flat[0].imshow(img, interpolation="nearest")
    axes.flat[0].set_title("image", fontsize=8)
    for j, k in enumerate(attributes, start=1):
        ax = axes.flat[j]
        m = up[k].numpy()
        m = (m - m.min()) / (m.max() - m.min() + 1e-8)
        ax.imshow(img, interpolation="nearest")
        ax.imshow(m, cmap="jet", alpha=0.5, interpolation="bilinear")
        t = attribute_names[k]
        if scores is not None:
            t += f"\n(pred {float(scores[k]):.2f})"
        ax.set_title(t, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def results_table(rows: dict[str, dict], metrics=("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"), title: str = "Results"):
    """A table figure of accuracies (%), one row per method/run."""
    names = list(rows)
    cell = [[f"{100 * rows[n][m]:.1f}" if isinstance(rows[n].get(m), float) else str(rows[n].get(m, "-"))
             for m in metrics] for n in names]
    labels = {"zsl_t1": "ZSL T1 (%)", "gzsl_u": "GZSL U (%)", "gzsl_s": "GZSL S (%)", "gzsl_h": "GZSL H (%)"}
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics) + 2, 0.5 * len(names) + 1.0))
    ax.axis("off")
    tab = ax.table(cellText=cell, rowLabels=names, colLabels=[labels.get(m, m) for m in metrics], loc="center")
    tab.scale(1, 1.4)
    ax.set_title(title)
    fig.tight_layout()
    return fig
