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
# # Attribute attention maps and the anatomy of a HAS perturbation (Fig. 6–7)
#
# **Fig. 6.** Attention maps h(x)_k of APN and of HAS for the attributes an unseen-class image actually has
# (one per part and group). The embedded dataset keeps each image's head/body masks, so we also *measure*
# localisation: the share of each attribute's attention inside its part (`zslab.eval.localisation`).
#
# **Fig. 7.** The HAS generator applied to training images with the trained HAS model: (a) original, (b) the
# perturbation normalised to [0, 1], (c) the adversarial image, (d)/(e) the perturbation inside/outside the
# object (the paper separates them by value; here the true object masks are used), with mean |δ| of each.

# %% tags=["parameters"]
# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU and only checks
# the pipeline; `full` is the embedded default dataset with 3 seeds (zslab.experiments.STUDY_PRESETS).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"          # smoke | full
seeds = None              # None: the preset's seeds, e.g. [0, 1, 2]
cache_dir = "runs/study"  # trained run directories, shared by notebooks 10-14 and reused on re-runs
out_dir = "runs/attention_perturbation"
device = "auto"           # auto | cpu | cuda
progress = True
threads = 0               # torch CPU threads; 0: 1 for smoke (tiny models: threads only add overhead), else torch's default
n_examples = 3            # images in each figure

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
has_row, has_config, has_model = hs.trained_row("has", preset, seeds[0], cache_dir, data, progress=progress,
                                                device=device)

# %%
from zslab.eval.localisation import attention_in_part
loc = {name: attention_in_part(m, data, "test_unseen", max_images=study["max_images"], progress=False)
       for name, m in (("APN", baseline_model), ("HAS", has_model))}
for name, r in loc.items():
    print(f"{name}: {100 * r['mean']:.1f}% of attention inside the attribute's part (uniform: {100 * r['chance']:.1f}%)")
    assert 0.0 <= r["mean"] <= 1.0 and 0.0 < r["chance"] < 1.0
fig = viz.summary_table({k: {"localisation": v["mean"], "chance": v["chance"]} for k, v in loc.items()},
                        metrics=("localisation", "chance"), title="Attention inside the attribute's part (test unseen)")
fig.savefig(out / "localisation.png", dpi=120)

# %%
ds = data.splits["test_unseen"]
groups = hs.attribute_groups(data)
picks = torch.linspace(0, len(ds) - 1, n_examples).long().tolist()
for i in picks:
    x = ds.image(i)
    own = ds.extras["attributes"][i]
    attrs = [next(k for k in ks if own[k] > 0.5) for ks in groups.values()]
    dev = next(baseline_model.parameters()).device
    with torch.no_grad():
        maps = {"APN": baseline_model(x[None].to(dev))["attention"][0].cpu(),
                "HAS": has_model(x[None].to(dev))["attention"][0].cpu()}
    fig = viz.attention_comparison(x, maps, data.attribute_names, attrs,
                                   title=f"Attention maps on an unseen image: {data.class_names[int(ds.labels[i])]}")
    fig.savefig(out / f"fig6_attention_{i}.png", dpi=120)
    assert maps["APN"].shape == maps["HAS"].shape and maps["APN"].shape[0] == data.num_attributes

# %%
from zslab.methods.has import HASConfig
train = data.splits["train"]
idx = torch.linspace(0, len(train) - 1, n_examples).long()
x = train.images[idx].float() / 255
label_map = {int(c): i for i, c in enumerate(data.train_classes.tolist())}
y = torch.tensor([label_map[int(c)] for c in train.labels[idx]])
cfg = HASConfig.from_train_config(has_config)
parts = hs.perturbation_parts(has_model, x, y, data.class_attributes[data.train_classes], train.extras["part_masks"][idx],
                              config=cfg)
fig = viz.perturbation_panel(parts, captions=[data.class_names[int(c)] for c in train.labels[idx]],
                             title=f"HAS perturbation (T = {cfg.steps}, α = {255 * cfg.step_size:.3g}/255)")
fig.savefig(out / "fig7_perturbation.png", dpi=120)
assert parts["delta"].abs().max() <= cfg.steps * cfg.step_size + 1e-5
assert 0.0 <= parts["delta_norm"].min() and parts["delta_norm"].max() <= 1.0
print("mean |δ| foreground / background (x255):", [round(255 * a, 2) for a in parts["fg_mean_abs"]],
      [round(255 * b, 2) for b in parts["bg_mean_abs"]])

# %%
results = {"notebook": "14_attention_perturbation", "preset": preset,
           "runs": {"APN": baseline_row["run_dir"], "HAS": has_row["run_dir"]},
           "localisation": {k: {"mean": v["mean"], "chance": v["chance"], "per_part": v["per_part"],
                                "per_group": v["per_group"]} for k, v in loc.items()},
           "perturbation": {"fg_mean_abs": parts["fg_mean_abs"], "bg_mean_abs": parts["bg_mean_abs"]},
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])
