"""Tiny ImageNet for session 10's assignment A: 200 classes of 64×64 colour images.

The official archive ``tiny-imagenet-200.zip`` unpacks to::

    tiny-imagenet-200/wnids.txt                    the 200 class ids (WordNet ids), one a line
    tiny-imagenet-200/words.txt                    WordNet id <tab> names, for all of WordNet
    tiny-imagenet-200/train/<wnid>/images/*.JPEG   500 labelled images per class
    tiny-imagenet-200/val/images/*.JPEG            50 labelled images per class ...
    tiny-imagenet-200/val/val_annotations.txt      ... labelled here: file <tab> wnid <tab> box
    tiny-imagenet-200/test/images/*.JPEG           unlabelled, not used

The assignment pools the 110 000 labelled images (train + val) and splits them 70/30 within
each class with a seed: 385 training and 165 test images per class. The pooled set is cached as
``<root>/evakit-cache/tiny-imagenet-all.npz`` like every evakit dataset; the split is drawn from
it on every load.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evakit.data import (
    FAST_SIZES,
    DataUnavailable,
    ImageSet,
    _writable,
    atomic_write,
    cache_path,
    data_root,
    is_fast,
)
from evakit.errors import ArgumentError, DataError

NAME = "tiny-imagenet"
FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
# Stanford publishes no checksum for the archive. This md5 (of the 248,100,043-byte zip) is the
# one third-party loaders check against, e.g. Avalanche's benchmarks/datasets/tiny_imagenet; it
# could not be confirmed from this offline machine.
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
SIZE = 64
TRAIN_FRACTION = 0.7


# -------------------------------------------------------------------------- the folder layout

def read_folder(folder: str | Path) -> ImageSet:
    """Read every labelled image (train and val pooled) of an unpacked ``tiny-imagenet-200``.

    Args:
        folder: the ``tiny-imagenet-200`` folder.

    Returns:
        An :class:`~evakit.data.ImageSet` with split ``"all"``: uint8 images N×3×64×64, in class
        order (wnids.txt), each class's train images first, then its val images; int64 labels;
        class names from words.txt (the first name of each class).

    Raises:
        DataError: a file of the layout is missing or malformed, or an image is not 64×64.
    """
    folder = Path(folder)
    wnids = _wnids(folder / "wnids.txt")
    paths, labels = [], []
    val = _val_labels(folder / "val" / "val_annotations.txt", wnids)
    for label, wnid in enumerate(wnids):
        train = sorted((folder / "train" / wnid / "images").glob("*.JPEG"))
        if not train:
            raise DataError(f"{folder / 'train' / wnid / 'images'} holds no .JPEG images: "
                             f"expected the training images of class {wnid}")
        own_val = [folder / "val" / "images" / name for name in val[wnid]]
        paths += train + own_val
        labels += [label] * (len(train) + len(own_val))
    images = np.empty((len(paths), SIZE, SIZE, 3), np.uint8)
    for i, path in enumerate(paths):
        images[i] = _read_image(path)
    return ImageSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                    torch.tensor(labels, dtype=torch.int64), _class_names(folder, wnids),
                    NAME, "all", f"{FOLDER} folder")


def _wnids(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path} is missing: expected the class ids of a tiny-imagenet-200 "
                         f"folder, one a line")
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids or len(set(wnids)) != len(wnids):
        raise DataError(f"{path} must list distinct class ids, one a line; got {len(wnids)} "
                         f"lines with {len(set(wnids))} distinct ids")
    return wnids


def _val_labels(path: Path, wnids: list[str]) -> dict[str, list[str]]:
    if not path.is_file():
        raise DataError(f"{path} is missing: expected the validation labels of a "
                         f"tiny-imagenet-200 folder")
    files: dict[str, list[str]] = {wnid: [] for wnid in wnids}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in files:
            raise DataError(f"{path} line {number} is {line!r}: expected file <tab> wnid "
                             f"<tab> box, with a wnid from wnids.txt")
        files[fields[1]].append(fields[0])
    return {wnid: sorted(names) for wnid, names in files.items()}


def _class_names(folder: Path, wnids: list[str]) -> list[str]:
    words = {}
    path = folder / "words.txt"
    if path.is_file():
        for line in path.read_text().splitlines():
            wnid, _, names = line.partition("\t")
            words[wnid] = names.split(",")[0].strip()
    names = [words.get(wnid) or wnid for wnid in wnids]
    # ImageNet reuses a few names for different synsets (two kinds of "crane"): keep them apart.
    return [f"{name} ({wnid})" if names.count(name) > 1 else name
            for name, wnid in zip(names, wnids, strict=True)]


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            # A few Tiny ImageNet images are greyscale; the set is read as RGB throughout.
            rgb = np.asarray(image.convert("RGB"))
    except OSError as err:
        raise DataError(f"{path} could not be read as an image ({err}): expected a "
                         f"{SIZE}×{SIZE} JPEG") from None
    if rgb.shape != (SIZE, SIZE, 3):
        raise DataError(f"{path} is {rgb.shape[1]}×{rgb.shape[0]}: expected {SIZE}×{SIZE}")
    return rgb


# ------------------------------------------------------------------------ the seeded split

def stratified_split(labels: torch.Tensor, train_fraction: float = TRAIN_FRACTION, *,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a seeded split that keeps ``train_fraction`` of every class for training.

    Each class of n images gives ``round(train_fraction · n)`` (halves rounded up) images to
    training and the rest to test. Both index sets come out shuffled, so the first images of
    either side mix the classes.

    Args:
        labels: int64 N class labels.
        train_fraction: share of each class that goes to training, between 0 and 1.
        seed: seed of the split; the same seed gives the same indices.

    Returns:
        ``(train_indices, test_indices)``, disjoint, together every index once.
    """
    if not 0 < train_fraction < 1:
        raise ArgumentError(f"train_fraction must be between 0 and 1, got {train_fraction!r}")
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in torch.unique(labels).tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        cut = math.floor(train_fraction * len(members) + 0.5)
        train.append(members[:cut])
        test.append(members[cut:])
    train_indices, test_indices = torch.cat(train), torch.cat(test)
    return (train_indices[torch.randperm(len(train_indices), generator=generator)],
            test_indices[torch.randperm(len(test_indices), generator=generator)])


