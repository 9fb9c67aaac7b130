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
        from zslab.augment import build_augmentation

        name = engine.config.get("augment", "none")
        self.augmentation = None if name == "none" else build_augmentation(
            name, image_size=engine.data.image_size, generator=engine.rng)

    def clean_losses(self, engine, images, targets) -> tuple[torch.Tensor, dict]:
        """L_CLS + λ_loc·L_LOC of the (augmented, when configured) training batch."""
        if getattr(self, "augmentation", None) is None:
            return self.zsl_losses(engine, images, targets)
        from zslab.augment import MIXING_AUGMENTATIONS, soft_cross_entropy

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


class HASStrategy(APNStrategy):
    """HAS training (Algorithm 1; :mod:`zslab.has`). Per batch:

    1. a clean step on L_CLS + λ_loc·L_LOC (lines 3–4) — APN's step, so with config
       ``augment`` it is taken on the augmented batch (see :class:`APNStrategy`); the
       generation below always starts from the un-augmented images;
    2. T generation steps of signed-gradient descent on L_HAS with the model frozen (eval
       mode, restored; parameters, buffers and grads untouched) (lines 5–8);
    3. with probability ``has_adv_prob`` (a coin flip from ``engine.rng``, drawn every batch
       so runs are deterministic and resumable whatever the probability), a step on
       L_CLS + λ_loc·L_LOC of the adversarial batch (lines 9–10).

    Logged per batch (the engine averages over the epoch's batches): ``loss``/``cls``/``loc``/
    ``acc`` of the clean step (comparable to APN's); ``has_delta`` mean |δ| and
    ``has_delta_max`` max |δ| in [0, 1] pixel units; ``has_start``/``has_end`` L_HAS at the
    first and last iterate the generator evaluated, i.e. iterates 0 and T−1 (eval mode; the
    output, iterate T, is not re-evaluated, to keep the cost at T passes); ``has_rob_gain`` =
    H(p) at iterate T−1 − H(p) at iterate 0 (the clean image); ``gen_clean_acc`` eval-mode clean accuracy;
    ``adv_taken`` (1/0). ``adv_loss``/``adv_acc`` are the adversarial step's loss and
    (train-mode) accuracy *times* ``adv_taken`` — the epoch means divided by
    ``train_adv_taken`` give the means over the batches where the step was taken (equal to
    them when ``has_adv_prob`` = 1).
    """

    name = "has"

    def setup(self, engine):
        from zslab.has import HAS, HASConfig

        super().setup(engine)
        self.has_config = HASConfig.from_train_config(engine.config)
        self.adv_prob = float(engine.config["has_adv_prob"])
        self.generator = HAS(engine.model, self.has_config, class_attributes=engine.train_attributes, seed=0)

    def train_step(self, engine, images, targets):
        engine.model.train()
        loss, logs = self.clean_losses(engine, images, targets)
        self.optimise(engine, loss)
        if self.has_config.random_start:  # deterministic per batch, from the epoch-seeded stream
            self.generator.seed = int(torch.randint(0, 2**62, (1,), generator=engine.rng))
        with engine.autocast():
            adv = self.generator(images, targets)
        coin = torch.rand((), generator=engine.rng).item()
        take = coin < self.adv_prob
        delta = (adv - images).abs()
        trace = self.generator.last_stats["trace"]
        zero = loss.detach().new_zeros(())
        logs.update(has_delta=delta.mean(), has_delta_max=delta.amax() if delta.numel() else zero,
                    adv_taken=float(take))
        if trace:
            logs.update(has_start=trace[0]["has"], has_end=trace[-1]["has"],
                        has_rob_gain=trace[-1]["rob"] - trace[0]["rob"])
        if "clean_acc" in self.generator.last_stats:
            logs["gen_clean_acc"] = self.generator.last_stats["clean_acc"]
        if take:
            adv_loss, adv_logs = self.zsl_losses(engine, adv, targets)
            self.optimise(engine, adv_loss)
            logs.update(adv_loss=adv_logs["loss"], adv_acc=adv_logs["acc"])
        else:
            logs.update(adv_loss=zero, adv_acc=zero)
        return logs


STRATEGIES = {"apn": APNStrategy, "has": HASStrategy}


def _register_laat():
    import zslab.laat  # noqa: F401  (its last line registers STRATEGIES["laat"]; import-order safe)


_register_laat()
