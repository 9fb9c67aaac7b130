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
# # LAAT training experiments: anchors, zero-shot robustness ablations, few-shot curves
#
# LAAT (Li et al., CVPR 2024) trains an image encoder adversarially (PGD-AT, ε = 8/255, 7 steps of 2/255) to map
# images onto **frozen text anchors** (class names in a prompt, encoded by a text encoder) with the anchor-based
# cross-entropy A-CE (Eq. 3/8, temperature τ) and a smoothness loss −cos(f(x), f(x+δ)) weighted by α (Eq. 4).
# Because text anchors of different classes are nearly parallel (high cosine, Sec. 3.3) it **expands** them
# (Appendix C, Alg. 1), fitted on the training classes and applied unchanged to novel ones. A novel class is
# recognised by the anchor of highest cosine, so the robustness learnt on seen classes carries over zero-shot.
#
# This notebook reproduces, at CPU scale:
# * **Fig. 3** — validation zero-shot accuracy per epoch with original, expanded and MMC anchors (MMC: a regular
#   simplex without semantics, §3.3 — its novel-class anchors carry no information, so it cannot transfer);
# * **the real-image study** — original vs expanded anchors × without/with smoothness, clean and PGD-20
#   zero-shot accuracy, mean ± std over seeds;
# * **Table 5** (EXP / A-CE / SM on or off), **Table 4** (A-CE vs cosθ, θ, Euclidean objectives), **Table 6**
#   (TRADES vs the smoothness loss), **Table S1** (τ): zero-shot (ZS) and generalised zero-shot (GZSL) accuracy, clean
#   and under PGD;
# * **Fig. 5** — few-shot accuracy over shots with image prototypes vs image–text blended anchors (β = 2).
#
# Presets: `smoke` (default) — the embedded `shapes` dataset, tiny, a few rows that share runs through the run
# cache; its numbers only show the pipeline runs. `full` — the real CIFAR-10 image folders (`data_root`) with
# **cat, dog, ship held out as novel** and deer, truck as validation classes, the offline MiniLM encoder, Conv4-64,
# 700 training images per class, 10 epochs (lr ×0.1 after 7), PGD-20 evaluation, 3 seeds (about 12 CPU-minutes
# per run). Batch run:
# `papermill notebooks/21_laat_robustness.ipynb out.ipynb -p preset full` (set `run_ablations=False` to run only
# Fig. 3, the 4-row study and Fig. 5 on a CPU).

# %% tags=["parameters"]
# Parameters (papermill).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"               # smoke | full (zslab.experiments.laat_study.STUDY_PRESETS)
seeds = None                   # None: the preset's seeds (full: [0, 1, 2])
data_root = None               # full: CIFAR-10 folders root/{train,test}/<class>/; None: $ZSLAB_DATA/cifar10
cache_dir = "runs/study"  # the one run cache of every notebook (keyed by method and config hash; finished runs are reused, others resumed)
out_dir = "runs/21_laat_robustness"
device = None                  # None: each config's device ("auto") | "cpu" | "cuda"
progress = False
threads = 1                    # torch CPU threads (0: torch's default)
run_ablations = True           # Tables 4, 5, 6, S1 (full: every row x 3 seeds, many runs)

# %%
import json
from pathlib import Path

import numpy as np
import torch

from zslab.experiments import laat_study as ls
from zslab.experiments.paths import work_path
from zslab.viz import laat_plots as lp

if threads:
    torch.set_num_threads(threads)
out = work_path(out_dir)
out.mkdir(parents=True, exist_ok=True)
study = ls.STUDY_PRESETS[preset]
seeds = list(seeds) if seeds is not None else list(study["seeds"])
data = ls.load_study_data(preset, data_root=data_root)  # full: a clear error names the missing CIFAR-10 folder
names = list(data.class_names)
print(f"preset {preset}: {data.name}, seeds {seeds}; {len(data.train_classes)} training classes, "
      f"{len(data.val_classes)} validation classes, novel: {[names[c] for c in data.unseen_classes.tolist()]}; "
      + ", ".join(f"{k}: {len(v)}" for k, v in data.splits.items()))
assert len(data.unseen_classes) >= 2 and len(data.val_classes) >= 2
assert not set(data.unseen_classes.tolist()) & set(data.train_classes.tolist())

