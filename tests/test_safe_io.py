"""Safe run folders (zslab.utils.io): files that carry code are refused before any of it runs,
writes that fail (disk full, read-only, permission) leave the previous file and no temporary
file, output folders are checked without being created, free space is checked."""
import errno
import io
import json
import os
import pathlib
import pickle
import shutil
import tempfile

import numpy as np
import pytest
import torch

from zslab import ZSLabError
from zslab.utils import io as zio
from zslab.utils.io import (UntrustedFileError, WriteError, atomic_torch_save, atomic_write_json, check_free_space,
                            ensure_writable_dir, load_checkpoint, safe_pickle_load, safe_torch_load, to_plain)

SHAPES = dict(image_size=16, n_train_classes=6, n_val_classes=3, n_unseen_classes=3, train_per_class=8,
              val_seen_per_class=2, test_seen_per_class=2, unseen_per_class=4)


class TouchPayload:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for ``os.system``."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class SystemPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def evil_checkpoint(path, marker, payload=TouchPayload, legacy=False):
    """A file with a checkpoint's keys whose unpickling would run ``payload``."""
    obj = {"zslab_version": "0.1.0", "model": {"w": torch.zeros(2)}, "epoch": 0, "x": payload(marker)}
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)


def one_line(e) -> str:
    text = str(e.value if hasattr(e, "value") else e)
    assert "\n" not in text and text
    return text


# ---------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("payload", [TouchPayload, SystemPayload])
@pytest.mark.parametrize("legacy", [False, True])
def test_payload_checkpoint_is_refused_and_never_runs(tmp_path, payload, legacy):
    marker = tmp_path / "marker"
    evil_checkpoint(tmp_path / "best.pt", marker, payload, legacy)
    with pytest.raises(UntrustedFileError) as e:
        load_checkpoint(tmp_path / "best.pt")
    msg = one_line(e)
    assert "carries objects other than tensors and plain data" in msg
    assert "not loaded" in msg and "untrusted" in msg and str(tmp_path / "best.pt") in msg
    assert isinstance(e.value, ZSLabError)
    assert not marker.exists()


def test_the_payload_is_real(tmp_path):
    """The same file loaded the unsafe way does run its payload: the test above is not vacuous."""
    marker = tmp_path / "marker"
    evil_checkpoint(tmp_path / "best.pt", marker)
    torch.load(tmp_path / "best.pt", weights_only=False)
    assert marker.exists()


