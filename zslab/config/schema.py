"""The typed configuration schema: one nested document per run, checked before any work.

Built on pydantic v2 models (see ``docs/configuration.md`` for why pydantic rather than
OmegaConf): every field has a type, a range or a choice set and a one-line description;
unknown keys are refused (with a did-you-mean suggestion, :mod:`zslab.config.errors`), NaN and
±inf are refused everywhere, and every perturbation size (ε, α) is on the [0, 1] pixel scale
with a hint when a value looks like the 0–255 scale.

Sections
--------
``run``     what to run and how: method, dataset, preset, seed, device and the engine switches
``data``    options of the dataset's loader (one model per dataset format, :data:`DATA_MODELS`)
``model``   the image model (APN backbone, or LAAT's embedding architecture ``arch``)
``train``   optimiser, schedule, epochs, checkpoint selection
``method``  the method's losses: APN/HAS ``lambda_loc`` and ``augment``; ``method.has`` (HAS
            generator, HAS paper Eq. 3–7, Algorithm 1); ``method.laat`` (LAAT objective, Eq. 3/4/8)
``anchors`` LAAT's class anchors: text encoder, prompt, expansion (LAAT Sec. 3.2–3.4)
``attack``  LAAT's training adversary (PGD-AT, LAAT Sec. 4.1; or the HAS-style sample)
``eval``    evaluation: batch size, robust-evaluation attack, N-way episodes, GZSL sampling
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

METHODS = ("apn", "has", "laat")
PRESETS = ("smoke", "full", "paper")
XLSA17_NAMES = ("cub", "awa1", "awa2", "sun", "apy")
#: every dataset name the CLI accepts (``cifar10``: the ``folder`` loader with CIFAR-10's novel classes)
DATASETS = ("shapes", "folder", "cifar10") + XLSA17_NAMES + ("cifar-fs", "miniimagenet")
#: datasets without a class-attribute matrix (anchors come from the class names)
TEXT_DATASETS = ("folder", "cifar10", "cifar-fs", "miniimagenet")
#: accepted spellings of dataset names
DATASET_ALIASES = {"cifarfs": "cifar-fs", "cifar_fs": "cifar-fs", "mini-imagenet": "miniimagenet",
                   "mini_imagenet": "miniimagenet", "cifar-10": "cifar10", "cifar_10": "cifar10"}
AUGMENTATIONS = ("none", "colorjitter0.2", "colorjitter0.4", "grayscale0.2", "grayscale0.4", "blur_low",
                 "blur_high", "rotate", "crop_half", "cutout", "mixup", "cutmix", "snapmix")
BACKBONES = ("small", "resnet18", "resnet50", "resnet101")
ARCHS = ("conv4-64", "conv4-512", "resnet12", "preact-resnet18")
SPLITS = ("train", "val_seen", "val_unseen", "test_seen", "test_unseen")
#: LAAT's prompt (LAAT Sec. 3.2), the class name in place of {}
DEFAULT_PROMPT = "This is a photo of a {}"
#: the text-encoder specs zslab accepts (``anchors.encoder``, ``zslab anchors encode --encoder``)
SPEC_FORMS = ('"minilm" (offline all-MiniLM-L6-v2)', '"clip:ARCH:PATH" (open_clip architecture + local weights)',
              '"file:PATH.npy" or "file:PATH.npy:CLASSES.txt" (precomputed anchors + class list)')


# ----------------------------------------------------------------------------- value types
def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("must be a number, not true/false")
    return v


def _finite(v: Any) -> Any:
    v = _no_bool(v)
    if isinstance(v, numbers.Real) and not math.isfinite(float(v)):
        raise ValueError(f"must be a finite number, got {v!r}")
    if isinstance(v, str) and v.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        raise ValueError(f"must be a finite number, got {v!r}")
    return v


def parse_fraction(text: str) -> float:
    """``"8/255"``, ``"8 / 255"``, ``"0.03"`` → float (the fraction is rounded once, so ``"8/255"``
    equals ``8 / 255``); :class:`ValueError` for anything else."""
    text = str(text).replace(" ", "")
    try:
        return float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"cannot read {text!r} as a number; write it like '8/255' or 0.03") from None


def pixel_value(v: Any, *, name: str = "value") -> float:
    """A perturbation size on the [0, 1] pixel scale: a number or a fraction string (``"8/255"``).

    Refuses NaN/inf, negatives and values above 1, with the hint "did you mean 8/255?" when the
    value looks like the 0–255 scale."""
    if isinstance(v, bool):
        raise ValueError("must be a number or a fraction like '8/255', not true/false")
    if isinstance(v, str):
        v = parse_fraction(v)
    if not isinstance(v, numbers.Real):
        raise ValueError(f"must be a number or a fraction like '8/255', got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v!r}")
    if v < 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    if v > 1:
        hint = f" — did you mean {v:g}/255?" if v <= 255 else ""
        raise ValueError(f"is on the [0, 1] pixel scale (images are in [0, 1]), got {v:g}{hint}")
    return v


def _pixel(v: Any) -> float:
    return pixel_value(v)


Finite = Annotated[float, BeforeValidator(_finite)]
Pixel = Annotated[float, BeforeValidator(_pixel)]


def Num(description: str, default: Any = ..., **limits) -> Any:  # noqa: N802 - a field factory
    """A finite float field with limits (``ge``, ``gt``, ``le``, ``lt``)."""
    return Field(default, description=description, **limits)


class Section(BaseModel):
    """Base of every section: unknown keys refused, NaN/inf refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True,
                              protected_namespaces=())


