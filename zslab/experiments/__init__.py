"""Experiment drivers behind the paper-figure notebooks (the notebooks stay thin).

Real data sets are found through ``$ZSLAB_DATA`` only (:func:`data_root`, :mod:`zslab.experiments.paths`);
relative output and cache folders resolve against the project folder (:func:`work_path`,
:func:`work_root`: ``$ZSLAB_WORKDIR``, else the zslab checkout, else the working directory), so a
notebook writes into the repository's ``runs/`` whether its kernel runs in ``notebooks/`` or not.
"""
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
from zslab.experiments.paths import WORKDIR_ENV, data_root, work_path, work_root

__all__ = ["METRICS", "STUDY_PRESETS", "SWEEPS", "WORKDIR_ENV", "data_root", "work_path", "work_root",
           "attribute_groups", "augment_examples", "augmentation_configs", "config_key", "feature_trajectory",
           "load_study_data", "perturbation_parts", "run_study", "semantic_distortion", "study_config",
           "summarize", "sweep_configs", "table2_configs"]
