"""Writes the committed notebooks (without outputs) from the cell lists below.

Run ``python tools/build_notebooks.py`` after editing; commit the .ipynb files.
"""
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]


def notebook(cells):
    nb = nbf.v4.new_notebook()
    out = []
    for i, (kind, src, *tags) in enumerate(cells):
        c = nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
        c.id = f"cell-{i:02d}"  # deterministic ids: rebuilding an unchanged notebook changes nothing
        if tags:
            c.metadata["tags"] = list(tags)
        out.append(c)
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


QUICKSTART = [
    ("md", """# zslab quickstart: APN on the embedded `shapes` dataset

Attribute-based zero-shot learning in one page. The embedded dataset draws two-part objects
(a *head* and a *body*) whose shape, colour, pattern and size are the attributes; classes are
attribute combinations and the **unseen** classes are new combinations of attribute values.
We train the Attribute Prototype Network (APN; the baseline of HAS, §3.2), evaluate ZSL and
GZSL (HAS §4.1, Eq. 8–9) with μ chosen on the validation split, look at attribute attention
maps on unseen-class images, and write a results JSON.

Run it as a batch job with `papermill notebooks/00_quickstart.ipynb out.ipynb -p preset full`."""),
    ("code", """# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU.
preset = "smoke"      # smoke | full
seed = 0              # training seed
out_dir = "runs/quickstart"
device = "auto"       # auto | cpu | cuda""", "parameters"),
    ("code", """import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from zslab.data import load_dataset
from zslab.train import make_config, train, load_run
from zslab import viz

out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
config = make_config("apn", preset, overrides={"device": device, "progress": False}, seed=seed)
data = load_dataset(config["dataset"], **config["data"])
print(f"{len(data.class_names)} classes: {len(data.train_classes)} train, {len(data.val_classes)} validation, "
      f"{len(data.unseen_classes)} unseen; {data.num_attributes} attributes; "
      + ", ".join(f"{k}: {len(v)}" for k, v in data.splits.items()))"""),
    ("md", """## The data
One typical image per class: seen (train) classes first, then unseen classes. Each caption is the
class's text name, built from its dominant attribute values. Other images of a class vary: per-image
attributes are sampled from the class's attribute probabilities (as in CUB), and position, scale,
rotation, clutter and noise are nuisances."""),
    ("code", """def typical_of(split, classes, n):
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
assert xs.shape[1] == 3 and xs.dtype == torch.uint8"""),
    ("md", """## Train APN
L = L_CLS + λ·L_LOC (HAS Eq. 1–2) with Adam(β=(0.5, 0.999)); after each epoch the validation
split (train classes' held-out images vs the validation classes) picks the checkpoint and μ."""),
    ("code", """run_dir = out / f"apn-{preset}-seed{seed}"
final = train(config, run_dir, resume=(run_dir / "config.json").exists(), data=data)
metrics = json.loads((run_dir / "metrics.json").read_text())
print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in final.items()}, indent=1))"""),
    ("code", """chance = 1 / len(data.unseen_classes)
rows = {"chance": {"zsl_t1": chance, "gzsl_u": float("nan"), "gzsl_s": float("nan"), "gzsl_h": float("nan")},
        f"APN ({preset})": final}
fig = viz.results_table(rows, title=f"ZSL / GZSL on shapes (μ = {final['mu']:.2f}, chosen on validation)")
fig.savefig(out / "results_table.png", dpi=120)
for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"):
    assert 0.0 <= final[k] <= 1.0, k"""),
    ("md", "## Learning curve"),
    ("code", """fig = viz.learning_curves(metrics["history"], keys=("train_loss", "train_cls", "train_loc", "val_zsl", "val_h"),
                          title="APN on shapes: training loss and validation accuracy")
fig.savefig(out / "learning_curve.png", dpi=120)
assert len(metrics["history"]) == config["epochs"]"""),
    ("md", """## Attribute attention maps on unseen-class images
Each panel overlays one attribute's attention map h(x)_k (the 1×1-conv prototype response,
upsampled) on an image of an **unseen** class. Shown: the image's own attributes (one per
attribute group); a well-localised model puts head attributes on the head and body attributes
on the body."""),
    ("code", """_, _, model, _ = load_run(run_dir, data=data, device=device)
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
assert o["attention"].shape[1] == data.num_attributes"""),
    ("code", """results = {"notebook": "00_quickstart", "preset": preset, "seed": seed, "run_dir": str(run_dir),
           "chance_zsl": chance, "final": final,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(json.dumps(results["figures"]))"""),
]

