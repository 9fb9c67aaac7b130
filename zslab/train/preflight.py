"""Checks before any work: the output folder, the data's class splits against the evaluation,
and the room the checkpoints need. Each raises a one-line :class:`~zslab.ZSLabError` that names
the config key and the fix; none creates a file (the run folder is created after all of them).

The configuration itself is checked earlier, by the schema (:mod:`zslab.config`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from zslab import ZSLabError
from zslab.eval.episodes import resolve_n_way
from zslab.utils.io import check_free_space as _free_space
from zslab.utils.io import ensure_writable_dir

log = logging.getLogger("zslab")



def check_output(run_dir: Path, resume: bool) -> None:
    """``run_dir`` is a folder (or can become one) that accepts files; nothing is created."""
    if not str(run_dir).strip():
        raise ZSLabError("--out is empty; name the run folder to create, e.g. --out runs/my-run")
    run_dir = Path(run_dir)
    if run_dir.resolve() == Path.cwd().resolve() and not (run_dir / "config.json").exists():
        raise ZSLabError(f"--out {str(run_dir)!r} is the current folder; name a run folder inside it, e.g. "
                         f"--out runs/my-run")
    if run_dir.exists() and not run_dir.is_dir():
        raise ZSLabError(f"--out {run_dir} is a file, not a folder; choose another --out")
    if run_dir.is_dir() and not (run_dir / "config.json").exists():
        foreign = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
        if foreign:  # never write a run into someone's project or home folder
            raise ZSLabError(f"--out {run_dir} exists and holds files ({', '.join(foreign[:3])}"
                             f"{', ...' if len(foreign) > 3 else ''}) but no zslab run (config.json); choose a new "
                             f"or empty folder")
    ensure_writable_dir(run_dir, create=False)


def check_data(config: dict, data) -> None:
    """The dataset's class splits fit the method and the evaluation: every split has images, there
    are validation classes (to select the checkpoint on), and LAAT's N-way episodes fit the novel
    classes and their images."""
    counts = {"train": len(data.train_classes), "val": len(data.val_classes), "unseen": len(data.unseen_classes)}
    sizes = {s: len(data.splits[s]) for s in data.splits}
    method = config["method"]
    if hasattr(data, "check_image_files"):
        data.check_image_files()  # every image file listed exists and has an image header (no decoding)
    if counts["train"] < 2:
        raise ZSLabError(f"dataset '{data.name}' has {counts['train']} training class(es); training needs at least 2 "
                         f"(data.novel / data.val_classes leave too few seen classes)")
    if counts["val"] < (2 if method == "laat" else 1) or sizes.get("val_unseen", 0) == 0:
        raise ZSLabError(f"dataset '{data.name}' has {counts['val']} validation class(es) with "
                         f"{sizes.get('val_unseen', 0)} images; the checkpoint is chosen on validation classes, so at "
                         f"least {2 if method == 'laat' else 1} are needed: set data.val_classes (e.g. --set "
                         f"data.val_classes=a,b), or leave it unset for the automatic hold-out")
    if counts["unseen"] < 2:
        raise ZSLabError(f"dataset '{data.name}' has {counts['unseen']} novel/unseen class(es); zero-shot evaluation "
                         f"needs at least 2 (data.novel)")
    for split in ("train", "val_seen", "test_seen", "test_unseen"):
        if sizes.get(split, 0) == 0:
            raise ZSLabError(f"dataset '{data.name}': split '{split}' has no images (data.max_per_class or the "
                             f"folder's contents leave it empty)")
    if method != "laat":
        return
    n_way = config["eval_n_way"]
    resolved = resolve_n_way(n_way, counts["unseen"])
    if resolved > counts["unseen"]:
        raise ZSLabError(f"eval.n_way={n_way}: {resolved}-way episodes need {resolved} novel classes, but dataset "
                         f"'{data.name}' has {counts['unseen']}; set --set eval.n_way={counts['unseen']} (or auto)")
    if resolved < 2:
        raise ZSLabError(f"eval.n_way must give at least 2-way episodes; dataset '{data.name}' has "
                         f"{counts['unseen']} novel classes")
    if n_way == "auto":
        log.info("eval.n_way auto: %d-way episodes (%d novel classes)", resolved, counts["unseen"])

    labels = torch.as_tensor(data.splits["test_unseen"].labels)
    per_class = torch.bincount(labels, minlength=int(labels.max()) + 1 if len(labels) else 0)
    fewest = min(int(per_class[int(c)]) for c in data.unseen_classes) if len(labels) else 0
    if fewest < int(config["eval_n_query"]):
        raise ZSLabError(f"eval.n_query={config['eval_n_query']}: an episode takes {config['eval_n_query']} images of "
                         f"each novel class, but one has only {fewest} test images; set --set eval.n_query={fewest} "
                         f"or fewer (or give it more test images: "
                         f"{'data.unseen_per_class' if config['dataset'] == 'shapes' else 'data.max_per_class'})")


def checkpoint_bytes(model) -> int:
    """An upper estimate of the room ``last.pt`` + ``best.pt`` need: weights, two optimiser moments
    and the engine's bookkeeping, for both files, plus 1 MiB for JSON and temporary copies."""
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    n += sum(b.numel() * b.element_size() for b in model.buffers())
    return int(2 * 3 * n + (1 << 20)) + int(2 * n)  # two files of (weights + 2 moments); one temp copy


def check_free_space(run_dir: Path, model) -> None:
    _free_space(run_dir, checkpoint_bytes(model))
