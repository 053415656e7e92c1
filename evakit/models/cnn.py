"""The convolutional networks of sessions 1–8, each registered by name.

Each model is a plain ``nn.Module`` whose docstring says which session uses it and what
constraint it meets. Every convolution unit is :func:`conv_block`, in one of two orders: the
MNIST networks put the norm after the ReLU (conv → ReLU → BN, as the course's drill-down was
built), the CIFAR networks before it (conv → BN → ReLU, as the ResNet papers do). Session 5
shows that either trains; the order only changes what the norm sees.
"""

from __future__ import annotations

import torch
from torch import nn

from evakit.models.registry import register

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)


def norm_layer(kind: str, channels: int, groups: int = 4) -> nn.Module:
    """The normalization of session 5 by name: batch, group or layer norm.

    ``"bn"`` normalizes each channel over the batch and positions; ``"gn"`` each group of
    ``groups`` channels over its channels and positions, per image; ``"ln"`` all channels and
    positions of one image (a GroupNorm with one group).
    """
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(groups, channels)
    if kind == "ln":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"norm must be 'bn', 'gn' or 'ln', got {kind!r}")


def conv_block(c_in: int, c_out: int, kernel: int = 3, *, padding: int = 0, stride: int = 1,
               dilation: int = 1, norm: str | None = None, norm_first: bool = False,
               dropout: float = 0.0, pool: bool = False, bias: bool | None = None,
               groups: int = 4) -> nn.Sequential:
    """The unit every CNN of the course repeats.

    conv (→ 2×2 max pool) → ReLU → norm (→ dropout); with ``norm_first`` the norm comes before
    the ReLU: conv (→ pool) → norm → ReLU (→ dropout).

    Args:
        c_in, c_out: channels in and out.
        kernel, padding, stride, dilation: the convolution's.
        norm: ``"bn"``, ``"gn"``, ``"ln"`` (see :func:`norm_layer`) or None.
        norm_first: norm before the ReLU (the CIFAR networks) instead of after (MNIST).
        dropout: dropout probability after the unit (none when 0).
        pool: a 2×2 max pool right after the convolution.
        bias: the convolution's bias; by default only when there is no norm to absorb it.
        groups: groups of a group norm.
    """
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation,
                                         bias=norm is None if bias is None else bias)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    act_norm = [nn.ReLU()] + ([norm_layer(norm, c_out, groups)] if norm else [])
    layers += act_norm[::-1] if norm_first else act_norm
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, *, stride: int = 1,
                 dilation: int = 1, pool: bool = False) -> nn.Sequential:
    """The CIFAR networks' unit: a 'same'-padded conv (→ 2×2 max pool) → BatchNorm → ReLU."""
    return conv_block(c_in, c_out, kernel, padding=dilation * (kernel // 2), stride=stride,
                      dilation=dilation, norm="bn", norm_first=True, pool=pool)


@register("s01/rf-net", MNIST)
class RFNet(nn.Module):
    """Session 1's assignment: an MNIST network whose receptive field reaches the whole digit.

    Two blocks of 3×3 convolutions, each closed by max pooling, then a 1×1 convolution that
    mixes channels down to 10 and a 4×4 convolution that turns the 4×4 map into 10 logits.
    No padding, so every layer's output size and RF can be worked out by hand.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_block(1, w), conv_block(w, 2 * w), nn.MaxPool2d(2),          # 28→26→24→12
            conv_block(2 * w, 2 * w), conv_block(2 * w, 2 * w), nn.MaxPool2d(2),  # →10→8→4
            conv_block(2 * w, 10, 1),                                           # 1×1 mixing
            nn.Conv2d(10, 10, 4),                                               # 4×4 → 1×1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


@register("s02/first-kernel", MNIST)
class FirstKernelNet(nn.Module):
    """Session 2: an MNIST network whose first layer has ``kernel``×``kernel`` kernels.

    Trained once per kernel size (3, 5, 7, 11) to show what first-layer kernels learn. Later
    layers are the same small 3×3 stack; the first layer pads to keep 28×28.
    """

    def __init__(self, kernel: int = 3, width: int = 16) -> None:
        super().__init__()
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"kernel must be a positive odd integer, got {kernel!r}")
        self.first = nn.Conv2d(1, width, kernel, padding=kernel // 2)
        self.rest = nn.Sequential(
            nn.ReLU(), nn.MaxPool2d(2),                                          # 28→14
            conv_block(width, 2 * width, padding=1), nn.MaxPool2d(2),            # →7
            conv_block(2 * width, 2 * width, padding=1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(x))


@register("s25/digit-sum", MNIST)
class DigitSumNet(nn.Module):
    """Session 2.5's assignment: read an MNIST digit and add a random integer 0–9 to it.

    Input: the image and the integer one-hot encoded (10 values). A small CNN turns the image
    into 10 digit logits and a 64-d embedding; the embedding is concatenated with the one-hot
    integer (the combining layer) and two FC layers give 19 logits for the sum 0–18. The forward
    returns one tensor: 10 digit logits followed by 19 sum logits.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_block(1, w, padding=1, norm="bn"), nn.MaxPool2d(2),               # 28→14
            conv_block(w, 2 * w, padding=1, norm="bn"), nn.MaxPool2d(2),           # →7
            conv_block(2 * w, 4 * w, padding=1, norm="bn"),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 64), nn.ReLU(),
        )
        self.digit_head = nn.Linear(64, 10)
        self.sum_head = nn.Sequential(nn.Linear(64 + 10, 64), nn.ReLU(), nn.Linear(64, 19))

    def forward(self, image: torch.Tensor, number: torch.Tensor) -> torch.Tensor:
        embedding = self.features(image)
        digit = self.digit_head(embedding)
        combined = torch.cat([embedding, nn.functional.one_hot(number, 10).float()], dim=1)
        return torch.cat([digit, self.sum_head(combined)], dim=1)


