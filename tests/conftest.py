"""Shared fixtures: where the real data is, and a guard that unit tests run in FAST mode."""

import os

import pytest

from evakit import data


@pytest.fixture
def real_mnist_available() -> bool:
    return data.cache_path("mnist", "test").is_file()


@pytest.fixture(autouse=True)
def _no_update_check(monkeypatch):
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")


def needs_real(name: str, split: str = "test"):
    """Skip unless the real dataset's cache file is under EVAKIT_DATA."""
    return pytest.mark.skipif(not data.cache_path(name, split).is_file(),
                              reason=f"real {name} not under EVAKIT_DATA="
                                     f"{os.environ.get('EVAKIT_DATA', '(unset)')}")
