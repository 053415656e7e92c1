"""One registry for every network of the course: found by name, built one way.

``@register("s01/rf-net", input_size=(1, 28, 28))`` on a class or a factory function makes it
constructible by ``create("s01/rf-net", **kwargs)``; ``input_size(name)`` says what one input
image looks like (C, H, W), so a summary, a check or a notebook never repeats it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from torch import nn


@dataclass(frozen=True)
class Entry:
    """A registered model: how to build it and the input it takes."""

    build: Callable[..., nn.Module]
    input_size: tuple[int, ...]


_REGISTRY: dict[str, Entry] = {}
_Build = TypeVar("_Build", bound=Callable[..., nn.Module])


def register(name: str, input_size: tuple[int, ...]) -> Callable[[_Build], _Build]:
    """Decorator: make a model class or factory constructible by ``create(name)``.

    Args:
        name: the registry name, ``"sNN/what"`` by the session that builds it.
        input_size: one input as (C, H, W) for images, (T,) for token sequences.
    """
    def wrap(build: _Build) -> _Build:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = Entry(build, tuple(input_size))
        return build
    return wrap


def names() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}: expected one of {names()}")
    return _REGISTRY[name]


def create(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name`` with its keyword arguments."""
    return _entry(name).build(**kwargs)


def input_size(name: str) -> tuple[int, ...]:
    """The input one example of model ``name`` takes: (C, H, W) or (T,)."""
    return _entry(name).input_size


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(model):`` — the model in eval mode (BatchNorm's running statistics, no
    dropout) for the block; afterwards every submodule is back in its own mode (a BatchNorm
    frozen in eval stays so), even on an error."""
    modes = {module: module.training for module in model.modules()}
    try:
        yield model.eval()
    finally:
        for module, training in modes.items():
            module.training = training
