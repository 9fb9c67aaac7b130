"""The interactive explorer's computation (no widgets): one model, one image, one :class:`View`.

Notebook ``30_explorer`` (and :func:`zslab.viz.explorer.explorer_widget`) call this module; it
holds every number the explorer shows, so the numbers are testable without a UI.

Models (:func:`load_model`)
---------------------------
* an **APN / HAS** run directory (``method`` ``apn`` or ``has``; :func:`zslab.train.load_run`):
  an attribute model (HAS §3.2: global branch â = g(x)ᵀV, attention maps h(x), class score
  s(y) = âᵀφ(y), Eq. 1 and Eq. 8);
* a **LAAT** run directory (``method`` ``laat``): an image embedding model and its class anchors
  (the training run's text anchors, expanded when the run expanded them; LAAT §3.2, §3.7);
* no run directory: a model of the smoke (or full) study preset is trained into ``cache_dir``
  with the study run caches (:func:`zslab.experiments.has_study.run_study`,
  :func:`zslab.experiments.laat_study.run_rows`), so the next call — and every notebook sharing
  the cache — reuses it.

Images (:func:`pick_image`)
---------------------------
An image of the model's dataset (split + index), or an image file / a folder of images, read
with PIL, converted to RGB, resized (shorter side) and centre-cropped to the model's input size
(:class:`zslab.data.xlsa17.ImageListDataset`). A missing path, an empty folder or an unreadable
file is a :class:`zslab.ZSLabError` naming the path.

Views (:func:`compute_view`)
----------------------------
APN / HAS models, ``mode``:

* ``"has"`` — the HAS perturbation (§3.3–3.6): T signed-gradient **descent** steps on
  L_HAS = L_CLS − λ_rob·H(p) + λ_rel·‖Δg‖² + λ_att_mag·M_att − λ_att_ent·H_att (Eq. 3–7, zslab's
  sign convention, :mod:`zslab.methods.has`) over the model's *training* classes, in an L∞ ε-ball. The
  label of L_CLS is the image's class when it is a training class, otherwise the model's clean
  prediction among the training classes (``view.numbers["has_label_source"]`` says which).
  Loss terms left out of ``terms`` get weight 0 (L_CLS is always on).
* ``"attack"`` — an ordinary adversary for contrast: untargeted PGD (Madry et al.) ascending the
  cross-entropy of the class scores over the *candidate* classes (default: the unseen classes,
  ZSL, Eq. 8), random start, label = the image's class if it is a candidate, else the clean
  prediction.

The view holds the clean and perturbed attention map h_k(x) of the chosen attribute k (and the
share of its attention on the part carrying k, for embedded ``shapes`` images:
:func:`zslab.eval.localisation.attention_distribution`), the predicted attributes â (top-k, with
names) before and after, the class scores over the candidates before and after, and the HAS
terms at the clean and the perturbed image.

LAAT models: the prediction over the candidate classes' anchors (cosine scores cos(f(x), â_y),
LAAT §3.7) clean and under PGD (ε, steps, random start) on the A-CE of the candidate anchors
(Eq. 3/8 at the run's τ), and the perturbation.

Everything is deterministic for a given ``seed`` (the attacks draw from seeded per-example
streams; HAS has no random start).
"""
from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zslab import ZSLabError
from zslab.attacks import PGD, parse_eps
from zslab.attacks.base import eval_mode
from zslab.data.folder import IMAGE_EXTENSIONS, text_name
from zslab.data.images import ImageListDataset
from zslab.data.shapes import class_name as shapes_class_name
from zslab.eval.localisation import attention_distribution
from zslab.experiments import has_study as hs
from zslab.experiments import laat_study as ls
from zslab.experiments import runner
from zslab.experiments.paths import work_path
from zslab.losses import cosine_logits
from zslab.methods.has import HAS, BindClasses, HASConfig, has_objective, has_terms
from zslab.methods.laat import AnchorHead
from zslab.train import load_run
from zslab.utils.io import atomic_write_json

