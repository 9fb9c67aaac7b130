"""The method interface: a strategy plugs into the one training engine (:class:`zslab.train.engine.Trainer`).

A strategy owns what happens to one batch (which losses, how many forward/backward passes,
which samples are generated) and, through optional hooks, its model, optimiser and evaluation
protocol; the engine owns everything else (data order, devices, mixed precision, checkpoints,
resume, locks, torch.distributed).
"""
from __future__ import annotations

import torch

from zslab.losses import cls_loss, loc_loss


class Strategy:
    """Base class. Subclasses implement :meth:`train_step`."""

    name = "base"

    def setup(self, engine) -> None:  # called once the model/optimiser exist
        pass

    # engine hooks: ``None`` means "the engine's default" (APN; see zslab.train.engine) ----------
    def build_model(self, engine):
        """The model to train (called before :meth:`setup`), or None for APN."""
        return None

    def build_optimizer(self, engine):
        """``(optimizer, scheduler)``, or None for Adam + StepLR from the config."""
        return None

    def validate(self, engine) -> dict | None:
        """Per-epoch validation record (must hold ``select_metric``), or None for the default."""
        return None

    def test(self, engine) -> dict | None:
        """Final metrics of the selected checkpoint, or None for the default."""
        return None

    def state_dict(self, engine) -> dict:
        """Extra state saved in every checkpoint under ``strategy_state``."""
        return {}

    def load_state_dict(self, engine, state: dict) -> None:
        """Restore :meth:`state_dict` on resume."""

    @classmethod
    def model_from_checkpoint(cls, config: dict, data, ckpt: dict):
        """The (untrained) model of a run for :func:`zslab.train.engine.load_run`, or None for APN."""
        return None

    def train_step(self, engine, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """One batch. ``targets`` index the train classes (0..n_train-1). Returns scalar logs."""
        raise NotImplementedError

    # shared pieces -----------------------------------------------------------------------
    @staticmethod
    def trained(engine):
        """The module for training forward passes whose loss is backpropagated into the weights:
        DistributedDataParallel under torchrun (gradients averaged across ranks), else the model.
        Attacks, sample generators and evaluation use ``engine.model`` directly."""
        return getattr(engine, "train_model", engine.model)

    @staticmethod
    def zsl_losses(engine, images, targets) -> tuple[torch.Tensor, dict]:
        """L_CLS + λ_loc·L_LOC on a batch (HAS Eq. 1–2) under the engine's autocast."""
        with engine.autocast():
            out = Strategy.trained(engine)(images, engine.train_attributes)
            l_cls = cls_loss(out["logits"].float(), targets)
            l_loc = loc_loss(out["attr_local"].float(), engine.train_attributes[targets])
            loss = l_cls + engine.config["lambda_loc"] * l_loc
        acc = (out["logits"].argmax(1) == targets).float().mean()
        return loss, {"loss": loss.detach(), "cls": l_cls.detach(), "loc": l_loc.detach(), "acc": acc.detach()}

    @staticmethod
    def optimise(engine, loss: torch.Tensor) -> None:
        engine.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        engine.optimizer.step()
