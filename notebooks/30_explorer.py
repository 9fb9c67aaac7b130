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
# # Explorer: attention, perturbations and predictions, interactively
#
# One page to *look* at what the two papers do to a single image.
#
# * **APN / HAS models** (attribute ZSL; HAS §3): the chosen attribute's attention map h_k(x) on the clean and on the
#   perturbed image, the perturbation δ, the predicted attributes â = g(x)ᵀV before and after, and the class scores
#   s(y) = âᵀφ(y) over the unseen classes (Eq. 8). Mode **HAS perturbation**: T signed-gradient *descent* steps on
#   L_HAS = L_CLS − λ_rob·H(p) + λ_rel·‖Δg‖² + λ_att_mag·mean(h) − λ_att_ent·H(h) (Eq. 3–7, zslab's sign convention,
#   GUIDE §2) inside an ε-ball — the label is kept, the attention is flattened, the features stay close. Mode
#   **PGD attack**: an ordinary adversary (PGD ascending the cross-entropy of the class scores) for contrast.
# * **LAAT models** (LAAT §3.7): the cosine of the image feature to each candidate class's text anchor, clean and
#   under PGD on the A-CE loss with the chosen ε and steps.
#
# Use the controls below in JupyterLab (every change recomputes the figure). Each cell below shows its own explorer in
# the state that cell sets (`ui.copy(...)`: the same models, some controls changed), so an earlier widget never jumps
# to a later cell's settings. Under nbval and papermill the notebook builds the same widgets and drives them from code,
# saves the figures as PNG and the numbers of each view in `results.json`. An executed copy opened later shows each
# cell's last view: the controls where JupyterLab trusts the notebook (`zslab notebooks run` signs the copies it
# writes; `jupyter trust FILE.ipynb` signs another), else a static picture of it with a note to re-run the cell.
#
# Models: pass run directories (`has_run_dir`, `apn_run_dir`, `laat_run_dir`: folders written by `zslab train`), or
# leave them `None` to train small models of the study preset `preset` into the shared run cache (`runs/study`;
# notebooks 10–14, 21 and 31–33 use the same runs, so a batch run trains each only once). The `smoke`
# models train in seconds and are weak — the figures show the mechanics, not the papers' effects; `preset="full"`
# trains the study's full models (minutes; LAAT's full preset needs the CIFAR-10 folders, `data_root`). Batch run:
# `papermill notebooks/30_explorer.ipynb out.ipynb -p preset full -p image_path /path/to/images`.

# %% tags=["parameters"]
# Parameters (papermill).
preset = "smoke"                  # smoke | full: the study preset of the models trained when no run dir is given
out_dir = "runs/30_explorer"        # relative paths resolve against the project folder ($ZSLAB_WORKDIR, else the
                                  # zslab checkout, else the working directory), not the kernel's notebooks/
has_run_dir = None                # a HAS run directory (zslab train --method has --out DIR); None: train/reuse one
apn_run_dir = None                # an APN run directory; None: train/reuse the study's APN baseline
laat_run_dir = None               # a LAAT run directory; None: train/reuse the study's expanded+sm LAAT run
cache_dir = "runs/study"          # APN/HAS run cache (shared with notebooks 10-14)
laat_cache_dir = "runs/study"  # LAAT runs: the same run cache (shared with notebooks 21 and 31-33)
data_root = None                  # LAAT full preset: CIFAR-10 folders (None: $ZSLAB_DATA/cifar10)
image_path = None                 # optional image file or folder to show as well (resized to the model's input)
seed = 0                          # the models' training seed and the attacks' seed
device = None                     # None: the run's device ("auto") | "cpu" | "cuda"
threads = 1                       # torch CPU threads (0: torch's default)

# %%
import json

import matplotlib.pyplot as plt
import torch
from IPython.display import display

from zslab import explore as ex
from zslab.experiments.paths import work_path
from zslab.viz.explorer import explorer_widget

if threads:
    torch.set_num_threads(threads)
out = work_path(out_dir)  # <project>/runs/30_explorer also when the kernel runs in notebooks/
out.mkdir(parents=True, exist_ok=True)
kw = dict(preset=preset, seed=seed, device=device)
models = {}
models["HAS"] = ex.load_model(has_run_dir, method="has", cache_dir=cache_dir, **kw)
models["APN"] = ex.load_model(apn_run_dir, method="apn", cache_dir=cache_dir,
                              data=models["HAS"].data if apn_run_dir is None else None, **kw)
models["LAAT"] = ex.load_model(laat_run_dir, method="laat", cache_dir=laat_cache_dir, data_root=data_root, **kw)
for name, h in models.items():
    print(f"{name:5s} {h.name:28s} {h.kind:5s} run {h.run_dir}  input {h.image_size}px  "
          f"{len(h.data.unseen_classes)} unseen classes" + (f", {len(h.attribute_names)} attributes" if h.kind == "apn" else
                                                           f", anchors {tuple(h.anchors.shape)}"))
assert {h.kind for h in models.values()} == {"apn", "laat"}

# %% [markdown]
# ## The explorer
#
# Controls: **model**; **image from** a split of the model's dataset (index slider) or *file/folder* (type a path;
# a folder's images are indexed in sorted order); **attribute** whose attention map is drawn; **predict among** the
# unseen / seen / all classes; **mode**; the four HAS **loss terms** (tick to switch on) with their weights; **ε** (in
# 1/255 units), **steps** T and the **seed**. Step size = 2.5·ε/T (Madry et al.'s budget), inside the ε-ball.
# The figure: (a) image, (b) δ amplified (the factor is in the title; mid-gray = no change), (c) x + δ, (d, e) the
# attribute's attention on the clean / perturbed image on one colour scale (with the share of the attention on the part
# that carries the attribute, for embedded images), (f) predicted attribute scores, (g) class scores; LAAT: anchor
# cosines.

