"""Figures. Every function returns a matplotlib Figure (tests check them directly)."""
from zslab.viz import anchor_plots  # LAAT anchor figures: viz.anchor_plots.expansion_sphere, ...
from zslab.viz import laat_plots  # LAAT training figures: viz.laat_plots.anchor_curves, ...
from zslab.viz.has_plots import (
    attention_comparison,
    attribute_prediction_panel,
    delta_bars,
    distortion_heatmap,
    drift_curve,
    feature_drift_tsne,
    perturbation_panel,
    seed_spread,
    sensitivity_curves,
    summary_table,
)
from zslab.viz.plots import attention_maps, image_gallery, learning_curves, results_table
from zslab.viz.tsne import tsne

__all__ = ["attention_maps", "image_gallery", "learning_curves", "results_table", "attention_comparison",
           "attribute_prediction_panel", "delta_bars", "distortion_heatmap", "drift_curve", "feature_drift_tsne",
           "perturbation_panel", "seed_spread", "sensitivity_curves", "summary_table", "tsne", "anchor_plots", "laat_plots"]
