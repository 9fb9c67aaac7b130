"""Experiment drivers behind the paper-figure notebooks (the notebooks stay thin)."""
from zslab.experiments.has_study import (
    METRICS,
    STUDY_PRESETS,
    SWEEPS,
    attribute_groups,
    augment_examples,
    augmentation_configs,
    config_key,
    feature_trajectory,
    load_study_data,
    perturbation_parts,
    run_study,
    semantic_distortion,
    study_config,
    summarize,
    sweep_configs,
    table2_configs,
)

__all__ = ["METRICS", "STUDY_PRESETS", "SWEEPS", "attribute_groups", "augment_examples", "augmentation_configs", "config_key", "feature_trajectory",
           "load_study_data", "perturbation_parts", "run_study", "semantic_distortion", "study_config",
           "summarize", "sweep_configs", "table2_configs"]
