"""Class anchors: normalisation, cosine statistics, LAAT expansion, MMC anchors, semantic consistency.

References (LAAT = "Language-Driven Anchors for Zero-Shot Adversarial Robustness", CVPR 2024):

* high cosine-similarity ("CoS") problem: LAAT Sec. 3.3, Table 1;
* expansion: LAAT Sec. 3.4, Eq. (1)-(2), Appendix B (Eq. 5-7) and Appendix C (Algorithm 1);
  novel classes reuse the training fit (Sec. 3.6: "the internal parameters of the expansion
  algorithm, such as phi_0, are pre-computed using anchors from the training categories");
* semantic consistency: LAAT Appendix G, Tables S2-S3;
* Max-Mahalanobis centres: Pang et al., "Rethinking softmax cross-entropy loss for adversarial
  robustness", ICLR 2020 (LAAT ref. [36]), whose centres come from Pang, Du & Zhu,
  "Max-Mahalanobis linear discriminant analysis networks", ICML 2018.

Every function accepts a NumPy array or a torch tensor of shape ``(n_classes, dim)`` and returns
the same kind (a tensor keeps its device; float32/float64 keep their dtype, other dtypes come back
as float32).  The arithmetic is done in float64 on the CPU: anchors are fixed targets, not
trained parameters, so no gradient flows through these functions.

The expansion in closed form
----------------------------
Algorithm 1 rotates the centre ``v`` to the pole ``p = e_1`` with some rotation ``R``, rescales the
first hyperspherical (polar) angle and rotates back.  Writing ``c_i = <a_i, v> = cos(theta_i)``,
the rotated anchor is ``R a_i = (c_i, R(a_i - c_i v))`` (the second part has a zero first
coordinate because ``R`` is orthogonal and ``a_i - c_i v`` is orthogonal to ``v``).  Eq. (7) keeps
every other angular coordinate, i.e. it scales coordinates 2..n by ``sin(theta'_i)/sin(theta_i)``,
so after ``R^T``::

    a'_i = cos(theta'_i) v + sin(theta'_i) u_i,   u_i = (a_i - c_i v) / ||a_i - c_i v||,
    theta'_i = (pi/2) * theta_i / theta_0,        theta_0 = max over training anchors of theta_i.

``R`` cancels, so the result is the same for every orthogonal ``R`` with ``R v = p`` (the paper's
Aguilera & Perez-Aguila rotation, a Householder reflection, ...): O(n*dim) work, no dim x dim
matrix.  ``tests/test_anchors.py`` checks this against the explicit rotate / hyperspherical
coordinates / rotate-back algorithm.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from zslab import ZSLabError

__all__ = [
    "normalize",
    "mean_pairwise_cosine",
    "AnchorExpansion",
    "expand",
    "mmc_anchors",
    "rank_matrix",
    "semantic_consistency",
    "load_group_pairs",
    "load_anchor_file",
    "read_class_list",
]

_HALF_PI = math.pi / 2


# ----------------------------------------------------------------------------- helpers


def _as_float64(anchors, what: str = "anchors") -> np.ndarray:
    """A float64 NumPy copy of a 2-D array or tensor; clear errors for the wrong shape or type."""
    if isinstance(anchors, torch.Tensor):
        if anchors.is_complex():
            raise ZSLabError(f"{what}: complex tensors are not supported")
        arr = anchors.detach().to("cpu", torch.float64, copy=True).numpy()
    else:
        try:
            arr = np.asarray(anchors)
        except Exception as exc:  # ragged lists and the like
            raise ZSLabError(f"{what}: cannot be read as a 2-D numeric array ({exc})") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ZSLabError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise ZSLabError(f"{what}: complex arrays are not supported")
        arr = np.array(arr, dtype=np.float64)  # always a private copy: callers may work in place
    if arr.ndim != 2:
        raise ZSLabError(f"{what}: expected a 2-D array (n_classes, dim), got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ZSLabError(f"{what}: empty array of shape {tuple(arr.shape)}")
    return arr


def _like(result: np.ndarray, template):
    """Return ``result`` as the same kind of object as ``template`` (see the module docstring)."""
    if isinstance(template, torch.Tensor):
        dtype = template.dtype if template.dtype in (torch.float32, torch.float64) else torch.float32
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=template.device, dtype=dtype)
    dtype = getattr(template, "dtype", None)
    dtype = dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.float32
    return np.ascontiguousarray(result, dtype=dtype)


def _name_rows(rows: Sequence[int], class_names: Sequence[str] | None, limit: int = 10) -> str:
    rows = [int(r) for r in rows]
    if class_names is not None and len(class_names) > max(rows, default=-1):
        items = [f"{r} ({class_names[r]!r})" for r in rows[:limit]]
    else:
        items = [str(r) for r in rows[:limit]]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(items) + more


def _check_names(class_names, n: int) -> list[str] | None:
    if class_names is None:
        return None
    names = [str(c) for c in class_names]
    if len(names) != n:
        raise ZSLabError(f"{n} anchor rows but {len(names)} class names: they must match one to one")
    return names


def _row_norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def _normalize64(arr: np.ndarray, class_names: Sequence[str] | None = None, what: str = "anchors") -> np.ndarray:
    """Unit rows of the float64 array ``arr``, normalised **in place** (``arr`` is a private copy)."""
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise ZSLabError(f"{what}: non-finite values (NaN or inf) in rows {_name_rows(bad, class_names)}")
    sq = np.einsum("ij,ij->i", arr, arr)
    risky = np.flatnonzero(~((sq > 1e-280) & (sq < 1e280)))  # zero rows, or squares that under/overflow
    if risky.size:
        scale = np.abs(arr[risky]).max(axis=1)
        zero = risky[scale == 0]
        if zero.size:
            raise ZSLabError(f"{what}: zero-norm rows (cannot be normalised) {_name_rows(zero, class_names)}")
        arr[risky] /= scale[:, None]
        sq[risky] = np.einsum("ij,ij->i", arr[risky], arr[risky])
    arr /= np.sqrt(sq)[:, None]
    return arr


# ----------------------------------------------------------------------------- basics


def normalize(anchors, class_names: Sequence[str] | None = None):
    """L2-normalise each row.

    Rows with NaN/inf or zero norm raise :class:`ZSLabError` naming the rows (with their class
    names when ``class_names`` is given).
    """
    arr = _as_float64(anchors)
    names = _check_names(class_names, arr.shape[0])
    return _like(_normalize64(arr, names), anchors)


def mean_pairwise_cosine(anchors, *, include_self: bool = False) -> float:
    """Average cosine similarity between anchors (LAAT's "average CoS", Table 1).

    Rows are L2-normalised first. With ``include_self=False`` (default) this is the mean of
    ``cos(a_i, a_j)`` over the ``n(n-1)`` ordered pairs ``i != j`` (equivalently the mean over the
    unordered pairs): the statistic for which MMC anchors give exactly ``-1/(n-1)`` (LAAT Sec. 3.3
    quotes "-0.01 on Cifar100", i.e. -1/99).

    With ``include_self=True`` it is the mean of all ``n*n`` entries of the cosine matrix,
    diagonal ones included, i.e. ``||sum_i a_i||^2 / n^2``.  This is the convention that reproduces
    LAAT Table 1 for ViT-B/16 on the released CIFAR anchors (0.761 -> 0.195 with the expansion fitted
    on all 100 classes); the two differ by ``(1 - m)/n``.
    Computed without forming the n x n matrix.
    """
    a = _normalize64(_as_float64(anchors))
    n = a.shape[0]
    total = float(np.sum(a.sum(axis=0) ** 2))  # sum over all i, j of <a_i, a_j>
    if include_self:
        return total / (n * n)
    if n < 2:
        raise ZSLabError("mean_pairwise_cosine needs at least 2 anchors (no pairs i != j)")
    return (total - n) / (n * (n - 1))


# ----------------------------------------------------------------------------- expansion


_BLOCK = 256  # rows per block: keeps temporaries in cache, no n x dim scratch arrays


def _polar(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos, sin (= ||a - <a,v> v||) and polar angle of the unit rows ``a`` around ``v``."""
    c = a @ v
    s = np.empty_like(c)
    for i in range(0, a.shape[0], _BLOCK):
        w = a[i:i + _BLOCK] - np.multiply.outer(c[i:i + _BLOCK], v)
        s[i:i + _BLOCK] = _row_norms(w)
    theta = np.arctan2(s, c)  # accurate near 0 and pi, unlike arccos(c)
    return c, s, theta


class AnchorExpansion:
    """LAAT's anchor expansion (Sec. 3.4, Appendix C Algorithm 1), fitted on training classes.

    ``fit(train_anchors)`` normalises the rows and stores

    * ``center_``: ``v = sum_i a_i / ||sum_i a_i||`` over the *training* anchors (Alg. 1 line 1);
    * ``theta0_``: ``theta_0 = max_i arccos <a_i, v>`` over the training anchors (Alg. 1 line 6).

    ``transform(anchors)`` maps every (normalised) anchor ``a`` with polar angle
    ``theta = arccos <a, v>`` to ``cos(theta') v + sin(theta') u`` with
    ``theta' = (pi/2) * theta / theta_0`` and ``u`` the unit direction of ``a - <a, v> v``: the
    polar angle is stretched linearly, the azimuthal direction is kept (Alg. 1 lines 8-12, Eq. 7),
    so the training anchors fill the hemisphere around ``v`` and the farthest lands on its equator.

    Conventions and edge cases:

    * Novel classes reuse the training ``v`` and ``theta_0`` (LAAT Sec. 3.6).  A novel anchor
      farther from ``v`` than every training anchor (``theta > theta_0``) lands beyond the equator
      (``theta' > pi/2``); that is allowed.  If ``theta' > pi`` (``theta > 2 theta_0``) the new
      polar angle is not a polar angle any more: read literally, Eq. (2) would wrap the point to
      polar angle ``2 pi - theta'`` on the *opposite* azimuth.  ``beyond_pi="error"`` (default)
      raises :class:`ZSLabError` naming those rows; ``beyond_pi="clamp"`` clamps ``theta'`` at
      ``pi`` with a warning, which maps all of them onto ``-v`` (they become indistinguishable).
    * An anchor parallel to ``v`` (``theta = 0``) has no azimuthal direction; it stays at the
      pole (``theta' = 0``), which is what the formula gives in the limit.
    * The paper requires the training anchors to lie in an open hemisphere around ``v``
      (``theta_0 < pi/2``, Sec. 3.4: "If the anchors are clustered around the polar, i.e.
      phi_0 < pi/2").  Otherwise the map would not expand (``theta_0 = pi/2`` is the identity,
      larger ``theta_0`` *contracts* angles and raises cosines), so ``fit`` raises
      :class:`ZSLabError`.  It also raises when the centre is undefined (the training anchors
      sum to ~0), when fewer than 2 training anchors are given, and when all training anchors
      coincide (``theta_0 = 0``).
    """

    def __init__(self, *, beyond_pi: str = "error"):
        if beyond_pi not in ("error", "clamp"):
            raise ZSLabError(f"beyond_pi must be 'error' or 'clamp', got {beyond_pi!r}")
        self.beyond_pi = beyond_pi
        self.center_: np.ndarray | None = None
        self.theta0_: float | None = None
        self.n_fit_: int | None = None

    def __repr__(self) -> str:
        fitted = "unfitted" if self.theta0_ is None else f"theta0={self.theta0_:.4f} rad, n_fit={self.n_fit_}"
        return f"AnchorExpansion({fitted}, beyond_pi={self.beyond_pi!r})"

    def fit(self, train_anchors, class_names: Sequence[str] | None = None) -> "AnchorExpansion":
        arr = _as_float64(train_anchors, "training anchors")
        names = _check_names(class_names, arr.shape[0])
        n = arr.shape[0]
        if n < 2:
            raise ZSLabError(f"the expansion needs at least 2 training anchors, got {n}")
        a = _normalize64(arr, names, "training anchors")
        s = a.sum(axis=0)
        norm = float(np.linalg.norm(s))
        if not norm > 1e-8 * n:
            raise ZSLabError(
                f"degenerate centre: the {n} normalised training anchors sum to ~0 (||sum|| = {norm:.3g}), "
                "so the centre v of Algorithm 1 is undefined")
        v = s / norm
        _, _, theta = _polar(a, v)
        i0 = int(np.argmax(theta))
        theta0 = float(theta[i0])
        if theta0 >= _HALF_PI:
            raise ZSLabError(
                f"training anchors span more than a hemisphere around their centre: max polar angle "
                f"theta_0 = {math.degrees(theta0):.2f} deg (row {_name_rows([i0], names)}) >= 90 deg. "
                "LAAT's expansion assumes theta_0 < 90 deg (Sec. 3.4); beyond it the map would contract "
                "the anchors instead of expanding them")
        if theta0 < 1e-7:
            raise ZSLabError("all training anchors coincide (theta_0 = 0): the expansion is undefined")
        self.center_, self.theta0_, self.n_fit_ = v, theta0, n
        return self

    def _check_fitted(self):
        if self.center_ is None:
            raise ZSLabError("AnchorExpansion is not fitted: call .fit(train_anchors) first")

    def polar_angles(self, anchors) -> np.ndarray:
        """Polar angles (radians) of the normalised ``anchors`` around the fitted centre."""
        self._check_fitted()
        arr = _as_float64(anchors)
        if arr.shape[1] != self.center_.shape[0]:
            raise ZSLabError(f"anchors have dim {arr.shape[1]}, the expansion was fitted on dim {self.center_.shape[0]}")
        return _polar(_normalize64(arr), self.center_)[2]

    def transform(self, anchors, class_names: Sequence[str] | None = None):
        """Expand ``anchors`` (any classes) with the fitted centre and ``theta_0``; unit rows out."""
        self._check_fitted()
        arr = _as_float64(anchors)
        names = _check_names(class_names, arr.shape[0])
        v = self.center_
        if arr.shape[1] != v.shape[0]:
            raise ZSLabError(f"anchors have dim {arr.shape[1]}, the expansion was fitted on dim {v.shape[0]}")
        a = _normalize64(arr, names)
        c, s, theta = _polar(a, v)
        new = theta * (_HALF_PI / self.theta0_)
        over = np.flatnonzero(new > math.pi)
        if over.size:
            msg = (f"rows {_name_rows(over, names)} lie farther than 2*theta_0 = "
                   f"{math.degrees(2 * self.theta0_):.2f} deg from the training centre (max "
                   f"{math.degrees(theta[over].max()):.2f} deg): their expanded polar angle would exceed 180 deg")
            if self.beyond_pi == "error":
                raise ZSLabError(msg + "; pass beyond_pi='clamp' to map them onto the antipode -v")
            warnings.warn(msg + "; clamped at 180 deg (mapped onto -v)", RuntimeWarning, stacklevel=2)
            new = np.minimum(new, math.pi)
        # a' = cos(new) v + sin(new) (a - c v) / s = ratio * a + (cos(new) - ratio * c) v, written
        # into a.  Rows parallel to v (s ~ 0) have no azimuth: ratio = 0 keeps them at the pole.
        ratio = np.divide(np.sin(new), s, out=np.zeros_like(s), where=s > 1e-12)
        beta = np.cos(new) - ratio * c
        for i in range(0, a.shape[0], _BLOCK):
            blk = a[i:i + _BLOCK]
            blk *= ratio[i:i + _BLOCK, None]
            blk += np.multiply.outer(beta[i:i + _BLOCK], v)
        a /= _row_norms(a)[:, None]  # remove rounding drift (the norm is 1 analytically)
        return _like(a, anchors)

    def fit_transform(self, train_anchors, class_names: Sequence[str] | None = None):
        return self.fit(train_anchors, class_names).transform(train_anchors, class_names)


def expand(anchors, *, fit_rows: int, class_names: Sequence[str] | None = None, beyond_pi: str = "error"):
    """Expand all rows of ``anchors`` with the fit on rows ``0..fit_rows-1`` (the training classes).

    Use ``fit_rows=len(anchors)`` to fit on every row (what LAAT Table 1 does on the 100 CIFAR-100
    classes).  ``fit_rows`` must satisfy ``2 <= fit_rows <= n``.
    """
    arr = _as_float64(anchors)
    n = arr.shape[0]
    if isinstance(fit_rows, bool) or not isinstance(fit_rows, (int, np.integer)):
        raise ZSLabError(f"fit_rows must be an integer number of training rows, got {fit_rows!r}")
    if not 2 <= fit_rows <= n:
        raise ZSLabError(f"fit_rows={fit_rows} must satisfy 2 <= fit_rows <= {n} (the number of anchor rows)")
    names = _check_names(class_names, n)
    exp = AnchorExpansion(beyond_pi=beyond_pi).fit(arr[:fit_rows], None if names is None else names[:fit_rows])
    return _like(exp.transform(arr, names), anchors)


# ----------------------------------------------------------------------------- MMC anchors


def mmc_anchors(n_classes: int, dim: int, seed: int | None = None) -> np.ndarray:
    """Max-Mahalanobis centres as unit vectors: ``n_classes`` rows in ``R^dim``, float64.

    Pairwise cosine is exactly ``-1/(n-1)`` (the vertices of a regular simplex centred at the
    origin, the configuration of Pang et al. 2018/2020 up to an orthogonal transform); they need
    ``dim >= n_classes - 1``.  Construction: ``sqrt(n/(n-1)) * H^T`` with ``H`` the
    ``(n-1) x n`` Helmert basis of the sum-zero subspace, placed in the first ``n-1`` coordinates;
    with ``seed`` the simplex is moved by a seeded random orthonormal frame of ``R^dim``
    (so different seeds give rotated copies, the same seed the same anchors).
    Use ``torch.as_tensor(..., dtype=torch.float32)`` for a tensor.
    """
    for name, val in (("n_classes", n_classes), ("dim", dim)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise ZSLabError(f"{name} must be an integer, got {val!r}")
    if n_classes < 2:
        raise ZSLabError(f"MMC anchors need n_classes >= 2, got {n_classes}")
    if dim < n_classes - 1:
        raise ZSLabError(
            f"MMC anchors for {n_classes} classes need dim >= n_classes - 1 = {n_classes - 1}, got dim={dim}")
    n, k = int(n_classes), int(n_classes) - 1
    # Helmert rows h_j = (1,...,1, -j, 0,...,0) / sqrt(j (j+1)), j = 1..n-1: orthonormal, orthogonal to 1
    H = np.zeros((k, n))
    for j in range(1, n):
        H[j - 1, :j] = 1.0
        H[j - 1, j] = -float(j)
        H[j - 1] /= math.sqrt(j * (j + 1))
    simplex = math.sqrt(n / k) * H.T  # (n, n-1): unit rows, Gram = n/(n-1) (I - 11^T/n)
    if seed is None:
        out = np.zeros((n, int(dim)))
        out[:, :k] = simplex
    else:
        rng = np.random.default_rng(seed)
        q, r = np.linalg.qr(rng.standard_normal((int(dim), k)))
        q *= np.sign(np.diag(r))[None, :]  # unique (Haar-distributed) frame
        out = simplex @ q.T
    return out / np.linalg.norm(out, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- semantic consistency


def rank_matrix(anchors) -> np.ndarray:
    """Cosine ranks of LAAT Appendix G (Table S2) as an ``(n, n)`` int array.

    Row ``i`` ranks the other classes by descending ``cos(a_i, a_j)``: ``R[i, i] = 0`` (self) and
    ``R[i, j] = 1 + #{k != i, j : cos(a_i, a_k) > cos(a_i, a_j)}`` for ``j != i``, so the most
    similar other class has rank 1 and ranks run 0..n-1 ("the apple anchor's CoS with the pear
    anchor is the 2nd highest among its 99 CoS with other anchors ... so the rank is 2").
    Ties share the smaller rank (competition ranking), so the result does not depend on the row
    order.  The matrix is not symmetric.
    """
    a = _normalize64(_as_float64(anchors))
    n = a.shape[0]
    cos = a @ a.T
    np.fill_diagonal(cos, np.inf)  # self first, whatever the other cosines are (duplicates included)
    srt = np.sort(-cos, axis=1)  # ascending negative cosine: self, then most similar
    ranks = np.empty((n, n), dtype=np.int64)
    for i in range(n):
        ranks[i] = np.searchsorted(srt[i], -cos[i], side="left")
    np.fill_diagonal(ranks, 0)
    return ranks


def semantic_consistency(anchors, class_names: Sequence[str], groups: Iterable[tuple[str, str]]) -> dict:
    """LAAT Appendix G metrics (Tables S2-S3): within-group cosine ranks.

    ``ranks = rank_matrix(anchors)`` over *all* rows (every class competes in every ranking,
    including classes that belong to no group).  For each group (a CIFAR-100 super-class) with
    ``k`` member classes present, take the ``k x k`` block of ranks (rows and columns = the group's
    classes, diagonal zeros included) and compute

    * the sum of its ``k*k`` ranks (Table S2: 219 for *fruit and vegetables*), and
    * the fraction of its ``k*k`` ranks that are ``<= 4`` (the "top-5 ratio": ranks 0..4 out of
      25, diagonal included; Table S2: 14/25 = 56%).

    Both are averaged (unweighted) over groups.  Groups with fewer than 2 classes present are
    skipped (no pairs); groups of other sizes than 5 are kept, but their rank sums are not on the
    scale of the paper's 5-class sums.

    Returns ``{"rank_sum", "top5_ratio", "n_groups", "per_group", "skipped"}`` where ``per_group``
    maps each used group to ``{"classes", "rank_sum", "top5_ratio"}`` and ``skipped`` lists the
    skipped groups.  Raises :class:`ZSLabError` for classes in ``groups`` that are not in
    ``class_names``, a class listed under two groups, duplicate class names, or no usable group.
    """
    arr = _as_float64(anchors)
    names = _check_names(class_names, arr.shape[0])
    if names is None:
        raise ZSLabError("semantic_consistency needs class_names (one per anchor row)")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ZSLabError(f"duplicate class names: {dup}")
    index = {c: i for i, c in enumerate(names)}
    members: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    missing: list[str] = []
    for pair in groups:
        try:
            g, c = pair
        except (TypeError, ValueError):
            raise ZSLabError(f"groups must be (group, class) pairs, got {pair!r}") from None
        g, c = str(g), str(c)
        if c not in index:
            if c not in missing:
                missing.append(c)
            continue
        if c in owner:
            if owner[c] != g:
                raise ZSLabError(f"class {c!r} is listed under two groups: {owner[c]!r} and {g!r}")
            continue
        owner[c] = g
        members.setdefault(g, []).append(c)
    if missing:
        raise ZSLabError(f"{len(missing)} classes in groups are not among the anchor class names: {missing}")
    ranks = rank_matrix(arr)
    per_group, skipped = {}, []
    for g, cls in members.items():
        if len(cls) < 2:
            skipped.append(g)
            continue
        ix = [index[c] for c in cls]
        block = ranks[np.ix_(ix, ix)]
        per_group[g] = {"classes": list(cls), "rank_sum": int(block.sum()),
                        "top5_ratio": float(np.mean(block <= 4))}
    if not per_group:
        raise ZSLabError("no group has 2 or more classes among the anchors: nothing to measure")
    return {
        "rank_sum": float(np.mean([d["rank_sum"] for d in per_group.values()])),
        "top5_ratio": float(np.mean([d["top5_ratio"] for d in per_group.values()])),
        "n_groups": len(per_group),
        "per_group": per_group,
        "skipped": skipped,
    }


# ----------------------------------------------------------------------------- files


def load_group_pairs(paths) -> list[tuple[str, str]]:
    """Read ``[group, class]`` pairs from one or more JSON files (the ``fewshot_splits`` format).

    ``paths`` is a path or a list of paths; pairs are concatenated in the given order.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ZSLabError("load_group_pairs: no files given")
    out: list[tuple[str, str]] = []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise ZSLabError(f"group file not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ZSLabError(f"group file {p} is not valid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise ZSLabError(f"group file {p}: expected a JSON list of [group, class] pairs")
        for k, item in enumerate(data):
            if not (isinstance(item, (list, tuple)) and len(item) == 2
                    and all(isinstance(x, str) for x in item)):
                raise ZSLabError(f"group file {p}: entry {k} is {item!r}, expected a [group, class] pair of strings")
            out.append((item[0], item[1]))
    return out


def read_class_list(path) -> list[str]:
    """Class names, one per line (surrounding blanks stripped, trailing blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ZSLabError(f"class list not found: {path} (one class name per line)")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    empty = [k + 1 for k, ln in enumerate(lines) if not ln]
    if empty:
        raise ZSLabError(f"class list {path}: empty class name on lines {empty}")
    if not lines:
        raise ZSLabError(f"class list {path} is empty")
    return lines


def load_anchor_file(npy_path, classes_path=None) -> tuple[np.ndarray, list[str] | None]:
    """Load an anchor matrix (``.npy``, 2-D, finite) as float32, as stored (not normalised).

    With ``classes_path`` (a text file, one class name per line; trailing blank lines ignored) the
    names are returned too and must match the rows one to one; without it the names are ``None``.
    """
    npy_path = Path(npy_path)
    if not npy_path.is_file():
        raise ZSLabError(f"anchor file not found: {npy_path}")
    try:
        arr = np.load(npy_path, allow_pickle=False)
    except Exception as exc:
        raise ZSLabError(f"cannot read anchor file {npy_path} as a .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2:
        shape = getattr(arr, "shape", None)
        raise ZSLabError(f"anchor file {npy_path}: expected a 2-D array (n_classes, dim), got shape {shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ZSLabError(f"anchor file {npy_path}: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    names = None
    if classes_path is not None:
        classes_path = Path(classes_path)
        lines = read_class_list(classes_path)
        dup = sorted({c for c in lines if lines.count(c) > 1})
        if dup:
            raise ZSLabError(f"class list {classes_path}: duplicate class names {dup}")
        if len(lines) != arr.shape[0]:
            raise ZSLabError(f"anchor file {npy_path} has {arr.shape[0]} rows but {classes_path} lists "
                             f"{len(lines)} class names")
        names = lines
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise ZSLabError(f"anchor file {npy_path}: non-finite values in rows {_name_rows(bad, names)}")
    return arr, names
