"""``zslab anchors ...``: encode, expand and inspect class-anchor files (LAAT Sec. 3.3-3.4, App. C, G).

    zslab anchors encode --encoder SPEC --classes CLASSES.txt [--prompt "This is a photo of a {}"] -o OUT.npy
    zslab anchors expand ANCHORS.npy --fit-rows N -o OUT.npy
    zslab anchors stats ANCHORS.npy [--fit-rows N]
    zslab anchors consistency ANCHORS.npy --classes CLASSES.txt --groups PAIRS.json [PAIRS.json ...] [--fit-rows N]

Anchor files are 2-D ``.npy`` arrays, one row per class.  ``encode`` writes ``OUT.npy`` (unit
rows, float32) and the class list beside it as ``OUT_classes.txt`` (found automatically by the
``file:OUT.npy`` encoder spec).  ``--fit-rows N`` means rows ``0..N-1`` are the training classes:
the expansion (Appendix C, Algorithm 1) is fitted on them and applied unchanged to every row
(Sec. 3.6).  ``stats`` and ``consistency`` print JSON.
"""
from __future__ import annotations

# zslab.anchors, zslab.text and zslab.utils.io import torch, so the functions below import them when
# called, on purpose: `zslab --help` builds this parser (zslab/cli.py) without importing torch.
import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

from zslab import ZSLabError
from zslab.config.schema import DEFAULT_PROMPT, SPEC_FORMS

__all__ = ["add_anchors_parser", "read_class_list", "anchor_stats"]


def read_class_list(path):
    """:func:`zslab.anchors.read_class_list`, imported when called: building the ``zslab`` parser must
    not import torch (``zslab --help`` and ``zslab config show`` answer in well under a second)."""
    from zslab.anchors import read_class_list as read

    return read(path)


