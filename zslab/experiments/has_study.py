"""The HAS paper's experiments as library functions (notebooks 10–14 call these).

HAS (Chen et al., ACM MM 2023) studies, on top of APN:

* Table 1 / Table 2 — HAS vs APN and the loss ablation (§4.2–4.3):
  :func:`table2_configs` (rows from :func:`zslab.methods.has.table2_overrides`);
* Fig. 4 — sensitivity to the reliability, robustness and diversity weights and to the
  perturbation step size (§4.4): :func:`sweep_configs` over :data:`SWEEPS`;
* Table 3 — APN trained with traditional augmentations (§4.5): :func:`augmentation_configs`;
* Fig. 2 — semantic distortion, attribute predictions of a trained APN on clean vs augmented
  images (§1): :func:`semantic_distortion`, :func:`augment_examples`;
* Fig. 5 — features over perturbation steps with and without L_REL (§4.3):
  :func:`feature_trajectory`;
* Fig. 7 — the perturbation split into foreground and background parts (§4.6.1):
  :func:`perturbation_parts`.

Training goes through the one engine (:func:`zslab.train.train`); :func:`run_study` trains a
list of configurations into ``out_dir`` with a progress bar and returns one row of test
metrics per run. Each run directory is named by the config's hash, so re-running a notebook
reuses finished runs (and resumes unfinished ones) instead of training again.

Presets (:data:`STUDY_PRESETS`): ``smoke`` shrinks the engine's ``smoke`` preset further
(8 training images per class, 2 epochs, width-8 backbone, one seed, few sweep values) so that a
notebook finishes in well under a minute on a 2-core CPU; its numbers only check that the
pipeline runs. ``full`` is the engine's ``full`` preset (the embedded default dataset) with
3 seeds and every row; its numbers are the ones to report.

Naming of the weights: the paper's Eq. 3 calls the robustness weight λ1 and the reliability
weight λ2 while Fig. 4 and §4.4 call the reliability weight λ1 and the robustness weight λ2.
zslab avoids the numbers and names the terms (``has_lambda_rel``, ``has_lambda_rob``; see
:mod:`zslab.methods.has`).
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from zslab import ZSLabError
from zslab.attacks import eval_mode
from zslab.augment import build_augmentation
from zslab.config.resolve import study_presets, study_tables
from zslab.data import load_dataset
from zslab.experiments import runner
from zslab.experiments.paths import work_path
from zslab.experiments.runner import METRICS, config_key, paired_deltas, run_study, summarize
from zslab.methods.has import HAS, HASConfig
from zslab.train.config import make_config
from zslab.train.engine import load_run

__all__ = ["METRICS", "STUDY_PRESETS", "SWEEPS", "study_config", "load_study_data", "config_key", "run_study",
           "summarize", "paired_deltas", "table2_configs", "sweep_configs", "augmentation_configs", "semantic_distortion",
           "augment_examples", "attribute_groups", "feature_trajectory", "perturbation_parts", "notebook_setup",
           "trained_row"]

#: the test metrics every row carries (fractions in [0, 1]); HAS §4.1, Eq. 8–9

#: Study presets: the engine preset they start from, dotted overrides on top of it, the seeds,
#: how many values of each sweep to run (``None``: all) and which Table-2 rows / Table-3
#: augmentations to train.
STUDY_PRESETS: dict[str, dict] = study_presets("has")  # zslab/config/recipes/studies/has.yaml

#: Fig. 4 sweeps (and the sign of the attention-entropy weight): the value tables of group
#: ``sweeps`` in ``zslab/config/recipes/studies/has.yaml``, each with its ``label``, ``values``,
#: ``default`` and ``keys`` (value → the config keys it sets; ``lambda_div`` scales both parts of
#: L_DIV together, relative to their defaults). ``step_size`` is in [0, 1] pixel units.
SWEEPS: dict[str, dict] = {
    name: {"label": t["label"], "values": tuple(t["values"]), "default": t["default"],
           "keys": partial(runner.value_overrides, t)}
    for name, t in study_tables("has")["tables"].items() if t.get("group") == "sweeps"}


# ------------------------------------------------------------------------------ configs
def _preset(preset: str) -> dict:
    if preset not in STUDY_PRESETS:
        raise ZSLabError(f"unknown study preset {preset!r}; choose one of {', '.join(STUDY_PRESETS)}")
    return STUDY_PRESETS[preset]


def study_config(method: str = "apn", preset: str = "smoke", overrides: dict | None = None, seed: int = 0,
                 dataset: str = "shapes") -> dict:
    """An engine config for ``method`` under study preset ``preset`` plus ``overrides`` (dotted
    keys, as for ``zslab train --set``); ``overrides["method"]`` replaces ``method``."""
    sp = _preset(preset)
    over = dict(sp["overrides"])
    over.update(overrides or {})
    method = over.pop("method", method)
    return make_config(method, sp["train_preset"], dataset=dataset, overrides=over, seed=seed)


def trained_row(row: str, preset: str, seed: int, cache_dir, data, progress: bool = True, device=None):
    """One Table-2 row (``"baseline"`` = APN, ``"has"``, ...) trained at ``seed`` into the run cache, or
    reused from it, with its selected checkpoint loaded: ``(row, config, model)`` — what notebooks
    10, 13 and 14 start from."""
    [r] = run_study(table2_configs(preset, rows=[row], seeds=[seed]), cache_dir, data=data, progress=progress,
                    device=device)
    config, _, model, _ = load_run(r["run_dir"], data=data, device=device)
    return r, config, model


def load_study_data(preset: str = "smoke", dataset: str = "shapes", cache_dir: str | Path | None = None):
    """The dataset every config of ``preset`` trains on (load it once, pass it to :func:`run_study`).

    ``cache_dir`` (the generated ``shapes`` dataset only): keep the generated tensors there, so
    the next notebook loads instead of regenerating them (relative: under the project folder,
    :func:`zslab.experiments.paths.work_path`). It is not part of the run configs.
    """
    cfg = study_config("apn", preset, dataset=dataset)
    kw = dict(cfg["data"])
    if cache_dir is not None and dataset == "shapes" and "cache_dir" not in kw:
        kw["cache_dir"] = str(work_path(cache_dir))
    return load_dataset(cfg["dataset"], **kw)


def notebook_setup(preset: str = "smoke", seeds=None, cache_dir: str | Path = "runs/study", out_dir: str | Path = ".",
                   threads: int = 0):
    """What notebooks 10–14 do first: set torch's CPU threads (``threads``; 0 keeps torch's default,
    except on the smoke preset, which runs on 1 thread), create ``out_dir``, load the study's dataset
    (generated tensors cached under ``cache_dir/data``) and resolve ``seeds`` (``None``: the
    preset's). Returns ``(out, seeds, data, study)`` with ``study`` the preset's settings and
    ``out`` absolute: relative ``out_dir`` and ``cache_dir`` are taken under the project folder
    (:func:`zslab.experiments.paths.work_path`), not the kernel's working directory ``notebooks/``."""
    if threads or preset == "smoke":
        torch.set_num_threads(int(threads) or 1)
    out = work_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = _preset(preset)
    data = load_study_data(preset, cache_dir=work_path(cache_dir) / "data")
    return out, list(_seeds(preset, seeds)), data, study


def _seeds(preset: str, seeds) -> tuple[int, ...]:
    return tuple(int(s) for s in (_preset(preset)["seeds"] if seeds is None else seeds))


def table2_configs(preset: str = "smoke", rows=None, seeds=None, overrides: dict | None = None,
                   dataset: str = "shapes") -> list[dict]:
    """Runs for Table 1 (APN vs HAS) and the Table 2 ablation: one per (row, seed).

    ``rows`` default: the preset's rows (``full``: every row of :data:`zslab.methods.has.TABLE2_ROWS`,
    ``baseline`` = APN). Each run is ``{"name": row, "config": ..., "row": row}`` (run table ``table2``
    of ``recipes/studies/has.yaml``, :func:`zslab.experiments.runner.study_runs`).
    """
    return runner.study_runs("has", "table2", preset, rows, seeds, overrides, dataset=dataset)


def sweep_configs(param: str, preset: str = "smoke", values=None, seeds=None, overrides: dict | None = None,
                  dataset: str = "shapes") -> list[dict]:
    """HAS runs for one Fig. 4 sweep (:data:`SWEEPS`), in increasing order of the value.

    ``values`` default: the sweep's values. A preset with ``sweep_values`` = k (``smoke``: 2) keeps
    the default value (the :class:`zslab.methods.has.HASConfig` default, so that run is the Table-2 ``has``
    run and shared by every sweep through :func:`run_study`'s cache) and the k − 1 largest others.
    Each run is ``{"name": f"{param}={value:g}", "config": ..., "param": param, "value": value}``;
    the other weights stay at the :class:`zslab.methods.has.HASConfig` defaults.
    """
    if param not in SWEEPS:
        raise ZSLabError(f"unknown sweep {param!r}; choose one of {', '.join(SWEEPS)}")
    return runner.study_runs("has", param, preset, values, seeds, overrides, dataset=dataset)


def augmentation_configs(preset: str = "smoke", names=None, seeds=None, overrides: dict | None = None,
                         dataset: str = "shapes") -> list[dict]:
    """APN runs for Table 3: one per (augmentation, seed), ``none`` (no augmentation) included
    (run table ``augment``: the engine's ``augment`` config key, ``zslab.train.config.METHOD_DEFAULTS``)."""
    return runner.study_runs("has", "augment", preset, names, seeds, overrides, dataset=dataset)


# ------------------------------------------------------------------------------ running
def _device_of(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _split_tensors(data, split: str, max_images: int | None):
    if split not in data.splits:
        raise ZSLabError(f"dataset '{data.name}' has no split '{split}'; choose one of {', '.join(data.splits)}")
    ds = data.splits[split]
    n = len(ds) if max_images is None else min(len(ds), int(max_images))
    if n == 0:
        raise ZSLabError(f"split '{split}' is empty")
    # spread the subset over the split (splits are ordered by class)
    idx = torch.linspace(0, len(ds) - 1, n).round().long().unique()
    x = ds.images[idx]
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    return ds, idx, x, ds.labels[idx]


def attribute_groups(data) -> dict[str, list[int]]:
    """Attribute indices per group (``meta["attribute_group"]``, e.g. "head colour"); without
    group metadata every attribute is its own group."""
    groups = (getattr(data, "meta", None) or {}).get("attribute_group")
    if groups is None:
        return {name: [k] for k, name in enumerate(data.attribute_names)}
    out: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        out.setdefault(g, []).append(k)
    return out


def _group_values(attr: torch.Tensor, idx: list[int]) -> torch.Tensor:
    """Predicted value per image for one group: argmax within the group, or attr > 0.5 for a
    single attribute."""
    if len(idx) == 1:
        return (attr[:, idx[0]] > 0.5).long()
    return attr[:, idx].argmax(1)


@torch.no_grad()
def _attributes(model, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    dev = _device_of(model)
    return torch.cat([model(x[i:i + batch_size].to(dev))["attr"].float().cpu() for i in range(0, len(x), batch_size)])


def semantic_distortion(model, data, augmentations, split: str = "test_seen", max_images: int | None = None,
                        seed: int = 0, batch_size: int = 256, progress: bool = True) -> list[dict]:
    """Fig. 2 quantified: how much each augmentation changes a trained APN's attribute predictions.

    For every image of ``split`` (or ``max_images`` spread over it) APN predicts attributes
    â = g(x)ᵀV on the clean image and on its augmented version (:func:`zslab.augment.build_augmentation`,
    seeded with ``seed``). Per attribute group (e.g. "body colour"; :func:`attribute_groups`)
    the predicted value is the group's argmax. One row per (augmentation, group):

    ``agreement`` — share of images whose predicted value is unchanged by the augmentation;
    ``clean_acc`` / ``aug_acc`` — share whose predicted value equals the image's true value
    (``extras["attributes"]``; NaN when the split has none); ``drop`` = clean_acc − aug_acc;
    ``score_change`` — mean |Δâ| over the group's attributes; ``n`` images.

    The model runs in eval mode (restored afterwards); the mixing augmentations (MixUp, CutMix,
    SnapMix) mix each image with its predecessor in the subset.
    """
    ds, idx, x, y = _split_tensors(data, split, max_images)
    truth = ds.extras.get("attributes")
    truth = truth[idx].float() if truth is not None else None
    groups = attribute_groups(data)
    A = data.class_attributes.float()
    rows = []
    with eval_mode(model):  # restores every submodule's own train/eval flag
        clean = _attributes(model, x, batch_size)
        for name in tqdm(list(augmentations), desc="semantic distortion", disable=not progress, leave=False):
            aug = build_augmentation(name, image_size=x.shape[-1], generator=torch.Generator().manual_seed(seed))
            dev = _device_of(model)
            xa = aug(x.to(dev), y.to(dev), A.to(dev), model=model).images
            pred = _attributes(model, xa, batch_size)
            for g, ks in groups.items():
                vc, va = _group_values(clean, ks), _group_values(pred, ks)
                row = {"augmentation": name, "group": g, "agreement": float((vc == va).float().mean()),
                       "score_change": float((pred[:, ks] - clean[:, ks]).abs().mean()), "n": len(x)}
                if truth is not None:
                    vt = _group_values(truth, ks)
                    row["clean_acc"] = float((vc == vt).float().mean())
                    row["aug_acc"] = float((va == vt).float().mean())
                else:
                    row["clean_acc"] = row["aug_acc"] = float("nan")
                row["drop"] = row["clean_acc"] - row["aug_acc"]
                rows.append(row)
    return rows


@torch.no_grad()
def augment_examples(model, data, augmentations, indices, split: str = "test_seen", seed: int = 0) -> dict:
    """Images and APN attribute predictions for a few images under each augmentation (Fig. 2's
    panel): ``{"images": {aug: (n, 3, H, W)}, "attr": {aug: (n, K)}, "labels": (n,)}``; ``"none"``
    (the clean image) is always first."""
    ds = data.splits[split]
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    x = ds.images[idx]
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    y = ds.labels[idx]
    dev = _device_of(model)
    A = data.class_attributes.float().to(dev)
    images, attrs = {}, {}
    with eval_mode(model):  # restores every submodule's own train/eval flag
        for name in ["none"] + [a for a in augmentations if a != "none"]:
            aug = build_augmentation(name, image_size=x.shape[-1], generator=torch.Generator().manual_seed(seed))
            xa = aug(x.to(dev), y.to(dev), A, model=model).images
            images[name] = xa.cpu()
            attrs[name] = model(xa)["attr"].float().cpu()
    return {"images": images, "attr": attrs, "labels": y}


def _has_generator(model, config, class_attributes):
    if not isinstance(config, HASConfig):
        config = HASConfig(**(config or {}))
    return config, lambda cfg: HAS(model, cfg, class_attributes=class_attributes, seed=0)


@torch.no_grad()
def _features(model, x, A):
    return model(x, A)["features"].float().cpu()


def feature_trajectory(model, images: torch.Tensor, targets: torch.Tensor, class_attributes: torch.Tensor,
                       configs: dict, steps: int = 10) -> dict[str, dict]:
    """Fig. 5: pooled features g(f(I_t)) of HAS iterates t = 0..``steps`` for each generator config.

    ``configs`` maps a label (e.g. "without L_REL") to a :class:`zslab.methods.has.HASConfig` or a dict
    of its fields; ``targets`` index the rows of ``class_attributes`` (the train classes). HAS
    starts from the clean image without random start, so the T-step output equals the T-th
    iterate of a longer run; iterate t is obtained as the output of a t-step generator.
    Returns ``{label: {"features": (steps+1, N, C), "drift": [mean ‖g_t − g_0‖ per t]}}``.
    """
    if steps < 1:
        raise ZSLabError(f"feature_trajectory needs steps >= 1; got {steps}")
    dev = _device_of(model)
    x, y, A = images.to(dev), targets.to(dev), class_attributes.float().to(dev)
    out = {}
    with eval_mode(model):  # restores every submodule's own train/eval flag
        for label, cfg in configs.items():
            cfg, make = _has_generator(model, cfg, A)
            if cfg.random_start:
                raise ZSLabError("feature_trajectory needs a deterministic generator (random_start=False)")
            feats = [_features(model, x, A)]
            for t in range(1, steps + 1):
                adv = make(replace(cfg, steps=t))(x, y)
                feats.append(_features(model, adv, A))
            f = torch.stack(feats)
            out[label] = {"features": f, "drift": [float((f[t] - f[0]).norm(dim=1).mean()) for t in range(len(f))]}
    return out


def perturbation_parts(model, images: torch.Tensor, targets: torch.Tensor, class_attributes: torch.Tensor,
                       part_masks: torch.Tensor, config=None) -> dict:
    """Fig. 7: the HAS perturbation of ``images`` split into foreground and background parts.

    ``part_masks`` (N, P, H, W) bool (shapes' head/body masks); the foreground is their union.
    Returns ``clean``, ``adv``, ``delta`` = adv − clean, ``delta_norm`` (δ min–max normalised
    per image to [0, 1], as the paper's panel (b)), ``foreground`` / ``background``
    (``delta_norm`` inside / outside the object, 0.5 = no change elsewhere), ``fg_mask`` and the
    per-image mean |δ| per pixel inside and outside the object (``fg_mean_abs``, ``bg_mean_abs``).
    """
    dev = _device_of(model)
    cfg, make = _has_generator(model, config, class_attributes.float().to(dev))
    x = images.to(dev)
    adv = make(cfg)(x, targets.to(dev)).cpu()
    x = x.cpu()
    delta = adv - x
    flat = delta.flatten(1)
    lo, hi = flat.amin(1)[:, None, None, None], flat.amax(1)[:, None, None, None]
    norm = torch.where(hi > lo, (delta - lo) / (hi - lo).clamp_min(1e-12), torch.full_like(delta, 0.5))
    fg = part_masks.bool().any(1, keepdim=True).cpu()
    gray = torch.full_like(norm, 0.5)
    mag = delta.abs().mean(1, keepdim=True)
    fg_f = fg.float()
    return {"clean": x, "adv": adv, "delta": delta, "delta_norm": norm, "fg_mask": fg[:, 0],
            "foreground": torch.where(fg, norm, gray), "background": torch.where(fg, gray, norm),
            "fg_mean_abs": ((mag * fg_f).flatten(1).sum(1) / fg_f.flatten(1).sum(1).clamp_min(1)).tolist(),
            "bg_mean_abs": ((mag * (1 - fg_f)).flatten(1).sum(1) / (1 - fg_f).flatten(1).sum(1).clamp_min(1)).tolist()}

