"""Atomic file writes and safe loading: nothing half-written is ever left behind."""
from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch

from zslab import ZSLabError


def _open_temp(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, created with mode 0666 so that the kernel applies
    the user's umask, as a plain ``open()`` would (``tempfile.mkstemp`` makes it 0600)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise ZSLabError(f"could not create a temporary file beside {path}")


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temp(path)
    try:
        f = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:  # replacing a file keeps its mode, as writing it in place would
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    _atomic(Path(path), lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    data = json.dumps(obj, indent=2, sort_keys=False, default=_json_default).encode()
    _atomic(Path(path), lambda f: f.write(data))


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a zslab checkpoint, turning every failure into a one-line :class:`ZSLabError`."""
    path = Path(path)
    if not path.is_file():
        raise ZSLabError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated, corrupt, not a torch file
        raise ZSLabError(f"checkpoint {path} is corrupt or not a zslab checkpoint ({type(e).__name__}: {e}); "
                         f"delete it and re-run, or resume from another run directory") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "zslab_version" not in ckpt:
        raise ZSLabError(f"checkpoint {path} is not a zslab checkpoint (missing 'model'/'zslab_version' keys)")
    return ckpt


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written into it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".write-test.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ZSLabError(f"output directory {path} is not writable ({e.strerror}); choose another --out") from None
    return path