# %% [markdown]
# ## Fig. 3: learning curves with original, expanded and MMC anchors
#
# Same training (A-CE, α = 3, PGD-AT) with three anchor sets; the curve is the clean zero-shot accuracy on the
# *validation* classes after each epoch (the engine's model-selection metric `val_zs`). The paper's Fig. 3: expanded
# anchors learn faster and reach higher accuracy than the original ones; MMC anchors stay at chance on new classes.

# %%
fig3_runs = ls.curve_configs(preset, data=data, out_dir=work_path(cache_dir) / "anchors", seeds=seeds, data_root=data_root)
fig3_rows = ls.run_rows(fig3_runs, cache_dir, data=data, progress=progress, device=device)
curves = ls.learning_curves(fig3_rows)
fig = lp.anchor_curves(curves, chance=1 / len(data.val_classes),
                       title=f"Validation zero-shot accuracy per epoch ({data.name}, {preset})")
fig.savefig(out / "fig3_learning_curves.png", dpi=120)
for name, c in curves.items():
    print(f"{name:9s} val zero-shot acc per epoch:", [round(100 * v, 1) for v in c["mean"]])
assert set(curves) == {"original", "expanded", "mmc"}
assert all(len(c["mean"]) == fig3_runs[0]["config"]["epochs"] for c in curves.values())
# the anchors each run trained with: MMC is a regular simplex (cos = -1/(C-1)); the expansion lowers the cosine
final = {r["name"]: json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["final"] for r in fig3_rows}
C = len(data.train_classes)
assert abs(final["mmc"]["anchor_mean_cos"] - (-1 / (len(names) - 1))) < 0.02, final["mmc"]["anchor_mean_cos"]
assert final["expanded"]["anchor_mean_cos"] < final["original"]["anchor_mean_cos"] == final["original"]["raw_anchor_mean_cos"]
print("mean cosine of the training anchors: original %.3f, expanded %.3f, MMC %.3f"
      % tuple(final[k]["anchor_mean_cos"] for k in ("original", "expanded", "mmc")))

# %% [markdown]
# ## Original vs expanded anchors, with and without smoothness
#
# The study (on CIFAR-10 under `full`): A-CE, PGD-AT, α ∈ {0, 3} × expand ∈ {off, on}. `zs_clean`/`zs_pgd`:
# N-way episodes on the novel classes (N = 3 under `full`: all of cat, dog, ship) clean and under PGD-20 (ε = 8/255,
# step 2/255, random start, on the A-CE of the candidate anchors; an example counts as robust only if it is right
# both clean and attacked); `gzsl_*`: N-way over every class; `gzsl_cs_*` (beyond the paper): GZSL with calibrated
# stacking, the training classes' cosines lowered by μ chosen on the validation split (HAS Eq. 9), U / S / H over
# training ∪ novel classes, beside H with μ = 0 over the same classes (`gzsl_*` also has the validation classes as
# candidates) — plain N-way GZSL mostly predicts training classes.

# %%
robust_runs = ls.robustness_configs(preset, seeds=seeds, data_root=data_root)
robust_rows = ls.run_rows(robust_runs, cache_dir, data=data, progress=progress, device=device)
robust = ls.summarize(robust_rows, metrics=ls.METRICS + ls.CS_METRICS)
for r in robust_rows:
    for m in ls.METRICS:
        assert 0.0 <= r[m] <= 1.0, (r["name"], m, r[m])
    assert r["gzsl_pgd"] <= r["gzsl_clean"] + 1e-9, r["name"]  # robust ⊆ clean on the same images
assert len(robust_rows) == len(robust) * len(seeds)
fig = lp.ablation_table(robust, metrics=ls.METRICS + ("gzsl_cs_h_uncalibrated", "gzsl_cs_h"),
                       title=f"Anchors x smoothness ({data.name}, {preset})")
fig.savefig(out / "robustness_table.png", dpi=120)
fig = lp.ablation_bars(robust, title=f"Zero-shot accuracy, clean and PGD ({data.name})")
fig.savefig(out / "robustness_bars.png", dpi=120)
for k, v in robust.items():
    print(f"{k:12s}", "  ".join(f"{m} {100 * v[m]['mean']:.1f}±{100 * v[m]['std']:.1f}" for m in ls.METRICS + ls.CS_METRICS))

