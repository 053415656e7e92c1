"""Run a recipe: build its model, optimizer, schedule and batches, train, and return the run.

:func:`run` is what the CLI, a notebook and a benchmark call. The data is real by default
(:meth:`evakit.tasks.Task.load`), or handed in as tensors (``train_set=``/``test_set=``) — a
test runs a whole recipe on a few synthetic images in seconds that way. In FAST mode the
recipe's :class:`evakit.recipes.Fast` sizes apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from evakit import data, models, recipes, tasks, train
from evakit.errors import ArgumentError
from evakit.recipes import Recipe


@dataclass
class Run:
    """What :func:`run` returns: the trained model and how it got there.

    Attributes:
        recipe: the recipe as run (with any overrides).
        base: the registered recipe of that name (None for an unregistered one).
        model: the trained network.
        history: per-epoch metrics.
        params: trainable parameters.
        device: where it trained.
        precision: ``"fp32"`` or ``"bf16"``.
        wall_seconds: training time of this process (a resumed run adds the earlier epochs').
        fast: whether it was a FAST run.
        data: what it trained and was tested on.
        metrics: final test metrics.
        test_batches: the test batches (for predictions on the page).
        test_set: the test images.
        limit: trained on the first ``limit`` images only (a smoke run, never a record).
        resumed_from: epochs already done in the checkpoint it resumed from (0 if none).
    """

    recipe: Recipe
    base: Recipe | None
    model: nn.Module
    history: train.History
    params: int
    device: str
    precision: str
    wall_seconds: float
    fast: bool
    data: dict[str, data.DataIdentity]
    metrics: dict[str, float]
    test_batches: object = None
    test_set: data.ImageSet | None = None
    limit: int | None = None
    resumed_from: int = 0

    @property
    def label(self) -> str:
        """"full run", or what the FAST run was, for a notebook's output."""
        if not self.fast and self.limit is None:
            return "full run"
        images = self.data["train"].size
        return self.recipe.fast.describe(images) if self.fast else \
            f"smoke run on the first {images:,} training images (not a result)"

    def result_line(self) -> str:
        """One line for a notebook: what ran, its final test accuracy, epochs, time, where."""
        return (f"{self.label}: test accuracy {self.history.test_acc[-1]:.2f} % after "
                f"{len(self.history)} epochs, {self.wall_seconds:.0f} s on {self.device} "
                f"({self.precision})")


def _optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    # params: a model's parameters, or parameter groups (a group's own "lr" overrides lr).
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ArgumentError(f"recipe {recipe.name}: unknown optimizer {recipe.optimizer!r} "
                        "(expected 'sgd', 'adam' or 'adamw')")


def lr_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer,
                 steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The recipe's learning-rate schedule on ``optimizer`` (None: a constant LR); one-cycle and
    triangle step once per batch, the others once per epoch (see :func:`evakit.train.fit`)."""
    if recipe.scheduler is None:
        return None
    if recipe.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.step_size, gamma=0.1)
    if recipe.scheduler in ("onecycle", "triangle"):
        start = recipe.lr_start or recipe.lr / 25
        end = recipe.lr_end or start / 1e4
        # A triangle is the one-cycle in straight lines (Page 2018) with the recipe's momentum
        # throughout. Each parameter group peaks at its own LR (fine-tuning's lower backbone
        # LR, the speedrun's faster BN biases); with one group this is the recipe's lr.
        straight = ({"anneal_strategy": "linear", "cycle_momentum": False}
                    if recipe.scheduler == "triangle" else {})
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
            epochs=recipe.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=recipe.pct_start, div_factor=recipe.lr / start,
            final_div_factor=start / end, **straight)
    if recipe.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=2)
    raise ArgumentError(f"recipe {recipe.name}: unknown scheduler {recipe.scheduler!r} "
                        "(expected None, 'step', 'onecycle', 'triangle' or 'plateau')")


def with_l1(loss_fn: train.LossFn, model: nn.Module, weight: float) -> train.LossFn:
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


def for_fast(recipe: Recipe) -> Recipe:
    """The recipe at its FAST sizes (epochs, batch size, model arguments)."""
    fast = recipe.fast
    return replace(recipe, epochs=fast.epochs, batch_size=fast.batch_size or recipe.batch_size,
                   model_kwargs={**recipe.model_kwargs, **fast.model_kwargs})


def resolve(recipe: Recipe | str, *, epochs: int | None = None, seed: int | None = None,
            fast: bool = False) -> Recipe:
    """The recipe a run will use: looked up by name, FAST sizes applied, overrides applied."""
    recipe = recipes.get(recipe) if isinstance(recipe, str) else recipe
    if fast:
        recipe = for_fast(recipe)
    if epochs is not None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ArgumentError(f"epochs must be a positive integer, got {epochs!r}")
        recipe = replace(recipe, epochs=epochs)
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ArgumentError(f"seed must be a non-negative integer, got {seed!r}")
        recipe = replace(recipe, seed=seed)
    return recipe


def pick_precision(recipe: Recipe, device: torch.device, requested: str | None) -> str:
    """The precision of a run: the one asked for, else the recipe's, else the fastest here."""
    name = requested or recipe.precision or train.default_precision(device)
    if name == "bf16" and not train.bf16_supported(device):
        raise ArgumentError(f"precision bf16 was asked for, but {device} has no native "
                            "bfloat16: use --precision fp32")
    return train.Precision(name).name


def parse_device(device: str | torch.device | None) -> torch.device:
    """The training device: the one named (checked to exist here), else the fastest here."""
    if device is None:
        return train.pick_device()
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ArgumentError(f"unknown device {device!r}: expected cpu, cuda or mps") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None
                 and torch.backends.mps.is_available()}
    if not available.get(parsed.type, False):
        here = [name for name, ok in available.items() if ok]
        raise ArgumentError(f"device {device!r} is not available here: expected one of {here}")
    return parsed


