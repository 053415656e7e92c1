"""Losses beyond plain cross-entropy, starting with those for class imbalance.

* :func:`focal_loss` (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) scales each
  sample's cross-entropy by ``(1 − p_t)^γ``, so that the easy, well-classified samples (mostly
  of the frequent classes) stop dominating the gradient; ``α`` adds a weight per class.
* :func:`class_balanced_weights` (Cui et al., "Class-Balanced Loss Based on Effective Number of
  Samples", CVPR 2019) weighs each class by the inverse of its *effective number* of samples
  ``E_n = (1 − β^n) / (1 − β)``, which grows like n for few samples and saturates at
  ``1 / (1 − β)`` for many; :func:`class_balanced_loss` applies them to cross-entropy or focal
  loss. β = 0 gives equal weights, β → 1 the inverse class frequencies of
  :func:`inverse_frequency_weights`.
* :func:`long_tailed_indices` cuts a long-tailed training set out of a balanced one, with the
  exponential profile Cui et al. used to build CIFAR-10-LT and CIFAR-100-LT.

Reductions: ``"mean"`` divides the summed, weighted losses by the number of samples N, as Lin et
al. and Cui et al. do. ``nn.CrossEntropyLoss(weight=w)`` divides by Σ w[y_i] instead, so with
class weights the two differ by a factor of the batch's mean weight; ``"none"`` and ``"sum"``
agree with it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from evakit.errors import ArgumentError

_REDUCTIONS = ("mean", "sum", "none")


def _check_logits_target(logits: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        raise ArgumentError("logits must be a floating tensor of raw scores (N, C)")
    if not isinstance(target, torch.Tensor) or target.ndim != 1 or target.is_floating_point():
        raise ArgumentError("target must be a 1-D integer tensor of class labels")
    if len(target) != len(logits):
        raise ArgumentError(f"target has {len(target)} labels for {len(logits)} rows of logits")
    c = logits.shape[1]
    if len(target) and (target.min() < 0 or target.max() >= c):
        raise ArgumentError(f"target labels must lie in [0, {c - 1}] for logits over {c} classes")


def _class_vector(values: torch.Tensor | Sequence[float], num_classes: int,
                  name: str) -> torch.Tensor:
    v = torch.as_tensor(values, dtype=torch.float64)
    if v.shape != (num_classes,) or (v < 0).any():
        raise ArgumentError(f"{name} must hold one non-negative value per class ({num_classes}), "
                         f"got shape {tuple(v.shape)}")
    return v


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# ------------------------------------------------------------------------------------------------
# Focal loss


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               alpha: torch.Tensor | Sequence[float] | None = None,
               reduction: str = "mean") -> torch.Tensor:
    """Softmax focal loss, −α[y] · (1 − p_t)^γ · log p_t, with p_t the probability of the truth.

    Args:
        logits: raw scores (N, C).
        target: true labels (N,).
        gamma: focusing parameter γ ≥ 0; γ = 0 is cross-entropy, Lin et al. found γ = 2 best.
        alpha: an optional weight per class (C,), e.g. :func:`class_balanced_weights`.
        reduction: "mean" (sum over N divided by N), "sum" or "none" (one loss per sample).

    Returns:
        The loss: a scalar, or (N,) for ``reduction="none"``.
    """
    _check_logits_target(logits, target)
    if not gamma >= 0:
        raise ArgumentError(f"gamma must be non-negative, got {gamma}")
    if reduction not in _REDUCTIONS:
        raise ArgumentError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    log_pt = F.log_softmax(logits, dim=1).gather(1, target[:, None].long())[:, 0]
    loss = -log_pt
    if gamma:
        # The factor is not detached: its gradient is part of the loss Lin et al. define.
        loss = (1 - log_pt.exp()).clamp(min=0) ** gamma * loss
    if alpha is not None:
        weights = _class_vector(alpha, logits.shape[1], "alpha")
        loss = weights.to(logits)[target] * loss
    return _reduce(loss, reduction)


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module, for a training loop that takes a criterion.

    With ``gamma=0`` and ``alpha=class_balanced_weights(counts, beta)`` it is the class-balanced
    cross-entropy of Cui et al.; the weights live in a buffer and move with ``.to(device)``.
    """

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | Sequence[float] | None = None,
                 reduction: str = "mean") -> None:
        """Store the settings.

        Args:
            gamma: focusing parameter γ ≥ 0.
            alpha: an optional weight per class.
            reduction: "mean", "sum" or "none".
        """
        super().__init__()
        if not gamma >= 0:
            raise ArgumentError(f"gamma must be non-negative, got {gamma}")
        if reduction not in _REDUCTIONS:
            raise ArgumentError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.gamma = float(gamma)
        self.reduction = reduction
        alpha_t = None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32)
        self.register_buffer("alpha", alpha_t)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The focal loss of ``logits`` (N, C) against ``target`` (N,)."""
        return focal_loss(logits, target, gamma=self.gamma, alpha=self.alpha,
                          reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma:g}, reduction={self.reduction!r}"


# ------------------------------------------------------------------------------------------------
# Class weights


def _counts(counts: torch.Tensor | Sequence[int]) -> torch.Tensor:
    c = torch.as_tensor(counts, dtype=torch.float64)
    if c.ndim != 1 or len(c) < 2 or not (c > 0).all():
        raise ArgumentError("counts must hold a positive number of samples for each of at least "
                         f"2 classes, got {c.tolist()}")
    return c


def class_counts(labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Samples per class.

    Args:
        labels: class labels (N,).
        num_classes: number of classes; by default the largest label + 1.

    Returns:
        An int64 tensor (C,).
    """
    labels = _label_tensor(labels)
    return torch.bincount(labels, minlength=num_classes or 0)


