"""What a recipe trains its model to do: a task owns its data, its loss and its "correct".

A :class:`Task` turns a recipe and in-memory data into training and test batches, scores the
model's outputs (loss, and which outputs count as correct) and may report extra test metrics.
The runner asks the recipe's task for all of it, so adding a kind of training (a new task) is
one class here, not a branch in the runner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from evakit import augment, data, train
from evakit.errors import ArgumentError
from evakit.recipes import Recipe


class Task:
    """Image classification: cross-entropy on the logits, top-1 correct.

    Subclasses override what differs (their batches, loss, correct count or metrics).
    """

    name: ClassVar[str] = "classify"

    def load(self, recipe: Recipe, fast: bool) -> tuple[data.ImageSet, data.ImageSet]:
        """The recipe's real train and test sets (FAST slices when ``fast``)."""
        return (data.load(recipe.dataset, "train", fast=fast),
                data.load(recipe.dataset, "test", fast=fast))

    def batches(self, recipe: Recipe, train_set: data.ImageSet, test_set: data.ImageSet,
                device: torch.device) -> tuple[Iterable, Iterable]:
        """Training batches (shuffled, augmented as the recipe says) and test batches."""
        if recipe.pipeline == "albumentations":
            train_batches = augment.albumentations_loader(recipe, train_set, device)
        else:
            train_batches = data.Loader(train_set, recipe.batch_size, shuffle=True,
                                        device=device, seed=recipe.seed,
                                        augment=augment.for_recipe(recipe, train_set.mean))
        return train_batches, data.Loader(test_set, 1000, device=device)

    def loss(self, recipe: Recipe):
        """The training loss ``loss(output, target)`` (label smoothing as the recipe says)."""
        if recipe.label_smoothing:
            smoothing = recipe.label_smoothing
            return lambda out, y: F.cross_entropy(out, y, label_smoothing=smoothing)
        return F.cross_entropy

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Which outputs count as correct (one boolean per scored example)."""
        return train.top1(out, y)

    def metrics(self, model: nn.Module, test_batches: Iterable,
                precision: train.Precision) -> dict[str, float]:
        """Test metrics beyond the accuracy (none for plain classification)."""
        return {}


def digit_sum_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the digit (first 10 logits) plus that of the sum (last 19)."""
    return F.cross_entropy(out[:, :10], y[:, 0]) + F.cross_entropy(out[:, 10:], y[:, 1])


def _digit_right(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out[:, :10].argmax(1) == y[:, 0]


def _sum_right(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out[:, 10:].argmax(1) == y[:, 1]


class DigitSum(Task):
    """Session 2.5: an MNIST digit plus a random integer 0–9 → the digit and the sum.

    Batches are ``((images, numbers), targets)`` from :class:`evakit.data.DigitSumLoader`; an
    output is correct when both the digit and the sum are right.
    """

    name: ClassVar[str] = "digit-sum"

    def batches(self, recipe: Recipe, train_set: data.ImageSet, test_set: data.ImageSet,
                device: torch.device) -> tuple[Iterable, Iterable]:
        images, test_images = super().batches(recipe, train_set, test_set, device)
        return (data.DigitSumLoader(images, seed=recipe.seed),
                data.DigitSumLoader(test_images, seed=recipe.seed + 1, fixed=True))

    def loss(self, recipe: Recipe):
        return digit_sum_loss

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _digit_right(out, y) & _sum_right(out, y)

    def metrics(self, model: nn.Module, test_batches: Iterable,
                precision: train.Precision) -> dict[str, float]:
        """Test accuracy (%) of the digit head and of the sum head separately."""
        return {name: train.evaluate(model, test_batches, digit_sum_loss, correct_fn=right,
                                     precision=precision)[1]
                for name, right in (("digit_acc", _digit_right), ("sum_acc", _sum_right))}


TASKS: dict[str, Task] = {task.name: task for task in (Task(), DigitSum())}


def get(name: str) -> Task:
    """The task called ``name``."""
    if name not in TASKS:
        raise ArgumentError(f"unknown task {name!r}: expected one of {sorted(TASKS)}")
    return TASKS[name]
