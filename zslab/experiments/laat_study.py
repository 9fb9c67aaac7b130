"""The LAAT paper's training experiments as library functions (notebook ``21_laat_robustness``).

LAAT (Li et al., "Language-Driven Anchors for Zero-Shot Adversarial Robustness", CVPR 2024):

* Fig. 3 — learning curves (validation zero-shot accuracy per epoch) with the original text
  anchors, the expanded anchors (Appendix C, Alg. 1) and semantics-free MMC anchors (§3.3):
  :func:`curve_configs`, :func:`learning_curves`;
* Table 5 — ablation of anchor expansion (EXP), A-CE (vs. plain CE on the expanded anchors'
  cosines … here: the ``ace`` objective) and the smoothness loss (SM, Eq. 4):
  :func:`table5_configs`;
* Table 4 — the training objective: A-CE vs cosθ, θ and Euclidean (:func:`table4_configs`);
* Table 6 — TRADES (β = 1/λ) vs the smoothness loss with weight α (:func:`table6_configs`);
* Table S1 — the temperature τ of A-CE (Eq. 8) (:func:`tableS1_configs`);
* Fig. 5 — few-shot accuracy over shots with image prototypes vs image-text blended anchors
  (β = 2, §4.3): :func:`few_shot_curves`;
* "Measured, honestly" (issue 5): real CIFAR-10, three classes held out as novel, the offline
  MiniLM encoder, original vs expanded anchors × with vs without smoothness, 3 seeds:
  :func:`robustness_configs` under the ``full`` preset.

Every row is an engine config (``make_config("laat", …)``); runs go through the run cache of
:func:`zslab.experiments.has_study.run_study` (directory ``laat-seed<s>-<config hash>``: finished
runs are reused, unfinished ones resumed) with LAAT's final metrics :data:`METRICS`.
:func:`summarize` gives mean ± sample std over seeds.

Presets (:data:`STUDY_PRESETS`): ``smoke`` — the embedded ``shapes`` dataset, shrunk (a few
images per class, 2 epochs, PGD-2 training, PGD-3 evaluation) so a notebook runs in seconds;
its numbers only check the pipeline. ``full`` — CIFAR-10 image folders (``data_root``) with
``cat, dog, ship`` held out as novel and ``deer, truck`` as validation (pseudo-novel) classes
for model selection and the learning curves, MiniLM anchors, Conv4-64, a CPU-sized schedule
(700 training images per class, 10 epochs with the learning rate ×0.1 after 7, PGD-7
training at 8/255, PGD-20 evaluation), 3 seeds: 10–12 minutes per run on one core (55–70 s per
epoch). Notebook 21 at ``full`` trains 15 distinct runs for Fig. 3 and the 4-row study (about 3
CPU-hours) and 27 more for the ablations of Tables 4, 5, 6 and S1 over 3 seeds (9 per seed);
``python -m zslab.experiments.study_queue --tables laat_robustness laat_curves --workers N``
trains them in parallel into the notebook's cache.

Why that schedule: the first ``full`` preset (250 images per class, 3 epochs: 60 SGD steps in
all) left every model near chance (training loss ≈ ln 5, PGD accuracy at or below chance on the
3-way novel episodes). On seed 0 with expanded anchors, 15 epochs on 1,000 images per class
(1,185 SGD steps) raised the adversarial training accuracy from 32 % to 54 %, clean zero-shot
accuracy from 48.7 % to 59.5 % and PGD-20 zero-shot accuracy from 34.2 % (chance 33.3 %) to
42.2 %, but the validation classes chose epoch 5 of 15 and a run took about 24 minutes on one
core, so 15 runs did not fit a working session on 2 cores: the preset keeps 70 % of the images
and 10 epochs (about 550 SGD steps, 9× the first preset). The validation classes get 500
images each (was 100) because the checkpoint is selected on their 2-way zero-shot accuracy,
whose binomial standard error on 200 images (≈ 2.5–3.5 points at 85–70 % accuracy) was as large
as the differences between epochs (1,000 images: ≈ 1.1–1.5); the training classes keep 100
held-out validation images each (was 30), which choose μ of the calibrated GZSL.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from zslab import ZSLabError
from zslab.anchors import mmc_anchors
from zslab.attacks import PGD
from zslab.config.resolve import study_presets, study_tables
from zslab.data import load_dataset
from zslab.eval.episodes import zero_shot_episodes
from zslab.experiments import paths, runner
from zslab.experiments.runner import run_study
from zslab.experiments.runner import summarize as _summarize
from zslab.methods.laat import load_class_anchors
from zslab.train import load_run
from zslab.train.config import make_config
from zslab.train.preflight import resolve_n_way

__all__ = ["METRICS", "CS_METRICS", "STUDY_PRESETS", "CIFAR10_NOVEL", "CIFAR10_VAL", "study_config",
           "load_study_data", "mmc_encoder", "robustness_configs", "curve_configs", "table5_configs",
           "table4_configs", "table6_configs", "tableS1_configs", "run_rows", "summarize", "learning_curves",
           "few_shot_curves", "row_diff"]

#: final metrics of a LAAT run every study row carries (fractions in [0, 1]; LAAT §4.1-4.2)
METRICS = ("zs_clean", "zs_pgd", "gzsl_clean", "gzsl_pgd")
#: GZSL with calibrated stacking (clean; :meth:`zslab.methods.laat.LAATStrategy.test`), beyond the paper:
#: U, S, H over training ∪ novel classes with μ chosen on validation, and H with μ = 0 on the same
#: classes (the fair reference: ``gzsl_*`` above is N-way over every class, validation classes
#: included). Rows of runs made before these existed carry NaN.
CS_METRICS = ("gzsl_cs_u", "gzsl_cs_s", "gzsl_cs_h", "gzsl_cs_h_uncalibrated")

#: CIFAR-10 classes held out as novel in the ``full`` preset: two animals whose nearest seen
#: classes are other animals (cat, dog ↔ horse, bird, frog) and one vehicle (ship ↔ airplane,
#: automobile); cat vs dog is CIFAR-10's most confused pair, so the 3-way task is not trivial.
CIFAR10_NOVEL = tuple(study_presets("laat")["full"]["overrides"]["data"]["novel"].split(","))  # cat, dog, ship
#: validation (pseudo-novel) classes for model selection and the learning curves: one animal,
#: one vehicle, mirroring the novel mix. The 5 remaining classes are the training classes.
CIFAR10_VAL = tuple(study_presets("laat")["full"]["overrides"]["data"]["val_classes"].split(","))  # deer, truck


STUDY_PRESETS: dict[str, dict] = study_presets("laat")  # zslab/config/recipes/studies/laat.yaml

#: The row tables (config overrides per row) of ``zslab/config/recipes/studies/laat.yaml``'s run
#: tables (Table 5: EXP / A-CE / SM; Table 4: the objective; Table 6: TRADES vs SM; the issue's
#: "Measured, honestly" study: anchors × smoothness).
_TABLES = {name: {n: r["overrides"] for n, r in runner.table_rows(t).items()}
           for name, t in study_tables("laat")["tables"].items() if "keys" not in t}
TABLE5_ROWS: dict[str, dict] = _TABLES["table5"]
TABLE4_ROWS: dict[str, dict] = _TABLES["table4"]
TABLE6_ROWS: dict[str, dict] = _TABLES["table6"]
ROBUSTNESS_ROWS: dict[str, dict] = _TABLES["robustness"]


# ------------------------------------------------------------------------------ configs
def _preset(preset: str) -> dict:
    if preset not in STUDY_PRESETS:
        raise ZSLabError(f"unknown LAAT study preset {preset!r}; choose one of {', '.join(STUDY_PRESETS)}")
    return STUDY_PRESETS[preset]


def _data_root(preset: str, data_root) -> str | None:
    if _preset(preset)["dataset"] != "folder":
        return None
    root = Path(data_root) if data_root is not None else paths.data_root("cifar10")
    if root is None or not (root / "train").is_dir() or not (root / "test").is_dir():
        where = f"${paths.DATA_ENV} is not set" if root is None else f"not found at {root}"
        raise ZSLabError(f"the '{preset}' LAAT study needs the CIFAR-10 image folders: {where} "
                         f"(root/train/<class>/*.png and root/test/<class>/*.png; classes "
                         f"{', '.join(CIFAR10_NOVEL + CIFAR10_VAL)} among them); set {paths.DATA_ENV}=/path/to/data "
                         f"(a folder holding cifar10/) or pass data_root=/path/to/cifar10, or run the smoke preset")
    return str(root.resolve())


def study_config(preset: str = "smoke", overrides: dict | None = None, seed: int = 0, data_root=None) -> dict:
    """A LAAT engine config under study preset ``preset`` plus ``overrides`` (flat config keys;
    ``data`` merged key by key)."""
    sp = _preset(preset)
    over = copy.deepcopy(sp["overrides"])
    root = _data_root(preset, data_root)
    if root is not None:
        over["data"] = {**over.get("data", {}), "root": root}
    for k, v in (overrides or {}).items():
        if k == "data":
            over["data"] = {**over.get("data", {}), **v}
        else:
            over[k] = v
    return make_config("laat", sp["train_preset"], dataset=sp["dataset"], overrides=over, seed=seed)


def row_config(method: str, preset: str, overrides: dict | None = None, seed: int = 0, data_root=None) -> dict:
    """:func:`study_config` with the signature of a run-table config function
    (:func:`zslab.experiments.runner.study_runs`; ``method`` is always ``laat``)."""
    return study_config(preset, overrides, seed=seed, data_root=data_root)


def load_study_data(preset: str = "smoke", data_root=None):
    """The dataset every config of ``preset`` trains on (load once, pass to :func:`run_rows`)."""
    cfg = study_config(preset, data_root=data_root)
    return load_dataset(cfg["dataset"], **cfg["data"])


def _seeds(preset, seeds):
    return tuple(int(s) for s in (_preset(preset)["seeds"] if seeds is None else seeds))


def robustness_configs(preset: str = "smoke", rows=None, seeds=None, data_root=None) -> list[dict]:
    """Original vs expanded anchors × without / with smoothness (α = 0 / 3, Eq. 4), A-CE,
    one run per (row, seed): the issue's real-image study (:data:`ROBUSTNESS_ROWS`). Default
    rows: the preset's (``full``: all four)."""
    return runner.study_runs("laat", "robustness", preset, rows, seeds, data_root=data_root)