__all__ = ["ExplorerModel", "ExplorerImage", "View", "HAS_TERMS", "TERM_LABELS", "DEFAULT_LAMBDAS", "MODES",
           "CANDIDATES", "load_model", "model_from_parts", "pick_image", "load_image_file", "list_images",
           "compute_view", "resolve_attribute", "save_results", "first_correct"]

#: the HAS loss terms a user can switch (L_CLS is always on), keyed as in :func:`zslab.methods.has.has_terms`
HAS_TERMS: tuple[str, ...] = ("rob", "rel", "att_mag", "att_ent")
TERM_LABELS = {"rob": "−λ_rob·H(p)  robustness (Eq. 5)", "rel": "+λ_rel·‖Δg‖²  reliability (Eq. 6)",
               "att_mag": "+λ_att_mag·mean(h)  attention magnitude (Eq. 7)",
               "att_ent": "−λ_att_ent·H(h)  attention entropy (Eq. 7)"}
#: default weights: the :class:`zslab.methods.has.HASConfig` defaults
DEFAULT_LAMBDAS = {"rob": 1.0, "rel": 0.1, "att_mag": 1e-4, "att_ent": 0.1}
MODES = ("has", "attack")
CANDIDATES = ("unseen", "seen", "all")


# ----------------------------------------------------------------------------------- models
@dataclass
class ExplorerModel:
    """A loaded model: ``kind`` ``"apn"`` (APN or HAS run: attention + attributes) or ``"laat"``
    (embedding model + ``anchors``, one L2-normalised row per class of ``data``)."""

    kind: str
    model: torch.nn.Module
    data: Any
    config: dict
    name: str
    run_dir: str | None = None
    anchors: torch.Tensor | None = None
    tau: float = 1.0
    image_size: int = 32

    @property
    def device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except StopIteration:
            return torch.device("cpu")

    @property
    def attribute_names(self) -> list[str]:
        return list(self.data.attribute_names) if self.kind == "apn" else []


def model_from_parts(kind: str, model, data, config: dict | None = None, *, name: str | None = None,
                     anchors=None, tau: float = 1.0, run_dir=None) -> ExplorerModel:
    """An :class:`ExplorerModel` from objects in memory (tests; models trained in a session)."""
    if kind not in ("apn", "laat"):
        raise ZSLabError(f"explorer model kind must be 'apn' or 'laat'; got {kind!r}")
    if kind == "apn" and not getattr(data, "has_attributes", False):
        raise ZSLabError(f"an APN/HAS model needs a dataset with class attributes; '{data.name}' has none")
    if kind == "laat":
        if anchors is None:
            raise ZSLabError("a LAAT model needs its class anchors (one row per class of the dataset)")
        anchors = F.normalize(torch.as_tensor(anchors).detach().float().cpu(), dim=1)
        if anchors.ndim != 2 or anchors.shape[0] != len(data.class_names):
            raise ZSLabError(f"LAAT anchors must be ({len(data.class_names)}, D) for dataset '{data.name}'; "
                             f"got {tuple(anchors.shape)}")
    model.eval()
    return ExplorerModel(kind=kind, model=model, data=data, config=dict(config or {}), anchors=anchors,
                         name=name or f"{kind} model", tau=float(tau), image_size=int(data.image_size),
                         run_dir=None if run_dir is None else str(run_dir))