# ------------------------------------------------------------------ HAS paper figures (10–14)
# Shared by notebooks 10–14: the same parameters, and one cache of run directories
# (zslab.experiments.has_study.run_study names them by config hash, so a notebook re-run,
# or a later notebook needing the same APN/HAS model, reuses finished runs).
def _params(out_dir, extra=""):
    return ("code", f"""# Parameters (papermill). `smoke` finishes in well under a minute on a 2-core CPU and only checks
# the pipeline; `full` is the embedded default dataset with 3 seeds (zslab.experiments.STUDY_PRESETS).
preset = "smoke"          # smoke | full
seeds = None              # None: the preset's seeds, e.g. [0, 1, 2]
cache_dir = "runs/study"  # trained run directories, shared by notebooks 10-14 and reused on re-runs
out_dir = "{out_dir}"
device = "auto"           # auto | cpu | cuda
progress = True
threads = 0               # torch CPU threads; 0: 1 for smoke (tiny models: threads only add overhead), else torch's default{extra}""", "parameters")


_SETUP = """import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from zslab import viz
from zslab.experiments import has_study as hs

if threads or preset == "smoke":
    torch.set_num_threads(threads or 1)
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
study = hs.STUDY_PRESETS[preset]
data = hs.load_study_data(preset, cache_dir=Path(cache_dir) / "data")
seeds = list(seeds) if seeds is not None else list(study["seeds"])
print(f"preset {preset}: seeds {seeds}; {len(data.splits['train'])} training images, "
      f"{len(data.unseen_classes)} unseen classes")"""


def _model_of(row_name):
    """Code loading the (cached) model of a Table-2 row for the first seed."""
    return f"""[{row_name}_row] = hs.run_study(hs.table2_configs(preset, rows=["{row_name}"], seeds=seeds[:1]), cache_dir,
                         data=data, progress=progress, device=device)
from zslab.train import load_run
{row_name}_config, _, {row_name}_model, _ = load_run({row_name}_row["run_dir"], data=data, device=device)"""