def effective_number(counts: torch.Tensor | Sequence[int], beta: float) -> torch.Tensor:
    """Effective number of samples per class, E_n = (1 − β^n) / (1 − β) (Cui et al. 2019).

    Args:
        counts: samples per class (C,), all positive.
        beta: β in [0, 1); Cui et al. use 0.9, 0.99, 0.999 or 0.9999.

    Returns:
        A float64 tensor (C,): 1 for β = 0, tending to n as β → 1.
    """
    if not 0.0 <= beta < 1.0:
        raise ArgumentError(f"beta must lie in [0, 1), got {beta}")
    n = _counts(counts)
    return (1.0 - beta ** n) / (1.0 - beta)


def _normalise(inverse: torch.Tensor) -> torch.Tensor:
    """Scale weights to sum to the number of classes, so their mean is 1 as for plain CE."""
    return (inverse * len(inverse) / inverse.sum()).float()


def class_balanced_weights(counts: torch.Tensor | Sequence[int],
                           beta: float = 0.9999) -> torch.Tensor:
    """Class weights ∝ 1 / E_n, normalised to sum to the number of classes (Cui et al. 2019).

    Args:
        counts: samples per class (C,), all positive.
        beta: β in [0, 1); 0 gives equal weights, values near 1 approach inverse frequency.

    Returns:
        A float32 tensor (C,) summing to C.
    """
    return _normalise(1.0 / effective_number(counts, beta))


