"""Shared ground of the cross-paper experiments (notebooks 31–33; issue 7 item 3).

Every model of these experiments — APN and HAS (the HAS paper) and LAAT-style adversarial
training (the LAAT paper) — is trained on the *same* embedded ``shapes`` dataset and evaluated
under one protocol, so their numbers compare:

* **Data**: the attribute study presets of :mod:`zslab.experiments.has_study` (``smoke``: tiny;
  ``full``: the dataset at full size). APN/HAS configs are exactly that module's study configs,
  so runs cached by notebooks 10–14 (``runs/study``) are reused. LAAT configs train on the same
  data (the same ``data.*`` keys) with class anchors from the classes' text names.
* **Zero-shot robustness** (:func:`zsl_robustness`): unseen-class test images classified among
  the unseen classes only (the ZSL T1 setting, HAS Eq. 8), attacked within an L∞ ball of
  radius ε in [0, 1] pixel space by the same attacks for every model: APN/HAS score a class by
  the dot product of predicted and class attributes (APN's ZSL classifier), LAAT by the cosine
  to the class anchors (LAAT Eq. 3 with τ). This is the all-unseen-way setting, not LAAT's
  5-way episodes, so that attribute and anchor models face the same candidates.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import torch

from zslab import ZSLabError
from zslab.attacks.wrappers import AnchorClassifier
from zslab.config.resolve import study_presets
from zslab.data.batches import iterate_batches
from zslab.eval.robust import robust_evaluate
from zslab.experiments import has_study as hs
from zslab.experiments import runner
from zslab.experiments.paths import work_path
from zslab.experiments.laat_study import METRICS as LAAT_METRICS
from zslab.train import make_config
from zslab.train.engine import load_run
from zslab.train.runs import _anchor_trainer, _config
from zslab.utils.io import atomic_write_json

#: Cross-paper presets. ``attr_preset``: the :mod:`has_study` study preset (data, APN/HAS
#: schedule). ``laat``: LAAT engine preset and overrides on top of it (its ``data`` section is
#: replaced by the attribute preset's, so both families see the same images). ``attacks``,
#: ``eps``, ``max_images``: the zero-shot robustness protocol (``max_images``: a class-balanced
#: subset of ``test_unseen``; ``None`` = all). ``ablation_attacks``: the white-box attacks the
#: ablation notebooks 32–33 report; AutoAttack only in notebook 31, the robustness question
#: itself (on an adversarially trained model it costs ≈ 13 CPU-min per 300 images on 1 core).
XP_PRESETS: dict[str, dict] = study_presets("cross_paper")  # zslab/config/recipes/studies/cross_paper.yaml


def xp_preset(preset: str) -> dict:
    if preset not in XP_PRESETS:
        raise ZSLabError(f"unknown cross-paper preset {preset!r}; choose one of {', '.join(XP_PRESETS)}")
    return XP_PRESETS[preset]


def seeds_of(preset: str, seeds=None) -> tuple[int, ...]:
    return tuple(int(s) for s in (xp_preset(preset)["seeds"] if seeds is None else seeds))


def attribute_config(method: str, preset: str = "smoke", seed: int = 0, overrides: dict | None = None) -> dict:
    """An APN or HAS engine config: :func:`zslab.experiments.has_study.study_config` under the
    preset's attribute study preset (so equal runs share the study cache)."""
    if method not in ("apn", "has"):
        raise ZSLabError(f"attribute_config trains 'apn' or 'has', not {method!r}")
    return hs.study_config(method, xp_preset(preset)["attr_preset"], overrides=overrides, seed=seed)


def laat_config(preset: str = "smoke", seed: int = 0, overrides: dict | None = None) -> dict:
    """A LAAT engine config on the attribute preset's shapes data (same ``data`` section as
    :func:`attribute_config`), anchors from the class names (``encoder``/``prompt`` of the LAAT
    defaults: the offline MiniLM encoder, "This is a photo of a {}"), plus ``overrides``."""
    xp = xp_preset(preset)
    data = copy.deepcopy(attribute_config("apn", preset, seed)["data"])
    over = {**copy.deepcopy(xp["laat_overrides"]), **(overrides or {})}
    over["data"] = {**data, **over.get("data", {})}
    return make_config("laat", xp["laat_preset"], dataset="shapes", overrides=over, seed=seed)


def study_config(method: str, preset: str = "smoke", overrides: dict | None = None, seed: int = 0) -> dict:
    """The config function of the cross-paper run tables (``recipes/studies/cross_paper.yaml``,
    :func:`zslab.experiments.runner.study_runs`): :func:`attribute_config` for ``apn``/``has``,
    :func:`laat_config` for ``laat``; ``overrides["method"]`` replaces ``method``."""
    over = dict(overrides or {})
    method = over.pop("method", method)
    if method == "laat":
        return laat_config(preset, seed, overrides=over)
    return attribute_config(method, preset, seed, overrides=over)


def load_xp_data(preset: str = "smoke", cache_dir: str | Path | None = None):
    """The shapes dataset every config of ``preset`` trains on (load once, pass to the runners)."""
    return hs.load_study_data(xp_preset(preset)["attr_preset"], cache_dir=cache_dir)


def notebook_setup(preset: str = "smoke", seeds=None, cache_dir: str | Path = "runs/study", out_dir: str | Path = ".",
                   threads: int = 1):
    """What notebooks 31–33 do first: set torch's CPU threads (``threads`` 0: torch's default),
    create ``out_dir``, resolve ``seeds`` (``None``: the preset's) and load the shared dataset
    (generated tensors cached under ``cache_dir/data``). Returns ``(out, seeds, data)``, ``out``
    absolute: relative ``out_dir`` and ``cache_dir`` are taken under the project folder
    (:func:`zslab.experiments.paths.work_path`)."""
    if threads:
        torch.set_num_threads(int(threads))
    out = work_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out, list(seeds_of(preset, seeds)), load_xp_data(preset, cache_dir=work_path(cache_dir) / "data")


