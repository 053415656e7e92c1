"""Named, complete training configurations.

A :class:`Recipe` names everything a run needs: model, data, optimizer, schedule, epochs and
seed. A notebook, the CLI (``evakit train NAME``) and a benchmark all call :func:`run` with the
same recipe, so the numbers they print come from the same code.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evakit import augment, data, models, train


@dataclass(frozen=True)
class Recipe:
    """One training configuration (every hyperparameter named once)."""

    name: str
    session: str
    summary: str
    model: str
    model_kwargs: dict = field(default_factory=dict)
    dataset: str = "mnist"
    task: str = "classify"          # "classify" or "digit-sum"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"          # "sgd" or "adam"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    scheduler: str | None = None    # None, "step", "onecycle" or "plateau"
    pct_start: float = 0.3          # one-cycle: fraction of the run spent raising the LR
    rotation: float = 0.0           # random rotation of training images, ± degrees
    shift: float = 0.0              # random shift, ± this fraction of the image
    scale: float = 0.0              # random zoom in [1 − scale, 1 + scale]
    crop_padding: int = 0           # pad by this much (reflect), then crop back at random
    flip: bool = False              # mirror half the images left–right
    cutout: int = 0                 # blank one square of this side, filled with the mean
    l1: float = 0.0                 # weight of the L1 penalty on all weights
    seed: int = 1

    def config(self) -> dict:
        """The recipe as a plain dict (what a record stores)."""
        return asdict(self)


RECIPES: dict[str, Recipe] = {}


def _add(recipe: Recipe) -> None:
    RECIPES[recipe.name] = recipe


_add(Recipe("s01/rf-net", "1", "Session 1 assignment: 3×3 convs, max pooling, 1×1 mixing; "
            "RF covers the digit.", "s01/rf-net", epochs=10, lr=0.01))
for _k in (3, 5, 7, 11):
    _add(Recipe(f"s02/kernel-{_k}", "2", f"Session 2: first layer of {_k}×{_k} kernels, to look "
                "at what they learn.", "s02/first-kernel", {"kernel": _k}, epochs=5,
                batch_size=64, optimizer="adam", lr=2e-3))
_add(Recipe("s25/digit-sum", "2.5", "Session 2.5 assignment: an MNIST digit plus a random "
            "integer 0–9 (one-hot) → the digit and the sum.", "s25/digit-sum",
            task="digit-sum", epochs=10, optimizer="adam", lr=1e-3))
_add(Recipe("s03/assignment", "3", "Session 3 assignment: ≥ 99.4 % with < 20 000 parameters, "
            "< 20 epochs, BN + dropout + GAP + one FC.", "s03/assignment", epochs=19,
            lr=0.05, scheduler="onecycle", rotation=7.0))

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
     {"rotation": 7.0, "scheduler": "step", "lr": 0.05}),
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
_STEP3_TRAIN = {"epochs": 15, "lr": 0.1, "scheduler": "onecycle", "rotation": 6.0}
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
                "s05/norm-net", {"norm": _norm}, epochs=20, lr=0.05, scheduler="onecycle"))
_add(Recipe("s05/bn-l1", "5", "Session 5: batch norm plus an L1 penalty (λ = 1e-4).",
            "s05/norm-net", {"norm": "bn"}, epochs=20, lr=0.05, scheduler="onecycle", l1=1e-4))

# Sessions 6–8: CIFAR-10.
_add(Recipe("s06/cifar-net", "6", "Session 6 assignment: C1C2C3C40, no max pooling, dilated and "
            "depthwise-separable convs, < 200 k params; flip + affine + cutout 16.",
            "s06/cifar-net", dataset="cifar10", epochs=40, lr=0.05, weight_decay=5e-4,
            scheduler="onecycle", flip=True, shift=0.0625, scale=0.1, rotation=15.0, cutout=16))
for _depth in (18, 34):
    _add(Recipe(f"s07/resnet{_depth}", "7", f"Session 7 assignment: ResNet{_depth} (CIFAR "
                "variant), 20 epochs, random crop (pad 4) + cutout 16.", f"s07/resnet{_depth}",
                dataset="cifar10", epochs=20, lr=0.1, weight_decay=5e-4, scheduler="onecycle",
                crop_padding=4, cutout=16))
_add(Recipe("s08/custom-resnet", "8", "Session 8 assignment: the custom ResNet, 24 epochs, "
            "one-cycle peaking at epoch 5, batch 512, crop + flip + cutout 8.",
            "s08/custom-resnet", dataset="cifar10", epochs=24, batch_size=512, lr=0.4,
            nesterov=True, weight_decay=5e-4, scheduler="onecycle", pct_start=5 / 24,
            crop_padding=4, flip=True, cutout=8))


def names() -> list[str]:
    """Every recipe name, sorted."""
    return sorted(RECIPES)


def get(name: str) -> Recipe:
    """The recipe called ``name``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: expected one of {names()} "
                         f"(`evakit recipes` lists them)")
    return RECIPES[name]


