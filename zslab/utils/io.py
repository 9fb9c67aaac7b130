"""Atomic file writes and safe loading: nothing half-written is ever left behind, and nothing
loaded from disk can run code.

Writes go to a temporary file beside the target, are flushed and fsync'ed, then renamed over it
(:func:`atomic_torch_save`, :func:`atomic_write_json`). A failure while writing (disk full, quota,
read-only file system, permission) removes the temporary file, leaves the previous complete file
as it was and raises :class:`WriteError`: a one-line :class:`~zslab.ZSLabError` naming the file,
the cause and the fix, which is also an :class:`OSError` (code that skips optional writes such as
caches on ``OSError`` keeps doing so).

Loads of torch files go through :func:`safe_torch_load` (``torch.load(..., weights_only=True)``):
tensors and plain data (dicts, lists, tuples, str, numbers, None) only. A file that carries
anything else (a pickled object, a function to call, e.g. an ``os.system`` payload) is refused
with :class:`UntrustedFileError` before any of it runs; a truncated or corrupt file gives a
different message. :func:`safe_pickle_load` does the same for plain pickle files (datasets
distributed as pickles), allowing numpy arrays on request.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
import secrets
import shutil
import stat
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zslab import ZSLabError


class WriteError(ZSLabError, OSError):
    """Writing a file failed (disk full, read-only, permission...); the previous file is intact.

    A :class:`~zslab.ZSLabError` (one line: file, cause, fix) and an :class:`OSError` with the
    original ``errno``."""

    def __str__(self) -> str:  # the message, not OSError's "[Errno N] strerror: filename"
        return str(self.args[0]) if self.args else ""


class UntrustedFileError(ZSLabError):
    """A file holds objects other than tensors and plain data; it was not loaded."""


# ---------------------------------------------------------------------------------------- writing
def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    for p in (path, *path.parents):
        if os.path.lexists(p):
            return p
    return Path(path.anchor or "/")


def _fix_for(err: int | None, where: Path) -> str:
    if err in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = "your disk quota" if err == getattr(errno, "EDQUOT", -1) else "space"
        return f"free {what} on the disk holding {where} or choose another --out"
    if err == errno.EROFS:
        return f"{where} is on a read-only file system: choose another --out"
    if err in (errno.EACCES, errno.EPERM):
        return f"you may not write into {where}: fix its permissions or choose another --out"
    return f"check the disk holding {where} or choose another --out"


def write_error(path: str | os.PathLike, e: OSError) -> WriteError:
    """The one-line :class:`WriteError` for an ``OSError`` raised while writing ``path``."""
    path = Path(path)
    cause = e.strerror or str(e) or type(e).__name__
    if e.errno is not None and e.errno in errno.errorcode:
        cause = f"{cause} [{errno.errorcode[e.errno]}]"
    err = WriteError(f"could not write {path}: {cause}; {_fix_for(e.errno, path.parent)} "
                     f"(any previous {path.name} is unchanged)".replace("\n", " "))
    err.errno, err.strerror, err.filename = e.errno, e.strerror, str(path)
    return err


def _os_error_in(e: BaseException) -> OSError | None:
    """``e`` if it is an OSError, else the OSError it was raised from or while handling: torch.save
    turns a failing write into a RuntimeError of its zip writer raised during the OSError."""
    for _ in range(4):
        if isinstance(e, OSError):
            return e
        if not isinstance(e, Exception):
            return None
        e = e.__cause__ or e.__context__
    return None


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
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _open_temp(path)
        try:
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:  # replacing a file keeps its mode, as writing it in place would
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, ZSLabError):
            raise
        os_err = _os_error_in(e)
        if os_err is not None:
            raise write_error(path, os_err) from None
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``.

    Raises :class:`WriteError` (the previous file intact, no temporary file left) when the write fails."""
    _atomic(Path(path), lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """JSON of ``obj`` written atomically; :class:`WriteError` as :func:`atomic_torch_save`."""
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


def to_plain(obj: Any) -> Any:
    """``obj`` with what ``weights_only`` loading refuses turned into what it accepts, recursively:
    numpy scalars into Python numbers, numpy arrays into tensors, paths into strings, dict and
    list subclasses (e.g. a config object that is a dict) into plain dicts and lists (an
    ``OrderedDict`` stays one), named tuples into tuples, frozensets into sets. Tensors and plain
    data are returned as they are. Meant for the non-tensor parts of a checkpoint (histories,
    configs, strategy state); a module's ``state_dict`` is already plain and is saved as it is."""
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
        return obj.item()
    if obj is None or isinstance(obj, (torch.Tensor, bool, int, float, str, bytes, complex)):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, OrderedDict):
        return OrderedDict((to_plain(k), to_plain(v)) for k, v in obj.items())
    if isinstance(obj, Mapping):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return {to_plain(v) for v in obj}
    return obj


