"""One process per run folder: :class:`RunLock`.

``with RunLock(run_dir): ...`` holds an exclusive, non-blocking lock on a run folder for the
``with`` block (``zslab train`` holds it for the whole run, see :func:`zslab.train.engine.train`).
A second process that asks for the same folder is refused at once with a one-line
:class:`~zslab.ZSLabError` naming the holder::

    run folder runs/x is in use by pid 4242 on host gpu3 since 2025-01-31T10:02:11+01:00
    (command: zslab train apn --out runs/x); wait for it or choose another --out

Where the lock lives. The lock is the file ``.NAME.lock`` *beside* the run folder ``NAME`` (in
its parent), not inside it, so that

* taking the lock creates nothing inside ``--out``: a refused process leaves no run folder
  behind (had the lock lived in ``NAME/.lock``, taking it would create ``NAME`` first), and
  ``--out`` can be checked by the trainer before it is created;
* the lock survives deleting or re-creating the run folder while it is held.

Only when the parent does not accept new files but the run folder exists and does (a writable
folder inside a read-only one) does the lock go inside it, as ``NAME/.lock``. Missing parent
folders are created; when acquisition fails, those that this call created are removed again.

The lock is an OS file lock (``flock``, through the ``filelock`` package): the OS drops it when
the holding process dies, however it dies, so a killed run never blocks the next one. The lock
file itself stays (empty; removing it on release would let two later processes lock two
different files). Who holds the lock is written atomically to the JSON sidecar
``.NAME.lock.json`` (pid, host, start time, command, working folder), removed on release; a
stale sidecar left by a killed holder is overwritten by the next one.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from zslab import ZSLabError
from zslab.utils.io import atomic_write_json, ensure_writable_dir


class RunFolderBusyError(ZSLabError):
    """Another process holds the run folder's lock (the message names it)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


class RunLock:
    """Exclusive lock on run folder ``run_dir`` for this process (a context manager).

    :meth:`acquire` never waits: when another process holds the folder it raises
    :class:`~zslab.ZSLabError` naming that process. ``command`` (default ``sys.argv``) is what
    the holder record shows other processes.
    """

    def __init__(self, run_dir: str | os.PathLike, command: list[str] | None = None):
        self.run_dir = Path(run_dir)
        self.command = list(sys.argv if command is None else command)
        self._lock: FileLock | None = None
        self.lock_path, self.info_path = self._paths()

    def _paths(self) -> tuple[Path, Path]:
        full = Path(os.path.abspath(os.path.expanduser(self.run_dir)))
        try:
            full = full.resolve()  # two spellings of one folder (symlinks, "..") share one lock
        except OSError:
            pass
        inside = full / ".lock"
        if not full.name:  # the file system root
            return inside, inside.with_name(".lock.json")
        beside = full.parent / f".{full.name}.lock"
        if full.is_dir() and full.parent.is_dir() and not os.access(full.parent, os.W_OK) \
                and os.access(full, os.W_OK):
            return inside, inside.with_name(".lock.json")
        return beside, beside.with_name(beside.name + ".json")

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.is_locked

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> RunLock:
        if self.held:
            raise ZSLabError(f"run folder {self.run_dir} is already locked by this RunLock")
        ensure_writable_dir(self.run_dir, create=False)  # checks --out without creating it
        created = self._make_parents()
        lock = FileLock(str(self.lock_path), timeout=0)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self._remove(created)
            raise RunFolderBusyError(self._busy_message()) from None
        except OSError as e:
            self._remove(created)
            raise ZSLabError(f"cannot lock run folder {self.run_dir}: {self.lock_path} cannot be created "
                             f"({e.strerror or e}); choose another --out") from None
        self._lock = lock
        try:
            atomic_write_json(self.holder_info(), self.info_path)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        """Remove the holder record, then drop the lock (a no-op when not held)."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.info_path)
        finally:
            lock.release(force=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # ------------------------------------------------------------------ details
    def holder_info(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": self.command, "cwd": os.getcwd(), "run_dir": str(self.run_dir)}

    def read_holder(self) -> dict | None:
        """The holder record of the folder's current lock, or None when there is none (readable)."""
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _busy_message(self) -> str:
        # The holder writes its record right after taking the lock: give it a moment, and do not
        # name a dead process of this host (a killed holder's record, about to be overwritten).
        host = socket.gethostname()
        info = None
        for _ in range(20):
            info = self.read_holder()
            if info is not None and not (info.get("host") == host and isinstance(info.get("pid"), int)
                                         and not _pid_alive(info["pid"])):
                break
            time.sleep(0.05)
        if info is None:
            return (f"run folder {self.run_dir} is in use by another process (its holder record "
                    f"{self.info_path} is missing or unreadable); wait for it or choose another --out")
        command = info.get("command")
        if isinstance(command, list):
            command = shlex.join(str(c) for c in command)
        command = " ".join(str(command or "?").split())  # one line
        if len(command) > 200:
            command = command[:197] + "..."
        return (f"run folder {self.run_dir} is in use by pid {info.get('pid', '?')} on host "
                f"{info.get('host', '?')} since {info.get('since', '?')} (command: {command}); "
                f"wait for it or choose another --out")

    def _make_parents(self) -> list[Path]:
        """Create the lock's missing parent folders; returns those created, outermost first."""
        missing = []
        p = self.lock_path.parent
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        created = []
        try:
            for d in reversed(missing):
                d.mkdir(exist_ok=True)
                created.append(d)
        except OSError as e:
            self._remove(created)
            raise ZSLabError(f"output directory {self.run_dir} is not writable ({e.strerror}); "
                             f"choose another --out") from None
        return created

    @staticmethod
    def _remove(created: list[Path]) -> None:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty


def main_process() -> bool:
    """Whether this process is the one that holds run locks: rank 0 under torchrun (read from
    the ``RANK`` environment variable, set before the process group exists), always otherwise."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


def run_lock(run_dir: str | os.PathLike):
    """A :class:`RunLock` on ``run_dir`` in the main process, a no-op context on other ranks."""
    return RunLock(run_dir) if main_process() else contextlib.nullcontext()
