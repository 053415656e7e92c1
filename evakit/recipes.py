"""The recipe table: every named training configuration of the course.

A :class:`Recipe` names everything a run needs — model, data, task, optimizer, schedule,
augmentation, epochs, seed — and, in :class:`Fast`, the sizes its FAST run shrinks to. A
notebook, the CLI (``evakit train NAME``) and a benchmark hand the same recipe to
:func:`evakit.runner.run`, so the numbers they print come from the same code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from torch import nn

from evakit import models
from evakit.errors import ArgumentError


@dataclass(frozen=True)
class Fast:
    """How a recipe shrinks for a FAST run (CI, ``EVAKIT_FAST=1``): the same code, smaller.

    The data is already cut to FAST slices (see :func:`evakit.data.load`); these sizes cut the
    run further where one epoch of the slice would still take too long on a laptop CPU.

    Attributes:
        epochs: epochs of the FAST run.
        limit: train on the first ``limit`` images of the slice only (None: the whole slice).
        model_kwargs: model arguments replaced for the FAST run (e.g. a narrower ``width``).
        batch_size: batch size of the FAST run (None: the recipe's).
    """

    epochs: int = 2
    limit: int | None = None
    model_kwargs: dict = field(default_factory=dict)
    batch_size: int | None = None

    def describe(self, train_images: int) -> str:
        """What the FAST run is, in words (for a notebook's output)."""
        parts = [f"{train_images:,} training images", f"{self.epochs} epochs"]
        if self.model_kwargs:
            parts.append(", ".join(f"{k}={v}" for k, v in self.model_kwargs.items()))
        return "FAST run (" + ", ".join(parts) + "; a check that the code runs, not a result)"


_LOSSES = ("ce", "weighted-ce", "focal", "class-balanced")
_MIXES = (None, "mixup", "cutmix")
_POLICIES = (None, "randaugment", "autoaugment")


@dataclass(frozen=True)
class Practice:
    """Session 12's training practices, each off by default (see :mod:`evakit.practice`).

    A recipe sets them with ``practice=Practice(...)`` and ``task="practice"``; a recipe
    without them has ``practice=None``, and its config — what a record stores — does not
    mention them, so the records of earlier sessions compare equal to their recipes.

    Attributes:
        val_split: fraction of the training set held out for validation, class by class
            (seeded by ``data_seed``); scored after every epoch into ``History.val_*``.
        patience: stop once the validation loss has not improved for this many epochs and
            keep the weights of its best epoch (early stopping; needs ``val_split``).
        classes: train and test on these dataset classes only, relabelled 0…k−1 in this
            order; the network's last layer is replaced by one with k outputs.
        per_class: keep this many training images of each class (seeded by ``data_seed``).
        imbalance: keep a long-tailed training set whose largest class is this many times
            its smallest (Cui et al. 2019; :func:`evakit.losses.long_tailed_indices`).
        data_seed: seed of every selection above; the same for every training seed, so runs
            on several seeds see the same images.
        init_from: start from the recorded weights of this recipe, all but its last layer.
        freeze: train the last layer only on frozen features (a linear probe; batch norm
            keeps the statistics it was recorded with).
        backbone_lr: learning rate of every layer but the last, as a fraction of ``lr``
            (fine-tuning); None trains every layer at ``lr``.
        loss: "ce", "weighted-ce" (inverse class frequency), "focal", or "class-balanced"
            (focal loss weighted by the effective number of samples, Cui et al. 2019).
        focal_gamma: γ of the focal and class-balanced losses.
        cb_beta: β of the class-balanced weights.
        mix: "mixup" or "cutmix" on every training batch (torchvision v2), or None.
        mix_alpha: α of the Beta(α, α) the mixing weight is drawn from.
        policy: "randaugment" or "autoaugment" (torchvision v2, image by image on uint8)
            after the crop and flip, or None.
        swa_start: from the end of this epoch on, average the weights after every epoch
            (stochastic weight averaging) at learning rate ``swa_lr``; None: no averaging.
        swa_lr: the constant learning rate of the averaging phase.
    """

    val_split: float = 0.0
    patience: int | None = None
    classes: tuple[int, ...] | None = None
    per_class: int | None = None
    imbalance: float | None = None
    data_seed: int = 0
    init_from: str | None = None
    freeze: bool = False
    backbone_lr: float | None = None
    loss: str = "ce"
    focal_gamma: float = 2.0
    cb_beta: float = 0.9999
    mix: str | None = None
    mix_alpha: float = 1.0
    policy: str | None = None
    swa_start: int | None = None
    swa_lr: float = 0.01

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.val_split < 1.0:
            problems.append(f"val_split must lie in [0, 1), got {self.val_split!r}")
        if self.patience is not None and (self.patience < 1 or not self.val_split):
            problems.append("patience needs a positive number of epochs and a val_split")
        if self.loss not in _LOSSES:
            problems.append(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        if self.mix not in _MIXES or self.policy not in _POLICIES:
            problems.append(f"mix must be one of {_MIXES} and policy one of {_POLICIES}, got "
                            f"{self.mix!r} and {self.policy!r}")
        if self.mix is not None and self.loss != "ce":
            problems.append("mix trains on soft labels, which only the 'ce' loss takes")
        if (self.freeze or self.backbone_lr is not None) and self.init_from is None:
            problems.append("freeze and backbone_lr need init_from (the weights to start from)")
        if self.swa_start is not None and (self.swa_start < 1 or self.patience is not None):
            problems.append("swa_start must be a positive epoch, and SWA cannot stop early")
        if self.per_class is not None and self.per_class < 1:
            problems.append(f"per_class must be positive, got {self.per_class!r}")
        if self.imbalance is not None and self.imbalance < 1:
            problems.append(f"imbalance must be at least 1, got {self.imbalance!r}")
        if self.classes is not None and (len(self.classes) < 2
                                         or len(set(self.classes)) != len(self.classes)):
            problems.append(f"classes must name at least 2 distinct classes, got "
                            f"{self.classes!r}")
        if problems:
            raise ArgumentError("Practice: " + "; ".join(problems))


@dataclass(frozen=True)
class Speedrun:
    """Session 8's speedrun training, each trick a switch (see :mod:`evakit.speedrun`).

    A recipe sets them with ``speedrun=Speedrun(...)`` and ``task="speedrun"``; like
    :class:`Practice`, an unset one is absent from the recipe's config.

    Attributes:
        bias_lr_scale: BatchNorm biases train at this multiple of the LR, their weight decay
            divided by it (so the decay per step is the same as the other weights').
        lookahead: every 5 steps, pull the weights to their running average (an EMA whose
            memory grows as training ends) and continue from there.
        whiten_images: training images the whitening layer's filters are computed from.
        translate: pixels an image is shifted by at most (reflect-padded random crop).
        alternate_flip: mirror half the images in even epochs and the other half in odd ones,
            instead of mirroring each at random.
    """

    bias_lr_scale: float = 64.0
    lookahead: bool = True
    whiten_images: int = 5000
    translate: int = 2
    alternate_flip: bool = True


@dataclass(frozen=True)
class Recipe:
    """One training configuration (every hyperparameter named once)."""

    name: str
    session: str
    summary: str
    model: str
    model_kwargs: dict = field(default_factory=dict)
    dataset: str = "mnist"
    task: str = "classify"          # a name in evakit.tasks.TASKS
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"          # "sgd", "adam" or "adamw"
    lr: float = 0.01                # the (peak) learning rate
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    scheduler: str | None = None    # None, "step", "onecycle", "triangle" or "plateau"
    step_size: int = 5              # step: divide the LR by 10 every this many epochs
    pct_start: float = 0.3          # one-cycle, triangle: fraction of the run raising the LR
    lr_start: float | None = None   # one-cycle, triangle: first LR (None: lr / 25)
    lr_end: float | None = None     # one-cycle, triangle: last LR (None: lr_start / 10⁴)
    rotation: float = 0.0           # random rotation of training images, ± degrees
    shift: float = 0.0              # random shift, ± this fraction of the image
    scale: float = 0.0              # random zoom in [1 − scale, 1 + scale]
    crop_padding: int = 0           # pad by this much (reflect), then crop back at random
    flip: bool = False              # mirror half the images left–right
    cutout: int = 0                 # blank one square of this side, filled with the mean
    augment_p: float = 1.0          # probability of the affine and the cutout, per image
    pipeline: str = "batch"         # "batch" (evakit's tensor loader) or "albumentations"
    l1: float = 0.0                 # weight of the L1 penalty on all weights
    precision: str | None = "fp32"  # "fp32", "bf16", or None for the fastest correct one here
    steps: int | None = None        # batches per epoch where batches are sampled (text)
    practice: Practice | None = None  # session 12's practices (task "practice"), or none
    speedrun: Speedrun | None = None  # session 8's speedrun tricks (task "speedrun"), or none
    seed: int = 1
    fast: Fast = field(default_factory=Fast, compare=False)

    def build_model(self) -> nn.Module:
        """The recipe's model, freshly initialised."""
        return models.create(self.model, **self.model_kwargs)

    def build_model_config(self) -> dict:
        """The model's settings as built (its ``config`` as a dict, when it has one)."""
        config = getattr(self.build_model(), "config", None)
        return asdict(config) if config is not None else dict(self.model_kwargs)

    @property
    def input_size(self) -> tuple[int, ...]:
        """One input of the recipe's model: (C, H, W) or (T,)."""
        return models.input_size(self.model)

    def config(self) -> dict:
        """The recipe as plain JSON data (what a record stores; FAST sizes are not part of it).

        Tuples become lists, as they would on the way through a record's JSON, so a config
        compares equal to the one read back from a record.
        """
        config = asdict(self)
        config.pop("fast")
        for optional in ("practice", "speedrun"):   # absent, as in the records made before
            if getattr(self, optional) is None:
                config.pop(optional)
        return json.loads(json.dumps(config))

    def differences(self, other: Recipe) -> dict[str, list]:
        """Fields whose values differ from ``other``'s: name → [other's, this one's]."""
        mine, theirs = self.config(), other.config()
        return {f.name: [theirs.get(f.name), mine.get(f.name)] for f in fields(self)
                if (f.name in mine or f.name in theirs)
                and mine.get(f.name) != theirs.get(f.name)}


RECIPES: dict[str, Recipe] = {}


def _add(recipe: Recipe) -> None:
    RECIPES[recipe.name] = recipe


_add(Recipe("s01/rf-net", "1", "Session 1 assignment: 3×3 convs, max pooling, 1×1 mixing; "
            "RF covers the digit.", "s01/rf-net", epochs=10, lr=0.01, fast=Fast(epochs=10)))
for _k in (3, 5, 7, 11):
    _add(Recipe(f"s02/kernel-{_k}", "2", f"Session 2: first layer of {_k}×{_k} kernels, to look "
                "at what they learn.", "s02/first-kernel", {"kernel": _k}, epochs=5,
                batch_size=64, optimizer="adam", lr=2e-3, fast=Fast(epochs=5)))
_add(Recipe("s25/digit-sum", "2.5", "Session 2.5 assignment: an MNIST digit plus a random "
            "integer 0–9 (one-hot) → the digit and the sum.", "s25/digit-sum",
            task="digit-sum", epochs=10, optimizer="adam", lr=1e-3, fast=Fast(epochs=3)))
_add(Recipe("s03/assignment", "3", "Session 3 assignment: ≥ 99.4 % with < 20 000 parameters, "
            "< 20 epochs, BN + dropout + GAP + one FC.", "s03/assignment", epochs=19,
            lr=0.05, scheduler="onecycle", rotation=7.0, fast=Fast(epochs=3)))

# Session 4: ten code iterations, each changing one thing (the seed's drill-down).
_LIGHT = {"block1": (10, 10, 20), "transition": 10, "block2": (10, 20)}
_S04_CODES = [
    ("code01", "setup: a working network, far too big", "s04/setup", {}, {}),
    ("code02", "skeleton: the right shape, no padding, no biases", "s04/drill", {}, {}),
    ("code03", "lighter model: the same skeleton with 10–20 channels", "s04/drill", _LIGHT, {}),
    ("code04", "+ batch normalization", "s04/drill", {**_LIGHT, "bn": True}, {}),
    ("code05", "+ dropout (regularization)", "s04/drill",
     {**_LIGHT, "bn": True, "dropout": 0.1}, {}),
    ("code06", "+ global average pooling instead of the 7×7 conv", "s04/drill",
     {**_LIGHT, "bn": True, "dropout": 0.1, "head": "gap"}, {}),
    ("code07", "+ capacity: two padded 3×3 layers before GAP", "s04/drill",
     {**_LIGHT, "block2": (10, 16), "padded": (16, 16), "bn": True, "dropout": 0.1,
      "head": "gap"}, {}),
    ("code08", "max pool at RF 5, dropout on every layer, capacity after GAP", "s04/drill",
     {"block1": (8, 16), "transition": 8, "block2": (12, 16, 16), "padded": (16,),
      "bn": True, "dropout": 0.05, "head": "gap", "after_gap": (16,)}, {}),
    ("code09", "+ image augmentation: random rotation ±7°", "s04/drill",
     {"block1": (8, 16), "transition": 8, "block2": (12, 16, 16), "padded": (16,),
      "bn": True, "dropout": 0.05, "head": "gap", "after_gap": (16,)}, {"rotation": 7.0}),
    ("code10", "+ LR scheduler: StepLR, ÷10 every 5 epochs", "s04/drill",
     {"block1": (8, 16), "transition": 8, "block2": (12, 16, 16), "padded": (16,),
      "bn": True, "dropout": 0.05, "head": "gap", "after_gap": (16,)},
     {"rotation": 7.0, "scheduler": "step", "step_size": 5, "lr": 0.05}),
]
for _code, _what, _model, _kwargs, _train in _S04_CODES:
    _add(Recipe(f"s04/{_code}", "4", f"Session 4 {_code}: {_what}.", _model, _kwargs,
                **{"epochs": 15, "lr": 0.01, **_train}))

# Session 4 assignment: ≥ 99.4 % in each of the last 3 epochs, ≤ 15 epochs, < 8 000 params.
_STEP_NET = {"block1": (8, 12), "transition": 8, "block2": (10, 12, 14), "padded": (14,),
             "bn": True, "head": "gap"}
_add(Recipe("s04/step1", "4", "Session 4 step 1: the skeleton under budget with BN and GAP.",
            "s04/drill", _STEP_NET, epochs=15, lr=0.05))
_add(Recipe("s04/step2", "4", "Session 4 step 2: + dropout and ±7° rotation.", "s04/drill",
            {**_STEP_NET, "dropout": 0.05}, epochs=15, lr=0.05, rotation=7.0))
_STEP3_TRAIN = {"epochs": 15, "lr": 0.1, "scheduler": "onecycle", "rotation": 6.0,
                "fast": Fast(epochs=3)}
_add(Recipe("s04/step3", "4", "Session 4 step 3: one-cycle LR and a wider last block, "
            "< 8 000 parameters.", "s04/drill",
            {"block1": (8, 12), "transition": 8, "block2": (10, 12, 16), "padded": (14,),
             "bn": True, "head": "gap", "dropout": 0.02}, **_STEP3_TRAIN))
# The same training squeezed under 6 000 parameters: it reaches 99.4 %, but by a few hundredths,
# so whether it holds for three epochs depends on the seed (session 4 shows the three records).
_add(Recipe("s04/step3-lean", "4", "Session 4 step 3, lean: the same training with ≤ 6 000 "
            "parameters.", "s04/drill",
            {"block1": (8, 12), "transition": 8, "block2": (10, 12, 14), "padded": (10,),
             "bn": True, "head": "gap", "dropout": 0.02}, **_STEP3_TRAIN))

# Session 5: the same network with three normalizations, and batch norm with an L1 penalty.
for _norm, _what in (("bn", "batch norm"), ("gn", "group norm (4 groups)"),
                     ("ln", "layer norm")):
    _add(Recipe(f"s05/{_norm}", "5", f"Session 5: the assignment network with {_what}.",
                "s05/norm-net", {"norm": _norm}, epochs=20, lr=0.05, scheduler="onecycle",
                fast=Fast(epochs=4)))
_add(Recipe("s05/bn-l1", "5", "Session 5: batch norm plus an L1 penalty (λ = 1e-4).",
            "s05/norm-net", {"norm": "bn"}, epochs=20, lr=0.05, scheduler="onecycle", l1=1e-4,
            fast=Fast(epochs=4)))

# Sessions 6–8: CIFAR-10.
_add(Recipe("s06/cifar-net", "6", "Session 6 assignment: C1C2C3C40, no max pooling, dilated and "
            "depthwise-separable convs, < 200 k params; flip + affine + cutout 16.",
            "s06/cifar-net", dataset="cifar10", epochs=40, lr=0.05, weight_decay=5e-4,
            scheduler="onecycle", flip=True, shift=0.0625, scale=0.1, rotation=15.0, cutout=16,
            augment_p=0.5, pipeline="albumentations", precision=None,
            fast=Fast(epochs=2, limit=1000)))
for _depth in (18, 34):
    _add(Recipe(f"s07/resnet{_depth}", "7", f"Session 7 assignment: ResNet{_depth} (CIFAR "
                "variant), 20 epochs, random crop (pad 4) + cutout 16.", f"s07/resnet{_depth}",
                dataset="cifar10", epochs=20, lr=0.1, weight_decay=5e-4, scheduler="onecycle",
                crop_padding=4, cutout=16, precision=None,
                fast=Fast(epochs=2, limit=600, model_kwargs={"width": 16})))
# The one-cycle's ends were found by `evakit lr-find s08/custom-resnet --record` (book/records/
# s08/custom-resnet-lr-range.json): the loss starts to fall at 0.0015 and is lowest at 0.37
# before it turns up (two significant digits); the cycle ends where it began, no annihilation.
_add(Recipe("s08/custom-resnet", "8", "Session 8 assignment: the custom ResNet, 24 epochs, "
            "one-cycle 0.0015 → 0.37 (found by the range test) peaking at epoch 5, back to "
            "0.0015, batch 512, crop + flip + cutout 8.",
            "s08/custom-resnet", dataset="cifar10", epochs=24, batch_size=512, lr=0.37,
            lr_start=0.0015, lr_end=0.0015,
            nesterov=True, weight_decay=5e-4, scheduler="onecycle", pct_start=5 / 24,
            crop_padding=4, flip=True, cutout=8, precision=None,
            fast=Fast(epochs=2, limit=1000, model_kwargs={"width": 16})))

# Session 8's speedrun (evakit.speedrun, evakit.models.speedrun), after Page (2018) and Jordan
# (2024, airbench94). Their settings are for a loss summed over the batch of 1,024 and are
# "per 1,024 examples"; here the loss is the batch mean, so: lr = 11.5 × 1024 / (1024 × (1 +
# 1 / (1 − 0.85))) = 1.5, and a coupled weight decay of 0.0153 × 1024 / 7850.7 / 1.5 = 0.00133
# (a decay of 0.002 of each weight per step); the LR rises from 0.2× to its peak over 23 % of the
# steps and falls to 0.07× (triangle). Ten whole epochs where airbench stops at 9.9.
_SPEED_LR, _SPEED_MOMENTUM = 1.5, 0.85
_add(Recipe("s08/speedrun", "8", "Session 8's speedrun: a whitened, Dirac-initialised 3-block "
            "network (airbench94's shape), batch 1024, SGD-Nesterov, label smoothing 0.2, "
            "triangle LR, Lookahead, alternating flips, ±2 px shifts, mirror + shift TTA; 10 "
            "epochs, compiled.", "s08/speedrun-net", {"compiled": True}, dataset="cifar10",
            task="speedrun", epochs=10,
            batch_size=1024, lr=_SPEED_LR, momentum=_SPEED_MOMENTUM, nesterov=True,
            weight_decay=0.0153 * 1024 / (1024 * (1 + 1 / (1 - _SPEED_MOMENTUM))) / _SPEED_LR,
            label_smoothing=0.2, scheduler="triangle", pct_start=0.23,
            lr_start=0.2 * _SPEED_LR, lr_end=0.07 * _SPEED_LR, precision=None,
            speedrun=Speedrun(),
            fast=Fast(epochs=1, batch_size=256,
                      model_kwargs={"widths": (16, 32, 32), "compiled": False})))
# What each idea buys: the speedrun with one of them taken out (test-time augmentation needs
# no run of its own: every speedrun record also scores its network without it).
_SPEED_ABLATIONS = {
    "no-whitening": ("a trainable first convolution instead of the whitening layer",
                     {"model_kwargs": {"compiled": True, "whiten": False}}),
    "no-dirac": ("default (Kaiming) initialisation instead of Dirac",
                 {"model_kwargs": {"compiled": True, "dirac": False}}),
    "no-lookahead": ("no Lookahead weight averaging",
                     {"speedrun": Speedrun(lookahead=False)}),
    "random-flip": ("random flips instead of alternating ones",
                    {"speedrun": Speedrun(alternate_flip=False)}),
    "no-bias-scale": ("BatchNorm biases at the same LR as the weights",
                      {"speedrun": Speedrun(bias_lr_scale=1.0)}),
    "no-smoothing": ("no label smoothing", {"label_smoothing": 0.0}),
    "eager": ("no torch.compile (the same arithmetic, eagerly)", {"model_kwargs": {}}),
}
for _name, (_what, _change) in _SPEED_ABLATIONS.items():
    _add(replace(RECIPES["s08/speedrun"], name=f"s08/speedrun-{_name}",
                 summary=f"Session 8's speedrun with one idea taken out: {_what}.", **_change))


# Session 9: the spatial transformer (MNIST, distorted on the fly so there is something to
# undo) and the assignment, ULTIMUS (24 epochs, one-cycle peaking at epoch 5, Adam).
_add(Recipe("s09/stn", "9", "Session 9: a spatial transformer in front of a small classifier; "
            "MNIST rotated ±45°, shifted ±10 %, zoomed ±20 % on the fly.", "s09/stn",
            epochs=8, optimizer="adam", lr=2e-3, scheduler="onecycle", rotation=45.0,
            shift=0.1, scale=0.2, fast=Fast(epochs=2)))
_add(Recipe("s09/ultimus", "9", "Session 9 assignment: C → C → C → GAP → 4 × ULTIMUS → FC, "
            "24 epochs, one-cycle peaking at epoch 5, Adam; crop + flip.", "s09/ultimus",
            dataset="cifar10", epochs=24, batch_size=128, optimizer="adam", lr=0.01,
            scheduler="onecycle", pct_start=5 / 24, crop_padding=4, flip=True, precision=None,
            fast=Fast(epochs=2, limit=1000)))

# Session 10: the ViT assignment on CIFAR-10, sized to train in about an hour on one thread of
# this 2-core CPU in bf16 (its record says how long it took), and assignment A, ResNet18 on
# Tiny ImageNet, for a GPU with the data (none of it is here).
_add(Recipe("s10/vit", "10", "Session 10 assignment: a ViT (4×4 patches → 64 tokens + CLS, "
            "width 96, 6 blocks of 4 heads, MLP ×3) on CIFAR-10; AdamW, one-cycle, label "
            "smoothing 0.1, crop + flip.", "s10/vit", dataset="cifar10", epochs=25,
            batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05, label_smoothing=0.1,
            scheduler="onecycle", pct_start=0.2, crop_padding=4, flip=True, precision=None,
            fast=Fast(epochs=2, limit=1000, model_kwargs={"dim": 32, "heads": 2})))
_add(Recipe("s10/tiny-imagenet-resnet18", "10", "Session 10 assignment A: ResNet18 (CIFAR "
            "stem) on Tiny ImageNet — 200 classes at 64×64, the 110 000 labelled images split "
            "70/30 per class (seed 0) — 50 epochs, target ≥ 50 %.", "s07/resnet18",
            {"classes": 200}, dataset="tiny-imagenet", task="tiny-imagenet", epochs=50,
            batch_size=256, lr=0.2, nesterov=True, weight_decay=5e-4, label_smoothing=0.1,
            scheduler="onecycle", pct_start=0.2, crop_padding=8, flip=True, precision=None,
            fast=Fast(epochs=1, limit=500, model_kwargs={"width": 16})))

# Session 11. First, session 10's ViT trained again, one ingredient switched on at a time on
# 5-epoch runs (12–13 minutes each on one thread of this CPU in bf16): no warm-up means the
# one-cycle starts at its peak (lr_start = lr) and only anneals; every step keeps the one
# before. The last step is session 10's recipe; s11/vit trains it for 28 epochs.
_VIT = {"model": "s10/vit", "dataset": "cifar10", "batch_size": 128, "optimizer": "adamw",
        "lr": 1e-3, "scheduler": "onecycle", "pct_start": 0.2, "precision": None,
        "fast": Fast(epochs=1, limit=500, model_kwargs={"dim": 32, "heads": 2})}
_VIT_STEPS = [
    ("plain", "no augmentation, no warm-up, no weight decay, no label smoothing",
     {"lr_start": 1e-3}),
    ("aug", "+ random crop (padding 4) and horizontal flip",
     {"lr_start": 1e-3, "crop_padding": 4, "flip": True}),
    ("warmup", "+ warm-up: the LR rises from lr/25 over the first 20 % of the steps",
     {"crop_padding": 4, "flip": True}),
    ("wd", "+ weight decay 0.05 (AdamW's, decoupled from the gradient)",
     {"crop_padding": 4, "flip": True, "weight_decay": 0.05}),
    ("ls", "+ label smoothing 0.1 (session 10's recipe)",
     {"crop_padding": 4, "flip": True, "weight_decay": 0.05, "label_smoothing": 0.1}),
]
for _step, _what, _train in _VIT_STEPS:
    _add(Recipe(f"s11/vit-{_step}", "11", f"Session 11 ViT ablation, 5 epochs: {_what}.",
                **{**_VIT, "epochs": 5, **_train}))
_add(Recipe("s11/vit", "11", "Session 11: session 10's ViT with everything the ablation "
            "switched on (crop + flip, warm-up, weight decay 0.05, label smoothing 0.1), "
            "28 epochs.", **{**_VIT, "epochs": 28, **_VIT_STEPS[-1][2]}))

# Language models on Tiny Shakespeare (the last 10 % held out): the small CPU configuration
# of nanoGPT's character model (4 layers, 4 heads, width 128, context 64) trained longer than
# its 2 000 batches of 12, so that its held-out loss ends below the 1.88 nanoGPT reports for
# it. An epoch is `steps` random batches; 10 epochs of 250 batches of 64 windows is 10.2 M
# tokens.
_LM = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64}
_LM_TRAIN = {"batch_size": 64, "steps": 250, "epochs": 10, "optimizer": "adamw", "lr": 2e-3,
             "weight_decay": 0.1, "scheduler": "onecycle", "pct_start": 0.05,
             "precision": None,
             "fast": Fast(epochs=1, batch_size=8, model_kwargs={"n_layer": 1, "n_embd": 32})}
_add(Recipe("s11/gpt", "11", "Session 11: a character-level GPT (4 layers, 4 heads, width 128, "
            "context 64) trained from scratch on Tiny Shakespeare.", "s11/gpt",
            {**_LM, "vocab_size": 65}, dataset="shakespeare-char", task="next-token",
            **_LM_TRAIN))
_add(Recipe("s11/gpt-sparse", "11", "Session 11: the same GPT under the Sparse Transformer's "
            "strided mask (the last 8 positions and every 8th before them).", "s11/gpt",
            {**_LM, "vocab_size": 65, "attention": "strided", "stride": 8},
            dataset="shakespeare-char", task="next-token", **_LM_TRAIN))
_add(Recipe("s11/gpt-bpe", "11", "Session 11: the same GPT over a 512-token byte-level BPE "
            "vocabulary trained on the training text.", "s11/gpt",
            {**_LM, "vocab_size": 512}, dataset="shakespeare-bpe", task="next-token",
            **_LM_TRAIN))
_add(Recipe("s11/bert", "11", "Session 11: a BERT-style encoder of the same size, trained "
            "from scratch to recover masked characters (15 %, 80/10/10).", "s11/bert",
            {**_LM, "vocab_size": 66}, dataset="shakespeare-char", task="masked-token",
            **_LM_TRAIN))

# CLIP of our own: a small CNN and a small text transformer trained jointly on MNIST images
# paired with captions of their digit (evakit.clip), scored zero-shot on held-out templates.
_add(Recipe("s11/clip", "11", "Session 11: CLIP on MNIST — a small CNN and a 2-block text "
            "transformer, symmetric contrastive loss with a learned temperature; captions "
            "from 6 templates, 4 more held out for zero-shot testing.", "s11/clip",
            dataset="mnist", task="contrastive", epochs=6, batch_size=256, optimizer="adamw",
            lr=2e-3, weight_decay=0.01, scheduler="onecycle", pct_start=0.2, rotation=10.0,
            precision=None, fast=Fast(epochs=1, limit=1000)))

# Session 12: from a trained model to a trustworthy one, all on session 6's network (184 k
# parameters: a record keeps its weights, so the page evaluates the recorded models themselves).
# A CIFAR-10 run here holds 10 % of the training set out for validation (the same 5,000 images
# for every seed and recipe), SGD with Nesterov momentum, one-cycle, crop + flip, 20 epochs.
_S12 = {"model": "s06/cifar-net", "dataset": "cifar10", "task": "practice", "lr": 0.05,
        "nesterov": True, "weight_decay": 5e-4, "crop_padding": 4, "flip": True,
        "precision": None, "fast": Fast(epochs=2, limit=1000)}
_S12_CIFAR = {**_S12, "epochs": 20, "scheduler": "onecycle"}
for _name, _what, _practice in (
        ("plain", "the reference: crop + flip", Practice(val_split=0.1)),
        ("mixup", "+ mixup (α = 0.2) on every batch",
         Practice(val_split=0.1, mix="mixup", mix_alpha=0.2)),
        ("cutmix", "+ CutMix (α = 1) on every batch",
         Practice(val_split=0.1, mix="cutmix", mix_alpha=1.0)),
        ("randaugment", "+ RandAugment (N = 2, M = 9), image by image",
         Practice(val_split=0.1, policy="randaugment")),
        ("autoaugment", "+ AutoAugment's CIFAR-10 policy, image by image",
         Practice(val_split=0.1, policy="autoaugment"))):
    _add(Recipe(f"s12/{_name}", "12", f"Session 12: session 6's network, 20 epochs on 45,000 "
                f"images (5,000 held out for validation), {_what}.", **_S12_CIFAR,
                practice=_practice))
_add(Recipe("s12/swa", "12", "Session 12: s12/plain's data and network at a constant LR of "
            "0.05 for 15 epochs, then 0.01 (a two-epoch cosine); weights averaged after each of "
            "epochs 15–20 (SWA), batch-norm statistics recomputed (update_bn).",
            **{**_S12, "epochs": 20},
            practice=Practice(val_split=0.1, swa_start=15, swa_lr=0.01)))
# Class imbalance: CIFAR-10-LT (ratio 100: 5,000 airplanes … 50 trucks, 12,406 images), four
# losses; the test set stays balanced. The weights of the weighted losses are scaled so that a
# training image weighs 1 on average (evakit.practice.class_weights).
for _loss, _what in (("ce", "cross-entropy"), ("weighted-ce", "cross-entropy weighted by inverse "
                     "class frequency"), ("focal", "focal loss (γ = 2)"),
                     ("class-balanced", "class-balanced focal loss (β = 0.9999, γ = 1)")):
    _add(Recipe(f"s12/lt-{_loss}", "12", f"Session 12: CIFAR-10-LT (imbalance ratio 100, "
                f"12,406 images), {_what}, 30 epochs.",
                **{**_S12_CIFAR, "epochs": 30, "fast": Fast(epochs=1)},
                practice=Practice(imbalance=100, loss=_loss,
                                  focal_gamma=1.0 if _loss == "class-balanced" else 2.0)))
# Transfer: pretrain on the six animal classes, then learn the four vehicle classes from 10, 100
# or 1,000 labelled images each: from scratch, a linear probe on the frozen animal features, or
# fine-tuning everything with the backbone at a tenth of the head's learning rate.
_ANIMALS, _VEHICLES = (2, 3, 4, 5, 6, 7), (0, 1, 8, 9)
_add(Recipe("s12/animals", "12", "Session 12: session 6's network pretrained on CIFAR-10's six "
            "animal classes (30,000 images), 15 epochs.", **{**_S12_CIFAR, "epochs": 15},
            practice=Practice(classes=_ANIMALS)))
_TRANSFER = {"scratch": ("from scratch", {}),
             "probe": ("a linear probe on the frozen s12/animals features",
                       {"init_from": "s12/animals", "freeze": True}),
             "finetune": ("s12/animals fine-tuned, backbone LR a tenth of the head's",
                          {"init_from": "s12/animals", "backbone_lr": 0.1})}
for _n, _epochs, _batch in ((10, 100, 40), (100, 50, 64), (1000, 30, 128)):
    for _how, (_what, _start) in _TRANSFER.items():
        _add(Recipe(f"s12/vehicles-{_n}-{_how}", "12", f"Session 12: CIFAR-10's four vehicle "
                    f"classes from {_n:,} labelled images each, {_what}; {_epochs} epochs.",
                    **{**_S12_CIFAR, "epochs": _epochs, "batch_size": _batch,
                       "fast": Fast(epochs=2)},
                    practice=Practice(classes=_VEHICLES, per_class=_n, **_start)))
# Early stopping: session 4's code-4 network (BN, no dropout) on 1,000 MNIST images, 200 of them
# held out; Adam at a constant LR until the validation loss has not improved for 10 epochs.
_add(Recipe("s12/early-stop", "12", "Session 12: session 4's code-4 network on 1,000 MNIST "
            "images (100 per class), 200 of them held out for validation; Adam 1e-3, early "
            "stopping with patience 10, at most 100 epochs.", "s04/drill", {**_LIGHT, "bn": True},
            task="practice", epochs=100, batch_size=32, optimizer="adam", lr=1e-3,
            practice=Practice(per_class=100, val_split=0.2, patience=10),
            fast=Fast(epochs=3)))


def names() -> list[str]:
    """Every recipe name, sorted."""
    return sorted(RECIPES)


def get(name: str) -> Recipe:
    """The recipe called ``name``."""
    if name not in RECIPES:
        raise ArgumentError(f"unknown recipe {name!r}: expected one of {names()} "
                         f"(`evakit recipes` lists them)")
    return RECIPES[name]
