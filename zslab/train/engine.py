"""The training engine: one loop for every method; methods plug in as strategies.

Run directory layout::

    RUN_DIR/config.json    the full config (written once; --resume checks it)
    RUN_DIR/metrics.json   {"config", "history": [per-epoch records], "final": {...}}
    RUN_DIR/last.pt        model + optimiser + scheduler + history after the last full epoch
    RUN_DIR/best.pt        model weights of the epoch chosen on the validation split

Every file is written atomically (temporary file + rename), so an interruption at any
moment leaves the previous complete version; ``resume=True`` continues from ``last.pt``.
Training is seeded: on CPU two runs with the same config give identical metrics.

Strategies may override what is method-specific through hooks on
:class:`~zslab.methods.Strategy` (each returns ``None`` for the engine's default, the
APN behaviour): ``build_model`` (default: APN over the class attributes), ``build_optimizer``
(default: Adam + StepLR), ``validate`` (default: ZSL / calibrated GZSL on ``val_*``),
``test`` (default: ZSL T1 / GZSL on ``test_*`` with the selected μ), ``state_dict`` /
``load_state_dict`` (extra strategy state kept in the checkpoints, e.g. LAAT's anchors) and
``model_from_checkpoint`` (rebuilds the model in :func:`load_run`).

Fast paths (config switches, all off by default; their measured effect is in
``bench/fastpaths.py`` / ``bench/README.md``): ``channels_last`` (model and batches in
``torch.channels_last``), ``amp_cpu`` (bf16 autocast for training and generation forwards on
the CPU; CUDA autocast stays under ``amp``), ``compile`` (``torch.compile`` of the model in
place, so checkpoints keep plain ``state_dict`` keys) and ``num_workers`` (a persistent
DataLoader worker pool that assembles the batches of the same seeded order as the in-process
path, so results are identical).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

import zslab
from zslab import ZSLabError
from zslab.config import ConfigError, from_document, from_flat
from zslab.config.aliases import FLAT_ALIASES
from zslab.data import ZSLData, load_dataset
from zslab.data.batches import gather_batch, iterate_batches
from zslab.eval.zsl import compute_scores, evaluate_split_scores
from zslab.methods import STRATEGIES
from zslab.models import APN
from zslab.train import distributed, preflight
from zslab.train.config import backfill_defaults, config_diff, validate
from zslab.utils.io import atomic_torch_save, atomic_write_json, ensure_writable_dir, load_checkpoint, to_plain
from zslab.utils.runlock import run_lock

#: config keys that may differ when a run is resumed or evaluated (they do not change what it computes)
VOLATILE_KEYS = ("device", "progress")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ZSLabError(f"unknown device '{name}'; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ZSLabError(f"device '{name}' requested but CUDA is not available on this machine; use auto or cpu "
                         f"(zslab train: --set run.device=auto; zslab eval: --device auto)")
    return dev


class _IndexBatches(torch.utils.data.Dataset):
    """Item ``idx`` (a tensor of row indices) is the batch :func:`gather_batch` makes of them: the
    worker processes of a DataLoader assemble (or render) whole batches."""
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx):
        return gather_batch(self.dataset, idx)


class _OrderSampler(torch.utils.data.Sampler):
    """Yields the batches (index tensors) of ``self.order``; the engine sets a new order every
    epoch in the main process, so persistent workers follow it (their dataset copy never changes)."""
    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size
        self.order = torch.arange(n)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        for i in range(0, self.n, self.batch_size):
            yield self.order[i:i + self.batch_size]


class WorkerBatches:
    """A persistent-worker data pipeline over one dataset (config ``num_workers`` > 0).

    ``epoch(generator)`` yields the batches of the same order :func:`iterate_batches` draws with
    that generator (one ``randperm`` in the main process, identical generator use), assembled
    by ``num_workers`` worker processes that stay alive between epochs
    (``persistent_workers=True``), with ``pin_memory`` on CUDA. ``prefetch_factor`` batches per
    worker are prepared ahead of the training step."""
    def __init__(self, dataset, batch_size: int, num_workers: int, pin_memory: bool = False):

        self.n = len(dataset)
        self.sampler = _OrderSampler(self.n, batch_size)
        self.loader = DataLoader(_IndexBatches(dataset), batch_size=None, sampler=self.sampler,
                                 num_workers=num_workers, persistent_workers=True, pin_memory=pin_memory,
                                 prefetch_factor=2)

    def epoch(self, shuffle: bool = True, generator: torch.Generator | None = None):
        self.sampler.order = torch.randperm(self.n, generator=generator) if shuffle else torch.arange(self.n)
        yield from self.loader

    def __len__(self) -> int:
        return len(self.sampler)


def find_cxx_compiler() -> str | None:
    """Path of the C++ compiler torch.compile's inductor backend would use on the CPU (``$CXX``,
    else c++/g++/clang++ on PATH), or None."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Trainer:
    """Runs a strategy over a dataset with a model; see the module docstring."""
    def __init__(self, config: dict, run_dir: str | Path, resume: bool = False, data: ZSLData | None = None,
                 allow_config_change: bool = False):
        """Check everything, then create the run folder: a configuration, data, model or output
        folder that cannot work raises a :class:`ZSLabError` before the folder exists (see
        :mod:`zslab.train.preflight`). ``allow_config_change``: resume a folder whose stored config
        differs from ``config`` (the difference is printed and the new config is stored)."""
        validate(config)
        self._given_config = config  # an EngineConfig remembers each value's source (run_document)
        self.config = dict(config)  # checkpoints hold plain data only
        self.run_dir = Path(run_dir)
        self.allow_config_change = allow_config_change
        self.device = resolve_device(config["device"])
        # torchrun: join the process group (gloo on CPU, NCCL on CUDA); a no-op context otherwise
        self.dist = distributed.setup(self.device.type)
        self.device = self.dist.device(self.device)
        preflight.check_output(self.run_dir, resume)
        self._check_run_dir(resume)
        self.dist.barrier()  # every rank has checked the run dir before rank 0 writes into it
        self.resume = resume
        torch.manual_seed(config["seed"])
        self.data = data if data is not None else load_dataset(config["dataset"],
                                                              **config["data"])
        preflight.check_data(config, self.data)
        if config["method"] not in STRATEGIES:
            raise ZSLabError(f"unknown method '{config['method']}'; available: {', '.join(STRATEGIES)}")
        self.strategy = STRATEGIES[config["method"]]()
        if self.data.class_attributes is not None:
            self.class_attributes = self.data.class_attributes.float()
            self.train_attributes = self.class_attributes[self.data.train_classes].to(self.device)
        else:  # text-anchor datasets (LAAT) have no attribute matrix
            self.class_attributes = self.train_attributes = None
        torch.manual_seed(config["seed"])
        model = self.strategy.build_model(self)
        if model is None:
            if self.class_attributes is None:
                raise ZSLabError(f"method '{config['method']}' needs class attributes, but dataset "
                                 f"'{self.data.name}' has none (a text-anchor dataset: train it with laat)")
            model = APN.from_config(config["model"], self.data.num_attributes)
        if self.dist.enabled and config.get("sync_bn") and self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        if config.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.get("compile"):
            self._compile_model()
        # The module that training forward passes go through: DistributedDataParallel under torchrun
        # (averages parameter gradients across ranks in backward), the model itself otherwise.
        # Attacks, generators and evaluation use ``self.model`` (no gradient hooks, no collectives).
        self.train_model = self.model
        if self.dist.enabled:

            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # global label -> position among the train classes
        self.label_map = torch.full((len(self.data.class_names),), -1, dtype=torch.long)
        self.label_map[self.data.train_classes] = torch.arange(len(self.data.train_classes))
        built = self.strategy.build_optimizer(self)
        if built is None:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config["lr"], betas=tuple(config["betas"]),
                                              weight_decay=config["weight_decay"])
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=config["lr_step"],
                                                             gamma=config["lr_gamma"])
        else:
            self.optimizer, self.scheduler = built
        self.history: list[dict] = []
        self.best = {"epoch": -1, "metric": -math.inf, "mu": 0.0}
        self.start_epoch = 0
        self.rng = torch.Generator()
        self._workers: WorkerBatches | None = None  # built on first use (config num_workers > 0)
        self.strategy.setup(self)
        # every check passed: only now does the run folder come into being
        if self.dist.is_main:
            preflight.check_free_space(self.run_dir, self.model)
            ensure_writable_dir(self.run_dir)
        self.dist.barrier()
        if resume and (self.run_dir / "last.pt").exists():
            self._load_last()
        if self.dist.is_main and self._store_config:  # a resumed run keeps its stored document
            atomic_write_json(run_document(self._given_config), self.run_dir / "config.json")
        self.dist.barrier()

    # ------------------------------------------------------------------ run directory
    def _check_run_dir(self, resume: bool) -> None:
        """A folder that holds a run is continued only with ``resume`` and the same config (or
        ``allow_config_change``, which prints the difference); its stored config is read as data
        (JSON) and migrated from the old flat form if needed."""
        cfg_path = self.run_dir / "config.json"
        self._store_config = True
        if not cfg_path.exists():
            return
        if not resume:
            raise ZSLabError(f"{self.run_dir} already holds a run; pass --resume to continue it "
                             f"or choose another --out")
        old = read_run_config(self.run_dir)
        # where and how verbosely a run executes does not change what it computes
        diff = [d for d in config_diff(backfill_defaults(old), self.config) if d.split(":")[0] not in VOLATILE_KEYS]
        if diff and not self.allow_config_change:
            raise ZSLabError(f"cannot resume {self.run_dir} with a different config ({'; '.join(diff)}); "
                             f"use the original settings, a new --out, or --allow-config-change to resume with "
                             f"the new values")
        if diff:
            print(f"zslab: resuming {self.run_dir} with a changed config: {'; '.join(diff)}", file=sys.stderr)
        self._store_config = bool(diff)

    def _load_last(self) -> None:
        ckpt = load_checkpoint(self.run_dir / "last.pt", map_location=self.device)
        self._load_model_state(ckpt, self.run_dir / "last.pt")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.history = ckpt["history"]
        self.best = ckpt["best"]
        self.start_epoch = ckpt["epoch"] + 1
        if ckpt.get("strategy_state"):
            self.strategy.load_state_dict(self, ckpt["strategy_state"])

    def _load_model_state(self, ckpt: dict, path) -> None:
        if ckpt.get("model_config") != self.config["model"] or ckpt.get("num_attributes") != self.data.num_attributes:
            raise ZSLabError(f"checkpoint {path} was written by another model "
                             f"({ckpt.get('model_config')}, K={ckpt.get('num_attributes')}) than this run "
                             f"({self.config['model']}, K={self.data.num_attributes})")
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise ZSLabError(f"checkpoint {path} does not fit this model: {str(e).splitlines()[0]}") from None

    def _checkpoint(self, epoch: int) -> dict:
        """Tensors and plain data only, so that the file loads with ``torch.load(weights_only=True)``
        (:func:`zslab.utils.io.load_checkpoint`): numpy scalars/arrays and paths that a metric or a
        strategy might hand over are turned into numbers, tensors and strings (``to_plain``)."""

        ckpt = {"zslab_version": zslab.__version__, "epoch": int(epoch), "model": self.model.state_dict(),
                "model_config": to_plain(self.config["model"]), "num_attributes": to_plain(self.data.num_attributes),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "history": to_plain(self.history), "best": to_plain(self.best), "config": to_plain(self.config)}
        state = self.strategy.state_dict(self)
        if state:
            ckpt["strategy_state"] = to_plain(state)
        return ckpt

    def _write_metrics(self, final: dict | None = None) -> None:
        if not self.dist.is_main:
            return
        atomic_write_json({"config": self.config, "history": self.history, "best": self.best,
                           "final": final or {}}, self.run_dir / "metrics.json")

    # ------------------------------------------------------------------ fast paths
    def _compile_model(self) -> None:
        """``torch.compile`` the model in place (``nn.Module.compile``: the parameters and the
        ``state_dict`` keys stay those of the plain model, so checkpoints load into an uncompiled
        one). ``compile`` true: the default inductor backend (C++ code generation on the CPU);
        a string: that backend (e.g. ``aot_eager``: traced forward and backward graphs without
        code generation). Compilation happens at the first forward of each graph; :meth:`fit`
        turns a failure there into a :class:`ZSLabError`."""
        backend = self.config["compile"]
        backend = "inductor" if backend is True else str(backend)
        if not hasattr(self.model, "compile"):
            raise ZSLabError(f"config compile={backend} needs torch >= 2.2 (nn.Module.compile); this is torch "
                             f"{torch.__version__}; set compile=false")
        if backend == "inductor" and self.device.type == "cpu" and find_cxx_compiler() is None:
            raise ZSLabError("config compile=true needs a C++ compiler for torch.compile's inductor backend on the "
                             "CPU (none of $CXX, c++, g++, clang++ is on PATH); install one (e.g. apt-get install "
                             "g++), set compile=aot_eager (no code generation) or set compile=false")
        import torch._dynamo  # torch.compile's machinery: slow to import, only when compile is set

        known = torch._dynamo.list_backends(exclude_tags=())
        if backend not in known:
            raise ZSLabError(f"config compile={backend!r} is not a torch.compile backend; use true (inductor), "
                             f"one of {', '.join(known)}, or false")
        self.model.compile(backend=backend)

    @contextlib.contextmanager
    def _compile_guard(self):
        """With ``compile`` on, turn a torch.compile failure (raised at the first forward of each
        new graph: training, evaluation) into a :class:`ZSLabError` that names it."""
        if not self.config.get("compile"):
            yield
            return
        try:
            yield
        except ZSLabError:
            raise
        except Exception as e:
            if not _is_compile_error(e):
                raise
            def first(err):
                return (str(err).strip().splitlines() or [""])[0][:300]

            why = f"{type(e).__name__}: {first(e)}"
            cause = getattr(e, "inner_exception", None) or e.__cause__
            if cause is not None:
                why += f" {type(cause).__name__}: {first(cause)}"
            raise ZSLabError(f"torch.compile of the model failed ({why}); set compile=false to train "
                             f"without it") from e

    def prepare_batch(self, x: torch.Tensor) -> torch.Tensor:
        """A batch on the engine's device, in channels_last memory format when configured."""
        x = x.to(self.device, non_blocking=True)
        if self.config.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_batches(self, generator: torch.Generator):
        """The training split's batches in the epoch's seeded order: in-process
        (:func:`iterate_batches`) with ``num_workers`` = 0, else from the persistent worker pool
        (:class:`WorkerBatches`; the same order, hence the same batches)."""
        train = self.data.splits["train"]
        nw = int(self.config.get("num_workers", 0))
        if nw == 0:
            return iterate_batches(train, self.config["batch_size"], shuffle=True, generator=generator)
        if self._workers is None:
            self._workers = WorkerBatches(train, self.config["batch_size"], nw,
                                          pin_memory=self.device.type == "cuda")
        return self._workers.epoch(shuffle=True, generator=generator)

    def close(self) -> None:
        """Shut the data worker pool down (if any); the trainer stays usable (it restarts on use)."""
        self._workers = None

    # ------------------------------------------------------------------ helpers for strategies
    def autocast(self):
        """Mixed precision for training and generation forwards: bf16 (fp16 where bf16 is not
        supported) autocast on CUDA when ``amp`` is on; bf16 autocast on the CPU when ``amp_cpu``
        is on; otherwise a no-op. Strategies compute their losses from ``.float()`` outputs."""
        if self.config["amp"] and self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        if self.config.get("amp_cpu") and self.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ evaluation
    def scores(self, splits) -> dict:
        return {s: compute_scores(self.model, self.data.splits[s], self.class_attributes, self.device,
                                  self.config["eval_batch_size"], channels_last=bool(self.config.get("channels_last")))
                for s in splits}

    def validate(self) -> dict:
        out = self.strategy.validate(self)
        if out is not None:
            return out
        return evaluate_split_scores(self.data, self.scores(["val_seen", "val_unseen"]))

    def test(self, mu: float) -> dict:
        out = self.strategy.test(self)
        if out is not None:
            return out
        return evaluate_split_scores(self.data, self.scores(["test_seen", "test_unseen"]), mu=mu)

    # ------------------------------------------------------------------ training
    def train_epoch(self, epoch: int) -> dict:
        cfg = self.config
        self.rng.manual_seed(cfg["seed"] * 100003 + epoch)
        train = self.data.splits["train"]
        n_batches = math.ceil(len(train) / cfg["batch_size"])
        sums: dict[str, float] = {}
        world = self.dist.world_size
        bar = tqdm(self.train_batches(self.rng), total=n_batches,
                   desc=f"{cfg['method']} epoch {epoch + 1}/{cfg['epochs']}",
                   disable=not cfg["progress"] or not self.dist.is_main, leave=False, mininterval=1.0)
        done = 0
        for x, y in bar:
            if world > 1:
                # ``batch_size`` is the global batch: every rank drew the same permutation (same
                # epoch seed) and takes its contiguous share, so N ranks see one process's batches.
                # A last global batch too small to give every rank a row is skipped on all ranks.
                if len(y) < world:
                    continue
                rows = self.dist.shard(torch.arange(len(y)))
                x, y = x[rows], y[rows]
            done += 1
            x = self.prepare_batch(x)
            t = self.label_map[y].to(self.device)
            logs = self.strategy.train_step(self, x, t)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if not math.isfinite(float(logs["loss"])):
                raise ZSLabError(f"training diverged at epoch {epoch + 1} (loss {float(logs['loss'])}); lower lr")
        bar.close()
        means = {f"train_{k}": v / max(done, 1) for k, v in sums.items()}
        return self.dist.mean_dict(means, self.device)  # averaged over ranks (identity in one process)

    def fit(self) -> dict:
        cfg = self.config
        sel = cfg["select_metric"]
        for epoch in range(self.start_epoch, cfg["epochs"]):
            t0 = time.perf_counter()
            rec = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            with self._compile_guard():
                rec.update(self.train_epoch(epoch))
            rec["train_epoch_seconds"] = time.perf_counter() - t0  # the training pass alone
            self.scheduler.step()
            with self._compile_guard():
                rec.update(self.validate())
            rec["seconds"] = time.perf_counter() - t0
            self.history.append(rec)
            if sel not in rec:
                raise ZSLabError(f"select_metric '{sel}' is not computed by the {cfg['method']} validation "
                                 f"(it gives {', '.join(sorted(k for k in rec if k.startswith('val')))})")
            # Every rank validates the same (synchronised) model on the same data, so all ranks
            # select the same epoch; only rank 0 writes.
            if rec[sel] > self.best["metric"]:
                self.best = {"epoch": epoch + 1, "metric": rec[sel], "metric_name": sel, "mu": rec.get("mu", 0.0)}
                if self.dist.is_main:
                    atomic_torch_save(self._checkpoint(epoch), self.run_dir / "best.pt")
            if self.dist.is_main:
                atomic_torch_save(self._checkpoint(epoch), self.run_dir / "last.pt")
            self._write_metrics()
            self.dist.barrier()  # checkpoints complete before any rank goes on (finish() reads best.pt)
            if cfg["progress"] and self.dist.is_main:
                vals = "  ".join(f"{k} {rec[k]:.3f}" for k in ("val_zsl", "val_h", "val_zs") if k in rec)
                tqdm.write(f"epoch {epoch + 1}: loss {rec['train_loss']:.3f}  {vals}  ({rec['seconds']:.1f}s)")
        return self.finish()

    def finish(self) -> dict:
        """Load the validation-selected checkpoint and compute the test metrics with its μ."""
        path = self.run_dir / "best.pt"
        ckpt = load_checkpoint(path, map_location=self.device)
        self._load_model_state(ckpt, path)
        with self._compile_guard():
            final = self.test(mu=self.best["mu"])
        final.update(best_epoch=self.best["epoch"], selected_on=self.best.get("metric_name"),
                     val_metric=self.best["metric"], epochs=len(self.history),
                     train_seconds=sum(r["seconds"] for r in self.history), world_size=self.dist.world_size)
        self._write_metrics(final)
        return final


