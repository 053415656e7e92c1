"""Fuzz evakit.rf against torch itself and against an independent, gradient-based oracle.

Hypothesis draws small stacks of convolutions, max pools and average pools (kernel 1–5, stride
1–3 or the pooling default, dilation 1–3, padding 0–2, square or not per layer, optional ReLU
after a convolution, 1–6 layers, 1–3 channels, a 16–64 px input of either aspect). A stack keeps
the layers torch accepts, up to the first it rejects. Two properties:

* shapes: ``rf.conv_output_size`` along each axis gives the size torch produces (and raises where
  torch refuses the layer), and ``rf.summary``'s output column is the shape torch produces;
* receptive field and jump: ``rf.summary``'s last RF and jump equal what back-propagation says.
  The oracle rebuilds the stack on one channel with all-ones weights and no bias, drops ReLU and
  swaps max pooling for average pooling (a dilated max pool for an all-ones dilated convolution),
  so every input pixel in a unit's window reaches it through a strictly positive path. It then
  backpropagates 1 from the centre output unit and measures the extent (max − min + 1) of the
  non-zero input gradient along H and W; the jump is how far that support moves between two
  neighbouring output units. No formula is shared with ``evakit.rf``.

Why the oracle drops the layers' padding: zero padding cuts a unit's gradient at the image border,
and not only where the support visibly touches the border (a strided 1×1 convolution with padding
makes a pure-padding first position; a later kernel that covers it loses input pixels while its
support still starts at pixel 1). A unit far from the borders sees exactly the pixels it would see
without padding, and without padding *every* output unit's window lies inside the input (each
layer is a valid convolution). So the oracle pads the input itself instead: it doubles the input
until torch accepts the unpadded stack with at least two output units per axis. That asks torch,
never the receptive-field recurrence, and it cannot truncate the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from torch import nn

from evakit import rf

Pair = tuple[int, int]

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Layer:
    """One generated layer; ``kind`` is "conv", "max" or "avg", hyperparameters per (H, W)."""

    kind: str
    kernel: Pair
    stride: Pair | None          # None: the pooling default (stride = kernel)
    padding: Pair
    dilation: Pair = (1, 1)
    channels: int = 1            # output channels of a convolution
    relu: bool = False           # a ReLU module after a convolution

    def steps(self) -> Pair:
        """The stride actually used along (H, W)."""
        return self.kernel if self.stride is None else self.stride


@dataclass(frozen=True)
class Case:
    """A drawn stack and its input size (C, H, W)."""

    layers: tuple[Layer, ...]
    size: tuple[int, int, int]


def _arg(pair: Pair | None) -> int | Pair | None:
    """The constructor argument for a pair: an int when square, as a user would write it."""
    if pair is None or pair[0] != pair[1]:
        return pair
    return pair[0]


def _modules(layer: Layer, in_channels: int) -> list[nn.Module]:
    """The torch modules of one layer (a ReLU follows when asked)."""
    k, s, p, d = _arg(layer.kernel), _arg(layer.stride), _arg(layer.padding), _arg(layer.dilation)
    if layer.kind == "conv":
        mods: list[nn.Module] = [nn.Conv2d(in_channels, layer.channels, k, s, p, d)]
        return mods + ([nn.ReLU()] if layer.relu else [])
    if layer.kind == "max":
        return [nn.MaxPool2d(k, s, p, d)]
    return [nn.AvgPool2d(k, s, p)]


def _out_channels(layer: Layer, in_channels: int) -> int:
    """Channels after the layer."""
    return layer.channels if layer.kind == "conv" else in_channels


def _build(layers: tuple[Layer, ...], in_channels: int) -> nn.Sequential:
    """The model under test: every layer's modules in order, default initialisation."""
    mods: list[nn.Module] = []
    c = in_channels
    for layer in layers:
        mods += _modules(layer, c)
        c = _out_channels(layer, c)
    return nn.Sequential(*mods)


@dataclass
class Fit:
    """How far torch accepts a case: the accepted prefix and the (H, W) before and after each."""

    layers: tuple[Layer, ...]
    sizes: list[Pair]                  # sizes[0] is the input, sizes[i + 1] after layer i
    rejected: Layer | None = None      # the first layer torch refused, fed sizes[-1]


def _fit(case: Case) -> Fit:
    """Feed zeros through the layers one at a time; stop at the first torch rejects."""
    c, h, w = case.size
    x = torch.zeros(1, c, h, w)
    fit = Fit((), [(h, w)])
    with torch.no_grad():
        for layer in case.layers:
            try:
                for m in _modules(layer, x.shape[1]):
                    x = m(x)
            except RuntimeError:
                fit.rejected = layer
                break
            fit.layers += (layer,)
            fit.sizes.append((x.shape[-2], x.shape[-1]))
    return fit


