"""Datasets as uint8 tensors in memory, the npz cache, and a batch loader over tensors.

A dataset is loaded once into an :class:`ImageSet` (``images`` uint8 N×C×H×W, ``labels`` int64 N).
Loading looks, in order, for ``<root>/evakit-cache/<name>-<split>.npz``, then asks torchvision's
real dataset class (which downloads when online), then writes the cache. ``root`` is
``$EVAKIT_DATA`` or ``~/.cache/evakit``. Synthetic sets exist for unit tests, by name, and are never
returned in place of a real set.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evakit.errors import DataError

CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"],
}
# Per-channel mean and std of each training set (pixels scaled to [0, 1]).
STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
SPLITS = ("train", "test")
FAST_SIZES = {"train": 2000, "test": 1000}
SYNTHETIC_SHAPES = {"synthetic-mnist": (1, 28, 28), "synthetic-cifar10": (3, 32, 32)}
# md5 of the images and of the labels arrays (N×H×W×C uint8, N int64) of the exact copies: the
# CIFAR-10 ones are published in ../shared/data's README; the MNIST ones were computed from the
# byte-exact rebuild there (whose idx files match the published md5s) — torchvision's download
# gives the same arrays. A cache that claims one of these names and differs is refused.
KNOWN_MD5 = {
    ("mnist", "train"): ("6510e85a72c3e9475c492d559d3770d2", "d849aedd957fadafb3445f388b0b1004"),
    ("mnist", "test"): ("240610fa99e73bfa49df8e7fc24d3206", "c68af35e960ed5d39dce3477a31a5da0"),
    ("cifar10", "train"): ("17e2cb5a4119d89a4a13e02b91701bff", "64a7290ac3c358816975e50453f50b5c"),
    ("cifar10-sample", "train"): ("4e54456ff66eb84aa6dad699a3ccdde5",
                                  "2cc28512ccee8c6e00beeb462596e831"),
    ("cifar10-sample", "test"): ("3fe68351611e8adf42c48792f77b1fdb",
                                 "2cf80705fb3dcd82893afe01f144e702"),
}
# Offline, CIFAR-10's test set exists only as its first 1,000 official images (exact): a full run
# is scored on them and says so; with the internet the whole set is downloaded instead.
PARTIAL_TEST = {"cifar10": "cifar10-sample"}
PARTIAL_NOTE = "the first 1,000 of the 10,000 official test images"


class DataUnavailable(DataError):
    """Raised when a real dataset is neither cached nor downloadable."""


@dataclass(frozen=True)
class DataIdentity:
    """What data a run saw, without naming the machine it was on.

    Attributes:
        dataset: e.g. ``"cifar10"``.
        split: ``"train"`` or ``"test"``.
        size: number of images.
        images_md5: md5 of the images as N×H×W×C uint8 bytes.
        labels_md5: md5 of the labels as N int64 bytes.
        note: what is partial or special about it (e.g. the first 1,000 official test images).
        unit: what ``size`` counts (images; tokens for a text, whose ids ``images_md5`` hashes).
    """

    dataset: str
    split: str
    size: int
    images_md5: str
    labels_md5: str
    note: str = ""
    unit: str = "images"

    def describe(self) -> str:
        """One line for a page: dataset, split, size, note and a short hash."""
        note = f", {self.note}" if self.note else ""
        return (f"{self.dataset} {self.split}: {self.size:,} {self.unit}{note} "
                f"(md5 {self.images_md5[:8]})")


@dataclass
class ImageSet:
    """A labelled image set held in memory.

    Attributes:
        images: uint8 tensor, N×C×H×W.
        labels: int64 tensor, N.
        classes: class names, indexed by label.
        name: dataset name, e.g. ``"mnist"``.
        split: ``"train"`` or ``"test"``.
        source: where the data came from (a cache file's name, ``torchvision``,
            ``synthetic``) — never a folder of this machine — with a note when it is a sample
            or a FAST slice.
        note: what a record must say about the data (e.g. a partial official test set).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str
    source: str
    note: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the training set (0.5 for synthetic sets)."""
        return STATS.get(self.name, ((0.5,) * self.images.shape[1],) * 2)[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the training set (0.5 for synthetic sets)."""
        return STATS.get(self.name, ((0.5,) * self.images.shape[1],) * 2)[1]

    def subset(self, n: int) -> ImageSet:
        """The first ``n`` images (all of them when ``n`` is larger)."""
        if n >= len(self):
            return self
        return ImageSet(self.images[:n], self.labels[:n], self.classes, self.name, self.split,
                        f"{self.source} (first {n} of {len(self)})",
                        f"first {n} of {len(self)}" + (f" of {self.note}" if self.note else ""))

    def identity(self) -> DataIdentity:
        """Dataset, split, size and content hash of exactly these images and labels."""
        images = self.images.permute(0, 2, 3, 1).contiguous().numpy()
        return DataIdentity(self.name, self.split, len(self), _md5(images),
                            _md5(self.labels.numpy()), self.note)


