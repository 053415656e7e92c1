"""evakit.losses against cross-entropy, the published formulas and hand-worked cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from evakit import losses
from evakit.errors import ArgumentError


def _case(seed: int, n: int = 257, c: int = 10):
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(n, c, generator=g), torch.randint(c, (n,), generator=g)


@pytest.mark.parametrize("seed", range(5))
def test_focal_loss_with_gamma_0_is_cross_entropy(seed):
    logits, target = _case(seed)
    # Per sample the two are the same float operations, so bit-identical ...
    assert torch.equal(losses.focal_loss(logits, target, gamma=0, reduction="none"),
                       F.cross_entropy(logits, target, reduction="none"))
    # ... and the means differ at most by float32 summation order.
    torch.testing.assert_close(losses.focal_loss(logits, target, gamma=0),
                               F.cross_entropy(logits, target), rtol=1e-6, atol=0)
    w = torch.rand(10, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(losses.focal_loss(logits, target, gamma=0, alpha=w, reduction="none"),
                       F.cross_entropy(logits, target, weight=w, reduction="none"))


def test_focal_loss_by_hand():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]))
    target = torch.tensor([0, 2])
    alpha = [0.25, 1.0, 2.0]
    # −α[y] · (1 − p_t)^γ · log p_t with p_t = 0.7 and 0.3, γ = 2.
    expected = [-0.25 * 0.3 ** 2 * math.log(0.7), -2.0 * 0.7 ** 2 * math.log(0.3)]
    got = losses.focal_loss(logits, target, gamma=2, alpha=alpha, reduction="none")
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    assert float(losses.focal_loss(logits, target, gamma=2, alpha=alpha)) == \
        pytest.approx(sum(expected) / 2, rel=1e-5)
    assert float(losses.focal_loss(logits, target, gamma=2, alpha=alpha, reduction="sum")) == \
        pytest.approx(sum(expected), rel=1e-5)


def test_focal_loss_down_weights_easy_samples_more_than_hard_ones():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.5]])   # easy (p_t ≈ 0.98) and hard (p_t ≈ 0.38)
    target = torch.tensor([0, 0])
    ratio = (losses.focal_loss(logits, target, gamma=2, reduction="none")
             / F.cross_entropy(logits, target, reduction="none"))
    assert ratio[0] < 0.001 < 0.3 < ratio[1]


def test_focal_loss_module_moves_its_weights_and_matches_the_function():
    logits, target = _case(3)
    alpha = losses.class_balanced_weights(list(range(10, 110, 10)), 0.99)
    module = losses.FocalLoss(gamma=1.5, alpha=alpha).to(torch.float64)
    assert "alpha" in dict(module.named_buffers())
    torch.testing.assert_close(module(logits, target),
                               losses.focal_loss(logits, target, gamma=1.5, alpha=alpha))
    assert "gamma=1.5" in repr(module)


def test_focal_loss_gradient_is_finite_and_flows_to_the_logits():
    logits, target = _case(4)
    logits.requires_grad_(True)
    losses.focal_loss(logits, target, gamma=2).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------
# Class weights


def test_effective_number_and_class_balanced_weights_by_hand():
    # counts 1, 2, 3 and β = 1/2: E = 1, (1 − 1/4)/(1/2) = 3/2, (1 − 1/8)/(1/2) = 7/4.
    assert losses.effective_number([1, 2, 3], 0.5).tolist() == pytest.approx([1, 1.5, 1.75])
    # 1/E = 1, 2/3, 4/7, summing to 47/21; times 3 / (47/21) = 63/47.
    expected = [63 / 47, 42 / 47, 36 / 47]
    w = losses.class_balanced_weights([1, 2, 3], beta=0.5)
    assert w.tolist() == pytest.approx(expected, rel=1e-6)
    assert float(w.sum()) == pytest.approx(3)


def test_class_balanced_weights_follow_the_formula_for_a_long_tail():
    counts, beta = [500, 50, 5], 0.99
    e = [(1 - beta ** n) / (1 - beta) for n in counts]
    inverse = [1 / v for v in e]
    expected = [3 * v / sum(inverse) for v in inverse]
    assert losses.class_balanced_weights(counts, beta).tolist() == pytest.approx(expected,
                                                                                rel=1e-6)
    # The rarest class weighs most, but far less than 100× the first: E_500 saturates near 100.
    assert expected[2] / expected[0] == pytest.approx(e[0] / e[2], rel=1e-9)
    assert 20 < expected[2] / expected[0] < 21   # 99.3 / 4.90, where 1/n would give 100


def test_inverse_frequency_weights_by_hand_and_as_the_beta_limit():
    assert losses.inverse_frequency_weights([1, 2, 3]).tolist() == \
        pytest.approx([18 / 11, 9 / 11, 6 / 11], rel=1e-6)
    counts = [5000, 500, 50]
    torch.testing.assert_close(losses.class_balanced_weights(counts, beta=1 - 1e-9),
                               losses.inverse_frequency_weights(counts), rtol=1e-4, atol=0)
    assert losses.class_balanced_weights(counts, beta=0).tolist() == [1.0, 1.0, 1.0]


def test_class_balanced_loss_is_weighted_cross_entropy_or_focal():
    logits, target = _case(5, n=64, c=3)
    counts, beta = [100, 10, 1], 0.9
    e = [(1 - beta ** n) / (1 - beta) for n in counts]
    w = torch.tensor([1 / v for v in e])
    w = 3 * w / w.sum()
    per_sample = F.cross_entropy(logits, target, reduction="none")
    expected_ce = float((w[target] * per_sample).sum() / len(target))
    assert float(losses.class_balanced_loss(logits, target, counts, beta=beta)) == \
        pytest.approx(expected_ce, rel=1e-5)
    pt = torch.exp(-per_sample)
    expected_focal = float((w[target] * (1 - pt) ** 2 * per_sample).mean())
    assert float(losses.class_balanced_loss(logits, target, counts, beta=beta, gamma=2)) == \
        pytest.approx(expected_focal, rel=1e-5)


def test_class_counts():
    assert losses.class_counts(torch.tensor([0, 2, 2, 0, 2])).tolist() == [2, 0, 3]
    assert losses.class_counts(torch.tensor([1, 1]), num_classes=4).tolist() == [0, 2, 0, 0]


# ------------------------------------------------------------------------------------------------
# Long-tailed subsets

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def _balanced(per_class: int, classes: int, seed: int = 0) -> torch.Tensor:
    labels = torch.arange(classes).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def test_long_tailed_counts_are_the_published_cifar_lt_sizes():
    assert losses.long_tailed_counts(5000, 10, 100) == CIFAR10_LT_100
    assert sum(losses.long_tailed_counts(5000, 10, 100)) == 12406
    assert sum(losses.long_tailed_counts(5000, 10, 10)) == 20431
    assert sum(losses.long_tailed_counts(500, 100, 100)) == 10847    # CIFAR-100-LT
    assert losses.long_tailed_counts(7, 4, 1) == [7, 7, 7, 7]


def test_long_tailed_indices_on_cifar10_sized_labels():
    labels = _balanced(5000, 10)
    idx = losses.long_tailed_indices(labels, ratio=100, seed=0)
    assert torch.bincount(labels[idx], minlength=10).tolist() == CIFAR10_LT_100
    assert len(idx.unique()) == len(idx) == 12406
    assert torch.equal(idx, idx.sort().values)
    assert 0 <= int(idx.min()) and int(idx.max()) < len(labels)


def test_long_tailed_indices_are_deterministic_for_a_seed():
    labels = _balanced(500, 10)
    a = losses.long_tailed_indices(labels, ratio=10, seed=1)
    assert torch.equal(a, losses.long_tailed_indices(labels, ratio=10, seed=1))
    b = losses.long_tailed_indices(labels, ratio=10, seed=2)
    assert len(a) == len(b) and not torch.equal(a, b)


def test_a_nearly_balanced_set_is_cut_from_its_smallest_class():
    labels = torch.cat([_balanced(100, 3), torch.tensor([0, 0, 1])])   # 102, 101, 100
    idx = losses.long_tailed_indices(labels, ratio=4, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [100, 50, 25]


@pytest.mark.parametrize("call, message", [
    (lambda: losses.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2])), "3 labels for 4"),
    (lambda: losses.focal_loss(torch.randn(2, 3), torch.tensor([0, 3])), r"\[0, 2\]"),
    (lambda: losses.focal_loss(torch.randn(2, 3), torch.tensor([0, 1]), gamma=-1), "gamma"),
    (lambda: losses.focal_loss(torch.randn(2, 3), torch.tensor([0, 1]), alpha=[1, 1]),
     "one non-negative value per class"),
    (lambda: losses.focal_loss(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg"),
     "reduction"),
    (lambda: losses.class_balanced_weights([10, 0, 3]), "positive number"),
    (lambda: losses.class_balanced_weights([10, 5], beta=1.0), r"\[0, 1\)"),
    (lambda: losses.class_balanced_loss(torch.randn(2, 3), torch.tensor([0, 1]), [5, 4]),
     "2 classes, the logits 3"),
    (lambda: losses.long_tailed_counts(5000, 10, 0.5), "at least 1"),
    (lambda: losses.long_tailed_indices(torch.tensor([0, 0, 2, 2])), r"missing \[1\]"),
    (lambda: losses.long_tailed_indices(torch.tensor([0.0, 1.0])), "integer"),
])
def test_bad_input_is_one_clear_sentence(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()