@register("s03/assignment", MNIST)
class Session3Net(nn.Module):
    """Session 3's assignment: ≥ 99.4 % on MNIST with < 20 000 parameters in < 20 epochs.

    3×3 convolutions with batch norm and dropout after each, one max pool at RF 6 followed by a
    1×1 transition that halves the channels, global average pooling, and a single FC layer.
    """

    def __init__(self, dropout: float = 0.05) -> None:
        super().__init__()
        p = dropout
        self.features = nn.Sequential(
            conv_block(1, 10, norm="bn", dropout=p),             # 28→26, RF 3
            conv_block(10, 16, norm="bn", dropout=p),            # →24, RF 5
            nn.MaxPool2d(2),                                    # →12, RF 6
            conv_block(16, 10, 1, norm="bn"),                    # 1×1 transition
            conv_block(10, 16, norm="bn", dropout=p),            # →10, RF 10
            conv_block(16, 16, norm="bn", dropout=p),            # →8, RF 14
            conv_block(16, 16, norm="bn", dropout=p),            # →6, RF 18
            conv_block(16, 16, padding=1, norm="bn", dropout=p),  # →6, RF 22
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register("s04/setup", MNIST)
class SetupNet(nn.Module):
    """Session 4, code 1 (setup): the 6.3 M-parameter starting point.

    Padded 3×3 convolutions 32 → 64, pool, 128 → 256, pool, then unpadded 512 → 1024 → 10 on
    the 7×7 map. It works, but with about 6.4 million parameters for 28×28 digits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_block(1, 32, padding=1), conv_block(32, 64, padding=1), nn.MaxPool2d(2),
            conv_block(64, 128, padding=1), conv_block(128, 256, padding=1), nn.MaxPool2d(2),
            conv_block(256, 512), conv_block(512, 1024), nn.Conv2d(1024, 10, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


@register("s04/drill", MNIST)
class DrillNet(nn.Module):
    """Session 4, codes 2–10 and the assignment steps: one skeleton, switched on piece by piece.

    ``block1`` unpadded 3×3 convolutions → 2×2 max pool → a 1×1 transition to ``transition``
    channels → ``block2`` unpadded 3×3 convolutions → ``padded`` 3×3 convolutions with
    padding 1 → a head. Head ``"conv"``: 1×1 to 10 channels, then one convolution as large as
    the remaining map (the 7×7 of the seed). Head ``"gap"``: global average pooling, optional
    1×1 layers of ``after_gap`` channels (capacity after GAP), then 1×1 to 10. Every conv but
    the last is followed by ReLU, then batch norm (``bn``) and dropout (``dropout``).
    """

    def __init__(self, block1: tuple[int, ...] = (32, 64, 128), transition: int = 32,
                 block2: tuple[int, ...] = (64, 128), padded: tuple[int, ...] = (),
                 head: str = "conv", after_gap: tuple[int, ...] = (), bn: bool = False,
                 dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        if head not in ("conv", "gap"):
            raise ValueError(f"head must be 'conv' or 'gap', got {head!r}")

        def block(c_in, c_out, k=3, padding=0):
            return conv_block(c_in, c_out, k, padding=padding, bias=bias,
                              norm="bn" if bn else None, dropout=dropout)

        layers, c, size = [], 1, 28
        for width in block1:
            layers.append(block(c, width))
            c, size = width, size - 2
        layers += [nn.MaxPool2d(2), block(c, transition, 1)]
        c, size = transition, size // 2
        for width in block2:
            layers.append(block(c, width))
            c, size = width, size - 2
        for width in padded:
            layers.append(block(c, width, padding=1))
            c = width
        if head == "conv":
            layers += [block(c, 10, 1), nn.Conv2d(10, 10, size, bias=bias)]
        else:
            layers.append(nn.AdaptiveAvgPool2d(1))
            for width in after_gap:
                layers.append(block(c, width, 1))
                c = width
            layers.append(nn.Conv2d(c, 10, 1, bias=bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(1)


@register("s05/norm-net", MNIST)
class NormNet(nn.Module):
    """Session 5's assignment: one MNIST network whose normalization is chosen by name.

    3×3 convolutions (8, 12) → max pool at RF 6 → 1×1 to 8 → 3×3 (12, 16, 16) → padded 3×3
    16 → GAP → 1×1 to 10. Every conv but the last: conv → ReLU → ``norm`` → dropout. All
    widths are multiples of 4 so group norm can use 4 groups.
    """

    def __init__(self, norm: str = "bn", dropout: float = 0.05, groups: int = 4) -> None:
        super().__init__()

        def block(c_in, c_out, k=3, padding=0):
            return conv_block(c_in, c_out, k, padding=padding, bias=False, norm=norm,
                              dropout=dropout, groups=groups)

        self.layers = nn.Sequential(
            block(1, 8), block(8, 12), nn.MaxPool2d(2), block(12, 8, 1),
            block(8, 12), block(12, 16), block(16, 16), block(16, 16, padding=1),
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 10, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(1)


class DepthwiseSeparable(nn.Sequential):
    """A 3×3 depthwise conv (one filter per channel) then a 1×1 pointwise conv mixing channels.

    Parameters: 9·c_in + c_in·c_out, against 9·c_in·c_out for a full 3×3 conv.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False))


