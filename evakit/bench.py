"""Benchmarks that print a ratio against a baseline measured in the same process.

``loader``: images per second of evakit's in-memory batch loader (uint8 tensor on the device,
normalize and rotate whole batches) against torchvision's ``DataLoader`` over PIL images with
``transforms.RandomRotation`` — the same augmentation, image by image.
``s04``: wall time per epoch and time to reach 99.4 % of session 4's best step on this machine.
``cifar``: images per second of session 8's augmentation (crop, flip, cutout) delivered by
evakit's tensor loader and by a ``DataLoader`` over albumentations, alone and feeding the custom
ResNet's training step (bf16 autocast + channels-last where bf16 is native).
``precision``: images per second of the CIFAR networks' training step in fp32 and in bf16 +
channels-last, and a short fp32-vs-bf16 parity run from the same seed.
``s08``: time per epoch and time to 90 % of session 8's recorded run, and its epoch here.
``speedrun``: images per second of session 8's speedrun, compiled and eager, against the custom
ResNet, and the floor no implementation can beat here: the FLOPs of a training step against this
CPU's matrix-product peak, all measured in the same process.
``gpt``: session 11's character GPT trained nanoGPT's way (its "baby" Shakespeare config) and
evakit's way in one process: tokens per second, and the training time to a held-out loss of
1.88 — the loss nanoGPT's README reports for that config after about three minutes on a laptop.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch

from evakit import augment, data, models, recipes, runner, train
from evakit.errors import ArgumentError


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

    device = runner.parse_device(device)
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


def _train_steps(name: str, batches, model: torch.nn.Module, limit: int,
                 device: torch.device, precision: train.Precision,
                 clock: Callable[[], float] = time.perf_counter) -> Rate:
    """Images per second of :func:`evakit.train.train_step` on ``batches`` (after a warm-up),
    in seconds of ``clock``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    precision.prepare(model.to(device).train())
    seen, start = 0, None
    for x, y in batches:
        train.train_step(model, x, y, optimizer, precision=precision)
        if start is None:           # the first step pays for allocation and kernel choice
            _sync(device)
            start = clock()
            continue
        seen += len(y)
        if seen >= limit:
            break
    _sync(device)
    return Rate(name, seen, clock() - start)


def step_rate(recipe: recipes.Recipe | str, image_shape: tuple[int, ...], classes: int,
              batch_size: int | None = None, steps: int = 3,
              device: str | None = None) -> tuple[Rate, str]:
    """Images per second of one training step of a recipe's full-size model, on random input.

    On a CPU the step runs on one thread and is timed in CPU seconds, so programs running
    beside it do not change the figure (it is a rate per core); elsewhere in wall seconds.
    Used to size a run before starting it: images per epoch over this rate is its time. The
    optimizer is SGD with momentum whatever the recipe's: its share of a step is small.

    Args:
        recipe: a recipe or its name; its model, precision and (default) batch size are used.
        image_shape: one input's shape, e.g. ``(3, 32, 32)``.
        classes: number of classes the random labels are drawn from.
        batch_size: images per step (default: the recipe's).
        steps: timed steps, after one untimed warm-up step.
        device: training device (default: the fastest here).

    Returns:
        The rate and where it was measured, e.g. ``"one CPU thread, bf16"``.
    """
    recipe = recipes.get(recipe) if isinstance(recipe, str) else recipe
    device = runner.parse_device(device)
    precision = train.Precision(runner.pick_precision(recipe, device, None))
    batch_size = batch_size or recipe.batch_size
    batch = (torch.randn(batch_size, *image_shape, device=device),
             torch.randint(0, classes, (batch_size,), device=device))
    on_cpu = device.type == "cpu"
    with _threads(1 if on_cpu else None):
        rate = _train_steps(recipe.name, itertools.repeat(batch), recipe.build_model(),
                            steps * batch_size, device, precision,
                            clock=time.process_time if on_cpu else time.perf_counter)
    where = "one CPU thread" if on_cpu else str(device)
    return rate, f"{where}, {precision.name}"


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``count`` inside the block (None: unchanged)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    device = runner.parse_device(device)
    precision = train.Precision(train.default_precision(device))
    step_images = step_images or (20_000 if device.type == "cuda" else 512)
    cifar_set, source = _cifar_images(max(images, step_images + batch_size))
    recipe = recipes.get("s08/custom-resnet")
    ours = data.Loader(cifar_set, batch_size, shuffle=True, device=device,
                       augment=augment.for_recipe(recipe, cifar_set.mean), drop_last=True)
    pipeline = augment.albumentations_pipeline(recipe, cifar_set.mean, cifar_set.std)

    def theirs(n: int):
        dl = torch.utils.data.DataLoader(
            augment.AlbumentationsDataset(cifar_set.images, cifar_set.labels, pipeline),
            batch_size=batch_size, shuffle=True, num_workers=n, drop_last=True,
            pin_memory=device.type == "cuda")
        return ((x.to(device), y.to(device)) for x, y in dl)

    baselines = {n: _time(f"DataLoader + albumentations, {n} workers", theirs(n), images)
                 for n in workers}
    result = {"source": source, "device": str(device), "precision": precision.name, "step": [],
              "loader": [_time(f"evakit Loader ({device})", ours, images), *baselines.values()]}
    fastest = max(baselines, key=lambda n: baselines[n].per_second)
    model = models.create("s08/custom-resnet")
    result["step"].append(_train_steps("custom ResNet step fed by evakit Loader", ours, model,
                                       step_images, device, precision))
    result["step"].append(_train_steps(f"custom ResNet step fed by DataLoader + albumentations,"
                                       f" {fastest} workers", theirs(fastest), model,
                                       step_images, device, precision))
    return result


