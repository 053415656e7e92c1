"""Batch augmentations: each does what its paper / albumentations' transform does, on a batch."""

import warnings

import albumentations as A
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evakit import augment, data, recipes


def batch(n: int = 6, c: int = 3, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, c, size, size), generator=torch.Generator().manual_seed(seed))


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crop_output_is_a_window_of_the_reflect_padded_image():
    x, p = batch(), 3
    out = augment.random_crop(p)(x, gen())
    padded = F.pad(x, (p,) * 4, mode="reflect")
    shifted = 0
    for img, pad in zip(out, padded, strict=True):
        offsets = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                   if torch.equal(pad[:, dy:dy + 12, dx:dx + 12], img)]
        assert offsets, "a crop is not a window of the padded image"
        shifted += offsets[0] != (p, p)
    assert shifted > 0
    assert torch.equal(augment.random_crop(0)(x, gen()), x)


def test_flip_mirrors_all_or_none_at_the_extremes_and_some_in_between():
    x = batch(n=64)
    assert torch.equal(augment.random_flip(1.0)(x, gen()), x.flip(3))
    assert torch.equal(augment.random_flip(0.0)(x, gen()), x)
    out = augment.random_flip(0.5)(x, gen())
    mirrored = sum(torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True))
    assert 16 < mirrored < 48


def test_cutout_fills_at_most_one_square_per_image_with_the_given_values():
    x, mean = batch(n=32, size=16), (0.1, 0.2, 0.3)
    out = augment.cutout(4, fill=mean)(x, gen())
    changed = (out != x).any(1)
    assert changed.flatten(1).sum(1).max() <= 16 and changed.sum() > 0
    for c, m in enumerate(mean):
        assert torch.allclose(out[:, c][changed], torch.tensor(m))
    with pytest.raises(ValueError, match="cutout size"):
        augment.cutout(0)


def test_affine_is_the_identity_at_zero_and_brings_in_the_fill_when_it_shifts():
    x = batch()
    same = augment.random_affine()(x, gen())
    assert torch.allclose(same, x, atol=1e-5)
    out = augment.random_affine(shift=0.4, fill=0.5)(torch.zeros(8, 3, 12, 12), gen())
    assert torch.isclose(out, torch.tensor(0.5)).any(), "no fill came in from outside"
    with pytest.raises(ValueError, match="shift and scale"):
        augment.random_affine(shift=1.5)


def test_patch_gaussian_changes_only_one_square_and_stays_in_range():
    x = batch(n=16, size=16)
    out = augment.patch_gaussian(5, 0.5)(x, gen())
    changed = (out != x).any(1)
    assert changed.flatten(1).sum(1).max() <= 25
    assert out.min() >= 0 and out.max() <= 1


def test_mixup_blends_two_images_and_its_loss_weighs_both_labels():
    x, y = batch(n=8), torch.arange(8)
    mixed, labels, weights = augment.mixup(x, y, 0.4, gen())
    lam = weights[0]
    assert sum(weights) == pytest.approx(1)
    partner = x[labels[1]]  # y = arange, so a label is the index of the image it came from
    assert torch.allclose(mixed, lam * x + (1 - lam) * partner, atol=1e-6)
    logits = torch.randn(8, 10)
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, labels[1])
    assert torch.isclose(augment.mixed_loss(logits, labels, weights), expected)


def test_ricap_tiles_four_crops_whose_areas_are_the_label_weights():
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 1, 16, 16).contiguous()
    out, labels, weights = augment.ricap(x, torch.arange(8), 0.3, gen())
    assert len(labels) == 4 and sum(weights) == pytest.approx(1)
    # Each image's pixels come from the images its four labels name, in the weights' shares.
    for i in range(8):
        values, counts = out[i].unique(return_counts=True)
        shares = {int(v): int(c) / 256 for v, c in zip(values, counts, strict=True)}
        expected: dict[int, float] = {}
        for lab, wt in zip(labels, weights, strict=True):
            expected[int(lab[i])] = expected.get(int(lab[i]), 0) + wt
        expected = {k: v for k, v in expected.items() if v > 0}
        assert shares == pytest.approx(expected)


