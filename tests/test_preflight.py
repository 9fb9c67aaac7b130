"""Checks before any work (zslab.train.preflight, Trainer.__init__): a run that cannot work fails in
seconds and leaves no run folder; evaluation results survive a metrics.json that cannot be written."""
from __future__ import annotations

import json
import time
from collections import namedtuple

import pytest

from zslab import ZSLabError
from zslab.cli import main
from zslab.data.fixtures import cli_overrides, write_folder
from zslab.train import make_config, train

TINY = ["--set", "epochs=1", "--set", "progress=false", "--set", "model.width=4", "--set", "data.train_per_class=4",
        "--set", "data.unseen_per_class=6", "--set", "data.test_seen_per_class=2", "--set", "data.val_seen_per_class=2"]


def _sets(items):
    return [a for kv in items for a in ("--set", kv)]


@pytest.fixture(scope="module")
def folder3(tmp_path_factory):
    """Class folders with 8 classes, 3 of them novel (so 5-way episodes cannot be drawn)."""
    root = tmp_path_factory.mktemp("folder3")
    return write_folder(root, n_classes=8, per_class_train=12, per_class_test=12, n_novel=3)


def _refused(argv, capsys, out, needle):
    t0 = time.perf_counter()
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 and needle in err, err
    assert "Traceback" not in err
    assert not out.exists(), f"{out} was created by a refused run"
    assert time.perf_counter() - t0 < 30
    return err


def test_n_way_larger_than_the_novel_classes_fails_before_training(folder3, tmp_path, capsys):
    out = tmp_path / "run"
    err = _refused(["train", "laat", "--dataset", "folder", "--out", str(out), "--set", "eval.n_way=5"]
                   + _sets(cli_overrides(folder3)), capsys, out, "eval.n_way=5")
    assert "--set eval.n_way=3" in err


def test_n_query_larger_than_the_images_per_class_fails_before_training(folder3, tmp_path, capsys):
    out = tmp_path / "run"
    _refused(["train", "laat", "--dataset", "folder", "--out", str(out), "--set", "eval.n_query=50"]
             + _sets(cli_overrides(folder3)), capsys, out, "eval.n_query=50")


def test_empty_validation_classes_fail_before_training(folder3, tmp_path, capsys):
    out = tmp_path / "run"
    _refused(["train", "laat", "--dataset", "folder", "--out", str(out), "--set", "data.val_classes="]
             + _sets(cli_overrides(folder3)), capsys, out, "val_classes")


def test_auto_n_way_and_auto_validation_classes_train(folder3, tmp_path, capsys):
    """The smoke preset on a class split the recipes never saw: validation classes are held out
    automatically (announced), episodes take min(5, novel classes) = 3 classes."""
    out = tmp_path / "run"
    assert main(["train", "laat", "--dataset", "folder", "--out", str(out), "--set", "epochs=1",
                 "--set", "progress=false", "--set", "eval.n_query=4"] + _sets(cli_overrides(folder3))) == 0
    err = capsys.readouterr().err
    assert "data.val_classes=" in err and "3-way" in err
    final = json.loads((out / "metrics.json").read_text())["final"]
    assert final["zs_n_way"] == 3 if "zs_n_way" in final else True
    assert 0.0 <= final["zs_clean"] <= 1.0


def test_missing_data_root_and_wrong_layout_leave_no_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    _refused(["train", "laat", "--dataset", "folder", "--out", str(out), "--set", f"data.root={tmp_path}/nope",
              "--set", "data.novel=a,b"], capsys, out, "not found")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.jpg").write_bytes(b"")
    _refused(["train", "laat", "--dataset", "folder", "--out", str(out), "--set", f"data.root={flat}",
              "--set", "data.novel=a,b"], capsys, out, "train")
    _refused(["train", "apn", "--dataset", "cub", "--out", str(out)], capsys, out, "data.root")


def test_not_enough_free_space_is_refused_before_the_folder_exists(tmp_path, capsys, monkeypatch):
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    out = tmp_path / "run"
    _refused(["train", "apn", "--out", str(out)] + TINY, capsys, out, "not enough free space")


def test_output_under_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "run"
    _refused(["train", "apn", "--out", str(out)] + TINY, capsys, out, "not writable")


def test_eval_results_survive_an_unwritable_metrics_file(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "apn", "--out", str(run)] + TINY) == 0
    capsys.readouterr()
    before = (run / "metrics.json").read_bytes()
    import zslab.train.runs as runs
    from zslab.utils.io import WriteError

    def full_disk(obj, path):
        raise WriteError(f"cannot write {path}: no space left on device; free space or choose another --out")

    monkeypatch.setattr(runs, "atomic_write_json", full_disk)
    code = main(["eval", str(run), "--attacks", "fgsm", "--max-images", "10"])
    cap = capsys.readouterr()
    assert code == 2 and "not saved" in cap.err and "Traceback" not in cap.err
    printed = json.loads(cap.out)
    assert 0.0 <= printed["zsl_t1"] <= 1.0
    assert (run / "metrics.json").read_bytes() == before


def test_resume_of_a_finished_run_with_a_changed_config_is_refused_and_names_the_difference(tmp_path):
    cfg = make_config("apn", overrides=[a for a in TINY if a != "--set"])
    run = tmp_path / "run"
    train(cfg, run)
    cfg2 = make_config("apn", overrides=[a for a in TINY if a != "--set"] + ["lr=0.01"])
    with pytest.raises(ZSLabError, match=r"lr: 0.001 -> 0.01"):
        train(cfg2, run, resume=True)
    with pytest.raises(ZSLabError, match="already holds a run"):
        train(cfg, run)


@pytest.mark.parametrize("argv,needle", [
    (["--timeout", "-5"], "--timeout"), (["--timeout", "nan"], "--timeout"), (["--preset", "huge"], "--preset"),
    (["nonexistent_notebook"], "no notebook 'nonexistent_notebook'"),
])
def test_notebooks_run_checks_its_arguments_before_running(tmp_path, capsys, argv, needle):
    out = tmp_path / "report"
    code = main(["notebooks", "run", "--out", str(out)] + argv + ([] if argv[0].startswith("non") else ["00_quickstart"]))
    err = capsys.readouterr().err
    assert code == 2 and needle in err and not out.exists()
