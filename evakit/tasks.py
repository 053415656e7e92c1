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

    # The runner's other hooks. Session 12's task (evakit.practice.PracticeTask) overrides them;
    # these defaults are what every other recipe trains with.

    def select(self, recipe: Recipe, train_set, test_set) -> tuple:
        """The images trained on, the validation set held out of them (None), the test set."""
        for own_task in ("practice", "speedrun"):      # settings only their own task reads
            if getattr(recipe, own_task) is not None and self.name != own_task:
                raise ArgumentError(f"recipe {recipe.name} sets {own_task}=..., which the task "
                                    f"{self.name!r} ignores: give it task={own_task!r}")
        return train_set, None, test_set

    def build_model(self, recipe: Recipe) -> nn.Module:
        """The network to train, freshly initialised."""
        return recipe.build_model()

    def param_groups(self, recipe: Recipe, model: nn.Module) -> list[dict]:
        """The optimizer's parameter groups (a group with its own "lr" trains at that)."""
        return [{"params": list(model.parameters())}]

    def wrap_optimizer(self, recipe: Recipe, model: nn.Module, optimizer: torch.optim.Optimizer,
                       steps_per_epoch: int) -> torch.optim.Optimizer:
        """The optimizer the run steps (a wrapper such as Lookahead, or ``optimizer`` itself)."""
        return optimizer

    def train_loss(self, recipe: Recipe, train_set):
        """The loss trained on, given the training set (its class counts, for a weighted loss)."""
        return self.loss(recipe)

    def watch(self, recipe: Recipe, optimizer: torch.optim.Optimizer, train_batches: Iterable,
              val_set, loss_fn, precision: train.Precision):
        """What runs after every epoch, or None.

        A watch is called as ``watch(epoch, history, model)`` by :func:`evakit.train.fit` (True
        stops training), and ``watch.finish(model)`` returns the model to keep and extra
        metrics (percentages) once training ends.
        """
        return None


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


EVAL_BATCHES = 50


class NextToken(Task):
    """Language modelling on Tiny Shakespeare: predict token t + 1 from tokens ≤ t.

    The recipe's ``dataset`` names the tokenization (``"shakespeare-char"`` or
    ``"shakespeare-bpe"``, its vocabulary the model's ``vocab_size``); an epoch is
    ``recipe.steps`` batches of random windows of the model's ``block_size``; the test set is
    the held-out last 10 % of the text, scored on a fixed draw of 50 batches. Accuracy counts
    tokens predicted exactly.
    """

    name: ClassVar[str] = "next-token"
    masked: ClassVar[bool] = False

    def load(self, recipe: Recipe, fast: bool):
        from evakit import text

        vocab = recipe.model_kwargs.get("vocab_size")
        sets = text.shakespeare_tokens(recipe.dataset, vocab_size=vocab, mask=self.masked,
                                       fast=fast)
        size = sets[0].tokenizer.vocab_size
        if vocab is not None and vocab != size:
            raise ArgumentError(f"recipe {recipe.name}: the model's vocab_size is {vocab} but "
                                f"the {recipe.dataset} tokenizer has {size} tokens")
        return sets

    def _masking(self, tokens):
        return None

    def batches(self, recipe: Recipe, train_set, test_set, device: torch.device):
        from evakit import text

        if recipe.steps is None:
            raise ArgumentError(f"recipe {recipe.name} samples its batches, so it needs steps "
                                "(batches per epoch)")
        block = recipe.build_model_config()["block_size"]
        masking = self._masking(train_set)
        train_batches = text.TokenLoader(train_set.tokens, block, recipe.batch_size,
                                         recipe.steps, seed=recipe.seed, device=device,
                                         masking=masking)
        held_out = text.TokenLoader(test_set.tokens, block, recipe.batch_size, EVAL_BATCHES,
                                    seed=recipe.seed + 1, device=device, masking=masking)
        return train_batches, list(held_out)       # the same test batches every epoch

    def loss(self, recipe: Recipe):
        smoothing = recipe.label_smoothing

        def token_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(out.flatten(0, 1), y.flatten(), ignore_index=-100,
                                   label_smoothing=smoothing)
        return token_loss

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scored = y != -100
        return out.argmax(-1)[scored] == y[scored]


class MaskedTokens(NextToken):
    """BERT's task: recover the 15 % of tokens chosen for masking (80/10/10 rule).

    Accuracy counts the chosen tokens recovered; the extra metric is the unigram baseline —
    always guessing the token most frequent among the masked test tokens (which flatters the
    baseline a little) — on the same test batches.
    """

    name: ClassVar[str] = "masked-token"
    masked: ClassVar[bool] = True

    def _masking(self, tokens):
        from evakit import text

        tokenizer = tokens.tokenizer
        return text.Masking(tokenizer.token_id(text.MASK), tokenizer.vocab_size)

    def metrics(self, model: nn.Module, test_batches: Iterable,
                precision: train.Precision) -> dict[str, float]:
        targets = torch.cat([y[y != -100].cpu() for _, y in test_batches])
        commonest = int(torch.bincount(targets).argmax())
        return {"unigram_baseline_acc": 100.0 * float((targets == commonest).float().mean())}


for _task in (NextToken(), MaskedTokens()):
    TASKS[_task.name] = _task


class TinyImageNet(Task):
    """Session 10's assignment A: Tiny ImageNet's 110 000 labelled images, split 70/30 per class.

    The train and test sets are the two sides of :func:`evakit.tiny_imagenet.split_pooled`
    (seed 0, whatever the training seed), read once from the cache, an unpacked folder or the
    official archive; FAST keeps the first 2 000 / 1 000 images of each side.
    """

    name: ClassVar[str] = "tiny-imagenet"

    def load(self, recipe: Recipe, fast: bool) -> tuple[data.ImageSet, data.ImageSet]:
        from evakit import tiny_imagenet

        train_set, test_set = tiny_imagenet.split_pooled(tiny_imagenet.load_pooled())
        if fast:
            return (train_set.subset(data.FAST_SIZES["train"]),
                    test_set.subset(data.FAST_SIZES["test"]))
        return train_set, test_set


TASKS[TinyImageNet.name] = TinyImageNet()

# Session 12's task — classification with a validation split, class subsets and transfer,
# imbalance losses, mixing and policy augmentation, SWA — adds itself to TASKS on import
# (evakit.practice builds on this module, so it is imported last).
# Session 11's contrastive task (CLIP) likewise lives with its captions and loss in evakit.clip,
# and session 8's speedrun task with its Lookahead in evakit.speedrun.
from evakit import clip as _clip  # noqa: E402, F401
from evakit import practice, speedrun  # noqa: E402, F401
