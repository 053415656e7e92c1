"""The detection files session 10 reads, found under the data root or downloaded and checked.

Each file is one file of a public GitHub repository at a pinned commit, fetched verbatim from
``raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>`` and checked against the sha256 in
:data:`FILES`. It is looked for at ``<root>/detection/<name>`` (``root`` is
:func:`evakit.data.data_root`; the shared copy of this course keeps the same layout); a file
found there with the wrong hash is an error, never silently replaced. A downloaded file is
written atomically under the root, or, when the root is read-only (the shared copy in CI),
under ``~/.cache/evakit`` instead; the read-only root is never written.

Sources (their READMEs in the shared copy say more):

- TACO: ``pedropro/TACO`` ``data/annotations.json`` — COCO-format litter annotations, 1 500
  images, 60 classes (MIT repository; the dataset CC BY 4.0).
- COCO128, official boxes: ``developer0hye/COCO128`` ``annotations/instances_train2017.json`` —
  COCO 2017's ``instances_train2017`` restricted to its first 128 images (COCO annotations,
  CC BY 4.0).
- COCO128, one image and its YOLO labels: ``lightly-ai/coco128_yolo``
  ``images/train2017/000000000025.jpg`` and ``object_detection/labels/train2017/
  000000000025.txt``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evakit.data import DataUnavailable, _writable, atomic_write, data_root
from evakit.errors import ArgumentError, DataError
from evakit.text import download, sha256_hex

GITHUB_RAW = "https://raw.githubusercontent.com"
FOLDER = "detection"


@dataclass(frozen=True)
class Source:
    """One file of a public repository at a pinned commit.

    Attributes:
        repo: ``owner/name`` on GitHub.
        commit: the full commit hash the file is taken from.
        path: the file's path inside the repository.
        sha256: the file's expected hash, 64 hex digits.
    """

    repo: str
    commit: str
    path: str
    sha256: str

    def url(self, base: str = GITHUB_RAW) -> str:
        """Where the file is downloaded from (``base`` replaced in tests by a local mirror)."""
        return f"{base.rstrip('/')}/{self.repo}/{self.commit}/{self.path}"


_TACO = ("pedropro/TACO", "29de1a9ba05a647b83a90f18d7772e20bb23d846")
_COCO128_JSON = ("developer0hye/COCO128", "47a3de30aaf7ad1c02105bd80598fb03ac0d0789")
_COCO128_YOLO = ("lightly-ai/coco128_yolo", "6d6f7a059ea63efffdbe48aca2d52c04d4c510e9")

# name under <root>/detection/ → its source; the hashes were computed from the shared copy,
# itself copied byte for byte from these commits.
FILES: dict[str, Source] = {
    "taco/annotations.json": Source(
        *_TACO, "data/annotations.json",
        "ac1ec605c9e1fcda767970de3457c69b4a43b62c02aca8c4c80f51d1b5ae8449"),
    "coco128/official/instances_train2017_first128.json": Source(
        *_COCO128_JSON, "annotations/instances_train2017.json",
        "b50631f1014dd6799df6b946be53e6f23693364a9a7690bdd2a6e754439f0ca0"),
    "coco128/images/train2017/000000000025.jpg": Source(
        *_COCO128_YOLO, "images/train2017/000000000025.jpg",
        "d8f12a26d8803701cabac80494b080f998e5ed9bafaf61a2825ce6212c85487a"),
    "coco128/labels/train2017/000000000025.txt": Source(
        *_COCO128_YOLO, "object_detection/labels/train2017/000000000025.txt",
        "73e4d0a58416a5814ad3e9d58b6927b3a4898c5a4fa18341d333261ddb215b86"),
}


def fallback_root() -> Path:
    """Where downloads go when the data root is read-only: ``~/.cache/evakit``."""
    return Path.home() / ".cache" / "evakit"


def fetch(name: str, root: str | Path | None = None, *, base: str | None = None) -> Path:
    """The local path of one detection file, downloading and checking it when needed.

    Args:
        name: a key of :data:`FILES`, e.g. ``"taco/annotations.json"``.
        root: data root; defaults to :func:`evakit.data.data_root`.
        base: the URL the repositories are served under; defaults to ``$EVAKIT_DETECTION_URL``,
            else :data:`GITHUB_RAW`. Any URL ``urllib`` opens (a ``file://`` mirror in tests).

    Returns:
        The path of a file whose sha256 is the one in :data:`FILES`.

    Raises:
        ArgumentError: ``name`` is not a known file.
        DataError: a file under the root, or the downloaded one, has the wrong hash.
        DataUnavailable: the file is not here and could not be downloaded.
    """
    if name not in FILES:
        raise ArgumentError(f"unknown detection file {name!r}: expected one of {sorted(FILES)}")
    source = FILES[name]
    root = Path(root).expanduser() if root is not None else data_root()
    for folder in dict.fromkeys((root, fallback_root())):
        path = folder / FOLDER / name
        if path.is_file():
            _check(path, source)
            return path
    base = base or os.environ.get("EVAKIT_DETECTION_URL") or GITHUB_RAW
    url = source.url(base)
    try:
        content = download(url, source.sha256)
    except (OSError, ValueError) as err:     # ValueError: a base that is no URL at all
        raise DataUnavailable(
            f"{name} is not in {root / FOLDER} and could not be downloaded from {url} ({err}): "
            f"connect to the internet once, or set EVAKIT_DATA to a folder holding "
            f"{FOLDER}/{name}") from err
    target = next((folder for folder in (root, fallback_root()) if _writable(folder)), None)
    if target is None:
        raise DataUnavailable(f"{name} was downloaded but neither {root} nor {fallback_root()} "
                              f"is writable: set EVAKIT_DATA to a writable folder")
    return atomic_write(target / FOLDER / name, lambda tmp: tmp.write_bytes(content))


def _check(path: Path, source: Source) -> None:
    got = sha256_hex(path.read_bytes())
    if got != source.sha256:
        raise DataError(f"{path} has sha256 {got}, expected {source.sha256}: delete it so that "
                        f"evakit downloads the original again")


def taco_annotations(root: str | Path | None = None, *, base: str | None = None) -> Path:
    """TACO's ``annotations.json`` (COCO format, 1 500 images, 4 784 boxes, 60 classes)."""
    return fetch("taco/annotations.json", root, base=base)


def coco128_annotations(root: str | Path | None = None, *, base: str | None = None) -> Path:
    """COCO 2017's official ``instances_train2017`` annotations of its first 128 images."""
    return fetch("coco128/official/instances_train2017_first128.json", root, base=base)


def coco128_image(file_name: str, root: str | Path | None = None, *,
                  base: str | None = None) -> Path:
    """One COCO128 training JPEG by file name (those in :data:`FILES`)."""
    return fetch(f"coco128/images/train2017/{file_name}", root, base=base)


def coco128_labels(file_name: str, root: str | Path | None = None, *,
                   base: str | None = None) -> Path:
    """The YOLO label file (``class cx cy w h`` per line) of one COCO128 training image,
    named by the image's or the label file's name."""
    return fetch(f"coco128/labels/train2017/{Path(file_name).stem}.txt", root, base=base)
