"""Session 12: from a trained model to a trustworthy one.

The practices a recipe turns on with :class:`evakit.recipes.Practice` (and ``task="practice"``),
and the tools session 12 uses on recorded models:

* **Data.** :func:`validation_split` holds a seeded, stratified validation set out of the
  training set; :func:`keep_classes` keeps a subset of the classes and relabels them 0…k−1;
  :func:`per_class_indices` keeps n labelled images per class; long-tailed sets come from
  :func:`evakit.losses.long_tailed_indices`.
* **Transfer.** :func:`replace_head` swaps a network's last layer for one with k outputs,
  :func:`copy_backbone` starts a network from another's weights (all but the last layer),
  :class:`LinearProbe` freezes every layer but the last (batch norm included);
  :func:`torchvision_transfer` does the same to a torchvision network with ImageNet weights.
* **Imbalance.** :func:`class_weights` (inverse frequency, or Cui et al.'s effective number)
  scaled so that a training image weighs 1 on average, and the losses built from them.
* **Augmentation policies.** :func:`policy_augment` (RandAugment / AutoAugment, torchvision v2,
  image by image on uint8) and :class:`MixingLoader` (mixup / CutMix, torchvision v2), both
  drawing from the training loader's own seeded generator.
* **After every epoch.** :class:`Watch` scores the validation set into ``History.val_*``, stops
  early (:class:`EarlyStopping`) and averages weights (:class:`SWA`, ``torch.optim.swa_utils``).
* **At test time.** :func:`predict_tta` averages the softmax over flipped and shifted views;
  :func:`loss_along` measures the loss along a filter-normalised random direction (flatness).

:class:`PracticeTask` is the task that wires the first four into :func:`evakit.runner.run`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from evakit import augment, data, losses, train
from evakit.errors import ArgumentError, DataError, RecordError
from evakit.recipes import Practice, Recipe
from evakit.tasks import TASKS, Task

if TYPE_CHECKING:
    from evakit.records import Record

# ------------------------------------------------------------------------------------------------
# Data: validation split, class subsets, labels per class


def _take(images: data.ImageSet, indices: torch.Tensor, note: str, *,
          split: str | None = None) -> data.ImageSet:
    """The images at ``indices`` (kept in their order), with what was done added to the note."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    joined = f"{images.note}; {note}" if images.note else note
    return data.ImageSet(images.images[indices], images.labels[indices], list(images.classes),
                         images.name, split or images.split, f"{images.source} ({note})",
                         joined)


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ArgumentError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")


def validation_split(images: data.ImageSet, fraction: float,
                     seed: int = 0) -> tuple[data.ImageSet, data.ImageSet]:
    """Hold a stratified validation set out of a training set.

    Each class gives ``round(fraction × its count)`` of its images, drawn by a generator seeded
    with ``seed`` — so the split is the same on every machine and for every training seed, and
    every class is represented in proportion. The test set is never touched: choices (an
    epoch, a learning rate, a temperature) are made on this set, and the test set scores the
    final choice once.

    Args:
        images: the training set.
        fraction: share of each class held out, in (0, 1).
        seed: seed of the draw.

    Returns:
        (what is left to train on, the validation set), each in the original order.
    """
    _check_fraction(fraction)
    generator = torch.Generator().manual_seed(seed)
    held = []
    for c in torch.unique(images.labels).tolist():
        members = (images.labels == c).nonzero()[:, 0]
        n = round(fraction * len(members))
        held.append(members[torch.randperm(len(members), generator=generator)[:n]])
    is_val = torch.zeros(len(images), dtype=torch.bool)
    is_val[torch.cat(held)] = True
    note = f"{fraction:.0%} held out per class for validation (seed {seed})"
    return (_take(images, (~is_val).nonzero()[:, 0], f"the other {1 - fraction:.0%}: " + note),
            _take(images, is_val.nonzero()[:, 0], note, split="val"))


