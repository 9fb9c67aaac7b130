"""Episodic N-way zero-/few-shot and GZSL N-way evaluation, clean and under attack (LAAT §4.1–4.3).

Interface (what LAAT training and the notebooks call)
=====================================================

``zero_shot_episodes(model, dataset, class_ids, anchors, n_way=5, n_query=20, episodes=2000,
attack=None, seed=0, batch_size=256, *, n_shot=0, anchor_mode="text", beta=2.0, eps=8/255,
tau=1.0, key=None, max_episodes_attacked=None, return_indices=False, device=None,
progress=True) -> dict``

    ``model`` maps [0, 1] images ``(B, 3, H, W)`` to embeddings ``(B, D)`` (or a dict; name
    the entry with ``key``); ``dataset`` is a split such as ``data.splits["test_unseen"]``
    (any Dataset yielding ``(image, global label)``; a :class:`~zslab.data.base.ZSLData`
    means its ``test_unseen`` split); ``class_ids`` the global classes episodes draw from
    (``data.unseen_classes``; ``None``: every label in ``dataset``); ``anchors`` an
    ``(n_classes, D)`` tensor/array whose row ``c`` is the (already expanded) anchor of
    global class ``c``. Returns::

        {"mean", "ci95", "episodes", "per_episode",        # clean accuracy (fractions)
         "robust": {attack_name: {"mean", "ci95", "episodes", "per_episode", "clean_mean"},
                    ... , "worst": {...} (with 2+ attacks)},   # {} without attack
         "n_way", "n_query", "n_shot", "anchor_mode", "beta", "eps", "seed",
         "n_images",                # images of class_ids whose clean features were computed
         "n_classes",               # len(class_ids); must be >= n_way
         "warnings": [str],         # runtime flags of robust_evaluate (gradients, train mode, ...)
         "indices": [{"classes", "support", "query"}, ...]}   # with return_indices=True

    ``ci95`` is the half-width of the 95 % Student-t interval over episodes (NaN for one
    episode). ``attack``: ``None``, an attack name of :func:`zslab.attacks.build`
    (``"fgsm"``, ``"pgd20"``, ``"cw"``, ``"autoattack"``), a factory
    ``classifier -> Attack``, or a list / dict of these.

``gzsl_nway(model, dataset, anchors, per_class=100, attack=None, seed=0, *, class_ids=None,
splits=("test_seen", "val_unseen", "test_unseen"), eps=8/255, tau=1.0, key=None,
batch_size=256, device=None, progress=True) -> dict``

    N-way classification over **all** rows of ``anchors`` (N = number of classes), on
    ``per_class`` seeded samples per class. ``dataset`` is a ZSLData (images: the union of
    ``splits``, i.e. held-out images of every class, none trained on) or a Dataset. Returns
    ``{"clean", "robust": {name: acc}, "worst", "n", "n_classes", "per_class", "eps", "seed",
    "seen", "unseen", "H", "robust_seen": {name: acc}, "robust_unseen": {name: acc},
    "warnings"}`` where ``clean``/``robust``/``worst`` are accuracies over the sampled images
    (= per-class mean when every class has ``per_class`` images), ``seen``/``unseen``/``H``
    the per-class means over ``data.train_classes`` / ``data.unseen_classes`` and their
    harmonic mean (ZSLData only, when both occur). ``robust`` is ``{}`` and ``worst`` None
    without an attack. No calibration (μ = 0), as in LAAT Table 3.

LAAT final metrics: ``zs_clean = r["mean"]`` and ``zs_pgd = r["robust"]["pgd20"]["mean"]``
from ``zero_shot_episodes(model, data.splits["test_unseen"], data.unseen_classes, anchors,
n_way=min(5, len(data.unseen_classes)), attack="pgd20")``; ``gzsl_clean = g["clean"]``,
``gzsl_pgd = g["robust"]["pgd20"]`` from ``gzsl_nway(model, data, anchors, attack="pgd20")``.
``n_way`` cannot exceed the number of novel classes (CIFAR-10 with 3 novel classes: 3-way).

The text-anchor datasets (``load_dataset("folder" | "cifar-fs" | "miniimagenet", root=...)``)
return a :class:`~zslab.data.base.ZSLData` with ``class_attributes=None``,
``attribute_names=[]``, ``class_names`` = on-disk names (``"pickup_truck"``, the spelling of
anchor-file class lists), ``meta["text_names"]`` = the same with spaces (prompt text),
``train_classes`` / ``val_classes`` / ``unseen_classes`` = seen / validation / novel global
ids (CIFAR-FS and MiniImageNet: 0–63 / 64–79 / 80–99, the LAAT anchor-file row order), and
splits ``train``, ``val_seen`` (held-out seen), ``test_seen`` (held-out seen, for GZSL),
``val_unseen`` (validation classes; empty without them), ``test_unseen`` (novel classes).

Protocol
========
* **Episodes (LAAT §4.2, Table 2).** Each episode draws ``n_way`` classes from
  ``class_ids`` and, per class, ``n_shot + n_query`` distinct images (seeded
  ``numpy.random.Generator``; the draws do not depend on the attack or the batch size).
  The first ``n_shot`` are the support set, the others the queries, so shots never overlap
  queries. A query is classified by the largest cosine between its L2-normalised feature and
  the ``n_way`` episode anchors (§3.7). The paper: 5-way, 20 queries, 2000 episodes, mean ±
  95 % interval.
* **Anchors (§4.3).** ``anchor_mode="text"``: the text anchors â_y (``n_shot`` may be 0);
  ``"prototype"``: image prototypes v_y = Norm₂{Σᵢ f(xᵢ)} over the K support images;
  ``"blend"``: image-text blended anchors â*_y = Norm₂{β·â_y + Σᵢ f(xᵢ)}, β = 2. Here f(xᵢ)
  is the L2-normalised feature (the paper's image features are normalised embeddings), so β
  weighs the text anchor against each shot. Support images are never attacked.
* **Attacks (§4.1).** Under an attack the model seen by the attack is the episode's
  ``n_way``-way classifier :class:`~zslab.attacks.AnchorClassifier` (logits
  cos(f(x), a_y)/τ over the episode's anchors), so AutoAttack's targeted stages use
  ``n_way − 1`` targets (``min(9, N − 1)``: the standard attack's 9 targets need 10 classes). Each attacked episode goes through
  :func:`zslab.eval.robust.robust_evaluate`: only clean-correct queries are attacked and a
  query counts as robust only if it is correct clean and under the attack (per-example worst
  case over several attacks), so robust ≤ clean per query. Attack seeds are ``seed + e`` for
  episode ``e``.
* **Cost.** Clean features are computed once per image (all images of ``class_ids``, one
  pass) and reused by every episode. A perturbation depends on the episode's classes, so
  attacks run per episode: ``E · n_way · n_query`` attacked images, e.g. PGD-20 on 2000
  5-way episodes is 200,000 queries × 21 forward/backward passes ≈ 40× the images of the
  CIFAR-FS test classes. ``max_episodes_attacked=M`` attacks only the first M episodes
  (clean statistics still use all episodes; ``robust[...]["clean_mean"]`` is the clean
  accuracy on the same M episodes, for a like-for-like comparison).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from zslab import ZSLabError
from zslab.attacks import AnchorClassifier, Attack, build, eval_mode, parse_eps
from zslab.data.base import ZSLData
from zslab.eval.robust import robust_evaluate
from zslab.eval.zsl import harmonic_mean, per_class_accuracy

#: LAAT's episode size (LAAT Sec. 4.1: 5-way); ``eval.n_way: auto`` takes at most this many classes
PAPER_N_WAY = 5


def resolve_n_way(value, n_classes: int) -> int:
    """``eval.n_way`` for ``n_classes`` novel classes: ``auto`` = min(5, n_classes) (LAAT's 5-way
    where the data allows it); an integer must not exceed ``n_classes``."""
    if value == "auto":
        return min(PAPER_N_WAY, int(n_classes))
    return int(value)

__all__ = ["zero_shot_episodes", "gzsl_nway", "extract_features", "mean_ci95", "dataset_labels",
           "episode_anchors", "ANCHOR_MODES"]

ANCHOR_MODES = ("text", "prototype", "blend")


# --------------------------------------------------------------------------- helpers

def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % Student-t confidence interval of the mean
    (``t_{0.975, n-1} · s / √n``; NaN for fewer than two values)."""
    from scipy import stats  # scipy.stats is slow to import and only this helper needs it

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ZSLabError("no values to average")
    if v.size < 2:
        return float(v.mean()), float("nan")
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def dataset_labels(dataset) -> torch.Tensor:
    """Global labels of a dataset: its ``labels`` attribute when it has one (zslab datasets),
    else by iterating (decodes every image)."""
    lab = getattr(dataset, "labels", None)
    if isinstance(lab, torch.Tensor) and lab.ndim == 1 and lab.shape[0] == len(dataset):
        return lab.long().cpu()
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def _images(dataset, idx: Sequence[int]) -> torch.Tensor:
    """Stack the images ``idx`` of a dataset as float ``(n, 3, H, W)`` in [0, 1]."""
    imgs = getattr(dataset, "images", None)
    if isinstance(imgs, torch.Tensor):
        x = imgs[torch.as_tensor(list(idx), dtype=torch.long)]
        return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    return torch.stack([dataset[int(i)][0] for i in idx]).float()


