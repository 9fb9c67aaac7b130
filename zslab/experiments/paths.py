"""Where the experiments find the real data sets, and where they write.

Data: one environment variable, no guessed folders.

``$ZSLAB_DATA`` names a folder that holds the data sets side by side, each under its usual name::

    $ZSLAB_DATA/cifar10/{train,test}/<class>/*.png   (LAAT study, full preset)
    $ZSLAB_DATA/xlsa17/{AWA2,CUB,SUN}/att_splits.mat (attribute cosines of notebook 32)
    $ZSLAB_DATA/clip_text_anchors/*.npy, *_classes.txt (the LAAT release's CLIP text features)

``$ZSLAB_SHARED_DATA`` is still read as an older spelling of the same variable. Without either
variable there is no default: :func:`data_root` returns ``None`` and each caller either skips the
real-data part with a note or stops with a message that says to set ``ZSLAB_DATA`` or to pass
``data_root=...`` (every experiment function that reads real data takes one).

Outputs: a notebook's kernel runs in ``notebooks/`` (JupyterLab, papermill, nbval), ``make demo``
and the command line in the repository root; both must write into the same ``runs/``. Every
output or cache folder an experiment driver takes (``out_dir``, ``cache_dir``, ...) and every
notebook's ``out_dir`` therefore goes through :func:`work_path`: an absolute path is kept, a
relative one is taken under :func:`work_root`, the *project folder*:

1. ``$ZSLAB_WORKDIR`` when set (``~`` expanded, made absolute);
2. else the nearest of the working directory and its parents that is a zslab checkout (holds a
   ``pyproject.toml`` whose ``[project] name`` is ``zslab``), so ``notebooks/`` resolves to the
   repository root;
3. else the working directory.

So ``out_dir = "runs/quickstart"`` lands in ``<repo>/runs/quickstart`` whether the kernel runs in
``<repo>`` or ``<repo>/notebooks``. The command line (``zslab train --out``, ...) keeps ordinary
paths relative to the working directory.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package, when installed
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

__all__ = ["DATA_ENV", "DATA_ENV_ALIASES", "WORKDIR_ENV", "data_root", "missing_data_hint", "work_path",
           "work_root"]

#: the environment variable naming the folder of data sets
DATA_ENV = "ZSLAB_DATA"
#: older spellings, read when :data:`DATA_ENV` is unset
DATA_ENV_ALIASES = ("ZSLAB_SHARED_DATA",)
#: the environment variable naming the project folder that relative output paths resolve against
WORKDIR_ENV = "ZSLAB_WORKDIR"


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


def _is_checkout(folder: Path) -> bool:
    """Whether ``folder/pyproject.toml`` exists and names the project ``zslab`` (PEP 503 spelling).
    Without a TOML parser (Python 3.10 without ``tomli``) no folder is recognised."""
    if tomllib is None:
        return False
    try:
        with open(folder / "pyproject.toml", "rb") as f:
            project = tomllib.load(f).get("project")
    except (OSError, ValueError):  # unreadable, not UTF-8, not TOML (TOMLDecodeError is a ValueError)
        return False
    name = project.get("name") if isinstance(project, dict) else None
    return isinstance(name, str) and re.sub(r"[-_.]+", "-", name).lower() == "zslab"


def work_root() -> Path:
    """The project folder that relative output paths resolve against (absolute; see the module
    docstring): ``$ZSLAB_WORKDIR`` when set and non-empty (``~`` expanded; a relative value is
    taken from the working directory), else the nearest zslab checkout among the working directory
    and its parents, else the working directory. Nothing is created."""
    value = os.environ.get(WORKDIR_ENV, "").strip()
    if value:
        return Path(os.path.abspath(os.path.expanduser(value)))
    cwd = Path(os.path.abspath(os.getcwd()))
    for folder in (cwd, *cwd.parents):
        if _is_checkout(folder):
            return folder
    return cwd


def work_path(path: str | os.PathLike | None) -> Path | None:
    """``path`` as the experiments and notebooks use it: ``~`` expanded; an absolute path
    unchanged; a relative one under :func:`work_root`. ``None`` stays ``None`` (a caller's "use the
    default"), so optional folders can be passed straight through. Nothing is created."""
    if path is None:
        return None
    p = Path(os.path.expanduser(os.fspath(path)))
    return p if p.is_absolute() else work_root() / p
