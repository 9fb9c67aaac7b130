"""Bad inputs are refused early, by name, and leave nothing behind.

One table of bad inputs over the ``zslab`` command (run in-process through
:func:`zslab.cli.main`, a few also as a real ``python -m zslab`` process to check the exit
status and that no traceback is printed) and over the Python API (``make_config``, ``train``,
the attacks, ``load_dataset``, ``robust_zsl_run``). For every case:

* the exit status is not 0 (CLI) or the expected exception type is raised (API);
* the message names the offending key or argument (each case's ``match`` substrings);
* it takes less than :data:`LIMIT_S` seconds (a refusal comes before any training);
* nothing is left behind: a refused ``zslab train`` leaves no ``--out`` folder (only the
  run lock's documented empty ``.NAME.lock`` file beside it, never its holder record), and an
  existing run folder (the shared trained run, or a copy of it) keeps every file byte for byte.

One small run is trained once for the whole module (``zslab train apn --preset smoke --set
epochs=1``) and used read-only by the ``zslab eval`` cases; cases that need a damaged or
resumed run work on a copy. Cases marked ``xfail`` are faults not fixed yet (strict: the
marker must go when the fault is fixed).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from zslab import ZSLabError
from zslab.attacks import AttackInputError
from zslab.cli import main

LIMIT_S = 30.0
# one thread: tiny models gain nothing from intra-op threads, and a loaded 2-core CPU stalls on them
_THREADS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- shared inputs
@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The module's shared inputs: a trained run (read-only), a folder dataset with 3 novel
    classes, a CUB stand-in, a folder that is not a run."""
    from conftest import limit_threads

    from zslab.data.fixtures import write_fixture

    base = tmp_path_factory.mktemp("bad_inputs")
    run = base / "trained" / "run"
    argv = ["train", "apn", "--preset", "smoke", "--out", str(run), "--set", "epochs=1", "--set", "progress=false"]
    with limit_threads(1):
        assert main(argv) == 0, "the shared smoke run did not train"
    # 3 novel classes; 10 test images a class: the smoke preset's eval.n_query (10) fits
    fold = write_fixture("folder", base / "fold", n_classes=7, n_novel=3, per_class_test=10)
    cub = write_fixture("cub", base / "cub")
    notrun = base / "not_a_run"
    notrun.mkdir()
    (notrun / "notes.txt").write_text("not a run\n")
    return {"base": base, "run": run, "fold": fold, "cub": cub, "notrun": notrun}


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path) -> sha256 of its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Action:
    """What one case does: a command line (``argv``) or a call (``call``), and what must be
    left untouched: ``absent`` must not exist afterwards (a refused ``--out``), the files of
    ``watch`` must keep their bytes and no file may appear in it."""

    argv: list[str] | None = None
    call: Callable[[], Any] | None = None
    absent: Path | None = None
    watch: Path | None = None


