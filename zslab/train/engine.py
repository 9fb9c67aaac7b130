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
:class:`~zslab.train.strategies.Strategy` (each returns ``None`` for the engine's default, the
APN behaviour): ``build_model`` (default: APN over the class attributes), ``build_optimizer``
(default: Adam + StepLR), ``validate`` (default: ZSL / calibrated GZSL on ``val_*``),
``test`` (default: ZSL T1 / GZSL on ``test_*`` with the selected μ), ``state_dict`` /
``load_state_dict`` (extra strategy state kept in the checkpoints, e.g. LAAT's anchors) and
``model_from_checkpoint`` (rebuilds the model in :func:`load_run`).
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

import zslab
from zslab import ZSLabError
from zslab.data import ZSLData, load_dataset
from zslab.eval.zsl import gzsl_us, per_class_accuracy, predict, select_mu
from zslab.models import APN
from zslab.train import distributed
from zslab.train.config import backfill_defaults, config_diff, validate
from zslab.train.strategies import STRATEGIES
from zslab.utils.io import atomic_torch_save, atomic_write_json, ensure_writable_dir, load_checkpoint


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ZSLabError(f"unknown device '{name}'; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ZSLabError(f"device '{name}' requested but CUDA is not available; use --set device=auto")
    return dev


def iterate_batches(dataset, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
    """Yield (images float [0,1], labels) batches. Tensor-backed datasets are sliced directly
    (no per-item collation); any other Dataset goes through a DataLoader."""
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            x = dataset.images[idx]
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            yield x, dataset.labels[idx]
    else:
        from torch.utils.data import DataLoader

        loader = DataLoader(torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size)
        yield from loader


@torch.no_grad()
def compute_scores(model: APN, dataset, class_attributes: torch.Tensor, device, batch_size: int = 512):
    """Compatibility scores of every image against *all* classes: (N, n_classes), labels (N,)."""
    was_training = model.training
    model.eval()
    A = class_attributes.to(device)
    scores, labels = [], []
    for x, y in iterate_batches(dataset, batch_size):
        out = model(x.to(device), A)
        scores.append(out["logits"].float().cpu())
        labels.append(y)
    model.train(was_training)
    return torch.cat(scores), torch.cat(labels)


def evaluate_split_scores(data: ZSLData, scores: dict, mu: float | None = None) -> dict:
    """Validation and/or test metrics from precomputed score matrices.

    ``scores`` maps split name -> (scores, labels). Validation: ZSL on the validation classes,
    μ swept for the best H (train vs validation classes). Test: ZSL T1 on unseen classes and
    GZSL U/S/H with the given μ (chosen on validation).
    """
    out = {}
    tr = data.train_classes
    if "val_unseen" in scores:
        su, yu = scores["val_unseen"]
        ss, ys = scores["val_seen"]
        out["val_zsl"] = per_class_accuracy(predict(su, data.val_classes), yu)
        out["val_seen_acc"] = per_class_accuracy(predict(ss, tr), ys)
        m, h = select_mu(ss, ys, su, yu, tr, data.val_classes)
        u, s, _ = gzsl_us(ss, ys, su, yu, tr, data.val_classes, m)
        out.update(val_u=u, val_s=s, val_h=h, mu=m)
    if "test_unseen" in scores:
        su, yu = scores["test_unseen"]
        ss, ys = scores["test_seen"]
        mu = out.get("mu", 0.0) if mu is None else mu
        out["zsl_t1"] = per_class_accuracy(predict(su, data.unseen_classes), yu)
        u, s, h = gzsl_us(ss, ys, su, yu, tr, data.unseen_classes, mu)
        u0, s0, h0 = gzsl_us(ss, ys, su, yu, tr, data.unseen_classes, 0.0)
        out.update(gzsl_u=u, gzsl_s=s, gzsl_h=h, mu=mu, gzsl_u_uncalibrated=u0, gzsl_s_uncalibrated=s0,
                   gzsl_h_uncalibrated=h0)
    return out


class Trainer:
    """Runs a strategy over a dataset with a model; see the module docstring."""

    def __init__(self, config: dict, run_dir: str | Path, resume: bool = False, data: ZSLData | None = None):
        validate(config)
        self.config = config
        self.run_dir = ensure_writable_dir(run_dir)
        self.device = resolve_device(config["device"])
        # torchrun: join the process group (gloo on CPU, NCCL on CUDA); a no-op context otherwise
        self.dist = distributed.setup(self.device.type)
        self.device = self.dist.device(self.device)
        self._check_run_dir(resume)
        self.dist.barrier()  # every rank has checked the run dir before rank 0 writes into it
        self.resume = resume
        torch.manual_seed(config["seed"])
        self.data = data if data is not None else load_dataset(config["dataset"],
                                                              **config["data"])
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
        # The module that training forward passes go through: DistributedDataParallel under torchrun
        # (averages parameter gradients across ranks in backward), the model itself otherwise.
        # Attacks, generators and evaluation use ``self.model`` (no gradient hooks, no collectives).
        self.train_model = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

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
        self.strategy.setup(self)
        if resume and (self.run_dir / "last.pt").exists():
            self._load_last()
        if self.dist.is_main:
            atomic_write_json(config, self.run_dir / "config.json")
        self.dist.barrier()

    # ------------------------------------------------------------------ run directory
    def _check_run_dir(self, resume: bool) -> None:
        cfg_path = self.run_dir / "config.json"
        if cfg_path.exists():
            try:
                old = json.loads(cfg_path.read_text())
            except json.JSONDecodeError:
                raise ZSLabError(f"{cfg_path} is corrupt; delete the run directory or choose another --out") from None
            if not resume:
                raise ZSLabError(f"{self.run_dir} already holds a run; pass --resume to continue it "
                                 f"or choose another --out")
            diff = config_diff(backfill_defaults(old), self.config)
            if diff:
                raise ZSLabError(f"cannot resume {self.run_dir} with a different config ({'; '.join(diff)}); "
                                 f"use the original settings or a new --out")

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
        ckpt = {"zslab_version": zslab.__version__, "epoch": epoch, "model": self.model.state_dict(),
                "model_config": self.config["model"], "num_attributes": self.data.num_attributes,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "history": self.history, "best": self.best, "config": self.config}
        state = self.strategy.state_dict(self)
        if state:
            ckpt["strategy_state"] = state
        return ckpt

    def _write_metrics(self, final: dict | None = None) -> None:
        if not self.dist.is_main:
            return
        atomic_write_json({"config": self.config, "history": self.history, "best": self.best,
                           "final": final or {}}, self.run_dir / "metrics.json")

    # ------------------------------------------------------------------ helpers for strategies
    def autocast(self):
        """bf16/fp16 autocast on CUDA when ``amp`` is on; a no-op on CPU."""
        if self.config["amp"] and self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ evaluation
    def scores(self, splits) -> dict:
        return {s: compute_scores(self.model, self.data.splits[s], self.class_attributes, self.device,
                                  self.config["eval_batch_size"]) for s in splits}

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
        bar = tqdm(iterate_batches(train, cfg["batch_size"], shuffle=True, generator=self.rng), total=n_batches,
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
            x = x.to(self.device, non_blocking=True)
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
            rec.update(self.train_epoch(epoch))
            rec["train_epoch_seconds"] = time.perf_counter() - t0  # the training pass alone
            self.scheduler.step()
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
        final = self.test(mu=self.best["mu"])
        final.update(best_epoch=self.best["epoch"], selected_on=self.best.get("metric_name"),
                     val_metric=self.best["metric"], epochs=len(self.history),
                     train_seconds=sum(r["seconds"] for r in self.history), world_size=self.dist.world_size)
        self._write_metrics(final)
        return final


def train(config: dict, out: str | Path, resume: bool = False, data: ZSLData | None = None) -> dict:
    """Train per ``config`` into run directory ``out``; returns the ``final`` metrics."""
    trainer = Trainer(config, out, resume=resume, data=data)
    final = trainer.fit()
    if trainer.dist.enabled:
        distributed.teardown()
    return final


def load_run(run_dir: str | Path, which: str = "best", data: ZSLData | None = None, device: str | None = None):
    """Rebuild (config, data, model) of a finished run, with weights of ``best`` or ``last``."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise ZSLabError(f"{run_dir} is not a zslab run directory (no config.json)")
    config = json.loads(cfg_path.read_text())
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
