"""Session 8's speedrun: what makes CIFAR-10 training fast, one idea at a time.

The ideas come from Page's "How to Train Your ResNet" (2018), tysam-code's hlb-CIFAR10 and
Jordan's airbench (2024); the code is this course's. The network is
:class:`evakit.models.speedrun.SpeedrunNet`; this module holds what its training adds to an
ordinary recipe:

- :class:`Lookahead` — every few steps the weights move to an exponential average of
  themselves, and the network continues from there (the average's weight grows as training
  ends), so the last epochs average many nearby points instead of stopping at one;
- :class:`SpeedrunTask`, the task: its batches mirror every image in alternate epochs and shift
  it by up to two pixels; its model is initialised from the data (the whitening layer); BatchNorm
  biases learn faster (their learning rate times ``bias_lr_scale``) with the same decay; the
  whitening layer's bias stops learning after its first epochs.

A recipe switches each trick with :class:`evakit.recipes.Speedrun`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import nn

from evakit import augment, data, tasks, train
from evakit.recipes import Recipe, Speedrun


class Lookahead(torch.optim.Optimizer):
    """An optimizer whose weights are pulled towards their running average every ``every`` steps.

    From ``start_step`` on, every ``every`` steps the average moves towards the weights by
    ``1 − decay`` (``decay = base ** every × (step / total) ** power``: a short memory early, a
    long one late) and the weights are set to the average; at the end of each epoch the weights
    are set to the average once more. BatchNorm's running statistics are averaged too.

    Args:
        inner: the optimizer that takes the steps (SGD).
        model: the network whose state is averaged.
        total_steps: steps in the whole run.
        steps_per_epoch: steps in one epoch.
        start_step: the first step that averages.
        every: steps between averages.
        base: per-step decay at the end of the run.
        power: how the decay grows with progress.
    """

    def __init__(self, inner: torch.optim.Optimizer, model: nn.Module, *, total_steps: int,
                 steps_per_epoch: int, start_step: int = 0, every: int = 5, base: float = 0.95,
                 power: float = 3.0) -> None:
        self.inner, self.model = inner, model
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.start_step, self.every, self.base, self.power = start_step, every, base, power
        self.steps = 0
        self.average: dict[str, torch.Tensor] | None = None
        super().__init__(inner.param_groups, inner.defaults)
        self.state = inner.state

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.inner.step(closure)
        self.steps += 1
        if self.steps >= self.start_step and self.steps % self.every == 0:
            progress = self.steps / self.total_steps
            self._pull(self.base ** self.every * progress ** self.power)
        if self.steps % self.steps_per_epoch == 0 and self.average is not None:
            self._pull(1.0)                 # the epoch ends on the average
        return loss

    def _pull(self, decay: float) -> None:
        state = self.model.state_dict()
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in state.items()
                            if v.is_floating_point()}
            return
        for name, average in self.average.items():
            average.lerp_(state[name], 1 - decay)
            state[name].copy_(average)

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "steps": self.steps,
                "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.steps, self.average = state["steps"], state["average"]


class SpeedrunTask(tasks.Task):
    """CIFAR-10 classification trained the speedrun's way (see the module docstring)."""

    name: ClassVar[str] = "speedrun"

    @staticmethod
    def _settings(recipe: Recipe) -> Speedrun:
        return recipe.speedrun or Speedrun()

    def select(self, recipe: Recipe, train_set, test_set) -> tuple:
        # the images the whitening layer is fitted on, normalised as the loader will feed them
        first = train_set.images[:self._settings(recipe).whiten_images].float() / 255
        mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (train_set.mean, train_set.std))
        self._whiten_from = (first - mean) / std
        return super().select(recipe, train_set, test_set)

    def batches(self, recipe: Recipe, train_set: data.ImageSet, test_set: data.ImageSet,
                device: torch.device) -> tuple[Iterable, Iterable]:
        settings = self._settings(recipe)
        steps = [] if settings.alternate_flip else [augment.random_flip(0.5)]
        if settings.translate:
            steps.append(augment.random_crop(settings.translate))
        train_batches = data.Loader(train_set, recipe.batch_size, shuffle=True, device=device,
                                    seed=recipe.seed, augment=augment.compose(*steps),
                                    drop_last=True, alternate_flip=settings.alternate_flip)
        return train_batches, data.Loader(test_set, 1000, device=device)

    def build_model(self, recipe: Recipe) -> nn.Module:
        """The network, its whitening layer computed from the first training images."""
        model = recipe.build_model()
        model.fit_data(self._whiten_from)
        return model

    def param_groups(self, recipe: Recipe, model: nn.Module) -> list[dict]:
        """BatchNorm biases at ``bias_lr_scale`` × the LR with the same decay per step; the
        rest as usual (the frozen whitening filters and BN scales are left out)."""
        scale = self._settings(recipe).bias_lr_scale
        named = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad or n == "whiten.bias"]
        biases = [p for n, p in named if ".norm" in n]
        others = [p for n, p in named if ".norm" not in n]
        return [{"params": others},              # first: the LR a history reports
                {"params": biases, "lr": recipe.lr * scale,
                 "weight_decay": recipe.weight_decay / scale}]

    def wrap_optimizer(self, recipe: Recipe, model: nn.Module, optimizer: torch.optim.Optimizer,
                       steps_per_epoch: int) -> torch.optim.Optimizer:
        if not self._settings(recipe).lookahead:
            return optimizer
        return Lookahead(optimizer, model, total_steps=recipe.epochs * steps_per_epoch,
                         steps_per_epoch=steps_per_epoch)

    def metrics(self, model: nn.Module, test_batches: Iterable,
                precision: train.Precision) -> dict[str, float]:
        """The test accuracy (%) without test-time augmentation (``test_acc`` has it), so one
        record shows what TTA buys."""
        views, model.tta = model.tta, 0
        try:
            return {"test_acc_no_tta": train.evaluate(model, test_batches,
                                                      precision=precision)[1]}
        finally:
            model.tta = views

    def watch(self, recipe: Recipe, optimizer: torch.optim.Optimizer, train_batches: Iterable,
              val_set, loss_fn, precision: train.Precision):
        return _WhitenBiasClock()


class _WhitenBiasClock:
    """After each epoch, tells the network which epoch comes next (it freezes the whitening
    bias when its epochs are over); keeps the model as trained."""

    def __call__(self, epoch: int, history: train.History, model: nn.Module) -> bool:
        model.on_epoch(epoch)
        return False

    def finish(self, model: nn.Module) -> tuple[nn.Module, dict[str, float]]:
        return model, {}


tasks.TASKS[SpeedrunTask.name] = SpeedrunTask()
