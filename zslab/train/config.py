"""Run configuration: defaults, presets (held by the library, not the notebooks), overrides.

A config is a plain JSON-able dict. ``--set key=value`` overrides use dotted keys for the
nested sections (``data.*`` goes to the dataset constructor, ``model.*`` to the model).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from zslab import ZSLabError

METHODS = ("apn", "has")

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
}

# Method-specific keys, merged after DEFAULTS for that method only (so `--set has_steps=5` works for
# `has` while apn configs — and the run directories they wrote — stay unchanged).
# HAS (zslab.has): generator settings in [0, 1] pixel units; weights in zslab's sign
# convention L_HAS = L_CLS − λ_rob·H(p) + λ_rel·‖Δg‖² + λ_att_mag·mean(h) − λ_att_ent·H_spatial(h),
# descended. has_adv_prob: probability of the step on the adversarial batch (Algorithm 1 line 9;
# the paper always takes it, the official code with 0.5).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "has": {
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
# HAS uses APN's presets unchanged (same data sizes, epochs, model) so runs compare.
PRESETS["has"] = copy.deepcopy(PRESETS["apn"])

SELECT_METRICS = ("val_h", "val_zsl")


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
    cfg.update(method=method, preset=preset, dataset=dataset)
    cfg = apply_overrides(cfg, overrides)
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
    if cfg["lambda_loc"] < 0 or cfg["weight_decay"] < 0:
        raise ZSLabError("config 'lambda_loc' and 'weight_decay' must be >= 0")
    if cfg["select_metric"] not in SELECT_METRICS:
        raise ZSLabError(f"config 'select_metric' must be one of {SELECT_METRICS}, got {cfg['select_metric']!r}")
    if not (isinstance(cfg["betas"], (list, tuple)) and len(cfg["betas"]) == 2
            and all(0 <= b < 1 for b in cfg["betas"])):
        raise ZSLabError(f"config 'betas' must be two numbers in [0, 1), got {cfg['betas']!r}")
    if cfg.get("method") == "has":
        _validate_has(cfg)


def _validate_has(cfg: dict) -> None:
    missing = [k for k in METHOD_DEFAULTS["has"] if k not in cfg]
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