def s04(recipe: str = "s04/step3", max_epochs: int | None = None,
        device: str | None = None) -> dict:
    """Train session 4's best step; return seconds per epoch and time to 99.4 % test accuracy."""
    run = runner.run(recipe, epochs=max_epochs, device=device, verbose=True)
    h = run.history
    return {"recipe": recipe, "device": run.device, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "epochs": len(h), "seconds_per_epoch": sum(h.seconds) / len(h),
            "reached_99_4": h.time_to(99.4), "final_test_acc": h.test_acc[-1]}


PRECISION_MODELS = ("s06/cifar-net", "s07/resnet18", "s08/custom-resnet")


def precision(images: int = 1024, batch_size: int = 128, device: str | None = None,
              names: tuple[str, ...] = PRECISION_MODELS) -> list[tuple[str, Rate, Rate]]:
    """fp32 against bf16 autocast + channels-last: one training step's images per second.

    Both run on the same synthetic CIFAR-shaped batch stream (content does not change speed),
    from the same initial weights, in this process.

    Returns:
        ``(model, fp32 rate, bf16 rate)`` per model.
    """
    device = runner.parse_device(device)
    if not train.bf16_supported(device):
        raise ArgumentError(f"{device} has no native bfloat16, so there is nothing to compare")
    images_set = data.synthetic("synthetic-cifar10", batch_size * 4)
    rows = []
    for name in names:
        rates = []
        for mode in train.PRECISIONS:
            torch.manual_seed(0)
            batches = _repeat(data.Loader(images_set, batch_size, device=device, drop_last=True))
            rates.append(_train_steps(mode, batches, models.create(name), images, device,
                                      train.Precision(mode)))
        rows.append((name, *rates))
    return rows


def _repeat(loader):
    while True:
        yield from loader


