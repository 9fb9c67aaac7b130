"""The typed configuration (zslab.config): schema, alias table, recipe composition, provenance,
`zslab config show`, and the migration of old flat run folders."""
from __future__ import annotations

import json

import pytest

from zslab import ZSLabError
from zslab.cli import main
from zslab.config import ConfigError, from_document, from_flat, resolve
from zslab.config import aliases as al
from zslab.config import schema as sc
from zslab.config.resolve import study_preset, study_presets
from zslab.train.config import make_config

#: an engine config exactly as zslab wrote it into run folders before the nested schema (a LAAT
#: run of the old smoke preset, written before the late keys sync_bn ... adv_lambda_rel existed)
OLD_LAAT = {
    "method": "laat", "dataset": "shapes", "preset": "smoke", "seed": 0, "data": {
        "train_per_class": 24, "val_seen_per_class": 4, "test_seen_per_class": 8, "unseen_per_class": 16},
    "model": {"backbone": "small", "width": 32, "weights": None}, "epochs": 3, "batch_size": 64,
    "eval_batch_size": 512, "lr": 0.05, "betas": [0.5, 0.999], "weight_decay": 0.0005, "lr_step": 10,
    "lr_gamma": 0.1, "lambda_loc": 1.0, "select_metric": "val_zs", "device": "auto", "amp": True,
    "progress": True, "encoder": "minilm", "prompt": "This is a photo of a {}", "anchor_cache": None,
    "expand": True, "objective": "ace", "tau": 1.0, "alpha": 3.0, "trades_beta": 6.0, "pgd_eps": 8 / 255,
    "pgd_step": 2 / 255, "pgd_steps": 7, "pgd_random_start": True, "arch": "conv4-64", "optimizer": "sgd",
    "momentum": 0.9, "lr_milestones": [2], "eval_eps": 8 / 255, "eval_pgd_step": 2 / 255, "eval_pgd_steps": 20,
    "eval_seed": 0, "eval_n_way": 5, "eval_n_query": 10, "eval_episodes": 100, "eval_episodes_attacked": 20,
    "gzsl_per_class": 8,
}
OLD_HAS = {
    "method": "has", "dataset": "shapes", "preset": "full", "seed": 1, "data": {},
    "model": {"backbone": "small", "width": 32, "weights": None}, "epochs": 30, "batch_size": 64,
    "eval_batch_size": 512, "lr": 0.001, "betas": [0.5, 0.999], "weight_decay": 1e-05, "lr_step": 10,
    "lr_gamma": 0.8, "lambda_loc": 1.0, "select_metric": "val_h", "device": "auto", "amp": True, "progress": False,
    "augment": "none", "has_steps": 3, "has_step_size": 2 / 255, "has_eps": None, "has_random_start": False,
    "has_adv_prob": 1.0, "has_lambda_rob": 0.0, "has_lambda_rel": 0.1, "has_lambda_att_mag": 1e-4,
    "has_lambda_att_ent": 0.1,
}


# ----------------------------------------------------------------------------- alias table
def test_every_flat_alias_points_at_a_schema_field_of_its_methods():
    for flat, (path, methods) in al.FLAT_ALIASES.items():
        for m in methods:
            res = resolve(m, "shapes", "smoke")
            node = res.doc
            for part in path.split("."):
                assert part in node, f"{flat} -> {path} missing for {m}"
                node = node[part]


@pytest.mark.parametrize("flat,nested,value", [
    ("lr", "train.lr", 0.01), ("epochs", "train.epochs", 2), ("eval_batch_size", "eval.batch_size", 32),
    ("has_steps", "method.has.steps", 5), ("has_lambda_rel", "method.has.lambda_rel", 1.0),
    ("augment", "method.augment", "cutmix"), ("seed", "run.seed", 3), ("channels_last", "run.channels_last", True),
])
def test_old_flat_key_equals_nested_key(flat, nested, value):
    a = make_config("has", "smoke", overrides={flat: value})
    b = make_config("has", "smoke", overrides={nested: value})
    assert a == b and a[flat] == value
    assert a.sources[nested] == "--set"


