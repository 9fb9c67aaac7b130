"""One training engine; methods plug in as strategies."""
from zslab.train.config import make_config
from zslab.train.engine import Trainer, load_run, train

__all__ = ["make_config", "Trainer", "train", "load_run"]