# %%
ui = explorer_widget(models, model="HAS", source="test_unseen", index=0, eps=8.0, steps=3, seed=seed)
display(ui)
assert ui.view is not None and ui.error is None, ui.error
assert ui.updates == 1

# %% [markdown]
# ## One update, in code
#
# What a click does, done programmatically (so nbval and papermill exercise it): pick an unseen-class image that the
# model classifies correctly (so the attack below has a right prediction to break) and the attribute of its body's
# colour, raise the steps, and recompute once — in a second explorer (`ui.copy`), so the one above keeps its view.

# %%
i_has = ex.first_correct(models["HAS"], "test_unseen")  # an image the HAS model gets right (0 if none)
split = models["HAS"].data.splits["test_unseen"]
own = [models["HAS"].attribute_names[k] for k in split.extras["attributes"][i_has].nonzero().flatten().tolist()]     if "attributes" in getattr(split, "extras", {}) else []
attribute = next((a for a in own if "body colour" in a), models["HAS"].attribute_names[0])  # the image's own body colour
ui_has = ui.copy(index=i_has, attribute=attribute, eps=8.0, steps=5)
display(ui_has)
view_has = ui_has.view
assert ui_has.updates == 1 and ui_has.error is None, ui_has.error
assert ui.view.numbers["steps"] == 3 and ui.updates == 1        # the first explorer keeps its own view
n = view_has.numbers
assert n["mode"] == "has" and n["attribute_name"] == attribute and n["steps"] == 5
assert n["delta_linf"] <= 8 / 255 + 1e-6                       # inside the ε-ball
assert float(view_has.adv.min()) >= 0 and float(view_has.adv.max()) <= 1
ui_has.figure.savefig(out / "has_view.png", dpi=110)
print(f"HAS: max |δ| = {n['delta_linf_255']:.2f}/255; L_HAS {n['has_terms']['clean']['has']:.4f} -> "
      f"{n['has_terms']['adv']['has']:.4f}; prediction {n['pred_clean']!r} -> {n['pred_adv']!r}")
if "attention_in_part" in n:
    a = n["attention_in_part"]
    print(f"attention of '{n['attribute_name']}' on the {a['part']}: {100 * a['clean']:.1f}% clean, "
          f"{100 * a['adv']:.1f}% perturbed (uniform {100 * a['uniform']:.1f}%)")

# %% [markdown]
# ### Switching a loss term off, and the attack mode
#
# Without the robustness term (λ_rob off) the generator no longer raises H(p), so the perturbation changes. The PGD
# attack instead *ascends* the class cross-entropy: the scores of the image's class drop.

# %%
ui_no_rob = ui_has.copy(use_rob=False)
display(ui_no_rob)
view_no_rob = ui_no_rob.view
assert view_no_rob.numbers["terms"] == ["rel", "att_mag", "att_ent"]
assert not torch.equal(view_no_rob.adv, view_has.adv), "switching L_ROB off must change the perturbation"
ui_no_rob.figure.savefig(out / "has_view_no_rob.png", dpi=110)
ui_attack = ui_has.copy(mode="attack")
display(ui_attack)
view_attack = ui_attack.view
na = view_attack.numbers
assert na["mode"] == "attack" and na["delta_linf"] <= 8 / 255 + 1e-6
ui_attack.figure.savefig(out / "attack_view.png", dpi=110)
print(f"without L_ROB: mean |δ − δ_HAS| = {255 * float((view_no_rob.adv - view_has.adv).abs().mean()):.2f}/255; "
      f"attack: prediction {na['pred_clean']!r} -> {na['pred_adv']!r}")
ui_apn = ui_has.copy(model="APN")
display(ui_apn)
view_apn = ui_apn.view
ui_apn.figure.savefig(out / "apn_view.png", dpi=110)
assert view_apn.model_name == models["APN"].name

# %% [markdown]
# ## A LAAT model: prediction over anchors, clean and under PGD

# %%
ui_laat = ui_has.copy(model="LAAT", index=ex.first_correct(models["LAAT"], "test_unseen"))
display(ui_laat)
view_laat = ui_laat.view
nl = view_laat.numbers
assert view_laat.kind == "laat" and ui_laat.controls["attribute"].disabled
cos = nl["anchor_scores"]
assert nl["pred_clean_index"] == cos["index"][max(range(len(cos["clean"])), key=cos["clean"].__getitem__)]
assert nl["delta_linf"] <= 8 / 255 + 1e-6
ui_laat.figure.savefig(out / "laat_view.png", dpi=110)
print(f"LAAT: prediction {nl['pred_clean']!r} -> {nl['pred_adv']!r} (true: {nl['label_name']!r})")

# %%
views = {"has": view_has, "has_no_rob": view_no_rob, "attack": view_attack, "apn": view_apn, "laat": view_laat}
if image_path:
    ui_file = ui_has.copy(source="file/folder", path=image_path, index=0)
    display(ui_file)
    views["file"] = ui_file.view
    assert ui_file.error is None, ui_file.error
    ui_file.figure.savefig(out / "file_view.png", dpi=110)
plt.close("all")
results = ex.save_results(views, out / "results.json",
                          {"notebook": "30_explorer", "preset": preset, "seed": seed,
                           "models": {k: {"name": h.name, "kind": h.kind, "run_dir": h.run_dir} for k, h in models.items()},
                           "figures": sorted(p.name for p in out.glob("*.png"))})
assert set(json.loads((out / "results.json").read_text())["views"]) == set(views)
print(results["figures"])
