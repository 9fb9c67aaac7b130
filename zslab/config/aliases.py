"""The one explicit table from the old flat config keys to the nested schema.

zslab's configuration used to be one flat dict (``lr``, ``has_steps``, ``pgd_eps``, ...), and
run folders, result cards, notebooks and README commands still use those keys. Every flat key
is listed here once, with its nested path and the methods it applies to; the table is used

* to accept old keys in ``--set`` (``--set lr=0.01`` = ``--set train.lr=0.01``),
* to migrate an old run folder's or card's flat config into the nested document
  (:func:`zslab.config.migrate`), and
* to derive the engine's flat view of a resolved document (:func:`zslab.config.to_flat`), so
  the training code reads the same keys and computes bit-identical runs.
"""
from __future__ import annotations

ALL = ("apn", "has", "laat")
ATTR = ("apn", "has")
LAAT = ("laat",)

#: flat key -> (nested dotted path, methods the key applies to)
FLAT_ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    # run
    "method": ("run.method", ALL), "dataset": ("run.dataset", ALL), "preset": ("run.preset", ALL),
    "seed": ("run.seed", ALL), "device": ("run.device", ALL), "amp": ("run.amp", ALL),
    "progress": ("run.progress", ALL), "sync_bn": ("run.sync_bn", ALL), "channels_last": ("run.channels_last", ALL),
    "amp_cpu": ("run.amp_cpu", ALL), "compile": ("run.compile", ALL), "num_workers": ("run.num_workers", ALL),
    # train
    "epochs": ("train.epochs", ALL), "batch_size": ("train.batch_size", ALL), "lr": ("train.lr", ALL),
    "weight_decay": ("train.weight_decay", ALL), "lr_gamma": ("train.lr_gamma", ALL),
    "select_metric": ("train.select_metric", ALL),
    "betas": ("train.betas", ALL), "lr_step": ("train.lr_step", ATTR),
    "optimizer": ("train.optimizer", LAAT), "momentum": ("train.momentum", LAAT),
    "lr_milestones": ("train.lr_milestones", LAAT),
    # method: APN / HAS
    "lambda_loc": ("method.lambda_loc", ATTR), "augment": ("method.augment", ATTR),
    "has_steps": ("method.has.steps", ("has",)), "has_step_size": ("method.has.step_size", ("has",)),
    "has_eps": ("method.has.eps", ("has",)), "has_random_start": ("method.has.random_start", ("has",)),
    "has_adv_prob": ("method.has.adv_prob", ("has",)), "has_lambda_rob": ("method.has.lambda_rob", ("has",)),
    "has_lambda_rel": ("method.has.lambda_rel", ("has",)),
    "has_lambda_att_mag": ("method.has.lambda_att_mag", ("has",)),
    "has_lambda_att_ent": ("method.has.lambda_att_ent", ("has",)),
    # method: LAAT
    "objective": ("method.laat.objective", LAAT), "tau": ("method.laat.tau", LAAT),
    "alpha": ("method.laat.alpha", LAAT), "trades_beta": ("method.laat.trades_beta", LAAT),
    # anchors, model, attack (LAAT)
    "encoder": ("anchors.encoder", LAAT), "prompt": ("anchors.prompt", LAAT), "anchor_cache": ("anchors.cache", LAAT),
    "expand": ("anchors.expand", LAAT), "arch": ("model.arch", LAAT),
    "pgd_eps": ("attack.eps", LAAT), "pgd_step": ("attack.step", LAAT), "pgd_steps": ("attack.steps", LAAT),
    "pgd_random_start": ("attack.random_start", LAAT), "adversary": ("attack.adversary", LAAT),
    "adv_lambda_rob": ("attack.adv_lambda_rob", LAAT), "adv_lambda_rel": ("attack.adv_lambda_rel", LAAT),
    # eval
    "eval_batch_size": ("eval.batch_size", ALL),
    "eval_eps": ("eval.eps", LAAT), "eval_pgd_step": ("eval.pgd_step", LAAT), "eval_pgd_steps": ("eval.pgd_steps", LAAT),
    "eval_seed": ("eval.seed", LAAT), "eval_n_way": ("eval.n_way", LAAT), "eval_n_query": ("eval.n_query", LAAT),
    "eval_episodes": ("eval.episodes", LAAT), "eval_episodes_attacked": ("eval.episodes_attacked", LAAT),
    "gzsl_per_class": ("eval.gzsl_per_class", LAAT),
}

#: nested paths that exist without a flat key (the flat view nests them under "model"/"data")
NESTED_ONLY: dict[str, tuple[str, ...]] = {
    "model.backbone": ATTR, "model.width": ATTR, "model.weights": ATTR,
}

#: flat keys of a LAAT run that LAAT never reads but that old LAAT run folders carry; the flat
#: view keeps them at these values so cache keys and resumed runs of old folders stay equal
LAAT_INERT: dict[str, object] = {
    "model": {"backbone": "small", "width": 32, "weights": None},
    "lr_step": 10, "lambda_loc": 1.0,
}

#: flat keys added after run folders existed; absent in an old folder means "the default"
LATE_KEYS: tuple[str, ...] = ("sync_bn", "channels_last", "amp_cpu", "compile", "num_workers",
                              "adversary", "adv_lambda_rob", "adv_lambda_rel")

#: nested path -> flat key (the inverse table)
NESTED_TO_FLAT: dict[str, str] = {path: flat for flat, (path, _) in FLAT_ALIASES.items()}


def applies(path: str, method: str) -> bool:
    """Whether nested ``path`` (a leaf) is a setting of ``method``."""
    if path in NESTED_ONLY:
        return method in NESTED_ONLY[path]
    flat = NESTED_TO_FLAT.get(path)
    if flat is None:
        return True  # data.* and anything the table does not restrict
    return method in FLAT_ALIASES[flat][1]


def methods_of(path: str) -> tuple[str, ...]:
    if path in NESTED_ONLY:
        return NESTED_ONLY[path]
    flat = NESTED_TO_FLAT.get(path)
    return FLAT_ALIASES[flat][1] if flat else ALL