Int = Annotated[int, BeforeValidator(_no_bool), Field(strict=True)]


# ----------------------------------------------------------------------------- sections
class RunSection(Section):
    method: Literal["apn", "has", "laat"] = Field("apn", description="training method: APN baseline, HAS, or LAAT")
    dataset: str = Field("shapes", description="dataset name (shapes = the embedded generated default)")
    preset: Literal["smoke", "full", "paper"] = Field("smoke", description="recipe size: smoke (<1 min CPU), full, paper")
    seed: Int = Field(0, ge=0, description="training seed (weights, batch order, attacks' random starts)")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$", description="auto, cpu, cuda or cuda:N")
    amp: StrictBool = Field(True, description="mixed precision on CUDA (bf16 where supported)")
    amp_cpu: StrictBool = Field(False, description="bf16 autocast on the CPU (fast path; off keeps runs bit-identical)")
    progress: StrictBool = Field(True, description="tqdm progress bars and per-epoch lines")
    sync_bn: StrictBool = Field(False, description="torchrun on CUDA: SyncBatchNorm over the global batch")
    channels_last: StrictBool = Field(False, description="channels_last memory format (fast path)")
    compile: Union[StrictBool, Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][\w.-]*$")]] = Field(
        False, description="torch.compile the model: true (inductor), a backend name (aot_eager, ...), or false")
    num_workers: Int = Field(0, ge=0, le=64, description="DataLoader worker processes (0: in-process batching)")


class ModelSection(Section):
    backbone: Literal["small", "resnet18", "resnet50", "resnet101"] = Field(
        "small", description="APN/HAS backbone (small CNN or torchvision ResNet)")
    width: Int | None = Field(32, ge=1, le=1024, description="channels of the small CNN (None for ResNets)")
    weights: str | None = Field(None, description="local torchvision state_dict file of ImageNet weights (ResNets)")
    arch: Literal["conv4-64", "conv4-512", "resnet12", "preact-resnet18"] = Field(
        "conv4-64", description="LAAT image model (LAAT Table 7)")

    @model_validator(mode="after")
    def _small_has_no_weights(self):
        if self.backbone == "small" and self.weights:
            raise ValueError("model.weights: the 'small' backbone has no pretrained weights; drop model.weights "
                             "or choose model.backbone=resnet18|resnet50|resnet101")
        return self


class TrainSection(Section):
    epochs: Int = Field(10, ge=1, le=100000, description="training epochs")
    batch_size: Int = Field(64, ge=1, le=1 << 20, description="global training batch (split across torchrun processes)")
    lr: Finite = Num("learning rate", 1e-3, gt=0, le=10)
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="LAAT optimiser: sgd (LAAT Sec. 4.1) or adam")
    betas: tuple[Annotated[Finite, Field(ge=0, lt=1)], Annotated[Finite, Field(ge=0, lt=1)]] = Field(
        (0.5, 0.999), description="Adam betas (HAS §4.1: 0.5, 0.999)")
    momentum: Finite = Num("SGD momentum (LAAT: 0.9)", 0.9, ge=0, lt=1)
    weight_decay: Finite = Num("L2 weight decay", 1e-5, ge=0, le=1)
    lr_step: Int = Field(10, ge=1, description="Adam schedule: lr × lr_gamma every lr_step epochs (HAS §4.1)")
    lr_milestones: list[Annotated[Int, Field(ge=1)]] = Field(
        [60], description="SGD schedule: lr × lr_gamma at these epochs (LAAT: 60)")
    lr_gamma: Finite = Num("learning-rate decay factor", 0.8, gt=0, le=1)
    select_metric: Literal["val_h", "val_zsl", "val_zs"] = Field(
        "val_h", description="validation metric that selects the checkpoint (never a test metric)")


