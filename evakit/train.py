"""Training: ``fit`` / ``evaluate``, the History it returns, seeding, checkpoints, LR range test.

``fit`` is a plain loop over batches. Schedulers that step per batch (OneCycleLR, CyclicLR) step
after every optimizer step; ReduceLROnPlateau steps on the test loss after every epoch; any other
scheduler steps once per epoch. With ``checkpoint=`` every epoch is saved atomically (model,
optimizer, scheduler, every RNG, history) and ``resume=True`` continues from it exactly.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evakit.data import atomic_write, is_fast
from evakit.errors import ArgumentError, CheckpointError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CorrectFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = torch.Tensor | Sequence[torch.Tensor]     # a model's input: one tensor, or several
EpochCallback = Callable[[int, "History", nn.Module], bool]
PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """The fastest device here: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class History:
    """Per-epoch metrics of one training run (index i is epoch i + 1).

    ``val_loss`` and ``val_acc`` are filled only by a run that holds out a validation set
    (session 12); they are left out of :meth:`to_dict` while empty.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.test_acc)

    def append(self, **epoch: float) -> None:
        """Add one epoch's metrics (every field by name)."""
        for name, value in epoch.items():
            getattr(self, name).append(float(value))

    def to_dict(self) -> dict[str, list[float]]:
        d = asdict(self)
        for name in ("val_loss", "val_acc"):
            if not d[name]:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> History:
        return cls(**{k: list(v) for k, v in d.items()})

    def time_to(self, accuracy: float) -> tuple[int, float] | None:
        """The first (1-based epoch, seconds of training so far) whose test accuracy reaches
        ``accuracy`` %, or None when no epoch does."""
        elapsed = 0.0
        for epoch, (seconds, acc) in enumerate(zip(self.seconds, self.test_acc, strict=True), 1):
            elapsed += seconds
            if acc >= accuracy:
                return epoch, elapsed
        return None

    def best(self, metric: str = "test_acc") -> tuple[int, float]:
        """The (1-based epoch, value) where ``metric`` peaked."""
        values = getattr(self, metric)
        i = int(np.argmax(values))
        return i + 1, values[i]


