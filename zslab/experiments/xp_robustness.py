"""Cross-paper experiment 1 (notebook 31): zero-shot adversarial robustness of attribute models.

Question: HAS (Algorithm 1) trains APN on *semantic-preserving* adversarial samples to gain
accuracy. Does harnessing adversarial samples for accuracy buy any robustness against real
attacks on unseen classes? We attack APN, HAS and a LAAT-style adversarially trained anchor
model (LAAT §3.5–3.6: PGD-AT with A-CE + smoothness onto text anchors of the class names) —
all trained on the same embedded ``shapes`` dataset — with FGSM, PGD-20 and AutoAttack at
ε = 8/255 on the unseen classes (:func:`zslab.experiments.cross_paper.zsl_robustness`), and
trace robust accuracy over ε with PGD-20.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zslab.experiments import cross_paper as xp
from zslab.experiments import runner

#: rows of the study (run table ``robustness`` of ``recipes/studies/cross_paper.yaml``)
ROWS = tuple(runner.table_rows(runner.table_spec("cross_paper", "robustness")))
#: PGD-20 radii of the ε curve (in [0, 1] pixel units)
EPS_CURVE = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
def study_runs(preset: str = "smoke", seeds=None, rows=ROWS) -> list[dict]:
    """One ``{"name", "config"}`` per (row, seed): APN and HAS as in the HAS study (shared cache),
    LAAT-AT on the same data with text-name anchors (:func:`cross_paper.laat_config`); run table
    ``robustness`` of ``recipes/studies/cross_paper.yaml``."""
    return runner.study_runs("cross_paper", "robustness", preset, rows, seeds)


def evaluate_row(row: dict, preset: str = "smoke", data=None, progress: bool = False) -> dict:
    """Zero-shot robustness of one trained row: clean, each attack at the preset's ε, the
    per-example worst case, and PGD-20 over :data:`EPS_CURVE` (each evaluation cached next to the
    run by :func:`cross_paper.zsl_robustness`, shared with the other cross-paper notebooks)."""
    run_dir = Path(row["run_dir"])
    main = xp.zsl_robustness(run_dir, preset=preset, data=data, progress=progress)
    max_images = xp.xp_preset(preset)["max_images"]
    curve = {}
    for e in EPS_CURVE:
        r = xp.zsl_robustness(run_dir, attacks=["pgd20"], eps=e, max_images=max_images, data=data, progress=progress)
        curve[f"{e * 255:g}/255"] = r["robust"]["pgd20"]
    return {**main, "eps_curve": curve}


def evaluate_rows(rows: list[dict], preset: str = "smoke", data=None, progress: bool = False) -> list[dict]:
    """:func:`evaluate_row` for every trained row; returns the rows with a ``robustness`` entry."""
    out = []
    for row in tqdm(rows, desc="attacks", disable=not progress):
        out.append({**row, "robustness": evaluate_row(row, preset, data=data)})
    return out


def _stat(values) -> dict:
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float)
    if not len(v):
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def summarize(rows: list[dict]) -> dict[str, dict]:
    """name -> metric -> {mean, std, n} over seeds, accuracies in [0, 1]: ``clean``, each attack,
    ``worst``, ``pgd20@E`` for the ε curve, and the training-time metric of the family
    (APN/HAS: ``zsl_t1``, ``gzsl_h``; LAAT: ``zs_clean``, ``zs_pgd`` of its 5-way episodes)."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["name"], []).append(r)
    out = {}
    for name, rs in by.items():
        m: dict[str, dict] = {}
        rob = [r["robustness"] for r in rs]
        m["clean"] = _stat([x["clean"] for x in rob])
        for a in rob[0]["robust"]:
            m[a] = _stat([x["robust"][a] for x in rob])
        m["worst"] = _stat([x["worst"] for x in rob])
        for e in rob[0]["eps_curve"]:
            m[f"pgd20@{e}"] = _stat([x["eps_curve"][e] for x in rob])
        for k in ("zsl_t1", "gzsl_h", "zs_clean", "zs_pgd"):
            vals = [r.get(k) for r in rs]
            if any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in vals):
                m[k] = _stat([v for v in vals if v is not None])
        m["seeds"] = sorted(r["seed"] for r in rs)
        m["n_images"] = rob[0]["n"]
        m["n_classes"] = rob[0]["n_classes"]
        out[name] = m
    return out


def conclusions(summary: dict, attack: str = "pgd20") -> list[str]:
    """Sentences read off the numbers (no claim is written in advance): HAS vs APN robustness,
    and the adversarially trained anchor model vs both, with the seed spread."""
    def f(name, key):
        s = summary[name][key]
        return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"

    lines = []
    if {"apn", "has"} <= summary.keys():
        a, h = summary["apn"], summary["has"]
        d_clean = 100 * (h["clean"]["mean"] - a["clean"]["mean"])
        d_rob = 100 * (h[attack]["mean"] - a[attack]["mean"])
        spread = 100 * max(a[attack]["std"], h[attack]["std"])
        if min(a[attack]["n"], h[attack]["n"]) < 2:
            verdict = "one seed only, so no seed spread to judge the difference against"
        elif abs(d_rob) <= spread:
            verdict = "within the seed spread — no robustness gain"
        else:
            verdict = "HAS more robust" if d_rob > 0 else "HAS less robust"
        lines.append(f"HAS vs APN: clean zero-shot accuracy {f('has', 'clean')} vs {f('apn', 'clean')} % "
                     f"({d_clean:+.1f} pp); under {attack} {f('has', attack)} vs {f('apn', attack)} % "
                     f"({d_rob:+.1f} pp): {verdict}.")
        for k in ("fgsm", "autoattack"):
            if k in h and k in a:
                lines.append(f"  {k}: HAS {f('has', k)} vs APN {f('apn', k)} %.")
    if "laat" in summary:
        l = summary["laat"]
        best_attr = max((n for n in ("apn", "has") if n in summary), key=lambda n: summary[n][attack]["mean"],
                        default=None)
        if best_attr is not None:
            gap = 100 * (l[attack]["mean"] - summary[best_attr][attack]["mean"])
            lines.append(f"LAAT-style AT: clean {f('laat', 'clean')} %, {attack} {f('laat', attack)} % — "
                         f"{gap:+.1f} pp over the more robust attribute model ({best_attr.upper()}); "
                         f"clean accuracy vs it: {100 * (l['clean']['mean'] - summary[best_attr]['clean']['mean']):+.1f} pp.")
    chance = 100.0 / next(iter(summary.values()))["n_classes"]
    lines.append(f"Chance level: {chance:.1f} % ({next(iter(summary.values()))['n_classes']} unseen classes); "
                 f"{next(iter(summary.values()))['n_images']} attacked images per run.")
    return lines
