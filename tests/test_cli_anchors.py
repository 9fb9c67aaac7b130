"""`zslab anchors encode|expand|stats|consistency` (issue 5 item 8)."""
import json
from pathlib import Path

import numpy as np
import pytest

from zslab.anchors import expand, mean_pairwise_cosine
from zslab.cli import main

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def clustered(n, dim, spread=0.35, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(dim)
    a = c / np.linalg.norm(c) + spread * rng.standard_normal((n, dim))
    return (a / np.linalg.norm(a, axis=1, keepdims=True) * rng.uniform(0.5, 3, (n, 1))).astype(np.float32)


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_expand_and_stats(tmp_path, capsys):
    a = clustered(12, 8)
    np.save(tmp_path / "a.npy", a)
    res = run_json(capsys, ["anchors", "expand", str(tmp_path / "a.npy"), "--fit-rows", "8",
                            "-o", str(tmp_path / "e.npy")])
    out = np.load(tmp_path / "e.npy")
    assert out.dtype == np.float32 and out.shape == (12, 8)
    # fitted on rows 0..7 only, applied to all 12 rows
    np.testing.assert_allclose(out, expand(a, fit_rows=8), atol=1e-6)
    assert np.abs(out - expand(a, fit_rows=12)).max() > 1e-3
    assert res["fit_rows"] == 8 and res["mean_cos_after"] < res["mean_cos_before"] - 0.1
    st = run_json(capsys, ["anchors", "stats", str(tmp_path / "a.npy"), "--fit-rows", "8"])
    assert st["mean_cos_before"] == pytest.approx(mean_pairwise_cosine(a), abs=1e-9)
    assert st["mean_cos_after"] == pytest.approx(mean_pairwise_cosine(expand(a, fit_rows=8)), abs=1e-6)
    assert st["mean_cos_after_fit_rows"] == pytest.approx(mean_pairwise_cosine(expand(a, fit_rows=8)[:8]), abs=1e-6)
    assert st["mean_cos_before_with_self"] == pytest.approx(mean_pairwise_cosine(a, include_self=True), abs=1e-9)
    default = run_json(capsys, ["anchors", "stats", str(tmp_path / "a.npy")])  # fit on all rows
    assert default["fit_rows"] == 12
    assert default["mean_cos_after"] == pytest.approx(mean_pairwise_cosine(expand(a, fit_rows=12)), abs=1e-6)


def test_bad_input_exit_code_and_message(tmp_path, capsys):
    a = clustered(6, 4)
    np.save(tmp_path / "a.npy", a)
    assert main(["anchors", "expand", str(tmp_path / "a.npy"), "--fit-rows", "9", "-o", str(tmp_path / "e.npy")]) == 2
    assert "fit_rows=9" in capsys.readouterr().err and not (tmp_path / "e.npy").exists()
    a[3] = np.nan
    np.save(tmp_path / "nan.npy", a)
    assert main(["anchors", "stats", str(tmp_path / "nan.npy")]) == 2
    assert "non-finite" in capsys.readouterr().err
    spread = np.array([[1, 0], [0.98, 0.17], [0.94, 0.34], [-0.87, 0.5]], dtype=np.float32)
    np.save(tmp_path / "wide.npy", spread)
    assert main(["anchors", "stats", str(tmp_path / "wide.npy")]) == 2
    assert "hemisphere" in capsys.readouterr().err
    assert main(["anchors", "stats", str(tmp_path / "none.npy")]) == 2
    assert "not found" in capsys.readouterr().err


def test_consistency(tmp_path, capsys):
    t = np.radians([0, 10, 30, 70, 150, 160])
    np.save(tmp_path / "c.npy", np.stack([np.cos(t), np.sin(t)], 1).astype(np.float32))
    (tmp_path / "c.txt").write_text("A\nB\nC\nD\nE\nF\n")
    (tmp_path / "g1.json").write_text(json.dumps([["g1", "A"], ["g1", "B"], ["g1", "C"]]))
    (tmp_path / "g2.json").write_text(json.dumps([["g2", "D"], ["g2", "F"], ["g3", "E"]]))
    res = run_json(capsys, ["anchors", "consistency", str(tmp_path / "c.npy"), "--classes", str(tmp_path / "c.txt"),
                            "--groups", str(tmp_path / "g1.json"), str(tmp_path / "g2.json"), "--per-group"])
    # hand-worked in tests/test_anchors.py: g1 rank sum 9 (all <= 4), g2 rank sum 7 (3 of 4 <= 4)
    assert res["rank_sum"] == pytest.approx(8.0) and res["top5_ratio"] == pytest.approx(0.875)
    assert res["n_groups"] == 2 and res["skipped"] == ["g3"] and res["per_group"]["g2"]["rank_sum"] == 7
    (tmp_path / "g3.json").write_text(json.dumps([["g", "A"], ["g", "zebra"]]))
    assert main(["anchors", "consistency", str(tmp_path / "c.npy"), "--classes", str(tmp_path / "c.txt"),
                 "--groups", str(tmp_path / "g3.json")]) == 2
    assert "zebra" in capsys.readouterr().err


def test_encode_from_file_spec_roundtrip(tmp_path, capsys):
    names = ["apple", "aquarium_fish", "pear"]
    raw = clustered(3, 5, seed=3)
    np.save(tmp_path / "src.npy", raw)
    (tmp_path / "src_classes.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "want.txt").write_text("pear\naquarium fish\n")
    res = run_json(capsys, ["anchors", "encode", "--encoder", f"file:{tmp_path / 'src.npy'}",
                            "--classes", str(tmp_path / "want.txt"), "-o", str(tmp_path / "out.npy")])
    out = np.load(tmp_path / "out.npy")
    want = raw[[2, 1]] / np.linalg.norm(raw[[2, 1]], axis=1, keepdims=True)
    np.testing.assert_allclose(out, want, atol=1e-6)
    assert res["n_classes"] == 2 and res["dim"] == 5
    assert (tmp_path / "out_classes.txt").read_text().split("\n")[:2] == ["pear", "aquarium fish"]
    # the written pair is itself a valid file: spec
    run_json(capsys, ["anchors", "encode", "--encoder", f"file:{tmp_path / 'out.npy'}",
                      "--classes", str(tmp_path / "want.txt"), "-o", str(tmp_path / "again.npy")])
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), out, atol=1e-6)
    assert main(["anchors", "encode", "--encoder", "glove", "--classes", str(tmp_path / "want.txt"),
                 "-o", str(tmp_path / "x.npy")]) == 2
    assert "clip:ARCH:PATH" in capsys.readouterr().err