def digit_sum_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the digit (first 10 logits) plus that of the sum (last 19)."""
    return F.cross_entropy(out[:, :10], y[:, 0]) + F.cross_entropy(out[:, 10:], y[:, 1])


def digit_sum_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct when both the digit and the sum are right."""
    return (out[:, :10].argmax(1) == y[:, 0]) & (out[:, 10:].argmax(1) == y[:, 1])


def with_l1(loss_fn, model: nn.Module, weight: float):
    """``loss_fn`` plus ``weight`` × the sum of absolute values of the model's weights.

    Only weights of convolutions and linear layers are penalised, not norm scales or biases.
    In evaluation (no grad) the penalty is left out, so test losses stay comparable.
    """
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]

    def penalised(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(out, y)
        if torch.is_grad_enabled():
            loss = loss + weight * sum(w.abs().sum() for w in weights)
        return loss
    return penalised


@dataclass
class Run:
    """What :func:`run` returns: the trained model and how it got there."""

    recipe: Recipe
    model: nn.Module
    history: train.History
    params: int
    device: str
    wall_seconds: float
    fast: bool
    data_sources: dict[str, str]
    metrics: dict[str, float]
    limit: int | None = None


def build_model(recipe: Recipe) -> nn.Module:
    """The recipe's model, freshly initialised."""
    return models.create(recipe.model, **recipe.model_kwargs)


def _optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr,
                                weight_decay=recipe.weight_decay)
    raise ValueError(f"recipe {recipe.name}: unknown optimizer {recipe.optimizer!r}")


def _scheduler(recipe: Recipe, optimizer, epochs: int, steps_per_epoch: int):
    if recipe.scheduler is None:
        return None
    if recipe.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(epochs // 3, 1),
                                               gamma=0.1)
    if recipe.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, epochs=epochs,
                                                   steps_per_epoch=steps_per_epoch,
                                                   pct_start=recipe.pct_start)
    if recipe.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=2)
    raise ValueError(f"recipe {recipe.name}: unknown scheduler {recipe.scheduler!r}")


def train_augment(recipe: Recipe, mean: tuple[float, ...]) -> augment.Augment | None:
    """The recipe's training augmentation as one batch function (None when it has none).

    Order: crop, flip, affine (or plain rotation), cutout filled with the dataset ``mean``.
    """
    steps = []
    if recipe.crop_padding:
        steps.append(augment.random_crop(recipe.crop_padding))
    if recipe.flip:
        steps.append(augment.random_flip())
    if recipe.shift or recipe.scale:
        steps.append(augment.random_affine(degrees=recipe.rotation, shift=recipe.shift,
                                           scale=recipe.scale, fill=mean))
    elif recipe.rotation:
        steps.append(augment.random_rotation(recipe.rotation))
    if recipe.cutout:
        steps.append(augment.cutout(recipe.cutout, fill=mean))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else augment.compose(*steps)


