import hashlib
import shutil
import stat
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from evakit import data, tiny_imagenet
from evakit.errors import ArgumentError, DataError
from evakit.tiny_imagenet import FOLDER

# wnids.txt order, deliberately not sorted: labels follow the file.
WNIDS = ["n02124075", "n01443537", "n04067472"]
NAMES = ["Egyptian cat", "goldfish", "reel"]
# (train, val) images per class: pooled 10, 20 and 10, split 7/3, 14/6 and 7/3.
COUNTS = [(7, 3), (14, 6), (5, 5)]


def red(label: int) -> int:
    """The red level of every pixel of class ``label``: lets a test check image and label agree."""
    return 40 + 80 * label


def save(path, label: int, index: int, grey: bool = False) -> None:
    """One flat colour: red for the label, green for the image's index (all images differ)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if grey:
        Image.new("L", (64, 64), red(label)).save(path)
    else:
        Image.new("RGB", (64, 64), (red(label), 10 + 5 * index, 30)).save(path)


def identity(image: torch.Tensor) -> tuple[int, ...]:
    """An image's mean colour in steps of 5: unique per image of the fixture, despite JPEG."""
    return tuple((image.float().mean((1, 2)) / 5).round().int().tolist())


def make_tiny(root):
    """A tiny-imagenet-200 folder in the official layout, with 64×64 JPEGs of one colour."""
    folder = root / FOLDER
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    words = ["n00001740\tentity", "n01443537\tgoldfish, Carassius auratus",
             "n02124075\tEgyptian cat", "n04067472\treel", "n09999999\tunused, other"]
    (folder / "words.txt").write_text("\n".join(words) + "\n")
    val_lines, index = [], 0
    for label, (wnid, (n_train, n_val)) in enumerate(zip(WNIDS, COUNTS, strict=True)):
        for i in range(n_train):
            save(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", label, index,
                 grey=i == 1)
            index += 1
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(n_val):
            name = f"val_{label * 10 + i}.JPEG"
            save(folder / "val" / "images" / name, label, index)
            index += 1
            val_lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    # val_annotations.txt is not sorted by class in the real archive either.
    (folder / "val" / "val_annotations.txt").write_text("\n".join(reversed(val_lines)) + "\n")
    save(folder / "test" / "images" / "test_0.JPEG", 0, index)   # unlabelled: never read
    return folder


@pytest.fixture
def tiny(tmp_path):
    return make_tiny(tmp_path)


def test_read_folder_pools_train_and_val_with_matching_labels(tiny):
    pooled = tiny_imagenet.read_folder(tiny)
    assert pooled.images.shape == (40, 3, 64, 64) and pooled.images.dtype == torch.uint8
    assert pooled.labels.dtype == torch.int64
    assert torch.bincount(pooled.labels).tolist() == [10, 20, 10]
    assert pooled.classes == NAMES
    assert pooled.split == "all" and pooled.name == "tiny-imagenet"
    # The red level each image was written with is its label's (JPEG moves it by a few levels).
    reds = pooled.images[:, 0].float().mean((1, 2))
    expected = torch.tensor([red(label) for label in pooled.labels.tolist()]).float()
    assert (reds - expected).abs().max() < 4
    # The greyscale image was read as RGB: three equal channels.
    channels = pooled.images.flatten(2)
    greys = ((channels[:, 0] == channels[:, 1]) & (channels[:, 1] == channels[:, 2])).all(1)
    assert greys.sum() == 3


def test_duplicate_class_names_are_kept_apart(tiny):
    words = (tiny / "words.txt").read_text().replace("reel", "goldfish")
    (tiny / "words.txt").write_text(words)
    classes = tiny_imagenet.read_folder(tiny).classes
    assert classes == ["Egyptian cat", "goldfish (n01443537)", "goldfish (n04067472)"]


def test_missing_file_is_named(tiny):
    (tiny / "wnids.txt").unlink()
    with pytest.raises(DataError, match="wnids.txt is missing"):
        tiny_imagenet.read_folder(tiny)


