"""The `zslab` command end to end on the embedded dataset (tiny sizes)."""
import json
import subprocess
import sys

from zslab.cli import main

TINY = ["--set", "epochs=2", "--set", "model.width=4", "--set", "progress=false",
        "--set", "data.train_per_class=10", "--set", "data.val_seen_per_class=4",
        "--set", "data.test_seen_per_class=4", "--set", "data.unseen_per_class=8"]


def test_train_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "apn", "--dataset", "shapes", "--preset", "smoke", "--out", str(run)] + TINY) == 0
    printed = json.loads(capsys.readouterr().out)
    m = json.loads((run / "metrics.json").read_text())
    assert printed["final"]["zsl_t1"] == m["final"]["zsl_t1"]
    assert m["config"]["epochs"] == 2 and len(m["history"]) == 2
    assert set(m["final"]) >= {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "mu"}
    # eval recomputes the same numbers from best.pt
    assert main(["eval", str(run)]) == 0
    again = json.loads((run / "metrics.json").read_text())["final"]
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "mu"):
        assert abs(again[k] - m["final"][k]) < 1e-6, k
    # zero-shot robustness of the selected checkpoint (issue 3): robust <= clean, per-class means
    assert main(["eval", str(run), "--attacks", "fgsm,pgd5", "--eps", "8/255", "--max-images", "20"]) == 0
    rob = json.loads((run / "metrics.json").read_text())["final"]["robust"]
    assert rob["n"] == 20 and abs(rob["eps"] - 8 / 255) < 1e-12
    assert set(rob["robust"]) == {"fgsm", "pgd5"}
    assert rob["worst"] <= min(rob["robust"].values()) <= rob["clean"] <= 1.0
    assert set(rob["per_class"]) >= {"clean", "fgsm", "pgd5", "worst"}
    capsys.readouterr()
    # a finished run cannot be overwritten by accident
    assert main(["train", "apn", "--preset", "smoke", "--out", str(run)] + TINY) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_errors_are_one_line(tmp_path):
    cases = [
        (["train", "apn", "--preset", "huge", "--out", str(tmp_path / "a")], "unknown preset 'huge'"),
        (["train", "apn", "--dataset", "imagenet", "--out", str(tmp_path / "b")], "unknown dataset 'imagenet'"),
        (["train", "apn", "--out", str(tmp_path / "c"), "--set", "model.backbone=vgg"], "'model.backbone': Input should be 'small', 'resnet18'"),
        (["train", "apn", "--out", str(tmp_path / "d"), "--set", "model.backbone=resnet50",
          "--set", f"model.weights={tmp_path}/none.pth"], "weight file not found"),
        (["train", "apn", "--out", str(tmp_path / "e"), "--set", "data.colours=9"], "colours"),
        (["eval", str(tmp_path / "nothing")], "not a zslab run directory"),
    ]
    for argv, msg in cases:
        r = subprocess.run([sys.executable, "-m", "zslab"] + argv, capture_output=True, text=True)
        assert r.returncode == 2, (argv, r.stderr)
        lines = [l for l in r.stderr.strip().splitlines() if l]
        assert len(lines) == 1 and msg in lines[0], (argv, r.stderr)