def run(recipe: Recipe | str, *, epochs: int | None = None, seed: int | None = None,
        fast: bool | None = None, device: str | torch.device | None = None,
        precision: str | None = None, checkpoint: str | Path | None = None,
        resume: bool = False, verbose: bool = True, limit: int | None = None,
        train_set: data.ImageSet | None = None, test_set: data.ImageSet | None = None,
        stop_after: int | None = None) -> Run:
    """Train a recipe from scratch (or resume it) and evaluate it.

    Args:
        recipe: a :class:`Recipe` or its name.
        epochs: override the recipe's epoch count (a shorter run says so in its record).
        seed: override the recipe's seed (to check that a result holds on other seeds).
        fast: FAST sizes (data slices and the recipe's :class:`Fast`); default ``EVAKIT_FAST``.
        device: training device; the fastest available by default.
        precision: ``"fp32"`` or ``"bf16"``; default the recipe's, else the fastest here.
        checkpoint: file checkpointed every epoch.
        resume: continue from ``checkpoint``.
        verbose: print one line per epoch.
        limit: train on the first ``limit`` training images only (a smoke run, never a
            record); in FAST mode the recipe's ``fast.limit`` applies by default.
        train_set, test_set: in-memory data instead of the recipe's real dataset.
        stop_after: stop after this epoch, as a killed run would (tests).
    """
    fast = data.is_fast() if fast is None else fast
    base = recipes.RECIPES.get(recipe if isinstance(recipe, str) else recipe.name)
    recipe = resolve(recipe, epochs=epochs, seed=seed, fast=fast)
    limit = recipe.fast.limit if fast and limit is None else limit
    device = parse_device(device)
    precision = train.Precision(pick_precision(recipe, device, precision))
    task = tasks.get(recipe.task)
    train.seed_everything(recipe.seed)
    if train_set is None or test_set is None:
        train_set, test_set = task.load(recipe, fast)
    if limit is not None:
        train_set = train_set.subset(limit)
    train_set, val_set, test_set = task.select(recipe, train_set, test_set)
    train_batches, test_batches = task.batches(recipe, train_set, test_set, device)
    model = task.build_model(recipe).to(device)
    optimizer = task.wrap_optimizer(recipe, model, _optimizer(recipe,
                                    task.param_groups(recipe, model)), len(train_batches))
    scheduler = lr_scheduler(recipe, optimizer, len(train_batches))
    loss_fn = task.train_loss(recipe, train_set)
    if recipe.l1:
        loss_fn = with_l1(loss_fn, model, recipe.l1)
    watch = task.watch(recipe, optimizer, train_batches, val_set, loss_fn, precision)
    if watch is not None and checkpoint is not None:
        raise ArgumentError(f"recipe {recipe.name} keeps state between epochs outside the "
                            "model (a validation watch, early stopping or SWA) that a "
                            "checkpoint does not hold: run it without --checkpoint")
    resumed_from = _epochs_in(checkpoint) if resume else 0
    t0 = time.perf_counter()
    history = train.fit(model, train_batches, test_batches, recipe.epochs, optimizer, scheduler,
                        loss_fn=loss_fn, correct_fn=task.correct, precision=precision,
                        checkpoint=checkpoint, resume=resume, verbose=verbose,
                        stop_after=stop_after, on_epoch=watch,
                        identity={"recipe": recipe.name, "config": recipe.config()})
    test_acc, extra = history.test_acc[-1], {}
    if watch is not None:           # the model kept may not be the last epoch's (SWA, early stop)
        model, extra = watch.finish(model)
        test_acc = train.evaluate(model, test_batches, loss_fn, device, task.correct,
                                  precision)[1]
    wall = time.perf_counter() - t0 + sum(history.seconds[:resumed_from])
    metrics = {"test_acc": test_acc, **extra, **task.metrics(model, test_batches, precision)}
    identities = {"train": train_set.identity(), "test": test_set.identity()}
    if val_set is not None:
        identities["val"] = val_set.identity()
    return Run(recipe, base, model, history, models.count_parameters(model), str(device),
               precision.name, wall, fast, identities, metrics, test_batches, test_set, limit,
               resumed_from)


