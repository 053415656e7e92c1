"""The EVA table: shape, parameters and receptive field of every layer of any ``nn.Module``.

``summary(model, input_size)`` runs one forward pass on zeros. A torch-function mode follows every
tensor: each carries its *jump* (distance, in input pixels, between neighbouring positions of its
grid) and its *receptive field* (RF, how many input pixels one position sees), for height and
width. Convolutions and pooling update them with the recurrences of Araujo, Norris & Sim
("Computing Receptive Fields of Convolutional Neural Networks", Distill 2019)::

    rf_out   = rf_in + (kernel - 1) * dilation * jump_in
    jump_out = jump_in * stride

Any other operation takes the largest RF of its inputs (a residual sum, a concatenation), a
linear layer sees the whole input, and a transposed convolution with kernel k and stride s
divides the jump by s while each output sees ceil(k / s) input positions. One row is written per
leaf module, with the RF of its output; forward hooks read those from the tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from evakit.models.registry import evaluating
from evakit.table import Table

Pair = tuple[float, float]
_ATTR = "_evakit_rf"


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    ``floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``, as in PyTorch.
    """
    for name, value in (("size", size), ("kernel", kernel), ("stride", stride),
                        ("dilation", dilation)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(f"a kernel spanning {span} pixels does not fit in {size} pixels "
                         f"with padding {padding}")
    return (size + 2 * padding - span) // stride + 1


@dataclass
class Info:
    """Jump and receptive field of a tensor, for height and width."""

    jump: Pair
    rf: Pair


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int | float):
        return (v, v)
    v = tuple(v)
    return (v[0], v[0]) if len(v) == 1 else (v[-2], v[-1])


def _arg(args, kwargs, index, name, default):
    if name in kwargs and kwargs[name] is not None:
        return kwargs[name]
    if len(args) > index and args[index] is not None:
        return args[index]
    return default


def _grow(info: Info, kernel, stride, dilation=1) -> Info:
    k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
    rf = tuple(info.rf[i] + (k[i] - 1) * d[i] * info.jump[i] for i in range(2))
    return Info(tuple(info.jump[i] * s[i] for i in range(2)), rf)