class Ctx:
    """Builds a case's action in its own temporary folder."""

    def __init__(self, shared: dict, tmp: Path):
        self.s = shared
        self.tmp = tmp
        self.out = tmp / "run"

    # ------------------------------------------------------------- inputs
    @property
    def run(self) -> Path:
        return self.s["run"]

    def sets(self, *items: str) -> list[str]:
        return [x for item in items for x in ("--set", item)]

    def fold_sets(self, **replace) -> list[str]:
        from zslab.data.fixtures import cli_overrides

        return self.sets(*cli_overrides({**self.s["fold"], **replace}))

    def cub_sets(self, **replace) -> list[str]:
        from zslab.data.fixtures import cli_overrides

        return self.sets(*cli_overrides({**self.s["cub"], **replace}))

    def copy_run(self, damage: Callable[[Path], None] | None = None) -> Path:
        dst = self.tmp / "copy" / "run"
        shutil.copytree(self.run, dst)
        if damage is not None:
            damage(dst)
        return dst

    # ------------------------------------------------------------- actions
    def train(self, method: str, *sets: str, dataset: str | None = None, preset: str | None = None,
              extra: list[str] | None = None, out: Path | None = None) -> Action:
        out = self.out if out is None else out
        argv = ["train", method, "--out", str(out)]
        if dataset is not None:
            argv += ["--dataset", dataset]
        if preset is not None:
            argv += ["--preset", preset]
        argv += self.sets("progress=false", *sets) + list(extra or [])
        return Action(argv=argv, absent=out)

    def train_folder(self, method: str, *sets: str, **replace) -> Action:
        return self.train(method, *sets, dataset="folder", extra=self.fold_sets(**replace))

    def train_into(self, run: Path, *flags: str) -> Action:
        """The shared run's own command, into ``run`` (a copy), plus ``flags``."""
        argv = ["train", "apn", "--preset", "smoke", "--out", str(run), "--set", "epochs=1",
                "--set", "progress=false", *flags]
        return Action(argv=argv, watch=run)

    def eval(self, *args: str, run: Path | None = None) -> Action:
        run = self.run if run is None else run
        return Action(argv=["eval", str(run), *args], watch=run)

    def api(self, fn: Callable[[], Any], absent: Path | None = None, watch: Path | None = None) -> Action:
        return Action(call=fn, absent=absent, watch=watch)


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Ctx], Action]
    match: tuple[str, ...]
    exc: type[BaseException] = ZSLabError  # API cases: the exception type
    forbid: tuple[str, ...] = ()  # substrings the message must not hold
    subprocess: bool = False  # also run as `python -m zslab` (real exit status, no traceback)
    xfail: str | None = None  # a fault not fixed yet
    skip: str | None = None


# ----------------------------------------------------------------------------- damage helpers
def _garbage(name: str, data: bytes = b"this is not what it should be") -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).write_bytes(data)
    return damage


def _remove(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).unlink()
    return damage


def _corrupt_folder(c: Ctx) -> Action:
    """The folder dataset with one non-image .jpg in every class's train/ folder (not the first
    file, so the image size is still read from a good one)."""
    root = c.tmp / "fold_corrupt"
    shutil.copytree(c.s["fold"]["root"], root)
    for cls in sorted((root / "train").iterdir()):
        (cls / "0001.jpg").write_bytes(b"this is not a jpeg")
    return c.train("laat", "epochs=1", dataset="folder", extra=c.fold_sets(root=str(root)))


def _tiny_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))


def _make_config(*args, **kw):
    from zslab.train import make_config

    return make_config(*args, **kw)


def _pgd(**kw):
    from zslab.attacks import PGD

    return PGD(_tiny_model(), **kw)


def _build(name: str, **kw):
    from zslab.attacks import build

    return build(name, _tiny_model(), **kw)


def _load(name: str, **kw):
    from zslab.data import load_dataset

    return load_dataset(name, **kw)


def _robust(run: Path, attacks, **kw):
    from zslab.train.runs import robust_zsl_run

    return robust_zsl_run(run, attacks, progress=False, **kw)


def _train_hand_edited(c: Ctx, key: str, value: Any, method: str = "apn") -> Action:
    from zslab.train import make_config, train

    cfg = make_config(method, overrides=["epochs=1", "progress=false"])
    cfg[key] = value
    return c.api(lambda: train(cfg, c.out), absent=c.out)


def _empty_image_data(c: Ctx):
    from zslab.data import load_dataset
    from zslab.data.fixtures import write_fixture

    kw = write_fixture("folder", c.tmp / "fold_empty")
    victim = sorted((Path(kw["root"]) / "test").glob("*/0001.jpg"))[0]
    victim.write_bytes(b"")
    data = load_dataset("folder", **kw)  # loaders read images lazily: this succeeds
    return data.check_image_files


NO_CUDA = "needs a machine without CUDA" if torch.cuda.is_available() else None
_PYDANTIC_INTERNALS = ("function-after", "functools.partial", "greater_than_or_equal_validator")