def run_document(config: dict) -> dict:
    """The document a run folder's ``config.json`` holds: the nested config, where each value came
    from (``zslab config show``) and the engine view (:func:`zslab.config.from_flat`)."""
    res = from_flat(config)
    sources = dict(getattr(config, "sources", None) or {})
    snapshot = getattr(config, "snapshot", None) or {}
    changed = {k for k in config if snapshot and k in snapshot and snapshot[k] != config[k]}
    for path in res.sources:
        if path not in sources:
            sources[path] = "code"
    if changed:  # values changed in code after make_config (studies, notebooks)

        for k in changed:
            path = FLAT_ALIASES.get(k, (k, ()))[0]
            for p in sources:
                if p == path or p.startswith(path + "."):
                    sources[p] = "code"
    sources = {p: sources[p] for p in res.sources}
    doc = res.document()
    doc["sources"] = sources
    doc["engine"] = dict(config)
    return doc


def read_run_config(run_dir: str | Path) -> dict:
    """The engine config of a run folder (its ``config.json``, read as JSON data — never code),
    migrated from the old flat form when needed; a clear :class:`ZSLabError` when the folder is
    not a run folder or the file is corrupt."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        raise ZSLabError(f"{run_dir} is not a zslab run directory (no config.json)")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ZSLabError(f"{path} is corrupt (not JSON); delete the run directory or choose another --out") from None
    try:
        res = from_document(obj)
    except ConfigError as e:
        raise ZSLabError(f"{path} holds a config this zslab cannot run: {e}") from None
    flat = obj["engine"] if isinstance(obj, dict) and obj.get("zslab_config") == 2 else obj
    out = dict(res.flat)
    out.update({k: v for k, v in flat.items() if k in out and k not in ("data",)})
    out["data"] = dict(flat.get("data") or {})
    return out


def _is_compile_error(e: Exception) -> bool:
    """Whether an exception comes from torch.compile (dynamo / inductor / a backend compiler)."""
    mod = type(e).__module__ or ""
    return mod.startswith(("torch._dynamo", "torch._inductor")) or type(e).__name__ in (
        "BackendCompilerFailed", "InductorError", "CppCompileError", "Unsupported")


def train(config: dict, out: str | Path, resume: bool = False, data: ZSLData | None = None,
          allow_config_change: bool = False) -> dict:
    """Train per ``config`` into run directory ``out``; returns the ``final`` metrics.

    The run folder is locked for the whole call (:class:`zslab.utils.runlock.RunLock`, taken
    before the Trainer looks at ``out``; under torchrun by rank 0 only): a second ``train`` into
    the same folder, from any process, fails at once with a ZSLabError naming this one."""
    with run_lock(out):
        trainer = Trainer(config, out, resume=resume, data=data, allow_config_change=allow_config_change)
        try:
            final = trainer.fit()
        finally:
            trainer.close()
        if trainer.dist.enabled:
            del trainer  # its DistributedDataParallel wrapper holds the process group
            distributed.teardown()
    return final


def load_run(run_dir: str | Path, which: str = "best", data: ZSLData | None = None, device: str | None = None):
    """Rebuild (config, data, model) of a finished run, with weights of ``best`` or ``last``."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    config = read_run_config(run_dir)
    dev = resolve_device(device or config.get("device", "auto"))
    data = data if data is not None else load_dataset(config["dataset"], **config["data"])
    path = run_dir / f"{which}.pt"
    ckpt = load_checkpoint(path, map_location=dev)
    strategy = STRATEGIES.get(config.get("method"))
    model = None if strategy is None else strategy.model_from_checkpoint(config, data, ckpt)
    if model is None:
        model = APN.from_config(config["model"], data.num_attributes)
    model = model.to(dev)
    if ckpt.get("model_config") != config["model"]:
        raise ZSLabError(f"checkpoint {path} was written by another model than {cfg_path} describes")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ZSLabError(f"checkpoint {path} does not fit this model: {str(e).splitlines()[0]}") from None
    model.eval()
    return config, data, model, ckpt