def is_fast() -> bool:
    """True when ``EVAKIT_FAST`` asks for the small, quick version of every run."""
    return os.environ.get("EVAKIT_FAST", "").strip().lower() not in ("", "0", "false", "no")


def data_root() -> Path:
    """Where datasets live: ``$EVAKIT_DATA``, else ``~/.cache/evakit``."""
    env = os.environ.get("EVAKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evakit"


def cache_path(name: str, split: str, root: Path | None = None) -> Path:
    """The cache file for one split of a dataset."""
    return (root or data_root()) / "evakit-cache" / f"{name}-{split}.npz"


def load(name: str, split: str = "train", *, fast: bool | None = None,
         root: str | Path | None = None) -> ImageSet:
    """Load a real dataset split into memory.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        split: ``"train"`` or ``"test"``.
        fast: keep only the first 2 000 train / 1 000 test images; defaults to :func:`is_fast`.
            Only in FAST mode may a missing CIFAR-10 fall back to the real sample in the cache.
        root: data root; defaults to :func:`data_root`.

    Returns:
        The split as an :class:`ImageSet`.

    Raises:
        ValueError: unknown name or split.
        DataUnavailable: the set is neither cached nor downloadable.
    """
    if name not in CLASSES:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(CLASSES)} "
                         f"(synthetic sets come from evakit.data.synthetic)")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected 'train' or 'test'")
    fast = is_fast() if fast is None else fast
    root = Path(root).expanduser() if root is not None else data_root()

    found = _read_cache(cache_path(name, split, root), name, split)
    if found is None:
        found = _from_torchvision(name, split, root)
    if found is None and split == "test" and name in PARTIAL_TEST:
        found = _read_cache(cache_path(PARTIAL_TEST[name], split, root), name, split)
        if found is not None:
            found.note = PARTIAL_NOTE
            print(f"evakit.data: the full {name} test set is not here; scoring on {PARTIAL_NOTE}")
    if found is None and fast and name == "cifar10":
        found = _read_cache(cache_path("cifar10-sample", split, root), name, split)
        if found is not None:
            found.source += " [SAMPLE: full CIFAR-10 not found, FAST mode uses the real sample]"
            print(f"evakit.data: full CIFAR-10 not found; FAST mode uses the real sample "
                  f"{cache_path('cifar10-sample', split, root).name}")
    if found is None:
        raise DataUnavailable(
            f"{name} ({split}) is not in {cache_path(name, split, root)} and torchvision could "
            f"not download it (offline?): connect to the internet once, or set EVAKIT_DATA to a "
            f"folder holding evakit-cache/{name}-{split}.npz")
    return found.subset(FAST_SIZES[split]) if fast else found


def _md5(array: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


_VERIFIED: set[tuple[str, int, float]] = set()


def _read_cache(path: Path, name: str, split: str) -> ImageSet | None:
    """The cache file at ``path``, validated; None when there is no file.

    Raises:
        DataError: the file is not an npz of the expected arrays, its shapes or labels do not
            fit the dataset, or its content differs from the known exact copy.
    """
    if not path.is_file():
        return None
    fix = "delete it so evakit can rebuild it, or replace it with a good copy"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = {"images", "labels"} - set(npz.files)
            if missing:
                raise DataError(f"{path} is not an evakit cache: it lacks the array(s) "
                                f"{sorted(missing)} (expected 'images' and 'labels'): {fix}")
            images, labels = npz["images"], npz["labels"]
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 — numpy raises many types for a damaged file
        raise DataError(f"{path} is not a readable evakit cache ({type(e).__name__}): {fix}") \
            from None
    _validate(path, images, labels, name, fix)
    _check_known_hash(path, images, labels, fix)
    return ImageSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                    torch.from_numpy(labels.astype(np.int64)), CLASSES[name], name, split,
                    f"cache {path.name}")


