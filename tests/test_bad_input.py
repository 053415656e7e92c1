"""Every bad file or argument a user can give gets one sentence and exit status 2.

Each case runs the CLI in-process and asserts the sentence (naming the file or argument, what
was wrong and the fix) and the exit code; the same error type comes from the Python API.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from evakit import cli, data, errors, records, train
from tests.conftest import needs_real


def _one_sentence(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    """An EVAKIT_DATA of our own, with downloads disabled (as offline)."""
    monkeypatch.setenv("EVAKIT_DATA", str(tmp_path))
    monkeypatch.setenv("EVAKIT_FAST", "1")
    monkeypatch.setattr(data, "_from_torchvision", lambda *a: None)
    (tmp_path / "evakit-cache").mkdir()
    return tmp_path / "evakit-cache"


def _npz(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, images=images, labels=labels)


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b"\x00garbage bytes, not an npz" * 40),
     "is not a readable evakit cache"),
    (lambda p: _npz(p, np.zeros((6, 28, 28, 1), np.uint8), np.arange(0, 30, 5)),
     "has labels from 0 to 25, but mnist has classes 0–9"),
    (lambda p: _npz(p, np.zeros((6, 28, 28, 1), np.float32), np.zeros(6, np.int64)),
     "expected uint8 images N×H×W×1"),
    (lambda p: _npz(p, np.zeros((6, 28, 28, 1), np.uint8), np.zeros(5, np.int64)),
     "expected 6 integer labels"),
    (lambda p: np.savez(p, pictures=np.zeros(3)), "lacks the array(s) ['images', 'labels']"),
    (lambda p: _npz(p, np.zeros((6, 28, 28, 1), np.uint8), np.zeros(6, np.int64)),
     "differs from the exact copy of mnist-train"),
])
def test_a_bad_cache_file_is_one_sentence_and_never_used(cache_root, capsys, make, says):
    path = cache_root / "mnist-train.npz"
    make(path)
    before = path.read_bytes()
    assert cli.main(["train", "s01/rf-net"]) == 2
    err = _one_sentence(capsys)
    assert says in err and str(path) in err and "delete it" in err
    assert path.read_bytes() == before                    # never overwritten
    with pytest.raises(errors.DataError):
        data.load("mnist", "train")


@needs_real("mnist", "train")
def test_resume_with_another_recipes_checkpoint_is_refused(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert cli.main(["train", "s05/bn", "--epochs", "1", "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    assert cli.main(["train", "s04/step3", "--checkpoint", str(checkpoint), "--resume"]) == 2
    err = _one_sentence(capsys)
    assert str(checkpoint) in err and "was written by another run" in err
    assert "'s05/bn'" in err and "'s04/step3'" in err


@needs_real("mnist", "train")
def test_resume_with_another_config_of_the_same_recipe_is_refused(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    assert cli.main(["train", "s04/step3", "--epochs", "1", "--checkpoint",
                     str(checkpoint)]) == 0
    capsys.readouterr()
    assert cli.main(["train", "s04/step3", "--epochs", "2", "--checkpoint", str(checkpoint),
                     "--resume"]) == 2
    assert "was written by another run (config" in _one_sentence(capsys)


@pytest.mark.parametrize("content, says", [
    (lambda good: good[: len(good) // 2], "is not a readable evakit checkpoint"),
    (lambda good: b"not a zip at all", "is not a readable evakit checkpoint"),
])
def test_a_damaged_checkpoint_is_one_sentence(tmp_path, capsys, content, says):
    good = tmp_path / "good.pt"
    model = torch.nn.Linear(2, 2)
    train.save_checkpoint(good, model, torch.optim.SGD(model.parameters(), lr=0.1), None,
                          None, train.History())
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content(good.read_bytes()))
    assert cli.main(["train", "s04/step3", "--checkpoint", str(bad), "--resume"]) == 2
    err = _one_sentence(capsys)
    assert says in err and str(bad) in err and "delete it" in err


def test_a_checkpoint_of_an_older_format_is_one_sentence(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"model": {}, "epoch": 3}, old)
    with pytest.raises(errors.CheckpointError, match="found format none"):
        train.read_checkpoint(old)


@pytest.mark.parametrize("text, says", [
    ('{\n "recipe": "s04/step3",\n', "is not valid JSON"),
    ('{"format": 2, "recipe": "s04/step3"}', "lacks seed"),
    ("", "is not valid JSON"),
])
def test_check_with_a_broken_record_names_the_file(tmp_path, capsys, text, says):
    broken = tmp_path / "broken.json"
    broken.write_text(text)
    assert cli.main(["check", "s04", str(broken)]) == 2
    err = _one_sentence(capsys)
    assert says in err and str(broken) in err


@pytest.mark.parametrize("args, says", [
    (["train", "s04/step3", "--device", "tpu"], "unknown device 'tpu': expected cpu, cuda or mps"),
    (["train", "s04/step3", "--device", "cuda:7"], "not available here"),
    (["train", "s04/step3", "--seed", "-1"], "expected a non-negative integer"),
    (["train", "s04/step3", "--precision", "fp8"], "invalid choice: 'fp8'"),
    (["check", "s04", "no-such-record"], "no record for 'no-such-record'"),
    (["check", "s99", "s04/step3"], "no assignment constraints for session 's99'"),
    (["lr-find", "s04/step3", "--start-lr", "1", "--end-lr", "0.5"], "below --end-lr"),
])
def test_bad_arguments_are_one_sentence(capsys, args, says):
    if "cuda:7" in args and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(cli.main(args))
    assert exit_.value.code == 2
    assert says in _one_sentence(capsys)


def _fail_half_way(monkeypatch, target: str):
    """Make ``target`` (a writer) write half its bytes to the temporary file, then fail."""
    module, name = target.rsplit(".", 1)
    real = getattr(__import__(module, fromlist=[name]), name)

    def broken(obj, where, *args, **kwargs):
        real(obj, where, *args, **kwargs)
        path = Path(where)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        raise OSError("disk full")

    monkeypatch.setattr(f"{module}.{name}", broken)


def test_an_interrupted_checkpoint_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train.save_checkpoint(path, model, opt, None, None, train.History())
    before = path.read_bytes()
    _fail_half_way(monkeypatch, "torch.save")
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, model, opt, None, None, train.History())
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]
    train.read_checkpoint(path)                                # still loads


def test_an_interrupted_record_write_leaves_the_previous_file(tmp_path, monkeypatch):
    record = records.load("s04/step3")
    path = records.save(record, tmp_path)
    before = path.read_text()

    def half(self, text, *args, **kwargs):
        Path.write_bytes(self, text.encode()[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half)
    with pytest.raises(OSError, match="disk full"):
        records.save(record, tmp_path)
    monkeypatch.undo()
    assert path.read_text() == before and sorted(path.parent.iterdir()) == [path]
    assert records.read(path) == record