@st.composite
def _pairs(draw: st.DrawFn, lo: int, hi: int, square: bool) -> Pair:
    """A (H, W) pair in [lo, hi], equal when ``square``."""
    a = draw(st.integers(lo, hi))
    return (a, a) if square else (a, draw(st.integers(lo, hi)))


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    """One convolution, max pool or average pool with small hyperparameters."""
    kind = draw(st.sampled_from(["conv", "max", "avg"]))
    square = not draw(st.booleans())          # shrinks towards square layers
    kernel = draw(_pairs(1, 5, square))
    if kind == "conv":
        return Layer("conv", kernel, draw(_pairs(1, 3, square)), draw(_pairs(0, 2, square)),
                     draw(_pairs(1, 3, square)), draw(st.integers(1, 3)), draw(st.booleans()))
    stride = draw(st.none() | _pairs(1, 3, square))
    # torch refuses pooling padding above half the kernel: keep to what it accepts.
    ph = draw(st.integers(0, min(2, kernel[0] // 2)))
    pw = ph if square else draw(st.integers(0, min(2, kernel[1] // 2)))
    dilation = draw(_pairs(1, 3, square)) if kind == "max" else (1, 1)
    return Layer(kind, kernel, stride, (ph, pw), dilation)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """1–6 layers on a 1–3 channel input of 16–64 px per side."""
    depth = draw(st.integers(1, 6))           # uniform: st.lists favours one or two layers
    stack = tuple(draw(layers()) for _ in range(depth))
    hw = draw(_pairs(16, 64, not draw(st.booleans())))
    return Case(stack, (draw(st.integers(1, 3)), *hw))


# Regression stacks: dilation and stride together, where the recurrences are easiest to get wrong.
DILATED_THEN_STRIDED = Case((
    Layer("conv", (3, 3), (2, 2), (2, 2), (2, 2), 2, True),   # RF 5, jump 2
    Layer("max", (3, 3), (2, 2), (1, 1), (2, 2)),             # RF 13, jump 4
    Layer("conv", (3, 3), (1, 1), (0, 0), (3, 3), 1),         # RF 37, jump 4
), (3, 64, 64))
GAPPY_POOL_THEN_DILATED = Case((
    Layer("avg", (2, 2), (3, 3), (1, 1)),                     # stride > kernel: RF 2, jump 3
    Layer("conv", (3, 3), (2, 2), (1, 1), (2, 2), 1),         # RF 14, jump 6
    Layer("max", (2, 2), None, (0, 0), (3, 3)),               # default stride 2: RF 32, jump 12
), (1, 48, 40))
NON_SQUARE_DILATED_STRIDED = Case((
    Layer("conv", (3, 1), (1, 2), (0, 1), (2, 1), 2),         # RF (5, 1), jump (1, 2)
    Layer("max", (1, 3), (2, 1), (0, 1), (1, 3)),             # RF (5, 13), jump (2, 2)
    Layer("conv", (5, 2), (3, 1), (2, 0), (1, 3), 1),         # RF (13, 19), jump (6, 2)
), (2, 40, 56))


@FUZZ
@given(case=cases())
@example(case=DILATED_THEN_STRIDED)
@example(case=GAPPY_POOL_THEN_DILATED)
@example(case=NON_SQUARE_DILATED_STRIDED)
def test_output_sizes_match_torch(case: Case):
    fit = _fit(case)
    for layer, before, after in zip(fit.layers, fit.sizes, fit.sizes[1:], strict=False):
        for axis in range(2):
            assert rf.conv_output_size(before[axis], layer.kernel[axis], layer.steps()[axis],
                                       layer.padding[axis], layer.dilation[axis]) == after[axis]
    if fit.rejected is not None:          # torch refused it: so must conv_output_size
        layer, before = fit.rejected, fit.sizes[-1]
        with pytest.raises(ValueError, match="does not fit"):
            for axis in range(2):
                rf.conv_output_size(before[axis], layer.kernel[axis], layer.steps()[axis],
                                    layer.padding[axis], layer.dilation[axis])
    assume(fit.layers)

    model = _build(fit.layers, case.size[0])
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
             for m in model]
    with torch.no_grad():
        model(torch.zeros(1, *case.size))
    for h in hooks:
        h.remove()
    table = rf.summary(model, case.size)
    assert table.column("output")[1:-1] == shapes


def _oracle_layers(layers: tuple[Layer, ...]) -> nn.Sequential:
    """The stack on one channel, float64: all-ones weights, no bias, no padding, no ReLU.

    Average pooling stands for max pooling (same kernel and stride); a dilated max pool, which
    average pooling cannot express, becomes an all-ones convolution with the same dilation.
    """
    mods: list[nn.Module] = []
    for layer in layers:
        if layer.kind == "avg" or (layer.kind == "max" and layer.dilation == (1, 1)):
            mods.append(nn.AvgPool2d(layer.kernel, layer.steps(), 0))
            continue
        conv = nn.Conv2d(1, 1, layer.kernel, layer.steps(), 0, layer.dilation, bias=False,
                         dtype=torch.float64)
        nn.init.ones_(conv.weight)
        mods.append(conv)
    return nn.Sequential(*mods).requires_grad_(False)


def _oracle_input(net: nn.Sequential, hw: Pair) -> tuple[int, int]:
    """Double the input along each axis until torch gives at least two outputs there."""
    h, w = hw
    while True:
        assert h * w <= 4096 * 4096, "the oracle input grew out of bounds"
        try:
            out = net(torch.zeros(1, 1, h, w, dtype=torch.float64)).shape[-2:]
        except RuntimeError:                      # some layer does not fit yet
            h, w = 2 * h, 2 * w
            continue
        if out[0] >= 2 and out[1] >= 2:
            return h, w
        h, w = (2 * h if out[0] < 2 else h), (2 * w if out[1] < 2 else w)


def _support(grad: torch.Tensor) -> tuple[Pair, Pair]:
    """(first, last) index of the non-zero gradient along H and along W."""
    spans = []
    for dim in (1, 0):                # rows: reduce over W (dim 1); columns: reduce over H
        idx = torch.nonzero(grad.ne(0).any(dim=dim)).flatten()
        spans.append((int(idx.min()), int(idx.max())))
    return spans[0], spans[1]


def oracle(layers: tuple[Layer, ...], hw: Pair) -> tuple[Pair, Pair]:
    """Receptive field and jump along (H, W), from the input gradient of output units."""
    net = _oracle_layers(layers)
    x = torch.zeros(1, 1, *_oracle_input(net, hw), dtype=torch.float64, requires_grad=True)
    y = net(x)[0, 0]
    ci, cj = y.shape[0] // 2, y.shape[1] // 2
    (rows, cols), (rows0, cols0) = (
        _support(torch.autograd.grad(y[i, j], x, retain_graph=True)[0][0, 0])
        for i, j in ((ci, cj), (ci - 1, cj - 1)))
    field = (rows[1] - rows[0] + 1, cols[1] - cols[0] + 1)
    jump = (rows[0] - rows0[0], cols[0] - cols0[0])
    return field, jump


def _reported(pair: Pair) -> int | Pair:
    """How rf.summary writes a per-axis value: an int when square, a tuple when not."""
    return pair[0] if pair[0] == pair[1] else pair


def test_oracle_on_a_hand_worked_stack():
    # Two 3x3 convs see 5x5; a 2x2 pool then doubles the jump (Distill's worked example).
    stack = (Layer("conv", (3, 3), (1, 1), (1, 1)), Layer("conv", (3, 3), (1, 1), (0, 0)),
             Layer("max", (2, 2), None, (0, 0)))
    assert oracle(stack, (16, 16)) == ((6, 6), (2, 2))
    # A 1x1 stride-2 conv leaves holes: the next 3x3 touches pixels 0, 2, 4 — extent 5.
    holes = (Layer("conv", (1, 1), (2, 2), (0, 0)), Layer("conv", (3, 1), (1, 1), (0, 0)))
    assert oracle(holes, (16, 16)) == ((5, 1), (2, 2))


@FUZZ
@given(case=cases())
@example(case=DILATED_THEN_STRIDED)
@example(case=GAPPY_POOL_THEN_DILATED)
@example(case=NON_SQUARE_DILATED_STRIDED)
def test_receptive_field_and_jump_match_the_input_gradient(case: Case):
    fit = _fit(case)
    assume(fit.layers)
    event(f"{len(fit.layers)} layers kept of {len(case.layers)}")
    table = rf.summary(_build(fit.layers, case.size[0]), case.size)
    field, jump = oracle(fit.layers, case.size[1:])
    event("non-square RF" if field[0] != field[1] else "square RF")
    event(f"RF {'< 16' if max(field) < 16 else '< 64' if max(field) < 64 else '>= 64'}")
    got_rf, got_jump = table.column("RF")[-2], table.column("jump")[-2]
    assert (got_rf, type(got_rf)) == (_reported(field), type(_reported(field)))
    assert (got_jump, type(got_jump)) == (_reported(jump), type(_reported(jump)))