@pytest.mark.parametrize("flat,nested,value", [
    ("pgd_eps", "attack.eps", "4/255"), ("encoder", "anchors.encoder", "file:x.npy"), ("arch", "model.arch", "resnet12"),
    ("eval_n_way", "eval.n_way", 3), ("alpha", "method.laat.alpha", 1.0), ("anchor_cache", "anchors.cache", "/tmp/c"),
])
def test_old_laat_keys_equal_nested_keys(flat, nested, value):
    a = make_config("laat", "smoke", overrides={flat: value})
    b = make_config("laat", "smoke", overrides={nested: value})
    assert a == b


def test_engine_view_of_the_recipes_is_the_pre_schema_config():
    """The flat view of the new recipes equals what the old preset tables produced (so runs and
    run caches are unchanged): the old LAAT smoke config, minus nothing, plus the late keys."""
    new = dict(make_config("laat", "smoke"))
    old = dict(OLD_LAAT)
    late = {k: new[k] for k in al.LATE_KEYS if k in new}
    assert new == {**old, **late}


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("method,override,needle", [
    ("apn", "model.widht=8", "did you mean 'model.width'"),
    ("laat", "eval.n_wya=3", "did you mean 'eval.n_way'"),
    ("has", "method.has.stpes=3", "did you mean 'method.has.steps'"),
    ("apn", "epochz=3", "did you mean 'epochs'"),
    ("apn", "train.lrr=0.1", "did you mean 'train.lr'"),
    ("apn", "data.train_per_clas=4", "did you mean 'data.train_per_class'"),
    ("laat", "pgd_eps=8", "did you mean 8/255"),
    ("laat", "attack.step=2", "did you mean 2/255"),
    ("has", "has_step_size=4", "did you mean 4/255"),
    ("apn", "lr=NaN", "finite"),
    ("apn", "train.lr=inf", "finite"),
    ("apn", "model.width=wide", "model.width"),
    ("apn", "epochs=2.5", "train.epochs"),
    ("apn", "amp=maybe", "run.amp"),
    ("apn", "train.betas=[0.5]", "'train.betas' has too few items"),
    ("apn", "has_steps=5", "method has only"),
    ("laat", "model.width=8", "method apn/has only"),
    ("laat", "attack.steps=0", "attack.steps"),
    ("laat", "eval.eps=-0.1", "eval.eps"),
    ("laat", "method.laat.objective=hinge", "method.laat.objective"),
    ("laat", "anchors.prompt=no placeholder", "anchors.prompt"),
    ("laat", "anchors.encoder=bert", "anchors.encoder"),
])
def test_bad_values_name_the_key(method, override, needle):
    with pytest.raises(ConfigError) as e:
        make_config(method, "smoke", overrides=[override])
    assert needle in str(e.value)


def test_nan_from_python_and_every_problem_reported_at_once():
    with pytest.raises(ConfigError, match="finite"):
        make_config("apn", overrides={"lr": float("nan")})
    with pytest.raises(ConfigError) as e:
        make_config("apn", overrides=["lr=-1", "epochs=0", "model.width=0"])
    msg = str(e.value)
    assert "train.lr" in msg and "train.epochs" in msg and "model.width" in msg


@pytest.mark.parametrize("args,needle", [
    (("lat", "shapes", "smoke"), "did you mean 'laat'"),
    (("apn", "cifar11", "smoke"), "did you mean 'cifar10'"),
    (("apn", "shapes", "smok"), "did you mean 'smoke'"),
    (("apn", "folder", "smoke"), "needs class attribute vectors"),
    (("has", "cub", "paper"), "data.root"),
    (("has", "apy", "paper"), "cub, awa2, sun only"),
])
def test_bad_names_and_combinations(args, needle):
    with pytest.raises(ConfigError) as e:
        resolve(*args)
    assert needle in str(e.value)