def test_real_clip_anchors_reproduce_table1_and_s3(capsys):
    folder = SHARED_DATA / "clip_text_anchors"
    splits = SHARED_DATA / "fewshot_splits" / "cifar-fs"
    npy = folder / "cifarfs_vitb16_text_features.npy"
    if not npy.is_file() or not splits.is_dir():
        pytest.skip(f"real CLIP anchors / CIFAR-FS splits not found under {SHARED_DATA} (../shared/data)")
    st = run_json(capsys, ["anchors", "stats", str(npy)])
    # LAAT Table 1, ViT-B/16: 0.761 -> 0.195 (full 100x100 mean, expansion fitted on all 100 classes)
    assert st["mean_cos_before_with_self"] == pytest.approx(0.7611, abs=1e-4)
    assert st["mean_cos_after_with_self"] == pytest.approx(0.1951, abs=1e-4)
    st64 = run_json(capsys, ["anchors", "stats", str(npy), "--fit-rows", "64"])
    assert st64["mean_cos_after"] == pytest.approx(0.17455, abs=1e-4)
    res = run_json(capsys, ["anchors", "consistency", str(npy), "--classes", str(folder / "cifarfs_classes.txt"),
                            "--groups"] + [str(splits / f"{s}.json") for s in ("train", "val", "test")])
    # LAAT Table S3 (ViT-B/16): 225, 61.4%; the released anchors give 226.1, 61.8%
    assert res["rank_sum"] == pytest.approx(226.1, abs=1e-6) and res["top5_ratio"] == pytest.approx(0.618, abs=1e-6)
    assert res["n_groups"] == 20
