"""The engine's view of the configuration.

The configuration itself — schema, recipes (presets of every method, dataset and study),
flat-key aliases and provenance — lives in :mod:`zslab.config`. The training code reads a flat
dict (``cfg["lr"]``, ``cfg["has_steps"]``, ``cfg["data"]``), the *engine view* of a resolved
document (:func:`zslab.config.to_flat`); this module builds and checks it:

* :func:`make_config` — defaults → method → dataset → preset → overrides, checked, as the
  engine view (an :class:`~zslab.config.EngineConfig` that remembers every value's source);
* :func:`validate` — checks a hand-made or stored engine view through the same schema;
* :data:`DEFAULTS` / :data:`METHOD_DEFAULTS` — the engine views of the schema defaults (derived,
  read-only: change the schema or a recipe, not these).
"""
from __future__ import annotations

import copy
from typing import Any

from zslab.config import (ConfigError, EngineConfig, from_flat, make_engine_config, parse_value, resolve)
from zslab.config.aliases import FLAT_ALIASES, LATE_KEYS

METHODS = ("apn", "has", "laat")
SELECT_METRICS = ("val_h", "val_zsl", "val_zs")
ADVERSARIES = ("pgd", "has", "has+pgd")

__all__ = ["METHODS", "DEFAULTS", "METHOD_DEFAULTS", "LATE_KEYS", "make_config", "validate", "backfill_defaults",
           "config_diff", "parse_value", "ConfigError", "EngineConfig"]


def _defaults_of(method: str) -> dict:
    return from_flat({"method": method, "dataset": "shapes", "preset": "smoke"}).flat


_APN = _defaults_of("apn")
#: the engine view's keys shared by every method, at their defaults (derived from the schema)
DEFAULTS: dict[str, Any] = {k: v for k, v in _APN.items() if k not in ("augment",)}
#: per method, the engine view's method-specific keys at their defaults (derived from the schema)
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    m: {k: v for k, v in _defaults_of(m).items()
        if k not in DEFAULTS or (m == "laat" and k == "select_metric")}
    for m in METHODS
}
METHOD_DEFAULTS["laat"]["select_metric"] = "val_zs"


def make_config(method: str = "apn", preset: str = "smoke", dataset: str = "shapes",
                overrides: list[str] | dict | None = None, seed: int | None = None) -> EngineConfig:
    """The engine view of defaults → method → dataset → preset → ``overrides``, checked.

    ``overrides``: ``["key=value", ...]`` or ``{key: value}``, keys nested (``train.lr``) or
    flat (``lr``). Raises :class:`~zslab.config.ConfigError` (a :class:`~zslab.ZSLabError`)
    naming every bad key with a did-you-mean suggestion, before any work."""
    return make_engine_config(resolve(method, dataset, preset, overrides=overrides, seed=seed))


def validate(cfg: dict) -> None:
    """Check an engine view (hand-made, edited after :func:`make_config`, or read from a run
    folder) through the schema; values given as fraction strings (``"8/255"``) are replaced by
    their floats in place."""
    norm = from_flat(cfg).flat
    for k, v in norm.items():
        if k in cfg and k not in ("data", "model") and cfg[k] != v:
            cfg[k] = v


def backfill_defaults(cfg: dict) -> dict:
    """``cfg`` with the keys it lacks at their defaults: a run folder written before a key existed
    (:data:`~zslab.config.aliases.LATE_KEYS`) resumes as long as the new run keeps its default."""
    out = dict(cfg)
    for k, v in {**DEFAULTS, **METHOD_DEFAULTS.get(cfg.get("method"), {})}.items():
        out.setdefault(k, copy.deepcopy(v))
    return out


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two configs (dotted), as ``key: old -> new``."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb and not (isinstance(va, (list, tuple)) and isinstance(vb, (list, tuple)) and list(va) == list(vb)):
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out


def nested_name(flat_key: str) -> str:
    """The nested name of a flat key (``lr`` → ``train.lr``), for messages."""
    return FLAT_ALIASES.get(flat_key, (flat_key, ()))[0]
