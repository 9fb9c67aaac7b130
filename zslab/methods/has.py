"""HAS: harnessing adversarial samples for zero-shot learning (Chen et al., ACM MM 2023, §3.3–3.7).

The generator perturbs training images with a *frozen* APN model by T steps of signed-gradient
**descent** on a composite loss (Eq. 3), then the model is trained on the result (Algorithm 1,
see :class:`zslab.methods.HASStrategy`).

Objective (what zslab descends; per example, then summed over the batch)::

    L_HAS = L_CLS − λ_rob·L_ROB + λ_rel·L_REL + λ_att_mag·M_att − λ_att_ent·H_att

* ``L_CLS`` (Eq. 1): cross-entropy of the compatibility scores g(x)ᵀVφ(y) over the train
  classes, with the *true* label — descent keeps the label.
* ``L_ROB`` (Eq. 5): H(p), entropy of the class-probability softmax over the train classes;
  it enters with a minus sign, so descent *raises* it (the image comes to resemble negative
  classes without being misclassified) — "robust generation", §3.4.
* ``L_REL`` (Eq. 6): ‖g(f(I_adv)) − g(f(I))‖², squared L2 distance of the pooled features to
  the clean image's (computed once, without gradient) — "reliable generation", §3.5.
* ``L_DIV`` (Eq. 7), "diverse generation", §3.6, split into its two parts with separate
  weights (as the official scripts do):
  ``M_att`` — attention magnitude, the mean of the attention maps h(x) (N, K, H, W);
  ``H_att`` — attention entropy, the entropy of a softmax over the H·W spatial positions of
  each attribute map, averaged over the K attributes.

Sign conventions (decided here, from the HAS paper's §3.3–3.6 and the authors' public scripts):

* every weight is the coefficient of its term in ``L_HAS`` *as written above*, and the
  generator **descends** ``L_HAS``. Eq. 4 of the paper writes ``+ε·sign∇`` (a sign typo, see
  the guide); zslab steps ``I ← I − α·sign ∇L_HAS``.
* ``lambda_rob ≥ 0``: raises H(p). ``lambda_rel ≥ 0``: pulls features towards the clean ones.
  ``lambda_att_mag ≥ 0``: weakens attention. These three must be non-negative (a negative
  value would invert the term's purpose; it is rejected).
* ``lambda_att_ent`` may have either sign: positive ⇒ descent *raises* the spatial attention
  entropy (flatter attention, the paper's stated intent, "entropy maximization"); negative ⇒
  sharper attention. The guide lists the official per-dataset attention-entropy weights as
  −1 (CUB), −0.1 (AwA2), +0.1 (SUN); :data:`OFFICIAL_WEIGHTS` takes those numbers literally
  in this convention (the λ of the guide's ``λ3·(magnitude − entropy)``).
* The paper's Eq. 3 writes ``− λ3·L_DIV`` with ``L_DIV = ‖h‖² + H(h)``, which under descent
  would *strengthen* attention; zslab follows the guide (and the text of §3.6: "suppressing
  the overall attention weights"): the magnitude enters with ``+``. The paper's magnitude is
  ‖h_k‖²; zslab uses the mean of the maps (as specified for this project).

Pixel space: images are in [0, 1]; ``step_size`` and ``eps`` are in [0, 1] units
(``2/255`` etc.). ``eps=None`` means no ε-ball (only the [0, 1] clamp, as in the official
code); no random start by default (as in the official code).

Implementation: :class:`HAS` is :class:`~zslab.attacks.pgd.PGD` with ``targeted=True``
(descent) and the composite loss as its default loss, so eval mode and its restoration,
input validation, the input-only gradient (parameters, buffers and ``.grad`` untouched) and
the ε-ball/[0, 1] projection are the attack base class's. The clean features for L_REL are
taken, detached, from the first step's forward pass (the first iterate *is* the clean image
when there is no random start), so generation costs exactly T forward+backward passes.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from zslab import ZSLabError
from zslab.attacks.base import eval_mode
from zslab.attacks.losses import logits_of
from zslab.attacks.pgd import PGD
from zslab.config.schema import parse_fraction
from zslab.methods.apn import APNStrategy

__all__ = ["HAS", "HASConfig", "HASConfigError", "TABLE2_ROWS", "OFFICIAL_WEIGHTS", "has_terms",
           "has_objective", "table2_overrides", "TABLE2_OVERRIDES", "BindClasses"]


class HASConfigError(ZSLabError, ValueError):
    """An invalid HAS setting."""


@dataclass(frozen=True)
class HASConfig:
    """HAS generator settings (all pixel quantities in [0, 1] units).

    Attributes:
        steps: T, the number of signed-gradient descent steps (≥ 0; 0 returns the input).
        step_size: α per step (> 0 when ``steps > 0``). Default 2/255: on the 32-px shapes
            images T=3 steps move a pixel by at most 6/255, inside the usual 8/255 budget and
            the paper's ε ∈ [1, 8]/255 range, between the official AwA2 (4/255) and SUN (2/255)
            step sizes; the flat colour regions that carry shapes' colour attributes are
            not visibly changed (keeps perturbations semantic-preserving).
        eps: L∞ radius around the clean image, or ``None`` for no ball (only the [0, 1] clamp).
        lambda_rob: weight of −L_ROB (Eq. 5), ≥ 0.
        lambda_rel: weight of L_REL (Eq. 6), ≥ 0.
        lambda_att_mag: weight of the attention magnitude (Eq. 7, first part), ≥ 0.
        lambda_att_ent: weight of −H_att (Eq. 7, second part); any finite sign (see module doc).
        random_start: start from a uniform point of the ε-ball (needs ``eps``); off by default.

    Default weights: λ_rob = 1 and λ_rel = 0.1 (official AwA2/SUN), λ_att_mag = 1e-4 (official
    CUB/AwA2), λ_att_ent = +0.1 (magnitude of the AwA2/SUN values, with the paper's sign:
    flatten attention). Not tuned on shapes.
    """
    steps: int = 3
    step_size: float = 2 / 255
    eps: float | None = None
    lambda_rob: float = 1.0
    lambda_rel: float = 0.1
    lambda_att_mag: float = 1e-4
    lambda_att_ent: float = 0.1
    random_start: bool = False

    def __post_init__(self):
        s = self.steps
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise HASConfigError(f"HAS steps (T) must be an integer >= 0; got {s!r}")
        object.__setattr__(self, "steps", int(s))
        a = _number("step_size", self.step_size)
        if a < 0:
            raise HASConfigError(f"HAS step_size must be >= 0 (pixel units in [0, 1], e.g. 2/255); got {a!r}")
        if a == 0 and self.steps > 0:
            raise HASConfigError("HAS step_size must be > 0 when steps > 0 (use steps=0 for no perturbation)")
        if a > 1:
            raise HASConfigError(f"HAS step_size is in [0, 1] pixel units (e.g. 2/255); got {a!r}")
        object.__setattr__(self, "step_size", a)
        if self.eps is not None:
            e = _number("eps", self.eps)
            if e < 0:
                raise HASConfigError(f"HAS eps must be >= 0 or None (no ball); got {e!r}")
            object.__setattr__(self, "eps", e)
        for name in ("lambda_rob", "lambda_rel", "lambda_att_mag", "lambda_att_ent"):
            v = _number(name, getattr(self, name))
            if name != "lambda_att_ent" and v < 0:
                raise HASConfigError(f"HAS {name} must be >= 0 (the term's sign is fixed in L_HAS; "
                                     f"0 switches it off); got {v!r}")
            object.__setattr__(self, name, v)
        if not isinstance(self.random_start, bool):
            raise HASConfigError(f"HAS random_start must be true or false; got {self.random_start!r}")
        if self.random_start and self.eps is None:
            raise HASConfigError("HAS random_start needs an eps ball (set eps)")

    @property
    def weights(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("lambda_rob", "lambda_rel", "lambda_att_mag", "lambda_att_ent")}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_train_config(cls, cfg: dict) -> "HASConfig":
        """From an engine config's ``has_*`` keys (see :data:`zslab.train.config.METHOD_DEFAULTS`)."""
        kw = {f.name: cfg[f"has_{f.name}"] for f in fields(cls) if f"has_{f.name}" in cfg}
        return cls(**kw)


