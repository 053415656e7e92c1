"""Benchmarks that print a ratio against a baseline measured in the same process.

``loader``: images per second of evakit's in-memory batch loader (uint8 tensor on the device,
normalize and rotate whole batches) against torchvision's ``DataLoader`` over PIL images with
``transforms.RandomRotation`` — the same augmentation, image by image.
``s04``: wall time per epoch and time to reach 99.4 % of session 4's best step on this machine.
``cifar``: images per second of session 8's augmentation (crop, flip, cutout) delivered by
evakit's tensor loader and by a ``DataLoader`` over albumentations, alone and feeding the custom
ResNet's training step; on a GPU the step runs channels-last under bfloat16 autocast.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from evakit import augment, data, models, recipes


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
                       augment=augment.random_rotation(7.0))
    rates = [_time(f"evakit Loader ({device})", ours, images)]
    pipeline = transforms.Compose([transforms.RandomRotation(7), transforms.ToTensor(),
                                   transforms.Normalize(mnist.mean, mnist.std)])
    for n in workers:
        dl = torch.utils.data.DataLoader(_PILMnist(mnist.images, mnist.labels, pipeline),
                                         batch_size=batch_size, shuffle=True, num_workers=n)
        moved = ((x.to(device), y.to(device)) for x, y in dl)
        rates.append(_time(f"torchvision DataLoader + transforms, {n} workers", moved, images))
    return rates


def _cifar_images(n: int) -> tuple[data.ImageSet, str]:
    """Full CIFAR-10 training images when they are here, else a synthetic set of its shape
    (content does not change a speed figure; the printout says which was timed)."""
    try:
        found = data.load("cifar10", "train", fast=False)
        return found.subset(n), found.source
    except data.DataUnavailable:
        return (data.synthetic("synthetic-cifar10", n),
                f"synthetic uint8 tensors of CIFAR-10's shape ({n:,}×3×32×32; full CIFAR-10 "
                "is not here)")


def _albumentations_pipeline(mean: tuple[float, ...], std: tuple[float, ...]):
    """Session 8's augmentation written with albumentations 2.x, image by image."""
    import albumentations as A
    import cv2
    from albumentations.pytorch import ToTensorV2

    fill = tuple(round(255 * m) for m in mean)
    return A.Compose([
        A.PadIfNeeded(40, 40, border_mode=cv2.BORDER_REFLECT_101),
        A.RandomCrop(32, 32),
        A.HorizontalFlip(),
        A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(8, 8),
                        hole_width_range=(8, 8), fill=fill),
        A.Normalize(mean, std),
        ToTensorV2(),
    ], strict=True)


def _train_steps(name: str, batches, model: torch.nn.Module, limit: int,
                 device: torch.device) -> Rate:
    """Images per second of forward + backward + SGD step on ``batches`` (after one warm-up)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    gpu = device.type == "cuda"
    seen, start = 0, None
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        if gpu:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, torch.bfloat16, enabled=gpu):
            loss = torch.nn.functional.cross_entropy(model(x), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if start is None:           # the first step pays for allocation and kernel choice
            if gpu:
                torch.cuda.synchronize()
            start = time.perf_counter()
            continue
        seen += len(x)
        if seen >= limit:
            break
    if gpu:
        torch.cuda.synchronize()
    return Rate(name, seen, time.perf_counter() - start)


def cifar(images: int = 10_000, step_images: int | None = None, batch_size: int = 512,
          device: str | None = None, workers: tuple[int, ...] = (0, 2)) -> dict:
    """Time session 8's input pipeline and training step, evakit's way and the usual way.

    Args:
        images: images each loader delivers when timed alone.
        step_images: images pushed through the training step per pipeline (default: 20 000 on
            a GPU, 512 on a CPU, where one step takes seconds).
        batch_size: images per batch.
        device: training device (default: the fastest here).
        workers: ``num_workers`` settings tried for the albumentations ``DataLoader``.

    Returns:
        ``{"source", "device", "loader": [Rate…], "step": [Rate…]}``; the first Rate of each
        list is evakit's.
    """
    device = torch.device(device) if device else recipes.train.pick_device()
    step_images = step_images or (20_000 if device.type == "cuda" else 512)
    cifar_set, source = _cifar_images(max(images, step_images + batch_size))
    recipe = recipes.get("s08/custom-resnet")
    ours = data.Loader(cifar_set, batch_size, shuffle=True, device=device,
                       augment=recipes.train_augment(recipe, cifar_set.mean), drop_last=True)
    pipeline = _albumentations_pipeline(cifar_set.mean, cifar_set.std)

    def theirs(n: int):
        dl = torch.utils.data.DataLoader(
            augment.AlbumentationsDataset(cifar_set.images, cifar_set.labels, pipeline),
            batch_size=batch_size, shuffle=True, num_workers=n, drop_last=True,
            pin_memory=device.type == "cuda")
        return ((x.to(device), y.to(device)) for x, y in dl)

    baselines = {n: _time(f"DataLoader + albumentations, {n} workers", theirs(n), images)
                 for n in workers}
    result = {"source": source, "device": str(device), "step": [],
              "loader": [_time(f"evakit Loader ({device})", ours, images), *baselines.values()]}
    fastest = max(baselines, key=lambda n: baselines[n].per_second)
    model = models.create("s08/custom-resnet").to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    result["step"].append(_train_steps("custom ResNet step fed by evakit Loader", ours, model,
                                       step_images, device))
    result["step"].append(_train_steps(f"custom ResNet step fed by DataLoader + albumentations,"
                                       f" {fastest} workers", theirs(fastest), model,
                                       step_images, device))
    return result


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
