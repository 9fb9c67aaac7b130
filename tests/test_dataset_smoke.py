"""The ``smoke`` preset end to end on a generated stand-in of every dataset format.

For each dataset the ``zslab train`` command accepts, a tiny fixture of its on-disk format is
written (:mod:`zslab.data.fixtures`) and

    zslab train METHOD --dataset NAME --preset smoke --out RUN <the fixture's options> \\
        --set epochs=1 --set progress=false

runs to the end: APN on the attribute datasets (shapes, cub, awa1, awa2, sun, apy), LAAT on
the text-anchor ones (folder, cifar10, cifar-fs, miniimagenet). The smoke preset is used as is,
with no size override beyond the options the fixture returns: where its LAAT episodes take
``eval.n_query`` = 10 images of each novel class, the fixture is written with 10 or more, as a
user's real data would have. LAAT's text anchors come from the offline ``minilm`` encoder.

Each run takes seconds on one CPU thread; most of a LAAT run is the smoke preset's test-time
PGD-20 on 20 attacked episodes (``cifar-fs``: 5-way x 10 queries at 32 px, the slowest).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from zslab.cli import main
from zslab.data.fixtures import cli_overrides, write_fixture

ATTRIBUTE = ("shapes", "cub", "awa1", "awa2", "sun", "apy")
TEXT = ("folder", "cifar10", "cifar-fs", "miniimagenet")
SMOKE_N_QUERY = 10  # the smoke preset's eval.n_query for LAAT

# fixture options: only per-class counts (10 test images of each novel class for LAAT's episodes)
FIXTURE_OPTIONS = {
    "folder": {"per_class_test": SMOKE_N_QUERY},
    "cifar10": {"per_class_test": SMOKE_N_QUERY},
    # the novel classes' test_unseen images are all their CIFAR-100 train + test rows
    "cifar-fs": {"per_class_train": 8, "per_class_test": 2},
    "miniimagenet": {"per_class": SMOKE_N_QUERY},
}


def _method(dataset: str) -> str:
    return "apn" if dataset in ATTRIBUTE else "laat"


def _train(argv: list[str], capsys) -> tuple[int, str, float]:
    from conftest import limit_threads

    t0 = time.perf_counter()
    with limit_threads(1):
        rc = main(argv)
    out = capsys.readouterr()
    return rc, out.err, time.perf_counter() - t0


@pytest.mark.parametrize("dataset", ATTRIBUTE + TEXT)
def test_smoke_preset_runs_on_every_format(dataset, tmp_path, capsys):
    kw = write_fixture(dataset, tmp_path / "data", **FIXTURE_OPTIONS.get(dataset, {}))
    run = tmp_path / "run"
    method = _method(dataset)
    argv = ["train", method, "--dataset", dataset, "--preset", "smoke", "--out", str(run),
            "--set", "epochs=1", "--set", "progress=false"]
    for item in cli_overrides(kw):
        argv += ["--set", item]
    rc, err, seconds = _train(argv, capsys)
    assert rc == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    final = metrics["final"]
    if method == "apn":
        for k in ("zsl_t1", "gzsl_h"):
            assert 0.0 <= final[k] <= 1.0, (k, final[k])
    else:
        assert 0.0 <= final["zs_clean"] <= 1.0, final
        assert final["zs_n_way"] >= 2 and final["zs_episodes"] >= 1, final
    assert final["epochs"] == 1 and final["best_epoch"] == 1
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.json", "best.pt", "last.pt"}
    stored = json.loads((run / "config.json").read_text())
    assert stored["config"]["run"] == {**stored["config"]["run"], "method": method, "dataset": dataset,
                                       "preset": "smoke"}
    print(f"{dataset}: {seconds:.1f} s")


def test_cifar10_fixture_has_cifar10_classes(tmp_path):
    """The cifar10 stand-in is CIFAR-10's class folders; the dataset holds out cat, dog, ship."""
    from zslab.data import load_dataset

    kw = write_fixture("cifar10", tmp_path, per_class_test=SMOKE_N_QUERY)
    assert set(kw) == {"root"}
    assert sorted(p.name for p in (Path(kw["root"]) / "train").iterdir()) == [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with pytest.warns(UserWarning):  # the automatic validation classes are announced
        data = load_dataset("cifar10", **kw)
    assert [data.class_names[i] for i in data.unseen_classes] == ["cat", "dog", "ship"]


def test_eval_of_a_laat_run_on_a_named_device(tmp_path, capsys):
    """``zslab eval --device cpu`` re-evaluates a LAAT run (a folder stand-in, small evaluation)."""
    kw = write_fixture("folder", tmp_path / "data", per_class_test=4)
    run = tmp_path / "run"
    small_eval = ["eval.n_query=4", "eval.episodes=4", "eval.episodes_attacked=1", "eval.gzsl_per_class=2",
                  "eval.pgd_steps=1"]
    argv = ["train", "laat", "--dataset", "folder", "--preset", "smoke", "--out", str(run)]
    for item in ["epochs=1", "progress=false"] + small_eval + cli_overrides(kw):
        argv += ["--set", item]
    rc, err, _ = _train(argv, capsys)
    assert rc == 0, err
    rc, err, _ = _train(["eval", str(run), "--device", "cpu"], capsys)
    assert rc == 0, err


@pytest.mark.parametrize("dataset,options", [("shapes", {}), ("folder", {}), ("cub", {}), ("apy", {}),
                                             ("miniimagenet", {"layout": "csv"}), ("cifar-fs", {"layout": "r2d2"})])
def test_check_image_files_accepts_every_fixture(dataset, options, tmp_path):
    """``ZSLData.check_image_files`` reads every image header of a good dataset (none for the
    in-memory ``shapes``) and names an unreadable file."""
    import warnings

    from zslab import ZSLabError
    from zslab.data import load_dataset

    kw = write_fixture(dataset, tmp_path, **options)
    opts = {"train_per_class": 2, "val_seen_per_class": 1, "test_seen_per_class": 1, "unseen_per_class": 1,
            "image_size": 16} if dataset == "shapes" else kw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(dataset, **opts)
    paths = sorted({p for s in data.splits.values() for p in getattr(s, "paths", [])})
    assert data.check_image_files() == len(paths)
    if paths:
        Path(paths[-1]).write_bytes(b"not an image")
        with pytest.raises(ZSLabError, match=f"(?s)1 of {len(paths)} image files.*{Path(paths[-1]).name}"):
            data.check_image_files()
