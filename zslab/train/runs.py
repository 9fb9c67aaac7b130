"""Evaluate a finished run directory (the ``zslab eval`` command)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from zslab import ZSLabError
from zslab.attacks import check_attack_names, check_eps
from zslab.attacks.base import check_int, check_seed
from zslab.data.batches import iterate_batches
from zslab.eval.episodes import resolve_n_way, zero_shot_episodes
from zslab.eval.localisation import attention_in_part
from zslab.eval.robust import robust_evaluate
from zslab.eval.zsl import compute_scores, evaluate_split_scores
from zslab.train.engine import Trainer, load_run, read_run_config
from zslab.utils.io import atomic_write_json, load_checkpoint


def _config(run_dir: Path) -> dict:

    return read_run_config(run_dir)


def _anchor_trainer(run_dir: Path, config: dict, device: str | None, data=None):
    """A Trainer over a finished text-anchor (LAAT) run with its selected checkpoint loaded: the
    strategy rebuilds the anchors and owns the evaluation protocol (episodes, GZSL N-way).
    ``data``: the dataset the run was trained on, when the caller holds it (else it is loaded)."""
    if device is not None:
        config = dict(config, device=device)
    tr = Trainer(config, run_dir, resume=True, data=data)
    path = run_dir / "best.pt"
    tr._load_model_state(load_checkpoint(path, map_location=tr.device), path)
    tr.model.eval()
    return tr


def _merge_final(run_dir: Path, config: dict, update: dict, key: str | None = None) -> None:
    metrics_path = run_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"config": config}
    except json.JSONDecodeError:
        raise ZSLabError(f"{metrics_path} is corrupt; delete it and re-run zslab eval") from None
    final = dict(metrics.get("final") or {})
    if key is None:
        final.update(update)
    else:
        final[key] = update
    metrics["final"] = final
    try:
        atomic_write_json(metrics, metrics_path)
    except ZSLabError as e:  # disk full, read-only folder: the results computed are handed back, not lost
        raise ResultsNotSavedError(str(e), results=update if key is None else {key: update}) from None


class ResultsNotSavedError(ZSLabError):
    """Evaluation results were computed but ``metrics.json`` could not be written (the previous
    file is intact); ``results`` holds them, so the caller can print or store them elsewhere."""
    def __init__(self, message: str, results: dict):
        super().__init__(message)
        self.results = results


def evaluate_run(run_dir: Path, device: str | None = None) -> dict:
    """Recompute validation (μ selection) and test metrics of the run's ``best.pt``; merge them
    into ``metrics.json`` "final". Text-anchor (LAAT) runs are re-evaluated with their strategy's
    protocol (zero-shot episodes and GZSL N-way, clean and PGD; :meth:`LAATStrategy.test`)."""
    run_dir = Path(run_dir)
    config = _config(run_dir)
    if config.get("method") == "laat":
        tr = _anchor_trainer(run_dir, config, device)
        final = tr.test(mu=tr.best.get("mu", 0.0))
        final["best_epoch"] = tr.best["epoch"]
        _merge_final(run_dir, config, final)
        return final
    config, data, model, ckpt = load_run(run_dir, "best", device=device)
    dev = next(model.parameters()).device
    A = data.class_attributes.float()
    scores = {s: compute_scores(model, data.splits[s], A, dev, config["eval_batch_size"])
              for s in ("val_seen", "val_unseen", "test_seen", "test_unseen")}
    val = evaluate_split_scores(data, {k: scores[k] for k in ("val_seen", "val_unseen")})
    test = evaluate_split_scores(data, {k: scores[k] for k in ("test_seen", "test_unseen")}, mu=val["mu"])
    final = dict(test)
    final.update({k: v for k, v in val.items() if k.startswith("val_")})
    final["best_epoch"] = ckpt["best"]["epoch"]
    _merge_final(run_dir, config, final)
    return final


def check_robust_args(attacks, eps="8/255", max_images: int | None = None, batch_size: int = 256,
                      seed: int = 0) -> tuple[list[str], float]:
    """Validate the arguments of :func:`robust_zsl_run` (``zslab eval --attacks ... --eps ...
    --max-images ... --batch-size ...``) without touching the run: returns the attack names
    (see :func:`zslab.attacks.check_attack_names`) and ε as a float (see
    :func:`zslab.attacks.check_eps`: L∞ in [0, 1], so ``8`` is refused with "did you mean
    8/255?"). ``max_images`` must be None or an integer >= 1, ``batch_size`` an integer >= 1,
    ``seed`` an integer (or None). Raises :class:`~zslab.ZSLabError` (also a :class:`ValueError`)."""
    names = check_attack_names(attacks)
    eps_value = check_eps(eps, "eps")
    if max_images is not None:
        check_int(max_images, "max_images", 1, hint=" (use None to attack every image)")
    check_int(batch_size, "batch_size", 1)
    check_seed(seed)
    return names, eps_value


def robust_zsl_run(run_dir: Path, attacks: list[str], eps="8/255", max_images: int | None = None,
                   batch_size: int = 256, device: str | None = None, progress: bool = True, seed: int = 0) -> dict:
    """Zero-shot robustness of a run's selected checkpoint: the model classifies unseen-class
    test images among the unseen classes only (the ZSL T1 setting, HAS Eq. 8) and each attack
    perturbs the image within an L∞ ball of radius ``eps`` in [0, 1] pixel space.

    Writes ``final["robust"]`` into ``metrics.json``: clean and per-attack accuracy, the
    per-example worst case over attacks, their per-class means, and runtime warnings.
    ``max_images`` evaluates a class-balanced, deterministic subset (the first images of each
    class) to bound the cost of strong attacks on a CPU.

    Every argument is validated (:func:`check_robust_args`) before anything is loaded, computed
    or written.
    """


    attacks, eps_value = check_robust_args(attacks, eps, max_images, batch_size, seed)
    run_dir = Path(run_dir)
    config = _config(run_dir)
    if config.get("method") == "laat":
        return _robust_anchor_run(run_dir, config, attacks, eps_value, str(eps), max_images, device, progress, seed)
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
    res = robust_evaluate(model, x.to(dev), pos[y].to(dev), attacks=list(attacks), eps=eps_value,
                          batch_size=batch_size, per_class=True, progress=progress, seed=seed)
    summary = {"setting": "zsl (unseen images, unseen candidates)", "eps": eps_value, "eps_text": str(eps),
               "n": res["n"], "attacks": list(attacks), "clean": res["clean"], "robust": res["robust"],
               "worst": res["worst"], "per_class": res.get("per_class"), "warnings": res["warnings"]}
    _merge_final(run_dir, config, summary, key="robust")
    return summary


def _robust_anchor_run(run_dir: Path, config: dict, attacks, eps: float, eps_text: str, max_images, device,
                       progress: bool, seed: int) -> dict:
    """LAAT runs: the attacks on N-way zero-shot episodes over the novel classes (the paper's
    protocol, LAAT §4.1; each attack sees that episode's N-way cosine logits, so AutoAttack's
    targeted stages use N−1 targets). ``max_images`` bounds the attacked queries: the first
    ⌈max_images / (N·n_query)⌉ episodes are attacked (all of the config's episodes otherwise)."""


    tr = _anchor_trainer(run_dir, config, device)
    cfg, d = tr.config, tr.data
    n_way = min(resolve_n_way(cfg["eval_n_way"], len(d.unseen_classes)), len(d.unseen_classes))
    per_episode = n_way * int(cfg["eval_n_query"])
    attacked = cfg["eval_episodes_attacked"]
    if max_images is not None:
        attacked = max(1, math.ceil(max_images / per_episode))
    res = zero_shot_episodes(tr.model, d.splits["test_unseen"], d.unseen_classes, tr.strategy.anchors,
                             n_way=n_way, n_query=cfg["eval_n_query"], episodes=cfg["eval_episodes"],
                             attack=list(attacks), seed=seed, batch_size=cfg["eval_batch_size"], eps=eps,
                             tau=float(cfg["tau"]), max_episodes_attacked=attacked, progress=progress)
    summary = {"setting": f"{n_way}-way zero-shot episodes on novel classes", "eps": eps, "eps_text": eps_text,
               "attacks": list(attacks), "clean": res["mean"], "clean_ci95": res["ci95"],
               "episodes": res["episodes"],
               "robust": {k: v["mean"] for k, v in res["robust"].items() if k != "worst"},
               "robust_ci95": {k: v["ci95"] for k, v in res["robust"].items() if k != "worst"},
               "clean_on_attacked": {k: v["clean_mean"] for k, v in res["robust"].items() if k != "worst"},
               "worst": res["robust"].get("worst", {}).get("mean") if "worst" in res["robust"] else None,
               "warnings": res["warnings"]}
    _merge_final(run_dir, config, summary, key="robust")
    return summary


def localisation_run(run_dir: str | Path, split: str = "test_unseen", normalise: str = "shift",
                     batch_size: int = 256, max_images: int | None = None, device: str | None = None,
                     progress: bool = True) -> dict:
    """Localisation score of a run's validation-selected checkpoint (``best.pt``).

    Rebuilds the run with :func:`zslab.train.engine.load_run`, scores it with
    :func:`attention_in_part` and writes the result into ``metrics.json`` ``final["localisation"]``
    (atomically); returns it.
    """
    run_dir = Path(run_dir)
    config, data, model, _ = load_run(run_dir, "best", device=device)
    res = attention_in_part(model, data, split, normalise=normalise, batch_size=batch_size,
                            max_images=max_images, progress=progress)
    res["method"] = config.get("method")
    metrics_path = run_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"config": config}
    except json.JSONDecodeError:
        raise ZSLabError(f"{metrics_path} is corrupt; delete it and re-run zslab eval") from None
    metrics["final"] = dict(metrics.get("final") or {})
    metrics["final"]["localisation"] = res
    atomic_write_json(metrics, metrics_path)
    return res
