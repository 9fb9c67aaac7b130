# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # HAS perturbations as LAAT's adversary, vs plain PGD
#
# **Question.** LAAT (Li et al., CVPR 2024) gets zero-shot adversarial robustness by adversarial training against
# frozen text anchors: each training image is replaced by a PGD sample that *ascends* the anchor cross-entropy
# A-CE over the training classes (LAAT Eq. 3, Sec. 3.5; ε = 8/255, random start). HAS (Chen et al., ACM MM 2023)
# also trains on perturbed images, but its generator *descends* a composite loss: keep the label, make the image
# resemble negative classes (raise the class entropy) and stay close to the clean features — "semantic-preserving"
# augmentation for zero-shot accuracy, not robustness. What happens to LAAT's clean and robust zero-shot accuracy
# when its PGD adversary is replaced by the HAS generator, and what does it cost?
#
# **The adapted objective** (config `adversary: has`, `zslab.methods.laat.has_adversary`). With the model frozen in eval
# mode, T = `pgd_steps` signed-gradient **descent** steps of size `pgd_step` (HAS Eq. 4; the paper's "+" is a sign
# typo, GUIDE §2), projected onto the same ε = `pgd_eps` ball ∩ [0, 1], starting from δ = 0 (HAS: I₀ = I), on
#
# $$\mathcal{L}(x+\delta) = \underbrace{-\log\frac{e^{\cos(f(x+\delta),\hat a_y)/\tau}}{\sum_{c\in\mathcal Y^s} e^{\cos(f(x+\delta),\hat a_c)/\tau}}}_{\text{A-CE (LAAT Eq. 3) = HAS } L_{CLS}}
# \;-\;\lambda_{rob}\,\underbrace{H\big(\mathrm{softmax}_c\,\cos(f(x+\delta),\hat a_c)/\tau\big)}_{\text{HAS Eq. 5}}
# \;+\;\lambda_{rel}\,\underbrace{\lVert f(x+\delta)-f(x)\rVert_2^2}_{\text{HAS Eq. 6}}$$
#
# with λ_rob = 1, λ_rel = 0.1 (the official HAS AwA2/SUN weights), f(x) the embedding of the clean image computed
# once per batch without gradient, and **no diversity term** (HAS Eq. 7 perturbs attribute attention maps; an
# anchor model has none). PGD ascends the A-CE alone. The training step itself is LAAT's unchanged:
# A-CE(f(x+δ)) + α·(−cos(f(x), f(x+δ))), α = 3.
#
# **Rows** (same data, anchors, model and schedule; only the adversary differs): `none` (clean A-CE training, no
# smoothness), `pgd` (LAAT; the same run as notebook 31's LAAT row, shared through the run cache), `has`, and under
# `full` also `has+pgd` (half of each batch each). **Metrics**: LAAT's own 5-way zero-shot episodes clean / PGD
# (`zs_clean`, `zs_pgd`); zero-shot accuracy over *all* unseen classes clean and under FGSM, PGD-20, AutoAttack at
# ε = 8/255 and the per-example worst case (`cross_paper.zsl_robustness`); the cost of the training passes.
#
# Presets: `smoke` (default) checks the pipeline in seconds — its numbers mean nothing. `full`: 3 seeds, the numbers
# to report: `papermill notebooks/33_has_adversary_laat.ipynb out.ipynb -p preset full`.

# %% tags=["parameters"]
# Parameters (papermill).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"                      # smoke | full (zslab.experiments.cross_paper.XP_PRESETS)
seeds = None                          # None: the preset's seeds (full: [0, 1, 2])
rows = None                           # None: the preset's rows (smoke: none, pgd, has; full: + has+pgd)
cache_dir = "runs/study"              # trained runs (shared with notebooks 10-14 and 31-32 by config hash)
out_dir = "runs/33_has_adversary_laat"
threads = 1                           # torch CPU threads (0: torch's default)
progress = False

# %%
import json
from pathlib import Path

from zslab.experiments import cross_paper as cp
from zslab.experiments import laat_study as ls
from zslab.experiments import xp_has_adversary as xa

out, seeds, data = cp.notebook_setup(preset, seeds, cache_dir, out_dir, threads)  # data cached, shared with 31-32
xp = cp.xp_preset(preset)
runs = xa.adversary_configs(preset, rows=rows, seeds=seeds)
names = list(dict.fromkeys(r["name"] for r in runs))
print(f"preset {preset}: {data.name}, seeds {seeds}, rows {names}; {len(data.train_classes)} training classes, "
      f"{len(data.unseen_classes)} unseen classes")
# the 'pgd' row is the plain cross-paper LAAT config (notebook 31's run), and every other row changes only its own keys
for r in runs:
    base = cp.laat_config(preset, seed=r["config"]["seed"])
    changed = set(ls.row_diff(base, r["config"]))
    assert changed == set(xa.ROWS[r["name"]]) - {k for k, v in xa.ROWS[r["name"]].items() if base.get(k) == v}, (r["name"], changed)
    if r["name"] == "pgd":
        assert r["config"] == base
cfg0 = next((r["config"] for r in runs if r["name"] != "none"), runs[0]["config"])
print(f"adversary budget: eps {255 * cfg0['pgd_eps']:.0f}/255 (row 'none': 0), {cfg0['pgd_steps']} steps of {255 * cfg0['pgd_step']:.0f}/255; "
      f"HAS weights lambda_rob {cfg0['adv_lambda_rob']}, lambda_rel {cfg0['adv_lambda_rel']}")

