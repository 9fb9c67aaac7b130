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
# # zslab quickstart: APN on the embedded `shapes` dataset
#
# Attribute-based zero-shot learning in one page. The embedded dataset draws two-part objects
# (a *head* and a *body*) whose shape, colour, pattern and size are the attributes; classes are
# attribute combinations and the **unseen** classes are new combinations of attribute values.
# We train the Attribute Prototype Network (APN; the baseline of HAS, §3.2), evaluate ZSL and
# GZSL (HAS §4.1, Eq. 8–9) with μ chosen on the validation split, look at attribute attention
# maps on unseen-class images, and write a results JSON.
#
# Run it as a batch job with `papermill notebooks/00_quickstart.ipynb out.ipynb -p preset full`.

# %% tags=["parameters"]
# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU.
# A relative `out_dir` resolves against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"      # smoke | full
seed = 0              # training seed
out_dir = "runs/quickstart"
device = "auto"       # auto | cpu | cuda

# %%
import json

import matplotlib.pyplot as plt
import torch

from zslab.data import load_dataset
from zslab.experiments.paths import work_path
from zslab.train import make_config, train, load_run
from zslab import viz

out = work_path(out_dir)  # <repo>/runs/quickstart also when the kernel runs in notebooks/
out.mkdir(parents=True, exist_ok=True)
config = make_config("apn", preset, overrides={"device": device, "progress": False}, seed=seed)
data = load_dataset(config["dataset"], **config["data"])
print(f"{len(data.class_names)} classes: {len(data.train_classes)} train, {len(data.val_classes)} validation, "
      f"{len(data.unseen_classes)} unseen; {data.num_attributes} attributes; "
      + ", ".join(f"{k}: {len(v)}" for k, v in data.splits.items()))


# %% [markdown]
# ## The data
# One typical image per class: seen (train) classes first, then unseen classes. Each caption is the
# class's text name, built from its dominant attribute values. Other images of a class vary: per-image
# attributes are sampled from the class's attribute probabilities (as in CUB), and position, scale,
# rotation, clutter and noise are nuisances.

# %%
def typical_of(split, classes, n):
    # for each class, the image whose own attributes agree most with the class attributes
    ds = data.splits[split]
    idx = []
    for c in classes[:n]:
        rows = (ds.labels == c).nonzero().flatten()
        agree = ds.extras["attributes"][rows] @ data.class_attributes[c]
        idx.append(int(rows[agree.argmax()]))
    return ds.images[idx], [data.class_names[c] for c in classes[:n]]

xs, caps = typical_of("train", data.train_classes.tolist(), 6)
xu, capu = typical_of("test_unseen", data.unseen_classes.tolist(), 6)
fig = viz.image_gallery(torch.cat([xs, xu]), [f"seen: {c}" for c in caps] + [f"UNSEEN: {c}" for c in capu],
                        ncols=6, title="shapes: seen classes (top) and unseen classes (bottom)")
fig.savefig(out / "gallery.png", dpi=120)
assert xs.shape[1] == 3 and xs.dtype == torch.uint8

# %% [markdown]
# ## Train APN
# L = L_CLS + λ·L_LOC (HAS Eq. 1–2) with Adam(β=(0.5, 0.999)); after each epoch the validation
# split (train classes' held-out images vs the validation classes) picks the checkpoint and μ.

# %%
run_dir = out / f"apn-{preset}-seed{seed}"
final = train(config, run_dir, resume=(run_dir / "config.json").exists(), data=data)
metrics = json.loads((run_dir / "metrics.json").read_text())
print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in final.items()}, indent=1))

# %%
chance = 1 / len(data.unseen_classes)
rows = {"chance": {"zsl_t1": chance, "gzsl_u": float("nan"), "gzsl_s": float("nan"), "gzsl_h": float("nan")},
        f"APN ({preset})": final}
fig = viz.results_table(rows, title=f"ZSL / GZSL on shapes (μ = {final['mu']:.2f}, chosen on validation)")
fig.savefig(out / "results_table.png", dpi=120)
for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"):
    assert 0.0 <= final[k] <= 1.0, k

# %% [markdown]
# ## Learning curve

# %%
fig = viz.learning_curves(metrics["history"], keys=("train_loss", "train_cls", "train_loc", "val_zsl", "val_h"),
                          title="APN on shapes: training loss and validation accuracy")
fig.savefig(out / "learning_curve.png", dpi=120)
assert len(metrics["history"]) == config["epochs"]

# %% [markdown]
# ## Attribute attention maps on unseen-class images
# Each panel overlays one attribute's attention map h(x)_k (the 1×1-conv prototype response,
# upsampled) on an image of an **unseen** class. Shown: the image's own attributes (one per
# attribute group); a well-localised model puts head attributes on the head and body attributes
# on the body.

# %%
_, _, model, _ = load_run(run_dir, data=data, device=device)
ds = data.splits["test_unseen"]
dev = next(model.parameters()).device
for i in [0, len(ds) // 2]:
    x = ds.image(i)[None].to(dev)
    with torch.no_grad():
        o = model(x)
    own = ds.extras["attributes"][i].nonzero().flatten().tolist() if "attributes" in ds.extras else None
    fig = viz.attention_maps(x[0].cpu(), o["attention"][0].cpu(), data.attribute_names, attributes=own,
                             scores=o["attr_local"][0].cpu(),
                             title=f"Attention on an unseen image: {data.class_names[int(ds.labels[i])]}")
    fig.savefig(out / f"attention_{i}.png", dpi=120)
assert o["attention"].shape[1] == data.num_attributes

# %%
results = {"notebook": "00_quickstart", "preset": preset, "seed": seed, "run_dir": str(run_dir),
           "chance_zsl": chance, "final": final,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(json.dumps(results["figures"]))
