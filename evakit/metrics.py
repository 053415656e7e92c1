"""How good is a trained classifier, how sure can we be, and can its confidence be trusted?

Three jobs, each on torch tensors and checked against torchmetrics in the tests:

* **Per-class scores.** :func:`classification_report` builds the confusion matrix (rows are true
  classes, columns predicted ones, as in torchmetrics and scikit-learn) and derives precision,
  recall and F1 per class, their macro and micro averages and the balanced accuracy.
* **Uncertainty of an accuracy.** :func:`bootstrap_accuracy` resamples the test set with
  replacement (seeded) and reports a percentile interval and a standard error;
  :func:`binomial_std_error` is the analytic ``sqrt(p(1 - p) / n)`` to compare it with.
* **Calibration.** :func:`reliability_bins` groups predictions by confidence into equal-width
  bins, :func:`expected_calibration_error` weighs each bin's gap between accuracy and confidence
  by its size, :func:`reliability_diagram` draws it, and :func:`fit_temperature` finds the one
  temperature that minimises the validation NLL (Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017).

Predictions may be given as labels (N,) or as scores (N, C): probabilities or logits, whose
argmax is the predicted label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from evakit.errors import ArgumentError
from evakit.table import Table

# ------------------------------------------------------------------------------------------------
# Input checks


def _labels(preds: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Predicted labels (N,) on the CPU from labels (N,) or scores (N, C) on any device."""
    if not isinstance(preds, torch.Tensor):
        raise ArgumentError(f"preds must be a torch tensor, got {type(preds).__name__}")
    if preds.ndim == 2:
        if num_classes is not None and preds.shape[1] != num_classes:
            raise ArgumentError(f"preds has scores for {preds.shape[1]} classes, expected "
                             f"num_classes={num_classes}")
        return preds.detach().argmax(dim=1).cpu()
    if preds.ndim != 1 or preds.is_floating_point():
        raise ArgumentError(f"preds must be integer labels (N,) or scores (N, C), got "
                         f"{preds.dtype} of shape {tuple(preds.shape)}")
    return preds.cpu()


def _target(target: torch.Tensor, n: int) -> torch.Tensor:
    if not isinstance(target, torch.Tensor) or target.ndim != 1 or target.is_floating_point():
        raise ArgumentError("target must be a 1-D integer tensor of true labels")
    if len(target) != n:
        raise ArgumentError(f"target has {len(target)} labels for {n} predictions")
    if n == 0:
        raise ArgumentError("preds and target are empty: there is nothing to score")
    return target.cpu()


def _check_range(values: torch.Tensor, num_classes: int, name: str) -> None:
    if values.min() < 0 or values.max() >= num_classes:
        raise ArgumentError(f"{name} must lie in [0, {num_classes - 1}] for num_classes="
                         f"{num_classes}, got values from {int(values.min())} to "
                         f"{int(values.max())}")


def _logits(logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        raise ArgumentError("logits must be a floating tensor of raw scores (N, C)")
    return logits.detach().double()


def _probs(probs: torch.Tensor) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor) or probs.ndim != 2 or not probs.is_floating_point():
        raise ArgumentError("probs must be a floating tensor of class probabilities (N, C)")
    sums = probs.sum(dim=1)
    if probs.min() < 0 or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ArgumentError("probs rows must be probabilities that sum to 1: pass "
                         "logits.softmax(dim=1), not the logits")
    return probs


# ------------------------------------------------------------------------------------------------
# Confusion matrix and the scores derived from it