def _model_device(model) -> torch.device:
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")


def _embed(model, x: torch.Tensor, key: str | None) -> torch.Tensor:
    out = model(x)
    if isinstance(out, Mapping):
        if key is None or key not in out:
            raise ZSLabError(f"the model returned a dict; pass key= naming the embedding entry "
                             f"(keys: {sorted(map(str, out))})")
        out = out[key]
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ZSLabError(f"the model must return embeddings (batch, D); got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return out


def extract_features(model, dataset, indices: Sequence[int] | None = None, *, batch_size: int = 256,
                     key: str | None = None, device=None, progress: bool = True) -> torch.Tensor:
    """L2-normalised embeddings ``(n, D)`` (float32, CPU) of ``dataset[indices]`` (all by
    default), computed once in eval mode without gradients."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ZSLabError(f"batch_size must be a positive integer; got {batch_size!r}")
    idx = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    dev = torch.device(device) if device is not None else _model_device(model)
    feats = []
    with eval_mode(model), torch.no_grad():
        for start in tqdm(range(0, len(idx), batch_size), disable=not progress, desc="features",
                          unit="batch", leave=False):
            x = _images(dataset, idx[start:start + batch_size]).to(dev)
            feats.append(F.normalize(_embed(model, x, key).float(), dim=1).cpu())
    if not feats:
        raise ZSLabError("no images to embed")
    out = torch.cat(feats)
    if not bool(torch.isfinite(out).all()):
        raise ZSLabError("the model produced non-finite embeddings")
    return out


def _check_anchors(anchors) -> torch.Tensor:
    A = torch.as_tensor(np.asarray(anchors) if not isinstance(anchors, torch.Tensor) else anchors)
    if A.ndim != 2 or A.shape[0] < 2 or not A.is_floating_point():
        raise ZSLabError(f"anchors must be a float matrix (n_classes, D) with row c = class c; "
                         f"got shape {tuple(A.shape)}")
    A = A.detach().float().cpu()
    if not bool(torch.isfinite(A).all()):
        raise ZSLabError("anchors contain NaN or infinite values")
    zero = (A.norm(dim=1) == 0).nonzero().flatten().tolist()
    if zero:
        raise ZSLabError(f"anchors of classes {zero[:5]} have zero norm")
    return F.normalize(A, dim=1)


def episode_anchors(text_anchors: torch.Tensor, support_feats: torch.Tensor | None, mode: str = "text",
                    beta: float = 2.0) -> torch.Tensor:
    """The ``(N, D)`` anchors of one episode (LAAT §4.3).

    ``text_anchors`` (N, D) L2-normalised â_y; ``support_feats`` (N, K, D) L2-normalised f(xᵢ)
    of the support images. ``"text"``: â_y; ``"prototype"``: v_y = Norm₂{Σᵢ f(xᵢ)};
    ``"blend"``: â*_y = Norm₂{β·â_y + Σᵢ f(xᵢ)}.
    """
    if mode == "text":
        return text_anchors
    if support_feats is None or support_feats.ndim != 3 or support_feats.shape[1] == 0:
        raise ZSLabError(f"anchor_mode={mode!r} needs n_shot >= 1 support images per class")
    total = support_feats.sum(dim=1)
    if mode == "prototype":
        return F.normalize(total, dim=1)
    if mode == "blend":
        return F.normalize(float(beta) * text_anchors + total, dim=1)
    raise ZSLabError(f"anchor_mode must be one of {ANCHOR_MODES}; got {mode!r}")


def _attack_specs(attack) -> list[tuple[str, str | Callable]]:
    if attack is None:
        return []
    if isinstance(attack, Attack):
        raise ZSLabError("pass an attack name (e.g. 'pgd20') or a factory classifier -> Attack: the "
                         "classifier the attack sees changes with every episode")
    if isinstance(attack, str) or callable(attack):
        attack = [attack]
    items = list(attack.items()) if isinstance(attack, Mapping) else [
        (a if isinstance(a, str) else getattr(a, "__name__", f"attack{k}"), a) for k, a in enumerate(attack)]
    out, names = [], set()
    for name, spec in items:
        if isinstance(spec, Attack) or not (isinstance(spec, str) or callable(spec)):
            raise ZSLabError(f"attack {name!r}: expected a name or a factory classifier -> Attack; got "
                             f"{type(spec).__name__}")
        if name in names or name in ("clean", "worst"):
            raise ZSLabError(f"duplicate or reserved attack name {name!r}")
        names.add(name)
        out.append((str(name), spec))
    return out


def _build_attacks(specs, classifier, eps: float, seed: int) -> dict[str, Attack]:
    out = {}
    for name, spec in specs:
        if isinstance(spec, str):
            try:
                atk = build(spec, classifier, eps=eps, seed=seed)
            except ValueError as e:
                raise ZSLabError(str(e)) from None
        else:
            atk = spec(classifier)
            if not isinstance(atk, Attack):
                raise ZSLabError(f"attack factory {name!r} must return a zslab Attack; got {type(atk).__name__}")
        out[name] = atk
    return out


def _stats(per_episode: list[float]) -> dict:
    mean, half = mean_ci95(per_episode)
    return {"mean": mean, "ci95": half, "episodes": len(per_episode), "per_episode": list(per_episode)}


def _train_mode_warning(model) -> list[str]:
    if isinstance(model, nn.Module) and any(m.training for m in model.modules()):
        return ["model was in train mode; it was evaluated in eval mode and its flags were restored"]
    return []


def _check_int(value, what: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ZSLabError(f"{what} must be an integer >= {lo}; got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- episodes

def zero_shot_episodes(model, dataset, class_ids, anchors, n_way: int = 5, n_query: int = 20,
                       episodes: int = 2000, attack=None, seed: int = 0, batch_size: int = 256, *,
                       n_shot: int = 0, anchor_mode: str = "text", beta: float = 2.0, eps=8 / 255,
                       tau: float = 1.0, key: str | None = None, max_episodes_attacked: int | None = None,
                       return_indices: bool = False, device=None, progress: bool = True) -> dict:
    """N-way zero-shot (or K-shot) episodes on novel classes, clean and under attack.

    See the module docstring for arguments, protocol and the returned dict.
    """
    if isinstance(dataset, ZSLData):
        if class_ids is None:
            class_ids = dataset.unseen_classes
        dataset = dataset.splits["test_unseen"]
    n_way = _check_int(n_way, "n_way", 2)
    n_query = _check_int(n_query, "n_query", 1)
    n_shot = _check_int(n_shot, "n_shot", 0)
    episodes = _check_int(episodes, "episodes", 1)
    if anchor_mode not in ANCHOR_MODES:
        raise ZSLabError(f"anchor_mode must be one of {ANCHOR_MODES}; got {anchor_mode!r}")
    if anchor_mode != "text" and n_shot < 1:
        raise ZSLabError(f"anchor_mode={anchor_mode!r} needs n_shot >= 1")
    eps = parse_eps(eps)
    specs = _attack_specs(attack)
    n_att = episodes if max_episodes_attacked is None else min(
        _check_int(max_episodes_attacked, "max_episodes_attacked", 0), episodes)
    A = _check_anchors(anchors)

    labels = dataset_labels(dataset)
    present = set(labels.unique().tolist())
    classes = sorted(present) if class_ids is None else sorted({int(c) for c in torch.as_tensor(class_ids).tolist()})
    bad = [c for c in classes if not 0 <= c < A.shape[0]]
    if bad:
        raise ZSLabError(f"classes {bad[:5]} have no anchor row (anchors has {A.shape[0]} rows)")
    if len(classes) < n_way:
        raise ZSLabError(f"{n_way}-way episodes need at least {n_way} classes; got {len(classes)}")
    need = n_shot + n_query
    pools = {}
    for c in classes:
        pool = (labels == c).nonzero().flatten().numpy()
        if pool.size < need:
            raise ZSLabError(f"class {c} has {pool.size} images in the dataset; an episode needs "
                             f"n_shot + n_query = {need} per class")
        pools[c] = pool

    # Clean features: once per image of the candidate classes (LAAT §3.7 features).
    used = np.sort(np.concatenate([pools[c] for c in classes]))
    feats_used = extract_features(model, dataset, used, batch_size=batch_size, key=key, device=device,
                                  progress=progress)
    if feats_used.shape[1] != A.shape[1]:
        raise ZSLabError(f"embeddings of dimension {feats_used.shape[1]} do not match anchors of dimension "
                         f"{A.shape[1]}")
    row = {int(i): r for r, i in enumerate(used.tolist())}
    dev = torch.device(device) if device is not None else _model_device(model)

    rng = np.random.default_rng(seed)
    classes_arr = np.asarray(classes)
    clean_acc: list[float] = []
    robust_acc: dict[str, list[float]] = {name: [] for name, _ in specs}
    worst_acc: list[float] = []
    clean_on_attacked: list[float] = []
    warns: list[str] = _train_mode_warning(model)
    indices = []
    y_local = torch.arange(n_way).repeat_interleave(n_query)
    bar = tqdm(range(episodes), disable=not progress, desc=f"{n_way}-way episodes", unit="ep", leave=False)
    for e in bar:
        ep_classes = rng.choice(classes_arr, size=n_way, replace=False)
        support, query = [], []
        for c in ep_classes:
            pick = rng.choice(pools[int(c)], size=need, replace=False)
            support.append(pick[:n_shot])
            query.append(pick[n_shot:])
        q_idx = np.concatenate(query)
        s_feats = None
        if n_shot:
            s_feats = torch.stack([feats_used[[row[int(i)] for i in s]] for s in support])  # (N, K, D)
        ep_anchors = episode_anchors(A[torch.as_tensor(ep_classes)], s_feats, anchor_mode, beta)
        q_feats = feats_used[[row[int(i)] for i in q_idx]]
        clean_correct = (q_feats @ ep_anchors.t()).argmax(dim=1) == y_local
        clean_acc.append(float(clean_correct.float().mean()))
        if return_indices:
            indices.append({"classes": ep_classes.tolist(), "support": [s.tolist() for s in support],
                            "query": [q.tolist() for q in query]})
        if specs and e < n_att:
            clf = AnchorClassifier(model, ep_anchors.to(dev), tau=tau, key=key)
            atks = _build_attacks(specs, clf, eps, seed + e)
            x = _images(dataset, q_idx.tolist()).to(dev)
            r = robust_evaluate(clf, x, y_local.to(dev), attacks=atks, eps=eps, batch_size=max(len(q_idx), 1),
                                progress=False, seed=seed + e, checks=(e == 0))
            ok = clean_correct.to(r["per_example"]["worst"].device)  # robust <= clean per query, exactly
            for name in robust_acc:
                robust_acc[name].append(float((r["per_example"][name] & ok).float().mean()))
            worst_acc.append(float((r["per_example"]["worst"] & ok).float().mean()))
            clean_on_attacked.append(clean_acc[-1])
            for w in r["warnings"]:
                if w not in warns and not w.startswith("model was in train mode"):
                    warns.append(w)
            bar.set_postfix_str(f"clean {np.mean(clean_acc):.3f} robust {np.mean(worst_acc):.3f}")
    bar.close()

    result = _stats(clean_acc)
    result["robust"] = {}
    if specs and n_att:
        clean_sub = float(np.mean(clean_on_attacked))
        for name, accs in robust_acc.items():
            result["robust"][name] = {**_stats(accs), "clean_mean": clean_sub}
        if len(specs) > 1:
            result["robust"]["worst"] = {**_stats(worst_acc), "clean_mean": clean_sub}
    result.update({"n_way": n_way, "n_query": n_query, "n_shot": n_shot, "anchor_mode": anchor_mode,
                   "beta": float(beta), "eps": eps, "seed": seed, "n_images": int(used.size),
                   "n_classes": len(classes), "warnings": warns})
    if return_indices:
        result["indices"] = indices
    return result


# --------------------------------------------------------------------------- GZSL

class _IndexedImages(torch.utils.data.Dataset):
    """Images of several datasets, addressed by (dataset number, index) pairs."""

    def __init__(self, datasets: Sequence, items: Sequence[tuple[int, int]]):
        self.datasets = list(datasets)
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        d, j = self.items[i]
        x, y = self.datasets[d][j]
        return x, torch.as_tensor(y, dtype=torch.long)


def gzsl_nway(model, dataset, anchors, per_class: int = 100, attack=None, seed: int = 0, *,
              class_ids=None, splits: Sequence[str] = ("test_seen", "val_unseen", "test_unseen"),
              eps=8 / 255, tau: float = 1.0, key: str | None = None, batch_size: int = 256, device=None,
              progress: bool = True) -> dict:
    """GZSL N-way accuracy over all classes of a dataset (LAAT §4.2, Table 3), clean and
    under attack; see the module docstring for arguments and the returned dict."""
    per_class = _check_int(per_class, "per_class", 1)
    A = _check_anchors(anchors)
    eps = parse_eps(eps)
    specs = _attack_specs(attack)
    data = dataset if isinstance(dataset, ZSLData) else None
    if data is not None:
        unknown = [s for s in splits if s not in data.splits]
        if unknown:
            raise ZSLabError(f"unknown splits {unknown}; valid: {list(data.splits)}")
        parts = [data.splits[s] for s in splits]
        if A.shape[0] != len(data.class_names):
            raise ZSLabError(f"anchors have {A.shape[0]} rows but {data.name} has {len(data.class_names)} classes")
    else:
        parts = [dataset]
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[tuple[int, int]]] = {}
    for d, part in enumerate(parts):
        if len(part) == 0:
            continue
        for j, c in enumerate(dataset_labels(part).tolist()):
            by_class.setdefault(int(c), []).append((d, j))
    wanted = sorted(by_class) if class_ids is None else sorted({int(c) for c in torch.as_tensor(class_ids).tolist()})
    missing = [c for c in wanted if c not in by_class]
    if missing:
        raise ZSLabError(f"no images of classes {missing[:5]} in the evaluated splits")
    bad = [c for c in wanted if not 0 <= c < A.shape[0]]
    if bad:
        raise ZSLabError(f"classes {bad[:5]} have no anchor row (anchors has {A.shape[0]} rows)")
    items, item_labels = [], []
    for c in wanted:
        pool = by_class[c]
        pick = rng.permutation(len(pool))[:per_class] if len(pool) > per_class else np.arange(len(pool))
        items.extend(pool[k] for k in np.sort(pick))
        item_labels.extend([c] * len(pick))
    images = _IndexedImages(parts, items)
    labels = torch.tensor(item_labels, dtype=torch.long)
    dev = torch.device(device) if device is not None else _model_device(model)
    warns = _train_mode_warning(model)

    feats = extract_features(model, images, batch_size=batch_size, key=key, device=device, progress=progress)
    if feats.shape[1] != A.shape[1]:
        raise ZSLabError(f"embeddings of dimension {feats.shape[1]} do not match anchors of dimension {A.shape[1]}")
    pred = (feats @ A.t()).argmax(dim=1)
    clean_vec = pred == labels
    result: dict = {"n": len(items), "n_classes": int(A.shape[0]), "per_class": per_class, "eps": eps,
                    "seed": seed, "clean": float(clean_vec.float().mean()), "robust": {}, "worst": None}
    worst_pred = None
    if specs:
        clf = AnchorClassifier(model, A.to(dev), tau=tau, key=key)
        atks = _build_attacks(specs, clf, eps, seed)
        loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False)
        r = robust_evaluate(clf, loader, attacks=atks, eps=eps, batch_size=batch_size, progress=progress,
                            seed=seed, device=dev)
        result["robust"] = dict(r["robust"])
        result["worst"] = r["worst"]
        worst_pred = r["per_example"]
        for w in r["warnings"]:
            if w not in warns and not w.startswith("model was in train mode"):
                warns.append(w)
        if r["clean"] != result["clean"]:
            diff = abs(r["clean"] - result["clean"])
            if diff > 1.0 / max(len(items), 1):
                warns.append(f"clean accuracy differs between feature pass ({result['clean']:.4f}) and attack "
                             f"pass ({r['clean']:.4f}): the model is not deterministic")
    if data is not None:
        seen = data.train_classes.tolist()
        unseen = data.unseen_classes.tolist()
        s = [c for c in seen if c in wanted]
        u = [c for c in unseen if c in wanted]
        if s and u:
            result["seen"] = per_class_accuracy(pred, labels, s)
            result["unseen"] = per_class_accuracy(pred, labels, u)
            result["H"] = harmonic_mean(result["unseen"], result["seen"])
            if worst_pred is not None:
                for name in result["robust"]:
                    ok = worst_pred[name]
                    hit = torch.where(ok, labels, torch.full_like(labels, -1))
                    result.setdefault("robust_seen", {})[name] = per_class_accuracy(hit, labels, s)
                    result.setdefault("robust_unseen", {})[name] = per_class_accuracy(hit, labels, u)
    result["warnings"] = warns
    return result