def test_recipe_selectors_cannot_be_set():
    with pytest.raises(ConfigError, match="METHOD argument"):
        resolve("apn", overrides=["method=has"])


# ----------------------------------------------------------------------------- composition and sources
def test_layers_compose_in_order_and_record_their_source():
    res = resolve("has", "cub", "paper", overrides=["data.root=/d", "train.epochs=2"])
    s, d = res.sources, res.doc
    assert s["train.epochs"] == "--set" and d["train"]["epochs"] == 2          # --set beats the preset
    assert s["train.lr"] == "preset:paper" and d["train"]["lr"] == 1e-4
    assert s["method.has.step_size"] == "preset:paper" and d["method"]["has"]["step_size"] == 5 / 255  # CUB value
    assert s["train.weight_decay"] == "default"
    assert resolve("laat").sources["train.select_metric"] == "method"
    assert resolve("laat", "cifar10", overrides=["data.root=/c"]).sources["data.novel"] == "dataset:cifar10"


def test_paper_preset_has_values_match_the_has_module():
    from zslab.methods.has import OFFICIAL_WEIGHTS

    for ds, w in OFFICIAL_WEIGHTS.items():
        has = resolve("has", ds, "paper", overrides=["data.root=/d"]).doc["method"]["has"]
        assert {k: has[k] for k in w} == pytest.approx(w)


@pytest.mark.parametrize("dataset", sc.DATASETS)
@pytest.mark.parametrize("preset", ["smoke", "full"])
def test_smoke_and_full_resolve_on_every_dataset(dataset, preset):
    method = "laat" if dataset in sc.TEXT_DATASETS else "apn"
    over = [] if dataset == "shapes" else ["data.root=/data"]
    if dataset == "folder":
        over.append("data.novel=a,b,c")
    res = resolve(method, dataset, preset, overrides=over)
    data = res.flat["data"]
    if dataset != "shapes":
        # real-format datasets: no shapes-only keys, sizes from the data (caps per class in smoke)
        assert not any(k.endswith("_per_class") and k not in ("test_seen_per_class", "max_per_class") for k in data)
        assert ("max_per_class" in data) == (preset == "smoke")
        if method == "laat":
            assert res.flat["eval_n_way"] == "auto"


def test_study_recipes_give_the_old_study_tables():
    has = study_preset("has", "smoke")
    assert has["seeds"] == (0,) and has["overrides"]["model.width"] == 8 and has["table2_rows"] == ("baseline", "cls", "has")
    laat = study_preset("laat", "smoke")
    assert laat["overrides"]["pgd_step"] == 8 / 255 and laat["overrides"]["lr_milestones"] == [2]
    xp = study_preset("cross_paper", "full")
    assert xp["eps"] == 8 / 255 and xp["laat_overrides"]["pgd_step"] == 3 / 255
    assert set(study_presets("laat_anchors")) == {"smoke", "full"}
    with pytest.raises(ConfigError, match="did you mean 'smoke'"):
        study_preset("has", "smoek")
    from zslab.experiments import cross_paper, has_study, laat_study

    assert has_study.STUDY_PRESETS["full"]["seeds"] == (0, 1, 2)
    assert laat_study.CIFAR10_NOVEL == ("cat", "dog", "ship")
    assert cross_paper.XP_PRESETS["smoke"]["max_images"] == 40


# ----------------------------------------------------------------------------- migration
@pytest.mark.parametrize("old", [OLD_LAAT, OLD_HAS], ids=["laat", "has"])
def test_old_flat_configs_migrate_to_the_nested_document(old):
    res = from_flat(old)
    for k, v in old.items():
        if k in ("data", "model") or (old["method"] == "laat" and k in al.LAAT_INERT):
            continue
        path = al.FLAT_ALIASES[k][0]
        node = res.doc
        for part in path.split("."):
            node = node[part]
        assert node == v, k
    # keys added later take their defaults; the engine view keeps the old keys' values
    assert res.flat["sync_bn"] is False and {k: res.flat[k] for k in old} == old
    again = from_document(res.document())
    assert again.flat == res.flat