def confusion_matrix(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts of (true class, predicted class) pairs.

    Args:
        preds: predicted labels (N,) or scores (N, C).
        target: true labels (N,).
        num_classes: number of classes C.

    Returns:
        An int64 tensor C×C whose entry [i, j] counts images of class i predicted as j.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ArgumentError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    pred = _labels(preds, num_classes)
    true = _target(target, len(pred))
    _check_range(pred, num_classes, "preds")
    _check_range(true, num_classes, "target")
    flat = true.long() * num_classes + pred.long()
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, with 0 where den is 0 (the convention of torchmetrics and scikit-learn)."""
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


@dataclass
class ClassificationReport:
    """Per-class precision, recall and F1 and their averages, all derived from one matrix.

    Attributes:
        confusion: C×C counts, rows true classes, columns predicted classes.
        class_names: one name per class (the class index as text when none were given).
    """

    confusion: torch.Tensor
    class_names: list[str]

    @property
    def tp(self) -> torch.Tensor:
        """True positives per class (the diagonal)."""
        return self.confusion.diagonal()

    @property
    def support(self) -> torch.Tensor:
        """Images per true class (row sums)."""
        return self.confusion.sum(dim=1)

    @property
    def predicted(self) -> torch.Tensor:
        """Images per predicted class (column sums)."""
        return self.confusion.sum(dim=0)

    @property
    def precision(self) -> torch.Tensor:
        """TP / (TP + FP) per class; 0 for a class never predicted."""
        return _ratio(self.tp, self.predicted)

    @property
    def recall(self) -> torch.Tensor:
        """TP / (TP + FN) per class; 0 for a class absent from the targets."""
        return _ratio(self.tp, self.support)

    @property
    def f1(self) -> torch.Tensor:
        """Harmonic mean of precision and recall per class, 2·TP / (2·TP + FP + FN)."""
        return _ratio(2 * self.tp, self.support + self.predicted)

    @property
    def seen(self) -> torch.Tensor:
        """Which classes occur among the targets or the predictions.

        Macro averages skip the others: a class nobody drew and nobody predicted has no
        precision or recall to speak of (torchmetrics does the same).
        """
        return (self.support + self.predicted) > 0

    def _macro(self, per_class: torch.Tensor) -> float:
        return float(per_class[self.seen].mean())

    @property
    def macro_precision(self) -> float:
        """Unweighted mean of the per-class precisions."""
        return self._macro(self.precision)

    @property
    def macro_recall(self) -> float:
        """Unweighted mean of the per-class recalls."""
        return self._macro(self.recall)

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 scores (not the F1 of the macro P and R)."""
        return self._macro(self.f1)

    @property
    def accuracy(self) -> float:
        """Fraction of images whose prediction is right."""
        return float(_ratio(self.tp.sum(), self.confusion.sum()))

    @property
    def micro_precision(self) -> float:
        """Precision of the pooled counts; with one label per image it equals the accuracy."""
        return float(_ratio(self.tp.sum(), self.predicted.sum()))

    @property
    def micro_recall(self) -> float:
        """Recall of the pooled counts; with one label per image it equals the accuracy."""
        return float(_ratio(self.tp.sum(), self.support.sum()))

    @property
    def micro_f1(self) -> float:
        """F1 of the pooled counts; with one label per image it equals the accuracy."""
        tp = self.tp.sum()
        return float(_ratio(2 * tp, self.support.sum() + self.predicted.sum()))

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes that occur among the targets.

        This is scikit-learn's ``balanced_accuracy_score``. torchmetrics'
        ``multiclass_accuracy(average="macro")`` agrees whenever every class occurs among the
        targets; it differs only when a class is predicted but never true, which it counts as a
        recall of 0.
        """
        return float(self.recall[self.support > 0].mean())

    def table(self, digits: int = 3) -> Table:
        """One row per class, then the macro and micro averages.

        Args:
            digits: decimals shown for the scores.

        Returns:
            A :class:`Table` with columns class, precision, recall, F1, support.
        """
        def r(v: float) -> float:
            return round(float(v), digits)

        rows = [[name, r(p), r(rc), r(f), int(s)] for name, p, rc, f, s in
                zip(self.class_names, self.precision, self.recall, self.f1, self.support,
                    strict=True)]
        total = int(self.support.sum())
        rows.append(["macro avg", r(self.macro_precision), r(self.macro_recall),
                     r(self.macro_f1), total])
        rows.append(["micro avg", r(self.micro_precision), r(self.micro_recall),
                     r(self.micro_f1), total])
        caption = (f"{total:,} images: accuracy {self.accuracy:.{digits}f}, balanced accuracy "
                   f"{self.balanced_accuracy:.{digits}f}")
        return Table(["class", "precision", "recall", "F1", "support"], rows, caption)

    def __str__(self) -> str:
        return str(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def classification_report(preds: torch.Tensor, target: torch.Tensor, num_classes: int, *,
                          class_names: Sequence[str] | None = None) -> ClassificationReport:
    """Confusion matrix and every score derived from it.

    Args:
        preds: predicted labels (N,) or scores (N, C).
        target: true labels (N,).
        num_classes: number of classes C.
        class_names: a name per class for the table (e.g. CIFAR-10's "airplane", ...).

    Returns:
        A :class:`ClassificationReport`; show it in a notebook or call ``.table()``.
    """
    if class_names is not None and len(class_names) != num_classes:
        raise ArgumentError(f"class_names has {len(class_names)} names for num_classes="
                         f"{num_classes}")
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    return ClassificationReport(confusion_matrix(preds, target, num_classes), names)


# ------------------------------------------------------------------------------------------------
# Uncertainty of an accuracy


@dataclass(frozen=True)
class Interval:
    """An accuracy with its bootstrap percentile interval.

    Attributes:
        estimate: the accuracy on the whole test set.
        low: lower end of the interval.
        high: upper end of the interval.
        std_error: standard deviation of the resampled accuracies.
        level: coverage the interval aims at, e.g. 0.95.
        n: number of test images.
        resamples: number of bootstrap resamples.
    """

    estimate: float
    low: float
    high: float
    std_error: float
    level: float
    n: int
    resamples: int

    @property
    def width(self) -> float:
        """high − low."""
        return self.high - self.low

    def __str__(self) -> str:
        return (f"{self.estimate:.4f} ({self.level:.0%} interval {self.low:.4f} to "
                f"{self.high:.4f}, SE {self.std_error:.4f}, n={self.n:,}, "
                f"{self.resamples:,} resamples)")


def binomial_std_error(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on ``n`` independent images, sqrt(p(1 − p)/n).

    Args:
        accuracy: the measured accuracy p, in [0, 1].
        n: number of test images.

    Returns:
        The standard error.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ArgumentError(f"accuracy must lie in [0, 1], got {accuracy}")
    if not isinstance(n, int) or n < 1:
        raise ArgumentError(f"n must be a positive integer, got {n!r}")
    return math.sqrt(accuracy * (1.0 - accuracy) / n)


def bootstrap_accuracy(preds: torch.Tensor, target: torch.Tensor, *, resamples: int = 2000,
                       level: float = 0.95, seed: int = 0, chunk: int = 100) -> Interval:
    """Accuracy with a percentile bootstrap interval.

    Each resample draws N test images with replacement from a generator seeded with ``seed``;
    the interval runs between the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the
    resampled accuracies, and the standard error is their standard deviation.

    Args:
        preds: predicted labels (N,) or scores (N, C).
        target: true labels (N,).
        resamples: number of bootstrap resamples.
        level: coverage of the interval, in (0, 1).
        seed: seed of the resampling generator (same seed, same interval).
        chunk: resamples drawn at once; bounds memory at chunk × N indices.

    Returns:
        An :class:`Interval`.
    """
    if not isinstance(resamples, int) or resamples < 2:
        raise ArgumentError(f"resamples must be an integer of at least 2, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise ArgumentError(f"level must lie strictly between 0 and 1, got {level}")
    pred = _labels(preds)
    correct = (pred == _target(target, len(pred))).double()
    n = len(correct)
    generator = torch.Generator().manual_seed(seed)
    accs = torch.cat([correct[torch.randint(n, (min(chunk, resamples - start), n),
                                            generator=generator)].mean(dim=1)
                      for start in range(0, resamples, chunk)])
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=accs.dtype)
    low, high = torch.quantile(accs, q).tolist()
    return Interval(float(correct.mean()), low, high, float(accs.std()), level, n, resamples)


# ------------------------------------------------------------------------------------------------
# Calibration


@dataclass
class ReliabilityBins:
    """Predictions grouped by confidence into equal-width bins.

    Bin b covers [edges[b], edges[b + 1]); the last bin also holds a confidence of exactly 1.
    An empty bin has confidence and accuracy 0 and count 0.

    Attributes:
        edges: bin edges, B + 1 values from 0 to 1.
        confidence: mean top-class probability in each bin.
        accuracy: fraction of correct predictions in each bin.
        counts: predictions in each bin.
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    counts: torch.Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error: Σ_b (n_b / N) · |accuracy_b − confidence_b|."""
        weights = self.counts.double() / self.counts.sum()
        return float((weights * (self.accuracy - self.confidence).abs()).sum())

    def table(self, digits: int = 3) -> Table:
        """One row per non-empty bin: its range, count, mean confidence, accuracy and gap.

        Args:
            digits: decimals shown.

        Returns:
            A :class:`Table`.
        """
        rows = [[f"{float(self.edges[b]):.2f}–{float(self.edges[b + 1]):.2f}",
                 int(self.counts[b]), round(float(self.confidence[b]), digits),
                 round(float(self.accuracy[b]), digits),
                 round(float(self.accuracy[b] - self.confidence[b]), digits)]
                for b in range(len(self.counts)) if self.counts[b] > 0]
        return Table(["confidence bin", "count", "confidence", "accuracy", "gap"], rows,
                     f"{len(self.counts)} equal-width bins, ECE {self.ece:.{digits}f}")


def reliability_bins(probs: torch.Tensor, target: torch.Tensor, bins: int = 15) -> ReliabilityBins:
    """Confidence against accuracy in ``bins`` equal-width bins of the top-class probability.

    Args:
        probs: class probabilities (N, C), rows summing to 1.
        target: true labels (N,).
        bins: number of bins over [0, 1] (15 as in Guo et al. and torchmetrics).

    Returns:
        A :class:`ReliabilityBins`.
    """
    if not isinstance(bins, int) or bins < 1:
        raise ArgumentError(f"bins must be a positive integer, got {bins!r}")
    probs = _probs(probs).detach().double().cpu()
    confidence, pred = probs.max(dim=1)
    correct = (pred == _target(target, len(pred))).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    # right=True puts a confidence equal to an edge in the bin that starts there; clamping
    # sends a confidence of exactly 1 into the last bin instead of a bin of its own.
    index = (torch.bucketize(confidence, edges, right=True) - 1).clamp(0, bins - 1)
    counts = torch.bincount(index, minlength=bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=bins)
    correct_sum = torch.bincount(index, weights=correct, minlength=bins)
    return ReliabilityBins(edges, _ratio(conf_sum, counts), _ratio(correct_sum, counts), counts)


def expected_calibration_error(probs: torch.Tensor, target: torch.Tensor,
                               bins: int = 15) -> float:
    """ECE with equal-width bins (Naeini et al. 2015; Guo et al. 2017).

    Args:
        probs: class probabilities (N, C), rows summing to 1.
        target: true labels (N,).
        bins: number of equal-width bins over [0, 1].

    Returns:
        Σ_b (n_b / N) · |accuracy_b − confidence_b|, in [0, 1].
    """
    return reliability_bins(probs, target, bins).ece


def reliability_diagram(bins: ReliabilityBins, *, title: str | None = None) -> Figure:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration.

    The upper panel draws each bin's accuracy as a bar and its gap to the mean confidence in
    red; the lower panel shows how many predictions fall in each bin, which is what the ECE
    weighs the gaps by.

    Args:
        bins: the result of :func:`reliability_bins`.
        title: a title; by default the ECE.

    Returns:
        The matplotlib Figure.
    """
    edges = bins.edges.numpy()
    width = edges[1:] - edges[:-1]
    left = edges[:-1]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    full = bins.counts > 0
    acc, conf = bins.accuracy.numpy(), bins.confidence.numpy()
    top.bar(left[full], acc[full], width[full], align="edge", color="C0", edgecolor="white",
            label="accuracy")
    # Hatched and nearly clear, so that a gap below the accuracy (an under-confident bin) stays
    # readable on top of the blue bar.
    top.bar(left[full], (conf - acc)[full], width[full], bottom=acc[full], align="edge",
            facecolor=(0.84, 0.15, 0.16, 0.15), edgecolor="C3", hatch="//",
            label="gap to mean confidence")
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.legend(loc="best", fontsize=8)
    top.set_title(title if title is not None else f"ECE {bins.ece:.3f}")
    bottom.bar(left, bins.counts.numpy(), width, align="edge", color="grey", edgecolor="white")
    bottom.set_xlabel("confidence (top-class probability)")
    bottom.set_ylabel("count")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    return fig


def nll(logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / temperature).

    Args:
        logits: raw scores (N, C).
        target: true labels (N,).
        temperature: positive divisor of the logits.

    Returns:
        The mean NLL in nats.
    """
    x = _logits(logits)
    if not temperature > 0:
        raise ArgumentError(f"temperature must be positive, got {temperature}")
    return float(F.cross_entropy(x / temperature, _target(target, len(x)).to(x.device)))


_GOLDEN = (math.sqrt(5) - 1) / 2


def fit_temperature(logits: torch.Tensor, target: torch.Tensor, *,
                    bounds: tuple[float, float] = (0.01, 100.0), steps: int = 80) -> float:
    """The temperature T that minimises the NLL of softmax(logits / T) on validation data.

    The NLL is convex in 1/T (a log-sum-exp of functions linear in 1/T, minus a linear one),
    so it has a single minimum along log T; a golden-section search over log T finds it without
    a learning rate to tune. T > 1 softens over-confident predictions, T < 1 sharpens
    under-confident ones; the argmax, and so the accuracy, never changes.

    Args:
        logits: validation logits (N, C) of the trained model (never the test set's).
        target: validation labels (N,).
        bounds: the range searched; a result at a bound means the optimum lies beyond it.
        steps: golden-section steps; each shrinks the bracket on log T by 0.618.

    Returns:
        The fitted temperature.
    """
    low, high = bounds
    if not 0 < low < high:
        raise ArgumentError(f"bounds must be two temperatures 0 < low < high, got {bounds}")
    x = _logits(logits)
    y = _target(target, len(x)).to(x.device)

    def loss(log_t: float) -> float:
        return float(F.cross_entropy(x / math.exp(log_t), y))

    a, b = math.log(low), math.log(high)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2)