def table5_configs(preset: str = "smoke", rows=None, seeds=None, data_root=None) -> list[dict]:
    """Table 5 (EXP / A-CE / SM on or off; :data:`TABLE5_ROWS`). Default rows: the preset's."""
    return runner.study_runs("laat", "table5", preset, rows, seeds, data_root=data_root)


def table4_configs(preset: str = "smoke", rows=None, seeds=None, data_root=None) -> list[dict]:
    """Table 4: the objective (A-CE, cosθ, θ, Euclidean) with expanded anchors and α = 3."""
    return runner.study_runs("laat", "table4", preset, rows, seeds, data_root=data_root)


def table6_configs(preset: str = "smoke", rows=None, seeds=None, data_root=None) -> list[dict]:
    """Table 6: TRADES (β = 1/λ ∈ {1, 6}) vs the smoothness loss (α ∈ {1, 3})."""
    return runner.study_runs("laat", "table6", preset, rows, seeds, data_root=data_root)


def tableS1_configs(preset: str = "smoke", taus=None, seeds=None, data_root=None) -> list[dict]:
    """Table S1: the A-CE temperature τ (Eq. 8); ``taus`` default: the preset's."""
    return runner.study_runs("laat", "tableS1", preset, taus, seeds, data_root=data_root)


def mmc_encoder(data, out_dir, dim: int, seed: int = 0) -> str:
    """A ``file:`` encoder spec of MMC anchors (:func:`zslab.anchors.mmc_anchors`: a regular
    simplex, pairwise cosine −1/(C−1), no semantics) for every class of ``data``, written to
    ``out_dir/mmc_anchors_<C>x<dim>.npy`` with its class list — the semantics-free baseline of
    LAAT Fig. 3 (§3.3). A relative ``out_dir`` is taken under the project folder
    (:func:`zslab.experiments.paths.work_path`)."""
    names = list(data.class_names)
    out_dir = paths.work_path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    npy = out_dir / f"mmc_anchors_{len(names)}x{int(dim)}_s{int(seed)}.npy"
    txt = npy.with_suffix(".txt")
    a = mmc_anchors(len(names), int(dim), seed=int(seed)).astype(np.float32)
    if not npy.exists() or not np.array_equal(np.load(npy, allow_pickle=False), a):
        np.save(npy, a)
    if not txt.exists() or txt.read_text().split() != names:
        txt.write_text("\n".join(names) + "\n")
    return f"file:{npy.resolve()}:{txt.resolve()}"