def parity(recipe: str = "s06/cifar-net", steps: int = 300, images: int = 20_000,
           device: str | None = None) -> dict[str, float]:
    """The same seed trained in fp32 and in bf16 for ``steps`` batches: test accuracy of each.

    Uses the recipe's real data (the first ``images`` training images) and its test set.
    """
    base = recipes.get(recipe)
    train_set = data.load(base.dataset, "train", fast=False).subset(images)
    test_set = data.load(base.dataset, "test", fast=False)
    epochs = max(1, round(steps * base.batch_size / len(train_set)))
    accuracy = {}
    for mode in train.PRECISIONS:
        done = runner.run(replace(base, epochs=epochs), precision=mode, device=device,
                          train_set=train_set, test_set=test_set, fast=False, verbose=False)
        accuracy[mode] = done.history.test_acc[-1]
    accuracy["steps"] = epochs * -(-len(train_set) // base.batch_size)
    accuracy["test_images"] = len(test_set)
    return accuracy


def s08(device: str | None = None) -> dict:
    """Session 8's recorded run (made on this machine): time per epoch and time to 90 %."""
    from evakit import records

    record = records.load("s08/custom-resnet")
    h = record.history
    return {"record": record, "seconds_per_epoch": sum(h.seconds) / len(h),
            "reached_90": h.time_to(90)}


CIFAR_TRAIN_IMAGES = 50_000      # the official training set, what a full run trains on


@dataclass(frozen=True)
class RunSpeed:
    """A recipe's training step, timed here, and the whole run it adds up to."""

    recipe: str
    rate: Rate
    epochs: int           # epochs the projected time counts
    train_images: int
    flops_per_image: float   # one training step's convolutions and matrix products, per image
    peak_flops: float        # this CPU's matrix-product FLOP/s at the step's precision

    @property
    def projected_seconds(self) -> float:
        """Training steps only: epochs × training images ÷ images per second."""
        return self.epochs * self.train_images / self.rate.per_second

    @property
    def floor_seconds(self) -> float:
        """The same run if every FLOP went at the matrix-product peak (elementwise work free)."""
        return self.epochs * self.train_images * self.flops_per_image / self.peak_flops

    @property
    def share_of_peak(self) -> float:
        """The FLOP/s the training step reaches, as a share of the peak."""
        return self.flops_per_image * self.rate.per_second / self.peak_flops


def training_flops(model: torch.nn.Module, image_shape: tuple[int, ...]) -> float:
    """FLOPs of one training step per image: forward and backward, counted by PyTorch's
    ``FlopCounterMode`` (convolutions and matrix products; elementwise work is not counted).
    Runs eagerly, whatever ``torch.compile`` the model carries."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    x = torch.randn(2, *image_shape)
    try:
        model.train()       # the step it counts is a training one (dropout, batch statistics)
        with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as count:
            model(x).float().sum().backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return count.get_total_flops() / len(x)


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large square matrix product in ``dtype`` on this CPU, the best of three."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b                                    # the first product pays for allocation
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, repeats * 2 * size ** 3 / (time.perf_counter() - start))
    return best


SPEEDRUN_BENCH = ("s08/speedrun", "s08/speedrun-eager", "s08/custom-resnet")


def speedrun(images: int = 4096, device: str | None = None) -> tuple[RunSpeed, ...]:
    """Session 8's speedrun, the same recipe without ``torch.compile``, and the custom ResNet,
    all timed in this process (:data:`SPEEDRUN_BENCH`).

    Each recipe's training step runs at its own batch size and the fastest precision here, on
    synthetic CIFAR-shaped batches (content does not change speed); the first step, which
    compiles, is not timed. The speedruns count their whole run; the custom ResNet counts the
    epochs its recorded run took to reach 90 % (all its epochs when there is no record, or it
    never did).

    Returns:
        One :class:`RunSpeed` per name of :data:`SPEEDRUN_BENCH`, in that order.
    """
    from evakit import records

    device = runner.parse_device(device)
    precision = train.Precision(train.default_precision(device))
    peak = matmul_peak(torch.bfloat16 if precision.bf16 else torch.float32)
    speeds = []
    for name in SPEEDRUN_BENCH:
        recipe = recipes.get(name)
        epochs = recipe.epochs
        if name == "s08/custom-resnet" and records.path_for(name).is_file():
            reached = records.load(name).history.time_to(90)
            epochs = reached[0] if reached else epochs
        stream = data.synthetic("synthetic-cifar10", recipe.batch_size * 2)
        torch.manual_seed(0)
        batches = _repeat(data.Loader(stream, recipe.batch_size, device=device, drop_last=True))
        model = recipe.build_model()
        flops = training_flops(model, tuple(stream.images.shape[1:]))
        rate = _train_steps(name, batches, model, images, device, precision)
        speeds.append(RunSpeed(name, rate, epochs, CIFAR_TRAIN_IMAGES, flops, peak))
    return tuple(speeds)


# --------------------------------------------------------------------------- session 11's GPT

GPT_TARGET = 1.88   # nanoGPT's baby character model reaches this held-out loss (README, CPU run)


@dataclass(frozen=True)
class GPTSetting:
    """One way of training session 11's character GPT (4 layers, 4 heads, width 128, context
    64) for :func:`gpt`: AdamW with nanoGPT's schedule — linear warm-up, then a cosine from
    ``lr`` down to ``min_lr`` at the last iteration — and gradient clipping at 1.

    Attributes:
        name: what the printout calls it.
        batch_size: windows of 64 characters per iteration.
        iterations: optimizer steps.
        lr: peak learning rate.
        min_lr: learning rate at the end of the cosine.
        warmup: iterations of linear warm-up.
        precision: ``"fp32"`` or ``"bf16"`` (autocast; weights stay float32).
        compile: run the model through ``torch.compile`` (its compile time is counted).
        attention: ``"fused"`` lets ``F.scaled_dot_product_attention`` pick its kernel (the
            fused flash kernel on a CPU); ``"math"`` forces its plain implementation —
            matrix product, softmax, matrix product.
        eval_every: iterations between held-out evaluations (not counted in the time).
    """

    name: str
    batch_size: int
    iterations: int
    lr: float
    min_lr: float
    warmup: int
    precision: str = "fp32"
    compile: bool = False
    attention: str = "fused"
    eval_every: int = 100

    def lr_at(self, it: int) -> float:
        """nanoGPT's ``get_lr``: warm-up, cosine decay to ``min_lr``."""
        if it < self.warmup:
            return self.lr * (it + 1) / (self.warmup + 1)
        ratio = min(1.0, (it - self.warmup) / max(1, self.iterations - self.warmup))
        return self.min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)


