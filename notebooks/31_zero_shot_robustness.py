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
# # Zero-shot adversarial robustness of attribute models: APN, HAS and LAAT-style training
#
# **HAS** (Chen et al.) trains the attribute model APN on *semantic-preserving* adversarial samples: the generator
# descends the class loss while raising the prediction entropy and keeping features close (HAS Eq. 3–7, Algorithm 1),
# and the paper reports **accuracy** gains. Neither paper asks whether those samples buy any **robustness** against a
# real attacker. **LAAT** (Li et al.) trains for robustness (PGD-AT, A-CE onto text anchors, smoothness; §3.5–3.6)
# and transfers it zero-shot to novel classes through the anchors.
#
# Here all three families are trained on the **same** embedded `shapes` dataset and attacked the same way:
# unseen-class test images, classified among the unseen classes only (ZSL T1, HAS Eq. 8), L∞ attacks in [0, 1]
# pixel space — FGSM, PGD-20 and AutoAttack (standard) at ε = 8/255, plus PGD-20 over ε ∈ {1, 2, 4, 8}/255.
# APN/HAS classify by attribute dot products, the LAAT model by cosine to the class-name anchors (MiniLM, expanded).
#
# * `smoke` (default): tiny models and data, one seed — the numbers only show that the pipeline runs.
# * `full`: the dataset at full size, APN/HAS as in notebook 11's full study (30 epochs; cached runs reused),
#   LAAT-AT for 8 epochs of PGD-3, 3 seeds, 150 attacked images per run (15 per unseen class).
#
# Batch run: `papermill notebooks/31_zero_shot_robustness.ipynb out.ipynb -p preset full`.

# %% tags=["parameters"]
# Parameters (papermill).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"          # smoke | full (zslab.experiments.cross_paper.XP_PRESETS)
seeds = None              # None: the preset's seeds (full: [0, 1, 2])
cache_dir = "runs/study"  # trained runs, shared with notebooks 10-14 and 32-33 (keyed by config hash)
out_dir = "runs/31_zero_shot_robustness"
device = None             # None: each config's device ("auto") | "cpu" | "cuda"
threads = 1               # torch CPU threads (0: torch's default)
progress = False

# %%
import json
from pathlib import Path

from zslab.experiments import cross_paper as xp
from zslab.experiments import xp_robustness as xr
from zslab.viz import xp_plots

out, seeds, data = xp.notebook_setup(preset, seeds, cache_dir, out_dir, threads)
cfg = xp.xp_preset(preset)
print(f"preset {preset}: shapes, {len(data.train_classes)} training / {len(data.unseen_classes)} unseen classes; "
      f"seeds {seeds}; attacks {cfg['attacks']} at eps {cfg['eps'] * 255:g}/255 "
      f"on {cfg['max_images']} unseen images per run")

# %% [markdown]
# ## Train (or reuse) the three model families
# APN and HAS runs are the HAS study's (same configs, same cache); the LAAT-style model trains on the same images
# with anchors from the class names ("This is a photo of a small green dotted round head, …").

# %%
runs = xr.study_runs(preset, seeds)
rows = xp.run_rows(runs, cache_dir, data=data, progress=progress, device=device)
for r in rows:
    own = (f"ZSL T1 {100 * r['zsl_t1']:.1f} %, H {100 * r['gzsl_h']:.1f} %" if r["method"] != "laat"
           else f"5-way ZS clean {100 * r['zs_clean']:.1f} %, PGD {100 * r['zs_pgd']:.1f} %")
    print(f"{r['name']:5s} seed {r['seed']}: {'cached' if r['cached'] else 'trained'}; {own}")

# %% [markdown]
# ## Attack every model on the unseen classes
# Each result is cached next to its run (`xp_robustness.json`, keyed by the attack protocol).

# %%
rows = xr.evaluate_rows(rows, preset, data=data, progress=progress)
summary = xr.summarize(rows)
chance = 1.0 / summary[rows[0]["name"]]["n_classes"]
labels = {"apn": "APN", "has": "HAS", "laat": "LAAT-AT (text anchors)"}
fig = xp_plots.robustness_bars(summary, ("clean", *cfg["attacks"]), eps_text=f"{cfg['eps'] * 255:g}/255",
                               row_labels=labels, chance=chance,
                               title="Zero-shot accuracy on unseen shapes classes: attribute models vs LAAT-AT")
fig.savefig(out / "robustness_bars.png", dpi=120)
fig = xp_plots.eps_curves(summary, row_labels=labels, chance=chance)
fig.savefig(out / "eps_curves.png", dpi=120)
for n, m in summary.items():
    print(f"{labels[n]:24s} " + "  ".join(f"{k} {100 * m[k]['mean']:.1f}±{100 * m[k]['std']:.1f}"
                                          for k in ("clean", *cfg["attacks"], "worst")))

# %% [markdown]
# ## What the numbers say
# The sentences below are computed from the table above (mean ± std over seeds; "within the seed spread" means the
# difference is not larger than the larger of the two standard deviations).

# %%
lines = xr.conclusions(summary)
print("\n".join(lines))
results = {"notebook": "31_zero_shot_robustness", "preset": preset, "seeds": sorted({r["seed"] for r in rows}),
           "protocol": {"attacks": list(cfg["attacks"]), "eps": cfg["eps"], "max_images": cfg["max_images"],
                        "setting": "unseen test images, unseen candidates (ZSL T1)"},
           "summary": summary, "conclusions": lines,
           "runs": [{k: r[k] for k in ("name", "seed", "run_dir", "cached")} for r in rows],
           "figures": ["robustness_bars.png", "eps_curves.png"]}
(out / "results.json").write_text(json.dumps(results, indent=2))
# the per-example worst case over attacks can be no better than any single attack
assert all(summary[n]["worst"]["mean"] <= min(summary[n][a]["mean"] for a in cfg["attacks"]) + 1e-9 for n in summary)
print(results["figures"])
