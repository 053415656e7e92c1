"""evakit: the tested package behind the EVA course in deep learning for computer vision.

Each session notebook starts with :func:`setup`, then imports what it needs from the flat
modules: ``data``, ``models``, ``train``, ``rf``, ``viz``, ``sheets``, ``recipes``, ``records``,
``check`` and ``cli``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evakit.data import is_fast
from evakit.train import pick_device, seed_everything

__version__ = "0.1.0"
__all__ = ["Setup", "setup", "__version__"]


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` decided: the seed, the device and whether this is a FAST run."""

    seed: int
    device: torch.device
    fast: bool

    def __str__(self) -> str:
        mode = "FAST (small slice)" if self.fast else "full"
        return f"evakit {__version__} | torch {torch.__version__} | device {self.device} | " \
               f"seed {self.seed} | {mode} run"


def setup(seed: int = 1, *, device: str | None = None) -> Setup:
    """Seed every generator, pick the device and read ``EVAKIT_FAST``.

    Args:
        seed: seed for Python, NumPy and torch.
        device: force a device ("cpu", "cuda", ...); by default the fastest one here.

    Returns:
        A :class:`Setup` describing the choices (print it at the top of a notebook).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed_everything(seed)
    return Setup(seed, torch.device(device) if device else pick_device(), is_fast())
