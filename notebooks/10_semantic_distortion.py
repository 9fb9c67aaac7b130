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
# # Semantic distortion: traditional augmentations vs attribute ZSL (Fig. 2, Table 3)
#
# HAS (§1, §4.5) argues that ordinary augmentations change what an image *means* for attribute-based ZSL:
# colour jitter and grayscale change colour attributes, crops remove parts, mixing blends two classes'
# attributes. On the embedded dataset colour *is* an attribute (head/body colour).
#
# **Fig. 2, quantified.** A trained APN predicts attributes â = g(x)ᵀV on clean test-seen images and on
# augmented versions; per attribute group (e.g. "body colour") we count how often the predicted value
# (the group's argmax) stays the same, and the accuracy against the image's true attribute values.
#
# **Table 3.** APN trained with each augmentation (`augment` config key, `zslab.augment`), ZSL T1 and GZSL
# U/S/H compared with no augmentation.

# %% tags=["parameters"]
# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU and only checks
# the pipeline; `full` is the embedded default dataset with 3 seeds (zslab.experiments.STUDY_PRESETS).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"          # smoke | full
seeds = None              # None: the preset's seeds, e.g. [0, 1, 2]
cache_dir = "runs/study"  # trained run directories, shared by notebooks 10-14 and reused on re-runs
out_dir = "runs/semantic_distortion"
device = "auto"           # auto | cpu | cuda
progress = True
threads = 0               # torch CPU threads; 0: 1 for smoke (tiny models: threads only add overhead), else torch's default
augmentations = None      # None: the preset's Table-3 augmentations (full: all of zslab.augment.AUGMENTATIONS); 'none' is always added

# %%
import json

import matplotlib.pyplot as plt
import torch

from zslab import viz
from zslab.experiments import has_study as hs

out, seeds, data, study = hs.notebook_setup(preset, seeds, cache_dir, out_dir, threads)
print(f"preset {preset}: seeds {seeds}; {len(data.splits['train'])} training images, "
      f"{len(data.unseen_classes)} unseen classes")

# %%
baseline_row, baseline_config, baseline_model = hs.trained_row("baseline", preset, seeds[0], cache_dir, data,
                                                               progress=progress, device=device)

# %%
from zslab.augment import AUGMENTATIONS
test_augs = [a for a in AUGMENTATIONS if a != "none"]
dist = hs.semantic_distortion(baseline_model, data, test_augs, split="test_seen", max_images=study["max_images"],
                              seed=seeds[0], progress=progress)
sanity = hs.semantic_distortion(baseline_model, data, ["none"], split="test_seen", max_images=study["max_images"],
                                progress=False)
assert all(r["agreement"] == 1.0 and r["drop"] == 0.0 for r in sanity), "identity must change nothing"
assert all(0.0 <= r["agreement"] <= 1.0 for r in dist)
colour = {a: sum(r["agreement"] for r in dist if r["augmentation"] == a and "colour" in r["group"]) / 2
          for a in test_augs}
print("colour attributes kept (%):", {a: round(100 * v) for a, v in colour.items()})
fig = viz.distortion_heatmap(dist, "agreement",
                             title="Share of images whose predicted attribute value survives the augmentation (APN)")
fig.savefig(out / "fig2_agreement.png", dpi=120)
fig = viz.distortion_heatmap(dist, "drop", title="Attribute accuracy drop caused by the augmentation (points)")
fig.savefig(out / "fig2_accuracy_drop.png", dpi=120)

# %%
ds = data.splits["test_seen"]
picks = torch.linspace(0, len(ds) - 1, 3).long().tolist()
ex = hs.augment_examples(baseline_model, data, ["colorjitter0.4", "grayscale0.4", "rotate", "crop_half"], picks,
                         split="test_seen", seed=seeds[0])
body_colour = hs.attribute_groups(data)["body colour"]
fig = viz.attribute_prediction_panel(ex, body_colour, data.attribute_names,
                                     captions=[data.class_names[int(c)] for c in ex["labels"]],
                                     title="Fig. 2 on shapes: APN's body-colour predictions, clean vs augmented")
fig.savefig(out / "fig2_examples.png", dpi=120)
assert ex["attr"]["none"].shape == (3, data.num_attributes)

# %% [markdown]
# ## Table 3: APN trained with each augmentation

# %%
names = None if augmentations is None else ["none"] + [a for a in augmentations if a != "none"]
runs = hs.augmentation_configs(preset, names=names, seeds=seeds)
rows = hs.run_study(runs, cache_dir, data=data, progress=progress, device=device)
table3 = hs.summarize(rows)
for r in rows:
    for m in hs.METRICS:
        assert 0.0 <= r[m] <= 1.0, (r["name"], m)
assert "none" in table3 and len(rows) == len(table3) * len(seeds)
fig = viz.summary_table(table3, title=f"Table 3 on shapes ({preset} preset): APN trained with augmentation")
fig.savefig(out / "table3_augmentations.png", dpi=120)
table3_deltas = hs.paired_deltas(rows, "none")
fig = viz.delta_bars(table3, baseline="none", deltas=table3_deltas, baseline_label="no augmentation",
                     title="Table 3: accuracy change vs training without augmentation")
fig.savefig(out / "table3_delta.png", dpi=120)

# %% [markdown]
# **What training with an augmentation does to the attributes.** ZSL accuracy only needs the unseen
# classes to stay apart; the paper's claim is about the attributes themselves. Each Table-3 model predicts
# the attributes of the unseen test images (no augmentation at test time); per attribute group, the
# accuracy of the predicted value, averaged over seeds, and how many points each augmentation costs
# against training without one.

# %%
from zslab.train import load_run

per_model = []
for r in rows:
    _, _, m, _ = load_run(r["run_dir"], data=data, device=device)
    for g in hs.semantic_distortion(m, data, ["none"], split="test_unseen", max_images=study["max_images"],
                                    progress=False):
        per_model.append({"augmentation": r["name"], "seed": r["seed"], "group": g["group"], "acc": g["clean_acc"]})
attr_acc = {}
for g in per_model:
    attr_acc.setdefault((g["augmentation"], g["group"]), []).append(g["acc"])
attr_acc = [{"augmentation": a, "group": grp, "acc": sum(v) / len(v), "n_seeds": len(v)}
            for (a, grp), v in attr_acc.items()]
ref = {g["group"]: g["acc"] for g in attr_acc if g["augmentation"] == "none"}
for g in attr_acc:
    g["drop"] = ref[g["group"]] - g["acc"]
    assert 0.0 <= g["acc"] <= 1.0
assert all(g["drop"] == 0.0 for g in attr_acc if g["augmentation"] == "none")
cost = {a: sum(g["drop"] for g in attr_acc if g["augmentation"] == a) / len(ref) for a in table3 if a != "none"}
print("mean attribute-accuracy cost of training with each augmentation (points):",
      {a: round(100 * v, 1) for a, v in cost.items()})
fig = viz.distortion_heatmap([g for g in attr_acc if g["augmentation"] != "none"], "drop",
                             title="Unseen-class attribute accuracy lost by training APN with the augmentation (points)",
                             ylabel="augmentation used in training")
fig.savefig(out / "table3_attribute_cost.png", dpi=120)

# %%
results = {"notebook": "10_semantic_distortion", "preset": preset, "seeds": seeds, "model_run": baseline_row["run_dir"],
           "distortion": dist, "colour_agreement": colour, "table3_rows": rows, "table3": table3, "table3_deltas": table3_deltas,
           "table3_attribute_accuracy": attr_acc, "table3_attribute_cost": cost,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])