@register("s06/cifar-net", CIFAR)
class CifarNet(nn.Module):
    """Session 6's assignment: C1 C2 C3 C4 → GAP → 1×1, no max pooling, for CIFAR-10.

    Each of C1–C3 ends in a stride-2 3×3 conv (the downsampling max pooling would do); C2 opens
    with a dilated conv (dilation 2: a 5×5 view for 3×3 weights) and C3 with a depthwise-
    separable conv. Meets the constraints: < 200 000 parameters, receptive field > 44.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (32, 40, 56, 64)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.c1 = nn.Sequential(conv_bn_relu(3, w1 // 2), conv_bn_relu(w1 // 2, w1),
                                conv_bn_relu(w1, w1, stride=2))
        self.c2 = nn.Sequential(conv_bn_relu(w1, w2, dilation=2), conv_bn_relu(w2, w2),
                                conv_bn_relu(w2, w2, stride=2))
        self.c3 = nn.Sequential(DepthwiseSeparable(w2, w3), nn.BatchNorm2d(w3), nn.ReLU(),
                                conv_bn_relu(w3, w3), conv_bn_relu(w3, w3, stride=2))
        self.c4 = nn.Sequential(conv_bn_relu(w3, w4), conv_bn_relu(w4, w4))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(w4, 10, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.c4(self.c3(self.c2(self.c1(x))))).flatten(1)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 conv–BN pairs, added to the input (projected when the
    shape changes), then ReLU (He et al. 2016, v1)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32×32 inputs: a 3×3 stem (no 7×7, no max pool), four stages of basic blocks
    at 64/128/256/512 channels (stride 2 from the second), GAP, one linear layer.

    Args:
        blocks: basic blocks per stage — (2, 2, 2, 2) is ResNet18, (3, 4, 6, 3) ResNet34.
        classes: output classes.
        width: channels of the first stage (64 in the paper; the others double it). A smaller
            width is the same architecture at a fraction of the cost, for CPU smoke runs.
    """

    def __init__(self, blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
                 classes: int = 10, width: int = 64) -> None:
        super().__init__()
        self.stem = conv_bn_relu(3, width)
        stages, c_in = [], width
        for i, (n, c_out) in enumerate(zip(blocks, (width * 2**k for k in range(4)),
                                           strict=True)):
            stage = []
            for j in range(n):
                stage.append(BasicBlock(c_in, c_out, 2 if i > 0 and j == 0 else 1))
                c_in = c_out
            stages.append(nn.Sequential(*stage))
        # stages[k] is stage k + 1, at 32, 16, 8 and 4 pixels for a 32×32 input.
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


