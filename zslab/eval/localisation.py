"""Attribute localisation on the embedded ``shapes`` dataset: how much of each attribute's
attention falls on the part that carries the attribute.

HAS (§3.6, §4.6, Fig. 6) argues that adversarial samples perturbed along the attribute
attention maps improve APN's *localisation*, but on CUB/AwA2/SUN the paper could only show
attention maps: a quantitative score needs per-image part locations. ``shapes`` stores them
(``extras["part_masks"]``, (N, 2, H, W), 0 = head, 1 = body) together with the part of every
attribute (``meta["attribute_part"]``) and the per-image attribute labels
(``extras["attributes"]``, one-hot per part and group), so the score is exact here.

Score. For image i and attribute k, the APN attribute-prototype map h_k(x_i) (the local
branch of HAS §3.2, before max-pooling) is upsampled bilinearly to the image size, made a
non-negative spatial distribution a_ik and summed over the mask M_i,p(k) of the part
p(k) carrying k::

    share_ik = Σ_{u ∈ M_i,p(k)} a_ik(u),      a_ik = normalise(up(h_k(x_i))),  Σ_u a_ik(u) = 1

``share_k`` is the mean of share_ik over the images where attribute k is present (its label
is 1) and the part is visible (non-empty mask). The chance level ``chance_k`` is the mean of
|M_i,p(k)| / (H·W) over the same images: the share of a spatially uniform attention. A model
whose attention is the part mask scores 1, one that attends only outside the part scores 0.

Normalisation (``normalise``):

* ``"shift"`` (default) — subtract the map's minimum, divide by the sum (the CAM convention
  SnapMix uses for its semantic percentage maps); a constant map counts as uniform.
* ``"relu"`` — keep the positive part, divide by the sum (a map with no positive value
  counts as uniform).
* ``"softmax"`` — softmax over the spatial positions (the distribution whose entropy HAS's
  L_DIV raises, §3.6; with this choice even a mask-shaped map scores < 1).

A second, threshold-free score is the *pointing game* (Zhang et al., ECCV 2016): ``peak_k``
is the fraction of the same images whose attention maximum (on the upsampled map; the
location APN's max-pooled L_LOC reads, HAS Eq. 2) lies inside the part. Its chance level is
also ``chance_k`` (a uniformly random peak).

Results: ``per_attribute`` (share, peak, chance, n images), ``per_part`` and ``per_group`` (means
of the per-attribute values), ``mean`` and ``chance`` (over the attributes that occur) and
``lift`` = mean / chance.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from zslab import ZSLabError
from zslab.attacks import eval_mode

__all__ = ["NORMALISATIONS", "attention_distribution", "attention_in_part"]

NORMALISATIONS = ("shift", "relu", "softmax")


def attention_distribution(maps: torch.Tensor, normalise: str = "shift", eps: float = 1e-12) -> torch.Tensor:
    """Turn attention maps (N, K, H, W) into spatial distributions (each (H, W) sums to 1)."""
    if normalise not in NORMALISATIONS:
        raise ZSLabError(f"localisation normalise must be one of {', '.join(NORMALISATIONS)}; got {normalise!r}")
    flat = maps.float().flatten(2)
    if normalise == "softmax":
        return flat.softmax(dim=2).view_as(maps)
    if normalise == "shift":
        flat = flat - flat.amin(dim=2, keepdim=True)
    else:
        flat = flat.clamp_min(0)
    total = flat.sum(dim=2, keepdim=True)
    uniform = torch.full_like(flat, 1.0 / flat.shape[2])
    out = torch.where(total > eps, flat / total.clamp_min(eps), uniform)
    return out.view_as(maps)


def _split_of(data, split: str):
    if hasattr(data, "splits"):
        if split not in data.splits:
            raise ZSLabError(f"dataset '{getattr(data, 'name', '?')}' has no split '{split}'; "
                             f"choose one of {', '.join(data.splits)}")
        return data.splits[split], getattr(data, "meta", {}), getattr(data, "attribute_names", None)
    return data, {}, None


def attention_in_part(model: torch.nn.Module, data, split: str = "test_unseen", *,
                      attribute_part=None, part_names=None, attribute_names=None, attribute_groups=None,
                      normalise: str = "shift", batch_size: int = 256, max_images: int | None = None,
                      progress: bool = True) -> dict:
    """Share of each attribute's attention inside the mask of its part (module docstring).

    ``data`` is a :class:`~zslab.data.ZSLData` whose split ``split`` keeps per-image
    ``part_masks`` and ``attributes`` extras (the embedded ``shapes`` dataset does) — its
    ``meta`` gives ``attribute_part``, ``part_names`` and ``attribute_group`` — or a single
    such split dataset, in which case ``attribute_part`` (part index per attribute) is
    required. ``model(images)`` must return a dict with ``"attention"`` (N, K, h, w), as
    :class:`~zslab.models.APN` does; it runs in eval mode on the model's device (the mode is
    restored). ``max_images``: the first ``max_images`` images of the split.
    """
    ds, meta, names = _split_of(data, split)
    extras = getattr(ds, "extras", {}) or {}
    if "part_masks" not in extras or "attributes" not in extras:
        raise ZSLabError(f"split '{split}' has no per-image part masks / attribute labels (extras 'part_masks', "
                         f"'attributes'); the localisation metric needs the embedded 'shapes' dataset")
    attribute_part = attribute_part if attribute_part is not None else meta.get("attribute_part")
    if attribute_part is None:
        raise ZSLabError("attention_in_part needs attribute_part (the part index of each attribute); pass it or "
                         "a ZSLData whose meta holds 'attribute_part'")
    part_of = torch.as_tensor(list(attribute_part), dtype=torch.long)
    masks_all, labels_all = extras["part_masks"], extras["attributes"]
    n_parts = masks_all.shape[1]
    part_names = list(part_names or meta.get("part_names") or [f"part{p}" for p in range(n_parts)])
    names = list(attribute_names or names or [f"attribute{k}" for k in range(len(part_of))])
    groups = attribute_groups if attribute_groups is not None else meta.get("attribute_group")
    K = len(part_of)
    if labels_all.shape[1] != K or len(names) != K:
        raise ZSLabError(f"attribute_part has {K} entries but the split has {labels_all.shape[1]} attribute labels")
    if part_of.numel() and (part_of.min() < 0 or part_of.max() >= n_parts):
        raise ZSLabError(f"attribute_part must index the {n_parts} part masks; got values {part_of.unique().tolist()}")

    try:
        dev = next(model.parameters()).device
    except StopIteration:
        dev = torch.device("cpu")
    n = len(ds) if max_images is None else min(len(ds), int(max_images))
    share_sum = torch.zeros(K, dtype=torch.float64)
    chance_sum = torch.zeros(K, dtype=torch.float64)
    peak_sum = torch.zeros(K, dtype=torch.float64)
    count = torch.zeros(K, dtype=torch.float64)
    with eval_mode(model):  # restores every submodule's own train/eval flag
        with torch.no_grad():
            for i in tqdm(range(0, n, batch_size), desc="localisation", disable=not progress, leave=False,
                          mininterval=1.0):
                x = ds.images[i:i + batch_size]
                x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
                masks = masks_all[i:i + batch_size].to(dev).float()              # (B, P, H, W)
                present = labels_all[i:i + batch_size].to(dev) > 0.5             # (B, K)
                att = model(x.to(dev))["attention"]
                if att.ndim != 4 or att.shape[1] != K:
                    raise ZSLabError(f"model attention must be (N, {K}, h, w); got {tuple(att.shape)}")
                att = F.interpolate(att.float(), size=x.shape[2:], mode="bilinear", align_corners=False)
                dist = attention_distribution(att, normalise)                     # (B, K, H, W)
                part_mask = masks[:, part_of.to(dev)]                             # (B, K, H, W)
                share = (dist * part_mask).flatten(2).sum(2)                      # (B, K)
                area = part_mask.flatten(2).mean(2)                               # (B, K)
                idx = att.flatten(2).argmax(2, keepdim=True)                      # (B, K, 1)
                peak = part_mask.flatten(2).gather(2, idx)[..., 0]                # (B, K) in {0, 1}
                valid = present & (area > 0)
                peak_sum += torch.where(valid, peak, 0).sum(0).double().cpu()
                share_sum += torch.where(valid, share, 0).sum(0).double().cpu()
                chance_sum += torch.where(valid, area, 0).sum(0).double().cpu()
                count += valid.sum(0).double().cpu()

    occurs = count > 0
    share_k = torch.where(occurs, share_sum / count.clamp_min(1), torch.nan)
    chance_k = torch.where(occurs, chance_sum / count.clamp_min(1), torch.nan)
    peak_k = torch.where(occurs, peak_sum / count.clamp_min(1), torch.nan)
    per_attribute = {names[k]: {"share": float(share_k[k]), "peak": float(peak_k[k]), "chance": float(chance_k[k]),
                                "n": int(count[k]),
                                "part": part_names[int(part_of[k])]} for k in range(K) if occurs[k]}

    def summary(sel: torch.Tensor) -> dict:
        sel = sel & occurs
        if not sel.any():
            return {"share": float("nan"), "peak": float("nan"), "chance": float("nan"), "n_attributes": 0}
        return {"share": float(share_k[sel].mean()), "peak": float(peak_k[sel].mean()),
                "chance": float(chance_k[sel].mean()), "n_attributes": int(sel.sum())}

    per_part = {part_names[p]: summary(part_of == p) for p in range(n_parts)}
    per_group = {}
    if groups is not None:
        for g in dict.fromkeys(groups):
            per_group[g] = summary(torch.tensor([gg == g for gg in groups]))
    overall = summary(torch.ones(K, dtype=torch.bool))
    return {"split": split, "n_images": n, "normalise": normalise, "mean": overall["share"],
            "peak": overall["peak"], "chance": overall["chance"],
            "lift": overall["share"] / overall["chance"] if overall["chance"] > 0 else float("nan"),
            "n_attributes": overall["n_attributes"], "per_part": per_part, "per_group": per_group,
            "per_attribute": per_attribute}