def top1(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which predictions (arg-max of the logits) equal their labels."""
    return out.argmax(1) == y


PRECISIONS = ("fp32", "bf16")


def bf16_supported(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bfloat16 natively (CUDA, or a CPU with AVX-512 BF16/AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_precision(device: torch.device | str) -> str:
    """The fastest correct precision on ``device``: bf16 where it is native, else fp32."""
    return "bf16" if bf16_supported(device) else "fp32"


@dataclass(frozen=True)
class Precision:
    """How a training step computes: ``"fp32"``, or ``"bf16"`` autocast with channels-last.

    bfloat16 keeps float32's 8-bit exponent (its range) and drops mantissa bits (precision), so
    gradients do not underflow and — unlike float16 — no loss scaling is needed. Weights and
    optimizer state stay in float32; autocast runs convolutions and matrix products in bf16.
    """

    name: str = "fp32"

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ArgumentError(f"precision must be one of {PRECISIONS}, got {self.name!r}")

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    def autocast(self, device: torch.device) -> torch.autocast:
        """The autocast context of one forward pass (a no-op in fp32)."""
        return torch.autocast(device.type, torch.bfloat16, enabled=self.bf16)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Channels-last weights for a convolutional model in bf16 (the layout oneDNN and
        cuDNN run fastest); other models unchanged."""
        if self.bf16 and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            model.to(memory_format=torch.channels_last)
        return model

    def inputs(self, x: Batch) -> Batch:
        """A batch input in the layout the model was prepared for."""
        if self.bf16 and isinstance(x, torch.Tensor) and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x


FP32 = Precision("fp32")


def _forward(model: nn.Module, x, device: torch.device,
             precision: Precision = FP32) -> torch.Tensor:
    # A batch input is one tensor, or a tuple of tensors for models with several inputs.
    with precision.autocast(device):
        if isinstance(x, tuple | list):
            return model(*(precision.inputs(t.to(device)) for t in x))
        return model(precision.inputs(x.to(device)))


def train_step(model: nn.Module, x: Batch, y: torch.Tensor,
               optimizer: torch.optim.Optimizer, loss_fn: LossFn = F.cross_entropy,
               precision: Precision = FP32) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on one batch: forward, loss, backward, step.

    Returns:
        The loss (a scalar tensor) and the model's output, both detached.
    """
    device = _device_of(model)
    y = y.to(device)
    optimizer.zero_grad(set_to_none=True)
    out = _forward(model, x, device, precision)
    loss = loss_fn(out.float() if isinstance(out, torch.Tensor) else out, y)
    loss.backward()
    optimizer.step()
    return loss.detach(), out.detach() if isinstance(out, torch.Tensor) else out


class _Tally:
    """Running mean loss and accuracy over batches, weighted by the examples each scores."""

    def __init__(self) -> None:
        self.loss, self.correct, self.seen = 0.0, 0, 0

    def add(self, loss: torch.Tensor, correct: torch.Tensor) -> None:
        n = correct.numel()
        self.loss += loss.item() * n
        self.correct += int(correct.sum().item())
        self.seen += n

    def result(self) -> tuple[float, float]:
        if self.seen == 0:
            raise ValueError("no batches: the loader yielded nothing to train or evaluate on")
        return self.loss / self.seen, 100.0 * self.correct / self.seen


def evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn = F.cross_entropy,
             device: torch.device | str | None = None, correct_fn: CorrectFn = top1,
             precision: Precision = FP32) -> tuple[float, float]:
    """Mean loss and accuracy (in %) of ``model`` over ``loader``, without gradients.

    Each batch counts by the number of scored examples ``correct_fn`` returns (images for a
    classifier, tokens for a language model)."""
    device = torch.device(device) if device is not None else _device_of(model)
    model.eval()
    tally = _Tally()
    with torch.no_grad():
        for x, y in loader:
            y = y.to(device)
            out = _forward(model, x, device, precision)
            out = out.float() if isinstance(out, torch.Tensor) else out
            tally.add(loss_fn(out, y), correct_fn(out, y))
    return tally.result()


def predict(model: nn.Module, loader: Iterable,
            precision: Precision = FP32) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and true labels for every batch of ``loader`` (on the CPU)."""
    device = _device_of(model)
    model.eval()
    probs, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            probs.append(_forward(model, x, device, precision).float().softmax(1).cpu())
            labels.append(y.cpu())
    return torch.cat(probs), torch.cat(labels)


def fit(model: nn.Module, train: Iterable, test: Iterable, epochs: int,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, *,
        loss_fn: LossFn = F.cross_entropy,
        checkpoint: str | Path | None = None, resume: bool = False,
        correct_fn: CorrectFn = top1, precision: Precision = FP32,
        identity: dict | None = None, progress: bool | None = None, verbose: bool = True,
        stop_after: int | None = None, on_epoch: EpochCallback | None = None) -> History:
    """Train ``model`` for ``epochs`` and evaluate it on ``test`` after each.

    Args:
        model: the network, already on its device; batches are moved to that device.
        train: training batches (an :class:`evakit.data.Loader` or any iterable of (x, y)).
        test: test batches.
        epochs: total number of epochs (a resumed run counts the epochs already done).
        optimizer: the optimizer over ``model``'s parameters.
        scheduler: optional LR scheduler (see the module docstring for when it steps).
        loss_fn: ``loss_fn(logits, targets)``; cross-entropy by default.
        correct_fn: which outputs count as correct for the accuracy; top-1 by default.
        precision: fp32, or bf16 autocast with channels-last (see :class:`Precision`).
        checkpoint: file to save after every epoch (atomically).
        resume: continue from ``checkpoint`` if it exists.
        identity: what the run is (recipe name, config); written into the checkpoint, and a
            checkpoint with another identity is refused on resume.
        progress: a tqdm bar per epoch (True) or one line per epoch (False); by default bars in
            a terminal or an interactive notebook, lines in CI and FAST runs.
        verbose: print one summary line per epoch.
        stop_after: stop after this epoch (simulates a killed run in tests).
        on_epoch: called as ``on_epoch(epoch, history, model)`` after each epoch's test (1-based
            epoch), before the checkpoint; it may add to the history (a validation score) and
            returns True to stop training (early stopping).

    Returns:
        The run's :class:`History`.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ArgumentError(f"epochs must be a positive integer, got {epochs!r}")
    if resume and checkpoint is None:
        raise ArgumentError("resume=True needs checkpoint= to name the file to resume from")
    device = _device_of(model)
    precision.prepare(model)
    identity = {**(identity or {}), "params": sum(p.numel() for p in model.parameters())}
    history, start = History(), 0
    if resume and Path(checkpoint).is_file():
        history, start = load_checkpoint(checkpoint, model, optimizer, scheduler, train,
                                         identity=identity)
    bars = _want_bars() if progress is None else progress
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        tally = _Tally()
        batches = train
        if bars:
            from tqdm.auto import tqdm
            batches = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        model.train()
        for x, y in batches:
            loss, out = train_step(model, x, y, optimizer, loss_fn, precision)
            if isinstance(scheduler, PER_BATCH_SCHEDULERS):
                scheduler.step()
            tally.add(loss, correct_fn(out.float(), y.to(device)))
        train_loss, train_acc = tally.result()
        test_loss, test_acc = evaluate(model, test, loss_fn, device, correct_fn, precision)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(test_loss)
        elif scheduler is not None and not isinstance(scheduler, PER_BATCH_SCHEDULERS):
            scheduler.step()
        history.append(train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                       test_acc=test_acc, lr=lr, seconds=time.perf_counter() - t0)
        stop = bool(on_epoch(epoch + 1, history, model)) if on_epoch is not None else False
        if verbose:
            val = (f"  val loss {history.val_loss[-1]:.4f} acc {history.val_acc[-1]:6.2f}%"
                   if len(history.val_acc) == len(history) else "")
            print(f"epoch {epoch + 1:>3}/{epochs}  lr {lr:.4g}  train loss {train_loss:.4f} "
                  f"acc {train_acc:6.2f}%  test loss {test_loss:.4f} acc {test_acc:6.2f}%{val}  "
                  f"({history.seconds[-1]:.1f}s)", flush=True)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, scheduler, train, history, identity)
        if stop or (stop_after is not None and epoch + 1 >= stop_after):
            break
    return history


def _want_bars() -> bool:
    if os.environ.get("CI") or is_fast():
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _rng_state() -> dict:
    mt, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                       "has_gauss": has_gauss, "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(_as_tuples(state["python"]))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(x):
    return tuple(_as_tuples(v) for v in x) if isinstance(x, list | tuple) else x


CHECKPOINT_FORMAT = 2


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
                    train_loader: Iterable | None, history: History,
                    identity: dict | None = None) -> None:
    """Save everything a resumed run needs, atomically (temp file, then ``os.replace``).

    ``identity`` (recipe name, config, parameter count) is stored beside a format version, so
    a resume can refuse a checkpoint of another run.
    """
    state = {"format": CHECKPOINT_FORMAT, "identity": identity or {},
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else None,
             "rng": _rng_state(), "history": history.to_dict(), "epoch": len(history)}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents, or one sentence saying why the file is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — torch raises many types for a damaged file
        raise CheckpointError(f"{path} is not a readable evakit checkpoint ({_first_line(e)}): "
                              "it may be truncated or not a checkpoint; delete it to start "
                              "afresh, or give --checkpoint another file") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format", "none") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not an evakit checkpoint of format "
                              f"{CHECKPOINT_FORMAT} (found format {found}): delete it to start "
                              "afresh, or give --checkpoint another file")
    return state


def _comparable(saved, current):
    """The saved identity value as the current code would write it.

    A config key the code gained after the checkpoint was written is taken at its current value:
    a new recipe field defaults to what runs did before it existed.
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        return {k: saved.get(k, current[k]) for k in current} | saved
    return saved


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    train_loader: Iterable | None = None,
                    identity: dict | None = None) -> tuple[History, int]:
    """Restore a checkpoint into the given objects; returns (history, epochs done).

    Raises:
        CheckpointError: the file is unreadable, or its identity (recipe, config, parameter
            count) differs from ``identity``.
    """
    state = read_checkpoint(path)
    if identity is not None:
        differs = sorted(k for k in identity
                         if _comparable(state["identity"].get(k), identity[k]) != identity[k])
        if differs:
            key = differs[0]
            raise CheckpointError(
                f"{path} was written by another run ({key} {state['identity'].get(key)!r}, "
                f"this run has {identity[key]!r}): resume with the checkpoint of this recipe "
                "and config, or give --checkpoint a new file")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if train_loader is not None and state["loader"] is not None:
        train_loader.load_state_dict(state["loader"])
    _set_rng_state(state["rng"])
    return History.from_dict(state["history"]), int(state["epoch"])


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:120]


