"""Augmentations applied to whole batches of tensors, on the batch's device.

Each builder returns an :data:`Augment`: a function of a float batch N×C×H×W in [0, 1] and a
``torch.Generator`` that returns the augmented batch. Random draws come from that generator
(on the CPU) so a seeded :class:`evakit.data.Loader` augments identically on every machine; the
pixel work happens on the batch's device, one call per batch, with no per-image PIL.

Label-mixing augmentations (:func:`mixup`, :func:`ricap`) also change the targets, so they take
and return labels and are trained with :func:`mixed_loss`.

:class:`AlbumentationsDataset` is the other road: albumentations transforms applied image by
image in a ``Dataset`` — what most courses do, and the baseline ``evakit bench cifar`` times.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    import albumentations as A

    from evakit.data import ImageSet
    from evakit.recipes import Recipe

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _symmetric(n: int, limit: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws uniform in ±``limit``; zeros without drawing when ``limit`` is 0, so a
    transform that does not shift, say, leaves the generator as a rotation-only one would."""
    if not limit:
        return torch.zeros(n)
    return (torch.rand(n, generator=generator) * 2 - 1) * limit


def _fill(fill: float | Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """``fill`` as a tensor that broadcasts over ``x`` (one value, or one per channel)."""
    value = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    return value.view(1, -1, 1, 1) if value.ndim else value


def compose(*augments: Augment) -> Augment:
    """Apply ``augments`` one after another."""
    def composed(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for augment in augments:
            x = augment(x, generator)
        return x
    return composed


def random_rotation(degrees: float) -> Augment:
    """Rotate each image by a uniform angle in ±``degrees``; pixels rotated in from outside are
    0 (black, as MNIST's background). :func:`random_affine` with rotation only."""
    return random_affine(degrees=degrees)


def random_affine(*, degrees: float = 0.0, shift: float = 0.0, scale: float = 0.0,
                  fill: float | Sequence[float] = 0.0, p: float = 1.0) -> Augment:
    """Shift, scale and rotate each image at random (albumentations' ``Affine`` on a batch).

    The whole batch is transformed at once with ``affine_grid`` / ``grid_sample``.

    Args:
        degrees: rotation drawn uniformly in ±``degrees``.
        shift: translation drawn uniformly in ±``shift`` × the image size, per axis.
        scale: zoom factor drawn uniformly in [1 − ``scale``, 1 + ``scale``].
        fill: value of pixels that come in from outside the image (one, or one per channel).
        p: probability that an image is transformed at all (albumentations' ``p``).
    """
    _check_probability(p)
    if not 0 <= degrees <= 180:
        raise ValueError(f"degrees must be between 0 and 180, got {degrees!r}")
    if not 0 <= shift < 1 or not 0 <= scale < 1:
        raise ValueError(f"shift and scale must be in [0, 1), got {shift!r} and {scale!r}")
    limit = degrees * torch.pi / 180

    def transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)
        angle = _symmetric(n, limit, generator)
        zoom = 1 + _symmetric(n, scale, generator)
        tx, ty = _symmetric(n, 2 * shift, generator), _symmetric(n, 2 * shift, generator)
        if p < 1:               # the images left alone get the identity transform
            keep = (torch.rand(n, generator=generator) >= p).float()
            angle, tx, ty = angle * (1 - keep), tx * (1 - keep), ty * (1 - keep)
            zoom = zoom * (1 - keep) + keep
        cos, sin = angle.cos() / zoom, angle.sin() / zoom
        # affine_grid maps output to input coordinates: zooming in divides, shifting subtracts.
        theta = torch.stack([torch.stack([cos, -sin, -tx], 1),
                             torch.stack([sin, cos, -ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
        value = _fill(fill, x)
        return F.grid_sample(x - value, grid, align_corners=False) + value

    return transform


def random_crop(padding: int, mode: str = "reflect") -> Augment:
    """Pad by ``padding`` on every side, then cut each image back to its size at a random offset.

    Args:
        padding: pixels added on each side (the crop moves the image by up to this much).
        mode: ``"reflect"``, ``"replicate"`` or ``"constant"`` (zeros), as in ``F.pad``.
    """
    if padding < 0:
        raise ValueError(f"padding must be ≥ 0, got {padding!r}")

    def crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        padded = F.pad(x, (padding,) * 4, mode=mode)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]   # N×H×1
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]   # N×1×W
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)

    return crop


def _check_probability(p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")


def random_flip(p: float = 0.5) -> Augment:
    """Mirror each image left–right with probability ``p``."""
    _check_probability(p)

    def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mirror = (torch.rand(len(x), generator=generator) < p).to(x.device)
        return torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)

    return flip


def _square_mask(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """N×1×H×W, True inside a size×size square centred anywhere in the image (it may be cut)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
    top, left = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys >= top.view(-1, 1, 1)) & (ys < (top + size).view(-1, 1, 1))
              & (xs >= left.view(-1, 1, 1)) & (xs < (left + size).view(-1, 1, 1)))
    return inside[:, None]


def cutout(size: int, fill: float | Sequence[float] = 0.0, p: float = 1.0) -> Augment:
    """Cutout (DeVries & Taylor 2017): blank one ``size``×``size`` square per image.

    The square's centre is uniform over the image, so near a border only part of it lands —
    as in the paper. ``fill`` is one value or one per channel (e.g. the dataset mean); ``p`` is
    the probability that an image is cut at all.
    """
    if size < 1:
        raise ValueError(f"cutout size must be a positive integer, got {size!r}")
    _check_probability(p)

    def cut(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mask = _square_mask(x, size, generator)
        if p < 1:
            mask &= (torch.rand(len(x), generator=generator) < p).to(x.device).view(-1, 1, 1, 1)
        return torch.where(mask, _fill(fill, x), x)

    return cut


def patch_gaussian(size: int, sigma: float) -> Augment:
    """Patch Gaussian (Lopes et al. 2019): Gaussian noise inside one random square per image.

    Each image draws its noise level uniformly in [0, ``sigma``]; the result is clipped to
    [0, 1]. It sits between Cutout (size small, noise huge) and Gaussian noise (size = image).
    """
    if size < 1 or sigma < 0:
        raise ValueError(f"need size ≥ 1 and sigma ≥ 0, got {size!r} and {sigma!r}")

    def noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mask = _square_mask(x, size, generator)
        level = (torch.rand(len(x), generator=generator) * sigma).view(-1, 1, 1, 1)
        gauss = torch.randn(x.shape, generator=generator) * level
        return torch.where(mask, (x + gauss.to(x.device)).clamp(0, 1), x)

    return noise


def _beta(alpha: float, generator: torch.Generator, n: int = 1) -> np.ndarray:
    """Beta(alpha, alpha) draws seeded from ``generator`` (torch has no seeded Beta sampler)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return np.random.default_rng(seed).beta(alpha, alpha, n)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float,
          generator: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor], list[float]]:
    """mixup (Zhang et al. 2018): blend the batch with a shuffled copy of itself.

    Returns:
        The blended images, the two label tensors, and their weights (λ, 1 − λ) for
        :func:`mixed_loss`; λ ~ Beta(``alpha``, ``alpha``).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    lam = float(_beta(alpha, generator)[0])
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], [y, y[perm]], [lam, 1 - lam]


def ricap(x: torch.Tensor, y: torch.Tensor, beta: float,
          generator: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor], list[float]]:
    """RICAP (Takahashi et al. 2018): tile four crops of four images into one.

    A boundary point (w, h) ~ Beta(``beta``, ``beta``) splits the image into four rectangles;
    each is filled with a random crop of that size from a shuffled copy of the batch.

    Returns:
        The patched images, four label tensors, and the four area fractions as weights.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta!r}")
    _, _, h, w = x.shape
    bw, bh = (int(round(s * b)) for s, b in zip((w, h), _beta(beta, generator, 2), strict=True))
    sizes = [(bw, bh), (w - bw, bh), (bw, h - bh), (w - bw, h - bh)]
    corners = [(0, 0), (bw, 0), (0, bh), (bw, bh)]
    out, labels, weights = torch.empty_like(x), [], []
    for (cw, ch), (left, top) in zip(sizes, corners, strict=True):
        perm = torch.randperm(len(x), generator=generator).to(x.device)
        ox = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
        oy = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
        out[:, :, top:top + ch, left:left + cw] = x[perm, :, oy:oy + ch, ox:ox + cw]
        labels.append(y[perm])
        weights.append(cw * ch / (w * h))
    return out, labels, weights