def loaders(recipe: Recipe, *, fast: bool | None = None, device: str | torch.device = "cpu",
            limit: int | None = None):
    """Train and test batches for the recipe (FAST slices when ``fast``; only the first
    ``limit`` training images when given)."""
    train_set = data.load(recipe.dataset, "train", fast=fast)
    if limit is not None:
        train_set = train_set.subset(limit)
    test_set = data.load(recipe.dataset, "test", fast=fast)
    train_loader = data.Loader(train_set, recipe.batch_size, shuffle=True, device=device,
                               seed=recipe.seed, augment=train_augment(recipe, train_set.mean))
    test_loader = data.Loader(test_set, 1000, device=device)
    if recipe.task == "digit-sum":
        return (data.DigitSumLoader(train_loader, seed=recipe.seed),
                data.DigitSumLoader(test_loader, seed=recipe.seed + 1, fixed=True))
    return train_loader, test_loader


def run(recipe: Recipe | str, *, epochs: int | None = None, seed: int | None = None,
        fast: bool | None = None,
        device: str | torch.device | None = None, checkpoint: str | Path | None = None,
        resume: bool = False, verbose: bool = True, limit: int | None = None) -> Run:
    """Train a recipe from scratch (or resume it) and evaluate it.

    Args:
        recipe: a :class:`Recipe` or its name.
        epochs: override the recipe's epoch count (a shorter run says so in its record).
        seed: override the recipe's seed (to check that a result holds on other seeds).
        fast: FAST slices of the data; defaults to ``EVAKIT_FAST``.
        device: training device; the fastest available by default.
        checkpoint: file checkpointed every epoch.
        resume: continue from ``checkpoint``.
        verbose: print one line per epoch.
        limit: train on the first ``limit`` training images only — a smoke run for a notebook
            on a CPU, which a record refuses.
    """
    recipe = get(recipe) if isinstance(recipe, str) else recipe
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        recipe = replace(recipe, epochs=epochs)
    if seed is not None:
        recipe = replace(recipe, seed=seed)
    fast = data.is_fast() if fast is None else fast
    device = torch.device(device) if device is not None else train.pick_device()
    train.seed_everything(recipe.seed)
    train_batches, test_batches = loaders(recipe, fast=fast, device=device, limit=limit)
    model = build_model(recipe).to(device)
    optimizer = _optimizer(recipe, model)
    scheduler = _scheduler(recipe, optimizer, recipe.epochs, len(train_batches))
    digit_sum = recipe.task == "digit-sum"
    loss_fn = digit_sum_loss if digit_sum else F.cross_entropy
    if recipe.l1:
        loss_fn = with_l1(loss_fn, model, recipe.l1)
    t0 = time.perf_counter()
    history = train.fit(model, train_batches, test_batches, recipe.epochs, optimizer, scheduler,
                        loss_fn=loss_fn,
                        correct_fn=digit_sum_correct if digit_sum else train.top1,
                        checkpoint=checkpoint, resume=resume, verbose=verbose)
    wall = time.perf_counter() - t0
    metrics = {"test_acc": history.test_acc[-1]}
    if digit_sum:
        metrics.update(digit_sum_accuracies(model, test_batches))
    inner = [getattr(b, "loader", b) for b in (train_batches, test_batches)]
    return Run(recipe, model, history, models.count_parameters(model), str(device), wall, fast,
               {"train": inner[0].data.source, "test": inner[1].data.source}, metrics, limit)


def digit_sum_accuracies(model: nn.Module, batches) -> dict[str, float]:
    """Test accuracy (%) of the digit head and of the sum head separately."""
    heads = {"digit_acc": lambda out, y: out[:, :10].argmax(1) == y[:, 0],
             "sum_acc": lambda out, y: out[:, 10:].argmax(1) == y[:, 1]}
    return {name: train.evaluate(model, batches, digit_sum_loss, correct_fn=correct)[1]
            for name, correct in heads.items()}