HAS_VS_APN = [
    ("md", """# HAS vs APN and the loss ablation (HAS Tables 1–2)

HAS (§3.3–3.7) trains APN on adversarial samples generated, with the model frozen, by signed-gradient
*descent* on L_CLS − λ_rob·L_ROB + λ_rel·L_REL + λ_div·L_DIV (Eq. 3–7; signs and weights as in
`zslab.has`). Table 1 compares HAS with the APN baseline; Table 2 switches the generator's terms on one
by one: **cls** (only L_CLS), **cls+rob**, **cls+div**, **cls+rob+rel**, **cls+div+rel**, **has** (all).
Metrics (§4.1): ZSL T1 (per-class top-1 on unseen classes, Eq. 8) and GZSL U/S/H with calibrated stacking
(Eq. 9), μ and the checkpoint chosen on the validation split. We add the **localisation** score the paper
could not compute: the share of each attribute's attention inside the mask of the part that carries it
(`zslab.eval.localisation`; test-unseen images).

Batch run: `papermill notebooks/11_has_vs_apn.ipynb out.ipynb -p preset full`."""),
    _params("runs/has_vs_apn", '\ntable2_rows = None        # None: the preset\'s Table-2 rows (full: all of zslab.has.TABLE2_ROWS)'),
    ("code", _SETUP),
    ("md", "## Train every row (cached) and evaluate"),
    ("code", """runs = hs.table2_configs(preset, rows=table2_rows, seeds=seeds)
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
        assert 0.0 <= r[m] <= 1.0, (r["name"], m, r[m])"""),
    ("md", "## Table 1: HAS vs APN"),
    ("code", """labels = {"baseline": "APN (baseline)", "cls": "+L_CLS", "cls+rob": "+L_CLS+L_ROB", "cls+div": "+L_CLS+L_DIV",
          "cls+rob+rel": "+L_CLS+L_ROB+L_REL", "cls+div+rel": "+L_CLS+L_DIV+L_REL", "has": "HAS (all terms)"}
assert "baseline" in summary and "has" in summary, "Table 1 needs the rows 'baseline' (APN) and 'has'"
table1 = {k: summary[k] for k in ("baseline", "has")}
fig = viz.summary_table(table1, metrics=hs.METRICS + ("localisation",), row_labels=labels,
                        title=f"Table 1 on shapes ({preset} preset): APN vs HAS")
fig.savefig(out / "table1_has_vs_apn.png", dpi=120)"""),
    ("md", "## Table 2: which generator terms matter"),
    ("code", """fig = viz.summary_table(summary, metrics=hs.METRICS + ("localisation",), row_labels=labels,
                        title=f"Table 2 on shapes ({preset} preset): HAS loss ablation")
fig.savefig(out / "table2_ablation.png", dpi=120)
deltas = hs.paired_deltas(rows, "baseline", metrics=hs.METRICS + ("localisation",))
fig = viz.delta_bars(summary, baseline="baseline", metrics=("zsl_t1", "gzsl_h", "localisation"), deltas=deltas,
                     title="Loss ablation: change vs the APN baseline", xlabel="Table 2 row (generator terms)",
                     baseline_label="APN")
fig.savefig(out / "table2_delta.png", dpi=120)"""),
    ("code", """results = {"notebook": "11_has_vs_apn", "preset": preset, "seeds": seeds, "rows": rows, "summary": summary,
           "has_minus_apn": {m: summary["has"][m]["mean"] - summary["baseline"][m]["mean"]
                             for m in hs.METRICS + ("localisation",)}, "paired_deltas": deltas,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(json.dumps(results["has_minus_apn"], indent=1))"""),
]