# %% [markdown]
# ## Tables 5, 4, 6 and S1: ablations
#
# * **Table 5** — `baseline` (original anchors, Euclidean loss, no SM), `ace`, `exp+ace`, `ace+sm`, `exp+ace+sm`;
# * **Table 4** — the objective with expanded anchors and α = 3: A-CE, cosθ, θ, Euclidean (PGD ascends the same one);
# * **Table 6** — the smoothness loss (α = 1, 3) vs TRADES (β = 1/λ = 1, 6) for the consistency term;
# * **Table S1** — the temperature τ of A-CE (Eq. 8).
#
# Each row's config differs from the LAAT default only in the keys named (checked below); equal configs share one run.

# %%
tables = {}
if run_ablations:
    for tag, runs in (("table5", ls.table5_configs(preset, seeds=seeds, data_root=data_root)),
                      ("table4", ls.table4_configs(preset, seeds=seeds, data_root=data_root)),
                      ("table6", ls.table6_configs(preset, seeds=seeds, data_root=data_root)),
                      ("tableS1", ls.tableS1_configs(preset, seeds=seeds, data_root=data_root))):
        base = ls.study_config(preset, seed=runs[0]["config"]["seed"], data_root=data_root)
        for r in runs:  # a row changes only its own keys
            if r["config"]["seed"] == base["seed"]:
                changed = set(ls.row_diff(base, r["config"]))
                assert changed <= {"expand", "objective", "alpha", "trades_beta", "tau"}, (r["name"], changed)
        rows = ls.run_rows(runs, cache_dir, data=data, progress=progress, device=device)
        tables[tag] = {"rows": rows, "summary": ls.summarize(rows)}
        fig = lp.ablation_table(tables[tag]["summary"], title=f"{tag} ({data.name}, {preset})")
        fig.savefig(out / f"{tag}.png", dpi=120)
        print(tag, {k: (round(100 * v["zs_clean"]["mean"], 1), round(100 * v["zs_pgd"]["mean"], 1))
                    for k, v in tables[tag]["summary"].items()})
    assert all(len(t["summary"]) >= 1 for t in tables.values())
    cached = sum(r["cached"] for t in tables.values() for r in t["rows"])
    print(f"{cached} of {sum(len(t['rows']) for t in tables.values())} ablation runs came from the run cache")

# %% [markdown]
# ## Fig. 5: few-shot with image prototypes vs blended anchors
#
# With K labelled images per novel class, LAAT (§4.3) blends them into the text anchor: â' = normalise(β·â + Σ f(x_k)),
# β = 2, against the plain image prototype mean f(x_k). Evaluated on the model of the `expanded` Fig. 3 run (first seed).

# %%
fs_row = next(r for r in fig3_rows if r["name"] == "expanded")
few = ls.few_shot_curves(fs_row["run_dir"], study["shots"], data=data, beta=2.0, episodes=study["few_shot_episodes"],
                         n_query=study["few_shot_query"], attack=study["few_shot_attack"], device=device)
fig = lp.few_shot_plot(few, title=f"Few-shot accuracy on novel classes ({data.name}, {preset})")
fig.savefig(out / "fig5_few_shot.png", dpi=120)
for mode, c in few.items():
    print(mode, dict(zip(c["shots"], [round(100 * v, 1) for v in c["clean"]])))
    assert len(c["clean"]) == len(study["shots"]) and all(0.0 <= v <= 1.0 for v in c["clean"])


# %%
def strip(rows):
    return [{k: v for k, v in r.items()} for r in rows]

results = {"notebook": "21_laat_robustness", "preset": preset, "seeds": seeds, "dataset": data.name,
           "novel_classes": [names[c] for c in data.unseen_classes.tolist()],
           "val_classes": [names[c] for c in data.val_classes.tolist()],
           "fig3_curves": curves, "fig3_rows": strip(fig3_rows),
           "robustness": robust, "robustness_rows": strip(robust_rows),
           "ablations": {k: {"summary": t["summary"], "rows": strip(t["rows"])} for k, t in tables.items()},
           "few_shot": few, "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
assert json.loads((out / "results.json").read_text())["robustness"].keys() == robust.keys()
print(results["figures"])
