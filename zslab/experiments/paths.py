"""Where the experiments find the real data sets: one environment variable, no guessed folders.

``$ZSLAB_DATA`` names a folder that holds the data sets side by side, each under its usual name::

    $ZSLAB_DATA/cifar10/{train,test}/<class>/*.png   (LAAT study, full preset)
    $ZSLAB_DATA/xlsa17/{AWA2,CUB,SUN}/att_splits.mat (attribute cosines of notebook 32)
    $ZSLAB_DATA/clip_text_anchors/*.npy, *_classes.txt (the LAAT release's CLIP text features)

``$ZSLAB_SHARED_DATA`` is still read as an older spelling of the same variable. Without either
variable there is no default: :func:`data_root` returns ``None`` and each caller either skips the
real-data part with a note or stops with a message that says to set ``ZSLAB_DATA`` or to pass
``data_root=...`` (every experiment function that reads real data takes one).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "DATA_ENV_ALIASES", "data_root", "missing_data_hint"]

#: the environment variable naming the folder of data sets
DATA_ENV = "ZSLAB_DATA"
#: older spellings, read when :data:`DATA_ENV` is unset
DATA_ENV_ALIASES = ("ZSLAB_SHARED_DATA",)


def data_root(name: str | None = None) -> Path | None:
    """``$ZSLAB_DATA/name`` (``$ZSLAB_DATA`` itself without ``name``), or ``None`` when the variable
    (and its alias ``$ZSLAB_SHARED_DATA``) is unset or empty.

    The path is returned whether or not it exists, so that a caller can name the folder it looked
    for; ``~`` is expanded.
    """
    for var in (DATA_ENV, *DATA_ENV_ALIASES):
        value = os.environ.get(var, "").strip()
        if value:
            root = Path(value).expanduser()
            return root / name if name else root
    return None


def missing_data_hint(name: str) -> str:
    """The sentence every "data not found" message ends with, for data set folder ``name``."""
    return f"set {DATA_ENV}=/path/to/data (a folder holding {name}/) or pass data_root=..."
