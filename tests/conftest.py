"""Shared fixtures: where the real data is, and a guard that unit tests run in FAST mode."""

import os

import pytest
import torch

from evakit import data


def pytest_configure(config):
    """Share the cores among pytest-xdist's workers: a worker and the notebook kernels it
    starts (they inherit OMP_NUM_THREADS) take their share of the threads, because two
    processes that each spin up a thread per core slow each other down several times over."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


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