# nanoGPT's shakespeare_char config as its README runs it on a CPU (dropout 0, 2 000 iterations,
# lr_decay_iters 2 000): batch 12, lr 1e-3 → 1e-4, 100 warm-up iterations, fp32.
NANOGPT_BABY = GPTSetting("nanoGPT CPU config: fp32, batch 12, lr 1e-3, 2 000 it", 12, 2000,
                          1e-3, 1e-4, 100, eval_every=100)
# Session 11's candidate for its speed exercise, every lever its page names pulled at once: bf16
# autocast, four times the batch with a larger peak rate, and a shorter schedule. No recorded
# run backs it yet: `evakit bench gpt` measures whether it beats the baseline on a machine.
EVAKIT_GPT = GPTSetting("evakit: bf16, batch 48, lr 4e-3, 450 it", 48, 450, 4e-3, 4e-4, 30,
                        precision="bf16", eval_every=25)


@dataclass
class GPTResult:
    """One setting trained: its speed and its held-out losses on the way.

    Attributes:
        setting: what was trained.
        seconds: wall time of the training steps (evaluations excluded, compilation included).
        tokens: tokens trained on.
        evals: ``(iteration, training seconds so far, held-out loss)`` at each evaluation.
        target: the held-out loss aimed at.
    """

    setting: GPTSetting
    seconds: float
    tokens: int
    evals: list[tuple[int, float, float]]
    target: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds

    @property
    def final_loss(self) -> float:
        return self.evals[-1][2]

    @property
    def reached(self) -> tuple[int, float] | None:
        """(iteration, training seconds) of the first evaluation at or below the target."""
        return next(((it, s) for it, s, loss in self.evals if loss <= self.target), None)


def _gpt_model(setting: GPTSetting, vocab_size: int, seed: int) -> torch.nn.Module:
    from evakit.models.language import GPT, TransformerConfig

    torch.manual_seed(seed)
    return GPT(TransformerConfig(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4,
                                 n_embd=128))


def _gpt_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    # nanoGPT's: weight decay 0.1 on matrices and embeddings only, betas (0.9, 0.99).
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))


