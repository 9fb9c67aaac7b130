"""HAS-style semantic-preserving perturbations as the adversary inside LAAT training, vs plain
PGD (notebook ``33_has_adversary_laat``; issue 7 item 3, third experiment).

Question: LAAT (Li et al., CVPR 2024) trains an image encoder on PGD samples that *ascend* the
A-CE over the training anchors (LAAT Eq. 3, Sec. 3.5). HAS (Chen et al., ACM MM 2023) trains on
samples that *descend* a composite loss — keep the label (L_CLS), raise the class entropy H(p)
(Eq. 5), stay near the clean features (Eq. 6) — to diversify the training images without
semantic distortion. With the HAS generator as LAAT's adversary (config ``adversary: has``,
:func:`zslab.methods.laat.has_adversary`), what happens to LAAT's clean and robust zero-shot accuracy on
novel classes, and at what cost?

The adapted objective, descended by T = ``pgd_steps`` signed steps of ``pgd_step`` inside the
same ``pgd_eps`` ball ∩ [0, 1], from δ = 0 (HAS Eq. 4, §3.3, with the descent sign that :mod:`zslab.methods.has`
sets out)::

    L = A-CE(f(x+δ), â_train; τ) − λ_rob·H(softmax(cos(f(x+δ), â_train)/τ)) + λ_rel·‖f(x+δ) − f(x)‖²

(no attention-diversity term: an anchor model has no attribute attention maps.)

Rows (:data:`ROWS`), all on the cross-paper shapes data with the class names' MiniLM anchors
(:func:`zslab.experiments.cross_paper.laat_config`):

* ``pgd`` — LAAT as is (the ``laat_config`` default, so it is the very run notebook 31 trains;
  the run cache shares it);
* ``has`` — the HAS generator as the adversary (λ_rob = 1, λ_rel = 0.1);
* ``has+pgd`` — half of each batch PGD, half HAS (``full`` preset only);
* ``none`` — no adversary (``pgd_eps = 0``) and no smoothness term (``alpha = 0``: with δ = 0
  the smoothness −cos(f(x), f(x)) is constant), i.e. clean A-CE training with the same anchors.

Metrics per run: LAAT's own zero-shot metrics (``zs_clean``/``zs_pgd``, 5-way episodes),
:func:`zslab.experiments.cross_paper.zsl_robustness` (all unseen classes; clean, FGSM, PGD-20,
AutoAttack and the per-example worst case; cached in the run directory), and the training cost
(seconds of the training passes, from the run's history).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from zslab import ZSLabError
from zslab.experiments import cross_paper as cp
from zslab.experiments import runner

__all__ = ["ROWS", "PRESET_ROWS", "LAAT_METRICS", "metrics_for", "adversary_configs", "robustness_cached", "run_adversary_rows",
           "summarize", "epoch_curves", "cost_ratio", "conclusions", "adversary_bars", "curve_figure"]

#: config overrides per row, on top of :func:`zslab.experiments.cross_paper.laat_config` (run table
#: ``has_adversary`` of ``recipes/studies/cross_paper.yaml``)
ROWS: dict[str, dict] = {n: r["overrides"] for n, r in
                         runner.table_rows(runner.table_spec("cross_paper", "has_adversary")).items()}
#: the rows each cross-paper preset trains
PRESET_ROWS: dict[str, tuple[str, ...]] = {p: x["rows"]["has_adversary"] for p, x in cp.XP_PRESETS.items()}

#: LAAT's own final metrics summarised per row
LAAT_METRICS = ("zs_clean", "zs_pgd")


def metrics_for(attacks) -> tuple[str, ...]:
    """Every summarised metric: LAAT's zero-shot metrics, ``zsl_clean``, ``zsl_<attack>``,
    ``zsl_worst`` and ``train_pass_seconds``."""
    return LAAT_METRICS + ("zsl_clean",) + tuple(f"zsl_{a}" for a in attacks) + ("zsl_worst", "train_pass_seconds")


def _adversary(cfg: dict) -> str:
    return cfg["adversary"] if cfg["pgd_eps"] > 0 and cfg["pgd_steps"] > 0 else "none"


def adversary_configs(preset: str = "smoke", rows=None, seeds=None, overrides: dict | None = None) -> list[dict]:
    """One run per (row, seed): ``{"name", "config", "adversary"}``; ``rows`` default: the preset's
    (:data:`PRESET_ROWS`); ``overrides`` apply to every row (the row's own keys win)."""
    return [{**r, "adversary": _adversary(r["config"])}
            for r in runner.study_runs("cross_paper", "has_adversary", preset, rows, seeds, overrides)]


def robustness_cached(run_dir, preset: str, data=None, device: str | None = None, seed: int = 0,
                      progress: bool = False) -> dict:
    """:func:`zslab.experiments.cross_paper.zsl_robustness` of a finished run under ``preset``'s
    protocol with its ``ablation_attacks`` (FGSM, PGD-20); the result is cached next to the run by
    that function (shared with notebook 32 for the runs both attack)."""
    return cp.zsl_robustness(run_dir, attacks=cp.xp_preset(preset)["ablation_attacks"], preset=preset, data=data,
                             device=device, seed=seed, progress=progress)


def _history(run_dir) -> list[dict]:
    return json.loads((Path(run_dir) / "metrics.json").read_text()).get("history", [])


def run_adversary_rows(runs: list[dict], cache_dir, preset: str, data=None, progress: bool = False,
                       device: str | None = None) -> list[dict]:
    """Train (or reuse from the run cache ``cache_dir``) every run with
    :func:`zslab.experiments.cross_paper.run_rows`, then add to each row its zero-shot robustness
    (:func:`robustness_cached`: ``zsl_clean``, ``zsl_<attack>``, ``zsl_worst``, ``zsl_n``), its
    per-epoch history (``val_zs``, ``train_acc``: train-mode accuracy on the training-time
    adversarial batch, ``train_l1``) and ``train_pass_seconds`` (the training passes alone, without
    validation: Σ ``train_epoch_seconds``)."""
    rows = cp.run_rows(runs, cache_dir, data=data, progress=progress, device=device)
    for r in rows:
        hist = _history(r["run_dir"])
        for k in ("val_zs", "train_acc", "train_l1"):
            r[k] = [float(h[k]) for h in hist if k in h]
        r["train_pass_seconds"] = float(sum(h.get("train_epoch_seconds", h.get("seconds", float("nan")))
                                            for h in hist))
        rob = robustness_cached(r["run_dir"], preset, data=data, device=device, progress=progress)
        r["zsl_clean"] = float(rob["clean"])
        for a, v in rob["robust"].items():
            r[f"zsl_{a}"] = float(v)
        r["zsl_worst"] = float(rob["worst"])
        r["zsl_n"] = int(rob["n"])
        r["zsl_warnings"] = list(rob.get("warnings", []))
    return rows


def summarize(rows: list[dict], metrics) -> dict[str, dict]:
    """Mean and sample std over seeds of ``metrics`` per row name (first-appearance order):
    ``{name: {metric: {"mean", "std", "n"}, "adversary": ...}}`` (std 0 with one seed)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["name"], []).append(r)
    out = {}
    for name, rs in groups.items():
        entry = {"adversary": rs[0].get("adversary"), "seeds": [int(r["seed"]) for r in rs]}
        for m in metrics:
            v = np.asarray([float(r[m]) for r in rs], dtype=np.float64)
            entry[m] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
        out[name] = entry
    return out


def cost_ratio(rows: list[dict], num: str = "has", den: str = "pgd", key: str = "train_pass_seconds") -> dict:
    """Training cost of row ``num`` relative to row ``den``: the ratio of their ``key`` per seed
    (seeds both rows have), its mean and std. Timings of cached runs are the ones measured when
    they were trained (possibly under another machine load); equal for both only if trained
    together."""
    a = {r["seed"]: float(r[key]) for r in rows if r["name"] == num}
    b = {r["seed"]: float(r[key]) for r in rows if r["name"] == den}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ZSLabError(f"no seed has both rows {num!r} and {den!r}")
    ratios = np.asarray([a[s] / b[s] for s in seeds])
    return {"num": num, "den": den, "seeds": seeds, "ratios": ratios.tolist(), "mean": float(ratios.mean()),
            "std": float(ratios.std(ddof=1)) if len(ratios) > 1 else 0.0,
            "cached": sorted({r["name"] for r in rows if r.get("cached") and r["name"] in (num, den)})}


def epoch_curves(rows: list[dict], key: str = "val_zs") -> dict[str, dict]:
    """Per row name the per-epoch mean and std over seeds of a history entry (``val_zs``,
    ``train_acc``, ``train_l1``): ``{name: {"epoch", "mean", "std", "n"}}``."""
    groups: dict[str, list[list[float]]] = {}
    for r in rows:
        if not r.get(key):
            raise ZSLabError(f"row {r.get('name')!r} has no per-epoch {key!r} (run it with run_adversary_rows)")
        groups.setdefault(r["name"], []).append(r[key])
    out = {}
    for name, cs in groups.items():
        if len({len(c) for c in cs}) != 1:
            raise ZSLabError(f"row {name!r}: seeds ran different numbers of epochs")
        a = np.asarray(cs, dtype=np.float64)
        out[name] = {"epoch": list(range(1, a.shape[1] + 1)), "mean": a.mean(0).tolist(),
                     "std": (a.std(0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1])).tolist(), "n": len(a)}
    return out


def _diff(summary, a, b, m):
    """(mean_a − mean_b, the larger of the two rows' stds over seeds)."""
    d = summary[a][m]["mean"] - summary[b][m]["mean"]
    return d, max(summary[a][m]["std"], summary[b][m]["std"])


def conclusions(summary: dict[str, dict], cost: dict | None, attacks, n_images: int | None = None) -> list[str]:
    """Plain-language findings computed from the numbers (no fixed claims): for ``has`` (and
    ``has+pgd``) against ``pgd`` and ``none``, the differences in clean and robust accuracy and
    whether they exceed the spread over seeds, the worst-case robustness, and the cost ratio."""
    lines = []
    n_seeds = max(v[m]["n"] for v in summary.values() for m in v if isinstance(v[m], dict) and "n" in v[m])
    if n_seeds < 2:
        lines.append(f"Only {n_seeds} seed: the differences below have no spread estimate and may be noise "
                     f"(the smoke preset only checks the pipeline).")
    worst = "zsl_worst"
    attack_keys = [f"zsl_{a}" for a in attacks]
    for name in [n for n in ("has", "has+pgd") if n in summary]:
        for ref in [r for r in ("pgd", "none") if r in summary]:
            parts = []
            for m, label in (("zsl_clean", "clean"), (worst, "robust (worst of " + ", ".join(attacks) + ")"),
                             ("zs_clean", "5-way clean"), ("zs_pgd", "5-way PGD")):
                d, s = _diff(summary, name, ref, m)
                if n_seeds < 2:
                    verdict = "one seed, no spread"
                else:
                    verdict = "within the seed spread" if abs(d) <= s else ("higher" if d > 0 else "lower") + \
                        " beyond the seed spread"
                parts.append(f"{label} {100 * summary[name][m]['mean']:.1f}% vs {100 * summary[ref][m]['mean']:.1f}% "
                             f"({100 * d:+.1f} points, {verdict})")
            lines.append(f"'{name}' vs '{ref}': " + "; ".join(parts) + ".")
    if "has" in summary and "none" in summary:
        d, s = _diff(summary, "has", "none", worst)
        gain = d > max(s, 0.0) and d > 0
        lines.append(f"Does the HAS adversary buy robustness over clean training? worst-case ZSL accuracy "
                     f"{100 * summary['has'][worst]['mean']:.1f}% vs {100 * summary['none'][worst]['mean']:.1f}% "
                     f"({100 * d:+.1f} points): " + ("yes, beyond the seed spread." if gain and n_seeds > 1 else
                                                      "not beyond the seed spread." if n_seeds > 1 else
                                                      "undetermined with one seed."))
    if "pgd" in summary and "none" in summary:
        d, _ = _diff(summary, "pgd", "none", worst)
        lines.append(f"PGD-AT (LAAT) vs clean training, worst-case ZSL accuracy: {100 * d:+.1f} points.")
    for m in attack_keys:
        if "has" in summary and "pgd" in summary:
            d, _ = _diff(summary, "has", "pgd", m)
            lines.append(f"{m[4:]}: has {100 * summary['has'][m]['mean']:.1f}%, pgd {100 * summary['pgd'][m]['mean']:.1f}% "
                         f"({100 * d:+.1f} points).")
    if cost is not None:
        lines.append(f"Training cost '{cost['num']}'/'{cost['den']}' (training passes): {cost['mean']:.2f}x"
                     + (f" ± {cost['std']:.2f}" if len(cost["ratios"]) > 1 else "")
                     + (f"; cached rows {cost['cached']} were timed when first trained" if cost["cached"] else "")
                     + ".")
    if n_images is not None:
        lines.append(f"ZSL robustness on {n_images} unseen-class test images per run (one image = "
                     f"{100 / max(n_images, 1):.2f} points).")
    return lines


# ------------------------------------------------------------------------------ figures
def adversary_bars(summary: dict[str, dict], metrics, labels: dict[str, str] | None = None,
                   title: str = "Zero-shot accuracy by training adversary"):
    """Grouped bars (%) per adversary row, one bar per metric (clean and robust), ±std error bars
    (:func:`zslab.viz.laat_plots.ablation_bars`, legend entries renamed by ``labels``)."""
    from zslab.viz.laat_plots import ablation_bars  # matplotlib: only for the figures, not the experiment

    fig = ablation_bars(summary, metrics=tuple(metrics), title=title)
    ax = fig.axes[0]
    handles = ax.get_legend_handles_labels()[0]
    ax.legend(handles, [(labels or {}).get(m, m) for m in metrics], fontsize=8)
    ax.set_xlabel("training adversary")
    return fig


def curve_figure(curves: dict[str, dict[str, dict]], ylabels: dict[str, str], title: str = "Per-epoch curves",
                 chance: float | None = None):
    """One panel per history key (``{key: epoch_curves(rows, key)}``), one line per adversary row
    (mean over seeds, ±std band); ``chance`` (a fraction) dotted on the ``val_zs`` panel."""
    # matplotlib only for the figures: training and evaluating the rows never import it
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 3.8), squeeze=False)
    for ax, (key, cs) in zip(axes[0], curves.items()):
        for name, c in cs.items():
            ep = np.asarray(c["epoch"])
            m, s = 100 * np.asarray(c["mean"]), 100 * np.asarray(c["std"])
            ax.plot(ep, m, marker="o", label=name)
            if c["n"] > 1:
                ax.fill_between(ep, m - s, m + s, alpha=0.2)
        if chance is not None and key == "val_zs":
            ax.axhline(100 * chance, ls=":", color="grey", label="chance")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabels.get(key, key))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
