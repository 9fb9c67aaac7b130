"""One training engine; methods plug in as strategies."""
from zslab.train.config import PRESETS, make_config
from zslab.train.engine import Trainer, load_run, train

__all__ = ["PRESETS", "make_config", "Trainer", "train", "load_run"]