@register("s07/resnet18", CIFAR)
def resnet18(classes: int = 10, width: int = 64) -> CifarResNet:
    """Session 7's assignment: ResNet18, CIFAR variant (basic blocks 2-2-2-2), 11.2 M params."""
    return CifarResNet((2, 2, 2, 2), classes, width)


@register("s07/resnet34", CIFAR)
def resnet34(classes: int = 10, width: int = 64) -> CifarResNet:
    """Session 7's assignment, deeper: ResNet34, CIFAR variant (basic blocks 3-4-6-3)."""
    return CifarResNet((3, 4, 6, 3), classes, width)


@register("s08/custom-resnet", CIFAR)
class CustomResNet(nn.Module):
    """Session 8's assignment: the 9-layer residual network of Page's DAWNBench work.

    prep 64 → layer1: conv 128, max pool, + residual (two conv 128) → layer2: conv 256, max
    pool → layer3: conv 512, max pool, + residual (two conv 512) → max pool 4 → linear, with
    the logits scaled by ``scale`` (Page's 0.125 keeps early softmax outputs soft at high LR).
    ``width`` is the prep layer's channels (64; the later ones are 2, 4 and 8 times it) — a
    smaller width is the same network at a fraction of the cost, for CPU smoke runs.
    """

    def __init__(self, classes: int = 10, scale: float = 0.125, width: int = 64) -> None:
        super().__init__()
        w1, w2, w3 = 2 * width, 4 * width, 8 * width
        self.prep = conv_bn_relu(3, width)
        self.layer1 = conv_bn_relu(width, w1, pool=True)
        self.res1 = nn.Sequential(conv_bn_relu(w1, w1), conv_bn_relu(w1, w1))
        self.layer2 = conv_bn_relu(w1, w2, pool=True)
        self.layer3 = conv_bn_relu(w2, w3, pool=True)
        self.res3 = nn.Sequential(conv_bn_relu(w3, w3), conv_bn_relu(w3, w3))
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(w3, classes, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.prep(x))
        x = x + self.res1(x)
        x = self.layer3(self.layer2(x))
        x = x + self.res3(x)
        return self.fc(self.pool(x).flatten(1)) * self.scale
