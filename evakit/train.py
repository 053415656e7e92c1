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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evakit.data import atomic_write, is_fast

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CorrectFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
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
    """Per-epoch metrics of one training run (index i is epoch i + 1)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.test_acc)

    def append(self, **epoch: float) -> None:
        """Add one epoch's metrics (every field by name)."""
        for name, value in epoch.items():
            getattr(self, name).append(float(value))

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> History:
        return cls(**{k: list(v) for k, v in d.items()})

    def best(self, metric: str = "test_acc") -> tuple[int, float]:
        """The (1-based epoch, value) where ``metric`` peaked."""
        values = getattr(self, metric)
        i = int(np.argmax(values))
        return i + 1, values[i]


def top1(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which predictions (arg-max of the logits) equal their labels."""
    return out.argmax(1) == y


def _forward(model: nn.Module, x, device: torch.device) -> torch.Tensor:
    # A batch input is one tensor, or a tuple of tensors for models with several inputs.
    if isinstance(x, tuple | list):
        return model(*(t.to(device) for t in x))
    return model(x.to(device))


def evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn = F.cross_entropy,
             device: torch.device | str | None = None,
             correct_fn: CorrectFn = top1) -> tuple[float, float]:
    """Mean loss and accuracy (in %) of ``model`` over ``loader``, without gradients."""
    device = torch.device(device) if device is not None else _device_of(model)
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            y = y.to(device)
            out = _forward(model, x, device)
            total_loss += loss_fn(out, y).item() * len(y)
            correct += correct_fn(out, y).sum().item()
            seen += len(y)
    return total_loss / seen, 100.0 * correct / seen


def predict(model: nn.Module, loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels for every batch of ``loader`` (on the CPU)."""
    device = _device_of(model)
    model.eval()
    preds, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            preds.append(_forward(model, x, device).argmax(1).cpu())
            labels.append(y.cpu())
    return torch.cat(preds), torch.cat(labels)


def fit(model: nn.Module, train: Iterable, test: Iterable, epochs: int,
        optimizer: torch.optim.Optimizer, scheduler=None, *, loss_fn: LossFn = F.cross_entropy,
        checkpoint: str | Path | None = None, resume: bool = False,
        correct_fn: CorrectFn = top1, progress: bool | None = None, verbose: bool = True,
        stop_after: int | None = None) -> History:
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
        checkpoint: file to save after every epoch (atomically).
        resume: continue from ``checkpoint`` if it exists.
        progress: a tqdm bar per epoch (True) or one line per epoch (False); by default bars in
            a terminal or an interactive notebook, lines in CI and FAST runs.
        verbose: print one summary line per epoch.
        stop_after: stop after this epoch (simulates a killed run in tests).

    Returns:
        The run's :class:`History`.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= to name the file to resume from")
    device = _device_of(model)
    history, start = History(), 0
    if resume and Path(checkpoint).is_file():
        history, start = load_checkpoint(checkpoint, model, optimizer, scheduler, train)
    bars = _want_bars() if progress is None else progress
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = _train_epoch(model, train, optimizer, scheduler, loss_fn,
                                             correct_fn, device,
                                             f"epoch {epoch + 1}/{epochs}" if bars else None)
        test_loss, test_acc = evaluate(model, test, loss_fn, device, correct_fn)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(test_loss)
        elif scheduler is not None and not isinstance(scheduler, PER_BATCH_SCHEDULERS):
            scheduler.step()
        history.append(train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                       test_acc=test_acc, lr=lr, seconds=time.perf_counter() - t0)
        if verbose:
            print(f"epoch {epoch + 1:>3}/{epochs}  lr {lr:.4g}  train loss {train_loss:.4f} "
                  f"acc {train_acc:6.2f}%  test loss {test_loss:.4f} acc {test_acc:6.2f}%  "
                  f"({history.seconds[-1]:.1f}s)", flush=True)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, scheduler, train, history)
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    return history


def _train_epoch(model, loader, optimizer, scheduler, loss_fn, correct_fn, device, bar_title):
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    batches = loader
    if bar_title is not None:
        from tqdm.auto import tqdm
        batches = tqdm(loader, desc=bar_title, leave=False)
    for x, y in batches:
        y = y.to(device)
        optimizer.zero_grad(set_to_none=True)
        out = _forward(model, x, device)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        if isinstance(scheduler, PER_BATCH_SCHEDULERS):
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += correct_fn(out, y).sum().item()
        seen += len(y)
    return total_loss / seen, 100.0 * correct / seen


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


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, train_loader, history: History) -> None:
    """Save everything a resumed run needs, atomically (temp file, then ``os.replace``)."""
    path = Path(path)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else None,
             "rng": _rng_state(), "history": history.to_dict(), "epoch": len(history)}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler=None, train_loader=None) -> tuple[History, int]:
    """Restore a checkpoint into the given objects; returns (history, epochs done)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if train_loader is not None and state["loader"] is not None:
        train_loader.load_state_dict(state["loader"])
    _set_rng_state(state["rng"])
    return History.from_dict(state["history"]), int(state["epoch"])


@dataclass
class LRRangeResult:
    """The LR range test's sweep: learning rates, smoothed losses, and the suggested max LR."""

    lrs: list[float]
    losses: list[float]
    suggested_lr: float


def lr_range_test(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, *,
                  start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100,
                  smoothing: float = 0.05, diverge: float = 5.0,
                  loss_fn: LossFn = F.cross_entropy) -> LRRangeResult:
    """Leslie Smith's LR range test with an exponential sweep.

    The learning rate grows geometrically from ``start_lr`` to ``end_lr`` over ``num_iter``
    batches while the loss is smoothed exponentially; the sweep stops once the loss exceeds
    ``diverge`` times its best. The suggestion is the LR where the smoothed loss falls fastest
    (steepest negative slope against log LR). Model and optimizer are restored afterwards.

    Returns:
        An :class:`LRRangeResult`.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr!r} and {end_lr!r}")
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = optimizer.state_dict()
    device = _device_of(model)
    gamma = (end_lr / start_lr) ** (1 / max(num_iter - 1, 1))
    lrs, losses, avg, best = [], [], 0.0, math.inf
    model.train()
    batches = _cycle(loader)
    for i in range(num_iter):
        lr = start_lr * gamma**i
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(batches)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        avg = smoothing * loss.item() + (1 - smoothing) * avg
        smooth = avg / (1 - (1 - smoothing) ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        if not math.isfinite(smooth) or smooth > diverge * best:
            break
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    slopes = np.gradient(np.array(losses), np.log10(lrs)) if len(lrs) > 2 else np.zeros(1)
    return LRRangeResult(lrs, losses, float(lrs[int(np.argmin(slopes))]))


def _cycle(loader: Iterable):
    while True:
        yield from loader
