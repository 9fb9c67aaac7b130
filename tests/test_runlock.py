"""One process per run folder (zslab.utils.runlock.RunLock, held by zslab.train.train): a second
process is refused at once with the holder's pid, host, start time and command; the lock goes
with its holder (released on exit, dropped by the OS when the holder is killed); a refused
process leaves no run folder behind."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zslab.utils.runlock as runlock
from zslab import ZSLabError
from zslab.utils.runlock import RunLock, run_lock

TESTS = Path(__file__).resolve().parent

HOLDER = """
import sys
from zslab.utils.runlock import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""

# train() into argv[1]; the run waits in fit() until the file argv[2] exists, so that the other
# process asks for the folder while this one is surely training.
TRAINER = """
import pathlib, sys, time
sys.path.insert(0, %r)
from conftest import tiny_zsl_data
from zslab import ZSLabError
from zslab.train import engine, make_config, train
go = pathlib.Path(sys.argv[2])
fit = engine.Trainer.fit
def gated_fit(self):
    print("training", flush=True)
    while not go.exists():
        time.sleep(0.05)
    return fit(self)
engine.Trainer.fit = gated_fit
cfg = make_config("apn", "smoke", overrides={"epochs": 1, "progress": False, "batch_size": 16, "model.width": 8})
try:
    train(cfg, sys.argv[1], data=tiny_zsl_data())
except ZSLabError as e:
    print(e, file=sys.stderr)
    sys.exit(3)
print("done", flush=True)
""" % str(TESTS)


def start_holder(run_dir) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def stop(p: subprocess.Popen) -> None:
    with contextlib.suppress(Exception):
        p.stdin.close()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_second_process_is_refused_naming_the_first(tmp_path):
    run = tmp_path / "run"
    p = start_holder(run)
    try:
        with pytest.raises(ZSLabError) as e:
            RunLock(run).acquire()
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"run folder {run} is in use by pid {p.pid} on host {socket.gethostname()} since ")
        assert "(command: -c " in msg and msg.endswith("wait for it or choose another --out")
        assert not run.exists()  # the refused process created no run folder (nor did the holder)
        info = json.loads(RunLock(run).info_path.read_text())
        assert info["pid"] == p.pid and info["host"] == socket.gethostname() and info["command"][0] == "-c"
    finally:
        stop(p)
    assert p.returncode == 0
    lock = RunLock(run)
    assert not lock.info_path.exists()  # the holder record goes with the holder
    with lock:  # free again
        assert lock.held and lock.read_holder()["pid"] == os.getpid()
    assert not lock.held and not lock.info_path.exists()


def test_a_killed_holder_does_not_block(tmp_path):
    run = tmp_path / "run"
    p = start_holder(run)
    p.kill()
    p.wait()
    assert RunLock(run).info_path.exists()  # its stale record is still there...
    with RunLock(run) as lock:  # ...but the OS dropped its lock
        assert lock.read_holder()["pid"] == os.getpid()


def test_lock_lives_beside_the_run_folder(tmp_path):
    lock = RunLock(tmp_path / "run")
    assert lock.lock_path == tmp_path.resolve() / ".run.lock"
    assert lock.info_path == tmp_path.resolve() / ".run.lock.json"
    with lock:
        assert not (tmp_path / "run").exists()
    assert RunLock(tmp_path / "x" / ".." / "run").lock_path == lock.lock_path  # one folder, one lock
    with pytest.raises(ZSLabError, match="already locked"):
        with lock:
            lock.acquire()


def test_in_process_second_lock_is_refused(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(ZSLabError, match=f"in use by pid {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()


def test_failed_acquisition_removes_the_folders_it_created(tmp_path, monkeypatch):
    class Broken:
        def __init__(self, *a, **k):
            pass

        def acquire(self, *a, **k):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runlock, "FileLock", Broken)
    with pytest.raises(ZSLabError, match="cannot lock run folder .*Permission denied.*choose another --out"):
        RunLock(tmp_path / "a" / "b" / "run").acquire()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_is_refused_before_anything_is_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ZSLabError, match="not writable"):
        RunLock(tmp_path / "file" / "run").acquire()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_only_rank_0_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert isinstance(run_lock(tmp_path / "run"), contextlib.nullcontext)
    monkeypatch.setenv("RANK", "0")
    assert isinstance(run_lock(tmp_path / "run"), RunLock)
    monkeypatch.delenv("RANK")
    assert isinstance(run_lock(tmp_path / "run"), RunLock)


def test_train_is_refused_while_another_process_holds_the_folder(tmp_path, tiny_data):
    from zslab.train import make_config, train

    run = tmp_path / "run"
    cfg = make_config("apn", "smoke", overrides={"epochs": 1, "progress": False, "batch_size": 16, "model.width": 8})
    p = start_holder(run)
    try:
        with pytest.raises(ZSLabError, match=f"is in use by pid {p.pid}"):
            train(cfg, run, data=tiny_data)
        assert not run.exists()
    finally:
        stop(p)
    train(cfg, run, data=tiny_data)  # free again
    assert (run / "best.pt").is_file() and not RunLock(run).info_path.exists()


def test_two_concurrent_trains_into_one_folder_one_wins(tmp_path):
    run, go = tmp_path / "run", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", TRAINER, str(run), str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        deadline = time.monotonic() + 240
        while sum(p.poll() is not None for p in procs) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)  # the loser exits at once; the winner waits at the gate
        losers = [p for p in procs if p.poll() is not None]
        assert len(losers) == 1, "exactly one process must be refused while the other trains"
        (loser,), (winner,) = losers, [p for p in procs if p not in losers]
        out, err = loser.communicate()
        assert loser.returncode == 3, err
        assert f"run folder {run} is in use by pid {winner.pid}" in err
        go.touch()
        out, err = winner.communicate(timeout=240)
        assert winner.returncode == 0, err
        assert out.split() == ["training", "done"]
    finally:
        go.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert json.loads((run / "metrics.json").read_text())["final"]
    with RunLock(run):
        pass
