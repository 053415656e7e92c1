"""Session 8's speedrun network: 94 % on CIFAR-10 in about ten epochs.

The architecture and its training tricks follow, one idea at a time, David Page's "How to Train
Your ResNet" series (2018), tysam-code's hlb-CIFAR10 and Keller Jordan's airbench (Jordan 2024,
"94 % on CIFAR-10 in 3.29 seconds on a single GPU"); the code is written here from their
descriptions. Each idea is a switch, so session 8 can measure what each one buys.

Shape: a 2×2 convolution (24 channels) → GELU → three blocks, each conv 3×3 → 2×2 max pool → BN
→ GELU → conv 3×3 → BN → GELU, at 64, 256 and 256 channels → 3×3 max pool → linear, logits ×1/9.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evakit.models.cnn import CIFAR
from evakit.models.registry import register


class _BatchNorm(nn.BatchNorm2d):
    """BatchNorm with a fixed scale of one (only the shift learns) and a chosen momentum.

    ``momentum`` is the share of the *old* running statistics kept per step (0.6 keeps 60 %),
    as Page and airbench state it; PyTorch's own argument is the share of the new batch.
    """

    def __init__(self, channels: int, momentum: float, learn_scale: bool) -> None:
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad = learn_scale


class _Block(nn.Module):
    """conv → 2×2 max pool → BN → GELU → conv → BN → GELU."""

    def __init__(self, c_in: int, c_out: int, momentum: float, learn_scale: bool,
                 dirac: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm1 = _BatchNorm(c_out, momentum, learn_scale)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = _BatchNorm(c_out, momentum, learn_scale)
        if dirac:       # each conv starts as (partly) the identity: an implicit residual
            for conv in (self.conv1, self.conv2):
                w = conv.weight.data
                nn.init.dirac_(w[:min(w.shape[0], w.shape[1])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


@register("s08/speedrun-net", CIFAR)
class SpeedrunNet(nn.Module):
    """Session 8's last page: the network of the CPU speedrun, every trick a switch.

    Args:
        widths: channels of the three blocks.
        whiten: the first layer is a frozen 2×2 patch-whitening convolution set from the data
            by :meth:`fit_data` (else an ordinary trainable convolution).
        whiten_bias_epochs: the whitening layer's bias learns for this many epochs, then
            freezes (see :meth:`on_epoch`); None: it always learns.
        bn_momentum: share of the old running statistics a BN keeps per step.
        learn_bn_scale: let the BN scales learn (the speedrun fixes them at one).
        dirac: start each 3×3 convolution as the identity on its first channels.
        scale: the logits' multiplier.
        tta: test-time augmentation in eval mode — 0 none, 1 mirror, 2 mirror and a one-pixel
            translation both ways.
        classes: outputs.
        compiled: train through ``torch.compile`` (TorchInductor), after a minute or so of
            compiling; whether that pays depends on the machine (``evakit bench speedrun``
            times both, session 8.5 compares the recorded runs). Evaluation stays eager (its
            batches and modes differ); the module and its state dict are the plain ones either
            way.
    """

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), whiten: bool = True,
                 whiten_bias_epochs: int | None = 3, bn_momentum: float = 0.6,
                 learn_bn_scale: bool = False, dirac: bool = True, scale: float = 1 / 9,
                 tta: int = 2, classes: int = 10, compiled: bool = False) -> None:
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        nn.init.zeros_(self.whiten.bias)
        self.whiten.weight.requires_grad = not whiten
        self.whitened = whiten
        self.whiten_bias_epochs = whiten_bias_epochs
        c, blocks = 24, []
        for width in widths:
            blocks.append(_Block(c, width, bn_momentum, learn_bn_scale, dirac))
            c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, classes, bias=False)
        self.scale = scale
        self.tta = tta
        self._train_logits = torch.compile(self.logits) if compiled else self.logits

    def fit_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening layer from normalized training images (N×3×H×W, a few thousand).

        The covariance of all 2×2×3 patches has 12 eigenvectors; the layer's filters are those
        eigenvectors divided by the square root of their eigenvalues, and their negatives — so
        its outputs are decorrelated, of unit variance, and the GELU after it loses no sign.
        """
        if not self.whitened:
            return
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)       # N×3×h×w×2×2
        flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        covariance = flat.T @ flat / len(flat)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)        # ascending
        filters = (eigenvectors.T / (eigenvalues + eps).sqrt()[:, None]).flip(0)
        filters = filters.reshape(12, 3, 2, 2)
        with torch.no_grad():
            self.whiten.weight.copy_(torch.cat([filters, -filters]))

    def on_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based): freeze the whitening bias when its time is up."""
        if self.whiten_bias_epochs is not None:
            self.whiten.bias.requires_grad = epoch < self.whiten_bias_epochs

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """One view's logits (no test-time augmentation)."""
        x = self.blocks(F.gelu(self.whiten(x)))
        return self.fc(F.max_pool2d(x, 3).flatten(1)) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self._train_logits(x)
        if self.tta == 0:
            return self.logits(x)
        mirrored = 0.5 * (self.logits(x) + self.logits(x.flip(-1)))
        if self.tta == 1:
            return mirrored
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        h, w = x.shape[-2:]
        shifted = [padded[..., :h, :w], padded[..., 2:, 2:]]           # up-left, down-right
        moved = torch.stack([0.5 * (self.logits(s) + self.logits(s.flip(-1)))
                             for s in shifted]).mean(0)
        return 0.5 * mirrored + 0.5 * moved
