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


def robust_zsl_run(run_dir: Path, attacks: list[str], eps="8/255", max_images: int | None = None,
                   batch_size: int = 256, device: str | None = None, progress: bool = True, seed: int = 0) -> dict:
    """Zero-shot robustness of a run's selected checkpoint: the model classifies unseen-class
    test images among the unseen classes only (the ZSL T1 setting, HAS Eq. 8) and each attack
    perturbs the image within an L∞ ball of radius ``eps`` in [0, 1] pixel space.

    Writes ``final["robust"]`` into ``metrics.json``: clean and per-attack accuracy, the
    per-example worst case over attacks, their per-class means, and runtime warnings.
    ``max_images`` evaluates a class-balanced, deterministic subset (the first images of each
    class) to bound the cost of strong attacks on a CPU.
    """
    import torch

    from zslab.attacks import parse_eps
    from zslab.eval.robust import robust_evaluate
    from zslab.train.engine import iterate_batches

    config, data, model, ckpt = load_run(run_dir, "best", device=device)
    dev = next(model.parameters()).device
    unseen = data.unseen_classes
    model.set_classes(data.class_attributes[unseen].float())
    xs, ys = [], []
    for x, y in iterate_batches(data.splits["test_unseen"], 1024):
        xs.append(x)
        ys.append(y)
    x, y = torch.cat(xs), torch.cat(ys)
    if max_images is not None and max_images < len(y):
        per = max(1, max_images // len(unseen))
        keep = torch.cat([(y == c).nonzero().flatten()[:per] for c in unseen.tolist()])
        x, y = x[keep], y[keep]
    pos = torch.full((len(data.class_names),), -1, dtype=torch.long)
    pos[unseen] = torch.arange(len(unseen))
    try:
        eps_value = parse_eps(eps)
    except ValueError as e:
        raise ZSLabError(str(e)) from None
    res = robust_evaluate(model, x.to(dev), pos[y].to(dev), attacks=list(attacks), eps=eps_value,
                          batch_size=batch_size, per_class=True, progress=progress, seed=seed)
    summary = {"setting": "zsl (unseen images, unseen candidates)", "eps": eps_value, "eps_text": str(eps),
               "n": res["n"], "attacks": list(attacks), "clean": res["clean"], "robust": res["robust"],
               "worst": res["worst"], "per_class": res.get("per_class"), "warnings": res["warnings"]}
    metrics_path = run_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"config": config}
    except json.JSONDecodeError:
        raise ZSLabError(f"{metrics_path} is corrupt; delete it and re-run zslab eval") from None
    metrics.setdefault("final", {})
    metrics["final"] = dict(metrics["final"] or {})
    metrics["final"]["robust"] = summary
    atomic_write_json(metrics, metrics_path)
    return summary