@torch.no_grad()
def _held_out_loss(model: torch.nn.Module, batches: list) -> float:
    import torch.nn.functional as F

    with models.evaluating(model):
        losses = [F.cross_entropy(model(x).float().flatten(0, 1), y.flatten()).item()
                  for x, y in batches]
    return sum(losses) / len(losses)


def train_gpt(setting: GPTSetting, train_tokens: torch.Tensor, eval_batches: list,
              vocab_size: int, target: float = GPT_TARGET, seed: int = 1337,
              device: torch.device | None = None) -> GPTResult:
    """Train the character GPT as ``setting`` says; time the steps, evaluate on the way.

    Args:
        setting: the training setting.
        train_tokens: the training text's token ids.
        eval_batches: fixed held-out ``(x, y)`` batches, scored in fp32 at every evaluation.
        vocab_size: tokens in the vocabulary.
        target: the held-out loss whose first crossing :attr:`GPTResult.reached` reports.
        seed: seeds the weights and the batch draws (the same for every setting).
        device: where to train (default: the fastest here).
    """
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from evakit import text

    if setting.attention not in ("fused", "math"):
        raise ArgumentError(f"attention must be 'fused' or 'math', got {setting.attention!r}")
    # sdpa_kernel's context is used once per step; "fused" leaves PyTorch's choice alone.
    attention = ((lambda: sdpa_kernel(SDPBackend.MATH)) if setting.attention == "math"
                 else contextlib.nullcontext)
    device = device or train.pick_device()
    model = _gpt_model(setting, vocab_size, seed).to(device).train()
    optimizer = _gpt_optimizer(model, setting.lr)
    forward = torch.compile(model) if setting.compile else model
    generator = torch.Generator().manual_seed(seed)
    precision = train.Precision(setting.precision)
    evals, seconds = [], 0.0
    for it in range(setting.iterations):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = setting.lr_at(it)
        x, y = text.lm_batches(train_tokens, 64, setting.batch_size, generator)
        x, y = x.to(device), y.to(device)
        with attention():
            with precision.autocast(device):
                logits = forward(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        _sync(device)
        seconds += time.perf_counter() - start
        if (it + 1) % setting.eval_every == 0 or it + 1 == setting.iterations:
            evals.append((it + 1, seconds, _held_out_loss(model, eval_batches)))
    return GPTResult(setting, seconds, setting.iterations * setting.batch_size * 64, evals,
                     target)


def _runnable(setting: GPTSetting, device: torch.device) -> GPTSetting:
    """The setting, in fp32 (and named so) if it asks for bf16 where ``device`` has none."""
    if setting.precision != "bf16" or train.bf16_supported(device):
        return setting
    name = (setting.name.replace("bf16", "fp32 (no bf16 here)") if "bf16" in setting.name
            else f"{setting.name} (fp32: no bf16 here)")
    return replace(setting, precision="fp32", name=name)


def gpt(settings: tuple[GPTSetting, ...] = (NANOGPT_BABY, EVAKIT_GPT),
        target: float = GPT_TARGET, eval_windows: int = 1280,
        device: str | None = None) -> list[GPTResult]:
    """Session 11's GPT trained each way in this process, from the same initial weights.

    The held-out loss is measured on ``eval_windows`` fixed windows of 64 characters from the
    last 10 % of Tiny Shakespeare (nanoGPT's split), in fp32, for every setting alike.

    A setting in bf16 runs in fp32 on a device without native bf16 (a CPU without AVX-512
    BF16, an older GPU) — emulated bf16 would time the emulation — and its result's name says
    so.

    Returns:
        One :class:`GPTResult` per setting, in order (the first is the baseline).
    """
    from evakit import text

    device = runner.parse_device(device)
    settings = tuple(_runnable(s, device) for s in settings)
    train_set, test_set = text.shakespeare_tokens("shakespeare-char")
    loader = text.TokenLoader(test_set.tokens, 64, 64, -(-eval_windows // 64), seed=0,
                              device=device)
    eval_batches = list(loader)
    vocab = train_set.tokenizer.vocab_size
    return [train_gpt(s, train_set.tokens, eval_batches, vocab, target, device=device)
            for s in settings]