def keep_classes(images: data.ImageSet, classes: Sequence[int]) -> data.ImageSet:
    """Only the images of ``classes``, relabelled 0…k−1 in the order given.

    Args:
        images: an image set.
        classes: dataset labels to keep, e.g. CIFAR-10's vehicles (0, 1, 8, 9).

    Returns:
        The subset; its ``classes`` names the kept classes in their new order.
    """
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or min(classes) < 0 \
            or max(classes) >= len(images.classes):
        raise ArgumentError(f"classes must be distinct labels in 0…{len(images.classes) - 1}, "
                            f"got {classes}")
    relabel = torch.full((len(images.classes),), -1, dtype=torch.long)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))
    new = relabel[images.labels]
    kept = (new >= 0).nonzero()[:, 0]
    names = [images.classes[c] for c in classes]
    subset = _take(images, kept, f"classes {', '.join(names)} as 0–{len(classes) - 1}")
    subset.labels = new[kept]
    subset.classes = names
    return subset


def per_class_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` images of every class (all of a class that has fewer), seeded.

    Args:
        labels: class labels (N,).
        n: images kept per class.
        seed: seed of the draw; the same seed keeps the same images.

    Returns:
        Sorted int64 indices.
    """
    if not isinstance(n, int) or n < 1:
        raise ArgumentError(f"n must be a positive integer, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero()[:, 0]
        chosen.append(members[torch.randperm(len(members), generator=generator)[:n]])
    return torch.cat(chosen).sort().values


def long_tailed(images: data.ImageSet, ratio: float, seed: int = 0) -> data.ImageSet:
    """A long-tailed subset (Cui et al. 2019): class i keeps n_max · ratio^(−i/(C−1)) images."""
    indices = losses.long_tailed_indices(images.labels, ratio, seed=seed)
    return _take(images, indices, f"long-tailed, ratio {ratio:g} (seed {seed})")


def select(practice: Practice, train_set: data.ImageSet,
           test_set: data.ImageSet) -> tuple[data.ImageSet, data.ImageSet | None, data.ImageSet]:
    """Apply a recipe's data practices: classes, then imbalance, labels per class, validation.

    Returns:
        (training set, validation set or None, test set).
    """
    if practice.classes is not None:
        train_set = keep_classes(train_set, practice.classes)
        test_set = keep_classes(test_set, practice.classes)
    if practice.imbalance is not None:
        train_set = long_tailed(train_set, practice.imbalance, practice.data_seed)
    if practice.per_class is not None:
        indices = per_class_indices(train_set.labels, practice.per_class, practice.data_seed)
        train_set = _take(train_set, indices, f"{practice.per_class} per class "
                                              f"(seed {practice.data_seed})")
    val_set = None
    if practice.val_split:
        train_set, val_set = validation_split(train_set, practice.val_split, practice.data_seed)
    return train_set, val_set, test_set


# ------------------------------------------------------------------------------------------------
# Transfer: the last layer, a frozen backbone, weights from another network


def last_layer(model: nn.Module) -> str:
    """The name of the network's last linear or convolutional layer (its classifier)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    if not names:
        raise ArgumentError(f"{type(model).__name__} has no linear or convolutional layer")
    return names[-1]


def replace_head(model: nn.Module, classes: int) -> nn.Module:
    """Replace the last layer by a freshly initialised one with ``classes`` outputs (in place).

    A linear layer stays linear, a 1×1 convolution stays a convolution of the same shape.
    """
    if not isinstance(classes, int) or classes < 2:
        raise ArgumentError(f"classes must be an integer of at least 2, got {classes!r}")
    name = last_layer(model)
    old = model.get_submodule(name)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, classes, old.kernel_size, old.stride, old.padding,
                        old.dilation, bias=old.bias is not None)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
    return model


class LinearProbe(nn.Module):
    """A network trained in its last layer only: a linear classifier on frozen features.

    Every other parameter has ``requires_grad=False``, and every other layer stays in eval
    mode even while training — batch norm keeps the statistics the features were learnt with,
    so the features are exactly those of the pretrained network.

    Args:
        net: the network, its last layer already replaced for the new classes.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.head = last_layer(net)
        for name, p in net.named_parameters():
            p.requires_grad = name.startswith(self.head + ".")

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.net.eval()
        self.net.get_submodule(self.head).train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.net if isinstance(model, LinearProbe) else model


def copy_backbone(model: nn.Module, source: nn.Module) -> int:
    """Copy every weight and statistic of ``source`` into ``model`` but the last layer's.

    Returns:
        How many tensors were copied.
    """
    model, source = _unwrap(model), _unwrap(source)
    head = last_layer(model) + "."
    theirs, mine = source.state_dict(), model.state_dict()
    copied = 0
    for key, value in mine.items():
        if key.startswith(head):
            continue
        if key not in theirs or theirs[key].shape != value.shape:
            raise ArgumentError(f"the source network has no {key} of shape "
                                f"{tuple(value.shape)}: it is not the same architecture")
        mine[key] = theirs[key]
        copied += 1
    model.load_state_dict(mine)
    return copied


def torchvision_transfer(arch: str = "resnet18", classes: int = 10, *, weights=None,
                         state_dict: dict | None = None, freeze: bool = False) -> nn.Module:
    """A torchvision classifier started from pretrained weights, its last layer replaced.

    Online, ``weights="DEFAULT"`` (or e.g. ``ResNet18_Weights.IMAGENET1K_V1``) downloads the
    ImageNet weights; offline, pass ``weights=None`` and a ``state_dict`` saved from such a
    network. Inputs must then be prepared as the weights expect (``weights.transforms()``:
    resized to 224, normalised with ImageNet's mean and std).

    Args:
        arch: a name for ``torchvision.models.get_model``.
        classes: outputs of the new last layer.
        weights: torchvision weights to download, or None.
        state_dict: weights to load before the head is replaced (offline).
        freeze: train the last layer only (:class:`LinearProbe`).
    """
    import torchvision

    net = torchvision.models.get_model(arch, weights=weights)
    if state_dict is not None:
        net.load_state_dict(state_dict)
    replace_head(net, classes)
    return LinearProbe(net) if freeze else net


def load_model(recipe: str, seed: int | None = None,
               directory: Path | None = None) -> nn.Module:
    """The recorded model of a recipe, built as its task builds it (a session-12 transfer
    recipe's network has k outputs, a probe is wrapped), in eval mode."""
    from evakit import recipes, records

    found = recipes.get(recipe)
    if found.task != PracticeTask.name:
        return records.load_model(recipe, directory, seed)
    path = records.weights_path(recipe, directory, seed)
    if not path.is_file():
        raise RecordError(f"no recorded weights for {recipe!r} at {path}: run "
                          f"`evakit train {recipe} --record` to make them")
    model = PracticeTask().build_model(found, pretrained=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in state.items()})
    return model.eval()


def recorded_data(record: Record, split: str = "test") -> data.ImageSet:
    """The images a record trained on ("train"), held out ("val") or was scored on ("test").

    They are rebuilt from the dataset and the recipe's practices and checked against the
    record's content hashes, so a page scores exactly the images the record saw. A record
    made offline scored CIFAR-10 on the first 1,000 official test images; where the whole test
    set is loaded (with the internet) those 1,000 are taken from it.

    Raises:
        DataError: no rebuilt set has the record's hash.
    """
    config = record.config
    settings = Practice(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in config["practice"].items()}) \
        if config.get("practice") else Practice()
    want = record.data.get(split)
    if want is None:
        raise ArgumentError(f"the record of {record.recipe} has no {split!r} set: it has "
                            f"{sorted(record.data)}")
    if split == "test":
        full = data.load(config["dataset"], "test", fast=False)
        candidates = [full] + ([full.subset(data.FAST_SIZES["test"])]
                               if len(full) > data.FAST_SIZES["test"] else [])
        rebuilt = [keep_classes(c, settings.classes) if settings.classes else c
                   for c in candidates]
    else:
        train_set = data.load(config["dataset"], "train", fast=False)
        kept, val, _ = select(settings, train_set, train_set.subset(1))
        rebuilt = [kept if split == "train" else val]
    for images in rebuilt:
        if images is not None and images.identity().images_md5 == want.images_md5:
            return images
    raise DataError(f"none of the {split} images rebuilt here are the ones the record of "
                    f"{record.recipe} saw ({want.describe()})")


def recorded_predictions(record: Record) -> torch.Tensor:
    """The predicted class of every test image, from a record's stored evidence."""
    outputs = record.outputs.get("test_predictions")
    if outputs is None:
        raise RecordError(f"the record of {record.recipe} keeps no test predictions: re-make "
                          f"it with `evakit train {record.recipe} --record`")
    return torch.tensor([int(c) for c in outputs["pred"]])


# ------------------------------------------------------------------------------------------------
# Imbalance


def class_weights(counts: torch.Tensor | Sequence[int], kind: str = "inverse",
                  beta: float = 0.9999) -> torch.Tensor:
    """Class weights for an imbalanced training set, scaled so a training image weighs 1 on
    average (Σ_c n_c w_c = N).

    ``"inverse"`` weighs a class by 1/n_c, ``"effective"`` by 1/E_n with Cui et al.'s effective
    number E_n = (1 − β^n)/(1 − β). Only the ratios matter to ``F.cross_entropy(weight=)``,
    which divides by the batch's Σ w; a loss averaged over the batch size instead (focal,
    Cui et al.'s) is scaled by the batch's mean weight, and with weights that sum to C (as
    :func:`evakit.losses.class_balanced_weights` returns) that mean is far below 1 on a long
    tail — as if the learning rate were divided by several. This scale keeps it at 1.

    Args:
        counts: training images per class (C,), all positive.
        kind: "inverse" or "effective".
        beta: β of the effective number.

    Returns:
        A float32 tensor (C,).
    """
    n = torch.as_tensor(counts, dtype=torch.float64)
    if kind == "inverse":
        raw = losses.inverse_frequency_weights(n).double()
    elif kind == "effective":
        raw = losses.class_balanced_weights(n, beta).double()
    else:
        raise ArgumentError(f"kind must be 'inverse' or 'effective', got {kind!r}")
    return (raw * n.sum() / (raw * n).sum()).float()


def imbalance_loss(practice: Practice, counts: torch.Tensor) -> train.LossFn:
    """The recipe's loss for a training set with these class counts (see :class:`Practice`)."""
    counts = torch.as_tensor(counts)
    if practice.loss == "weighted-ce":
        weights = class_weights(counts, "inverse")

        def weighted_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(out, y, weight=weights.to(out.device))
        return weighted_ce
    if practice.loss == "focal":
        gamma = practice.focal_gamma
        return lambda out, y: losses.focal_loss(out, y, gamma=gamma)
    if practice.loss == "class-balanced":
        weights = class_weights(counts, "effective", practice.cb_beta)
        gamma = practice.focal_gamma

        def class_balanced(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return losses.focal_loss(out, y, gamma=gamma, alpha=weights.to(out.device))
        return class_balanced
    raise ArgumentError(f"no imbalance loss called {practice.loss!r}")


# ------------------------------------------------------------------------------------------------
# Augmentation policies and label mixing (torchvision v2), seeded by the loader's generator


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def policy_augment(name: str) -> augment.Augment:
    """RandAugment (N=2, M=9) or AutoAugment's CIFAR-10 policy, one draw per image.

    torchvision's v2 transforms given a batch draw *one* operation for all of it, so the
    batch is converted back to uint8 (exactly: it came from uint8 / 255) and transformed
    image by image on the CPU. torchvision draws from torch's global generator; each batch
    forks it and seeds it from the loader's generator, so a run is reproducible and resumable
    like every other evakit augmentation.
    """
    from torchvision.transforms import v2

    if name == "randaugment":
        transform = v2.RandAugment()
    elif name == "autoaugment":
        transform = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    else:
        raise ArgumentError(f"policy must be 'randaugment' or 'autoaugment', got {name!r}")

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = (x * 255).round().to(torch.uint8).cpu()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_from(generator))
            out = torch.stack([transform(image) for image in images])
        return out.to(x.device).float().div_(255)

    return apply


class MixingLoader:
    """Training batches with mixup or CutMix applied (torchvision v2), soft labels out.

    mixup blends each image with another (weight λ ~ Beta(α, α)); CutMix pastes a rectangle
    of area 1 − λ from another. The labels become the same mixture of one-hot vectors, and
    cross-entropy takes them as probabilities. The draws are seeded from the wrapped loader's
    generator.

    Args:
        loader: a :class:`evakit.data.Loader` (shuffled, normalised batches).
        kind: "mixup" or "cutmix".
        alpha: α of the Beta distribution.
        classes: number of classes.
    """

    def __init__(self, loader: data.Loader, kind: str, alpha: float, classes: int) -> None:
        from torchvision.transforms import v2

        if kind not in ("mixup", "cutmix"):
            raise ArgumentError(f"kind must be 'mixup' or 'cutmix', got {kind!r}")
        self.loader = loader
        self.kind = kind
        mixer = v2.MixUp if kind == "mixup" else v2.CutMix
        self.mix = mixer(alpha=alpha, num_classes=classes)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            with torch.random.fork_rng(devices=[]):     # never yield inside: training draws too
                torch.manual_seed(_seed_from(self.loader.generator))
                mixed = self.mix(x, y)
            yield mixed

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)


# ------------------------------------------------------------------------------------------------
# After every epoch: validation, early stopping, stochastic weight averaging


class EarlyStopping:
    """Stop once the validation loss has not improved for ``patience`` epochs; keep the best.

    Args:
        patience: epochs without a new lowest validation loss before training stops.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch = 0
        self.state: dict | None = None

    def update(self, epoch: int, history: train.History, model: nn.Module) -> bool:
        """Note this epoch's validation loss; True once training should stop."""
        loss = history.val_loss[-1]
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> nn.Module:
        """The model with the weights of the best epoch."""
        if self.state is not None:
            model.load_state_dict(self.state)
        return model


class SWA:
    """Stochastic weight averaging (Izmailov et al. 2018) with ``torch.optim.swa_utils``.

    From the end of epoch ``start`` on, the weights are added to a running average after every
    epoch, and ``SWALR`` moves the learning rate to ``swa_lr`` (a cosine over
    ``anneal_epochs``) and holds it there. At the end the averaged network's batch-norm
    statistics are recomputed with one pass over the training batches (``update_bn``): the
    average of the weights is a new network, and the running statistics of none of the
    averaged ones belong to it.

    Args:
        optimizer: the training optimizer (its learning rate is taken over from ``start``).
        start: the first epoch (1-based) whose weights are averaged.
        swa_lr: the learning rate of the averaging phase.
        train_batches: the batches ``update_bn`` passes through the averaged network.
        anneal_epochs: epochs of the move to ``swa_lr``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, start: int, swa_lr: float,
                 train_batches: Iterable, anneal_epochs: int = 2) -> None:
        self.optimizer = optimizer
        self.start = start
        self.train_batches = train_batches
        self.average: torch.optim.swa_utils.AveragedModel | None = None
        # Made now, SWALR leaves the learning rate as it is until its first step.
        self.scheduler = torch.optim.swa_utils.SWALR(optimizer, swa_lr=swa_lr,
                                                     anneal_epochs=anneal_epochs,
                                                     anneal_strategy="cos")

    def update(self, epoch: int, model: nn.Module) -> None:
        """Add the weights of this epoch to the average (from ``start`` on)."""
        if epoch < self.start:
            return
        if self.average is None:
            self.average = torch.optim.swa_utils.AveragedModel(model)
        self.average.update_parameters(model)
        self.scheduler.step()

    @property
    def averaged(self) -> int:
        """How many epochs' weights are in the average."""
        return 0 if self.average is None else int(self.average.n_averaged)

    def finish(self, model: nn.Module) -> nn.Module:
        """The averaged network with its batch-norm statistics recomputed (or ``model`` itself
        when training ended before ``start``)."""
        if self.average is None:
            return model
        from torch.optim.swa_utils import update_bn

        update_bn(self.train_batches, self.average)
        return self.average.module


class Watch:
    """What :func:`evakit.train.fit` calls after every epoch of a session-12 recipe.

    Scores the validation set into ``history.val_loss`` / ``val_acc``, then lets early stopping
    and SWA see the epoch. :meth:`finish` returns the model to keep — the best epoch's, or the
    weight average — and its validation accuracy.

    Args:
        val_batches: validation batches, or None.
        loss_fn: the loss scored on them.
        correct_fn: which outputs count as correct.
        precision: the precision of the run.
        stopping: an :class:`EarlyStopping`, or None.
        swa: an :class:`SWA`, or None.
    """

    def __init__(self, val_batches: Iterable | None, loss_fn, correct_fn,
                 precision: train.Precision, stopping: EarlyStopping | None = None,
                 swa: SWA | None = None) -> None:
        self.val_batches = val_batches
        self.loss_fn = loss_fn
        self.correct_fn = correct_fn
        self.precision = precision
        self.stopping = stopping
        self.swa = swa

    def _score(self, model: nn.Module) -> tuple[float, float]:
        return train.evaluate(model, self.val_batches, self.loss_fn, correct_fn=self.correct_fn,
                              precision=self.precision)

    def __call__(self, epoch: int, history: train.History, model: nn.Module) -> bool:
        if self.val_batches is not None:
            loss, acc = self._score(model)
            history.append(val_loss=loss, val_acc=acc)
        stop = self.stopping.update(epoch, history, model) if self.stopping else False
        if self.swa is not None:
            self.swa.update(epoch, model)
        return stop

    def finish(self, model: nn.Module) -> tuple[nn.Module, dict[str, float]]:
        """The model to keep, and its validation accuracy (%) when there is a validation set."""
        if self.stopping is not None:
            model = self.stopping.restore(model)
        if self.swa is not None:
            model = self.swa.finish(model)
        extra = {}
        if self.val_batches is not None:
            extra["val_acc"] = self._score(model)[1]
        return model, extra


# ------------------------------------------------------------------------------------------------
# The task


class PracticeTask(Task):
    """Image classification with the practices of a recipe's :class:`Practice`.

    The runner asks it for the data (class subset, long tail, labels per class, validation
    split), the network (a new last layer, recorded weights, a frozen backbone), the
    optimizer's groups (a lower backbone LR), the loss (imbalance losses), the batches
    (policies, mixing) and the watch after every epoch (validation, early stopping, SWA).
    """

    name: ClassVar[str] = "practice"

    @staticmethod
    def _practice(recipe: Recipe) -> Practice:
        return recipe.practice or Practice()

    def select(self, recipe: Recipe, train_set, test_set) -> tuple:
        return select(self._practice(recipe), train_set, test_set)

    def build_model(self, recipe: Recipe, pretrained: bool = True) -> nn.Module:
        """The network; with ``pretrained=False`` the ``init_from`` weights are not loaded (the
        recorded weights of this recipe are about to replace them)."""
        practice = self._practice(recipe)
        model = recipe.build_model()
        if practice.classes is not None:
            replace_head(model, len(practice.classes))
        if practice.init_from is not None and pretrained:
            copy_backbone(model, load_model(practice.init_from))
        return LinearProbe(model) if practice.freeze else model

    def param_groups(self, recipe: Recipe, model: nn.Module) -> list[dict]:
        """Head first (its LR is the one a History logs); a lower-LR backbone group when
        fine-tuning; the head alone for a linear probe."""
        practice = self._practice(recipe)
        net = _unwrap(model)
        head = last_layer(net) + "."
        head_params = [p for n, p in net.named_parameters() if n.startswith(head)]
        if practice.freeze:
            return [{"params": head_params}]
        if practice.backbone_lr is not None:
            rest = [p for n, p in net.named_parameters() if not n.startswith(head)]
            return [{"params": head_params},
                    {"params": rest, "lr": recipe.lr * practice.backbone_lr}]
        return super().param_groups(recipe, model)

    def batches(self, recipe: Recipe, train_set: data.ImageSet, test_set: data.ImageSet,
                device: torch.device) -> tuple[Iterable, Iterable]:
        practice = self._practice(recipe)
        if recipe.pipeline != "batch":
            raise ArgumentError(f"recipe {recipe.name}: the practice task runs evakit's batch "
                                f"pipeline only, not {recipe.pipeline!r}")
        steps = augment.for_recipe(recipe, train_set.mean)
        if practice.policy is not None:
            policy = policy_augment(practice.policy)
            steps = policy if steps is None else augment.compose(steps, policy)
        loader = data.Loader(train_set, recipe.batch_size, shuffle=True, device=device,
                             seed=recipe.seed, augment=steps)
        if practice.mix is not None:
            loader = MixingLoader(loader, practice.mix, practice.mix_alpha,
                                  len(train_set.classes))
        return loader, data.Loader(test_set, 1000, device=device)

    def train_loss(self, recipe: Recipe, train_set):
        practice = self._practice(recipe)
        if practice.loss == "ce":
            return self.loss(recipe)
        counts = losses.class_counts(train_set.labels, len(train_set.classes))
        return imbalance_loss(practice, counts)

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Top-1 against the label, or against the largest share of a mixed label."""
        return train.top1(out, y.argmax(1) if y.is_floating_point() else y)

    def watch(self, recipe: Recipe, optimizer: torch.optim.Optimizer, train_batches: Iterable,
              val_set, loss_fn, precision: train.Precision) -> Watch | None:
        practice = self._practice(recipe)
        if val_set is None and practice.swa_start is None:
            return None
        swa = None
        if practice.swa_start is not None:
            if recipe.scheduler is not None:
                raise ArgumentError(f"recipe {recipe.name}: SWA sets the learning rate of its "
                                    f"phase itself; give it scheduler=None, not "
                                    f"{recipe.scheduler!r}")
            swa = SWA(optimizer, practice.swa_start, practice.swa_lr, train_batches)
        val_batches = None if val_set is None else data.Loader(val_set, 1000)
        stopping = EarlyStopping(practice.patience) if practice.patience else None
        return Watch(val_batches, loss_fn, self.correct, precision, stopping, swa)


TASKS[PracticeTask.name] = PracticeTask()


# ------------------------------------------------------------------------------------------------
# Test-time augmentation


@dataclass(frozen=True)
class View:
    """One test-time view of a batch: shifted by (dy, dx) pixels (reflected at the border, as
    the training crops pad) and optionally mirrored.

    Attributes:
        dy: rows the image moves up (a crop ``dy`` rows lower).
        dx: columns the image moves left.
        flip: mirror left–right after the shift.
    """

    dy: int = 0
    dx: int = 0
    flip: bool = False

    @property
    def name(self) -> str:
        shift = f"shift ({self.dy:+d}, {self.dx:+d})" if self.dy or self.dx else "centre"
        return shift + (", flipped" if self.flip else "")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pad = max(abs(self.dy), abs(self.dx))
        if pad:
            h, w = x.shape[-2:]
            padded = F.pad(x, (pad,) * 4, mode="reflect")
            x = padded[..., pad + self.dy:pad + self.dy + h, pad + self.dx:pad + self.dx + w]
        return x.flip(-1) if self.flip else x


FLIPS = (View(), View(flip=True))


def crop_views(shift: int = 4, flip: bool = True) -> tuple[View, ...]:
    """The centre and four corner crops of the image padded by ``shift`` (ten-crop with
    flips)."""
    shifts = [(0, 0), (-shift, -shift), (-shift, shift), (shift, -shift), (shift, shift)]
    views = [View(dy, dx) for dy, dx in shifts]
    return tuple(views + [View(dy, dx, True) for dy, dx in shifts] if flip else views)


def normalized(images: data.ImageSet) -> torch.Tensor:
    """The images as a model sees them: float, normalised by the dataset's statistics."""
    x = images.images.float() / 255
    mean = torch.tensor(images.mean).view(1, -1, 1, 1)
    std = torch.tensor(images.std).view(1, -1, 1, 1)
    return (x - mean) / std


def predict_tta(model: nn.Module, images: data.ImageSet | torch.Tensor,
                views: Sequence[View] = (View(),), *, precision: train.Precision = train.FP32,
                batch_size: int = 500) -> torch.Tensor:
    """Softmax probabilities averaged over test-time views.

    Args:
        model: a trained classifier (put in eval mode here).
        images: an :class:`ImageSet`, or a batch already normalised (N×C×H×W).
        views: the views to average; ``(View(),)`` is the plain prediction.
        precision: the precision of the forward passes.
        batch_size: images per forward pass.

    Returns:
        (N, classes) probabilities on the CPU: the mean over views of softmax(model(view(x))).
    """
    if not views:
        raise ArgumentError("views must name at least one view")
    x = normalized(images) if isinstance(images, data.ImageSet) else images
    device = next(model.parameters()).device
    model.eval()
    total = None
    with torch.no_grad():
        for view in views:
            probs = torch.cat([train._forward(model, view(x[i:i + batch_size]), device,
                                              precision).float().softmax(1).cpu()
                               for i in range(0, len(x), batch_size)])
            total = probs if total is None else total + probs
    return total / len(views)


# ------------------------------------------------------------------------------------------------
# Flatness: the loss along a random direction


def random_direction(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """A Gaussian direction in weight space, filter-normalised (Li et al. 2018).

    Each filter (output unit) of every convolution and linear layer gets a random direction
    scaled to that filter's own norm, so a step of 1 changes every filter by as much as it
    weighs — comparable across networks whose weights have different scales (batch norm makes
    a network's function blind to the scale of the weights before it). Biases and batch-norm
    parameters stay put.
    """
    generator = torch.Generator().manual_seed(seed)
    direction = {}
    for module_name, m in model.named_modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            w = m.weight.detach().cpu().float()
            d = torch.randn(w.shape, generator=generator)
            dims = tuple(range(1, w.ndim))
            norm = torch.linalg.vector_norm
            d = d * norm(w, dim=dims, keepdim=True) / norm(d, dim=dims, keepdim=True).clamp(
                min=1e-12)
            direction[f"{module_name}.weight"] = d
    return direction


def loss_along(model: nn.Module, direction: dict[str, torch.Tensor], alphas: Sequence[float],
               batches: Iterable, loss_fn: train.LossFn = F.cross_entropy,
               precision: train.Precision = train.FP32) -> list[float]:
    """The mean loss of ``model`` with its weights moved by α × ``direction``, for each α.

    The model is evaluated (batch norm with its running statistics) and left as it was.
    """
    probe = copy.deepcopy(model).eval()
    params = dict(probe.named_parameters())
    start = {name: params[name].detach().clone() for name in direction}
    out = []
    with torch.no_grad():
        for alpha in alphas:
            for name, d in direction.items():
                params[name].copy_(start[name] + alpha * d.to(start[name]))
            out.append(train.evaluate(probe, batches, loss_fn, precision=precision)[0])
    return out
