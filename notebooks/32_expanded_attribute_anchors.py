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
# # Expanded attribute anchors: LAAT's expansion on class attribute vectors
#
# **LAAT** (Li et al., CVPR 2024) observes that CLIP text anchors of different classes are nearly parallel — the
# *high cosine-similarity problem* (§3.3, Table 1) — which makes anchor-based adversarial training slow and weak. Its
# fix is an **expansion** (§3.4, Eq. 1–2; Appendix C, Algorithm 1): rotate the anchors' centre to the pole, stretch
# every polar angle by π/2 ÷ θ₀ so the training anchors fill the hemisphere, rotate back. θ₀ and the centre are
# fitted on the **training** classes and the same map is applied to novel classes (§3.6).
#
# The class attribute vectors φ(y) of attribute ZSL (**HAS**/APN: the classifier s(y) = g(x)ᵀVφ(y), HAS Eq. 1/8, and
# the localisation target of L_LOC, Eq. 2) have the same problem: their entries are non-negative, so the real AwA2
# and CUB matrices have a mean pairwise cosine of about 0.58–0.59 and the embedded `shapes` matrix about 0.47.
#
# **Question**: does expanding the attribute vectors (fitted on the training classes only) help
#
# * **APN** (and **HAS**) trained and evaluated with them (`data.attributes = "expanded"`), clean and under attack, and
# * **LAAT-style adversarial training** with the attribute vectors as anchors (`encoder = "attributes"`, raw vs
#   `expand = True`), compared with LAAT's own text anchors?
#
# Every model trains on the same `shapes` data; zero-shot robustness is measured the same way for all of them:
# unseen-class test images classified among the unseen classes (ZSL T1), L∞ FGSM / PGD-20 / AutoAttack at
# ε = 8/255 (`zslab.experiments.cross_paper.zsl_robustness`).
#
# **Caveat for APN/HAS**: expanded rows are unit-norm directions with negative entries. The dot-product classifier
# and L_CLS keep their form, but L_LOC's regression target becomes a signed vector of smaller scale (raw `shapes` rows
# have norm ≈ 2.4), so at the same λ_loc the localisation term weighs less, and an entry no longer means "how much
# of attribute k". Per-image attribute labels stay raw.
#
# * `smoke` (default): tiny models and data, one seed, 10 attacked images per run — the numbers only show that the
#   pipeline runs. Runs equal to notebooks 11/31's (APN, HAS, LAAT with text anchors) are reused from `runs/study`.
# * `full`: the dataset at full size, 3 seeds, 150 attacked images per run (FGSM and PGD-20; AutoAttack is notebook
#   31's), APN and LAAT rows. HAS is left out of the full preset for its CPU cost (about 21 CPU-min per 30-epoch run,
#   3.5× APN); pass `rows=["apn-raw", "apn-expanded", "has-raw", "has-expanded", "laat-attr-raw", "laat-attr-expanded",
#   "laat-text"]` to add it. Cost on one CPU thread: APN ≈ 6 CPU-min of training per run, LAAT-AT ≈ 14 CPU-min, the
#   attacks about a minute; runs and attack results already made by notebooks 11 and 31 (`apn-raw`, `laat-text`) are
#   reused.
#
# Batch run: `papermill notebooks/32_expanded_attribute_anchors.ipynb out.ipynb -p preset full`.

# %% tags=["parameters"]
# Parameters (papermill).
# Relative `out_dir` / `cache_dir` resolve against the project folder ($ZSLAB_WORKDIR, else the zslab checkout,
# else the working directory), not the kernel's folder notebooks/.
preset = "smoke"          # smoke | full (zslab.experiments.cross_paper.XP_PRESETS)
seeds = None              # None: the preset's seeds (full: [0, 1, 2])
rows = None               # None: the preset's rows (zslab.experiments.xp_attribute_anchors.PRESET_ROWS)
cache_dir = "runs/study"  # trained runs, shared with notebooks 10-14, 31 and 33 (keyed by config hash)
out_dir = "runs/32_expanded_attribute_anchors"
xlsa17_dir = None         # None: $ZSLAB_DATA/xlsa17 (skipped with a note if absent)
device = None             # None: each config's device ("auto") | "cpu" | "cuda"
threads = 1               # torch CPU threads (0: torch's default)
progress = False

# %%
import json
from pathlib import Path

from IPython.display import Markdown, display

from zslab.experiments import cross_paper as xp
from zslab.experiments import xp_attribute_anchors as xa
from zslab.viz import anchor_plots, xp_plots

out, seeds, data = xp.notebook_setup(preset, seeds, cache_dir, out_dir, threads)
proto = xa.protocol(preset)
print(f"preset {preset}: shapes, {len(data.train_classes)} training / {len(data.val_classes)} validation / "
      f"{len(data.unseen_classes)} unseen classes, {data.num_attributes} attributes; seeds {seeds}; "
      f"attacks {proto['attacks']} at eps {proto['eps'] * 255:g}/255 on {proto['max_images']} unseen images per run")