def test_val_label_outside_wnids_is_named(tiny):
    with open(tiny / "val" / "val_annotations.txt", "a") as f:
        f.write("val_99.JPEG\tn00000000\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="line 15 is 'val_99.JPEG"):
        tiny_imagenet.read_folder(tiny)


def test_wrong_image_size_is_named(tiny):
    bad = tiny / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG"
    Image.new("RGB", (32, 64)).save(bad)
    with pytest.raises(DataError, match="is 32×64: expected 64×64"):
        tiny_imagenet.read_folder(tiny)


def test_split_is_70_30_per_class_disjoint_and_complete():
    labels = torch.tensor([0] * 10 + [1] * 20 + [2] * 10 + [3] * 550)
    train, test = tiny_imagenet.stratified_split(labels, seed=4)
    assert torch.bincount(labels[train]).tolist() == [7, 14, 7, 385]
    assert torch.bincount(labels[test]).tolist() == [3, 6, 3, 165]
    assert sorted(torch.cat([train, test]).tolist()) == list(range(len(labels)))


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    labels = torch.arange(200).repeat_interleave(5)
    first = tiny_imagenet.stratified_split(labels, seed=1)
    again = tiny_imagenet.stratified_split(labels, seed=1)
    other = tiny_imagenet.stratified_split(labels, seed=2)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert set(first[0].tolist()) != set(other[0].tolist())
    # Shuffled across classes, so a FAST slice of the first images sees many classes.
    assert len(torch.unique(labels[first[0][:100]])) > 50


def test_split_refuses_a_fraction_outside_0_1():
    with pytest.raises(ArgumentError, match="train_fraction must be between 0 and 1"):
        tiny_imagenet.stratified_split(torch.zeros(4, dtype=torch.int64), 1.0)


def test_load_splits_the_folder_and_caches_the_pooled_set(tiny):
    root = tiny.parent
    train = tiny_imagenet.load("train", seed=3, root=root, fast=False)
    test = tiny_imagenet.load("test", seed=3, root=root, fast=False)
    assert (len(train), len(test)) == (28, 12)
    assert (train.split, test.split) == ("train", "test")
    assert torch.bincount(train.labels).tolist() == [7, 14, 7]
    assert torch.bincount(test.labels).tolist() == [3, 6, 3]
    assert train.images.shape[1:] == (3, 64, 64) and train.classes == NAMES
    # Every pooled image on exactly one side.
    pooled = {identity(im) for im in tiny_imagenet.read_folder(tiny).images}
    train_ids = {identity(im) for im in train.images}
    test_ids = {identity(im) for im in test.images}
    assert len(pooled) == 40 and len(train_ids) == 28 and len(test_ids) == 12
    assert not train_ids & test_ids and train_ids | test_ids == pooled
    cache = data.cache_path("tiny-imagenet", "all", root)
    assert cache.is_file() and not list(root.rglob("*.part"))
    shutil.rmtree(tiny)                                 # now only the cache is left
    cached = tiny_imagenet.load("train", seed=3, root=root, fast=False)
    assert torch.equal(cached.images, train.images) and torch.equal(cached.labels, train.labels)
    # A source names the cache file, never a folder of this machine.
    assert cached.classes == NAMES and cache.name in cached.source
    assert str(root) not in cached.source and str(root) not in train.source


def test_fast_mode_keeps_the_first_images_of_the_split(tiny):
    full = tiny_imagenet.load("test", root=tiny.parent, fast=False)
    fast = tiny_imagenet.load("test", root=tiny.parent, fast=True)
    assert torch.equal(fast.images, full.images[: data.FAST_SIZES["test"]])


def test_read_only_root_is_read_but_never_written(tiny):
    root = tiny.parent
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert len(tiny_imagenet.load("train", root=root, fast=False)) == 28
        assert not (root / "evakit-cache").exists()
    finally:
        root.chmod(stat.S_IRWXU)


def test_unknown_split_is_refused(tiny):
    with pytest.raises(ArgumentError, match="unknown split 'val'"):
        tiny_imagenet.load("val", root=tiny.parent)


@pytest.fixture
def served(tmp_path):
    """The tiny folder zipped as tiny-imagenet-200.zip, served over HTTP from disk."""
    site = tmp_path / "site"
    make_tiny(tmp_path / "source")
    shutil.make_archive(str(site / FOLDER), "zip", tmp_path / "source", FOLDER)
    archive = site / f"{FOLDER}.zip"
    handler = partial(SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{FOLDER}.zip"
    yield url, hashlib.md5(archive.read_bytes()).hexdigest()
    server.shutdown()
    server.server_close()


def test_download_checks_the_md5_and_unpacks(served, tmp_path):
    url, md5 = served
    folder = tiny_imagenet.download(tmp_path / "dest", url=url, md5=md5)
    assert folder == tmp_path / "dest" / FOLDER
    assert len(tiny_imagenet.read_folder(folder)) == 40
    assert [p.name for p in (tmp_path / "dest").iterdir()] == [FOLDER]   # the zip is gone


def test_download_with_a_wrong_md5_keeps_nothing(served, tmp_path):
    url, _ = served
    with pytest.raises(DataError, match=f"{url} downloaded with md5 .*: expected 0{{32}}"):
        tiny_imagenet.download(tmp_path / "dest", url=url, md5="0" * 32)
    assert list((tmp_path / "dest").iterdir()) == []


def test_load_downloads_when_nothing_is_there(served, tmp_path, monkeypatch):
    url, md5 = served
    monkeypatch.setattr(tiny_imagenet, "URL", url)
    monkeypatch.setattr(tiny_imagenet, "MD5", md5)
    root = tmp_path / "root"
    train = tiny_imagenet.load("train", root=root, fast=False)
    assert len(train) == 28 and url in train.source
    # Only the cache stays: no archive, no unpacked folder, no scratch folder.
    assert [p.relative_to(root).as_posix() for p in root.rglob("*")] == \
        ["evakit-cache", "evakit-cache/tiny-imagenet-all.npz"]


def test_offline_and_missing_gives_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_imagenet, "URL", "http://127.0.0.1:9/tiny-imagenet-200.zip")
    root = tmp_path / "empty"
    with pytest.raises(data.DataUnavailable) as err:
        tiny_imagenet.load("train", root=root)
    message = str(err.value)
    assert "tiny-imagenet" in message and str(root) in message and "EVAKIT_DATA" in message
    assert "127.0.0.1:9" in message


@pytest.mark.skipif(not data.cache_path("tiny-imagenet", "all").is_file(),
                    reason="real Tiny ImageNet not cached under EVAKIT_DATA")
def test_real_tiny_imagenet_has_550_labelled_images_per_class():
    pooled = tiny_imagenet.load_pooled(allow_download=False)
    assert pooled.images.shape == (110000, 3, 64, 64) and len(pooled.classes) == 200
    assert torch.bincount(pooled.labels).tolist() == [550] * 200
    train = tiny_imagenet.load("train", fast=False, allow_download=False)
    assert torch.bincount(train.labels).tolist() == [385] * 200
    assert np.unique(pooled.labels.numpy()).tolist() == list(range(200))
