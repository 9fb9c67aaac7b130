"""Evaluate a finished run directory (the ``zslab eval`` command)."""
from __future__ import annotations

import json
from pathlib import Path

from zslab import ZSLabError
from zslab.train.engine import compute_scores, evaluate_split_scores, load_run
from zslab.utils.io import atomic_write_json


def evaluate_run(run_dir: Path, device: str | None = None) -> dict:
    """Recompute validation (μ selection) and test metrics of the run's ``best.pt``; merge them
    into ``metrics.json`` "final"."""
    config, data, model, ckpt = load_run(run_dir, "best", device=device)
    dev = next(model.parameters()).device
    A = data.class_attributes.float()
    scores = {s: compute_scores(model, data.splits[s], A, dev, config["eval_batch_size"])
              for s in ("val_seen", "val_unseen", "test_seen", "test_unseen")}
    val = evaluate_split_scores(data, {k: scores[k] for k in ("val_seen", "val_unseen")})
    test = evaluate_split_scores(data, {k: scores[k] for k in ("test_seen", "test_unseen")}, mu=val["mu"])
    metrics_path = run_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"config": config}
    except json.JSONDecodeError:
        raise ZSLabError(f"{metrics_path} is corrupt; delete it and re-run zslab eval") from None
    final = dict(metrics.get("final") or {})
    final.update(test)
    final.update({k: v for k, v in val.items() if k.startswith("val_")})
    final["best_epoch"] = ckpt["best"]["epoch"]
    metrics["final"] = final
    atomic_write_json(metrics, metrics_path)
    return final
