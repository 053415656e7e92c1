"""evakit.metrics against torchmetrics and scikit-learn, on hand-worked and random cases."""

import math

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.metrics import balanced_accuracy_score
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from evakit import metrics
from evakit.errors import ArgumentError

matplotlib.use("Agg")

# Hand-worked: rows of the confusion matrix are true classes 0, 1, 2.
HAND_TARGET = torch.tensor([0, 0, 0, 1, 1, 2])
HAND_PREDS = torch.tensor([0, 0, 1, 1, 2, 2])


def _random_case(seed: int, n: int = 300, c: int = 6):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(c, (n,), generator=g)
    # Scores that lean towards the truth, so that the scores are neither perfect nor random.
    logits = torch.randn(n, c, generator=g) + 1.5 * torch.nn.functional.one_hot(target, c)
    return logits, target


def _tm(fn, preds, target, c, average):
    return fn(preds, target, num_classes=c, average=average).double()


def test_hand_case_by_hand():
    r = metrics.classification_report(HAND_PREDS, HAND_TARGET, 3)
    assert r.confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert r.precision.tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert r.recall.tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    assert r.f1.tolist() == pytest.approx([0.8, 0.5, 2 / 3])
    assert r.macro_precision == pytest.approx(2 / 3)
    assert r.macro_recall == pytest.approx(13 / 18)
    assert r.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r.accuracy == r.micro_f1 == r.micro_precision == r.micro_recall == pytest.approx(4 / 6)
    assert r.balanced_accuracy == pytest.approx(13 / 18)


def _assert_matches_torchmetrics(preds, target, c):
    r = metrics.classification_report(preds, target, c)
    assert torch.equal(r.confusion, multiclass_confusion_matrix(preds, target, num_classes=c))
    for mine, fn in ((r.precision, multiclass_precision), (r.recall, multiclass_recall),
                     (r.f1, multiclass_f1_score)):
        torch.testing.assert_close(mine, _tm(fn, preds, target, c, "none"))
    pairs = [(r.macro_precision, multiclass_precision, "macro"),
             (r.macro_recall, multiclass_recall, "macro"),
             (r.macro_f1, multiclass_f1_score, "macro"),
             (r.micro_precision, multiclass_precision, "micro"),
             (r.micro_recall, multiclass_recall, "micro"),
             (r.micro_f1, multiclass_f1_score, "micro"),
             (r.balanced_accuracy, multiclass_accuracy, "macro")]
    for mine, fn, average in pairs:
        assert mine == pytest.approx(float(_tm(fn, preds, target, c, average)), abs=1e-6), \
            (fn.__name__, average)


def test_hand_case_equals_torchmetrics():
    _assert_matches_torchmetrics(HAND_PREDS, HAND_TARGET, 3)


@pytest.mark.parametrize("seed", range(5))
def test_random_scores_equal_torchmetrics(seed):
    logits, target = _random_case(seed)
    _assert_matches_torchmetrics(logits, target, 6)            # scores: argmax is the label
    _assert_matches_torchmetrics(logits.argmax(1), target, 6)  # labels


def test_a_class_nobody_drew_or_predicted_is_left_out_of_macro_averages():
    # Class 3 exists (num_classes=4) but appears nowhere: torchmetrics skips it, and so do we.
    _assert_matches_torchmetrics(HAND_PREDS, HAND_TARGET, 4)
    r = metrics.classification_report(HAND_PREDS, HAND_TARGET, 4)
    assert r.macro_recall == pytest.approx(13 / 18)


def test_balanced_accuracy_follows_sklearn_when_a_class_is_only_predicted():
    target = torch.tensor([0, 0, 1, 1, 1])
    preds = torch.tensor([0, 2, 1, 1, 0])   # class 2 predicted once, never true
    r = metrics.classification_report(preds, target, 3)
    with pytest.warns(UserWarning, match="not in y_true"):
        expected = balanced_accuracy_score(target.numpy(), preds.numpy())
    assert r.balanced_accuracy == pytest.approx(expected) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # The documented difference: torchmetrics counts class 2 as a recall of 0.
    tm = float(multiclass_accuracy(preds, target, num_classes=3, average="macro"))
    assert tm == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)