def test_old_run_folder_is_read_and_resumes(tmp_path):
    """A run folder written before the schema (flat config.json) is read through the alias table;
    `--resume` with the matching config continues it (nothing to do: it is finished)."""
    from zslab.train import train
    from zslab.train.engine import read_run_config

    cfg = make_config("apn", "smoke", overrides=["epochs=1", "progress=false", "data.train_per_class=4",
                                                 "data.unseen_per_class=6", "data.test_seen_per_class=2",
                                                 "data.val_seen_per_class=2", "model.width=4"])
    run = tmp_path / "run"
    train(cfg, run)
    doc = json.loads((run / "config.json").read_text())
    assert doc["zslab_config"] == 2 and doc["sources"]["train.epochs"] == "--set"
    flat_old = {k: v for k, v in doc["engine"].items() if k not in al.LATE_KEYS}
    (run / "config.json").write_text(json.dumps(flat_old))  # the old on-disk form
    assert read_run_config(run) == dict(cfg)
    train(cfg, run, resume=True)  # the same config: accepted
    cfg2 = make_config("apn", "smoke", overrides=["epochs=2", "progress=false", "data.train_per_class=4",
                                                  "data.unseen_per_class=6", "data.test_seen_per_class=2",
                                                  "data.val_seen_per_class=2", "model.width=4"])
    with pytest.raises(ZSLabError, match="epochs: 1 -> 2"):
        train(cfg2, run, resume=True)
    final = train(cfg2, run, resume=True, allow_config_change=True)
    assert final["epochs"] == 2
    assert json.loads((run / "config.json").read_text())["engine"]["epochs"] == 2


def test_unknown_keys_in_a_stored_config_are_refused():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        from_flat({**OLD_HAS, "epochz": 3})


# ----------------------------------------------------------------------------- the CLI
def test_config_show_prints_values_and_sources(capsys):
    assert main(["config", "show", "has", "--preset", "full", "--set", "has_steps=5"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("method.has.steps"))
    assert "= 5" in line and "[--set]" in line and "Algorithm 1" in line
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("train.epochs"))
    assert "30" in line and "[preset:full]" in line
    assert main(["config", "show", "laat", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["attack"]["steps"] == 7 and doc["sources"]["train.select_metric"] == "method"
    assert doc["engine"]["pgd_steps"] == 7


def test_config_show_refuses_a_typo(capsys):
    assert main(["config", "show", "apn", "--set", "model.widht=8"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'model.width'" in err and "Traceback" not in err


def test_train_writes_the_same_document_config_show_prints(tmp_path, capsys):
    over = ["--set", "epochs=1", "--set", "progress=false", "--set", "data.train_per_class=4", "--set",
            "data.unseen_per_class=6", "--set", "model.width=4"]
    assert main(["config", "show", "apn", "--json"] + over) == 0
    shown = json.loads(capsys.readouterr().out)
    assert main(["train", "apn", "--out", str(tmp_path / "r")] + over) == 0
    stored = json.loads((tmp_path / "r" / "config.json").read_text())
    assert stored == shown


def test_config_errors_answer_before_torch_is_imported(tmp_path):
    """A typo fails in the time it takes to read the recipes: neither `zslab config show` nor a
    refused `zslab train` imports torch (seconds on a CPU) first."""
    import subprocess
    import sys

    code = ("import sys\nfrom zslab.cli import main\n"
            f"rc = main(['train', 'apn', '--out', {str(tmp_path / 'r')!r}, '--set', 'model.widht=8'])\n"
            "rc2 = main(['config', 'show', 'laat', '--dataset', 'cifar10'])\n"
            "print(rc, rc2, 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "2 0 False", r.stdout + r.stderr
    assert "did you mean 'model.width'" in r.stderr and not (tmp_path / "r").exists()