# ---------------------------------------------------------------------------------------- loading
_UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
# torch's weights-only unpickler: what it says of a file that asks for an object to be imported,
# built or called (as opposed to a malformed pickle stream: "Unsupported operand", "String is too long")
_CARRIES_OBJECTS = re.compile(r"GLOBAL |Trying to |Can only (create|build)|persistent_load|must be imported")


def _refusal_reason(message: str) -> str:
    """What torch's weights-only unpickler objected to, in a few words."""
    m = _UNSAFE_GLOBAL.search(message)
    if m:
        return f"it references {m.group(1)}"
    m = re.search(r"WeightsUnpickler error:\s*(.+)", message)
    inner = m.group(1) if m else ""
    if not inner.strip():  # the reason is on the next non-empty line
        after = message.split("WeightsUnpickler error:", 1)[-1]
        inner = next((ln for ln in after.splitlines() if ln.strip()), "")
    return inner.strip().rstrip(".")[:160] or "refused by the safe loader"


def safe_torch_load(path: str | os.PathLike, map_location="cpu", *, what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors.

    :class:`UntrustedFileError` when the file carries objects other than tensors and plain data
    (nothing of it runs), :class:`~zslab.ZSLabError` when it is missing, unreadable, truncated or
    corrupt. ``what`` names the file in the messages ("checkpoint", "cache file", ...)."""
    path = Path(path)
    if not path.is_file():
        raise ZSLabError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if _CARRIES_OBJECTS.search(msg):
            raise UntrustedFileError(
                f"{what} {path} carries objects other than tensors and plain data ({_refusal_reason(msg)}); "
                f"it was not loaded: treat it as untrusted and delete it unless you know where it came from"
            ) from None
        raise ZSLabError(f"{what} {path} is corrupt or was not written by torch.save (the safe loader refused "
                         f"it: {_refusal_reason(msg)}); it was not loaded") from None
    except OSError as e:
        raise ZSLabError(f"cannot read {what} {path}: {e.strerror or _one_line(e)}") from None
    except Exception as e:  # truncated, corrupt, not a torch file
        raise ZSLabError(f"{what} {path} is corrupt or truncated ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    if len(text) > 120 and ". " in text:  # the first sentence of a long explanation
        text = text.split(". ", 1)[0]
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


_NUMPY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype"),
                  ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                  ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                  ("_codecs", "encode")}  # protocol-2 pickles of arrays store their bytes as latin-1 text
_PLAIN_GLOBALS = {("builtins", n) for n in ("set", "frozenset", "bytearray", "complex")} | \
    {("collections", "OrderedDict")}


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: set = _PLAIN_GLOBALS

    def find_class(self, module, name):
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def safe_pickle_load(file, *, allow_numpy: bool = False, encoding: str = "ASCII", what: str = "file") -> Any:
    """Unpickle plain data (and numpy arrays with ``allow_numpy``) from an open binary ``file``;
    :class:`UntrustedFileError` for any other object (nothing of it is constructed or called)."""
    class _Unpickler(_RestrictedUnpickler):
        allowed = _PLAIN_GLOBALS | (_NUMPY_GLOBALS if allow_numpy else set())

    name = getattr(file, "name", "<stream>")
    try:
        return _Unpickler(file, encoding=encoding).load()
    except pickle.UnpicklingError as e:
        if "is not allowed" in str(e):
            raise UntrustedFileError(
                f"{what} {name} carries objects other than {'plain data and arrays' if allow_numpy else 'plain data'} "
                f"({str(e).replace('global ', 'it references ').replace(' is not allowed', '')}); it was not "
                f"loaded: treat it as untrusted and delete it unless you know where it came from") from None
        raise ZSLabError(f"{what} {name} is corrupt ({_one_line(e)})") from None
    except OSError as e:
        raise ZSLabError(f"cannot read {what} {name}: {e.strerror or _one_line(e)}") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise ZSLabError(f"{what} {name} is corrupt or truncated ({_one_line(e)})") from None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a zslab checkpoint (tensors and plain data only: ``weights_only=True``), turning every
    failure into a one-line :class:`ZSLabError`; :class:`UntrustedFileError` for a file that
    carries code or other objects (it is refused before any of it runs)."""
    path = Path(path)
    if not path.is_file():
        raise ZSLabError(f"checkpoint not found: {path}")
    try:
        ckpt = safe_torch_load(path, map_location=map_location, what="checkpoint")
    except UntrustedFileError:
        raise
    except ZSLabError as e:
        raise ZSLabError(f"{e}; delete it and re-run, or resume from another run directory") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "zslab_version" not in ckpt:
        raise ZSLabError(f"checkpoint {path} is not a zslab checkpoint (missing 'model'/'zslab_version' keys)")
    return ckpt


# ------------------------------------------------------------------------------- output folders
def _probe_write(folder: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test.")
    os.close(fd)
    os.unlink(tmp)


def ensure_writable_dir(path: str | os.PathLike, create: bool = True) -> Path:
    """Check that files can be written into folder ``path``; returns it as a Path.

    ``create=True``: create it (and its parents) if needed, then try a write in it.
    ``create=False``: create nothing: if ``path`` exists it must be a writable folder, else its
    nearest existing parent must be a writable folder (so that ``path`` can be created later).
    Raises a one-line :class:`ZSLabError` ("... is not writable ...; choose another --out")."""
    path = Path(path)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            _probe_write(path)
        except OSError as e:
            raise ZSLabError(f"output directory {path} is not writable ({e.strerror}); choose another --out") from None
        return path
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ZSLabError(f"output directory {path} is not writable ({base} is a file, not a folder); "
                         f"choose another --out")
    try:
        _probe_write(base)
    except OSError as e:
        where = "" if base == Path(os.path.abspath(path)) else f" (its parent {base} does not accept new files)"
        raise ZSLabError(f"output directory {path} is not writable{where} ({e.strerror}); "
                         f"choose another --out") from None
    return path


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def check_free_space(path: str | os.PathLike, need_bytes: int) -> int:
    """Raise a one-line :class:`ZSLabError` when the file system that holds ``path`` (or would
    hold it: its nearest existing parent) has fewer than ``need_bytes`` free; returns the free bytes."""
    base = _nearest_existing(Path(path))
    if not base.is_dir():
        base = base.parent
    try:
        free = shutil.disk_usage(base).free
    except OSError as e:
        raise ZSLabError(f"cannot tell the free space on the disk holding {path} ({e.strerror})") from None
    if free < need_bytes:
        raise ZSLabError(f"not enough free space for {path}: {_size(need_bytes)} ({int(need_bytes)} bytes) needed, "
                         f"{_size(free)} ({free} bytes) free on the disk holding {base}; free space there "
                         f"or choose another --out")
    return free