# %% [markdown]
# ## Train (or reuse) every row, then attack it on the unseen classes
#
# Each run directory is keyed by its config's hash under `cache_dir`: rows already trained by another notebook are
# reused. The zero-shot robustness evaluation is cached in the run directory too.

# %%
results_rows = xa.run_adversary_rows(runs, cache_dir, preset, data=data, progress=progress)
attacks = list(xp["ablation_attacks"])
metrics = xa.metrics_for(attacks)
for r in results_rows:
    for m in metrics[:-1]:
        assert 0.0 <= r[m] <= 1.0, (r["name"], m, r[m])
    for a in attacks:  # robust counts an example only if it is right clean and attacked
        assert r["zsl_worst"] <= r[f"zsl_{a}"] <= r["zsl_clean"] + 1e-9, (r["name"], a)
    assert len(r["val_zs"]) == len(r["train_acc"]) == cfg0["epochs"], r["name"]
    print(f"{r['name']:8s} seed {r['seed']} {'(cached)' if r['cached'] else '':9s} zs clean {100 * r['zs_clean']:.1f} "
          f"pgd {100 * r['zs_pgd']:.1f} | all-unseen clean {100 * r['zsl_clean']:.1f} "
          + " ".join(f"{a} {100 * r['zsl_' + a]:.1f}" for a in attacks) + f" worst {100 * r['zsl_worst']:.1f}"
          + f" | train {r['train_pass_seconds']:.1f}s")
summary = xa.summarize(results_rows, metrics)
assert list(summary) == names

# %% [markdown]
# ## Clean and robust zero-shot accuracy per adversary
#
# Left group of bars: all unseen classes (`zsl_*`); the LAAT-protocol 5-way episodes follow in the table printed
# below. Error bars: std over seeds.

# %%
labels = {"zsl_clean": "clean", "zsl_worst": "worst case", **{f"zsl_{a}": a.upper() if a != "autoattack" else "AutoAttack"
                                                               for a in attacks},
          "zs_clean": "5-way clean", "zs_pgd": "5-way PGD"}
bar_metrics = ["zsl_clean"] + [f"zsl_{a}" for a in attacks]
fig = xa.adversary_bars(summary, bar_metrics, labels=labels,
                        title=f"All unseen classes, eps {255 * xp['eps']:.0f}/255 ({preset})")
fig.savefig(out / "bars_all_unseen.png", dpi=120)
fig = xa.adversary_bars(summary, ["zs_clean", "zs_pgd"], labels=labels,
                        title=f"LAAT 5-way episodes ({preset})")
fig.savefig(out / "bars_5way.png", dpi=120)
for n, v in summary.items():
    print(f"{n:8s}", "  ".join(f"{labels.get(m, m)} {100 * v[m]['mean']:.1f}±{100 * v[m]['std']:.1f}"
                               for m in metrics[:-1]), f"  train {v['train_pass_seconds']['mean']:.1f}s")

# %% [markdown]
# ## Per-epoch curves
#
# Left: validation zero-shot accuracy (pseudo-novel classes; the model-selection metric). Right: train-mode accuracy
# on the *training-time perturbed* batch — a PGD sample is built to be misclassified, a HAS sample to keep its
# label, so this panel shows each adversary doing what it is meant to.

# %%
curves = {"val_zs": xa.epoch_curves(results_rows, "val_zs"), "train_acc": xa.epoch_curves(results_rows, "train_acc")}
fig = xa.curve_figure(curves, {"val_zs": "val zero-shot accuracy (%)", "train_acc": "acc. on perturbed train batch (%; none: clean)"},
                      title=f"Training per adversary ({data.name}, {preset})", chance=1 / len(data.val_classes))
fig.savefig(out / "curves.png", dpi=120)
for n in names:
    print(f"{n:8s} val_zs", [round(100 * v, 1) for v in curves["val_zs"][n]["mean"]],
          " train acc", [round(100 * v, 1) for v in curves["train_acc"][n]["mean"]])
assert all(len(c["mean"]) == cfg0["epochs"] for cs in curves.values() for c in cs.values())

# %%
cost = xa.cost_ratio(results_rows, "has", "pgd") if {"has", "pgd"} <= set(names) else None
cost_mixed = xa.cost_ratio(results_rows, "has+pgd", "pgd") if {"has+pgd", "pgd"} <= set(names) else None
if cost is not None:
    print(f"training-pass time has/pgd: {cost['mean']:.2f} (per seed {[round(x, 2) for x in cost['ratios']]}; "
          f"same number of forward+backward passes by construction: {cfg0['pgd_steps']} generation steps each)")
    assert cost["mean"] > 0
findings = xa.conclusions(summary, cost, attacks, n_images=results_rows[0]["zsl_n"])
results = {"notebook": "33_has_adversary_laat", "preset": preset, "seeds": seeds, "dataset": data.name,
           "rows": names, "attacks": attacks, "eps": xp["eps"], "metrics": list(metrics), "summary": summary,
           "cost_has_over_pgd": cost, "cost_mixed_over_pgd": cost_mixed, "curves": curves,
           "runs": results_rows, "conclusions": findings,
           "config_pgd": runs[names.index("pgd") * len(seeds)]["config"] if "pgd" in names else None,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2, default=str))
assert json.loads((out / "results.json").read_text())["summary"].keys() == summary.keys()
print(results["figures"])

# %% [markdown]
# ## Conclusions
#
# Computed from the numbers above (`xa.conclusions`; nothing here is written by hand). Under `smoke` they only show
# the pipeline runs; read the `full` preset's (3 seeds).

# %%
print("\n".join(f"- {line}" for line in findings))