def split_pooled(pooled: ImageSet, *, seed: int = 0,
                 train_fraction: float = TRAIN_FRACTION) -> tuple[ImageSet, ImageSet]:
    """The assignment's split of the pooled labelled images into train and test sets.

    Args:
        pooled: every labelled image, e.g. from :func:`read_folder`.
        seed: seed of :func:`stratified_split`.
        train_fraction: share of each class for training (0.7 in the assignment).

    Returns:
        ``(train, test)`` image sets.
    """
    train, test = stratified_split(pooled.labels, train_fraction, seed=seed)
    note = f"seeded {train_fraction:.0%} split per class, seed {seed}"

    def side(indices: torch.Tensor, part: str) -> ImageSet:
        return ImageSet(pooled.images[indices], pooled.labels[indices], pooled.classes,
                        pooled.name, part, f"{pooled.source} ({part} side of a {note})")

    return side(train, "train"), side(test, "test")


# ------------------------------------------------------------------------ download and cache

def download(dest: str | Path, *, url: str | None = None, md5: str | None = None) -> Path:
    """Download the official archive, check its md5 and unpack it into ``dest``.

    Args:
        dest: folder to unpack into (created when missing).
        url: where the archive is; :data:`URL` by default.
        md5: its expected md5; :data:`MD5` by default.

    Returns:
        The unpacked ``tiny-imagenet-200`` folder.

    Raises:
        OSError: the download failed (e.g. offline; ``urllib.error.URLError`` is an OSError).
        DataError: the archive's md5 differs, or it holds no ``tiny-imagenet-200`` folder.
    """
    url, md5 = url or URL, md5 or MD5
    dest = Path(dest)
    archive = dest / f"{FOLDER}.zip"
    atomic_write(archive, lambda tmp: _fetch(url, tmp, md5))
    try:
        with zipfile.ZipFile(archive) as zf:
            if not any(name.startswith(f"{FOLDER}/") for name in zf.namelist()):
                raise DataError(f"{url} holds no {FOLDER}/ folder: expected the official "
                                 f"Tiny ImageNet archive")
            zf.extractall(dest)
    finally:
        archive.unlink()
    return dest / FOLDER