def test_albumentations_dataset_serves_normalized_tensors_and_refuses_floats():
    images = data.synthetic("synthetic-cifar10", 4).images
    pipeline = augment.albumentations_pipeline(recipes.get("s08/custom-resnet"),
                                               (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    ds = augment.AlbumentationsDataset(images, torch.zeros(4, dtype=torch.long), pipeline)
    x, label = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and label == 0
    with pytest.raises(ValueError, match="uint8 N×C×H×W"):
        augment.AlbumentationsDataset(images.float(), torch.zeros(4), pipeline)


def test_the_classic_coarse_dropout_line_is_refused_by_strict_and_ignored_without():
    # albumentations 2.x renamed CoarseDropout's arguments; the 1.x line is dropped with a
    # warning and defaults used instead — strict=True turns that into an error.
    with pytest.raises(ValueError, match="not valid for transform CoarseDropout"):
        A.CoarseDropout(max_holes=1, max_height=16, max_width=16, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy = A.CoarseDropout(max_holes=1, max_height=16, max_width=16, p=1)
    image = np.full((32, 32, 3), 200, np.uint8)
    assert (legacy(image=image)["image"] != image).any(2).sum() < 16 * 16
    current = A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16),
                              hole_width_range=(16, 16), fill=(125, 123, 114), p=1)
    assert (current(image=image)["image"] != image).any(2).sum() == 16 * 16


def test_rotation_is_affine_with_rotation_only_and_draws_one_number_per_image():
    # The MNIST records were made with one draw per image; a shift or zoom left at 0 must not
    # draw, or a rotation-only recipe would shuffle differently than when it was recorded.
    x = batch(n=16)
    rotated = augment.random_rotation(7.0)(x, gen(5))
    assert torch.equal(rotated, augment.random_affine(degrees=7.0)(x, gen(5)))
    after, reference = gen(5), gen(5)
    augment.random_rotation(7.0)(x, after)
    torch.rand(16, generator=reference)
    assert torch.equal(after.get_state(), reference.get_state())


def test_session6_batch_and_albumentations_paths_apply_the_same_steps_as_often():
    recipe = recipes.get("s06/cifar-net")
    mean = (0.25, 0.5, 0.75)
    x = torch.full((4000, 3, 32, 32), 0.9)
    g = torch.Generator().manual_seed(0)
    cut = augment.cutout(recipe.cutout, fill=mean, p=recipe.augment_p)(x, g)
    moved = augment.random_affine(degrees=recipe.rotation, shift=recipe.shift,
                                  scale=recipe.scale, fill=mean, p=recipe.augment_p)(x, g)
    # With p = 0.5 about half the images get a hole, and about half are moved at all.
    assert (cut != 0.9).flatten(1).any(1).float().mean().item() == pytest.approx(0.5, abs=0.04)
    changed = ((moved - 0.9).abs() > 1e-4).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.5, abs=0.04)
    pipeline = augment.albumentations_pipeline(recipe, mean, (1.0, 1.0, 1.0))
    kinds = [type(t).__name__ for t in pipeline.transforms]
    assert kinds == ["HorizontalFlip", "ShiftScaleRotate", "CoarseDropout", "Normalize",
                     "ToTensorV2"]
    assert [t.p for t in pipeline.transforms[:3]] == [0.5, recipe.augment_p, recipe.augment_p]


def test_albumentations_loader_resumes_with_the_same_batches():
    recipe = recipes.get("s06/cifar-net")
    images = data.synthetic("synthetic-cifar10", 64, seed=3)
    first = augment.albumentations_loader(recipe, images, torch.device("cpu"))
    next(iter(first))
    state = first.state_dict()
    expected = next(iter(first))[0]
    again = augment.albumentations_loader(recipe, images, torch.device("cpu"))
    again.load_state_dict(state)
    assert torch.equal(next(iter(again))[0], expected)
