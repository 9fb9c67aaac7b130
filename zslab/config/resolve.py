"""Compose, check and explain a run's configuration.

One fixed order, each layer overriding the ones before it:

1. ``default`` — the schema's defaults (:mod:`zslab.config.schema`);
2. ``method``  — ``recipes/methods.yaml``;
3. ``dataset`` — ``recipes/datasets.yaml``;
4. ``preset``  — ``recipes/presets/<preset>.yaml`` (its ``all``, ``methods.<m>``, then
   ``datasets.<family or name>.all`` and ``.<m>`` parts);
5. ``--set``   — the user's overrides (nested keys such as ``train.lr`` or the old flat keys of
   :data:`zslab.config.aliases.FLAT_ALIASES`).

:func:`resolve` returns a :class:`Resolved`: the nested document, the source of every value and
the engine's flat view. Nothing here touches data, files or devices: it runs in milliseconds.
"""
from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from zslab import ZSLabError
from zslab.config import aliases as al
from zslab.config import schema as sc

SECTIONS = ("run", "data", "model", "train", "method", "anchors", "attack", "eval")
LAYERS = ("default", "method", "dataset", "preset", "--set")


class ConfigError(ZSLabError, ValueError):
    """A configuration that cannot run; the message names every bad key and its fix."""


# ----------------------------------------------------------------------------- recipes
@functools.lru_cache(maxsize=None)
def recipe(name: str) -> dict:
    """A recipe file of ``zslab/config/recipes`` (``"methods"``, ``"presets/smoke"``, ``"studies/has"``)."""
    ref = resources.files("zslab.config").joinpath("recipes", *f"{name}.yaml".split("/"))
    if not ref.is_file():
        raise ConfigError(f"no recipe '{name}' in zslab/config/recipes")
    return yaml.safe_load(ref.read_text(encoding="utf-8")) or {}


def preset_names() -> tuple[str, ...]:
    return sc.PRESETS


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def _choice(kind: str, value: Any, choices, flag: str) -> str:
    key = sc.canonical_dataset(value) if kind == "dataset" else str(value).strip().lower()
    if key not in choices:
        raise ConfigError(f"unknown {kind} '{value}'{_suggest(key, choices)} ({flag}; available: "
                          f"{', '.join(choices)})")
    return key