class _Tracker(TorchFunctionMode):
    """Attaches an :class:`Info` to every tensor computed from the input."""

    def __init__(self, image_hw: tuple[int, int]):
        super().__init__()
        self.image_hw = image_hw

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        infos = [getattr(t, _ATTR) for t in _tensors((args, kwargs)) if hasattr(t, _ATTR)]
        if infos:
            info = self._rule(getattr(func, "__name__", ""), args, kwargs, infos)
            for t in _tensors(out):
                if not isinstance(t, nn.Parameter):
                    setattr(t, _ATTR, info)
        return out

    def _rule(self, name: str, args, kwargs, infos: list[Info]) -> Info:
        widest = max(infos, key=lambda i: i.rf[0] * i.rf[1])
        x = args[0] if args else None
        if name in ("conv1d", "conv2d", "conv3d"):
            return _grow(widest, tuple(args[1].shape[2:]), _arg(args, kwargs, 3, "stride", 1),
                         _arg(args, kwargs, 5, "dilation", 1))
        if name == "conv_transpose2d":
            k, s = _pair(tuple(args[1].shape[2:])), _pair(_arg(args, kwargs, 3, "stride", 1))
            seen = tuple(math.ceil(k[i] / s[i]) for i in range(2))
            grown = _grow(widest, seen, 1)
            return Info(tuple(grown.jump[i] / s[i] for i in range(2)), grown.rf)
        if "pool" in name and "adaptive" not in name:
            kernel = _arg(args, kwargs, 1, "kernel_size", 1)
            stride = _arg(args, kwargs, 2, "stride", None) or kernel
            dilation = _arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1
            return _grow(widest, kernel, stride, dilation)
        if "adaptive" in name and isinstance(x, torch.Tensor):
            size_in = x.shape[-2:]
            size_out = _pair(_arg(args, kwargs, 1, "output_size", 1))
            size_out = tuple(size_in[i] if size_out[i] is None else size_out[i]
                             for i in range(2))
            kernel = tuple(math.ceil(size_in[i] / size_out[i]) for i in range(2))
            stride = tuple(size_in[i] // size_out[i] for i in range(2))
            return _grow(widest, kernel, stride)
        if name == "linear" and isinstance(x, torch.Tensor) and x.ndim == 2:
            return Info(widest.jump, tuple(max(float(v), r)
                                           for v, r in zip(self.image_hw, widest.rf, strict=True)))
        return widest


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _hyper(module: nn.Module, name: str):
    value = getattr(module, name, None)
    if value is None or isinstance(value, str):
        return value
    p = _pair(value)
    return p[0] if p[0] == p[1] else p


def summary(model: nn.Module, input_size: Sequence[int], *, device: str | None = None) -> Table:
    """The EVA table of ``model`` for an input of ``input_size`` (C, H, W), batch of one.

    Columns: layer name, type, kernel, stride, padding, dilation, output shape (C×H×W), jump,
    receptive field, and the parameters owned by that layer; the last row holds the totals
    (each shared parameter counted once, as torchinfo does).
    """
    rows, _ = _trace(model, input_size, device)
    total = sum(p.numel() for p in model.parameters())
    rows.append(["total", "", None, None, None, None, None, None, None, total])
    return Table(["layer", "type", "kernel", "stride", "padding", "dilation", "output", "jump",
                  "RF", "params"], rows, f"{type(model).__name__}: {total:,} parameters")


def _trace(model: nn.Module, input_size: Sequence[int],
           device: str | None = None) -> tuple[list[list], dict[str, object]]:
    """One forward pass: a row per leaf module, and the RF of each leaf module's input."""
    if len(input_size) != 3 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ValueError(f"input_size must be (channels, height, width) as positive integers, "
                         f"got {tuple(input_size)!r}")
    first = next(model.parameters(), None)
    device = device or (first.device if first is not None else "cpu")
    rows: list[list] = [["input", "", None, None, None, None, tuple(input_size), 1, 1, 0]]
    input_rf: dict[str, object] = {}
    names = {m: n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(_row_hook(rows, names[m])) for m in leaves]
    hooks += [m.register_forward_pre_hook(_input_hook(input_rf, names[m])) for m in leaves]
    x = torch.zeros(1, *input_size, device=device)
    setattr(x, _ATTR, Info((1, 1), (1, 1)))
    try:
        with torch.no_grad(), evaluating(model), _Tracker(tuple(input_size[1:])):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return rows, input_rf


def _rf_of(tensor) -> object:
    info = getattr(tensor, _ATTR, None) if tensor is not None else None
    if info is None:
        return None
    return _int(info.rf[0] if info.rf[0] == info.rf[1] else info.rf)


def _input_hook(input_rf: dict[str, object], name: str):
    def hook(_module: nn.Module, inputs):
        input_rf.setdefault(name, _rf_of(next(_tensors(inputs), None)))
    return hook


def _row_hook(rows: list[list], name: str):
    def hook(module: nn.Module, _inputs, output):
        out = next(_tensors(output), None)
        info = getattr(out, _ATTR, None) if out is not None else None
        shape = tuple(out.shape[1:]) if out is not None else None
        jump = rf = None
        if info is not None:
            jump = info.jump[0] if info.jump[0] == info.jump[1] else info.jump
            rf = info.rf[0] if info.rf[0] == info.rf[1] else info.rf
        params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append([name, type(module).__name__, _hyper(module, "kernel_size"),
                     _hyper(module, "stride"), _hyper(module, "padding"),
                     _hyper(module, "dilation"), shape, _int(jump), _int(rf), params])
    return hook


def _int(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, tuple):
        return tuple(_int(x) for x in v)
    return v


def receptive_field(model: nn.Module, input_size: Sequence[int]) -> int | tuple:
    """The receptive field of the model's last layer that has one (an int when square)."""
    rf = [r for r in summary(model, input_size).column("RF") if r is not None]
    return rf[-1]


def receptive_field_before_pool(model: nn.Module,
                                input_size: Sequence[int]) -> tuple[str, object]:
    """The receptive field of what enters the first global pooling, and that pool's name.

    Global pooling (a pool whose output is 1×1) lets the next layer "see" the whole image
    whatever came before, so a constraint on what the network sees is judged on the pool's
    input. Without a global pool: the last layer that has a receptive field, and its output's.

    Returns:
        (layer name, RF) — the RF an int when square, else (height, width).
    """
    rows, input_rf = _trace(model, input_size)
    for name, kind, *_, shape, _jump, _rf, _params in rows[1:]:
        if "Pool" in kind and shape is not None and tuple(shape[1:]) == (1, 1):
            return name, input_rf[name]
    last = [row for row in rows if row[8] is not None][-1]
    return last[0], last[8]