SENSITIVITY = [
    ("md", """# Hyper-parameter sensitivity of HAS (Fig. 4)

HAS trained with one generator weight varied at a time, the others at their defaults (`zslab.has.HASConfig`):
(a) the reliability weight λ_rel of L_REL (Eq. 6), (b) the robustness weight λ_rob of L_ROB (Eq. 5),
(c) the diversity weight of L_DIV (Eq. 7; both attention terms scaled together) and (d) the step size α of
each signed-gradient step (the paper's "perturbation strength ε"), and, beyond the paper, (e) the attention-entropy
weight of L_DIV alone, across its sign: the official scripts use −1 (CUB) and −0.1 (AwA2), which sharpen the
attribute attention, and +0.1 (SUN), which flattens it as Eq. 7 says. Dashed lines: the APN baseline.
The paper names these λ1 (reliability), λ2 (robustness), λ3 (diversity) in Fig. 4 but numbers them the
other way in Eq. 3; zslab names the terms instead.

A sweep at one seed cannot tell a change from seed noise by itself. With `spread_seeds` (e.g. `[0, 1, 2]`)
the default configuration (= the `has` row of Table 2; every sweep passes through it) is also trained at
those seeds, and each panel shades ±1 std of it around the curve's default point."""),
    _params("runs/sensitivity", '\nsweeps = None             # None: all of zslab.experiments.SWEEPS'
                                '\nspread_seeds = None       # e.g. [0, 1, 2]: also train the default (HAS) at these seeds; '
                                'shade its ±1 std'),
    ("code", _SETUP),
    ("code", """sweeps = list(sweeps) if sweeps is not None else list(hs.SWEEPS)
apn_rows = hs.run_study(hs.table2_configs(preset, rows=["baseline"], seeds=seeds), cache_dir, data=data,
                        progress=progress, device=device)
apn = hs.summarize(apn_rows)["baseline"]
summaries, sweep_rows, all_rows = {}, {}, []
for p in sweeps:
    runs = hs.sweep_configs(p, preset, seeds=seeds)
    values = [r["value"] for r in runs]
    assert values == sorted(values), "sweeps run in increasing order of the value"
    rows = hs.run_study(runs, cache_dir, data=data, progress=progress, device=device)
    all_rows += rows
    sweep_rows[p] = rows
    summaries[p] = hs.summarize(rows)
    print(p, {f"{e['value']:.4g}": round(100 * e["gzsl_h"]["mean"], 1) for e in summaries[p].values()})
spread_rows = hs.run_study(hs.table2_configs(preset, rows=["has"], seeds=list(spread_seeds)), cache_dir, data=data,
                           progress=progress, device=device) if spread_seeds else []
spread = hs.summarize(spread_rows) if spread_rows else {}
if spread:
    print("default (has) over seeds", list(spread_seeds), {m: f"{100 * spread['has'][m]['mean']:.1f} ± "
                                                             f"{100 * spread['has'][m]['std']:.1f}" for m in hs.METRICS})
for r in all_rows + apn_rows + spread_rows:
    for m in hs.METRICS:
        assert 0.0 <= r[m] <= 1.0, (r["name"], m)"""),
    ("code", """n_seeds = (f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {', '.join(map(str, seeds))}") + (
    f"; bands: default over seeds {', '.join(map(str, spread_seeds))}" if spread else "")
fig = viz.sensitivity_curves(summaries, labels={p: hs.SWEEPS[p]["label"] for p in sweeps}, baseline=apn,
                             spread=spread.get("has"), defaults={p: hs.SWEEPS[p]["default"] for p in sweeps},
                             title=f"HAS hyper-parameter sensitivity on shapes ({preset} preset, {n_seeds})")
fig.savefig(out / "fig4_sensitivity.png", dpi=120)
assert len(fig.axes) >= len(sweeps)"""),
    ("code", """results = {"notebook": "12_sensitivity", "preset": preset, "seeds": seeds, "apn": apn, "apn_rows": apn_rows,
           "sweeps": summaries, "sweeps_rows": sweep_rows, "rows": all_rows, "spread_seeds": list(spread_seeds or []),
           "spread_rows": spread_rows, "spread": spread,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])"""),
]

FEATURE_DRIFT = [
    ("md", """# Feature drift over perturbation steps, with and without L_REL (Fig. 5)

We take a trained APN and perturb a batch of training images with the HAS generator for T steps, once
without the reliability term (λ_rel = 0) and once with it. L_REL = ‖g(f(I_adv)) − g(f(I))‖² (Eq. 6) keeps
the pooled visual features near the clean image's, which the paper argues prevents semantic distortion.
The features of every step of both runs are embedded together with t-SNE (exact, `zslab.viz.tsne`);
darker points are later steps. The drift curve gives the same comparison as a number per step."""),
    _params("runs/feature_drift", '\nsteps = None              # None: 5 (smoke) / 10 (full, as the paper)\n'
                                  'n_images = None           # None: 16 (smoke) / 64 (full, as the paper)\n'
                                  'lambda_rel = 10.0         # the reliability weight of the "with L_REL" run\n'
                                  'step_size = 4 / 255       # per-step α, the same for both runs'),
    ("code", _SETUP),
    ("code", _model_of("baseline")),
    ("code", """from zslab.has import HASConfig
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
assert with_rel["drift"][-1] <= no_rel["drift"][-1], "L_REL should keep features closer to the clean ones\""""),
    ("code", """feats = torch.cat([t["features"].reshape(-1, t["features"].shape[-1]) for t in traj.values()])
emb = viz.tsne(feats, perplexity=min(30.0, (len(feats) - 1) / 3), iterations=500 if preset == "full" else 300)
parts = dict(zip(traj, emb.split(len(emb) // len(traj))))
parts = {k: v.reshape(steps + 1, len(x), 2) for k, v in parts.items()}
fig = viz.feature_drift_tsne(parts, title=f"APN features over {steps} HAS steps (t-SNE of g(f(I_t)), {len(x)} images)")
fig.savefig(out / "fig5_feature_tsne.png", dpi=120)
fig = viz.drift_curve(traj, title="Feature drift from the clean image, with and without L_REL")
fig.savefig(out / "fig5_drift_curve.png", dpi=120)
assert torch.isfinite(emb).all()"""),
    ("code", """results = {"notebook": "13_feature_drift", "preset": preset, "model_run": baseline_row["run_dir"], "steps": steps,
           "n_images": len(x), "step_size": step_size, "drift": {k: t["drift"] for k, t in traj.items()},
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])"""),
]

