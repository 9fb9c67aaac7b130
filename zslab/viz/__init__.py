"""Figures. Every function returns a matplotlib Figure (tests check them directly)."""
from zslab.viz.plots import attention_maps, image_gallery, learning_curves, results_table

__all__ = ["attention_maps", "image_gallery", "learning_curves", "results_table"]
