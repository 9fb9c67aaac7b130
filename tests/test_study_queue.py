"""zslab.experiments.study_queue: parallel workers over the HAS study's runs, with claim files."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zslab import ZSLabError
from zslab.data import load_dataset
from zslab.experiments import has_study as hs
from zslab.experiments import study_queue as sq
from zslab.methods.has import TABLE2_ROWS
from zslab.augment import AUGMENTATIONS

TINY = {"epochs": 1, "model.width": 4, "data.n_train_classes": 6, "data.n_val_classes": 2,
        "data.n_unseen_classes": 3, "data.train_per_class": 4, "data.val_seen_per_class": 2,
        "data.test_seen_per_class": 2, "data.unseen_per_class": 3, "eval_batch_size": 64}


def test_queue_runs_order_and_shared_configs():
    runs = sq.queue_runs("full", ("augment", "table2"), seeds=[0, 1])
    # Table 3's "none" and Table 2's "baseline" are one config, trained once per seed
    per_seed = len(AUGMENTATIONS) + len(TABLE2_ROWS) - 1
    assert len(runs) == 2 * per_seed
    assert [r["config"]["seed"] for r in runs] == [0] * per_seed + [1] * per_seed
    names = [r["name"] for r in runs[:per_seed]]
    assert names[:len(AUGMENTATIONS)] == list(AUGMENTATIONS) and "baseline" not in names
    assert names[len(AUGMENTATIONS):] == [r for r in TABLE2_ROWS if r != "baseline"]
    # the configs are the notebooks' (same cache keys as has_study's own builders)
    nb = hs.augmentation_configs("full", names=["cutmix"], seeds=[1])[0]["config"]
    assert hs.config_key(nb) in {hs.config_key(r["config"]) for r in runs}
    over = sq.queue_runs("smoke", ("table2",), seeds=[0], overrides={"epochs": 1})
    assert {r["config"]["epochs"] for r in over} == {1}
    with pytest.raises(ZSLabError, match="unknown table"):
        sq.queue_runs("full", ("table4",))


def test_claim_is_exclusive_and_stale_claims_are_taken_over(tmp_path):
    rd = tmp_path / "apn-seed0-abc"
    assert sq.claim(rd)
    claim_file = tmp_path / "apn-seed0-abc.claim"
    assert claim_file.read_text() == str(os.getpid())
    assert not sq.claim(rd)  # held by a live process (this one)
    sq.release(rd)
    assert not claim_file.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim_file.write_text(str(dead.pid))  # left behind by a process that died
    assert sq.claim(rd) and claim_file.read_text() == str(os.getpid())
    sq.release(rd)
    claim_file.write_text("")  # another process created it a moment ago and is writing its pid
    assert not sq.claim(rd)
    os.utime(claim_file, (0, 0))  # ... or died before it could, long ago
    assert sq.claim(rd)
    sq.release(rd)


def test_run_queue_skips_finished_and_claimed_runs(tmp_path):
    runs = sq.queue_runs("smoke", ("table2",), seeds=[0], overrides=TINY)[:2]  # baseline, cls
    cfg = runs[0]["config"]
    data = load_dataset(cfg["dataset"], **cfg["data"])
    busy = sq._run_dir(tmp_path, runs[1]["config"])
    busy.with_name(busy.name + ".claim").write_text(str(os.getpid()))  # another live worker has it
    logs = []
    rows = sq.run_queue(runs, tmp_path, data=data, log=logs.append)
    assert [r["name"] for r in rows] == ["baseline"] and not rows[0]["cached"]
    assert not busy.exists() and len(logs) == 2
    assert [p.name for p in tmp_path.glob("*.claim")] == [busy.name + ".claim"]  # its own claim released
    # the run directory is the one run_study (and so the notebooks) would use
    [nb] = hs.run_study(runs[:1], tmp_path, data=data, progress=False)
    assert nb["cached"] and nb["run_dir"] == rows[0]["run_dir"] and nb["zsl_t1"] == rows[0]["zsl_t1"]
    busy.with_name(busy.name + ".claim").unlink()
    assert [r["name"] for r in sq.run_queue(runs, tmp_path, data=data, log=logs.append)] == ["cls"]
    assert sq.run_queue(runs, tmp_path, data=data, log=logs.append) == []


def test_cli_dry_run_lists_state(tmp_path, capsys):
    assert sq.main(["--preset", "smoke", "--tables", "table2", "--seeds", "0", "--cache-dir", str(tmp_path),
                    "--dry-run", "--set", "epochs=1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(hs.STUDY_PRESETS["smoke"]["table2_rows"]) and all(l.endswith("to do") for l in out)
    cfg = sq.queue_runs("smoke", ("table2",), seeds=[0], overrides={"epochs": 1})[0]["config"]
    assert sq.claim(sq._run_dir(tmp_path, cfg))
    sq.main(["--preset", "smoke", "--tables", "table2", "--seeds", "0", "--cache-dir", str(tmp_path),
             "--dry-run", "--set", "epochs=1"])
    assert capsys.readouterr().out.splitlines()[0].endswith(f"training (pid {os.getpid()})")
    with pytest.raises(SystemExit):
        sq.main(["--workers", "0", "--dry-run"])
    with pytest.raises(ZSLabError, match="unknown config key"):
        sq.main(["--preset", "smoke", "--dry-run", "--set", "no_such_key=1"])


def test_select_runs_picks_rows_and_cells_in_order(tmp_path, capsys):
    runs = sq.queue_runs("full", ("table2",), seeds=[0, 1, 2])
    picked = sq.select_runs(runs, ["cls+rob@2", "baseline", "cls+rob@2"])
    assert [(r["name"], r["config"]["seed"]) for r in picked] == [
        ("cls+rob", 2), ("baseline", 0), ("baseline", 1), ("baseline", 2)]
    with pytest.raises(ZSLabError, match="not among the queued runs.*names: baseline"):
        sq.select_runs(runs, ["cls+rob@7"])
    with pytest.raises(ZSLabError, match="must be an integer"):
        sq.select_runs(runs, ["cls@x"])
    assert sq.main(["--preset", "full", "--tables", "table2", "--seeds", "1", "2", "--cache-dir", str(tmp_path),
                    "--dry-run", "--runs", "has@2", "cls"]) == 0
    lines = [l.split() for l in capsys.readouterr().out.strip().splitlines()]
    assert [(l[0], l[2]) for l in lines] == [("has", "2"), ("cls", "1"), ("cls", "2")]


def test_queue_runs_laat_tables_are_notebook_21s():
    from zslab.experiments import laat_study as ls

    runs = sq.queue_runs("smoke", ("laat_robustness", "laat_table5"), seeds=[0])
    # smoke's robustness rows (original+sm, expanded+sm) are Table 5's ace+sm and exp+ace+sm: trained once
    assert [r["name"] for r in runs] == ["original+sm", "expanded+sm"]
    want = {hs.config_key(r["config"]) for r in ls.table5_configs("smoke", seeds=[0])}
    assert {hs.config_key(r["config"]) for r in runs} == want
    assert {r["config"]["method"] for r in runs} == {"laat"}
    with pytest.raises(ZSLabError, match="HAS tables only"):
        sq.queue_runs("smoke", ("laat_table4",), seeds=[0], overrides={"epochs": 1})
    mixed = sq.queue_runs("smoke", ("table2", "laat_table6"), seeds=[0])
    assert [r["config"]["method"] for r in mixed] == ["apn", "has", "has", "laat", "laat"]


def test_queue_runs_laat_curves_write_mmc_anchors_in_the_cache(tmp_path, monkeypatch):
    import zslab.experiments.laat_study  # where the queue calls it (imported there at module level)

    monkeypatch.setattr(zslab.experiments.laat_study, "load_class_anchors",
                        lambda cfg, names: torch.zeros(len(names), 64))
    runs = {r["name"]: r for r in sq.queue_runs("smoke", ("laat_curves",), seeds=[0], cache_dir=tmp_path)}
    assert set(runs) == {"original", "expanded", "mmc"}
    spec = runs["mmc"]["config"]["encoder"]
    assert spec.startswith(f"file:{(tmp_path / 'anchors').resolve()}") and "x64" in spec


def test_run_queue_loads_each_studys_data(tmp_path):
    """A HAS run (shapes at the study's size) and a LAAT run (shapes, its own size) in one queue:
    each trains on the dataset its config describes."""
    from conftest import write_anchor_file
    from zslab.experiments import laat_study as ls

    has_run = sq.queue_runs("smoke", ("table2",), seeds=[0], overrides=TINY)[0]
    laat_data = ls.load_study_data("smoke")
    spec = write_anchor_file(laat_data, tmp_path)
    laat_run = {"name": "tiny-laat", "config": ls.study_config("smoke", {"encoder": spec, "epochs": 1})}
    logs = []
    rows = sq.run_queue([has_run, laat_run], tmp_path / "cache", log=logs.append)
    assert [r["method"] for r in rows] == ["apn", "laat"]
    assert all(0.0 <= rows[1][m] <= 1.0 for m in ls.METRICS) and "zs_clean" in logs[-1]
    assert "zsl_t1" in logs[1]
    import json
    from pathlib import Path
    trained = json.loads((Path(rows[1]["run_dir"]) / "metrics.json").read_text())
    n_train = len(laat_data.splits["train"])
    assert n_train != len(load_dataset(has_run["config"]["dataset"], **has_run["config"]["data"]).splits["train"])
    assert trained["final"]["zs_n_way"] == laat_run["config"]["eval_n_way"]
    # finished LAAT runs are recognised by LAAT's metrics, not retrained
    assert sq.run_queue([has_run, laat_run], tmp_path / "cache", log=logs.append) == []


def test_cli_laat_tables_and_mixed_caches(tmp_path, capsys, monkeypatch):
    assert sq.main(["--preset", "smoke", "--tables", "laat_robustness", "--seeds", "0", "--cache-dir",
                    str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and all("laat-seed0-" in l and l.endswith("to do") for l in out)
    # a finished LAAT run is recognised by LAAT's metrics (it has no zsl_t1)
    import json
    from zslab.experiments import laat_study as ls

    run = sq.queue_runs("smoke", ("laat_robustness",), seeds=[0])[0]
    rd = sq._run_dir(tmp_path, run["config"])
    rd.mkdir()
    (rd / "config.json").write_text(json.dumps(run["config"]))
    (rd / "metrics.json").write_text(json.dumps({"history": [{}] * run["config"]["epochs"],
                                                 "final": {m: 0.5 for m in ls.METRICS}}))
    sq.main(["--preset", "smoke", "--tables", "laat_robustness", "--seeds", "0", "--cache-dir", str(tmp_path),
             "--dry-run"])
    assert capsys.readouterr().out.splitlines()[0].endswith("finished")
    # the default caches are the notebooks': runs/study in the project folder (the checkout holding the
    # working directory, or $ZSLAB_WORKDIR), wherever in the checkout the command runs from
    root = Path(sq.__file__).resolve().parents[2]
    monkeypatch.delenv("ZSLAB_WORKDIR", raising=False)
    monkeypatch.chdir(root / "notebooks")
    assert sq.default_cache_dir("laat") == root / "runs" / "study"  # one cache
    assert sq.default_cache_dir("has") == root / "runs" / "study"
    monkeypatch.setenv("ZSLAB_WORKDIR", str(tmp_path / "work"))
    assert sq.default_cache_dir("has") == tmp_path / "work" / "runs" / "study"
    with pytest.raises(SystemExit):
        sq.main(["--preset", "smoke", "--tables", "table2", "laat_robustness", "--dry-run"])
    assert "different caches" in capsys.readouterr().err