def curve_configs(preset: str = "smoke", data=None, out_dir=None, seeds=None, data_root=None,
                  anchor_dim: int | None = None) -> list[dict]:
    """Fig. 3: the same LAAT training with original, expanded and MMC anchors (one per seed).

    MMC needs ``data`` (the class list) and ``out_dir`` (where its anchor file goes); its
    dimension ``anchor_dim`` defaults to the text encoder's (found from the original anchors)."""
    extra = {}
    if data is not None and out_dir is not None:
        if anchor_dim is None:
            anchor_dim = int(load_class_anchors(study_config(preset, data_root=data_root),
                                                list(data.class_names)).shape[1])
        extra["mmc"] = {"expand": False, "encoder": mmc_encoder(data, out_dir, anchor_dim)}
    return runner.study_runs("laat", "fig3", preset, seeds=seeds, extra_rows=extra, data_root=data_root)


def row_diff(a: dict, b: dict) -> dict[str, tuple]:
    """``{key: (a value, b value)}`` for the top-level keys (and ``data.*``) where two configs
    differ, ``seed`` included."""
    out = {}
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            for kk, (x, y) in row_diff(va, vb).items():
                out[f"{k}.{kk}"] = (x, y)
        elif va != vb:
            out[k] = (va, vb)
    return out