def load_model(run_dir=None, *, method: str = "has", preset: str = "smoke", cache_dir=None, seed: int = 0,
               device: str | None = None, data=None, data_root=None, progress: bool = False,
               name: str | None = None) -> ExplorerModel:
    """Load a finished run (``run_dir``) or train/reuse a study-preset model.

    ``run_dir``: an APN, HAS or LAAT run directory (``config.json`` + ``best.pt``); ``method``,
    ``preset``, ``cache_dir`` are then ignored. Without it: the Table-2 ``has`` (or
    ``baseline`` for ``method="apn"``) run of :mod:`zslab.experiments.has_study` preset
    ``preset``, or the ``expanded+sm`` LAAT run of :mod:`zslab.experiments.laat_study`
    (``data_root``: the CIFAR-10 folders for its ``full`` preset), trained into ``cache_dir``
    (default ``runs/study``, the one run cache the notebooks share; a relative ``cache_dir`` is
    taken under the project folder, :func:`zslab.experiments.paths.work_path`, so the notebook's
    kernel in ``notebooks/`` finds the repository's ``runs/study``) or reused from there.
    ``data``: the run's dataset when already loaded (skips regeneration).
    """
    if run_dir is None:
        run_dir, data = _cached_run(method, preset, cache_dir, seed, device, data, data_root, progress)
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ZSLabError(f"{run_dir} is not a zslab run directory (no config.json); pass the folder a "
                         f"`zslab train --out` run wrote, or run_dir=None to train a smoke model")
    if not (run_dir / "best.pt").is_file():
        raise ZSLabError(f"{run_dir} holds no finished run (no best.pt); finish it with `zslab train --resume` "
                         f"or pass another run directory")
    config, data, model, ckpt = load_run(run_dir, data=data, device=device)
    method = config.get("method")
    label = name or f"{method.upper()} ({config.get('preset', '?')}, seed {config.get('seed', 0)})"
    if method == "laat":
        state = ckpt.get("strategy_state") or {}
        if "anchors" not in state:
            raise ZSLabError(f"{run_dir}/best.pt holds no LAAT anchors (strategy_state); it was not written by "
                             f"zslab's LAAT strategy")
        return model_from_parts("laat", model, data, config, name=label, anchors=state["anchors"],
                                tau=float(config.get("tau", 1.0)), run_dir=run_dir)
    if method not in ("apn", "has"):
        raise ZSLabError(f"{run_dir}: the explorer knows APN, HAS and LAAT runs, not method {method!r}")
    return model_from_parts("apn", model, data, config, name=label, run_dir=run_dir)


def _cached_run(method, preset, cache_dir, seed, device, data, data_root, progress):
    if method in ("apn", "has"):
        cache = work_path(cache_dir if cache_dir is not None else "runs/study")
        if data is None:
            data = hs.load_study_data(preset, cache_dir=cache / "data")
        runs = hs.table2_configs(preset, rows=["has" if method == "has" else "baseline"], seeds=[seed])
        row = runner.run_study(runs, cache, data=data, progress=progress, device=device)[0]
        return row["run_dir"], data
    if method == "laat":
        cache = work_path(cache_dir if cache_dir is not None else "runs/study")
        if data is None:
            data = ls.load_study_data(preset, data_root=data_root)
        runs = ls.robustness_configs(preset, rows=["expanded+sm"], seeds=[seed], data_root=data_root)
        row = ls.run_rows(runs, cache, data=data, progress=progress, device=device)[0]
        return row["run_dir"], data
    raise ZSLabError(f"unknown explorer method {method!r}; choose apn, has or laat (or pass a run directory)")


# ----------------------------------------------------------------------------------- images
@dataclass
class ExplorerImage:
    """One image in [0, 1], ``(3, S, S)`` on the CPU; ``label`` its global class (None: unknown);
    ``part_masks`` ``(P, S, S)`` bool for embedded ``shapes`` images (else None)."""

    image: torch.Tensor
    label: int | None
    caption: str
    source: dict
    part_masks: torch.Tensor | None = None


def list_images(folder) -> list[str]:
    """Sorted image files directly inside ``folder`` (extensions of :mod:`zslab.data.folder`)."""
    folder = Path(folder)
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_image_file(path, image_size: int) -> torch.Tensor:
    """An image file as a ``(3, image_size, image_size)`` float tensor in [0, 1] (PIL, RGB, shorter
    side resized bicubically, centre crop). Missing or unreadable files raise a ZSLabError naming
    the path."""
    p = Path(path)
    if not p.exists():
        raise ZSLabError(f"image path '{path}' does not exist; pass an image file "
                         f"({', '.join(IMAGE_EXTENSIONS)}) or a folder of them")
    if not p.is_file():
        raise ZSLabError(f"image path '{path}' is not a file")
    return ImageListDataset([str(p)], [-1], image_size=int(image_size), check_files=False).load(0)