class HASSection(Section):
    """HAS generator (HAS paper Eq. 3–7, Algorithm 1), in [0, 1] pixel units; weights in zslab's sign
    convention L_HAS = L_CLS − λ_rob·H(p) + λ_rel·‖Δg‖² + λ_att_mag·mean(h) − λ_att_ent·H_spatial(h)."""

    steps: Int = Field(3, ge=0, le=1000, description="T, signed-gradient descent steps (Algorithm 1; official: 3)")
    step_size: Pixel = Field(2 / 255, description="α per step in [0, 1] pixel units (official 5/4/2 /255)")
    eps: Pixel | None = Field(None, description="L∞ ball around the clean image, or null for none (only [0,1] clamp)")
    random_start: StrictBool = Field(False, description="start from a random point of the eps ball (needs eps)")
    adv_prob: Finite = Num("probability of the step on the adversarial batch (Alg. 1 line 9; official 0.5)", 1.0,
                           ge=0, le=1)
    lambda_rob: Finite = Num("weight of −L_ROB = −H(p) (Eq. 5)", 1.0, ge=0, le=1e6)
    lambda_rel: Finite = Num("weight of L_REL (Eq. 6)", 0.1, ge=0, le=1e6)
    lambda_att_mag: Finite = Num("weight of the attention magnitude (Eq. 7)", 1e-4, ge=0, le=1e6)
    lambda_att_ent: Finite = Num("weight of −H_spatial(attention) (Eq. 7; any sign)", 0.1, ge=-1e6, le=1e6)

    @model_validator(mode="after")
    def _consistent(self):
        if self.steps > 0 and self.step_size == 0:
            raise ValueError("method.has.step_size must be > 0 when method.has.steps > 0 (steps=0: no perturbation)")
        if self.random_start and self.eps is None:
            raise ValueError("method.has.random_start needs an eps ball: set method.has.eps (e.g. 8/255)")
        return self


class LAATSection(Section):
    """LAAT's objective (LAAT Sec. 3.5, Eq. 3, 4, 8; Tables 4, 6, S1)."""

    objective: Literal["ace", "cos", "theta", "euclid", "trades"] = Field(
        "ace", description="A-CE (Eq. 3/8), cos θ, θ, Euclidean (Table 4) or TRADES (Table 6)")
    tau: Finite = Num("A-CE temperature τ (Eq. 8, Table S1)", 1.0, gt=0, le=1e3)
    alpha: Finite = Num("smoothness weight α (Eq. 4; paper 3, official code 1)", 3.0, ge=0, le=1e3)
    trades_beta: Finite = Num("TRADES 1/λ (Table 6)", 6.0, ge=0, le=1e3)


class MethodSection(Section):
    lambda_loc: Finite = Num("weight of L_LOC (HAS Eq. 2)", 1.0, ge=0, le=1e6)
    augment: Literal[AUGMENTATIONS] = Field(  # type: ignore[valid-type]
        "none", description="a HAS Table 3 augmentation of the training batch (none: off)")
    has: HASSection | None = Field(None, description="HAS generator (method has only)")
    laat: LAATSection | None = Field(None, description="LAAT objective (method laat only)")


class AnchorsSection(Section):
    encoder: str = Field("minilm", description="minilm | clip:ARCH:PATH | file:ANCHORS.npy[:CLASSES.txt] | attributes")
    prompt: str = Field(DEFAULT_PROMPT, description="prompt with one {} for the class name (LAAT Sec. 3.2)")
    cache: Union[str, None, Literal[False]] = Field(
        None, description="folder caching encoded anchors (null or false: no cache)")
    expand: StrictBool = Field(True, description="expand anchors (LAAT Appendix Alg. 1), fitted on training classes")

    @model_validator(mode="after")
    def _encoder_form(self):
        e = self.encoder
        if not (e in ("minilm", "attributes") or e.startswith(("clip:", "file:"))):
            raise ValueError(f"anchors.encoder must be minilm, clip:ARCH:PATH, file:PATH or attributes; got {e!r}")
        if e.startswith("clip:") and e.count(":") < 2:
            raise ValueError(f"anchors.encoder {e!r}: write clip:ARCH:PATH (an open_clip architecture and a local "
                             f"checkpoint file or Hugging Face cache folder; nothing is downloaded)")
        if "{}" not in self.prompt:
            raise ValueError(f"anchors.prompt must contain '{{}}' where the class name goes; got {self.prompt!r}")
        return self


