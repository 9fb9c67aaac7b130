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
# # HAS vs APN and the loss ablation (HAS Tables 1–2)
#
# HAS (§3.3–3.7) trains APN on adversarial samples generated, with the model frozen, by signed-gradient
# *descent* on L_CLS − λ_rob·L_ROB + λ_rel·L_REL + λ_div·L_DIV (Eq. 3–7; signs and weights as in
# `zslab.methods.has`). Table 1 compares HAS with the APN baseline; Table 2 switches the generator's terms on one
# by one: **cls** (only L_CLS), **cls+rob**, **cls+div**, **cls+rob+rel**, **cls+div+rel**, **has** (all).
# Metrics (§4.1): ZSL T1 (per-class top-1 on unseen classes, Eq. 8) and GZSL U/S/H with calibrated stacking
# (Eq. 9), μ and the checkpoint chosen on the validation split. We add the **localisation** score the paper
# could not compute: the share of each attribute's attention inside the mask of the part that carries it
# (`zslab.eval.localisation`; test-unseen images).
#
# Batch run: `papermill notebooks/11_has_vs_apn.ipynb out.ipynb -p preset full`.

# %% tags=["parameters"]
# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU and only checks
# the pipeline; `full` is the embedded default dataset with 3 seeds (zslab.experiments.STUDY_PRESETS).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"          # smoke | full
seeds = None              # None: the preset's seeds, e.g. [0, 1, 2]
cache_dir = "runs/study"  # trained run directories, shared by notebooks 10-14 and reused on re-runs
out_dir = "runs/has_vs_apn"
device = "auto"           # auto | cpu | cuda
progress = True
threads = 0               # torch CPU threads; 0: 1 for smoke (tiny models: threads only add overhead), else torch's default
table2_rows = None        # None: the preset's Table-2 rows (full: all of zslab.methods.has.TABLE2_ROWS)

# %%
import json

import matplotlib.pyplot as plt

from zslab import viz
from zslab.experiments import has_study as hs

out, seeds, data, study = hs.notebook_setup(preset, seeds, cache_dir, out_dir, threads)
print(f"preset {preset}: seeds {seeds}; {len(data.splits['train'])} training images, "
      f"{len(data.unseen_classes)} unseen classes")

# %% [markdown]
# ## Train every row (cached) and evaluate

# %%
runs = hs.table2_configs(preset, rows=table2_rows, seeds=seeds)
rows = hs.run_study(runs, cache_dir, data=data, progress=progress, device=device)

from zslab.eval.localisation import attention_in_part
from zslab.train import load_run
for r in rows:
    _, _, model, _ = load_run(r["run_dir"], data=data, device=device)
    r["localisation"] = attention_in_part(model, data, "test_unseen", max_images=study["max_images"],
                                          progress=False)["mean"]
summary = hs.summarize(rows, metrics=hs.METRICS + ("localisation",))
for name, e in summary.items():
    print(f"{name:12s} " + "  ".join(f"{m} {100 * e[m]['mean']:5.1f}±{100 * e[m]['std']:4.1f}"
                                     for m in hs.METRICS + ("localisation",)))
assert len(rows) == len(runs) == len(summary) * len(seeds)
for r in rows:
    for m in hs.METRICS + ("localisation",):
        assert 0.0 <= r[m] <= 1.0, (r["name"], m, r[m])

# %% [markdown]
# ## Table 1: HAS vs APN

# %%
labels = {"baseline": "APN (baseline)", "cls": "+L_CLS", "cls+rob": "+L_CLS+L_ROB", "cls+div": "+L_CLS+L_DIV",
          "cls+rob+rel": "+L_CLS+L_ROB+L_REL", "cls+div+rel": "+L_CLS+L_DIV+L_REL", "has": "HAS (all terms)"}
assert "baseline" in summary and "has" in summary, "Table 1 needs the rows 'baseline' (APN) and 'has'"
table1 = {k: summary[k] for k in ("baseline", "has")}
fig = viz.summary_table(table1, metrics=hs.METRICS + ("localisation",), row_labels=labels,
                        title=f"Table 1 on shapes ({preset} preset): APN vs HAS")
fig.savefig(out / "table1_has_vs_apn.png", dpi=120)

# %% [markdown]
# ## Table 2: which generator terms matter

# %%
fig = viz.summary_table(summary, metrics=hs.METRICS + ("localisation",), row_labels=labels,
                        title=f"Table 2 on shapes ({preset} preset): HAS loss ablation")
fig.savefig(out / "table2_ablation.png", dpi=120)
deltas = hs.paired_deltas(rows, "baseline", metrics=hs.METRICS + ("localisation",))
fig = viz.delta_bars(summary, baseline="baseline", metrics=("zsl_t1", "gzsl_h", "localisation"), deltas=deltas,
                     title="Loss ablation: change vs the APN baseline", xlabel="Table 2 row (generator terms)",
                     baseline_label="APN")
fig.savefig(out / "table2_delta.png", dpi=120)

# %%
results = {"notebook": "11_has_vs_apn", "preset": preset, "seeds": seeds, "rows": rows, "summary": summary,
           "has_minus_apn": {m: summary["has"][m]["mean"] - summary["baseline"][m]["mean"]
                             for m in hs.METRICS + ("localisation",)}, "paired_deltas": deltas,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(json.dumps(results["has_minus_apn"], indent=1))
