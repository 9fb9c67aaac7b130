"""Hyperparameter validation of zslab.attacks (ε, α, steps, norm, ...) and of the robust
evaluation's arguments (attack names, eps, max_images, batch_size): bad values raise a
ValueError (AttackInputError, also a ZSLabError) naming the parameter, before any work."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zslab import ZSLabError
from zslab.attacks import (
    APGD, APGDT, FABT, FGSM, PGD, PGDL2, AnchorClassifier, Attack, AttackInputError, AutoAttack, CWLinf, LogitsOf,
    Square, UnknownAttackError, build, check_attack_names, check_eps,
)
from zslab.eval.robust import robust_evaluate

NAN, INF = float("nan"), float("inf")
LINF = [FGSM, PGD, CWLinf, APGD, APGDT, FABT, Square, AutoAttack]
ALL = LINF + [PGDL2]
ITERATIVE = [PGD, PGDL2, CWLinf, APGD, APGDT, FABT, AutoAttack]


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 6, 6, generator=g), torch.randint(0, 5, (6,), generator=g)


def _cases():
    """(attack class, keyword arguments, text the message must contain)."""
    cases = []
    for cls in ALL:
        cases += [
            (cls, {"eps": -0.1}, "eps"), (cls, {"eps": NAN}, "eps"), (cls, {"eps": INF}, "eps"),
            (cls, {"eps": -INF}, "eps"), (cls, {"eps": "abc"}, "eps"), (cls, {"eps": True}, "eps"),
            (cls, {"eps": None}, "eps"), (cls, {"eps": "1/0"}, "eps"),
            (cls, {"norm": "L3"}, "norm"), (cls, {"norm": "L3"}, "'Linf', 'L2'"), (cls, {"norm": 1}, "norm"),
            (cls, {"seed": 1.5}, "seed"), (cls, {"seed": "3"}, "seed"), (cls, {"seed": True}, "seed"),
        ]
    for cls in LINF:
        cases += [
            (cls, {"eps": 2}, "eps=2 is on the 0-255 scale"), (cls, {"eps": 8}, "did you mean 8/255?"),
            (cls, {"eps": "8"}, "8/255"), (cls, {"eps": 1.0001}, "eps"), (cls, {"eps": 1000}, "eps=1000"),
            (cls, {"norm": "L2"}, "norm"),
        ]
    for cls in (PGD, CWLinf):
        cases += [(cls, {"alpha": 3}, "alpha=3 is on the 0-255 scale"), (cls, {"alpha": 3}, "3/255"),
                  (cls, {"alpha": -1 / 255}, "alpha"), (cls, {"alpha": NAN}, "alpha"), (cls, {"alpha": INF}, "alpha"),
                  (cls, {"alpha": 0}, "alpha"), (cls, {"random_start": "false"}, "random_start")]
    cases += [(PGD, {"norm": "L2"}, "PGDL2"), (PGDL2, {"norm": "Linf"}, "norm"), (PGDL2, {"alpha": NAN}, "alpha"),
              (PGDL2, {"alpha": -0.5}, "alpha"), (PGDL2, {"eps": INF}, "eps")]
    for cls in ITERATIVE:
        cases += [(cls, {"steps": 0}, "steps must be >= 1"), (cls, {"steps": -3}, "steps must be >= 1"),
                  (cls, {"steps": 1.5}, "steps"), (cls, {"steps": 2.0}, "steps"), (cls, {"steps": True}, "steps"),
                  (cls, {"steps": "10"}, "steps"), (cls, {"steps": None}, "steps")]
    for cls in (APGD, APGDT, FABT, Square):
        cases += [(cls, {"n_restarts": 0}, "n_restarts"), (cls, {"n_restarts": 1.0}, "n_restarts"),
                  (cls, {"n_restarts": False}, "n_restarts")]
    for cls in (APGD, APGDT):
        cases += [(cls, {"rho": NAN}, "rho"), (cls, {"rho": 1.5}, "rho"), (cls, {"rho": -0.1}, "rho"),
                  (cls, {"rho": "0.75"}, "rho")]
    for cls in (APGDT, FABT, AutoAttack):
        cases += [(cls, {"n_target_classes": 0}, "n_target_classes"),
                  (cls, {"n_target_classes": 2.5}, "n_target_classes")]
    for cls in (Square, AutoAttack):
        cases += [(cls, {"n_queries": 0}, "n_queries"), (cls, {"n_queries": 2.5}, "n_queries"),
                  (cls, {"n_queries": True}, "n_queries")]
    cases += [
        (Square, {"p_init": 0}, "p_init"), (Square, {"p_init": 1.5}, "p_init"), (Square, {"p_init": NAN}, "p_init"),
        (Square, {"p_init": "0.8"}, "p_init"), (Square, {"shared_proposals": "yes"}, "shared_proposals"),
        (FABT, {"alpha_max": 2}, "alpha_max"), (FABT, {"alpha_max": NAN}, "alpha_max"), (FABT, {"eta": 0}, "eta"),
        (FABT, {"eta": INF}, "eta"), (FABT, {"beta": -0.1}, "beta"), (FABT, {"beta": NAN}, "beta"),
        (AutoAttack, {"version": "plus"}, "version"), (AutoAttack, {"version": None}, "version"),
        (APGD, {"loss": "nope"}, "loss"),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("cls, kwargs, text", CASES,
                         ids=[f"{c.__name__}-{k}-{i}" for i, (c, k, _) in enumerate(CASES)])
def test_bad_hyperparameter_raises_naming_it(model, cls, kwargs, text):
    with pytest.raises(ValueError) as err:
        cls(model, **kwargs)
    assert text in str(err.value), str(err.value)
    if "loss" not in kwargs:
        assert isinstance(err.value, AttackInputError) and isinstance(err.value, ZSLabError)


def test_every_case_names_its_parameter(model):
    """Whatever the text checked above, the message names the parameter itself."""
    for cls, kwargs, _ in CASES:
        (param,) = kwargs
        with pytest.raises(ValueError) as err:
            cls(model, **kwargs)
        assert param in str(err.value), (cls.__name__, kwargs, str(err.value))


def test_base_class_validates_too(model):
    with pytest.raises(AttackInputError, match="did you mean 2/255"):
        Attack(model, eps=2)
    with pytest.raises(AttackInputError, match="seed"):
        Attack(model, seed=0.5)
    with pytest.raises(AttackInputError, match="targeted"):
        Attack(model, targeted="no")
    with pytest.raises(TypeError, match="callable"):
        PGD("not a model")


@pytest.mark.parametrize("cls", ALL)
def test_valid_construction_still_works(model, data, cls):
    x, y = data
    small = {"steps": 2} if cls in ITERATIVE else {}
    if cls in (Square, AutoAttack):
        small["n_queries"] = 3
    for eps, value in (("8/255", 8 / 255), (8 / 255, 8 / 255), (0.0, 0.0), (1, 1.0), ("0.5", 0.5),
                       (torch.tensor(0.25), 0.25)):
        assert cls(model, eps, **small).eps == pytest.approx(value)
    norm = "L2" if cls is PGDL2 else "Linf"
    for spelling in (norm, norm.lower(), 2 if norm == "L2" else INF):
        cls(model, norm=spelling, **small)
    eps = 0.5 if norm == "L2" else 8 / 255
    adv = cls(model, eps, **small)(x, y)
    dist = (adv - x).reshape(len(x), -1)
    dist = dist.norm(dim=1) if norm == "L2" else dist.abs().amax(dim=1)
    assert adv.shape == x.shape and float(dist.max()) <= eps + 1e-5


def test_l2_eps_may_exceed_one(model, data):
    x, y = data
    atk = PGDL2(model, eps=3.0, alpha=1.5, steps=2, seed=0)
    assert atk.eps == 3.0 and atk.alpha == 1.5
    adv = atk(x, y)
    assert float((adv - x).reshape(len(x), -1).norm(dim=1).max()) <= 3.0 + 1e-5


def test_iterative_defaults_and_explicit_no_op(model, data):
    x, y = data
    for cls in (APGD, APGDT, FABT):
        cls(model, steps=1)
    Square(model, n_queries=1)
    # steps=0 is an explicit no-op only with alpha=0 or eps=0 (the HAS generator's T = 0)
    assert torch.equal(PGD(model, 8 / 255, alpha=0, steps=0, random_start=False)(x, y), x)
    assert torch.equal(PGDL2(model, 0.0, steps=0)(x, y), x)
    with pytest.raises(AttackInputError, match="steps must be >= 1"):
        PGD(model, 8 / 255, alpha=2 / 255, steps=0)


def test_pgd_output_unchanged(model, data):
    """Valid hyperparameters give the same outputs as before validation was added: a seeded PGD
    is reproducible, and one step without random start matches a hand-written reference."""
    x, y = data
    a = PGD(model, "8/255", alpha="2/255", steps=5, seed=7)(x, y)
    b = PGD(model, 8 / 255, alpha=2 / 255, steps=5, seed=7)(x, y)
    assert torch.equal(a, b)
    eps, alpha = 8 / 255, 3 / 255
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
    ref = torch.min(torch.max(x + alpha * grad.sign(), (x - eps).clamp(min=0)), (x + eps).clamp(max=1))
    out = PGD(model, eps, alpha=alpha, steps=1, random_start=False)(x, y)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-7)
    fgsm_ref = (x + eps * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(FGSM(model, eps)(x, y), fgsm_ref, rtol=0, atol=1e-7)


def test_wrappers_validate(model):
    embed = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 8))
    anchors = torch.randn(5, 8)
    for tau in (0, -1, NAN, INF, "0.1", True):
        with pytest.raises(AttackInputError, match="tau"):
            AnchorClassifier(embed, anchors, tau=tau)
    with pytest.raises(AttackInputError, match="key"):
        AnchorClassifier(embed, anchors, key=3)
    with pytest.raises(AttackInputError, match="anchors"):
        AnchorClassifier(embed, anchors[:, :1].squeeze(1))
    with pytest.raises(AttackInputError, match="key"):
        LogitsOf(model, key=None)
    AnchorClassifier(embed, anchors, tau=0.07)


# ----------------------------------------------------------------------------- check_eps
@pytest.mark.parametrize("value, expected", [("8/255", 8 / 255), (" 8 / 255 ", 8 / 255), (0.03, 0.03), (0, 0.0),
                                             (1, 1.0), ("1", 1.0), (torch.tensor(0.5), 0.5)])
def test_check_eps_accepts(value, expected):
    assert check_eps(value) == pytest.approx(expected)


@pytest.mark.parametrize("value, text", [(8, "did you mean 8/255?"), ("8", "did you mean 8/255?"),
                                         (2.5, "2.5/255"), (255, "255/255"), (300, "exceeds 1"),
                                         (-0.1, ">= 0"), ("-1/255", ">= 0"), (NAN, "finite"), (INF, "finite"),
                                         ("inf", "finite"), ("a/b", "cannot parse"), (True, "number"),
                                         (None, "number")])
def test_check_eps_refuses(value, text):
    with pytest.raises(AttackInputError, match="eps") as err:
        check_eps(value)
    assert text in str(err.value)


def test_check_eps_names_and_norms():
    with pytest.raises(AttackInputError, match=r"alpha=3 is on the 0-255 scale.*3/255"):
        check_eps(3, "alpha")
    assert check_eps(4.0, norm="L2") == 4.0
    assert check_eps("12", norm="l2") == 12.0
    for bad in (NAN, INF, -1):
        with pytest.raises(AttackInputError):
            check_eps(bad, norm="L2")
    with pytest.raises(AttackInputError, match="norm must be one of 'Linf', 'L2'"):
        check_eps(0.1, norm="L1")


# ----------------------------------------------------------------------------- attack names
def test_check_attack_names_accepts_and_strips():
    assert check_attack_names("pgd20,fgsm, cw ,autoattack") == ["pgd20", "fgsm", "cw", "autoattack"]
    assert check_attack_names(["APGD-CE", "apgd_t", "fab-t", "square", "pgd", "pgd1"]) == [
        "APGD-CE", "apgd_t", "fab-t", "square", "pgd", "pgd1"]


@pytest.mark.parametrize("names, texts", [
    ("pgd20,foo", ["'foo'", "valid names", "pgdK", "autoattack"]),
    ("pgd20,pdg20", ["did you mean 'pgd20'?"]),
    ("pgd2o", ["did you mean 'pgd20'?"]),
    ("autoatack", ["did you mean 'autoattack'?"]),
    (["fgsm", "apgdce2"], ["did you mean 'apgd-ce'?"]),
    ("pgd0", ["'pgd0'", "steps must be >= 1"]),
    ("pgd-0,fgsm", ["steps must be >= 1"]),
    ("foo,bar", ["'foo'", "'bar'"]),
    ("pgd20,,fgsm", ["empty"]),
    ("pgd20,pgd20", ["duplicate"]),
    ("", ["no attacks"]),
    ([], ["no attacks"]),
    ([3], ["string"]),
    (None, ["attacks"]),
])
def test_check_attack_names_refuses(names, texts):
    with pytest.raises(UnknownAttackError) as err:
        check_attack_names(names)
    assert isinstance(err.value, ZSLabError) and isinstance(err.value, ValueError)
    for text in texts:
        assert text in str(err.value), str(err.value)


def test_build_refuses_bad_names_and_budgets(model):
    with pytest.raises(UnknownAttackError, match="steps must be >= 1"):
        build("pgd0", model)
    with pytest.raises(UnknownAttackError, match="did you mean 'pgd20'"):
        build("pgd2o", model)
    with pytest.raises(AttackInputError, match="steps must be >= 1"):
        build("pgd", model, steps=0)
    with pytest.raises(AttackInputError, match="did you mean 8/255"):
        build("fgsm", model, eps=8)
    with pytest.raises(AttackInputError, match="steps"):
        build("pgd7", model, steps=3)
    assert build("pgd", model, steps=3).steps == 3


# ----------------------------------------------------------------------------- robust evaluation
class CountingModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = tiny_model()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


@pytest.mark.parametrize("kwargs, text", [
    ({"attacks": ["fgsm", "foo"]}, "'foo'"),
    ({"attacks": ["fgsm", "pgd0"]}, "steps must be >= 1"),
    ({"attacks": {"a": "fgsm", "b": "pdg20"}}, "did you mean 'pgd20'"),
    ({"eps": 8}, "did you mean 8/255?"),
    ({"eps": -0.1}, "eps"),
    ({"eps": NAN}, "eps"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.0}, "batch_size"),
    ({"seed": 0.5}, "seed"),
])
def test_robust_evaluate_validates_before_running(data, kwargs, text):
    x, y = data
    m = CountingModel()
    kwargs = {"attacks": ["fgsm", "pgd2"], **kwargs}
    with pytest.raises(ValueError) as err:
        robust_evaluate(m, x, y, progress=False, **kwargs)
    assert text in str(err.value)
    assert m.calls == 0


def test_robust_evaluate_mapping_may_repeat_an_attack(data):
    x, y = data
    res = robust_evaluate(tiny_model(), x, y, {"a": "fgsm", "b": "fgsm"}, progress=False, checks=False)
    assert res["robust"]["a"] == res["robust"]["b"]


# ----------------------------------------------------------------------------- robust_zsl_run
BAD_RUN_ARGS = [
    ({"max_images": 0}, "max_images"),
    ({"max_images": -5}, "max_images"),
    ({"max_images": 2.5}, "max_images"),
    ({"max_images": True}, "max_images"),
    ({"eps": 8}, "did you mean 8/255?"),
    ({"eps": "8"}, "did you mean 8/255?"),
    ({"eps": "-8/255"}, "eps"),
    ({"eps": "nan"}, "eps"),
    ({"batch_size": 0}, "batch_size"),
    ({"attacks": ["pgd20", "foo"]}, "'foo'"),
    ({"attacks": ["pgd0"]}, "steps must be >= 1"),
    ({"attacks": []}, "no attacks"),
    ({"seed": "1"}, "seed"),
]


def _fake_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"method": "apn"}))
    (run / "metrics.json").write_text(json.dumps({"final": {"H": 0.5}}))
    return run


@pytest.mark.parametrize("kwargs, text", BAD_RUN_ARGS)
def test_robust_zsl_run_validates_before_loading(tmp_path, monkeypatch, kwargs, text):
    """Nothing is read, loaded or written before the arguments are checked."""
    import zslab.train.runs as runs

    def boom(*a, **k):
        raise AssertionError("the run was touched before its arguments were validated")

    monkeypatch.setattr(runs, "_config", boom)
    monkeypatch.setattr(runs, "load_run", boom)
    monkeypatch.setattr(runs, "_merge_final", boom)
    run = _fake_run(tmp_path)
    before = (run / "metrics.json").read_bytes()
    args = {"attacks": ["fgsm"], **kwargs}
    with pytest.raises(ZSLabError) as err:
        runs.robust_zsl_run(run, progress=False, **args)
    assert text in str(err.value)
    assert (run / "metrics.json").read_bytes() == before


def test_check_robust_args():
    from zslab.train.runs import check_robust_args

    assert check_robust_args("pgd20, fgsm", "8/255", None, 16) == (["pgd20", "fgsm"], pytest.approx(8 / 255))
    assert check_robust_args(["cw"], 0.0, 1, 1)[1] == 0.0
    with pytest.raises(ZSLabError, match="max_images must be >= 1"):
        check_robust_args(["cw"], "8/255", 0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from zslab.train import make_config, train

    run = tmp_path_factory.mktemp("apn") / "r"
    train(make_config("apn", "smoke", overrides=["epochs=1", "progress=false"]), run)
    return run


@pytest.mark.parametrize("kwargs, text", BAD_RUN_ARGS[:6] + BAD_RUN_ARGS[8:11])
def test_robust_zsl_run_leaves_a_real_run_untouched(trained_run, kwargs, text):
    from zslab.train.runs import robust_zsl_run

    metrics = trained_run / "metrics.json"
    before, mtime = metrics.read_bytes(), metrics.stat().st_mtime_ns
    args = {"attacks": ["fgsm"], **kwargs}
    with pytest.raises(ZSLabError) as err:
        robust_zsl_run(trained_run, progress=False, **args)
    assert text in str(err.value)
    assert metrics.read_bytes() == before and metrics.stat().st_mtime_ns == mtime


def test_robust_zsl_run_valid_arguments_still_run(trained_run):
    from zslab.train.runs import robust_zsl_run

    out = robust_zsl_run(trained_run, [" fgsm"], eps="8/255", max_images=10, batch_size=8, progress=False)
    assert out["attacks"] == ["fgsm"] and math.isclose(out["eps"], 8 / 255) and 0 <= out["robust"]["fgsm"] <= 1
    final = json.loads((trained_run / "metrics.json").read_text())["final"]
    assert final["robust"]["attacks"] == ["fgsm"]