class AttackSection(Section):
    """LAAT's training adversary (LAAT Sec. 4.1: PGD, ε = 8/255, 7 steps of 2/255, random start)."""

    adversary: Literal["pgd", "has", "has+pgd"] = Field(
        "pgd", description="pgd (LAAT), has (HAS-style sample on the anchor model) or has+pgd (half each)")
    eps: Pixel = Field(8 / 255, description="L∞ budget in [0, 1] pixel units (8/255)")
    step: Pixel = Field(2 / 255, description="PGD step in [0, 1] pixel units (2/255)")
    steps: Int = Field(7, ge=1, le=1000, description="PGD steps (7)")
    random_start: StrictBool = Field(True, description="uniform random start in the eps ball")
    adv_lambda_rob: Finite = Num("HAS-style adversary: weight of −H(p)", 1.0, ge=0, le=1e6)
    adv_lambda_rel: Finite = Num("HAS-style adversary: weight of ‖f(x+δ) − f(x)‖²", 0.1, ge=0, le=1e6)


class EvalSection(Section):
    batch_size: Int = Field(512, ge=1, le=1 << 20, description="evaluation batch size")
    eps: Pixel = Field(8 / 255, description="robust evaluation L∞ budget in [0, 1] pixel units")
    pgd_step: Pixel = Field(2 / 255, description="PGD step of the robust evaluation")
    pgd_steps: Int = Field(20, ge=1, le=10000, description="PGD steps of the robust evaluation (PGD-20)")
    seed: Int = Field(0, ge=0, description="seed of the evaluation episodes and attacks")
    n_way: Union[Int, Literal["auto"]] = Field(
        5, description="classes per zero-shot episode (LAAT: 5); auto = min(5, novel classes)")
    n_query: Int = Field(20, ge=1, le=100000, description="query images per class and episode (LAAT: 20)")
    episodes: Int = Field(2000, ge=1, le=10 ** 7, description="clean N-way episodes (LAAT: 2000)")
    episodes_attacked: Int | None = Field(None, ge=1, description="attacked episodes (null: as many as clean)")
    gzsl_per_class: Int = Field(100, ge=1, le=10 ** 6, description="images per class of the GZSL N-way test")

    @model_validator(mode="after")
    def _n_way(self):
        if isinstance(self.n_way, int) and self.n_way < 2:
            raise ValueError(f"eval.n_way must be >= 2 (or auto); got {self.n_way}")
        return self


# ----------------------------------------------------------------------------- data sections
SplitCaps = Union[Annotated[Int, Field(ge=1)], dict[Literal[SPLITS], Annotated[Int, Field(ge=1)]]]  # type: ignore[valid-type]


class DataCommon(Section):
    attributes: Literal["raw", "expanded"] = Field(
        "raw", description="class attribute vectors as loaded, or expanded like LAAT anchors (notebook 32)")


class ShapesData(DataCommon):
    """The embedded generated dataset (``zslab.data.shapes.ShapesConfig``)."""

    image_size: Int = Field(32, ge=16, le=1024, description="square image side in pixels")
    n_train_classes: Int = Field(32, ge=4, description="seen classes")
    n_val_classes: Int = Field(8, ge=1, description="validation (pseudo-unseen) classes")
    n_unseen_classes: Int = Field(10, ge=1, description="unseen test classes")
    train_per_class: Int = Field(160, ge=1, description="training images per seen class")
    val_seen_per_class: Int = Field(20, ge=1, description="held-out validation images per seen class")
    test_seen_per_class: Int = Field(40, ge=1, description="test images per seen class")
    unseen_per_class: Int = Field(100, ge=1, description="test images per unseen class")
    val_unseen_per_class: Int | None = Field(None, ge=1, description="images per validation class (null: unseen_per_class)")
    seed: Int = Field(0, ge=0, description="seed of the generated classes and images")
    noise: Finite = Num("Gaussian pixel noise std", 0.03, ge=0, le=0.5)
    clutter: StrictBool = Field(True, description="textured background clutter")
    rotation: Finite = Num("max |rotation| in degrees", 30.0, ge=0, le=180)
    scale_jitter: Finite = Num("global scale jitter s (scale in [1-s, 1+s])", 0.1, ge=0, le=0.3)
    translate: Finite = Num("share of the free room used for translation", 1.0, ge=0, le=1)
    dominant_prob: tuple[Annotated[Finite, Field(gt=0, le=1)], Annotated[Finite, Field(gt=0, le=1)]] = Field(
        (0.75, 0.95), description="range of the per-class probability of the dominant attribute value")
    cache_dir: str | None = Field(None, description="folder caching the generated tensors (null: none)")
    on_the_fly: StrictBool = Field(False, description="render images per batch instead of up front")