TURN_UP = 1.1          # the loss has "turned up" once it is 10 % above its lowest so far
FALL = 0.99            # ... and "started to fall" once it is 1 % below where it began


@dataclass
class LRRangeResult:
    """The LR range test's sweep and what it says (Smith, "Cyclical Learning Rates", 2017).

    Beyond the point where the loss turns up the sweep is noise — a large LR can even show a
    second, spurious dip — so every reading below is taken on the sweep up to that point.

    Attributes:
        lrs: the learning rate of each batch.
        losses: the smoothed loss after each batch.
    """

    lrs: list[float]
    losses: list[float]

    @property
    def usable(self) -> int:
        """How many points come before the loss first turns up (10 % above its minimum)."""
        losses = np.asarray(self.losses)
        above = losses > TURN_UP * np.minimum.accumulate(losses)
        return int(np.argmax(above)) if above.any() else len(losses)

    @property
    def suggested_lr(self) -> float:
        """Where the loss falls fastest (steepest negative slope against log LR)."""
        n = self.usable
        if n < 3:
            return self.lrs[0]
        slopes = np.gradient(np.asarray(self.losses[:n]), np.log10(self.lrs[:n]))
        return float(self.lrs[int(np.argmin(slopes))])

    @property
    def minimum_lr(self) -> float:
        """The largest LR that still lowers the loss: the lowest loss before it turns up — the
        top of a one-cycle."""
        n = self.usable
        return float(self.lrs[int(np.argmin(self.losses[:n]))])

    @property
    def falling_lr(self) -> float:
        """The smallest LR that visibly lowers the loss (1 % below its start): the bottom of a
        one-cycle."""
        start = self.losses[0]
        return float(next((lr for lr, loss in zip(self.lrs, self.losses, strict=True)
                           if loss < FALL * start), self.lrs[-1]))