def run_rows(runs: list[dict], out_dir: str | Path, data=None, progress: bool = True,
             device: str | None = None) -> list[dict]:
    """Train (or reuse from the cache in ``out_dir``) every ``{"name", "config", ...}`` run —
    attribute and LAAT runs alike — one row per run (:func:`zslab.experiments.has_study.run_study`;
    LAAT rows carry LAAT's final metric names)."""
    rows = []
    for run in runs:
        metrics = LAAT_METRICS if run["config"]["method"] == "laat" else runner.METRICS
        rows += runner.run_study([run], out_dir, data=data, progress=progress, device=device, metrics=metrics)
    return rows


# ------------------------------------------------------------------------------ evaluation
def unseen_classifier(run_dir: str | Path, data=None, device: str | None = None):
    """``(logits_model, images, labels, info)`` for zero-shot evaluation of a finished run:
    the model maps ``test_unseen`` images to logits over the unseen classes (APN/HAS: attribute
    dot products, :meth:`APN.set_classes`; LAAT: cosine to the unseen anchors / τ); ``labels`` are
    positions among the unseen classes."""
    run_dir = Path(run_dir)
    config = _config(run_dir)
    if config.get("method") == "laat":
        tr = _anchor_trainer(run_dir, config, device, data=data)
        d = tr.data
        unseen = d.unseen_classes
        anchors = tr.strategy.anchors[unseen].to(tr.device)
        model = AnchorClassifier(tr.model, anchors, tau=float(config["tau"])).eval()
        kind = "anchors"
    else:
        config, d, model, _ = load_run(run_dir, "best", data=data, device=device)
        unseen = d.unseen_classes
        dev = next(model.parameters()).device
        model.set_classes(d.class_attributes[unseen].float().to(dev))
        kind = "attributes"
    xs, ys = [], []
    for x, y in iterate_batches(d.splits["test_unseen"], 1024):
        xs.append(x)
        ys.append(y)
    x, y = torch.cat(xs), torch.cat(ys)
    pos = torch.full((len(d.class_names),), -1, dtype=torch.long)
    pos[unseen] = torch.arange(len(unseen))
    return model, x, pos[y], {"method": config["method"], "kind": kind, "n_classes": len(unseen)}


def balanced_subset(labels: torch.Tensor, max_images: int | None) -> torch.Tensor:
    """Indices of the first ⌈max_images / C⌉ images of each class (deterministic), all when ``None``."""
    if max_images is None or max_images >= len(labels):
        return torch.arange(len(labels))
    classes = labels.unique()
    per = max(1, math.ceil(max_images / len(classes)))
    return torch.cat([(labels == c).nonzero().flatten()[:per] for c in classes.tolist()])


def zsl_robustness(run_dir: str | Path, attacks=None, eps: float | None = None, max_images: int | None = -1,
                   preset: str | None = None, data=None, device: str | None = None, seed: int = 0,
                   batch_size: int = 200, progress: bool = False, cache: bool = True) -> dict:
    """Clean and adversarial zero-shot accuracy of a run on unseen classes (the module's protocol):
    ``{"clean", "robust": {attack: acc}, "worst", "n", "eps", "attacks", "warnings"}``, accuracies
    in [0, 1] over a class-balanced subset of ``test_unseen``. ``preset`` supplies defaults for
    ``attacks``, ``eps`` and ``max_images`` (``max_images=-1``: the preset's).

    ``cache``: the result is stored in ``run_dir/zsl_robustness-<key>.json`` (atomic write) and
    read back by the next call with the same protocol — key over the attacks, ε, ``max_images``,
    the seed and ``best.pt``'s modification time, so a retrained run is attacked again and every
    notebook attacking the same run shares one evaluation."""
    xp = xp_preset(preset) if preset is not None else {}
    attacks = list(attacks if attacks is not None else xp.get("attacks", ("pgd20",)))
    eps = float(eps if eps is not None else xp.get("eps", 8 / 255))
    if max_images == -1:
        max_images = xp.get("max_images")
    run_dir = Path(run_dir)
    best = run_dir / "best.pt"
    if not best.is_file():
        raise ZSLabError(f"{run_dir} holds no best.pt: train the run first (cross_paper.run_rows)")
    proto = {"attacks": attacks, "eps": eps, "max_images": max_images, "seed": int(seed),
             "best_mtime_ns": best.stat().st_mtime_ns, "version": 1}
    path = run_dir / f"zsl_robustness-{hashlib.sha1(json.dumps(proto, sort_keys=True).encode()).hexdigest()[:10]}.json"
    if cache and path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass  # a corrupt cache file is recomputed
    model, x, y, info = unseen_classifier(run_dir, data=data, device=device)
    keep = balanced_subset(y, max_images)
    dev = next(model.parameters()).device
    res = robust_evaluate(model, x[keep].to(dev), y[keep].to(dev), attacks=attacks, eps=eps, batch_size=batch_size,
                          progress=progress, seed=seed)
    out = {"clean": res["clean"], "robust": dict(res["robust"]), "worst": res["worst"], "n": res["n"], "eps": eps,
           "attacks": attacks, "n_classes": info["n_classes"], "method": info["method"],
           "warnings": list(res["warnings"])}
    if cache:
        atomic_write_json(out, path)
    return out