# ----------------------------------------------------------------------------- the table
CASES: list[Case] = [
    # --- typos, at every nesting level (a did-you-mean names the right key)
    Case("typo_model_width", lambda c: c.train("apn", "model.widht=8"), ("model.widht", "model.width"),
         subprocess=True),
    Case("typo_train_lr", lambda c: c.train("apn", "train.lrr=0.1"), ("train.lrr", "train.lr")),
    Case("typo_has_steps", lambda c: c.train("has", "method.has.stpes=3"), ("method.has.stpes", "method.has.steps")),
    Case("typo_laat_eval_n_way", lambda c: c.train("laat", "eval.n_wya=3"), ("eval.n_wya", "eval.n_way")),
    Case("typo_shapes_data_key", lambda c: c.train("apn", "data.train_per_clas=4"),
         ("data.train_per_clas", "data.train_per_class")),
    Case("typo_flat_key", lambda c: c.train("apn", "epoch=3"), ("'epoch'", "epochs")),
    Case("typo_section", lambda c: c.train("apn", "trian.lr=0.1"), ("trian.lr",)),
    Case("set_without_value", lambda c: c.train("apn", "epochs"), ("KEY=VALUE", "epochs")),
    # --- wrong types
    Case("type_width_word", lambda c: c.train("apn", "model.width=wide"), ("model.width", "wide")),
    Case("type_epochs_float", lambda c: c.train("apn", "epochs=2.5"), ("train.epochs", "2.5")),
    Case("type_amp_maybe", lambda c: c.train("apn", "amp=maybe"), ("run.amp", "maybe")),
    Case("type_device_pattern", lambda c: c.train("apn", "device=tpu"), ("run.device", "tpu")),
    # --- NaN / inf
    Case("nan_lr_flat", lambda c: c.train("apn", "lr=NaN"), ("train.lr", "finite"), subprocess=True),
    Case("inf_lr_nested", lambda c: c.train("apn", "train.lr=inf"), ("train.lr", "finite")),
    # --- out of range, and the 0-255 scale
    Case("laat_pgd_eps_0_255", lambda c: c.train("laat", "pgd_eps=8"), ("attack.eps", "8/255")),
    Case("has_step_size_0_255", lambda c: c.train("has", "has_step_size=4"), ("method.has.step_size", "4/255")),
    Case("laat_attack_steps_0", lambda c: c.train("laat", "attack.steps=0"), ("attack.steps",)),
    Case("laat_eval_eps_negative", lambda c: c.train("laat", "eval.eps=-0.1"), ("eval.eps", "-0.1")),
    Case("laat_eval_n_way_1", lambda c: c.train("laat", "eval.n_way=1"), ("eval.n_way",)),
    Case("seed_negative", lambda c: c.train("apn", extra=["--seed", "-1"]), ("run.seed",)),
    Case("max_per_class_zero", lambda c: c.train_folder("laat", "data.max_per_class=0"),
         ("data.max_per_class",), forbid=_PYDANTIC_INTERNALS),
    # --- the data's classes against the evaluation
    Case("n_way_above_novel_classes", lambda c: c.train_folder("laat", "eval.n_way=5"),
         ("eval.n_way=5", "has 3"), subprocess=True),
    Case("n_query_above_images", lambda c: c.train_folder("laat", "eval.n_query=1000"), ("eval.n_query",)),
    Case("val_classes_empty", lambda c: c.train_folder("laat", "data.val_classes="), ("data.val_classes",)),
    Case("val_classes_overlap_novel", lambda c: c.train_folder("laat", f"data.val_classes={c.s['fold']['novel']}"),
         ("novel and validation",)),
    Case("novel_class_unknown", lambda c: c.train_folder("laat", novel="cat,unicorn"), ("unicorn",)),
    # --- data roots and layouts
    Case("cub_without_root", lambda c: c.train("apn", dataset="cub"), ("data.root",)),
    Case("folder_root_missing", lambda c: c.train("laat", "data.root=/nonexistent", "data.novel=cat,dog",
                                                  dataset="folder"), ("/nonexistent", "data.root")),
    Case("folder_without_train_test", lambda c: c.train("laat", f"data.root={c.s['notrun']}", "data.novel=cat,dog",
                                                        dataset="folder"), ("not_a_run", "train")),
    Case("cub_split_dir_missing", lambda c: c.train("apn", dataset="cub", extra=c.cub_sets(split_dir="/nonexistent")),
         ("/nonexistent/att_splits.mat", "split_dir")),
    Case("corrupt_image_file", _corrupt_folder, ("0001.jpg",)),
    # --- unknown names
    Case("unknown_dataset", lambda c: c.train("laat", dataset="cifar11"), ("cifar11", "cifar10")),
    Case("unknown_method", lambda c: c.train("lat"), ("'lat'", "laat"), subprocess=True),
    Case("unknown_preset", lambda c: c.train("apn", preset="smok"), ("smok", "smoke")),
    Case("unknown_encoder", lambda c: c.train("laat", extra=["--encoder", "bert"]), ("anchors.encoder", "bert")),
    Case("paper_preset_on_shapes", lambda c: c.train("apn", preset="paper"), ("paper", "cub")),
    # --- settings of another method, methods on the wrong kind of data
    Case("has_setting_for_apn", lambda c: c.train("apn", "has_steps=3"), ("has_steps", "method has")),
    Case("encoder_for_apn", lambda c: c.train("apn", extra=["--encoder", "minilm"]), ("--encoder", "laat")),
    Case("select_metric_for_laat", lambda c: c.train("laat", "select_metric=val_h"), ("train.select_metric",)),
    Case("run_method_by_set", lambda c: c.train("apn", "run.method=has"), ("run.method",)),
    Case("apn_on_text_dataset", lambda c: c.train_folder("apn"), ("apn", "folder", "laat")),
    # --- output folder
    Case("out_under_a_file", lambda c: (c.tmp.joinpath("a_file").write_text("x"),
                                        c.train("apn", out=c.tmp / "a_file" / "run"))[1],
         ("a_file", "--out")),
    Case("out_empty_string", lambda c: c.train("apn", "epochs=1", "model.width=4", "data.train_per_class=4",
                                               "data.unseen_per_class=4", out=Path("")),  # the cwd: tmp/cwd
         ("--out",)),
    Case("train_twice_same_out", lambda c: c.train_into(c.copy_run()), ("already holds a run", "--resume")),
    Case("resume_other_config", lambda c: c.train_into(c.copy_run(), "--resume", "--set", "epochs=2"),
         ("epochs", "--allow-config-change")),
    Case("resume_corrupt_last_pt", lambda c: c.train_into(c.copy_run(_garbage("last.pt")), "--resume"),
         ("last.pt", "corrupt")),
    Case("resume_corrupt_config", lambda c: c.train_into(c.copy_run(_garbage("config.json", b"{nope")), "--resume"),
         ("config.json", "corrupt")),
    Case("config_show_typo", lambda c: Action(argv=["config", "show", "apn", "--set", "model.widht=8"]),
         ("model.widht", "model.width")),
    # --- zslab eval
    Case("eval_unknown_attack", lambda c: c.eval("--attacks", "pgd20,foo"), ("'foo'",), subprocess=True),
    Case("eval_pgd0", lambda c: c.eval("--attacks", "pgd0"), ("pgd0",)),
    Case("eval_stray_comma", lambda c: c.eval("--attacks", "pgd20,"), ("empty attack name",)),
    Case("eval_eps_0_255", lambda c: c.eval("--attacks", "pgd20", "--eps", "8"), ("eps", "8/255")),
    Case("eval_eps_negative", lambda c: c.eval("--attacks", "pgd20", "--eps", "-0.1"), ("eps", "-0.1")),
    Case("eval_eps_nan", lambda c: c.eval("--attacks", "pgd20", "--eps", "nan"), ("eps", "nan")),
    Case("eval_max_images_0", lambda c: c.eval("--attacks", "pgd20", "--max-images", "0"), ("max_images",)),
    Case("eval_batch_size_0", lambda c: c.eval("--attacks", "pgd20", "--batch-size", "0"), ("batch_size",)),
    Case("eval_batch_size_0_no_attacks", lambda c: c.eval("--batch-size", "0"), ("--batch-size",)),
    Case("eval_max_images_word", lambda c: c.eval("--max-images", "x"), ("--max-images",)),
    Case("eval_not_a_run", lambda c: Action(argv=["eval", str(c.s["notrun"])], watch=c.s["notrun"]),
         ("not a zslab run directory",)),
    Case("eval_corrupt_config", lambda c: c.eval(run=c.copy_run(_garbage("config.json", b"{nope"))),
         ("config.json", "corrupt")),
    Case("eval_best_not_torch", lambda c: c.eval(run=c.copy_run(_garbage("best.pt"))), ("best.pt", "corrupt")),
    Case("eval_best_missing", lambda c: c.eval(run=c.copy_run(_remove("best.pt"))), ("best.pt",)),
    Case("eval_cuda_unavailable", lambda c: c.eval("--device", "cuda"), ("'cuda'", "not available"), skip=NO_CUDA),
    Case("eval_cuda_hint_names_the_flag", lambda c: c.eval("--device", "cuda"), ("--device",), skip=NO_CUDA),
    # --- Python API: configuration and training
    Case("api_make_config_nan", lambda c: c.api(lambda: _make_config(overrides={"lr": float("nan")})),
         ("train.lr", "finite")),
    Case("api_make_config_0_255", lambda c: c.api(lambda: _make_config("laat", overrides={"pgd_eps": 8})),
         ("attack.eps", "8/255")),
    Case("api_make_config_dataset", lambda c: c.api(lambda: _make_config(dataset="cifar11")), ("cifar11",)),
    Case("api_train_hand_edited_nan", lambda c: _train_hand_edited(c, "lr", float("nan")), ("train.lr",)),
    Case("api_train_hand_edited_typo", lambda c: _train_hand_edited(c, "lrr", 0.1), ("lrr", "lr")),
    Case("api_train_hand_edited_eps", lambda c: _train_hand_edited(c, "pgd_eps", 8, "laat"), ("8/255",)),
    # --- Python API: attacks
    Case("api_pgd_eps_2", lambda c: c.api(lambda: _pgd(eps=2)), ("eps", "2/255"), exc=AttackInputError),
    Case("api_pgd_steps_0", lambda c: c.api(lambda: _pgd(steps=0)), ("steps",), exc=AttackInputError),
    Case("api_pgd_alpha_negative", lambda c: c.api(lambda: _pgd(alpha=-1)), ("alpha",), exc=AttackInputError),
    Case("api_pgd_random_start_string", lambda c: c.api(lambda: _pgd(random_start="false")), ("random_start",),
         exc=AttackInputError),
    Case("api_build_pgd0", lambda c: c.api(lambda: _build("pgd0")), ("pgd0",), exc=AttackInputError),
    Case("api_pgd_call_0_255_images", lambda c: c.api(lambda: _pgd()(torch.full((2, 3, 8, 8), 200.0),
                                                                       torch.tensor([0, 1]))),
         ("[0, 1]",), exc=AttackInputError),
    # --- Python API: data
    Case("api_load_dataset_unknown", lambda c: c.api(lambda: _load("cifar11")), ("cifar11",)),
    Case("api_load_folder_novel_unknown", lambda c: c.api(lambda: _load("folder", root=c.s["fold"]["root"],
                                                                        novel="cat,unicorn")), ("unicorn",)),
    Case("api_load_folder_seed_negative", lambda c: c.api(lambda: _load("folder", **c.s["fold"], seed=-1)),
         ("seed",)),
    Case("api_load_cub_seed_negative", lambda c: c.api(lambda: _load("cub", **c.s["cub"], seed=-1)), ("seed",)),
    Case("api_load_shapes_typo", lambda c: c.api(lambda: _load("shapes", train_per_clas=3)), ("train_per_clas",)),
    Case("api_check_image_files_empty", lambda c: c.api(_empty_image_data(c)), ("0001.jpg", "empty file")),
    # --- Python API: robust evaluation of the shared run
    Case("api_robust_unknown_attack", lambda c: c.api(lambda: _robust(c.run, ["foo"]), watch=c.run), ("'foo'",)),
    Case("api_robust_eps_0_255", lambda c: c.api(lambda: _robust(c.run, ["pgd20"], eps=8), watch=c.run),
         ("8/255",)),
    Case("api_robust_max_images_0", lambda c: c.api(lambda: _robust(c.run, ["pgd20"], max_images=0), watch=c.run),
         ("max_images",)),
]