def inverse_frequency_weights(counts: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Class weights ∝ 1 / n, normalised to sum to the number of classes.

    Pass them as ``weight=`` to ``nn.CrossEntropyLoss`` for weighted cross-entropy, or as
    ``alpha`` to :func:`focal_loss`. They are the β → 1 limit of :func:`class_balanced_weights`.

    Args:
        counts: samples per class (C,), all positive.

    Returns:
        A float32 tensor (C,) summing to C.
    """
    return _normalise(1.0 / _counts(counts))


def class_balanced_loss(logits: torch.Tensor, target: torch.Tensor,
                        counts: torch.Tensor | Sequence[int], *, beta: float = 0.9999,
                        gamma: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (γ = 0) or focal loss (γ > 0) weighted by :func:`class_balanced_weights`.

    Args:
        logits: raw scores (N, C).
        target: true labels (N,).
        counts: training samples per class (C,), all positive.
        beta: β of the effective number, in [0, 1).
        gamma: focal γ; 0 gives class-balanced cross-entropy.
        reduction: "mean" (divided by N), "sum" or "none".

    Returns:
        The loss: a scalar, or (N,) for ``reduction="none"``.
    """
    weights = class_balanced_weights(counts, beta)
    if len(weights) != logits.shape[-1]:
        raise ArgumentError(f"counts has {len(weights)} classes, the logits {logits.shape[-1]}")
    return focal_loss(logits, target, gamma=gamma, alpha=weights, reduction=reduction)


# ------------------------------------------------------------------------------------------------
# Long-tailed subsets


def _label_tensor(labels: torch.Tensor | Sequence[int]) -> torch.Tensor:
    t = torch.as_tensor(labels)
    if t.ndim != 1 or t.is_floating_point() or len(t) == 0 or t.min() < 0:
        raise ArgumentError("labels must be a non-empty 1-D sequence of non-negative integer "
                         "class labels")
    return t.long().cpu()


def long_tailed_counts(n_max: int, num_classes: int, ratio: float = 100) -> list[int]:
    """Images kept per class: class i keeps ⌊n_max · (1/ratio)^(i / (C − 1))⌋.

    The exponential profile of Cui et al. 2019, rounded down as in their released code (and in
    LDAM-DRW's ``IMBALANCECIFAR10``): for n_max = 5,000, C = 10 and ratio 100 it gives 5,000,
    2,997, 1,796, 1,077, 645, 387, 232, 139, 83, 50 (12,406 images, the CIFAR-10-LT size).

    Args:
        n_max: images of the largest (first) class.
        num_classes: number of classes C ≥ 2.
        ratio: imbalance ratio, largest class / smallest class, ≥ 1.

    Returns:
        One count per class, class 0 first and largest.
    """
    if not isinstance(n_max, int) or n_max < 1:
        raise ArgumentError(f"n_max must be a positive integer, got {n_max!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ArgumentError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    if not ratio >= 1:
        raise ArgumentError(f"ratio must be at least 1 (largest class / smallest), got {ratio}")
    return [int(n_max * (1 / ratio) ** (i / (num_classes - 1))) for i in range(num_classes)]


def long_tailed_indices(labels: torch.Tensor | Sequence[int], ratio: float = 100, *,
                        seed: int = 0) -> torch.Tensor:
    """Indices of a long-tailed subset of a balanced training set.

    Class i keeps :func:`long_tailed_counts` ``(n_max, C, ratio)[i]`` images, drawn without
    replacement by a generator seeded with ``seed``; n_max is the size of the smallest class,
    so that every class can supply its share even when the set is only nearly balanced.

    Args:
        labels: class labels of the balanced set (N,), classes 0 … C−1 all present.
        ratio: imbalance ratio, largest class / smallest class, ≥ 1.
        seed: seed of the selection (same seed, same subset).

    Returns:
        Sorted int64 indices into ``labels``, without repeats.
    """
    labels = _label_tensor(labels)
    counts = torch.bincount(labels)
    if len(counts) < 2 or (counts == 0).any():
        missing = (counts == 0).nonzero()[:, 0].tolist()
        raise ArgumentError(f"labels must contain every class 0 … C−1 of at least 2 classes; "
                         f"missing {missing or 'all but one'}")
    keep = long_tailed_counts(int(counts.min()), len(counts), ratio)
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c, k in enumerate(keep):
        members = (labels == c).nonzero()[:, 0]
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(chosen).sort().values