def _number(name, v) -> float:
    if isinstance(v, str) and name in ("step_size", "eps"):  # "2/255"
        try:
            v = parse_fraction(v)
        except ValueError:
            raise HASConfigError(f"HAS {name} must be a number or a fraction like '2/255'; got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise HASConfigError(f"HAS {name} must be a number; got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise HASConfigError(f"HAS {name} must be finite; got {v!r}")
    return v


_ON = {f.name: f.default for f in fields(HASConfig) if f.name.startswith("lambda_")}
_OFF = {k: 0.0 for k in _ON}

#: The rows of the paper's Table 2 (loss ablation) as generator weights. ``None``: the APN
#: baseline (no adversarial training; train with method "apn"). "On" weights are the
#: :class:`HASConfig` defaults; L_DIV switches both attention terms.
TABLE2_ROWS: dict[str, dict[str, float] | None] = {
    "baseline": None,
    "cls": dict(_OFF),
    "cls+rob": {**_OFF, "lambda_rob": _ON["lambda_rob"]},
    "cls+div": {**_OFF, "lambda_att_mag": _ON["lambda_att_mag"], "lambda_att_ent": _ON["lambda_att_ent"]},
    "cls+rob+rel": {**_OFF, "lambda_rob": _ON["lambda_rob"], "lambda_rel": _ON["lambda_rel"]},
    "cls+div+rel": {**_OFF, "lambda_rel": _ON["lambda_rel"], "lambda_att_mag": _ON["lambda_att_mag"],
                    "lambda_att_ent": _ON["lambda_att_ent"]},
    "has": dict(_ON),
}

#: Per-dataset values of the authors' official training scripts (facts, not code; HAS §4.1), in
#: zslab's sign convention (see the module docstring); step sizes in [0, 1] pixel units.
OFFICIAL_WEIGHTS: dict[str, dict[str, float]] = {
    "cub": {"step_size": 5 / 255, "lambda_rob": 0.1, "lambda_rel": 3.0, "lambda_att_mag": 1e-4, "lambda_att_ent": -1.0},
    "awa2": {"step_size": 4 / 255, "lambda_rob": 1.0, "lambda_rel": 0.1, "lambda_att_mag": 1e-4, "lambda_att_ent": -0.1},
    "sun": {"step_size": 2 / 255, "lambda_rob": 1.0, "lambda_rel": 0.1, "lambda_att_mag": 0.1, "lambda_att_ent": 0.1},
}


def table2_overrides(row: str) -> dict:
    """Engine config overrides (``has_*`` keys and ``method``) for a Table 2 row."""
    if row not in TABLE2_ROWS:
        raise HASConfigError(f"unknown Table 2 row {row!r}; rows: {', '.join(TABLE2_ROWS)}")
    w = TABLE2_ROWS[row]
    if w is None:
        return {"method": "apn"}
    return {"method": "has", **{f"has_{k}": v for k, v in w.items()}}


#: Engine config overrides per Table 2 row: the rows of the HAS study's ``table2`` run table
#: (``zslab/config/recipes/studies/has.yaml`` reads them from here: this is their one source).
TABLE2_OVERRIDES: dict[str, dict] = {row: table2_overrides(row) for row in TABLE2_ROWS}


# --------------------------------------------------------------------------------- losses
def _entropy(z: torch.Tensor, dim: int) -> torch.Tensor:
    logp = F.log_softmax(z, dim=dim)
    return -(logp.exp() * logp).sum(dim=dim)


def has_terms(output: dict, labels: torch.Tensor, clean_features: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Per-example HAS terms from an APN output dict (with ``logits`` over the train classes).

    Returns ``cls`` (Eq. 1), ``rob`` = H(p) (Eq. 5), ``rel`` (Eq. 6; zeros when
    ``clean_features`` is None), ``att_mag`` and ``att_ent`` (the two parts of Eq. 7), all in
    float32, shape (N,). A model without attribute attention (no ``attention`` entry, e.g. LAAT's
    :class:`zslab.methods.laat.AnchorHead`, whose ``logits`` are cos(f(x), â)/τ so that ``cls`` is the
    A-CE of LAAT Eq. 3) gives no ``att_*`` terms; :func:`has_objective` then needs their weights 0.
    """
    z = logits_of(output).float()
    feats = output["features"].float()
    rel = (feats - clean_features.float()).pow(2).sum(1) if clean_features is not None else feats.new_zeros(len(feats))
    terms = {
        "cls": F.cross_entropy(z, labels, reduction="none"),
        "rob": _entropy(z, 1),
        "rel": rel,
    }
    if "attention" in output:
        att = output["attention"].float()
        terms["att_mag"] = att.mean(dim=(1, 2, 3))
        terms["att_ent"] = _entropy(att.flatten(2), 2).mean(1)
    return terms


def has_objective(terms: dict[str, torch.Tensor], cfg: HASConfig) -> torch.Tensor:
    """L_HAS (Eq. 3 in zslab's convention) per example; zero-weight terms are left out."""
    total = terms["cls"]
    for key, sign, w in (("rob", -1.0, cfg.lambda_rob), ("rel", 1.0, cfg.lambda_rel),
                         ("att_mag", 1.0, cfg.lambda_att_mag), ("att_ent", -1.0, cfg.lambda_att_ent)):
        if w != 0:
            if key not in terms:
                raise HASConfigError(f"HAS lambda_{key} = {w:g} needs attribute attention maps, but the model "
                                     f"returns no 'attention' (an anchor/embedding model); set lambda_{key}=0")
            total = total + (sign * w) * terms[key]
    return total


class BindClasses(nn.Module):
    """``BindClasses(apn, A)(x)`` is ``apn(x, A)``: an APN scored against fixed classes (the train
    classes during HAS). ``A`` is not registered as a buffer: the wrapper holds no state."""
    def __init__(self, model: nn.Module, class_attributes: torch.Tensor):
        super().__init__()
        self.model = model
        self.class_attributes = class_attributes

    def forward(self, x: torch.Tensor) -> dict:
        return self.model(x, self.class_attributes)


# --------------------------------------------------------------------------------- generator
class HAS(PGD):
    """The HAS generator (§3.3–3.6): T signed-gradient descent steps on L_HAS (Eq. 3–7).

    ``HAS(model, config=None, *, class_attributes=None, seed=None, **overrides)``; the model
    returns an APN-style dict (``features``, ``attention``, ``logits``); pass the train
    classes' attribute matrix as ``class_attributes`` when the model needs it to produce
    ``logits``. ``overrides`` are :class:`HASConfig` fields. ``gen(images, labels)`` returns
    the adversarial images (no grad); :attr:`last_stats` then holds per-step means of the
    terms (``trace``) and the clean eval-mode accuracy.
    """
    name = "has"

    def __init__(self, model, config: HASConfig | None = None, *, class_attributes=None, seed=None, **overrides):
        if config is None:
            config = HASConfig(**overrides)
        elif overrides:
            config = replace(config, **overrides)
        if not isinstance(config, HASConfig):
            raise HASConfigError(f"config must be a HASConfig; got {type(config).__name__}")
        if class_attributes is not None:
            model = BindClasses(model, class_attributes)
        self.config = config
        eps = 1.0 if config.eps is None else config.eps  # radius 1 ⊇ [0, 1]: only the clamp
        super().__init__(model, eps=eps, alpha=config.step_size if config.steps > 0 else 0.0,
                         steps=config.steps, random_start=config.random_start, targeted=True, seed=seed)
        self._clean = None
        self.last_stats: dict = {}

    def default_loss(self, output, labels):
        terms = has_terms(output, labels, self._clean)
        if self._clean is None:  # first iterate == clean image: take its features (no grad)
            self._clean = output["features"].detach()
            self.last_stats["clean_acc"] = (logits_of(output).argmax(1) == labels).float().mean().detach()
        total = has_objective(terms, self.config)
        # detached tensors (no device sync here); :meth:`stats` turns them into floats
        self.last_stats["trace"].append({"has": total.detach().mean(),
                                         **{k: v.detach().mean() for k, v in terms.items()}})
        return total

    def stats(self) -> dict:
        """:attr:`last_stats` as floats: ``clean_acc`` (eval mode; absent with random start) and
        ``trace``, one dict of term means per step, evaluated at the iterates 0..T−1."""
        out = {k: float(v) for k, v in self.last_stats.items() if k != "trace"}
        out["trace"] = [{k: float(v) for k, v in step.items()} for step in self.last_stats.get("trace", [])]
        return out

    def __call__(self, images, labels, *, ids=None):
        self.last_stats = {"trace": []}  # also when the base class returns early (eps=0, empty batch)
        return super().__call__(images, labels, ids=ids)

    def _perturb(self, x, y, rng):
        self.last_stats = {"trace": []}
        self._clean = None
        if self.random_start:
            with torch.no_grad():
                self._clean = self.model(x)["features"].detach()
        try:
            return super()._perturb(x, y, rng)
        finally:
            self._clean = None

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Batch means of every term and of L_HAS at ``images`` (clean reference ``clean``), model in
        eval mode (restored). For analysis and tests; costs two forward passes."""

        with eval_mode(self.model):
            ref = self.model(clean)["features"]
            out = self.model(images)
            terms = has_terms(out, labels, ref)
            total = has_objective(terms, self.config)
            acc = (logits_of(out).argmax(1) == labels).float().mean()
        return {"has": float(total.mean()), "acc": float(acc), **{k: float(v.mean()) for k, v in terms.items()}}


# ----------------------------------------------------------------------------- the HAS training strategy
class HASStrategy(APNStrategy):
    """HAS training (Algorithm 1; :mod:`zslab.methods.has`). Per batch:

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