# ----------------------------------------------------------------------------- trees with sources
def _set(tree: dict, sources: dict, path: str, value: Any, source: str) -> None:
    """Set dotted ``path`` in ``tree``; dict values merge key by key (each leaf gets ``source``)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _set(tree, sources, f"{path}.{k}", v, source)
        return
    parts = path.split(".")
    node = tree
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = copy.deepcopy(value)
    for k in [k for k in sources if k.startswith(path + ".")]:
        del sources[k]
    sources[path] = source


def _get(tree: dict, path: str, default=None):
    node = tree
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


def _leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ----------------------------------------------------------------------------- key names
def _schema_leaves(method: str, dataset: str) -> list[str]:
    """Every settable nested key of a run of ``method`` on ``dataset``."""
    out = []
    for sec in _sections(method):
        model = sc.section_model(sec, dataset)
        for name, f in model.model_fields.items():
            sub = f"{sec}.{name}"
            if sub in sc.METHOD_SUBSECTIONS:
                if sc.METHOD_SUBSECTIONS[sub][0] == method:
                    out += [f"{sub}.{n}" for n in sc.METHOD_SUBSECTIONS[sub][1].model_fields]
                continue
            if al.applies(sub, method):
                out.append(sub)
    return out


def _sections(method: str) -> list[str]:
    return [s for s in SECTIONS if method == "laat" or s not in sc.LAAT_SECTIONS]


def _all_known_paths() -> set[str]:
    out = set()
    for m in sc.METHODS:
        for d in ("shapes", "folder", "cub", "cifar-fs"):
            out.update(_schema_leaves(m, d))
    return out


def normalize_key(key: str, method: str, dataset: str) -> str:
    """The nested path of an override key (nested, or an old flat key), checked against the
    schema of ``method`` on ``dataset``; unknown keys get a did-you-mean suggestion."""
    key = str(key).strip()
    if not key:
        raise ConfigError("--set needs KEY=VALUE, got an empty key")
    head = key.split(".")[0]
    if key in al.FLAT_ALIASES:
        path = al.FLAT_ALIASES[key][0]
    elif head in SECTIONS:
        path = key
    else:
        cands = sorted(set(al.FLAT_ALIASES) | _all_known_paths())
        raise ConfigError(f"unknown config key '{key}'{_suggest(key, cands)} (sections: {', '.join(SECTIONS)}; "
                          f"see 'zslab config show {method}' for every key)")
    if head == "data" or path.startswith("data."):
        return path  # checked against the dataset's loader options by the schema
    known = _all_known_paths()
    if path not in known and not any(k.startswith(path + ".") for k in known):
        mine = _schema_leaves(method, dataset)
        raise ConfigError(f"unknown config key '{key}'{_suggest(path, mine)} (valid keys of "
                          f"{path.rsplit('.', 1)[0]}: {', '.join(sorted(k.rsplit('.', 1)[1] for k in mine if k.rsplit('.', 1)[0] == path.rsplit('.', 1)[0])) or 'none'})")
    leaf_paths = [k for k in known if k == path or k.startswith(path + ".")]
    if leaf_paths and not any(al.applies(k, method) for k in leaf_paths):
        ms = al.methods_of(leaf_paths[0])
        raise ConfigError(f"config key '{key}' ({path}) is a setting of method {'/'.join(ms)} only; this run's "
                          f"method is {method}")
    return path


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON where it parses (numbers, true/false/null, lists, objects), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.strip().lower()
        if low in ("none", "null"):
            return None
        if low in ("true", "false"):
            return low == "true"
        return text


def split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
    k, v = item.split("=", 1)
    return k.strip(), v


# ----------------------------------------------------------------------------- validation
_TYPE_TAGS = {"bool", "int", "str", "float", "list", "dict", "none", "tuple", "set"}


def _loc(parts) -> str:
    """A pydantic error location without its union-member tags (``function-after[...]``, ``bool``,
    ``literal['auto']``, ``[key]``): the dotted key a user wrote."""
    keep = [str(p) for p in parts
            if isinstance(p, int) or not (any(c in str(p) for c in "[(-") or str(p) in _TYPE_TAGS)]
    return ".".join(keep)


def _format_error(sec: str, err: dict, fields: list[str]) -> str:
    loc = _loc(err["loc"])
    path = f"{sec}.{loc}" if loc else sec
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        parent, leaf = path.rsplit(".", 1)
        names = sorted({f.rsplit(".", 1)[1] for f in fields if f.rsplit(".", 1)[0] == parent})
        close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
        hint = f" — did you mean '{parent}.{close[0]}'?" if close else ""
        return f"unknown config key '{path}'{hint} (valid keys of {parent}: {', '.join(names) or 'none'})"
    if err["type"] == "missing" and err["loc"] and isinstance(err["loc"][-1], int):  # a too-short tuple
        parent = path.rsplit(".", 1)[0]
        return f"'{parent}' has too few items (item {err['loc'][-1] + 1} is missing)"
    if err["type"] == "missing":
        return f"'{path}' is required: pass --set {path}=..."
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    got_s = "" if isinstance(got, dict) or "got" in msg else f" (got {got!r})"
    flat = al.NESTED_TO_FLAT.get(path)
    name = f"'{path}' (old key '{flat}')" if flat and flat != path.rsplit(".", 1)[-1] else f"'{path}'"
    return f"{name}: {msg}{got_s}"


@dataclass
class Resolved:
    """A resolved configuration: ``doc`` (nested, every applicable key), ``sources`` (dotted key ->
    layer), ``flat`` (the engine's flat view) and ``data_set`` (the data keys some layer set)."""
    doc: dict
    sources: dict
    flat: dict
    method: str
    dataset: str
    preset: str
    notes: list[str] = field(default_factory=list)

    def document(self) -> dict:
        """The document ``zslab config show --json`` prints and a run folder's ``config.json``
        holds: the nested config, each value's source, and the engine's flat view of it."""
        return {"zslab_config": 2, "config": self.doc, "sources": self.sources, "engine": self.flat}


def _validate_tree(tree: dict, method: str, dataset: str) -> tuple[dict, dict]:
    """Validate every section of ``tree``; return (doc, data keys set). Raises :class:`ConfigError`
    listing every problem."""
    problems: list[str] = []
    doc: dict = {}
    data_set: dict = {}
    fields = _schema_leaves(method, dataset)
    for k in tree:
        if k not in SECTIONS:
            problems.append(f"unknown config section '{k}'{_suggest(k, SECTIONS)}")
    for sec in SECTIONS:
        raw = tree.get(sec) or {}
        if sec not in _sections(method):
            if raw:
                problems.append(f"section '{sec}' is a setting of method laat only; this run's method is {method}")
            continue
        if not isinstance(raw, dict):
            problems.append(f"'{sec}' must be a mapping of keys, got {raw!r}")
            continue
        raw = dict(raw)
        model = sc.section_model(sec, dataset)
        subs = {}
        if sec == "method":
            for sub in ("has", "laat"):
                part = raw.pop(sub, None)
                if part is None and sub != method:
                    continue
                if sub != method:
                    problems.append(f"'method.{sub}' is a setting of method {sub} only; this run's method is {method}")
                    continue
                try:
                    subs[sub] = sc.METHOD_SUBSECTIONS[f"method.{sub}"][1].model_validate(part or {})
                except ValidationError as e:
                    problems += [_format_error(f"method.{sub}", err, fields) for err in e.errors()]
        for key in list(raw):
            path = f"{sec}.{key}"
            if sec != "data" and path in fields:
                continue
            if sec != "data" and path not in fields and key in model.model_fields:
                problems.append(f"config key '{path}' is a setting of method {'/'.join(al.methods_of(path))} only; "
                                f"this run's method is {method}")
                raw.pop(key)
        try:
            inst = model.model_validate(raw)
        except ValidationError as e:
            problems += [_format_error(sec, err, fields + [f"data.{n}" for n in model.model_fields])
                         for err in e.errors()]
            continue
        dumped = inst.model_dump(mode="json")
        if sec == "data":
            data_set = inst.model_dump(mode="json", exclude_unset=True)
        else:
            dumped = {k: v for k, v in dumped.items() if k in ("has", "laat") or al.applies(f"{sec}.{k}", method)}
        if sec == "method":
            dumped.pop("has", None), dumped.pop("laat", None)
            for sub, m in subs.items():
                dumped[sub] = m.model_dump(mode="json")
        doc[sec] = dumped
    problems = [p.replace("' is required: pass", f"' is required for dataset '{dataset}': pass")
                if p.startswith("'data.") else p for p in problems]
    if problems:
        raise ConfigError(_problems(problems))
    return doc, data_set


def _cross_checks(doc: dict, method: str, dataset: str, preset: str) -> None:
    ds = recipe("datasets")[dataset]
    problems = []
    if method in ("apn", "has") and not ds["attributes"]:  # also checked in resolve(), before the data keys
        problems.append(f"method {method} needs class attribute vectors, but dataset '{dataset}' has none (a "
                        f"text-anchor dataset): train it with 'zslab train laat', or choose an attribute dataset "
                        f"(shapes, cub, awa1, awa2, sun, apy)")
    only = (recipe(f"presets/{preset}").get("datasets_only") or {}).get(method)
    if only and dataset not in only:
        problems.append(f"preset '{preset}' of method {method} has values for the datasets {', '.join(only)} only, "
                        f"not '{dataset}'; use --preset smoke or full, or --dataset {'|'.join(only)}")
    if method == "laat":
        enc = doc["anchors"]["encoder"]
        if enc == "attributes" and not ds["attributes"]:
            problems.append(f"'anchors.encoder' attributes needs class attribute vectors, but dataset '{dataset}' has "
                            f"none; use a text encoder (minilm, clip:ARCH:PATH, file:PATH)")
        if enc == "attributes" and doc["anchors"]["expand"] and doc["data"].get("attributes") == "expanded":
            problems.append("'anchors.encoder' attributes with data.attributes=expanded and anchors.expand=true would "
                            "expand the class attributes twice; set anchors.expand=false or data.attributes=raw")
        if doc["attack"]["adversary"] != "pgd" and doc["method"]["laat"]["objective"] == "trades":
            problems.append(f"'attack.adversary' {doc['attack']['adversary']!r} does not combine with "
                            f"method.laat.objective 'trades' (TRADES makes its own δ); use attack.adversary=pgd")
        if doc["train"]["select_metric"] != "val_zs":
            problems.append(f"'train.select_metric' for laat must be val_zs (zero-shot accuracy on the validation "
                            f"classes); got {doc['train']['select_metric']!r}")
        if doc["attack"]["step"] == 0:
            problems.append("'attack.step' must be > 0 (the PGD step of LAAT's training adversary, e.g. 2/255)")
    elif doc["train"]["select_metric"] == "val_zs":
        problems.append(f"'train.select_metric' val_zs is LAAT's; method {method} selects on val_h or val_zsl")
    if method in ("apn", "has") and doc["model"]["backbone"] == "small" and doc["model"]["width"] is None:
        pass  # the small CNN's own default width
    if problems:
        raise ConfigError(_problems(problems))


def _problems(problems: list[str]) -> str:
    """One problem on one line; several as a list. The messages of one key (the alternatives of a
    union type: "an integer" or "'auto'") are joined into one."""
    merged: dict[str, list[str]] = {}

    for p in dict.fromkeys(problems):
        m = re.match(r"^('[^']+'(?: \(old key '[^']+'\))?): (.*)$", p, flags=re.S)
        if m:
            merged.setdefault(m.group(1), []).append(m.group(2))
        else:
            merged.setdefault(p, [])
    problems = [f"{k}: {' — or: '.join(v)}" if v else k for k, v in merged.items()]
    if len(problems) == 1:
        return f"invalid configuration: {problems[0]}"
    return "invalid configuration:\n  - " + "\n  - ".join(problems)


# ----------------------------------------------------------------------------- flat view
def to_flat(doc: dict, data_set: dict, method: str) -> dict:
    """The engine's flat view of a nested document (the keys of :data:`aliases.FLAT_ALIASES`
    that apply to ``method``, ``model`` and ``data`` as dicts)."""
    flat: dict = {}
    for key, (path, methods) in al.FLAT_ALIASES.items():
        if method in methods:
            flat[key] = copy.deepcopy(_get(doc, path))
    if method == "laat":
        flat.update(copy.deepcopy(al.LAAT_INERT))
    else:
        flat["model"] = {k: doc["model"][k] for k in ("backbone", "width", "weights")}
    flat["data"] = copy.deepcopy(data_set)
    return flat


class EngineConfig(dict):
    """The engine's flat config (a plain dict to the training code) that remembers its nested
    document's sources, so the run folder records where every value came from."""
    sources: dict = {}
    snapshot: dict = {}


def resolve(method: str = "apn", dataset: str = "shapes", preset: str = "smoke",
            overrides: list[str] | dict | None = None, seed: int | None = None,
            allow_missing: bool = False) -> Resolved:
    """Compose defaults → method → dataset → preset → ``overrides`` and check the result.

    ``overrides``: ``["key=value", ...]`` (values parsed as JSON where they parse) or a dict
    ``{key: value}``; keys nested (``train.lr``) or flat (``lr``, :data:`aliases.FLAT_ALIASES`).
    Raises :class:`ConfigError` naming every bad key with a suggestion. ``allow_missing``: required
    data keys that no layer sets (e.g. ``data.root``) show as ``"<required>"`` instead of failing
    (``zslab config show`` of a recipe; such a config cannot train)."""
    method = _choice("method", method, sc.METHODS, "the METHOD argument")
    dataset = _choice("dataset", dataset, sc.DATASETS, "--dataset")
    preset = _choice("preset", preset, sc.PRESETS, "--preset")
    tree: dict = {}
    sources: dict = {}
    _set(tree, sources, "run", {"method": method, "dataset": dataset, "preset": preset}, "command")

    def layer(part: dict | None, source: str) -> None:
        for k, v in (part or {}).items():
            _set(tree, sources, k, v, source)

    layer(recipe("methods").get(method), "method")
    ds = recipe("datasets")[dataset]
    layer(ds.get("config"), f"dataset:{dataset}")
    pr = recipe(f"presets/{preset}")
    layer(pr.get("all"), f"preset:{preset}")
    layer((pr.get("methods") or {}).get(method), f"preset:{preset}")
    pds = pr.get("datasets") or {}
    for key in dict.fromkeys((ds["family"], dataset)):
        part = pds.get(key) or {}
        layer(part.get("all"), f"preset:{preset}")
        layer(part.get(method), f"preset:{preset}")
    items = overrides.items() if isinstance(overrides, dict) else [split_override(o) for o in (overrides or [])]
    for key, value in items:
        if isinstance(value, str) and not isinstance(overrides, dict):
            value = parse_value(value)
        elif isinstance(value, str):
            value = parse_value(value) if value.strip().lower() in ("none", "null", "true", "false") else value
        path = normalize_key(key, method, dataset)
        if path in ("run.method", "run.dataset", "run.preset"):
            fixed = {"run.method": method, "run.dataset": dataset, "run.preset": preset}[path]
            if value != fixed:
                raise ConfigError(f"'{key}' cannot be changed by --set (it selects the recipe); pass it as the "
                                  f"METHOD argument, --dataset or --preset")
            continue
        if path == "method.augment" and value is None:
            value = "none"  # `--set augment=none` parses as null
        _set(tree, sources, path, value, "--set")
    if seed is not None:
        _set(tree, sources, "run.seed", seed, "--seed")
    if method in ("apn", "has") and not ds["attributes"]:
        raise ConfigError(f"method {method} needs class attribute vectors, but dataset '{dataset}' has none (a "
                          f"text-anchor dataset): train it with 'zslab train laat', or choose an attribute dataset "
                          f"(shapes, cub, awa1, awa2, sun, apy)")
    only = (pr.get("datasets_only") or {}).get(method)
    if only and dataset not in only:
        raise ConfigError(f"preset '{preset}' of method {method} has values for the datasets {', '.join(only)} only, "
                          f"not '{dataset}'; use --preset smoke or full, or --dataset {'|'.join(only)}")
    if allow_missing:
        for name, f in sc.DATA_MODELS[dataset].model_fields.items():
            if f.is_required() and name not in (tree.get("data") or {}):
                _set(tree, sources, f"data.{name}", "<required>", "required: --set it")
    doc, data_set = _validate_tree(tree, method, dataset)
    _cross_checks(doc, method, dataset, preset)
    all_sources = {}
    for path in _leaves(doc):
        src = sources.get(path)
        if src is None:  # a dict-valued leaf (data.max_per_class) is set key by key
            subs = {v for k, v in sources.items() if k.startswith(path + ".")}
            src = subs.pop() if len(subs) == 1 else ("mixed" if subs else "default")
        all_sources[path] = src
    flat = to_flat(doc, data_set, method)
    return Resolved(doc=doc, sources=all_sources, flat=flat, method=method, dataset=dataset, preset=preset)


def make_engine_config(res: Resolved) -> EngineConfig:
    cfg = EngineConfig(copy.deepcopy(res.flat))
    cfg.sources = dict(res.sources)
    cfg.snapshot = copy.deepcopy(res.flat)
    return cfg


# ----------------------------------------------------------------------------- migration
def from_flat(flat: dict) -> Resolved:
    """Read an engine (flat) config — a run folder's or a card's, old or new — into a checked
    :class:`Resolved`. Keys the folder lacks (added later, :data:`aliases.LATE_KEYS`) take their
    defaults; unknown keys are refused with a suggestion."""
    if not isinstance(flat, dict):
        raise ConfigError(f"a config must be a mapping, got {type(flat).__name__}")
    method = _choice("method", flat.get("method", "apn"), sc.METHODS, "config 'method'")
    dataset = _choice("dataset", flat.get("dataset", "shapes"), sc.DATASETS, "config 'dataset'")
    preset = str(flat.get("preset", "smoke"))
    if preset not in sc.PRESETS:
        preset = "smoke"
    tree: dict = {}
    sources: dict = {}
    for k, v in (recipe("methods").get(method) or {}).items():
        _set(tree, sources, k, v, "method")
    problems = []
    for key, value in flat.items():
        if key in ("method", "dataset", "preset"):
            continue
        if key == "model":
            if not isinstance(value, dict):
                problems.append(f"'model' must be a mapping, got {value!r}")
                continue
            if method != "laat":
                for k, v in value.items():
                    _set(tree, sources, f"model.{k}", v, "config")
            continue
        if key == "data":
            if not isinstance(value, dict):
                problems.append(f"'data' must be a mapping, got {value!r}")
                continue
            if value:
                _set(tree, sources, "data", value, "config")
            else:
                tree.setdefault("data", {})
            continue
        if method == "laat" and key in al.LAAT_INERT:
            continue
        if key not in al.FLAT_ALIASES:
            if key in SECTIONS:
                _set(tree, sources, key, value, "config")
                continue
            problems.append(f"unknown config key '{key}'{_suggest(key, list(al.FLAT_ALIASES))}")
            continue
        path, methods = al.FLAT_ALIASES[key]
        if method not in methods:
            problems.append(f"config key '{key}' is a setting of method {'/'.join(methods)} only; this config's "
                            f"method is {method}")
            continue
        if path == "method.augment" and value is None:
            value = "none"
        _set(tree, sources, path, value, "config")
    if problems:
        raise ConfigError(_problems(problems))
    _set(tree, sources, "run", {"method": method, "dataset": dataset, "preset": preset}, "config")
    doc, data_set = _validate_tree(tree, method, dataset)
    _cross_checks_lenient(doc, method, dataset)
    srcs = {p: sources.get(p, "default") for p in _leaves(doc)}
    return Resolved(doc=doc, sources=srcs, flat=to_flat(doc, data_set, method), method=method, dataset=dataset,
                    preset=preset)


def _cross_checks_lenient(doc: dict, method: str, dataset: str) -> None:
    """The cross-field checks that do not depend on the preset (a stored config may carry any preset)."""
    try:
        _cross_checks(doc, method, dataset, "smoke")
    except ConfigError:
        raise


def from_document(obj: dict) -> Resolved:
    """A stored document (a run folder's ``config.json``): the nested form zslab writes now
    (``{"zslab_config": 2, "config", "sources", "engine"}``) or an old flat config (migrated
    through :data:`aliases.FLAT_ALIASES`)."""
    if isinstance(obj, dict) and obj.get("zslab_config") == 2:
        if not isinstance(obj.get("engine"), dict):
            raise ConfigError("config document lacks its 'engine' section")
        res = from_flat(obj["engine"])
        res.sources = {**res.sources, **{k: v for k, v in (obj.get("sources") or {}).items() if k in res.sources}}
        return res
    return from_flat(obj)


# ----------------------------------------------------------------------------- study recipes
def _study_values(obj, top: bool = True):
    """Fractions written as "8/255" become floats; lists outside ``overrides`` become tuples."""
    if isinstance(obj, str) and "/" in obj:
        try:
            return sc.parse_fraction(obj)
        except ValueError:
            return obj
    if isinstance(obj, dict):
        return {k: (_study_values(v, top=False) if k in ("overrides", "laat_overrides") or not top
                    else _study_values(v, top=top)) for k, v in obj.items()}
    if isinstance(obj, list):
        vals = [_study_values(v, top=top) for v in obj]
        return tuple(vals) if top else vals
    return obj


#: the top-level key of a study recipe that holds its run tables, not a preset
STUDY_RUNS_KEY = "runs"


def _study_recipe(study: str) -> dict:
    return {k: v for k, v in recipe(f"studies/{study}").items() if k != STUDY_RUNS_KEY}


def study_preset(study: str, preset: str) -> dict:
    """A study's preset from ``recipes/studies/<study>.yaml`` (``has``, ``laat``, ``cross_paper``,
    ``laat_anchors``): a fresh copy, fractions as floats; unknown presets name the choices."""
    table = _study_recipe(study)
    if preset not in table:
        raise ConfigError(f"unknown {study} study preset {preset!r}{_suggest(preset, table)}; choose one of "
                          f"{', '.join(table)}")
    return _study_values(copy.deepcopy(table[preset]))


def study_presets(study: str) -> dict:
    """Every preset of a study (``{preset: study_preset(study, preset)}``)."""
    return {p: study_preset(study, p) for p in _study_recipe(study)}


def study_tables(study: str) -> dict:
    """A study's run tables (the ``runs`` section of ``recipes/studies/<study>.yaml``, read by
    :func:`zslab.experiments.runner.study_runs`): a fresh copy, fractions as floats; ``{}`` when
    the study has none."""
    return _study_values(copy.deepcopy(recipe(f"studies/{study}").get(STUDY_RUNS_KEY) or {}), top=False)
