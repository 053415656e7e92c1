import stat

import numpy as np
import pytest
import torch

from evakit import data
from tests.conftest import needs_real


@needs_real("mnist")
def test_real_mnist_test_split_is_the_published_one():
    test = data.load("mnist", "test", fast=False)
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert test.labels.dtype == torch.int64
    # MNIST's published test-set class counts.
    counts = torch.bincount(test.labels, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_real("mnist", "train")
def test_real_mnist_train_statistics_match_the_usual_normalization():
    train = data.load("mnist", "train", fast=False)
    assert len(train) == 60000
    pixels = train.images.float() / 255
    assert pixels.mean().item() == pytest.approx(data.STATS["mnist"][0][0], abs=1e-4)
    assert pixels.std().item() == pytest.approx(data.STATS["mnist"][1][0], abs=1e-4)


@needs_real("mnist")
def test_fast_mode_slices_the_real_set(monkeypatch):
    monkeypatch.setenv("EVAKIT_FAST", "1")
    test = data.load("mnist", "test")
    full = data.load("mnist", "test", fast=False)
    assert len(test) == data.FAST_SIZES["test"]
    assert torch.equal(test.images, full.images[: len(test)])
    assert "first 1000 of 10000" in test.source


def test_cache_roundtrip_and_hwc_layout(tmp_path):
    images = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    labels = np.array([3, 7])
    data.write_cache(data.cache_path("cifar10", "test", tmp_path), images, labels)
    loaded = data.load("cifar10", "test", root=tmp_path, fast=False)
    assert loaded.images.shape == (2, 3, 4, 5)
    assert torch.equal(loaded.images[1, 2], torch.from_numpy(images[1, :, :, 2]))
    assert loaded.labels.tolist() == [3, 7]
    assert not list(tmp_path.rglob("*.part"))


def test_cache_write_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_savez(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    target = data.cache_path("mnist", "train", tmp_path)
    with pytest.raises(OSError):
        data.write_cache(target, np.zeros((1, 2, 2, 1), np.uint8), np.zeros(1, np.int64))
    assert list(target.parent.iterdir()) == []


def test_offline_and_missing_gives_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_from_torchvision", lambda *a: None)
    with pytest.raises(data.DataUnavailable) as err:
        data.load("fashion-mnist", "test", root=tmp_path)
    message = str(err.value)
    assert "fashion-mnist" in message and str(tmp_path) in message and "EVAKIT_DATA" in message


def test_read_only_root_is_never_written(tmp_path, monkeypatch):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)          # no write bits; root could still write
    seen = []

    class Offline:
        def __init__(self, folder, **_kw):
            seen.append(folder)
            raise RuntimeError("offline")

    import torchvision
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    try:
        assert not data._writable(root)
        with pytest.raises(data.DataUnavailable):
            data.load("fashion-mnist", "test", root=root)
        assert seen and not seen[0].startswith(str(root))   # scratch folder elsewhere
        assert list(root.iterdir()) == []
    finally:
        root.chmod(stat.S_IRWXU)


def test_unwritable_root_is_detected_even_as_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert not data._writable(blocker / "sub")


def test_cifar_sample_only_in_fast_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "_from_torchvision", lambda *a: None)
    monkeypatch.setattr(data, "KNOWN_MD5", {})          # these zeros stand in for the sample
    images = np.zeros((3, 32, 32, 3), np.uint8)
    data.write_cache(data.cache_path("cifar10-sample", "train", tmp_path), images,
                     np.zeros(3, np.int64))
    sample = data.load("cifar10", "train", root=tmp_path, fast=True)
    assert "SAMPLE" in sample.source and "sample" in capsys.readouterr().out
    with pytest.raises(data.DataUnavailable):
        data.load("cifar10", "train", root=tmp_path, fast=False)


def test_full_cifar_test_set_falls_back_to_the_exact_first_thousand_and_says_so(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "_from_torchvision", lambda *a: None)
    monkeypatch.setattr(data, "KNOWN_MD5", {})          # these zeros stand in for the sample
    images = np.zeros((3, 32, 32, 3), np.uint8)
    data.write_cache(data.cache_path("cifar10-sample", "test", tmp_path), images,
                     np.array([0, 1, 2]))
    test = data.load("cifar10", "test", root=tmp_path, fast=False)
    assert test.note == data.PARTIAL_NOTE and "first 1,000" in capsys.readouterr().out
    assert test.identity().note == data.PARTIAL_NOTE


def test_bad_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="expected one of"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load("mnist", "validation")
    with pytest.raises(ValueError, match="synthetic"):
        data.synthetic("synthetic-imagenet")


def test_synthetic_sets_are_labelled_synthetic_and_learnable():
    s = data.synthetic("synthetic-cifar10", 50, seed=3)
    assert s.images.shape == (50, 3, 32, 32) and s.source == "synthetic"
    assert torch.equal(s.images, data.synthetic("synthetic-cifar10", 50, seed=3).images)
    # Learnable: nearest class mean, fitted on one seed, classifies a set of another seed
    # (the class templates are shared) far above chance (10 %).
    fit = data.synthetic("synthetic-mnist", 500, seed=1)
    new = data.synthetic("synthetic-mnist", 200, seed=2, split="test")
    x, x_new = fit.images.flatten(1).float(), new.images.flatten(1).float()
    means = torch.stack([x[fit.labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(x_new, means).argmin(1)
    assert (predicted == new.labels).float().mean() > 0.9


def test_loader_shuffles_reproducibly_and_normalizes():
    s = data.synthetic("synthetic-mnist", 100)
    a = [y for _, y in data.Loader(s, 32, shuffle=True, seed=5)]
    b = [y for _, y in data.Loader(s, 32, shuffle=True, seed=5)]
    assert [len(y) for y in a] == [32, 32, 32, 4]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert sorted(torch.cat(a).tolist()) == sorted(s.labels.tolist())
    x, _ = next(iter(data.Loader(s, 100)))
    expected = (s.images.float() / 255 - 0.5) / 0.5
    torch.testing.assert_close(x, expected)
    assert len(data.Loader(s, 32, drop_last=True)) == 3


def test_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        data.Loader(data.synthetic("synthetic-mnist", 10), 0)


def test_digit_sum_targets_are_digit_and_sum():
    s = data.synthetic("synthetic-mnist", 64)
    batches = data.DigitSumLoader(data.Loader(s, 16), seed=2, fixed=True)
    (x, numbers), y = next(iter(batches))
    assert torch.equal(y[:, 0], s.labels[:16])
    assert torch.equal(y[:, 1], s.labels[:16] + numbers)
    assert numbers.min() >= 0 and numbers.max() <= 9
    (_, again), _ = next(iter(batches))
    assert torch.equal(numbers, again)  # a fixed test set draws the same numbers every pass


def test_alternating_flip_shows_every_image_both_ways_in_two_epochs():
    images = data.synthetic("synthetic-cifar10", 64, seed=1)
    loader = data.Loader(images, 64, alternate_flip=True, seed=3)
    first, second = (next(iter(loader))[0] for _ in range(2))
    plain = next(iter(data.Loader(images, 64)))[0]
    flipped_first = (first - plain).abs().flatten(1).amax(1) > 1e-6
    assert 0.3 < flipped_first.float().mean() < 0.7          # about half, drawn once
    assert torch.allclose(second[flipped_first], plain[flipped_first])
    assert torch.allclose(second[~flipped_first], plain[~flipped_first].flip(3))
    again = data.Loader(images, 64, alternate_flip=True, seed=3)
    again.load_state_dict(loader.state_dict())
    assert torch.equal(next(iter(again))[0], next(iter(loader))[0])