def test_report_renders_as_a_table():
    names = ["cat", "dog", "<bird>"]
    r = metrics.classification_report(HAND_PREDS, HAND_TARGET, 3, class_names=names)
    t = r.table()
    assert t.column("class") == names + ["macro avg", "micro avg"]
    assert t.column("support") == [3, 2, 1, 6, 6]
    assert t.column("F1")[:3] == [0.8, 0.5, 0.667]
    assert "&lt;bird&gt;" in r._repr_html_()
    assert "balanced accuracy 0.722" in str(r)


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.confusion_matrix(HAND_PREDS, HAND_TARGET[:5], 3), "5 labels for 6"),
    (lambda: metrics.confusion_matrix(HAND_PREDS, HAND_TARGET, 2), r"\[0, 1\]"),
    (lambda: metrics.confusion_matrix(HAND_PREDS.float(), HAND_TARGET, 3), "integer labels"),
    (lambda: metrics.confusion_matrix(torch.zeros(6, 4), HAND_TARGET, 3), "4 classes"),
    (lambda: metrics.classification_report(HAND_PREDS, HAND_TARGET, 3, class_names=["a"]),
     "1 names"),
    (lambda: metrics.bootstrap_accuracy(HAND_PREDS, HAND_TARGET, level=95), "level"),
    (lambda: metrics.binomial_std_error(1.5, 10), "accuracy"),
    (lambda: metrics.reliability_bins(torch.randn(6, 3), HAND_TARGET), "softmax"),
    (lambda: metrics.fit_temperature(torch.randn(6, 3), HAND_TARGET, bounds=(2, 1)), "bounds"),
])
def test_bad_input_is_one_clear_sentence(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


# ------------------------------------------------------------------------------------------------
# Bootstrap


def _with_accuracy(n: int, accuracy: float, seed: int = 0):
    """Labels where exactly round(accuracy·n) predictions are right, in random order."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(10, (n,), generator=g)
    wrong = torch.randperm(n, generator=g)[: n - round(accuracy * n)]
    preds = target.clone()
    preds[wrong] = (preds[wrong] + 1) % 10
    return preds, target


def test_bootstrap_interval_contains_the_estimate_and_matches_the_binomial_error():
    preds, target = _with_accuracy(2000, 0.9)
    ci = metrics.bootstrap_accuracy(preds, target, resamples=2000, seed=1)
    assert ci.estimate == pytest.approx(0.9)
    assert ci.low < ci.estimate < ci.high
    se = metrics.binomial_std_error(0.9, 2000)
    assert se == pytest.approx(math.sqrt(0.9 * 0.1 / 2000))
    assert ci.std_error == pytest.approx(se, rel=0.1)
    # A 95 % percentile interval of a near-normal statistic spans about ±1.96 standard errors.
    assert ci.width == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert "95% interval" in str(ci)


def test_bootstrap_interval_shrinks_with_n():
    widths = [metrics.bootstrap_accuracy(*_with_accuracy(n, 0.8), seed=0).width
              for n in (100, 1000, 10000)]
    assert widths[0] > widths[1] > widths[2]
    # The error falls as 1/sqrt(n): ten times the images, about a third of the width.
    assert widths[0] / widths[2] == pytest.approx(10, rel=0.25)


def test_bootstrap_is_deterministic_for_a_seed():
    preds, target = _with_accuracy(500, 0.7)
    a = metrics.bootstrap_accuracy(preds, target, seed=3)
    b = metrics.bootstrap_accuracy(preds, target, seed=3)
    c = metrics.bootstrap_accuracy(preds, target, seed=4)
    assert a == b
    assert (a.low, a.high, a.std_error) != (c.low, c.high, c.std_error)


def test_bootstrap_does_not_depend_on_the_chunk_size_for_a_single_chunk():
    preds, target = _with_accuracy(300, 0.7)
    a = metrics.bootstrap_accuracy(preds, target, resamples=50, chunk=50, seed=2)
    b = metrics.bootstrap_accuracy(preds, target, resamples=50, chunk=1000, seed=2)
    assert a == b


# ------------------------------------------------------------------------------------------------
# Calibration


def test_ece_by_hand():
    probs = torch.tensor([[0.85, 0.10, 0.05],    # right, bin [0.8, 0.9)
                          [0.05, 0.85, 0.10],    # wrong, bin [0.8, 0.9)
                          [0.25, 0.15, 0.60]])   # right, bin [0.6, 0.7)
    target = torch.tensor([0, 0, 2])
    bins = metrics.reliability_bins(probs, target, bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 2, 0]
    assert bins.confidence[8] == pytest.approx(0.85)
    assert bins.accuracy[8] == pytest.approx(0.5) and bins.accuracy[6] == pytest.approx(1.0)
    # (2/3)·|0.5 − 0.85| + (1/3)·|1 − 0.6|
    expected = 2 / 3 * 0.35 + 1 / 3 * 0.4
    assert bins.ece == pytest.approx(expected)
    tm = multiclass_calibration_error(probs, target, num_classes=3, n_bins=10, norm="l1")
    assert float(tm) == pytest.approx(expected)
    assert bins.table().column("count") == [1, 2]


def test_a_confidence_on_an_edge_starts_the_next_bin_and_one_falls_in_the_last():
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.3, 0.2], [0.35, 0.3, 0.35],
                          [1.0, 0.0, 0.0]])
    target = torch.tensor([0, 1, 2, 0])
    bins = metrics.reliability_bins(probs, target, bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 1, 0, 2, 0, 0, 0, 1]
    # torchmetrics bins the same way below 1 (it keeps a confidence of 1 in a bin of its own,
    # which changes nothing here since the last bin holds nothing else).
    tm = multiclass_calibration_error(probs, target, num_classes=3, n_bins=10, norm="l1")
    assert bins.ece == pytest.approx(float(tm))


@pytest.mark.parametrize("seed, scale, n_bins", [(0, 1.0, 15), (1, 3.0, 15), (2, 6.0, 10),
                                                 (3, 0.3, 20)])
def test_ece_equals_torchmetrics(seed, scale, n_bins):
    logits, target = _random_case(seed, n=2000, c=10)
    probs = (scale * logits).softmax(1)
    mine = metrics.expected_calibration_error(probs, target, bins=n_bins)
    tm = multiclass_calibration_error(probs, target, num_classes=10, n_bins=n_bins, norm="l1")
    assert mine == pytest.approx(float(tm), abs=1e-6)


def test_reliability_bins_account_for_every_prediction():
    logits, target = _random_case(5, n=500, c=10)
    bins = metrics.reliability_bins((4 * logits).softmax(1), target)
    assert int(bins.counts.sum()) == 500
    full = bins.counts > 0
    conf = bins.confidence[full]
    assert ((conf >= bins.edges[:-1][full]) & (conf <= bins.edges[1:][full])).all()
    acc = (bins.accuracy * bins.counts).sum() / 500
    assert float(acc) == pytest.approx(float((logits.argmax(1) == target).double().mean()))


def test_reliability_diagram_returns_a_figure():
    logits, target = _random_case(6, n=500, c=10)
    fig = metrics.reliability_diagram(metrics.reliability_bins((3 * logits).softmax(1), target))
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title().startswith("ECE ")
    matplotlib.pyplot.close(fig)


def _labels_from(logits: torch.Tensor, temperature: float, seed: int) -> torch.Tensor:
    """Labels drawn from softmax(logits / temperature): then ``temperature`` is the right T."""
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial((logits / temperature).softmax(1), 1, generator=g)[:, 0]


@pytest.mark.parametrize("true_t", [2.5, 0.6])
def test_temperature_scaling_recovers_a_known_temperature(true_t):
    g = torch.Generator().manual_seed(7)
    logits = 3 * torch.randn(20000, 10, generator=g)
    target = _labels_from(logits, true_t, seed=8)
    fitted = metrics.fit_temperature(logits, target)
    assert fitted == pytest.approx(true_t, rel=0.05)


def test_temperature_scaling_finds_the_minimum_of_the_nll():
    g = torch.Generator().manual_seed(9)
    logits = 2 * torch.randn(3000, 10, generator=g)
    target = _labels_from(logits, 1.7, seed=10)
    fitted = metrics.fit_temperature(logits, target)
    grid = torch.linspace(0.5, 5, 451).tolist()
    best = min(grid, key=lambda t: metrics.nll(logits, target, t))
    assert fitted == pytest.approx(best, abs=0.011)
    assert metrics.nll(logits, target, fitted) <= metrics.nll(logits, target, best) + 1e-12


def test_temperature_scaling_lowers_nll_and_ece_of_overconfident_logits():
    g = torch.Generator().manual_seed(11)
    calibrated = 1.5 * torch.randn(5000, 10, generator=g)
    target = _labels_from(calibrated, 1.0, seed=12)
    overconfident = 4 * calibrated
    t = metrics.fit_temperature(overconfident, target)
    assert t > 1   # softening, since the logits were sharpened
    assert metrics.nll(overconfident, target, t) < metrics.nll(overconfident, target) - 0.1
    before = metrics.expected_calibration_error(overconfident.softmax(1), target)
    after = metrics.expected_calibration_error((overconfident / t).softmax(1), target)
    assert after < before / 2
    # The argmax, and so the accuracy, is unchanged.
    assert torch.equal((overconfident / t).argmax(1), overconfident.argmax(1))
