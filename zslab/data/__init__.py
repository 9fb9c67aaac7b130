"""Datasets. ``load_dataset(name, **options)`` is the single entry point used by training.

* ``shapes`` — the embedded generated dataset (options: :class:`zslab.data.shapes.ShapesConfig` fields);
* ``cub``, ``awa1``, ``awa2``, ``sun``, ``apy`` — real benchmarks in the xlsa17 proposed-split
  format (options: ``root=`` image folder, ``split_dir=`` with ``att_splits.mat``, ``image_size=``,
  see :func:`zslab.data.xlsa17.load_xlsa17`);
* ``cifar10`` — the CIFAR-10 class folders (``folder`` layout) with novel classes cat, dog, ship;
* ``folder`` — class-named image folders ``root/{train,test}/<class>/`` with ``novel=`` classes held
  out (:func:`zslab.data.folder.load_folder`; e.g. the real CIFAR-10 folders);
* ``cifar-fs`` — CIFAR-FS 64/16/20 on CIFAR-100 (:func:`zslab.data.cifarfs.load_cifarfs`);
* ``miniimagenet`` — MiniImageNet 64/16/20 (:func:`zslab.data.miniimagenet.load_miniimagenet`).

The last three are text-anchor (LAAT) datasets: ``class_attributes`` is None.

Every attribute dataset also takes ``attributes=`` (:data:`ATTRIBUTE_OPTIONS`): ``"raw"`` (default,
the loader's matrix unchanged) or ``"expanded"`` — the class attribute vectors replaced by LAAT's
anchor expansion (:func:`expand_class_attributes`), fitted on the training classes only.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from zslab import ZSLabError
from zslab.anchors import AnchorExpansion
from zslab.data.base import SPLITS, TensorImageDataset, ZSLData

XLSA17_NAMES = ("cub", "awa1", "awa2", "sun", "apy")
TEXT_DATASETS = ("folder", "cifar10", "cifar-fs", "miniimagenet")
DATASETS = ("shapes",) + XLSA17_NAMES + TEXT_DATASETS
_TEXT_ALIASES = {"folder": "folder", "cifar10": "cifar10", "cifar-10": "cifar10", "cifar-fs": "cifar-fs", "cifarfs": "cifar-fs", "cifar_fs": "cifar-fs",
                 "miniimagenet": "miniimagenet", "mini-imagenet": "miniimagenet", "mini_imagenet": "miniimagenet"}


ATTRIBUTE_OPTIONS = ("raw", "expanded")


def expand_class_attributes(data: ZSLData) -> ZSLData:
    """``data`` with its class attribute vectors expanded like LAAT's text anchors.

    LAAT Sec. 3.3 (high cosine between anchors) and Sec. 3.4 / Appendix C Alg. 1 (expansion), via
    :class:`zslab.anchors.AnchorExpansion`: the centre ``v`` and ``theta_0`` are fitted on the rows
    of ``data.train_classes`` only and the same map is applied to every class (validation and
    unseen classes included; LAAT Sec. 3.6), so nothing about held-out classes leaks into it.

    The new rows are unit-norm and may have negative entries (they are directions, not attribute
    strengths any more). APN/HAS train on them unchanged: the classifier gᵀVφ(y) and L_CLS (HAS
    Eq. 1/8) only take dot products, but L_LOC's regression target (Eq. 2) becomes a signed vector
    on the unit sphere (raw ``shapes`` rows have norm ≈ 2.4), so at the same ``lambda_loc`` the
    localisation term weighs less. Per-image attributes (``splits[s].extras["attributes"]``, e.g. the
    ``shapes`` dataset's) are left as they are: they describe the images, not the class
    prototypes. The splits are shared with ``data`` (not copied); ``meta["attributes"]`` records
    ``"expanded"`` with ``theta0_deg`` (degrees) and the fitted ``center``.
    """
    if data.class_attributes is None:
        raise ZSLabError(f"attributes='expanded': dataset '{data.name}' has no class attribute matrix "
                         f"(a text-anchor dataset); use attributes='raw' or an attribute dataset")
    A = data.class_attributes.detach().cpu().double()
    train = data.train_classes.long()
    exp = AnchorExpansion().fit(A[train], [data.class_names[i] for i in train.tolist()])
    new = torch.as_tensor(exp.transform(A, list(data.class_names))).to(data.class_attributes.dtype)
    meta = {**data.meta, "attributes": "expanded",
            "expansion": {"theta0_deg": math.degrees(exp.theta0_),
                          "center": [float(c) for c in exp.center_], "fit_classes": len(train)}}
    return dataclasses.replace(data, class_attributes=new, meta=meta)


def load_dataset(name: str, **options) -> ZSLData:
    """Build or load a dataset by name; ``options`` are dataset-specific, plus ``attributes``
    (``"raw"`` | ``"expanded"``, see :func:`expand_class_attributes`) for every attribute dataset."""
    attributes = options.pop("attributes", "raw")
    if attributes not in ATTRIBUTE_OPTIONS:
        raise ZSLabError(f"dataset option attributes={attributes!r} is unknown; choose one of "
                         f"{', '.join(ATTRIBUTE_OPTIONS)} (e.g. --set data.attributes=expanded)")
    data = _load_by_name(name, **options)
    return expand_class_attributes(data) if attributes == "expanded" else data


def _load_by_name(name: str, **options) -> ZSLData:
    # each branch imports its own loader: loading one format does not import every loader (and its
    # dependencies: scipy.io for xlsa17, torchvision for cifar-fs, the shapes renderer...)
    key = str(name).lower()
    if key == "shapes":
        from zslab.data.shapes import make_shapes

        try:
            return make_shapes(**options)
        except (ValueError, TypeError) as e:
            raise ZSLabError(f"dataset 'shapes': {e}") from None
    if key in XLSA17_NAMES:
        from zslab.data.xlsa17 import load_xlsa17

        if "root" not in options:
            raise ZSLabError(f"dataset '{name}' needs its image folder: pass --set data.root=/path/to/{key} "
                             f"(and data.split_dir=/path/to/xlsa17/{key.upper()} if att_splits.mat lives elsewhere)")
        try:
            return load_xlsa17(key.upper(), **options)
        except TypeError as e:
            raise ZSLabError(f"dataset '{name}': {e}") from None
    if key in _TEXT_ALIASES:
        key = _TEXT_ALIASES[key]
        if "root" not in options:
            raise ZSLabError(f"dataset '{key}' needs its data folder: pass --set data.root=/path/to/{key} "
                             f"(layout: see zslab.data.{key.replace('-', '')})")
        if key == "cifar10":  # the CIFAR-10 class folders: the folder loader under the name cifar10
            from zslab.data.folder import load_folder

            options.setdefault("name", "cifar10")
            options.setdefault("novel", "cat,dog,ship")
            loader = load_folder
        elif key == "folder":
            from zslab.data.folder import load_folder as loader
        elif key == "cifar-fs":
            from zslab.data.cifarfs import load_cifarfs as loader
        else:
            from zslab.data.miniimagenet import load_miniimagenet as loader
        try:
            return loader(**options)
        except TypeError as e:
            raise ZSLabError(f"dataset '{name}': {e}") from None
    raise ZSLabError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")


__all__ = ["SPLITS", "TensorImageDataset", "ZSLData", "load_dataset", "DATASETS", "ATTRIBUTE_OPTIONS",
           "expand_class_attributes"]
