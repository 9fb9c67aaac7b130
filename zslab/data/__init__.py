"""Datasets. ``load_dataset(name, **options)`` is the single entry point used by training.

* ``shapes`` — the embedded generated dataset (options: :class:`zslab.data.shapes.ShapesConfig` fields);
* ``cub``, ``awa1``, ``awa2``, ``sun``, ``apy`` — real benchmarks in the xlsa17 proposed-split
  format (options: ``root=`` image folder, ``split_dir=`` with ``att_splits.mat``, ``image_size=``,
  see :func:`zslab.data.xlsa17.load_xlsa17`);
* ``folder`` — class-named image folders ``root/{train,test}/<class>/`` with ``novel=`` classes held
  out (:func:`zslab.data.folder.load_folder`; e.g. the real CIFAR-10 folders);
* ``cifar-fs`` — CIFAR-FS 64/16/20 on CIFAR-100 (:func:`zslab.data.cifarfs.load_cifarfs`);
* ``miniimagenet`` — MiniImageNet 64/16/20 (:func:`zslab.data.miniimagenet.load_miniimagenet`).

The last three are text-anchor (LAAT) datasets: ``class_attributes`` is None.
"""
from __future__ import annotations

from zslab import ZSLabError
from zslab.data.base import SPLITS, TensorImageDataset, ZSLData

XLSA17_NAMES = ("cub", "awa1", "awa2", "sun", "apy")
TEXT_DATASETS = ("folder", "cifar-fs", "miniimagenet")
DATASETS = ("shapes",) + XLSA17_NAMES + TEXT_DATASETS
_TEXT_ALIASES = {"folder": "folder", "cifar-fs": "cifar-fs", "cifarfs": "cifar-fs", "cifar_fs": "cifar-fs",
                 "miniimagenet": "miniimagenet", "mini-imagenet": "miniimagenet", "mini_imagenet": "miniimagenet"}


def load_dataset(name: str, **options) -> ZSLData:
    """Build or load a dataset by name; ``options`` are dataset-specific."""
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
        if key == "folder":
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


__all__ = ["SPLITS", "TensorImageDataset", "ZSLData", "load_dataset", "DATASETS"]
