"""APN (HAS paper §3.2): the attribute-prototype network trained on L_CLS + λ_loc·L_LOC (Eq. 1, 2),
optionally on a HAS Table 3 augmentation of the batch (:mod:`zslab.augment`)."""
from __future__ import annotations

import torch

from zslab.augment import MIXING_AUGMENTATIONS, build_augmentation, soft_cross_entropy
from zslab.losses import cls_loss, loc_loss
from zslab.methods.base import Strategy


class APNStrategy(Strategy):
    """Plain APN training: one step on L_CLS + λ_loc·L_LOC per batch (HAS §3.2).

    With config ``augment`` ≠ "none" the batch is first augmented by that Table-3 augmentation
    (HAS §4.5; :mod:`zslab.augment`), its randomness drawn from ``engine.rng`` (seeded per
    epoch, so runs stay deterministic and resumable). The mixing ones (MixUp, CutMix, SnapMix)
    give soft targets: L_CLS is then the soft cross-entropy (SnapMix: weighted by ρ_a + ρ_b),
    and L_LOC's target is the same mixture of class attribute vectors
    (:attr:`~zslab.augment.AugOutput.target_attributes`). ``augment="none"`` (or no key) runs
    exactly the un-augmented step. Extra log: ``aug_delta``, mean |augmented − clean| pixel.
    Validation and test images are never augmented (the engine's evaluation does not go
    through the strategy).
    """
    name = "apn"

    def setup(self, engine):

        name = engine.config.get("augment", "none")
        self.augmentation = None if name == "none" else build_augmentation(
            name, image_size=engine.data.image_size, generator=engine.rng)

    def clean_losses(self, engine, images, targets) -> tuple[torch.Tensor, dict]:
        """L_CLS + λ_loc·L_LOC of the (augmented, when configured) training batch."""
        if getattr(self, "augmentation", None) is None:
            return self.zsl_losses(engine, images, targets)

        out = self.augmentation(images, targets, engine.train_attributes, model=engine.model)
        engine.model.train()
        with engine.autocast():
            o = Strategy.trained(engine)(out.images, engine.train_attributes)
            logits = o["logits"].float()
            if self.augmentation.name in MIXING_AUGMENTATIONS:
                l_cls = soft_cross_entropy(logits, out.soft_targets, out.loss_weights)
                labels = out.soft_targets.argmax(1)
            else:
                l_cls = cls_loss(logits, targets)
                labels = targets
            l_loc = loc_loss(o["attr_local"].float(), out.target_attributes)
            loss = l_cls + engine.config["lambda_loc"] * l_loc
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {"loss": loss.detach(), "cls": l_cls.detach(), "loc": l_loc.detach(), "acc": acc.detach(),
                      "aug_delta": (out.images - images).abs().mean().detach()}

    def train_step(self, engine, images, targets):
        engine.model.train()
        loss, logs = self.clean_losses(engine, images, targets)
        self.optimise(engine, loss)
        return logs
