"""Run configuration: defaults, presets (held by the library, not the notebooks), overrides.

A config is a plain JSON-able dict. ``--set key=value`` overrides use dotted keys for the
nested sections (``data.*`` goes to the dataset constructor, ``model.*`` to the model).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from zslab import ZSLabError

METHODS = ("apn", "has", "laat")

DEFAULTS: dict[str, Any] = {
    "method": "apn",
    "dataset": "shapes",
    "preset": "smoke",
    "seed": 0,
    "data": {},
    "model": {"backbone": "small", "width": 32, "weights": None},
    "epochs": 10,
    "batch_size": 64,
    "eval_batch_size": 512,
    # Adam(β1=0.5, β2=0.999) and ×0.8 every `lr_step` epochs as in HAS §4.1 (lr scaled for the CPU preset)
    "lr": 1e-3,
    "betas": [0.5, 0.999],
    "weight_decay": 1e-5,
    "lr_step": 10,
    "lr_gamma": 0.8,
    "lambda_loc": 1.0,
    "select_metric": "val_h",
    "device": "auto",
    "amp": True,
    "progress": True,
    # torchrun on CUDA: convert BatchNorm to SyncBatchNorm (statistics over the global batch)
    "sync_bn": False,
    # fast paths (zslab.train.engine; ratios in bench/README.md; off: runs stay bit-identical):
    # channels_last memory format for model and batches; bf16 autocast on the CPU (the loss in
    # float32); torch.compile of the model (true: inductor, or a backend name such as aot_eager);
    # DataLoader worker processes (0: in-process batching)
    "channels_last": False,
    "amp_cpu": False,
    "compile": False,
    "num_workers": 0,
}

#: Keys added after run directories and study caches already existed. At their default value they
#: leave what a run computes unchanged, so :func:`zslab.experiments.has_study.config_key` leaves them
#: out of the cache key (old cached runs stay valid) and :func:`backfill_defaults` fills them in when
#: an old run directory resumes. Register every new key with a behaviour-preserving default here.
LATE_KEYS: tuple[str, ...] = ("sync_bn", "channels_last", "amp_cpu", "compile", "num_workers",
                              "adversary", "adv_lambda_rob", "adv_lambda_rel")

# Method-specific keys, merged after DEFAULTS for that method only (so `--set has_steps=5` works for
# `has` while apn configs — and the run directories they wrote — stay unchanged).
# HAS (zslab.has): generator settings in [0, 1] pixel units; weights in zslab's sign
# convention L_HAS = L_CLS − λ_rob·H(p) + λ_rel·‖Δg‖² + λ_att_mag·mean(h) − λ_att_ent·H_spatial(h),
# descended. has_adv_prob: probability of the step on the adversarial batch (Algorithm 1 line 9;
# the paper always takes it, the official code with 0.5).
# `augment`: a Table-3 augmentation (zslab.augment.AUGMENTATIONS) applied to the training
# batch of APN's step / HAS's clean step; "none" leaves training exactly as without the key.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "apn": {"augment": "none"},
    "has": {
        "augment": "none",
        "has_steps": 3,
        "has_step_size": 2 / 255,
        "has_eps": None,
        "has_random_start": False,
        "has_adv_prob": 1.0,
        "has_lambda_rob": 1.0,
        "has_lambda_rel": 0.1,
        "has_lambda_att_mag": 1e-4,
        "has_lambda_att_ent": 0.1,
    },
}

# Presets per method. `smoke`: < 1 minute on a 2-core CPU; `full`: the embedded default
# dataset at full size, a few minutes.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "apn": {
        "smoke": {
            "epochs": 4,
            "data": {"train_per_class": 48, "val_seen_per_class": 8, "test_seen_per_class": 12,
                     "unseen_per_class": 40},
            "model": {"width": 16},
        },
        "full": {
            "epochs": 30,
            "lr_step": 10,
            "data": {},
            "model": {"width": 32},
        },
    },
}
# `paper`: HAS §4.1 and the official scripts (uqzhichen/HASZSL scripts/train.sh, opt.py) —
# ResNet-101 at 448 px (ImageNet weights: --set model.weights=PATH), Adam(0.5, 0.999), lr 1e-4
# ×0.8 every 10 epochs, batch 64, 30 epochs (opt.py's nepoch) on every dataset. The values that
# differ per dataset are in PAPER_DATASET_VALUES, keyed on the dataset name by make_config.
PRESETS["apn"]["paper"] = {
    "epochs": 30,
    "batch_size": 64,
    "eval_batch_size": 64,
    "lr": 1e-4,
    "betas": [0.5, 0.999],
    "lr_step": 10,
    "lr_gamma": 0.8,
    "data": {"image_size": 448},
    "model": {"backbone": "resnet101", "width": None, "weights": None},
}
# HAS uses APN's presets unchanged (same data sizes, epochs, model) so runs compare.
PRESETS["has"] = copy.deepcopy(PRESETS["apn"])
# HAS paper preset: T = 3 generation steps (--loops_adv 3) and the adversarial step with
# probability 0.5 (--prob_perturb 0.5), as in all three official scripts.
PRESETS["has"]["paper"].update(has_steps=3, has_adv_prob=0.5, has_eps=None, has_random_start=False)

#: datasets the `paper` preset has values for (GUIDE §2); per method, the per-dataset keys
PAPER_DATASETS = ("cub", "awa2", "sun")


def paper_dataset_values(method: str, dataset: str) -> dict[str, Any]:
    """Per-dataset values of the `paper` preset (GUIDE §2, official scripts).

    HAS: step size 5/4/2 (/255) and the weights λ_rob (H(p)) 0.1/1/1, λ_rel 3/0.1/0.1,
    λ_att_mag 1e-4/1e-4/0.1, λ_att_ent −1/−0.1/+0.1 for CUB/AwA2/SUN, i.e.
    :data:`zslab.has.OFFICIAL_WEIGHTS` as ``has_*`` keys. APN: nothing differs per dataset
    (the dataset is still checked, so a `paper` run is never silently made for another one).
    """
    key = str(dataset).lower()
    if key not in PAPER_DATASETS:
        raise ZSLabError(f"preset 'paper' has values for the datasets {', '.join(PAPER_DATASETS)} only, "
                         f"not '{dataset}'; use --preset smoke/full or pass --dataset cub|awa2|sun")
    if method == "has":
        from zslab.has import OFFICIAL_WEIGHTS

        return {f"has_{k}": v for k, v in OFFICIAL_WEIGHTS[key].items()}
    return {}

# LAAT (zslab.laat; LAAT paper Sec. 3.5-3.6, 4.1). Anchors: `encoder` (minilm | clip:ARCH:PATH |
# file:PATH | attributes: the dataset's class attribute vectors), `prompt`, `expand` (Appendix C fitted
# on the training classes), `anchor_cache`.
# Loss: `objective` (ace | cos | theta | euclid | trades), `tau` (Eq. 8), `alpha` (smoothness
# weight of Eq. 4: 3 in the paper, 1 in the official code), `trades_beta` (1/λ, Table 6).
# Training attack: PGD `pgd_eps`, `pgd_steps` of `pgd_step`, random start (Sec. 4.1). Model
# `arch` (the `model.*` section is APN's and unused). Optimiser `optimizer` (sgd | adam) with
# `momentum`, ×`lr_gamma` at each epoch in `lr_milestones`. Evaluation: PGD-`eval_pgd_steps`
# of `eval_pgd_step` at `eval_eps` (GUIDE §3), GZSL on `gzsl_per_class` images per class.
METHOD_DEFAULTS["laat"] = {
    "encoder": "minilm",
    "prompt": "This is a photo of a {}",
    "anchor_cache": None,
    "expand": True,
    "objective": "ace",
    "tau": 1.0,
    "alpha": 3.0,
    "trades_beta": 6.0,
    "pgd_eps": 8 / 255,
    "pgd_step": 2 / 255,
    "pgd_steps": 7,
    "pgd_random_start": True,
    # the training adversary (zslab.laat.LAATStrategy; notebook 33): "pgd" (LAAT, above), "has" (the
    # HAS generator, Eq. 3-6, adapted to the anchor model: signed-gradient *descent* on
    # A-CE − adv_lambda_rob·H(p) + adv_lambda_rel·‖f(x+δ) − f(x)‖², in the same pgd_eps ball with
    # pgd_steps of pgd_step, no random start as in HAS Eq. 4) or "has+pgd" (first half of each batch
    # PGD, second half HAS). Weights: λ_rob = 1, λ_rel = 0.1, the official HAS AwA2/SUN values
    # (GUIDE §2; zslab.has.HASConfig defaults)
    "adversary": "pgd",
    "adv_lambda_rob": 1.0,
    "adv_lambda_rel": 0.1,
    "arch": "conv4-64",
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr_milestones": [60],
    "eval_eps": 8 / 255,
    "eval_pgd_step": 2 / 255,
    "eval_pgd_steps": 20,
    "eval_seed": 0,
    "eval_n_way": 5,
    "eval_n_query": 20,
    "eval_episodes": 2000,
    "eval_episodes_attacked": None,
    "gzsl_per_class": 100,
    "select_metric": "val_zs",
}
# smoke: < 1 min on a 2-core CPU (small shapes); full: shapes at full size, a few minutes;
# paper: the official recipe (LAAT Sec. 4.1 / GR) — SGD lr 0.05, momentum 0.9, wd 5e-4, batch
# 128, 100 epochs, ×0.1 at epoch 60, Conv4-512 (CIFAR-FS), α = 3, τ = 1, expanded anchors.
PRESETS["laat"] = {
    "smoke": {
        "epochs": 3, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4, "lr_milestones": [2], "lr_gamma": 0.1,
        "data": {"train_per_class": 24, "val_seen_per_class": 4, "test_seen_per_class": 8,
                 "unseen_per_class": 16},
        "gzsl_per_class": 8, "eval_n_query": 10, "eval_episodes": 100, "eval_episodes_attacked": 20,
    },
    "full": {
        "epochs": 12, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4, "lr_milestones": [8], "lr_gamma": 0.1,
        "data": {}, "eval_episodes": 500, "eval_episodes_attacked": 100,
    },
    "paper": {
        "epochs": 100, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
        "lr_milestones": [60], "lr_gamma": 0.1, "arch": "conv4-512", "alpha": 3.0, "tau": 1.0, "expand": True,
        "encoder": "minilm", "data": {},
    },
}

SELECT_METRICS = ("val_h", "val_zsl", "val_zs")
#: LAAT training adversaries (config ``adversary``; :class:`zslab.laat.LAATStrategy`)
ADVERSARIES = ("pgd", "has", "has+pgd")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_value(text: str) -> Any:
    """``--set`` values: JSON where it parses (numbers, true/false/null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.strip().lower()
        if low in ("none", "null"):
            return None
        if low in ("true", "false"):
            return low == "true"
        return text


def apply_overrides(cfg: dict, overrides: list[str] | dict | None) -> dict:
    cfg = copy.deepcopy(cfg)
    if not overrides:
        return cfg
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, value in items:
        if isinstance(value, str):
            value = parse_value(value)
        parts = key.split(".")
        node = cfg
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ZSLabError(f"unknown config key '{key}'; top-level keys: {', '.join(sorted(cfg))}")
            node = node[p]
        leaf = parts[-1]
        free_section = parts[0] in ("data", "model") and len(parts) == 2
        if leaf not in node and not free_section:
            raise ZSLabError(f"unknown config key '{key}'; valid keys: {', '.join(sorted(node))}")
        node[leaf] = value
    return cfg


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ZSLabError(f"--set expects key=value, got '{item}'")
    k, v = item.split("=", 1)
    return k.strip(), v


def make_config(method: str = "apn", preset: str = "smoke", dataset: str = "shapes",
                overrides: list[str] | dict | None = None, seed: int | None = None) -> dict:
    """Defaults ⊕ preset ⊕ overrides, validated."""
    if method not in PRESETS:
        raise ZSLabError(f"unknown method '{method}'; available: {', '.join(PRESETS)}")
    if preset not in PRESETS[method]:
        raise ZSLabError(f"unknown preset '{preset}' for {method}; available: {', '.join(PRESETS[method])}")
    cfg = _merge(_merge(DEFAULTS, METHOD_DEFAULTS.get(method, {})), PRESETS[method][preset])
    if preset == "paper" and method in ("apn", "has"):
        cfg = _merge(cfg, paper_dataset_values(method, dataset))
    cfg.update(method=method, preset=preset, dataset=dataset)
    cfg = apply_overrides(cfg, overrides)
    if "augment" in cfg and cfg["augment"] is None:  # `--set augment=none` parses as null
        cfg["augment"] = "none"
    if seed is not None:
        cfg["seed"] = int(seed)
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    def positive(k, typ=(int, float)):
        v = cfg[k]
        if not isinstance(v, typ) or isinstance(v, bool) or v <= 0:
            raise ZSLabError(f"config '{k}' must be a positive number, got {v!r}")

    for k in ("epochs", "batch_size", "eval_batch_size", "lr_step"):
        positive(k, int)
    for k in ("lr", "lr_gamma"):
        positive(k)
    for k in ("channels_last", "amp_cpu"):
        if not isinstance(cfg.get(k, False), bool):
            raise ZSLabError(f"config '{k}' must be true or false, got {cfg[k]!r}")
    comp = cfg.get("compile", False)
    if not (isinstance(comp, bool) or (isinstance(comp, str) and comp.strip())):
        raise ZSLabError(f"config 'compile' must be true/false or a torch.compile backend name "
                         f"(e.g. inductor, aot_eager), got {comp!r}")
    nw = cfg.get("num_workers", 0)
    if not isinstance(nw, int) or isinstance(nw, bool) or nw < 0:
        raise ZSLabError(f"config 'num_workers' must be an integer >= 0 (0: in-process batching), got {nw!r}")
    if cfg["lambda_loc"] < 0 or cfg["weight_decay"] < 0:
        raise ZSLabError("config 'lambda_loc' and 'weight_decay' must be >= 0")
    if cfg["select_metric"] not in SELECT_METRICS:
        raise ZSLabError(f"config 'select_metric' must be one of {SELECT_METRICS}, got {cfg['select_metric']!r}")
    if not (isinstance(cfg["betas"], (list, tuple)) and len(cfg["betas"]) == 2
            and all(0 <= b < 1 for b in cfg["betas"])):
        raise ZSLabError(f"config 'betas' must be two numbers in [0, 1), got {cfg['betas']!r}")
    if "augment" in cfg:
        from zslab.augment import AUGMENTATIONS

        if cfg["augment"] not in AUGMENTATIONS:
            raise ZSLabError(f"config 'augment' must be one of {', '.join(AUGMENTATIONS)}; got {cfg['augment']!r}")
    if cfg.get("method") == "has":
        _validate_has(cfg)
    if cfg.get("method") == "laat":
        _validate_laat(cfg)


def _validate_laat(cfg: dict) -> None:
    from zslab.attacks import parse_eps

    missing = [k for k in METHOD_DEFAULTS["laat"] if k not in cfg and k not in LATE_KEYS]  # late keys: defaults
    if missing:
        raise ZSLabError(f"config for method 'laat' lacks {', '.join(missing)}; build it with make_config('laat', ...)")
    objectives = ("ace", "cos", "theta", "euclid", "trades")
    if cfg["objective"] not in objectives:
        raise ZSLabError(f"config 'objective' must be one of {', '.join(objectives)}; got {cfg['objective']!r}")
    if cfg["select_metric"] != "val_zs":
        raise ZSLabError(f"config 'select_metric' for laat must be 'val_zs' (zero-shot accuracy on the "
                         f"validation classes); got {cfg['select_metric']!r}")
    spec = cfg["encoder"]
    if not isinstance(spec, str) or not (spec in ("minilm", "attributes") or spec.startswith(("clip:", "file:"))):
        raise ZSLabError(f"config 'encoder' must be minilm, clip:ARCH:PATH, file:PATH or attributes (the dataset's "
                         f"class attribute vectors); got {spec!r}")
    if spec == "attributes" and cfg.get("expand") is True and (cfg.get("data") or {}).get("attributes") == "expanded":
        raise ZSLabError("config: encoder 'attributes' with data.attributes='expanded' and expand=true would expand "
                         "the class attributes twice; set expand=false or data.attributes='raw'")
    for k in ("tau",):
        if isinstance(cfg[k], bool) or not isinstance(cfg[k], (int, float)) or not cfg[k] > 0:
            raise ZSLabError(f"config '{k}' must be > 0; got {cfg[k]!r}")
    for k in ("alpha", "trades_beta", "momentum"):
        if isinstance(cfg[k], bool) or not isinstance(cfg[k], (int, float)) or cfg[k] < 0:
            raise ZSLabError(f"config '{k}' must be a number >= 0; got {cfg[k]!r}")
    for k in ("pgd_eps", "pgd_step", "eval_eps", "eval_pgd_step"):
        try:
            cfg[k] = parse_eps(cfg[k])
        except ValueError as e:
            raise ZSLabError(f"config '{k}': {e}") from None
    for k in ("pgd_steps", "eval_pgd_steps", "gzsl_per_class", "eval_seed", "eval_n_way", "eval_n_query",
              "eval_episodes", "eval_episodes_attacked"):
        v = cfg[k]
        if k == "eval_episodes_attacked" and v is None:
            continue
        low = {"gzsl_per_class": 1, "eval_n_way": 2, "eval_n_query": 1, "eval_episodes": 1}.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ZSLabError(f"config '{k}' must be an integer >= {low}; got {v!r}")
    if cfg["optimizer"] not in ("sgd", "adam"):
        raise ZSLabError(f"config 'optimizer' must be sgd or adam; got {cfg['optimizer']!r}")
    ms = cfg["lr_milestones"]
    if not isinstance(ms, list) or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in ms):
        raise ZSLabError(f"config 'lr_milestones' must be a list of positive epoch numbers; got {ms!r}")
    if not isinstance(cfg["expand"], bool):
        raise ZSLabError(f"config 'expand' must be true or false; got {cfg['expand']!r}")
    adversary = cfg.get("adversary", "pgd")  # absent in runs written before the key existed
    if adversary not in ADVERSARIES:
        raise ZSLabError(f"config 'adversary' must be one of {', '.join(ADVERSARIES)}; got {adversary!r}")
    for k in ("adv_lambda_rob", "adv_lambda_rel"):
        v = cfg.get(k, METHOD_DEFAULTS["laat"][k])
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
            raise ZSLabError(f"config '{k}' must be a finite number >= 0 (0 switches the HAS term off); got {v!r}")
    if adversary != "pgd" and cfg["objective"] == "trades":
        raise ZSLabError(f"config 'adversary' {adversary!r} does not combine with objective 'trades' "
                         f"(TRADES generates its own δ from the KL term); use adversary 'pgd'")


def _validate_has(cfg: dict) -> None:
    missing = [k for k in METHOD_DEFAULTS["has"] if k not in cfg and k != "augment"]
    if missing:
        raise ZSLabError(f"config for method 'has' lacks {', '.join(missing)}; build it with make_config('has', ...)")
    p = cfg["has_adv_prob"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ZSLabError(f"config 'has_adv_prob' must be a probability in [0, 1], got {p!r}")
    from zslab.has import HASConfig, HASConfigError

    try:
        HASConfig.from_train_config(cfg)
    except HASConfigError as e:
        raise ZSLabError(f"config: {e} (set with has_* keys)") from None


def backfill_defaults(cfg: dict) -> dict:
    """``cfg`` with the top-level keys it lacks set to their defaults (DEFAULTS and the method's
    METHOD_DEFAULTS): a run directory written before a key existed resumes as long as the new
    run keeps that key at its default."""
    out = dict(cfg)
    for k, v in {**DEFAULTS, **METHOD_DEFAULTS.get(cfg.get("method"), {})}.items():
        out.setdefault(k, copy.deepcopy(v))
    return out


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two configs (dotted)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out