ATTENTION = [
    ("md", """# Attribute attention maps and the anatomy of a HAS perturbation (Fig. 6–7)

**Fig. 6.** Attention maps h(x)_k of APN and of HAS for the attributes an unseen-class image actually has
(one per part and group). The embedded dataset keeps each image's head/body masks, so we also *measure*
localisation: the share of each attribute's attention inside its part (`zslab.eval.localisation`).

**Fig. 7.** The HAS generator applied to training images with the trained HAS model: (a) original, (b) the
perturbation normalised to [0, 1], (c) the adversarial image, (d)/(e) the perturbation inside/outside the
object (the paper separates them by value; here the true object masks are used), with mean |δ| of each."""),
    _params("runs/attention_perturbation", '\nn_examples = 3            # images in each figure'),
    ("code", _SETUP),
    ("code", _model_of("baseline") + "\n" + _model_of("has")),
    ("code", """from zslab.eval.localisation import attention_in_part
loc = {name: attention_in_part(m, data, "test_unseen", max_images=study["max_images"], progress=False)
       for name, m in (("APN", baseline_model), ("HAS", has_model))}
for name, r in loc.items():
    print(f"{name}: {100 * r['mean']:.1f}% of attention inside the attribute's part (uniform: {100 * r['chance']:.1f}%)")
    assert 0.0 <= r["mean"] <= 1.0 and 0.0 < r["chance"] < 1.0
fig = viz.summary_table({k: {"localisation": v["mean"], "chance": v["chance"]} for k, v in loc.items()},
                        metrics=("localisation", "chance"), title="Attention inside the attribute's part (test unseen)")
fig.savefig(out / "localisation.png", dpi=120)"""),
    ("code", """ds = data.splits["test_unseen"]
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
    assert maps["APN"].shape == maps["HAS"].shape and maps["APN"].shape[0] == data.num_attributes"""),
    ("code", """from zslab.has import HASConfig
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
      [round(255 * b, 2) for b in parts["bg_mean_abs"]])"""),
    ("code", """results = {"notebook": "14_attention_perturbation", "preset": preset,
           "runs": {"APN": baseline_row["run_dir"], "HAS": has_row["run_dir"]},
           "localisation": {k: {"mean": v["mean"], "chance": v["chance"], "per_part": v["per_part"],
                                "per_group": v["per_group"]} for k, v in loc.items()},
           "perturbation": {"fg_mean_abs": parts["fg_mean_abs"], "bg_mean_abs": parts["bg_mean_abs"]},
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])"""),
]

