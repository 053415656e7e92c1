"""Benchmarks that print a ratio against a baseline measured in the same process.

``loader``: images per second of evakit's in-memory batch loader (uint8 tensor on the device,
normalize and rotate whole batches) against torchvision's ``DataLoader`` over PIL images with
``transforms.RandomRotation`` — the same augmentation, image by image.
``s04``: wall time per epoch and time to reach 99.4 % of session 4's best step on this machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from evakit import data, recipes


@dataclass
class Rate:
    """One measured pipeline."""

    name: str
    images: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.images / self.seconds


class _PILMnist(torch.utils.data.Dataset):
    """MNIST served the way torchvision's dataset class serves it: a PIL image per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images[:, 0].numpy(), labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


def _time(name: str, batches, limit: int) -> Rate:
    seen, start = 0, time.perf_counter()
    for x, _ in batches:
        seen += len(x)
        if seen >= limit:
            break
    return Rate(name, seen, time.perf_counter() - start)


def loader(images: int = 20_000, batch_size: int = 128, device: str | None = None,
           workers: tuple[int, ...] = (0, 2)) -> list[Rate]:
    """Time evakit's loader and torchvision's pipeline on the same MNIST images.

    Args:
        images: how many training images each pipeline delivers (rotated by up to ±7°).
        batch_size: images per batch.
        device: where evakit keeps the data (default: the training device); torchvision's
            batches are moved there too, so both end where training needs them.
        workers: ``num_workers`` settings tried for the torchvision ``DataLoader``.
    """
    from torchvision import transforms

    device = torch.device(device) if device else recipes.train.pick_device()
    mnist = data.load("mnist", "train", fast=False)
    ours = data.Loader(mnist, batch_size, shuffle=True, device=device,
                       augment=data.random_rotation(7.0))
    rates = [_time(f"evakit Loader ({device})", ours, images)]
    pipeline = transforms.Compose([transforms.RandomRotation(7), transforms.ToTensor(),
                                   transforms.Normalize(mnist.mean, mnist.std)])
    for n in workers:
        dl = torch.utils.data.DataLoader(_PILMnist(mnist.images, mnist.labels, pipeline),
                                         batch_size=batch_size, shuffle=True, num_workers=n)
        moved = ((x.to(device), y.to(device)) for x, y in dl)
        rates.append(_time(f"torchvision DataLoader + transforms, {n} workers", moved, images))
    return rates


def s04(recipe: str = "s04/step3", max_epochs: int | None = None,
        device: str | None = None) -> dict:
    """Train session 4's best step; return seconds per epoch and time to 99.4 % test accuracy."""
    run = recipes.run(recipe, epochs=max_epochs, device=device, verbose=True)
    h = run.history
    elapsed, reached = 0.0, None
    for epoch, (seconds, acc) in enumerate(zip(h.seconds, h.test_acc, strict=True), 1):
        elapsed += seconds
        if reached is None and acc >= 99.4:
            reached = (epoch, elapsed)
    return {"recipe": recipe, "device": run.device, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "epochs": len(h), "seconds_per_epoch": sum(h.seconds) / len(h),
            "reached_99_4": reached, "final_test_acc": h.test_acc[-1]}