# ------------------------------------------------------------------------------ running
def run_rows(runs: list[dict], out_dir, data=None, progress: bool = True, device: str | None = None) -> list[dict]:
    """Train (or reuse from the run cache) every run; one row per run with :data:`METRICS`,
    the validation curve ``val_zs`` (list per epoch), :data:`CS_METRICS` and ``best_epoch``/``train_seconds``."""
    rows = run_study(runs, out_dir, data=data, progress=progress, device=device, metrics=METRICS)
    for r in rows:
        m = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        r["val_zs"] = [float(h["val_zs"]) for h in m.get("history", [])]
        for k in CS_METRICS:
            r[k] = float(m.get("final", {}).get(k, float("nan")))
    return rows


def summarize(rows: list[dict], by: str = "name", metrics=METRICS) -> dict[str, dict]:
    """Mean and sample std over seeds of ``metrics`` per row name:
    ``{name: {metric: {"mean", "std", "n"}, "table": ...}}`` (std 0 with one seed)."""
    drop = {"val_zs", *(k for k in CS_METRICS if k not in metrics)}
    clean = [{k: v for k, v in r.items() if k not in drop} for r in rows]
    return _summarize(clean, by=by, metrics=metrics)


def learning_curves(rows: list[dict]) -> dict[str, dict]:
    """Fig. 3 data: per row name the per-epoch validation zero-shot accuracy, mean and std over
    seeds: ``{name: {"epoch": [1..E], "mean": [...], "std": [...], "n": seeds}}``."""
    groups: dict[str, list[list[float]]] = {}
    for r in rows:
        if not r.get("val_zs"):
            raise ZSLabError(f"row {r.get('name')!r} has no validation history (run it with run_rows)")
        groups.setdefault(r["name"], []).append(r["val_zs"])
    out = {}
    for name, curves in groups.items():
        lengths = {len(c) for c in curves}
        if len(lengths) != 1:
            raise ZSLabError(f"row {name!r}: seeds ran different numbers of epochs {sorted(lengths)}")
        a = np.asarray(curves, dtype=np.float64)
        out[name] = {"epoch": list(range(1, a.shape[1] + 1)), "mean": a.mean(0).tolist(),
                     "std": (a.std(0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1])).tolist(), "n": len(a)}
    return out