def _params():
    out = []
    for case in CASES:
        marks = []
        if case.skip:
            marks.append(pytest.mark.skip(reason=case.skip))
        if case.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def _leftovers(parent: Path, before: set[str], absent: Path) -> list[str]:
    """New entries of ``parent`` other than the run lock's empty ``.NAME.lock`` file (kept by
    design, see zslab.utils.runlock; its holder record ``.NAME.lock.json`` must be gone)."""
    lock = f".{absent.name}.lock"
    return sorted(n for n in set(os.listdir(parent)) - before
                  if not (n == lock and (parent / n).stat().st_size == 0))


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, shared, tmp_path, capsys, monkeypatch):
    from conftest import limit_threads

    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    ctx = Ctx(shared, tmp_path)
    action = case.make(ctx)
    absent = None if action.absent is None else (Path.cwd() / action.absent).resolve()
    parent_before = set(os.listdir(absent.parent)) if absent is not None and absent.parent.is_dir() else set()
    watched = _snapshot(action.watch) if action.watch is not None else None
    shared_before = _snapshot(shared["run"])
    capsys.readouterr()

    t0 = time.perf_counter()
    with limit_threads(1):
        if action.argv is not None:
            try:
                rc = main(list(action.argv))
            except SystemExit as e:  # argparse
                rc = e.code
            message = capsys.readouterr().err
        else:
            with pytest.raises(case.exc) as info:
                action.call()
            rc, message = None, str(info.value)
    elapsed = time.perf_counter() - t0

    if action.argv is not None:
        assert rc not in (0, None), f"exit status {rc}; stderr: {message}"
        assert "Traceback" not in message, message
        assert "error:" in message, message
    for s in case.match:
        assert s in message, f"{s!r} not in the message: {message}"
    for s in case.forbid:
        assert s not in message, f"{s!r} in the message: {message}"
    assert elapsed < LIMIT_S, f"the refusal took {elapsed:.1f} s"
    if absent is not None:
        assert not absent.exists() or absent == Path.cwd().resolve() and not os.listdir(absent), \
            f"{absent} was left behind: {sorted(os.listdir(absent))}"
        if absent.parent.is_dir():
            assert _leftovers(absent.parent, parent_before, absent) == [], "files left beside --out"
    if watched is not None:
        assert _snapshot(action.watch) == watched, f"{action.watch} changed"
    assert _snapshot(shared["run"]) == shared_before, "the shared run changed"


# ----------------------------------------------------------------------------- real processes
SUBPROCESS_CASES = [c for c in CASES if c.subprocess]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in SUBPROCESS_CASES])
def test_bad_input_process(case: Case, shared, tmp_path):
    """The same refusals from a real ``python -m zslab`` process: a non-zero exit status, a
    one-line ``zslab: error:`` message on stderr, no traceback, nothing left behind."""
    ctx = Ctx(shared, tmp_path)
    action = case.make(ctx)
    assert action.argv is not None
    watched = _snapshot(action.watch) if action.watch is not None else None
    env = {**os.environ, **_THREADS_ENV}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "zslab", *action.argv], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    elapsed = time.perf_counter() - t0
    assert r.returncode not in (0,), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("zslab: error:")]
    assert len(errors) == 1, r.stderr
    for s in case.match:
        assert s in r.stderr, f"{s!r} not in: {r.stderr}"
    assert r.stdout == "", r.stdout
    assert elapsed < LIMIT_S, f"{elapsed:.1f} s"
    if action.absent is not None:
        assert not action.absent.exists()
    if watched is not None:
        assert _snapshot(action.watch) == watched