def _label_from_folder(path: Path, class_names) -> int | None:
    """The class whose name (or its text form) is the image's parent folder name (class-named
    folders, :mod:`zslab.data.folder`), else None."""
    parent = path.parent.name
    for i, c in enumerate(class_names):
        if parent == c or text_name(parent) == text_name(c):
            return i
    return None


def pick_image(handle: ExplorerModel, split: str = "test_unseen", index: int = 0, path=None,
               label: int | None = None) -> ExplorerImage:
    """An image for ``handle``: ``path`` (a file, or a folder whose ``index``-th image in sorted
    order is taken) when given, else image ``index`` of split ``split`` of the model's dataset.

    File images take ``label`` when given, else the class named by their parent folder (when one
    of the dataset's classes is), else no label."""
    data = handle.data
    names = list(data.class_names)
    if path is not None and str(path).strip():
        p = Path(os.path.expanduser(str(path).strip()))
        if not p.exists():
            raise ZSLabError(f"image path '{p}' does not exist; pass an image file "
                             f"({', '.join(IMAGE_EXTENSIONS)}) or a folder of them")
        if p.is_dir():
            files = list_images(p)
            if not files:
                raise ZSLabError(f"folder '{p}' holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
            if not 0 <= int(index) < len(files):
                raise ZSLabError(f"image index {index} is out of range for folder '{p}' ({len(files)} images)")
            p = Path(files[int(index)])
        x = load_image_file(p, handle.image_size)
        if label is None:
            label = _label_from_folder(p, names)
        cap = f"{p.name}" + (f" (class: {names[label]})" if label is not None else " (class unknown)")
        return ExplorerImage(x, None if label is None else int(label), cap, {"path": str(p)})
    if split not in data.splits:
        raise ZSLabError(f"dataset '{data.name}' has no split '{split}'; choose one of {', '.join(data.splits)}")
    ds = data.splits[split]
    n = len(ds)
    if not 0 <= int(index) < n:
        raise ZSLabError(f"image index {index} is out of range for split '{split}' ({n} images)")
    i = int(index)
    if hasattr(ds, "image"):
        x = ds.image(i)
        y = int(ds.labels[i])
    else:
        x, y = ds[i]
        y = int(y)
    x = x.detach().float().cpu()
    if x.shape[-1] != handle.image_size or x.shape[-2] != handle.image_size:
        x = F.interpolate(x[None], size=(handle.image_size,) * 2, mode="bilinear", align_corners=False,
                          antialias=True)[0].clamp(0, 1)
    masks = None
    extras = getattr(ds, "extras", {}) or {}
    if "part_masks" in extras and extras["part_masks"].shape[-1] == x.shape[-1]:
        masks = extras["part_masks"][i].bool().cpu()
    return ExplorerImage(x, y, image_caption(data, split, i, y), {"split": split, "index": i}, masks)


def image_caption(data, split: str, index: int, label: int) -> str:
    """What the figure says about an image: what is *drawn* where the dataset records it per image
    (the embedded ``shapes`` images sample their attributes from per-class probabilities, so an
    image of class "red head" may have a blue head), then the class name, labelled as such."""
    names = list(data.class_names)
    values = (getattr(data.splits[split], "extras", {}) or {}).get("values")
    if data.name == "shapes" and values is not None:
        drawn = shapes_class_name(values[index].tolist())
        if drawn != names[label]:
            return f"{split}[{index}] drawn: {drawn} — class: {names[label]}"
        return f"{split}[{index}] drawn: {drawn} (= its class)"
    return f"{split}[{index}] class: {names[label]}"


@torch.no_grad()
def first_correct(handle: ExplorerModel, split: str = "test_unseen", candidates: str = "unseen",
                  max_images: int = 256) -> int:
    """Index of the first image of ``split`` (among its first ``max_images``) that ``handle``'s
    model classifies correctly among ``candidates`` (APN: Eq. 8 scores; LAAT: anchor cosine), or
    0 when none is — an image where an attack has a right prediction to break."""
    data = handle.data
    if split not in data.splits:
        raise ZSLabError(f"dataset '{data.name}' has no split '{split}'; choose one of {', '.join(data.splits)}")
    ds = data.splits[split]
    n = min(len(ds), int(max_images))
    if n == 0:
        return 0
    cand = _candidates(data, candidates)
    dev = handle.device
    model = handle.model
    with eval_mode(model):
        return _first_correct(handle, ds, n, cand, dev, model, split)


def _first_correct(handle, ds, n, cand, dev, model, split) -> int:
    data = handle.data
    for i in range(0, n, 64):
        idx = list(range(i, min(n, i + 64)))
        x = torch.stack([pick_image(handle, split, j).image for j in idx]).to(dev)
        y = torch.as_tensor([int(ds.labels[j]) for j in idx])
        if handle.kind == "apn":
            s = model(x, data.class_attributes.float().to(dev)[cand.to(dev)])["logits"]
        else:
            s = cosine_logits(model(x), handle.anchors[cand].to(dev))
        ok = (cand[s.argmax(1).cpu()] == y).nonzero().flatten()
        if ok.numel():
            return idx[int(ok[0])]
    return 0


# ----------------------------------------------------------------------------------- views
@dataclass
class View:
    """What the explorer shows for one (model, image, settings); tensors on the CPU.

    ``clean``/``adv``/``delta`` ``(3, S, S)``; ``attention_clean``/``attention_adv`` ``(h, w)`` the
    chosen attribute's map h_k (APN only); ``numbers`` everything else, JSON-able (see
    :meth:`to_dict`)."""

    kind: str
    model_name: str
    clean: torch.Tensor
    adv: torch.Tensor
    caption: str
    attention_clean: torch.Tensor | None = None
    attention_adv: torch.Tensor | None = None
    numbers: dict = field(default_factory=dict)

    @property
    def delta(self) -> torch.Tensor:
        return self.adv - self.clean

    def to_dict(self) -> dict:
        """The view's numbers (no images), JSON-able."""
        return {"kind": self.kind, "model": self.model_name, "caption": self.caption, **self.numbers}

    def to_json(self, path) -> None:
        atomic_write_json(self.to_dict(), path)


def resolve_attribute(handle: ExplorerModel, attribute) -> int:
    """An attribute index from an index or a name (exact, else a unique case-insensitive substring)."""
    names = handle.attribute_names
    if isinstance(attribute, bool):
        raise ZSLabError(f"attribute must be an index or a name; got {attribute!r}")
    if isinstance(attribute, numbers.Integral):
        if not 0 <= attribute < len(names):
            raise ZSLabError(f"attribute index {attribute} is out of range (the model has {len(names)} attributes)")
        return int(attribute)
    text = str(attribute)
    if text in names:
        return names.index(text)
    hits = [i for i, n in enumerate(names) if text.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    raise ZSLabError(f"attribute {text!r} matches {len(hits)} attribute names; use one of: {', '.join(names)}")


def _candidates(data, candidates: str) -> torch.Tensor:
    if candidates not in CANDIDATES:
        raise ZSLabError(f"candidates must be one of {', '.join(CANDIDATES)}; got {candidates!r}")
    if candidates == "unseen":
        return data.unseen_classes.long().cpu()
    if candidates == "seen":
        return data.train_classes.long().cpu()
    return torch.arange(len(data.class_names))


def _eps(value, what: str) -> float:
    try:
        return parse_eps(value)
    except ValueError as e:
        raise ZSLabError(f"explorer {what}: {e}") from None


def _steps(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ZSLabError(f"explorer steps must be an integer >= 0; got {value!r}")
    return int(value)


def _step_size(step_size, eps: float, steps: int) -> float:
    """Given, else 2.5·ε/T (Madry et al.'s budget), else 2/255 (HAS's default) when ε = 0 or T = 0
    (then nothing moves: ε = 0 returns the input, T = 0 takes no step)."""
    if step_size is not None:
        a = _eps(step_size, "step_size")
        if a == 0 and eps > 0 and steps > 0:
            raise ZSLabError("explorer step_size must be > 0 when eps > 0 and steps > 0 (or pass None: 2.5·eps/steps)")
        return a
    if eps > 0 and steps > 0:
        return 2.5 * eps / steps
    return 2 / 255


def _topk(scores: torch.Tensor, names: list[str], k: int, index: torch.Tensor | None = None) -> list[dict]:
    k = min(int(k), scores.numel())
    vals, idx = scores.topk(k)
    out = []
    for v, i in zip(vals.tolist(), idx.tolist()):
        g = int(index[i]) if index is not None else int(i)
        out.append({"index": g, "name": names[g], "score": float(v)})
    return out


def _label_position(label, cand: torch.Tensor) -> int | None:
    if label is None:
        return None
    hit = (cand == int(label)).nonzero().flatten()
    return int(hit[0]) if hit.numel() else None


def compute_view(handle: ExplorerModel, image: ExplorerImage, *, attribute=0, mode: str = "has",
                 terms=HAS_TERMS, lambdas: dict | None = None, eps=8 / 255, steps: int = 3, step_size=None,
                 candidates: str = "unseen", top_k: int = 5, seed: int = 0) -> View:
    """The :class:`View` of ``image`` under ``handle``'s model (see the module docstring).

    ``eps``/``step_size`` in [0, 1] pixel units (floats or strings like ``"8/255"``); ``step_size``
    None: 2.5·ε/``steps``. APN/HAS only: ``attribute`` (index or name), ``mode`` (``has`` |
    ``attack``), ``terms`` (subset of :data:`HAS_TERMS` that are on), ``lambdas`` (weights of
    the terms, default :data:`DEFAULT_LAMBDAS`; missing keys take the default). ``candidates``
    (``unseen`` | ``seen`` | ``all``): the classes the prediction (and the attack mode / LAAT
    PGD) runs over."""
    eps = _eps(eps, "eps")
    steps = _steps(steps)
    alpha = _step_size(step_size, eps, steps)
    if not isinstance(image, ExplorerImage):
        raise ZSLabError(f"compute_view needs an ExplorerImage (from pick_image); got {type(image).__name__}")
    x = image.image
    if x.ndim != 3 or x.shape[0] != 3 or x.shape[-1] != handle.image_size or x.shape[-2] != handle.image_size:
        raise ZSLabError(f"image must be (3, {handle.image_size}, {handle.image_size}) for model '{handle.name}'; "
                         f"got {tuple(x.shape)}")
    common = {"eps": eps, "eps_255": eps * 255, "steps": steps, "step_size": alpha, "step_size_255": alpha * 255,
              "seed": int(seed), "candidates": candidates, "source": image.source, "label": image.label,
              "label_name": None if image.label is None else handle.data.class_names[image.label]}
    with eval_mode(handle.model):  # every submodule's train/eval flag is restored afterwards
        if handle.kind == "laat":
            return _laat_view(handle, image, eps, steps, alpha, candidates, top_k, seed, common)
        return _apn_view(handle, image, attribute, mode, terms, lambdas, eps, steps, alpha, candidates, top_k,
                         seed, common)


def _delta_numbers(clean: torch.Tensor, adv: torch.Tensor) -> dict:
    d = (adv - clean).abs()
    return {"delta_linf": float(d.max()), "delta_linf_255": 255 * float(d.max()),
            "delta_mean_abs": float(d.mean()), "delta_mean_abs_255": 255 * float(d.mean()),
            "delta_l2": float((adv - clean).flatten().norm())}


def _part_share(att: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of the (shift-normalised, upsampled) attention map inside ``mask``
    (:func:`zslab.eval.localisation.attention_distribution`)."""
    up = F.interpolate(att[None, None].float(), size=mask.shape[-2:], mode="bilinear", align_corners=False)
    dist = attention_distribution(up, "shift")[0, 0]
    return float((dist * mask.float()).sum())


def _apn_view(handle, image, attribute, mode, terms, lambdas, eps, steps, alpha, candidates, top_k, seed,
              common) -> View:
    if mode not in MODES:
        raise ZSLabError(f"explorer mode must be one of {', '.join(MODES)}; got {mode!r}")
    terms = tuple(terms)
    bad = [t for t in terms if t not in HAS_TERMS]
    if bad:
        raise ZSLabError(f"unknown HAS loss term(s) {bad}; choose from {', '.join(HAS_TERMS)}")
    lam = dict(DEFAULT_LAMBDAS)
    unknown = [k for k in (lambdas or {}) if k not in HAS_TERMS]
    if unknown:
        raise ZSLabError(f"unknown HAS weight(s) {unknown}; the weights are {', '.join(HAS_TERMS)}")
    lam.update({k: float(v) for k, v in (lambdas or {}).items()})
    weights = {f"lambda_{t}": (lam[t] if t in terms else 0.0) for t in HAS_TERMS}
    k = resolve_attribute(handle, attribute)
    data, model = handle.data, handle.model
    dev = handle.device
    dtype = next(model.parameters()).dtype
    A = data.class_attributes.float().to(dev, dtype)
    train_cls = data.train_classes.long().cpu()
    cand = _candidates(data, candidates)
    names, anames = list(data.class_names), list(data.attribute_names)
    x = image.image[None].to(dev, dtype)
    with torch.no_grad():
        clean = model(x, A)
    pred_train = int(clean["logits"][0, train_cls.to(dev)].argmax())
    cand_logits = clean["logits"][0, cand.to(dev)]
    numbers = dict(common, mode=mode, attribute=k, attribute_name=anames[k],
                   terms=[t for t in HAS_TERMS if t in terms], lambdas={t: lam[t] for t in HAS_TERMS})
    if mode == "has":
        pos = _label_position(image.label, train_cls)
        source = "true class" if pos is not None else "clean prediction among the training classes"
        y = torch.tensor([pos if pos is not None else pred_train], device=dev)
        cfg = HASConfig(steps=steps, step_size=alpha, eps=eps, **weights)
        gen = HAS(model, cfg, class_attributes=A[train_cls.to(dev)], seed=seed)
        adv = gen(x, y)
        numbers.update(has_label=names[int(train_cls[int(y)])], has_label_source=source,
                       has_config=cfg.to_dict(), trace=gen.stats()["trace"])
    else:
        pos = _label_position(image.label, cand)
        source = "true class" if pos is not None else f"clean prediction among the {candidates} classes"
        y = torch.tensor([pos if pos is not None else int(cand_logits.argmax())], device=dev)
        atk = PGD(BindClasses(model, A[cand.to(dev)]), eps=eps, alpha=alpha, steps=steps,
                  random_start=steps > 0, seed=seed)
        adv = atk(x, y)
        numbers.update(attack_label=names[int(cand[int(y)])], attack_label_source=source,
                       attack=f"PGD-{steps} (CE over the {candidates} classes, random start)")
    with torch.no_grad():
        out = model(adv, A)
    # HAS terms (Eq. 3-7) at the clean and the perturbed image, over the training classes,
    # with the has-mode label (the clean prediction among the training classes otherwise)
    pos_tr = _label_position(image.label, train_cls)
    y_tr = torch.tensor([pos_tr if pos_tr is not None else pred_train], device=dev)
    tr_idx = train_cls.to(dev)
    cfg_terms = HASConfig(steps=0, **weights)
    term_rows = {}
    for tag, o in (("clean", clean), ("adv", out)):
        sub = dict(o, logits=o["logits"][:, tr_idx])
        t = has_terms(sub, y_tr, clean["features"])
        term_rows[tag] = {**{n: float(v[0]) for n, v in t.items()}, "has": float(has_objective(t, cfg_terms)[0])}
    att_c, att_a = clean["attention"][0, k].float().cpu(), out["attention"][0, k].float().cpu()
    attr_c, attr_a = clean["attr"][0].float().cpu(), out["attr"][0].float().cpu()
    sc_c, sc_a = cand_logits.float().cpu(), out["logits"][0, cand.to(dev)].float().cpu()
    numbers.update(
        _delta_numbers(image.image, adv[0].float().cpu()),
        has_terms=term_rows,
        attr_selected={"clean": float(attr_c[k]), "adv": float(attr_a[k]),
                       "local_clean": float(clean["attr_local"][0, k]), "local_adv": float(out["attr_local"][0, k])},
        attention_mean={"clean": float(att_c.mean()), "adv": float(att_a.mean())},
        attr_topk={"clean": _topk(attr_c, anames, top_k), "adv": _topk(attr_a, anames, top_k)},
        attr_scores={"names": anames, "clean": attr_c.tolist(), "adv": attr_a.tolist()},
        attr_changed=(attr_a - attr_c).abs().max().item(),
        class_scores={"names": [names[int(c)] for c in cand], "index": cand.tolist(),
                      "clean": sc_c.tolist(), "adv": sc_a.tolist(),
                      "prob_clean": sc_c.softmax(0).tolist(), "prob_adv": sc_a.softmax(0).tolist()},
        pred_clean=names[int(cand[int(sc_c.argmax())])], pred_adv=names[int(cand[int(sc_a.argmax())])],
        pred_clean_index=int(cand[int(sc_c.argmax())]), pred_adv_index=int(cand[int(sc_a.argmax())]),
        class_topk={"clean": _topk(sc_c, names, top_k, cand), "adv": _topk(sc_a, names, top_k, cand)},
    )
    if image.part_masks is not None and "attribute_part" in data.meta:
        p = int(data.meta["attribute_part"][k])
        mask = image.part_masks[p]
        if mask.any():
            numbers["attention_in_part"] = {"part": (data.meta.get("part_names") or ["head", "body"])[p],
                                            "clean": _part_share(att_c, mask), "adv": _part_share(att_a, mask),
                                            "uniform": float(mask.float().mean())}
    return View("apn", handle.name, image.image.clone(), adv[0].float().cpu(), image.caption, att_c, att_a, numbers)


def _laat_view(handle, image, eps, steps, alpha, candidates, top_k, seed, common) -> View:
    data, model = handle.data, handle.model
    dev = handle.device
    cand = _candidates(data, candidates)
    names = list(data.class_names)
    head = AnchorHead(model, handle.anchors[cand], tau=1.0).to(dev)  # τ = 1: the logits are the cosines
    x = image.image[None].to(dev, next(model.parameters()).dtype)
    with torch.no_grad():
        cos_c = head(x)["logits"][0].float()
    pos = _label_position(image.label, cand)
    source = "true class" if pos is not None else f"clean prediction among the {candidates} classes"
    y = torch.tensor([pos if pos is not None else int(cos_c.argmax())], device=dev)
    # PGD on the A-CE at the run's temperature (LAAT Eq. 3/8); cos/τ has the same argmax as cos
    atk_head = AnchorHead(model, handle.anchors[cand], tau=handle.tau).to(dev)
    adv = PGD(atk_head, eps=eps, alpha=alpha, steps=steps, random_start=steps > 0, seed=seed)(x, y)
    with torch.no_grad():
        cos_a = head(adv)["logits"][0].float()
    cos_c, cos_a = cos_c.cpu(), cos_a.cpu()
    numbers = dict(common, mode="attack", attack=f"PGD-{steps} (A-CE over the {candidates} anchors, τ = "
                                                 f"{handle.tau:g}, random start)",
                   attack_label=names[int(cand[int(y)])], attack_label_source=source, tau=handle.tau)
    numbers.update(
        _delta_numbers(image.image, adv[0].float().cpu()),
        anchor_scores={"names": [names[int(c)] for c in cand], "index": cand.tolist(),
                       "clean": cos_c.tolist(), "adv": cos_a.tolist()},
        pred_clean=names[int(cand[int(cos_c.argmax())])], pred_adv=names[int(cand[int(cos_a.argmax())])],
        pred_clean_index=int(cand[int(cos_c.argmax())]), pred_adv_index=int(cand[int(cos_a.argmax())]),
        class_topk={"clean": _topk(cos_c, names, top_k, cand), "adv": _topk(cos_a, names, top_k, cand)},
    )
    return View("laat", handle.name, image.image.clone(), adv[0].float().cpu(), image.caption, None, None, numbers)


def save_results(views: dict[str, View], path, extra: dict | None = None) -> dict:
    """Write ``{"views": {name: view.to_dict()}, **extra}`` to ``path`` (atomic JSON); return it."""
    out = {**(extra or {}), "views": {k: v.to_dict() for k, v in views.items()}}
    atomic_write_json(out, path)
    return json.loads(json.dumps(out, default=str))