def mixed_loss(logits: torch.Tensor, labels: Sequence[torch.Tensor],
               weights: Sequence[float]) -> torch.Tensor:
    """Cross-entropy against several label sets, weighted (mixup: λ and 1 − λ; RICAP: areas)."""
    return sum(wt * F.cross_entropy(logits, y) for y, wt in zip(labels, weights, strict=True))


class AlbumentationsDataset(torch.utils.data.Dataset):
    """uint8 images N×C×H×W served one at a time through an albumentations transform.

    The transform receives an H×W×C uint8 array (albumentations' convention) and must end in
    ``Normalize`` + ``ToTensorV2`` so that items are float C×H×W tensors, as a model expects.

    Args:
        images: uint8 tensor N×C×H×W (an :class:`evakit.data.ImageSet`'s ``images``).
        labels: int64 tensor N.
        transform: an ``albumentations.Compose``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 N×C×H×W tensor, got {images.dtype} with "
                             f"shape {tuple(images.shape)}")
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(image=self.images[i])["image"], int(self.labels[i])


def for_recipe(recipe: Recipe, mean: tuple[float, ...]) -> Augment | None:
    """The recipe's training augmentation as one batch function (None when it has none).

    Order: crop, flip, affine (or plain rotation), cutout filled with the dataset ``mean`` —
    the same steps and probabilities as :func:`albumentations_pipeline`.
    """
    steps = []
    if recipe.crop_padding:
        steps.append(random_crop(recipe.crop_padding))
    if recipe.flip:
        steps.append(random_flip())
    if recipe.shift or recipe.scale:
        steps.append(random_affine(degrees=recipe.rotation, shift=recipe.shift,
                                   scale=recipe.scale, fill=mean, p=recipe.augment_p))
    elif recipe.rotation:
        steps.append(random_rotation(recipe.rotation))
    if recipe.cutout:
        steps.append(cutout(recipe.cutout, fill=mean, p=recipe.augment_p))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else compose(*steps)


def albumentations_pipeline(recipe: Recipe, mean: tuple[float, ...],
                            std: tuple[float, ...]) -> A.Compose:
    """The recipe's augmentation written with albumentations 2.x, image by image.

    Steps and probabilities match :func:`for_recipe`: pad-and-crop, ``HorizontalFlip``,
    ``ShiftScaleRotate``, ``CoarseDropout`` with one hole filled with the dataset mean, then
    ``Normalize`` and ``ToTensorV2``.
    """
    import albumentations as A
    import cv2
    from albumentations.pytorch import ToTensorV2

    fill = tuple(round(255 * m) for m in mean)
    steps = []
    if recipe.crop_padding:
        size = 32 + 2 * recipe.crop_padding
        steps += [A.PadIfNeeded(size, size, border_mode=cv2.BORDER_REFLECT_101),
                  A.RandomCrop(32, 32)]
    if recipe.flip:
        steps.append(A.HorizontalFlip(p=0.5))
    if recipe.shift or recipe.scale or recipe.rotation:
        steps.append(A.ShiftScaleRotate(shift_limit=recipe.shift, scale_limit=recipe.scale,
                                        rotate_limit=recipe.rotation, fill=fill,
                                        border_mode=cv2.BORDER_CONSTANT, p=recipe.augment_p))
    if recipe.cutout:
        hole = (recipe.cutout, recipe.cutout)
        steps.append(A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=hole,
                                     hole_width_range=hole, fill=fill, p=recipe.augment_p))
    pipeline = A.Compose([*steps, A.Normalize(mean, std), ToTensorV2()], strict=True)
    # One pair of generators shared by every step (Compose(seed=) would seed each step with
    # the same seed, correlating their draws), and a state a checkpoint can save.
    pipeline.set_random_state(np.random.default_rng(recipe.seed), random.Random(recipe.seed))
    return pipeline


class AlbumentationsLoader:
    """Training batches through an albumentations pipeline, one image at a time.

    A ``DataLoader`` (no worker processes, so the pipeline's seeded generators are the ones
    that draw) over :class:`AlbumentationsDataset`; batches move to ``device``. Its state —
    the shuffling generator and the pipeline's generators — is saved in checkpoints, so a
    resumed run draws the same batches.

    Args:
        images: the training set (uint8).
        transform: an albumentations ``Compose`` ending in ``Normalize`` + ``ToTensorV2``.
        batch_size: images per batch.
        device: where batches go.
        seed: seed of the shuffling generator.
    """

    def __init__(self, images: ImageSet, transform, batch_size: int,
                 device: torch.device, seed: int) -> None:
        self.transform = transform
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = torch.utils.data.DataLoader(
            AlbumentationsDataset(images.images, images.labels, transform),
            batch_size=batch_size, shuffle=True, generator=self.generator)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            yield x.to(self.device), y.to(self.device)

    def state_dict(self) -> dict:
        """Shuffling and augmentation generators, for an exact resume."""
        py_state = self.transform.py_random.getstate()
        return {"generator": self.generator.get_state(),
                "numpy": self.transform.random_generator.bit_generator.state,
                "python": [py_state[0], list(py_state[1]), py_state[2]]}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.transform.random_generator.bit_generator.state = state["numpy"]
        version, internal, gauss = state["python"]
        self.transform.py_random.setstate((version, tuple(internal), gauss))


def albumentations_loader(recipe: Recipe, images: ImageSet,
                          device: torch.device) -> AlbumentationsLoader:
    """Training batches of ``images`` through the recipe's albumentations pipeline."""
    return AlbumentationsLoader(images, albumentations_pipeline(recipe, images.mean, images.std),
                                recipe.batch_size, device, recipe.seed)
