"""The attention networks of session 9: position encodings, ULTIMUS and the spatial transformer.

- :func:`sinusoidal_encoding` and :func:`sinusoidal_encoding_2d` are the fixed position codes
  of Vaswani et al. (2017), along a sequence and over an image's rows and columns.
- :class:`Ultimus` is the assignment's attention block on one 48-d vector per image, and
  :class:`UltimusNet` (``"s09/ultimus"``) the network C → C → C → GAP → 4 × ULTIMUS → FC.
- :class:`SpatialTransformer` is Jaderberg et al.'s (2015) module — localisation net →
  ``affine_grid`` → ``grid_sample`` — and :class:`STNNet` (``"s09/stn"``) puts one in front of
  a small MNIST classifier.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from evakit.errors import ArgumentError
from evakit.models.cnn import CIFAR, MNIST, conv_bn_relu
from evakit.models.registry import register


def sinusoidal_encoding(positions: int, dim: int, base: float = 10_000.0) -> torch.Tensor:
    """The sinusoidal position encoding of "Attention Is All You Need", ``positions`` × ``dim``.

    Channel pair ``(2i, 2i + 1)`` holds ``sin(p / base^(2i/dim))`` and ``cos(…)``: each pair
    turns at its own frequency, from one radian per position down to ``1 / base``, so every
    position gets a distinct code and the code of ``p + k`` is a rotation of the code of ``p``.

    Args:
        positions: sequence length.
        dim: channels; must be even.
        base: the longest wavelength is ``2π · base`` positions.
    """
    if positions < 1 or dim < 2 or dim % 2:
        raise ArgumentError(f"positions must be ≥ 1 and dim even and ≥ 2, got {positions} "
                            f"and {dim}")
    p = torch.arange(positions, dtype=torch.float32)[:, None]
    frequency = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    code = torch.zeros(positions, dim)
    code[:, 0::2] = torch.sin(p * frequency)
    code[:, 1::2] = torch.cos(p * frequency)
    return code


def sinusoidal_encoding_2d(height: int, width: int, dim: int,
                           base: float = 10_000.0) -> torch.Tensor:
    """A 2-D sinusoidal encoding, ``height`` × ``width`` × ``dim``: the first half of the
    channels encodes the row, the second half the column (each a 1-D code of ``dim / 2``)."""
    if dim % 4:
        raise ArgumentError(f"dim must be a multiple of 4 (two even halves), got {dim}")
    rows = sinusoidal_encoding(height, dim // 2, base)
    cols = sinusoidal_encoding(width, dim // 2, base)
    return torch.cat([rows[:, None, :].expand(height, width, dim // 2),
                      cols[None, :, :].expand(height, width, dim // 2)], dim=-1)


class Ultimus(nn.Module):
    """The assignment's attention block, on one ``dim``-vector per image.

    K, Q, V = FC ``dim`` → ``inner``. For each image, with its q, k, v as 1 × ``inner`` rows
    (as ``nn.Linear`` returns them), ``AM = softmax(qᵀk) / √inner`` is an ``inner`` ×
    ``inner`` matrix — the outer product ``AM[i, j] ∝ exp(q_i k_j)``, softmax along each row
    j — then ``Z = v · AM`` (1 × ``inner``) and ``out = FC inner → dim``. Each image is
    computed alone, so a prediction never depends on which images share its batch.

    Args:
        dim: width of the vector in and out (48).
        inner: width of K, Q and V (8).
    """

    def __init__(self, dim: int = 48, inner: int = 8) -> None:
        super().__init__()
        self.k = nn.Linear(dim, inner)
        self.q = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.out = nn.Linear(inner, dim)
        self.inner = inner

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """AM = softmax(qᵀk) / √inner for each image of ``x`` (B × dim): B × inner × inner."""
        q, k = self.q(x), self.k(x)
        scores = q.unsqueeze(2) * k.unsqueeze(1)                  # qᵀk: [b, i, j] = q_i k_j
        return scores.softmax(dim=-1) / math.sqrt(self.inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (self.v(x).unsqueeze(1) @ self.attention_map(x)).squeeze(1)   # v · AM
        return self.out(z)


@register("s09/ultimus", CIFAR)
class UltimusNet(nn.Module):
    """Session 9's assignment: C → C → C → GAP → ULTIMUS × 4 → FC, on CIFAR-10.

    Three 'same' 3×3 convolutions (conv → BN → ReLU) take 32×32×3 to 32×32×48; global average
    pooling makes one 48-d vector per image; four :class:`Ultimus` blocks (K, Q, V 48 → 8,
    out 8 → 48) follow one another; a last FC maps 48 → 10 logits.

    With ``residual`` (the default) each block's output is added to its input, as in every
    transformer block: stacked bare, the blocks shrink the differences between images by one to
    two orders of magnitude each at initialisation (near-uniform attention passes one number
    per image), so after four of them every image looks the same and almost no gradient
    reaches the convolutions (session 9 measures it).

    Args:
        widths: the three convolutions' output channels (the last is the blocks' width).
        blocks: ULTIMUS blocks.
        inner: width of K, Q and V.
        classes: outputs.
        residual: add each block's input to its output.
    """

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 48), blocks: int = 4,
                 inner: int = 8, classes: int = 10, residual: bool = True) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.convs = nn.Sequential(conv_bn_relu(3, c1), conv_bn_relu(c1, c2),
                                   conv_bn_relu(c2, c3))
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.blocks = nn.ModuleList(Ultimus(c3, inner) for _ in range(blocks))
        self.fc = nn.Linear(c3, classes)
        self.residual = residual

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 48-d vector X of each image: the convolutions, then global average pooling."""
        return self.gap(self.convs(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h) if self.residual else block(h)
        return self.fc(h)


class SpatialTransformer(nn.Module):
    """A spatial transformer (Jaderberg et al., 2015): localisation net → θ → affine_grid →
    grid_sample.

    The localisation net reads the image and returns the 2 × 3 affine matrix θ that maps each
    output pixel's coordinates (in [-1, 1]) to where it samples the input. Its last layer
    starts at zero weight and the identity's bias, so training starts from "change nothing".

    Args:
        channels: image channels.
        size: image side (the localisation net is sized for it).
    """

    def __init__(self, channels: int = 1, size: int = 28) -> None:
        super().__init__()
        self.localisation = nn.Sequential(
            nn.Conv2d(channels, 8, 7), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(8, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            features = self.localisation(torch.zeros(1, channels, size, size)).shape[1]
        self.theta_head = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 6))
        nn.init.zeros_(self.theta_head[2].weight)
        with torch.no_grad():
            self.theta_head[2].bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """The affine matrices the localisation net predicts for ``x``: B × 2 × 3."""
        return self.theta_head(self.localisation(x)).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x).float()
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # "border": a sample from outside the image repeats its edge (MNIST's background).
        return F.grid_sample(x.float(), grid, padding_mode="border", align_corners=False)


@register("s09/stn", MNIST)
class STNNet(nn.Module):
    """Session 9: a spatial transformer in front of a small MNIST classifier.

    The classifier (two 5×5 conv → max pool → ReLU → BN stages, then FC 320 → 50 → 10) flattens
    its last map, so it cares where a stroke is: whatever straightens and centres the digit
    helps it, and that is what the transformer learns from the classification loss alone.

    Args:
        dropout: dropout before the last FC.
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.stn = SpatialTransformer(1, 28)
        self.classifier = nn.Sequential(
            nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.BatchNorm2d(10),
            nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.BatchNorm2d(20),
            nn.Flatten(), nn.Linear(320, 50), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(50, 10))

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier sees: ``x`` resampled by the learned transform."""
        return self.stn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.stn(x))