def test_corrupt_is_told_apart_from_untrusted(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"zslab_version": "0.1.0", "model": {"w": torch.zeros(1000)}}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.pt"
    for content in (data[: len(data) // 2], b"not a checkpoint", b""):
        bad.write_bytes(content)
        with pytest.raises(ZSLabError) as e:
            load_checkpoint(bad)
        assert not isinstance(e.value, UntrustedFileError)
        msg = one_line(e)
        assert "corrupt" in msg and "untrusted" not in msg
    assert load_checkpoint(good)["model"]["w"].shape == (1000,)
    with pytest.raises(ZSLabError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_numpy_in_a_checkpoint_is_refused_but_to_plain_fixes_it(tmp_path):
    """numpy objects are not plain data for weights_only; the engine saves through to_plain."""
    obj = {"zslab_version": "0.1.0", "model": {}, "best": {"metric": np.float64(0.5)}, "a": np.arange(3)}
    torch.save(obj, tmp_path / "np.pt")
    with pytest.raises(UntrustedFileError, match="numpy"):
        load_checkpoint(tmp_path / "np.pt")
    torch.save(to_plain(obj), tmp_path / "plain.pt")
    ck = load_checkpoint(tmp_path / "plain.pt")
    assert ck["best"]["metric"] == 0.5 and type(ck["best"]["metric"]) is float
    assert torch.equal(ck["a"], torch.arange(3))


def test_to_plain():
    class Cfg(dict):
        pass

    out = to_plain({"c": Cfg(a=np.int64(3), p=pathlib.Path("/x")), "l": [np.float32(1.5), (np.bool_(True),)],
                    "t": torch.ones(2), "s": frozenset([1])})
    assert type(out["c"]) is dict and out["c"] == {"a": 3, "p": "/x"}
    assert out["l"] == [1.5, (True,)] and type(out["l"][0]) is float
    assert torch.equal(out["t"], torch.ones(2)) and out["s"] == {1}


def test_engine_checkpoints_load_with_weights_only(tmp_path, tiny_data):
    from zslab.train import make_config, train

    cfg = make_config("apn", "smoke", overrides={"epochs": 1, "progress": False, "batch_size": 16,
                                                 "model.width": 8})
    train(cfg, tmp_path / "run", data=tiny_data)
    for name in ("best.pt", "last.pt"):
        ck = torch.load(tmp_path / "run" / name, weights_only=True)
        assert type(ck["config"]) is dict and ck["history"]


def test_cli_eval_refuses_a_payload_best_pt(tmp_path, capsys):
    from zslab.cli import main
    from zslab.train import make_config, train

    run = tmp_path / "run"
    cfg = make_config("apn", "smoke", overrides={"epochs": 1, "progress": False, "data": SHAPES, "batch_size": 16})
    train(cfg, run)
    marker = tmp_path / "marker"
    evil_checkpoint(run / "best.pt", marker, SystemPayload)
    capsys.readouterr()
    assert main(["eval", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zslab: error:") and "\n" not in err
    assert "carries objects other than tensors and plain data" in err and "untrusted" in err
    assert not marker.exists()
    # resuming from a payload last.pt is refused the same way
    evil_checkpoint(run / "last.pt", marker)
    with pytest.raises(UntrustedFileError):
        train(cfg, run, resume=True)
    assert not marker.exists()


def test_safe_torch_load_for_caches(tmp_path):
    marker = tmp_path / "marker"
    evil_checkpoint(tmp_path / "cache.pt", marker)
    with pytest.raises(UntrustedFileError, match="cache file .* carries objects"):
        safe_torch_load(tmp_path / "cache.pt", what="cache file")
    assert not marker.exists()


def test_shapes_cache_with_a_payload_is_regenerated(tmp_path):
    from zslab.data.shapes import make_shapes

    small = dict(image_size=16, n_train_classes=6, n_val_classes=3, n_unseen_classes=3, train_per_class=2,
                 val_seen_per_class=1, test_seen_per_class=1, unseen_per_class=2, cache_dir=str(tmp_path / "c"))
    a = make_shapes(**small)
    (cache,) = (tmp_path / "c").rglob("*.pt")
    marker = tmp_path / "marker"
    evil_checkpoint(cache, marker)
    with pytest.warns(UserWarning, match="carries objects other than tensors"):
        b = make_shapes(**small)
    assert not marker.exists()
    assert torch.equal(a.splits["train"].images, b.splits["train"].images)
    safe_torch_load(cache)  # rewritten with plain data


def test_safe_pickle_load(tmp_path):
    data = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [1, 2], "names": [b"a", "b"]}
    for protocol in (2, 4, 5):
        blob = pickle.dumps(data, protocol=protocol)
        out = safe_pickle_load(io.BytesIO(blob), allow_numpy=True)
        assert np.array_equal(out["data"], data["data"]) and out["labels"] == [1, 2]
        with pytest.raises(UntrustedFileError, match="numpy"):  # arrays only when allowed
            safe_pickle_load(io.BytesIO(blob))
    assert safe_pickle_load(io.BytesIO(pickle.dumps({"a": [1, "x"]}))) == {"a": [1, "x"]}
    marker = tmp_path / "marker"
    for payload in (TouchPayload, SystemPayload):
        with pytest.raises(UntrustedFileError) as e:
            safe_pickle_load(io.BytesIO(pickle.dumps({"x": payload(marker)})), allow_numpy=True)
        assert "not loaded" in one_line(e)
    assert not marker.exists()
    with pytest.raises(ZSLabError, match="corrupt"):
        safe_pickle_load(io.BytesIO(pickle.dumps(data)[:20]), allow_numpy=True)


# ---------------------------------------------------------------------------------- writing
def _files(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir())


@pytest.mark.parametrize("code,fix", [(errno.ENOSPC, "free space"), (errno.EDQUOT, "free your disk quota")])
@pytest.mark.parametrize("kind", ["json", "torch"])
def test_disk_full_at_fsync_keeps_the_old_file(tmp_path, monkeypatch, code, fix, kind):
    path = tmp_path / ("m.json" if kind == "json" else "c.pt")
    save = (lambda o: atomic_write_json(o, path)) if kind == "json" else (lambda o: atomic_torch_save(o, path))
    load = (lambda: json.loads(path.read_text())) if kind == "json" else (lambda: torch.load(path, weights_only=True))
    save({"v": 1})

    def full(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError) as e:
        save({"v": 2})
    monkeypatch.undo()
    msg = one_line(e)
    assert str(path) in msg and os.strerror(code) in msg and fix in msg and "choose another --out" in msg
    assert isinstance(e.value, ZSLabError) and isinstance(e.value, OSError) and e.value.errno == code
    assert load() == {"v": 1}
    assert _files(tmp_path) == [path.name]


class _FullDisk(io.FileIO):
    """A file that takes ``room`` bytes, then fails like a full disk."""

    room = 64

    def write(self, b):
        n = len(memoryview(b))
        if n > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= n
        return super().write(b)


@pytest.mark.parametrize("kind", ["json", "torch"])
def test_disk_full_while_writing_keeps_the_old_file(tmp_path, monkeypatch, kind):
    path = tmp_path / "x"
    big = {"v": list(range(10_000))}
    if kind == "torch":
        atomic_torch_save({"v": torch.zeros(3)}, path)
    else:
        atomic_write_json({"v": [0, 0, 0]}, path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="rb": _FullDisk(fd, "wb"))
    with pytest.raises(WriteError) as e:
        if kind == "torch":
            atomic_torch_save({"v": torch.zeros(100_000)}, path)
        else:
            atomic_write_json(big, path)
    monkeypatch.undo()
    assert "No space left on device" in one_line(e) and "free space on the disk holding" in str(e.value)
    assert path.read_bytes() == before and _files(tmp_path) == ["x"]


@pytest.mark.parametrize("exc,words", [(OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
                                       (PermissionError(errno.EACCES, "Permission denied"), "fix its permissions")])
def test_read_only_or_forbidden_folder(tmp_path, monkeypatch, exc, words):
    """Tests run as root (chmod 0o555 does not stop root): the refusal is simulated at os.open."""
    path = tmp_path / "metrics.json"
    atomic_write_json({"v": 1}, path)
    real_open = os.open

    def refuse(p, *a, **k):
        if str(p).startswith(str(tmp_path)):
            raise exc
        return real_open(p, *a, **k)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(WriteError) as e:
        atomic_write_json({"v": 2}, path)
    monkeypatch.undo()
    msg = one_line(e)
    assert str(path) in msg and words in msg and "choose another --out" in msg
    assert json.loads(path.read_text()) == {"v": 1} and _files(tmp_path) == ["metrics.json"]


def test_a_failing_torch_save_raises_its_own_error(tmp_path):
    """Not an OSError (an unpicklable object): raised as it is, nothing left behind."""
    with pytest.raises(Exception) as e:
        atomic_torch_save({"f": lambda: 0}, tmp_path / "x.pt")
    assert not isinstance(e.value, ZSLabError)
    assert _files(tmp_path) == []


# ---------------------------------------------------------------------------------- folders
def test_ensure_writable_dir_without_creating(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b" / "run"
    assert ensure_writable_dir(target, create=False) == target
    assert _files(tmp_path) == []  # nothing created, no probe file left
    (tmp_path / "f").write_text("x")
    with pytest.raises(ZSLabError, match="not writable.*is a file.*choose another --out"):
        ensure_writable_dir(tmp_path / "f" / "run", create=False)

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ZSLabError) as e:
        ensure_writable_dir(target, create=False)
    assert "not writable" in one_line(e) and "Permission denied" in str(e.value)
    assert not (tmp_path / "a").exists()
    with pytest.raises(ZSLabError, match="not writable"):
        ensure_writable_dir(tmp_path, create=False)  # an existing folder is probed too
    monkeypatch.undo()
    assert ensure_writable_dir(target) == target and target.is_dir()  # create=True creates it


def test_check_free_space(tmp_path, monkeypatch):
    assert check_free_space(tmp_path / "not" / "yet", 1) > 0  # the nearest existing parent is asked
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(ZSLabError) as e:
        check_free_space(tmp_path / "run", 5 * 2**30)
    msg = one_line(e)
    assert "5.0 GiB" in msg and str(5 * 2**30) in msg and "1000 bytes" in msg and str(tmp_path) in msg
    assert "choose another --out" in msg
    assert check_free_space(tmp_path, 999) == 1000


def test_write_error_messages():
    assert zio.write_error("/r/x.pt", OSError(errno.EIO, "Input/output error")).errno == errno.EIO
    msg = str(zio.write_error("/r/x.pt", OSError(errno.ENOSPC, "No space left on device")))
    assert msg.startswith("could not write /r/x.pt: No space left on device [ENOSPC]; free space on the disk holding /r")
