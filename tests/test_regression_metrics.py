"""Refactors change no number: tiny smoke runs of APN, HAS and LAAT (seed 0) give the metrics recorded
in tests/data/regression_metrics.json before zslab's modules were moved (issue #9: methods/, one
engine, eval without train).

Regenerate (only when a change is *meant* to change numbers, and say so in the commit):
``ZSLAB_WRITE_REGRESSION=1 pytest tests/test_regression_metrics.py``.

On the host type that recorded them the comparison is exact (to the last digit); on another CPU
type the float reductions may round differently, so there the check allows a small tolerance.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from zslab.experiments.cards import _cpu  # the CPU model name the result cards record
from zslab.train import make_config, train

GOLDEN = Path(__file__).parent / "data" / "regression_metrics.json"
SHAPES = ["data.image_size=16", "data.n_train_classes=6", "data.n_val_classes=3", "data.n_unseen_classes=3",
          "data.train_per_class=6", "data.val_seen_per_class=2", "data.test_seen_per_class=2",
          "data.unseen_per_class=6"]
RUNS = {
    "apn": ("apn", ["epochs=2", "model.width=4"]),
    "has": ("has", ["epochs=2", "model.width=4"]),
    "laat": ("laat", ["epochs=2", "eval.n_way=3", "eval.n_query=3", "eval.episodes=5", "eval.episodes_attacked=2",
                      "eval.gzsl_per_class=2", "attack.steps=2", "eval.pgd_steps=2", "train.lr_milestones=[1]"]),
}


def _numbers(final: dict) -> dict:
    return {k: v for k, v in sorted(final.items()) if isinstance(v, float) and "seconds" not in k}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for name, (method, over) in RUNS.items():
            cfg = make_config(method, "smoke", overrides=SHAPES + over + ["progress=false"])
            run = tmp_path_factory.mktemp(name) / "run"
            out[name] = _numbers(train(cfg, run))
            history = json.loads((run / "metrics.json").read_text())["history"]
            out[name].update({f"epoch{r['epoch']}_train_loss": r["train_loss"] for r in history})
        return out
    finally:
        torch.set_num_threads(threads)


def test_smoke_metrics_are_the_recorded_ones(measured):
    if os.environ.get("ZSLAB_WRITE_REGRESSION"):
        GOLDEN.write_text(json.dumps({"cpu": _cpu(), "torch": torch.__version__, "metrics": measured}, indent=1))
    golden = json.loads(GOLDEN.read_text())
    assert set(measured) == set(golden["metrics"])
    for name, values in golden["metrics"].items():
        assert set(measured[name]) == set(values), name
        if golden["cpu"] == _cpu() and golden["torch"] == torch.__version__:
            assert measured[name] == values, name  # to the last digit
        else:
            assert measured[name] == pytest.approx(values, abs=0.05), name