def lr_range_test(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, *,
                  start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100,
                  smoothing: float = 0.05, diverge: float = 5.0,
                  loss_fn: LossFn = F.cross_entropy,
                  precision: Precision = FP32) -> LRRangeResult:
    """Leslie Smith's LR range test with an exponential sweep.

    The learning rate grows geometrically from ``start_lr`` to ``end_lr`` over ``num_iter``
    batches while the loss is smoothed exponentially; the sweep stops once the loss exceeds
    ``diverge`` times its best. :class:`LRRangeResult` reads the sweep. Model and optimizer
    are restored afterwards.

    Returns:
        An :class:`LRRangeResult`.
    """
    if not 0 < start_lr < end_lr:
        raise ArgumentError(f"need 0 < start_lr < end_lr, got {start_lr!r} and {end_lr!r}")
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = optimizer.state_dict()
    precision.prepare(model)
    gamma = (end_lr / start_lr) ** (1 / max(num_iter - 1, 1))
    lrs, losses, avg, best = [], [], 0.0, math.inf
    model.train()
    batches = _cycle(loader)
    for i in range(num_iter):
        lr = start_lr * gamma**i
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(batches)
        loss, _ = train_step(model, x, y, optimizer, loss_fn, precision)
        avg = smoothing * loss.item() + (1 - smoothing) * avg
        smooth = avg / (1 - (1 - smoothing) ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        if not math.isfinite(smooth) or smooth > diverge * best:
            break
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    return LRRangeResult(lrs, losses)


def _cycle(loader: Iterable):
    while True:
        yield from loader
