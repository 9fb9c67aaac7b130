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
# # Feature drift over perturbation steps, with and without L_REL (Fig. 5)
#
# We take a trained APN and perturb a batch of training images with the HAS generator for T steps, once
# without the reliability term (λ_rel = 0) and once with it. L_REL = ‖g(f(I_adv)) − g(f(I))‖² (Eq. 6) keeps
# the pooled visual features near the clean image's, which the paper argues prevents semantic distortion.
# The features of every step of both runs are embedded together with t-SNE (scikit-learn, `zslab.viz.tsne`);
# darker points are later steps. The drift curve gives the same comparison as a number per step.

# %% tags=["parameters"]
# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU and only checks
# the pipeline; `full` is the embedded default dataset with 3 seeds (zslab.experiments.STUDY_PRESETS).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"          # smoke | full
seeds = None              # None: the preset's seeds, e.g. [0, 1, 2]
cache_dir = "runs/study"  # trained run directories, shared by notebooks 10-14 and reused on re-runs
out_dir = "runs/feature_drift"
device = "auto"           # auto | cpu | cuda
progress = True
threads = 0               # torch CPU threads; 0: 1 for smoke (tiny models: threads only add overhead), else torch's default
steps = None              # None: 5 (smoke) / 10 (full, as the paper)
n_images = None           # None: 16 (smoke) / 64 (full, as the paper)
lambda_rel = 10.0         # the reliability weight of the "with L_REL" run
step_size = 4 / 255       # per-step α, the same for both runs

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
from zslab.methods.has import HASConfig
steps = steps or (5 if preset == "smoke" else 10)
n_images = n_images or (16 if preset == "smoke" else 64)
train = data.splits["train"]
g = torch.Generator().manual_seed(seeds[0])
idx = torch.randperm(len(train), generator=g)[:n_images]
x = train.images[idx].float() / 255
label_map = {int(c): i for i, c in enumerate(data.train_classes.tolist())}
y = torch.tensor([label_map[int(c)] for c in train.labels[idx]])
A = data.class_attributes[data.train_classes].float()
variants = {"without L_REL (λ_rel = 0)": HASConfig(lambda_rel=0.0, step_size=step_size),
            f"with L_REL (λ_rel = {lambda_rel:g})": HASConfig(lambda_rel=lambda_rel, step_size=step_size)}
traj = hs.feature_trajectory(baseline_model, x, y, A, variants, steps=steps)
for k, t in traj.items():
    print(k, [round(d, 3) for d in t["drift"]])
    assert t["features"].shape[:2] == (steps + 1, len(x)) and t["drift"][0] == 0.0
(no_rel, with_rel) = traj.values()
assert with_rel["drift"][-1] <= no_rel["drift"][-1], "L_REL should keep features closer to the clean ones"

# %%
feats = torch.cat([t["features"].reshape(-1, t["features"].shape[-1]) for t in traj.values()])
emb = viz.tsne(feats, perplexity=min(30.0, (len(feats) - 1) / 3), iterations=500 if preset == "full" else 300)
parts = dict(zip(traj, emb.split(len(emb) // len(traj))))
parts = {k: v.reshape(steps + 1, len(x), 2) for k, v in parts.items()}
fig = viz.feature_drift_tsne(parts, title=f"APN features over {steps} HAS steps (t-SNE of g(f(I_t)), {len(x)} images)")
fig.savefig(out / "fig5_feature_tsne.png", dpi=120)
fig = viz.drift_curve(traj, title="Feature drift from the clean image, with and without L_REL")
fig.savefig(out / "fig5_drift_curve.png", dpi=120)
assert torch.isfinite(emb).all()

# %%
results = {"notebook": "13_feature_drift", "preset": preset, "model_run": baseline_row["run_dir"], "steps": steps,
           "n_images": len(x), "step_size": step_size, "drift": {k: t["drift"] for k, t in traj.items()},
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])
