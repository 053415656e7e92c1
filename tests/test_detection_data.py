"""evakit.detection_data: session 10's detection files from the shared copy, or downloaded from
a mirror laid out as raw.githubusercontent.com (owner/repo/commit/path) and checked."""

import hashlib
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from evakit import detect, detection_data
from evakit.data import DataUnavailable
from evakit.errors import ArgumentError, DataError

SHARED = Path(os.environ.get("EVAKIT_DATA", "/nonexistent")) / "detection"
needs_shared = pytest.mark.skipif(
    not all((SHARED / name).is_file() for name in detection_data.FILES),
    reason=f"the shared detection files are not under {SHARED}")


def _serve(folder: Path, contents: dict[str, bytes]) -> Path:
    """A file:// mirror of the pinned repositories, laid out as raw.githubusercontent.com."""
    for name, content in contents.items():
        source = detection_data.FILES[name]
        target = folder / source.repo / source.commit / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return folder


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A mirror serving the shared copies (the real files)."""
    return _serve(tmp_path / "mirror", {name: (SHARED / name).read_bytes()
                                        for name in detection_data.FILES})


@pytest.fixture
def stand_ins(tmp_path, monkeypatch) -> tuple[Path, dict[str, bytes]]:
    """A mirror serving a short stand-in for each file, with the manifest's hashes changed to
    match, so the download mechanics are tested where the real files are not (the real files'
    hashes are tested against the shared copy)."""
    contents = {name: f"stand-in for {name}\n".encode() for name in detection_data.FILES}
    monkeypatch.setattr(detection_data, "FILES", {
        name: replace(source, sha256=hashlib.sha256(contents[name]).hexdigest())
        for name, source in detection_data.FILES.items()})
    return _serve(tmp_path / "stand-ins", contents), contents


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Keep the read-only fallback (~/.cache/evakit) inside the test's folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVAKIT_DETECTION_URL", raising=False)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@needs_shared
def test_the_manifest_matches_the_shared_copy():
    for name, source in detection_data.FILES.items():
        digest = hashlib.sha256((SHARED / name).read_bytes()).hexdigest()
        assert digest == source.sha256, name
        assert source.url().startswith(f"https://raw.githubusercontent.com/{source.repo}/"
                                       f"{source.commit}/")
        assert len(source.commit) == 40


@needs_shared
def test_the_shared_copy_is_used_where_it_is():
    path = detection_data.taco_annotations(SHARED.parent, base="file:///nowhere")
    assert path == SHARED / "taco" / "annotations.json"


def test_every_file_downloads_is_checked_and_cached(tmp_path, stand_ins):
    mirror, contents = stand_ins
    root = tmp_path / "root"
    got = {name: detection_data.fetch(name, root, base=mirror.as_uri())
           for name in detection_data.FILES}
    for name, path in got.items():
        assert path == root / "detection" / name
        assert path.read_bytes() == contents[name]
    assert _files(root) == sorted(got.values())           # no temporary file left over
    shutil.rmtree(mirror)                                 # cached: no second download
    assert detection_data.coco128_labels("000000000025.jpg", root) == \
        got["coco128/labels/train2017/000000000025.txt"]


@needs_shared
def test_the_real_files_download_and_read(tmp_path, mirror):
    root = tmp_path / "root"
    coco = detect.read_coco(detection_data.coco128_annotations(root, base=mirror.as_uri()))
    assert (len(coco), len(coco.image_sizes), len(coco.classes)) == (929, 128, 80)
    taco = detection_data.taco_annotations(root, base=mirror.as_uri())
    assert taco.read_bytes() == (SHARED / "taco/annotations.json").read_bytes()


def test_a_download_with_the_wrong_hash_is_one_sentence_and_leaves_nothing(tmp_path,
                                                                           stand_ins):
    mirror, _ = stand_ins
    source = detection_data.FILES["taco/annotations.json"]
    served = mirror / source.repo / source.commit / source.path
    served.write_bytes(served.read_bytes()[:-1])           # one byte short
    root = tmp_path / "root"
    with pytest.raises(DataError) as err:
        detection_data.taco_annotations(root, base=mirror.as_uri())
    message = str(err.value)
    assert message.count(". ") == 0 and "\n" not in message
    assert source.sha256 in message and "not used" in message
    assert _files(root) == [] and _files(tmp_path / "home") == []


def test_offline_and_absent_names_the_file_the_folder_and_the_fix(tmp_path):
    root = tmp_path / "root"
    with pytest.raises(DataUnavailable) as err:
        detection_data.coco128_image("000000000025.jpg", root,
                                     base=(tmp_path / "nowhere").as_uri())
    message = str(err.value)
    assert "000000000025.jpg" in message and str(root / "detection") in message
    assert "EVAKIT_DATA" in message
    assert _files(root) == []


def test_a_mirror_that_is_no_url_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("EVAKIT_DETECTION_URL", "mirror-without-a-scheme")
    with pytest.raises(DataUnavailable, match="could not be downloaded from "
                                              "mirror-without-a-scheme/pedropro/TACO/"):
        detection_data.taco_annotations(tmp_path / "root")


def test_a_damaged_file_under_the_root_is_refused_not_replaced(tmp_path):
    root = tmp_path / "root"
    path = root / "detection" / "taco" / "annotations.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    with pytest.raises(DataError, match="delete it so that evakit downloads"):
        detection_data.taco_annotations(root)
    assert path.read_text() == "{}"


def test_a_read_only_root_is_never_written(tmp_path, stand_ins):
    mirror, _ = stand_ins
    root = tmp_path / "readonly"
    root.mkdir()
    root.chmod(0o555)
    try:
        path = detection_data.coco128_labels("000000000025.txt", root, base=mirror.as_uri())
        assert path == detection_data.fallback_root() / "detection" / \
            "coco128/labels/train2017/000000000025.txt"
        assert path.is_relative_to(tmp_path / "home") and list(root.iterdir()) == []
    finally:
        root.chmod(0o755)


def test_an_unknown_file_is_one_sentence(tmp_path):
    with pytest.raises(ArgumentError, match="unknown detection file 'taco/x.json'"):
        detection_data.fetch("taco/x.json", tmp_path)


def test_the_mirror_can_be_named_by_the_environment(tmp_path, stand_ins, monkeypatch):
    mirror, contents = stand_ins
    monkeypatch.setenv("EVAKIT_DETECTION_URL", mirror.as_uri())
    name = "coco128/images/train2017/000000000025.jpg"
    path = detection_data.coco128_image("000000000025.jpg", tmp_path / "root")
    assert path.read_bytes() == contents[name]