def _save_npy(arr: np.ndarray, path: Path) -> None:
    from zslab.utils.io import _atomic

    if path.suffix != ".npy":
        raise ZSLabError(f"output must be a .npy file, got {path}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32))
    _atomic(path, lambda f: f.write(buf.getvalue()))


def _save_classes(names: list[str], npy_path: Path) -> Path:
    from zslab.utils.io import _atomic

    out = npy_path.with_name(npy_path.stem + "_classes.txt")
    data = ("\n".join(names) + "\n").encode("utf-8")
    _atomic(out, lambda f: f.write(data))
    return out


def _fit_rows(n_rows: int, fit_rows) -> int:
    return n_rows if fit_rows is None else int(fit_rows)


def anchor_stats(anchors: np.ndarray, fit_rows: int | None = None) -> dict:
    """Mean pairwise cosine before/after the expansion fitted on rows ``0..fit_rows-1`` (LAAT Table 1).

    ``mean_cos_*`` average over pairs ``i != j``; ``mean_cos_*_with_self`` average the full
    ``n x n`` cosine matrix, diagonal included, the convention that reproduces Table 1's
    numbers on the released CLIP anchors (see :func:`zslab.anchors.mean_pairwise_cosine`).
    """
    from zslab.anchors import AnchorExpansion, mean_pairwise_cosine

    n = anchors.shape[0]
    k = _fit_rows(n, fit_rows)
    if not 2 <= k <= n:
        raise ZSLabError(f"--fit-rows {k} must satisfy 2 <= N <= {n} (the number of anchor rows)")
    exp = AnchorExpansion().fit(anchors[:k])
    out = exp.transform(anchors)
    res = {
        "n_classes": int(n), "dim": int(anchors.shape[1]), "fit_rows": int(k),
        "theta0_deg": float(np.degrees(exp.theta0_)),
        "mean_cos_before": mean_pairwise_cosine(anchors),
        "mean_cos_after": mean_pairwise_cosine(out),
        "mean_cos_before_with_self": mean_pairwise_cosine(anchors, include_self=True),
        "mean_cos_after_with_self": mean_pairwise_cosine(out, include_self=True),
    }
    if k < n:
        res["mean_cos_after_fit_rows"] = mean_pairwise_cosine(out[:k])
    return res


# ----------------------------------------------------------------------------- commands


def _encode(args) -> int:
    from zslab.text import class_anchors

    names = read_class_list(args.classes)
    t0 = time.perf_counter()
    cache = False if args.no_cache else (Path(args.cache_dir) if args.cache_dir else None)
    anchors = class_anchors(args.encoder, names, prompt=args.prompt, cache_dir=cache,
                            device=args.device, progress=True).numpy()
    seconds = time.perf_counter() - t0
    out = Path(args.output)
    _save_npy(anchors, out)
    classes_out = _save_classes(names, out)
    print(json.dumps({"output": str(out), "classes": str(classes_out), "encoder": args.encoder,
                      "prompt": args.prompt, "n_classes": len(names), "dim": int(anchors.shape[1]),
                      "seconds": round(seconds, 3)}, indent=2))
    return 0


def _load(path, classes=None):
    from zslab.anchors import load_anchor_file

    return load_anchor_file(path, classes)


def _expand(args) -> int:
    from zslab.anchors import expand

    arr, _ = _load(args.anchors)
    out_arr = expand(arr, fit_rows=int(args.fit_rows), beyond_pi=args.beyond_pi)
    out = Path(args.output)
    _save_npy(out_arr, out)
    res = {"input": args.anchors, "output": str(out), **anchor_stats(arr, args.fit_rows)}
    src = Path(args.anchors)
    beside = src.with_name(src.stem + "_classes.txt")
    if beside.is_file():  # keep a class list written by `anchors encode` next to the expanded file
        res["classes"] = str(_save_classes(read_class_list(beside), out))
    print(json.dumps(res, indent=2))
    return 0


def _stats(args) -> int:
    arr, _ = _load(args.anchors)
    print(json.dumps({"anchors": args.anchors, **anchor_stats(arr, args.fit_rows)}, indent=2))
    return 0


def _consistency(args) -> int:
    from zslab.anchors import expand, load_group_pairs, semantic_consistency

    arr, names = _load(args.anchors, args.classes)
    if args.fit_rows is not None:
        arr = expand(arr, fit_rows=int(args.fit_rows), beyond_pi="clamp")
    res = semantic_consistency(arr, names, load_group_pairs(args.groups))
    out = {"anchors": args.anchors, "expanded_fit_rows": args.fit_rows, "rank_sum": res["rank_sum"],
           "top5_ratio": res["top5_ratio"], "n_groups": res["n_groups"], "skipped": res["skipped"]}
    if args.per_group:
        out["per_group"] = res["per_group"]
    print(json.dumps(out, indent=2))
    return 0


def add_anchors_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``zslab anchors {encode,expand,stats,consistency}`` on a ``add_subparsers()`` object."""
    a = subparsers.add_parser("anchors", help="encode, expand and inspect class-anchor files (LAAT)",
                              description="Encode, expand and inspect class-anchor files (LAAT Sec. 3.3-3.4, Appendix C and G).")
    sub = a.add_subparsers(dest="anchors_command", required=True)

    e = sub.add_parser("encode", help="class names -> L2-normalised text anchors (.npy + class list)")
    e.add_argument("--encoder", default="minilm", help="encoder spec: " + "; ".join(SPEC_FORMS))
    e.add_argument("--classes", required=True, help="text file, one class name per line")
    e.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"prompt with one {{}} (default: {DEFAULT_PROMPT!r})")
    e.add_argument("-o", "--output", required=True, help="output .npy (the class list goes to OUT_classes.txt)")
    e.add_argument("--device", default=None, help="where the encoder runs (default: cuda if available)")
    e.add_argument("--cache-dir", default=None, help="anchor cache folder (default ~/.cache/zslab/anchors)")
    e.add_argument("--no-cache", action="store_true", help="do not read or write the anchor cache")
    e.set_defaults(func=_encode)

    x = sub.add_parser("expand", help="LAAT anchor expansion fitted on rows 0..N-1, applied to all rows")
    x.add_argument("anchors", help="anchor .npy (rows = classes, training classes first)")
    x.add_argument("--fit-rows", type=int, required=True, help="N: rows 0..N-1 are the training classes")
    x.add_argument("-o", "--output", required=True, help="output .npy")
    x.add_argument("--beyond-pi", choices=("error", "clamp"), default="error",
                   help="a row farther than 2*theta_0 from the centre: error (default) or clamp onto -v")
    x.set_defaults(func=_expand)

    s = sub.add_parser("stats", help="JSON: mean pairwise cosine before/after the expansion")
    s.add_argument("anchors")
    s.add_argument("--fit-rows", type=int, default=None, help="fit the expansion on rows 0..N-1 (default: all)")
    s.set_defaults(func=_stats)

    c = sub.add_parser("consistency", help="JSON: semantic consistency (rank_sum, top5_ratio; Appendix G)")
    c.add_argument("anchors")
    c.add_argument("--classes", required=True, help="class list matching the anchor rows")
    c.add_argument("--groups", nargs="+", required=True, help="JSON files of [group, class] pairs")
    c.add_argument("--fit-rows", type=int, default=None, help="measure the expanded anchors (fit on rows 0..N-1)")
    c.add_argument("--per-group", action="store_true", help="include every group's numbers")
    c.set_defaults(func=_consistency)
    return a