def _epochs_in(checkpoint: str | Path | None) -> int:
    if checkpoint is None or not Path(checkpoint).is_file():
        return 0
    return int(train.read_checkpoint(checkpoint)["epoch"])


@dataclass
class LRFound:
    """An LR range test on a recipe's model and data: the sweep and where it ran."""

    recipe: str
    result: train.LRRangeResult
    device: str
    precision: str
    data: data.DataIdentity
    batch_size: int


def lr_find(recipe: Recipe | str, *, iterations: int = 200, start_lr: float = 1e-4,
            end_lr: float = 10.0, precision: str | None = None,
            device: str | torch.device | None = None, fast: bool | None = None) -> LRFound:
    """Leslie Smith's LR range test on the recipe's fresh model, optimizer and training batches.

    The sweep starts from the recipe's seed; the model is discarded afterwards.
    """
    fast = data.is_fast() if fast is None else fast
    recipe = resolve(recipe, fast=fast)
    device = parse_device(device)
    chosen = train.Precision(pick_precision(recipe, device, precision))
    task = tasks.get(recipe.task)
    train.seed_everything(recipe.seed)
    train_set, test_set = task.load(recipe, fast)
    if fast and recipe.fast.limit is not None:
        train_set = train_set.subset(recipe.fast.limit)
    train_set, _, test_set = task.select(recipe, train_set, test_set)
    batches, _ = task.batches(recipe, train_set, test_set, device)
    model = chosen.prepare(task.build_model(recipe).to(device))
    optimizer = _optimizer(replace(recipe, lr=start_lr), task.param_groups(recipe, model))
    result = train.lr_range_test(model, batches, optimizer, start_lr=start_lr, end_lr=end_lr,
                                 num_iter=iterations, loss_fn=task.train_loss(recipe, train_set),
                                 precision=chosen)
    return LRFound(recipe.name, result, str(device), chosen.name, train_set.identity(),
                   recipe.batch_size)