def _validate(path: Path, images: np.ndarray, labels: np.ndarray, name: str, fix: str) -> None:
    channels = len(STATS[name][0])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != channels:
        raise DataError(f"{path} is not an evakit cache of {name}: expected uint8 images "
                        f"N×H×W×{channels}, got {images.dtype} {images.shape}: {fix}")
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
        raise DataError(f"{path} is not an evakit cache of {name}: expected {len(images)} "
                        f"integer labels, got {labels.dtype} {labels.shape}: {fix}")
    n_classes = len(CLASSES[name])
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path} has labels from {labels.min()} to {labels.max()}, but {name} "
                        f"has classes 0–{n_classes - 1}: {fix}")


def _check_known_hash(path: Path, images: np.ndarray, labels: np.ndarray, fix: str) -> None:
    known = KNOWN_MD5.get(tuple(path.stem.rsplit("-", 1)))
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    if known is None or key in _VERIFIED:
        return
    if (_md5(images), _md5(labels)) != known:
        raise DataError(f"{path} differs from the exact copy of {path.stem} (its md5 does not "
                        f"match the known one): {fix}")
    _VERIFIED.add(key)


def _from_torchvision(name: str, split: str, root: Path) -> ImageSet | None:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST,
           "fashion-mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[name]
    writable = _writable(root)
    # Download into a scratch folder that is always removed: only the finished cache stays.
    with tempfile.TemporaryDirectory(prefix="evakit-download-",
                                     dir=root if writable else None) as scratch:
        try:
            ds = cls(scratch, train=split == "train", download=True)
        except (OSError, RuntimeError):
            return None
        images = np.asarray(ds.data)
        labels = np.asarray(ds.targets, dtype=np.int64)
    if images.ndim == 3:
        images = images[..., None]
    if writable:
        write_cache(cache_path(name, split, root), images, labels)
    return ImageSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                    torch.from_numpy(labels), CLASSES[name], name, split, "torchvision")


def _writable(root: Path) -> bool:
    # A folder without write bits counts as read-only even for root, who could write anyway:
    # the shared data folder in CI is laid out that way and must never be written.
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK) and bool(root.stat().st_mode & 0o222)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically: ``write`` fills a temporary file beside it, which then
    replaces ``path`` in one step, so a reader sees the whole old or the whole new file and a
    failed write leaves nothing behind. Used for caches, records, checkpoints and workbooks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a cache file atomically: a reader sees the whole file or none of it."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels)
    atomic_write(path, write)


def synthetic(name: str, n: int = 256, *, seed: int = 0, split: str = "train") -> ImageSet:
    """A small learnable synthetic set for unit tests, never a stand-in for real data.

    Each class is a fixed random template plus noise, so a small network can fit it.

    Args:
        name: ``"synthetic-mnist"`` (1×28×28) or ``"synthetic-cifar10"`` (3×32×32).
        n: number of images.
        seed: seed of the labels and the noise (the class templates never change).
        split: the split it stands for in a test (``"train"`` or ``"test"``).
    """
    if name not in SYNTHETIC_SHAPES:
        raise ValueError(f"unknown synthetic set {name!r}: expected one of "
                         f"{sorted(SYNTHETIC_SHAPES)}")
    shape = SYNTHETIC_SHAPES[name]
    # The class templates are the same for every seed, so a "test" set drawn with another seed
    # poses the same task as its "train" set; the seed draws the labels and the noise.
    templates = torch.rand((10, *shape), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, 10, (n,), generator=g)
    noisy = templates[labels] * 0.7 + torch.rand((n, *shape), generator=g) * 0.3
    return ImageSet((noisy * 255).to(torch.uint8), labels, [str(c) for c in range(10)],
                    name, split, "synthetic")


