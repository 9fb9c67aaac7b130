"""Datasets. ``load_dataset(name, **options)`` is the single entry point used by training."""
from __future__ import annotations

from zslab import ZSLabError
from zslab.data.base import SPLITS, TensorImageDataset, ZSLData

DATASETS = ("shapes",)


def load_dataset(name: str, **options) -> ZSLData:
    """Build or load a dataset by name; ``options`` are dataset-specific (e.g. ShapesConfig fields)."""
    if name == "shapes":
        from zslab.data.shapes import make_shapes

        try:
            return make_shapes(**options)
        except (ValueError, TypeError) as e:
            raise ZSLabError(f"dataset 'shapes': {e}") from None
    raise ZSLabError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")


__all__ = ["SPLITS", "TensorImageDataset", "ZSLData", "load_dataset", "DATASETS"]
