"""Training strategies that plug into :class:`zslab.train.engine.Trainer`.

A strategy owns what happens to one batch (which losses, how many forward/backward passes,
which samples are generated); the engine owns everything else (data order, devices, mixed
precision, evaluation, checkpoints, resume).
"""
from __future__ import annotations

import torch

from zslab.losses import cls_loss, loc_loss


class Strategy:
    """Base class. Subclasses implement :meth:`train_step`."""

    name = "base"

    def setup(self, engine) -> None:  # called once the model/optimiser exist
        pass

    def train_step(self, engine, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """One batch. ``targets`` index the train classes (0..n_train-1). Returns scalar logs."""
        raise NotImplementedError

    # shared pieces -----------------------------------------------------------------------
    @staticmethod
    def zsl_losses(engine, images, targets) -> tuple[torch.Tensor, dict]:
        """L_CLS + λ_loc·L_LOC on a batch (HAS Eq. 1–2) under the engine's autocast."""
        with engine.autocast():
            out = engine.model(images, engine.train_attributes)
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


class APNStrategy(Strategy):
    """Plain APN training: one step on L_CLS + λ_loc·L_LOC per batch (HAS §3.2)."""

    name = "apn"

    def train_step(self, engine, images, targets):
        engine.model.train()
        loss, logs = self.zsl_losses(engine, images, targets)
        self.optimise(engine, loss)
        return logs


STRATEGIES = {"apn": APNStrategy}