SEMANTIC = [
    ("md", """# Semantic distortion: traditional augmentations vs attribute ZSL (Fig. 2, Table 3)

HAS (§1, §4.5) argues that ordinary augmentations change what an image *means* for attribute-based ZSL:
colour jitter and grayscale change colour attributes, crops remove parts, mixing blends two classes'
attributes. On the embedded dataset colour *is* an attribute (head/body colour).

**Fig. 2, quantified.** A trained APN predicts attributes â = g(x)ᵀV on clean test-seen images and on
augmented versions; per attribute group (e.g. "body colour") we count how often the predicted value
(the group's argmax) stays the same, and the accuracy against the image's true attribute values.

**Table 3.** APN trained with each augmentation (`augment` config key, `zslab.augment`), ZSL T1 and GZSL
U/S/H compared with no augmentation."""),
    _params("runs/semantic_distortion", "\naugmentations = None      # None: the preset's Table-3 augmentations (full: all of "
                                        "zslab.augment.AUGMENTATIONS); 'none' is always added"),
    ("code", _SETUP),
    ("code", _model_of("baseline")),
    ("code", """from zslab.augment import AUGMENTATIONS
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
fig.savefig(out / "fig2_accuracy_drop.png", dpi=120)"""),
    ("code", """ds = data.splits["test_seen"]
picks = torch.linspace(0, len(ds) - 1, 3).long().tolist()
ex = hs.augment_examples(baseline_model, data, ["colorjitter0.4", "grayscale0.4", "rotate", "crop_half"], picks,
                         split="test_seen", seed=seeds[0])
body_colour = hs.attribute_groups(data)["body colour"]
fig = viz.attribute_prediction_panel(ex, body_colour, data.attribute_names,
                                     captions=[data.class_names[int(c)] for c in ex["labels"]],
                                     title="Fig. 2 on shapes: APN's body-colour predictions, clean vs augmented")
fig.savefig(out / "fig2_examples.png", dpi=120)
assert ex["attr"]["none"].shape == (3, data.num_attributes)"""),
    ("md", "## Table 3: APN trained with each augmentation"),
    ("code", """names = None if augmentations is None else ["none"] + [a for a in augmentations if a != "none"]
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
fig.savefig(out / "table3_delta.png", dpi=120)"""),
    ("md", """**What training with an augmentation does to the attributes.** ZSL accuracy only needs the unseen
classes to stay apart; the paper's claim is about the attributes themselves. Each Table-3 model predicts
the attributes of the unseen test images (no augmentation at test time); per attribute group, the
accuracy of the predicted value, averaged over seeds, and how many points each augmentation costs
against training without one."""),
    ("code", """from zslab.train import load_run

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
fig.savefig(out / "table3_attribute_cost.png", dpi=120)"""),
    ("code", """results = {"notebook": "10_semantic_distortion", "preset": preset, "seeds": seeds, "model_run": baseline_row["run_dir"],
           "distortion": dist, "colour_agreement": colour, "table3_rows": rows, "table3": table3, "table3_deltas": table3_deltas,
           "table3_attribute_accuracy": attr_acc, "table3_attribute_cost": cost,
           "figures": sorted(p.name for p in out.glob("*.png"))}
(out / "results.json").write_text(json.dumps(results, indent=2))
print(results["figures"])"""),
]

NOTEBOOKS = {
    "00_quickstart": QUICKSTART,
    "10_semantic_distortion": SEMANTIC,
    "11_has_vs_apn": HAS_VS_APN,
    "12_sensitivity": SENSITIVITY,
    "13_feature_drift": FEATURE_DRIFT,
    "14_attention_perturbation": ATTENTION,
}



def _load_notebook_modules() -> None:
    """More notebooks live in ``tools/nb_*.py`` modules, each exporting ``NOTEBOOKS`` (name -> cells)
    and building its cells with :func:`notebook`'s (kind, source, *tags) tuples."""
    import importlib.util

    for path in sorted(Path(__file__).parent.glob("nb_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        clash = set(mod.NOTEBOOKS) & set(NOTEBOOKS)
        if clash:
            raise SystemExit(f"{path.name} redefines notebooks {sorted(clash)}")
        NOTEBOOKS.update(mod.NOTEBOOKS)


_load_notebook_modules()


if __name__ == "__main__":
    import sys

    names = sys.argv[1:] or list(NOTEBOOKS)
    for name in names:
        nbf.write(notebook(NOTEBOOKS[name]), ROOT / "notebooks" / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")