# %% [markdown]
# ## 1. The high-cosine problem of attribute vectors, before and after the expansion
# Mean pairwise cosine (LAAT's "average CoS", pairs i ≠ j) of the class attribute matrix, with the expansion fitted on
# the training classes and applied unchanged to the validation and unseen classes. The real AwA2 and CUB matrices
# (xlsa17 `att`, proposed split: `trainclasses1.txt` as training classes) are included when the files exist.

# %%
cos = {"shapes": xa.data_cosine_stats(data)}
real, notes = xa.real_cosine_stats(xlsa17_dir)
cos.update(real)
for n in notes:
    print("note:", n)
for r in xa.cosine_table(cos):
    print(f"{r['dataset']:7s} {r['classes']:3d} classes, K = {r['dim']:3d}, theta0 = {r['theta0_deg']:5.1f} deg | "
          f"mean cos train {r['before_train']:.3f} -> {r['after_train']:.3f}, "
          f"unseen {r['before_unseen']:.3f} -> {r['after_unseen']:.3f}, all {r['before_all']:.3f} -> {r['after_all']:.3f}")
figures = []
for name, s in cos.items():
    fig = anchor_plots.cosine_histograms(s["pairs_before"], s["pairs_after"],
                                         title=f"{name}: pairwise cosine of class attribute vectors\n"
                                               f"(all {s['n_classes']} classes; expansion fitted on {s['n_train']} training classes)")
    fig.savefig(out / f"cosine_{name}.png", dpi=120)
    figures.append(f"cosine_{name}.png")
# the expansion fitted on the training classes brings their mean cosine down
assert all(s["after"]["train"] < s["before"]["train"] for s in cos.values())

# %% [markdown]
# ## 2. Train (or reuse) every row
# APN / HAS with raw and expanded class attributes; LAAT-style AT with raw attribute anchors, expanded attribute
# anchors, and LAAT's text anchors (MiniLM, "This is a photo of a {}", expanded) as the reference.

# %%
runs = xa.study_runs(preset, seeds, rows)
trained = xa.train_rows(runs, cache_dir, data=data, progress=progress, device=device)
for r in trained:
    own = (f"ZSL T1 {100 * r['zsl_t1']:.1f} %, H {100 * r['gzsl_h']:.1f} %" if r["method"] != "laat"
           else f"5-way ZS clean {100 * r['zs_clean']:.1f} %, PGD {100 * r['zs_pgd']:.1f} %")
    print(f"{r['name']:19s} seed {r['seed']}: {'cached' if r['cached'] else 'trained'}; {own}")

# %% [markdown]
# ## 3. Clean and robust zero-shot accuracy on the unseen classes
# Each result is cached next to its run (`xp_zsl_robustness-<protocol>.json`).

# %%
evaluated = xa.robustness(trained, preset, data=data, device=device, progress=progress)
summary = xa.summarize(evaluated)
chance = 1.0 / len(data.unseen_classes)
labels = {n: m["label"] for n, m in summary.items()}
fig = xp_plots.robustness_bars(summary, ("clean", *proto["attacks"]), eps_text=f"{proto['eps'] * 255:g}/255",
                               row_labels={n: m["short"] for n, m in summary.items()}, chance=chance,
                               title="Zero-shot accuracy on unseen shapes classes: raw vs expanded attribute anchors")
fig.savefig(out / "robustness_bars.png", dpi=120)
figures.append("robustness_bars.png")
for n, m in summary.items():
    extra = "  ".join(f"{k} {100 * m[k]['mean']:.1f}±{100 * m[k]['std']:.1f}" for k in xa.ZSL_METRICS if k in m)
    print(f"{labels[n]:38s} " + "  ".join(f"{k} {100 * m[k]['mean']:.1f}±{100 * m[k]['std']:.1f}"
                                          for k in ("clean", *proto["attacks"], "worst")) + ("  | " + extra if extra else ""))
# the per-example worst case over attacks can be no better than any single attack, nor than clean
assert all(summary[n]["worst"]["mean"] <= min(summary[n][a]["mean"] for a in ("clean", *proto["attacks"])) + 1e-9
           for n in summary)

# %% [markdown]
# ## 4. Conclusions
# Computed from the numbers above (means over seeds; a difference is called clear only when it exceeds twice the
# larger per-row standard deviation over seeds).

# %%
res = xa.results(summary, cos, notes, preset, seeds, evaluated, figures)
(out / "results.json").write_text(json.dumps(res, indent=2))
display(Markdown("\n".join(f"* {line}" for line in res["conclusions"])))
print("\n".join(res["conclusions"]))
print(res["figures"])