class Loader:
    """Batches over an in-memory :class:`ImageSet`, normalized on whole batches.

    The uint8 images move to ``device`` once; each batch is converted to float, optionally
    augmented by ``augment`` (a function of a float batch in [0, 1] and a generator), then
    normalized with the set's mean and std. Shuffling uses its own seeded generator, so the
    batch order depends on ``seed`` and the epoch alone.

    Args:
        data: the image set.
        batch_size: images per batch.
        shuffle: reshuffle every epoch.
        device: where batches live.
        seed: seed of the shuffling generator.
        augment: optional ``(batch, generator) -> batch`` applied before normalization.
        drop_last: drop a final incomplete batch.
        alternate_flip: mirror a random half of the images (drawn once) in even epochs and the
            other half in odd epochs, so consecutive epochs show every image both ways (Jordan
            2024) — instead of mirroring each image at random every epoch.
    """

    def __init__(self, data: ImageSet, batch_size: int = 128, *, shuffle: bool = False,
                 device: str | torch.device = "cpu", seed: int = 0,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 drop_last: bool = False, alternate_flip: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.augment = augment
        self.drop_last = drop_last
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.mean = torch.tensor(data.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(data.std, device=self.device).view(1, -1, 1, 1)
        self.generator = torch.Generator().manual_seed(seed)
        self.alternate_flip = alternate_flip
        self.flipped: torch.Tensor | None = None     # alternate_flip: mirrored in even epochs
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        mirror = self._mirror(n)
        order = (torch.randperm(n, generator=self.generator) if self.shuffle
                 else torch.arange(n)).to(self.device)
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx].float().div_(255)
            if mirror is not None:
                x = torch.where(mirror[idx].view(-1, 1, 1, 1), x.flip(3), x)
            if self.augment is not None:
                x = self.augment(x, self.generator)
            yield (x - self.mean) / self.std, self.labels[idx]

    def _mirror(self, n: int) -> torch.Tensor | None:
        if not self.alternate_flip:
            return None
        if self.flipped is None:
            self.flipped = torch.rand(n, generator=self.generator) < 0.5
        return (self.flipped ^ bool(self.epoch % 2)).to(self.device)

    def state_dict(self) -> dict:
        """The generator's state (and the flip plan), so a resumed run draws the same batches."""
        state = {"generator": self.generator.get_state()}
        if self.alternate_flip:
            state.update(epoch=self.epoch, flipped=self.flipped)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if self.alternate_flip:
            self.epoch, self.flipped = state["epoch"], state["flipped"]


class PairedLoader:
    """A :class:`Loader`'s batches, each image paired with something drawn at random.

    What is drawn comes from the loader's own seeded generator: fresh every epoch for
    training, the same every pass for testing (``fixed=True``). A subclass says what to draw
    in :meth:`pair`.

    Args:
        loader: the image batches.
        seed: seed of the generator.
        fixed: draw the same on every pass (for a test set).
    """

    def __init__(self, loader: Loader, *, seed: int = 0, fixed: bool = False) -> None:
        self.loader = loader
        self.seed = seed
        self.fixed = fixed
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
        if self.fixed:
            self.generator.manual_seed(self.seed)
        for x, y in self.loader:
            yield self.pair(x, y)

    def pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                             torch.Tensor]:
        """``((inputs, drawn), targets)`` for one batch, drawing from ``self.generator``."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Both generators' states, so a resumed run draws the same batches and pairs."""
        return {"loader": self.loader.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state["loader"])
        self.generator.set_state(state["generator"])


class DigitSumLoader(PairedLoader):
    """Session 2.5's data: each MNIST image paired with a random integer 0–9.

    Yields ``((images, numbers), targets)`` where ``targets[:, 0]`` is the digit and
    ``targets[:, 1]`` the sum digit + number (0–18).
    """

    def pair(self, x: torch.Tensor, digits: torch.Tensor):
        numbers = torch.randint(0, 10, (len(digits),), generator=self.generator)
        numbers = numbers.to(digits.device)
        return (x, numbers), torch.stack([digits, digits + numbers], dim=1)