class FolderData(DataCommon):
    """Class-named image folders ``root/{train,test}/<class>/`` (``zslab.data.folder``)."""

    root: str = Field(..., description="folder holding train/<class>/ and test/<class>/")
    novel: Union[str, list[str]] = Field(..., description="classes held out as novel: 'cat,dog' or a list")
    val_classes: Union[str, list[str], None] = Field(
        None, description="validation classes (null/auto: a seeded hold-out of seen classes, announced)")
    auto_val_fraction: Finite = Num("share of seen classes the automatic hold-out takes (at least 2)", 0.2, gt=0, lt=1)
    image_size: Int | None = Field(None, ge=8, le=2048, description="image side (null: the first image's)")
    max_per_class: SplitCaps | None = Field(None, description="images per class: one cap or a cap per split")
    val_seen_fraction: Finite = Num("share of seen-class train images held out as val_seen", 0.1, gt=0, lt=1)
    seed: Int = Field(0, ge=0, description="seed of the hold-outs and caps")


class XLSA17Data(DataCommon):
    """CUB / AWA1 / AWA2 / SUN / APY images + xlsa17 ``att_splits.mat`` (``zslab.data.xlsa17``)."""

    root: str = Field(..., description="the dataset's image root (e.g. CUB_200_2011/)")
    split_dir: str | None = Field(None, description="folder with att_splits.mat (null: root)")
    image_size: Int = Field(224, ge=8, le=2048, description="square image side (paper: 448)")
    res101: str | None = Field(None, description="res101.mat path (null: split_dir/res101.mat)")
    val_classes: Union[str, Int, list[str]] = Field("xlsa17", description="xlsa17, 1/2/3 or a list of class names")
    val_seen_fraction: Finite = Num("share of train-class images held out as val_seen", 0.1, gt=0, lt=1)
    max_per_class: SplitCaps | None = Field(None, description="images per class: one cap or a cap per split")
    seed: Int = Field(0, ge=0, description="seed of the hold-outs and caps")
    attribute_key: Literal["att", "original_att"] = Field("att", description="att (L2-normalised) or original_att")
    check_files: StrictBool = Field(True, description="check every image file exists before training")


class FewShotData(DataCommon):
    """CIFAR-FS / MiniImageNet 64/16/20 class splits (``zslab.data.cifarfs``, ``zslab.data.miniimagenet``)."""

    root: str = Field(..., description="dataset folder (see the loader's docstring for the layouts)")
    layout: str = Field("auto", description="auto, or the loader's layout name")
    image_size: Int | None = Field(None, ge=8, le=2048, description="image side (null: native 32 / 84)")
    val_seen_fraction: Finite = Num("share of train-class images held out as val_seen", 0.1, gt=0, lt=1)
    test_seen_per_class: Int = Field(100, ge=1, description="held-out test images per training class")
    max_per_class: SplitCaps | None = Field(None, description="images per class: one cap or a cap per split")
    seed: Int = Field(0, ge=0, description="seed of the hold-outs and caps")


class CifarFSData(FewShotData):
    check_md5: StrictBool = Field(True, description="verify the CIFAR-100 archive files' MD5")


#: dataset name -> the model of its ``data`` section
DATA_MODELS: dict[str, type[DataCommon]] = {
    "shapes": ShapesData, "folder": FolderData, "cifar10": FolderData,
    **{n: XLSA17Data for n in XLSA17_NAMES}, "cifar-fs": CifarFSData, "miniimagenet": FewShotData,
}

SECTION_MODELS: dict[str, type[Section]] = {
    "run": RunSection, "model": ModelSection, "train": TrainSection, "method": MethodSection,
    "anchors": AnchorsSection, "attack": AttackSection, "eval": EvalSection,
}
#: sub-sections (dotted) that exist for one method only
METHOD_SUBSECTIONS = {"method.has": ("has", HASSection), "method.laat": ("laat", LAATSection)}
#: sections that exist for LAAT only
LAAT_SECTIONS = ("anchors", "attack")


def canonical_dataset(name: Any) -> str:
    key = str(name).strip().lower()
    return DATASET_ALIASES.get(key, key)


def section_model(path: str, dataset: str | None = None) -> type[BaseModel] | None:
    """The pydantic model of a dotted section path (``"model"``, ``"method.has"``, ``"data"``)."""
    if path == "data":
        return DATA_MODELS.get(canonical_dataset(dataset or "shapes"))
    if path in METHOD_SUBSECTIONS:
        return METHOD_SUBSECTIONS[path][1]
    return SECTION_MODELS.get(path)