def _fetch(url: str, path: Path, md5: str) -> None:
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != md5:
        raise DataError(f"{url} downloaded with md5 {digest.hexdigest()}: expected {md5} "
                         f"(a corrupted or changed archive; nothing was kept)")


def _read_cache(path: Path) -> ImageSet | None:
    if not path.is_file():
        return None
    with np.load(path) as npz:
        images, labels, classes = npz["images"], npz["labels"], npz["classes"]
    if images.dtype != np.uint8 or images.shape[1:] != (SIZE, SIZE, 3) \
            or len(images) != len(labels):
        raise DataError(f"{path} is not a Tiny ImageNet cache: expected uint8 images "
                         f"N×{SIZE}×{SIZE}×3 and as many labels, got {images.dtype} "
                         f"{images.shape} and {labels.shape}")
    return ImageSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                    torch.from_numpy(labels.astype(np.int64)), classes.tolist(), NAME, "all",
                    path.name)


def _write_cache(path: Path, pooled: ImageSet) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, images=pooled.images.permute(0, 2, 3, 1).numpy(),
                     labels=pooled.labels.numpy(), classes=np.array(pooled.classes))
    atomic_write(path, write)


def load_pooled(root: str | Path | None = None, *, allow_download: bool = True) -> ImageSet:
    """Every labelled image: from the cache, else an unpacked folder, else the official archive.

    A folder or a download is cached in ``<root>/evakit-cache/tiny-imagenet-all.npz`` when
    ``root`` is writable; the downloaded archive and its unpacked files are not kept.

    Args:
        root: data root; :func:`~evakit.data.data_root` by default.
        allow_download: fetch the archive when neither the cache nor the folder is there.

    Returns:
        The pooled set (split ``"all"``).

    Raises:
        DataUnavailable: nothing found and the archive could not be fetched.
    """
    root = Path(root).expanduser() if root is not None else data_root()
    cache = cache_path(NAME, "all", root)
    pooled = _read_cache(cache)
    if pooled is not None:
        return pooled
    if (root / FOLDER).is_dir():
        pooled = read_folder(root / FOLDER)
    elif allow_download:
        pooled = _download_and_read(root)
    if pooled is None:
        raise DataUnavailable(
            f"{NAME} is neither cached in {cache} nor unpacked in {root / FOLDER}, and it could "
            f"not be downloaded from {URL} (offline?): connect to the internet once, or unpack "
            f"{FOLDER}.zip into a folder and set EVAKIT_DATA to it")
    if _writable(root):
        _write_cache(cache, pooled)
    return pooled


def _download_and_read(root: Path) -> ImageSet | None:
    writable = _writable(root)
    # Unpack into a scratch folder that is always removed: only the finished cache stays.
    with tempfile.TemporaryDirectory(prefix="evakit-download-",
                                     dir=root if writable else None) as scratch:
        try:
            folder = download(scratch)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return None
        pooled = read_folder(folder)
    pooled.source = f"{URL} (md5 checked)"
    return pooled


def load(split: str = "train", *, seed: int = 0, root: str | Path | None = None,
         fast: bool | None = None, allow_download: bool = True) -> ImageSet:
    """One side of the assignment's seeded 70/30 per-class split of Tiny ImageNet.

    Args:
        split: ``"train"`` (70 % of every class) or ``"test"`` (the other 30 %).
        seed: seed of the split; both sides of one seed are disjoint.
        root: data root; :func:`~evakit.data.data_root` by default.
        fast: keep only the first 2 000 train / 1 000 test images of the (shuffled) split;
            defaults to :func:`~evakit.data.is_fast`.
        allow_download: fetch the official archive when it is neither cached nor unpacked.

    Returns:
        The split as an :class:`~evakit.data.ImageSet` (uint8 N×3×64×64, int64 labels).

    Raises:
        ArgumentError: unknown split.
        DataUnavailable: nothing found and the archive could not be fetched.
    """
    if split not in FAST_SIZES:
        raise ArgumentError(f"unknown split {split!r}: expected 'train' or 'test'")
    train, test = split_pooled(load_pooled(root, allow_download=allow_download), seed=seed)
    chosen = train if split == "train" else test
    fast = is_fast() if fast is None else fast
    return chosen.subset(FAST_SIZES[split]) if fast else chosen