def few_shot_curves(run_dir, shots, data=None, modes=("prototype", "blend"), beta: float = 2.0,
                    episodes: int = 100, n_query: int | None = None, attack: bool = False,
                    device: str | None = None, progress: bool = False) -> dict[str, dict]:
    """Fig. 5: N-way few-shot accuracy on the novel classes of a trained LAAT run over ``shots``
    with image prototypes (``prototype``: mean support feature) and image-text blended anchors
    (``blend``: β·â + Σ support features, β = 2, LAAT §4.3), via
    :func:`zslab.eval.episodes.zero_shot_episodes`. With ``attack``, also under the run's
    evaluation PGD (on the first few episodes). Returns ``{mode: {"shots", "clean", "clean_ci95",
    "pgd"?}}``."""
    loaded = load_run(run_dir, which="best", data=data, device=device)
    model, cfg, d, strategy_state = _unpack_run(loaded)
    anchors = strategy_state["anchors"].float()
    tau = float(cfg["tau"])
    n_query = int(cfg["eval_n_query"]) if n_query is None else int(n_query)
    eps, step, steps = cfg["eval_eps"], cfg["eval_pgd_step"], cfg["eval_pgd_steps"]
    model.eval()
    out = {}
    for mode in modes:
        res = {"shots": [int(k) for k in shots], "clean": [], "clean_ci95": []}
        if attack:
            res["pgd"] = []
        for k in shots:
            calls = [0]

            def pgd(classifier):
                calls[0] += 1
                return PGD(classifier, eps=eps, alpha=step, steps=steps, random_start=True, seed=1000 + calls[0])

            r = zero_shot_episodes(model, d.splits["test_unseen"], d.unseen_classes, anchors,
                                   n_way=resolve_n_way(cfg["eval_n_way"], len(d.unseen_classes)), n_query=n_query, episodes=int(episodes),
                                   attack={"pgd": pgd} if attack else None, seed=int(cfg["eval_seed"]), eps=eps,
                                   tau=tau, n_shot=int(k), anchor_mode=mode, beta=beta,
                                   max_episodes_attacked=max(1, int(episodes) // 5) if attack else None,
                                   progress=progress)
            res["clean"].append(float(r["mean"]))
            res["clean_ci95"].append(float(r["ci95"]))
            if attack:
                res["pgd"].append(float(r["robust"]["pgd"]["mean"]))
        out[mode] = res
    return out


def _unpack_run(loaded):
    """(model, config, data, strategy state) from :func:`zslab.train.load_run`'s
    ``(config, data, model, ckpt)``."""
    cfg, data, model, ckpt = loaded
    state = ckpt.get("strategy_state") or {}
    if "anchors" not in state:
        raise ZSLabError("this checkpoint holds no LAAT anchors; few-shot curves need a LAAT run")
    return model, cfg, data, state
