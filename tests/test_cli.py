"""The evakit command: good paths, and one sentence + exit 2 for bad input."""

import subprocess
import sys

import pytest

from evakit import cli, data, models, recipes, records, runner
from tests.conftest import needs_real


def _evakit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "evakit.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize("args, says", [
    (["train", "no-such-recipe"], "unknown recipe 'no-such-recipe'"),
    (["train", "s01/rf-net", "--epochs", "zero"], "expected a positive integer"),
    (["train", "s01/rf-net", "--epochs", "-3"], "expected a positive integer"),
    (["train", "s01/rf-net", "--resume"], "--resume needs --checkpoint"),
    (["summary", "nothing"], "neither a recipe nor a model"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_sentence_and_exit_2(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(cli.main(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_record_refused_in_fast_mode(monkeypatch, capsys):
    monkeypatch.setenv("EVAKIT_FAST", "1")
    assert cli.main(["train", "s01/rf-net", "--record"]) == 2
    assert "EVAKIT_FAST" in capsys.readouterr().err


def test_recipes_and_summary_print(capsys):
    assert cli.main(["recipes"]) == 0
    assert "s01/rf-net" in capsys.readouterr().out
    assert cli.main(["summary", "s01/rf-net"]) == 0
    out = capsys.readouterr().out
    assert "RF" in out and "total" in out


@needs_real("mnist", "train")
def test_train_record_writes_the_record_and_nothing_else(tmp_path, monkeypatch, capsys):
    # The full-data path is exercised by the recorded runs themselves; here the run is made
    # small (the first 256 images, 1 epoch) so the test checks what --record writes, and where.
    real_run = runner.run
    small = data.load("mnist", "train", fast=False).subset(256)
    small.note = ""                   # stands in for the full set in this test only
    monkeypatch.setattr(runner, "run", lambda name, **kw: real_run(
        name, **{**kw, "train_set": small, "test_set": data.load("mnist", "test", fast=True)}))
    monkeypatch.setattr(records, "git_state", lambda: {"git_commit": "abc", "git_dirty": False})
    monkeypatch.delenv("EVAKIT_FAST", raising=False)
    monkeypatch.setenv("EVAKIT_RECORDS", str(tmp_path / "records"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "s01/rf-net", "--epochs", "1", "--record"]) == 0
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    # the record and, for a network this small (≤ 900 k parameters), its weights; nothing else
    assert sorted(str(p) for p in written) == ["records/s01/rf-net.json",
                                              "records/s01/rf-net.weights.pt"]
    record = records.read(tmp_path / "records/s01/rf-net.json")
    assert record.recipe == "s01/rf-net" and record.epochs_run == 1
    assert record.shortened and record.epochs_planned == 10
    assert record.params == models.count_parameters(recipes.get("s01/rf-net").build_model())
    assert "SHORTENED" in record.provenance()
    assert len(record.outputs["test_predictions"]["pred"]) == 1000


def test_train_record_refuses_a_dirty_tree(monkeypatch, capsys):
    monkeypatch.delenv("EVAKIT_FAST", raising=False)
    monkeypatch.setattr(records, "git_state", lambda: {"git_commit": "abc", "git_dirty": True})
    assert cli.main(["train", "s01/rf-net", "--record"]) == 2
    assert "clean tree" in capsys.readouterr().err


def test_missing_data_is_one_sentence_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVAKIT_DATA", str(tmp_path))
    monkeypatch.setenv("EVAKIT_FAST", "1")
    monkeypatch.setattr("evakit.data._from_torchvision", lambda *a: None)
    assert cli.main(["train", "s01/rf-net"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mnist (train) is not in" in err and len(err.splitlines()) == 1


def test_console_script_runs_as_a_module():
    done = _evakit("recipes")
    assert done.returncode == 0 and "s25/digit-sum" in done.stdout


def test_bench_loader_prints_both_pipelines_and_a_ratio(capsys):
    pytest.importorskip("PIL")
    from evakit import data
    if not data.cache_path("mnist", "train").is_file():
        pytest.skip("real MNIST not under EVAKIT_DATA")
    assert cli.main(["bench", "loader", "--images", "512", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "evakit Loader" in out and "torchvision DataLoader" in out and "ratio:" in out


def test_bench_cifar_prints_loader_and_step_rates_with_ratios(capsys):
    assert cli.main(["bench", "cifar", "--images", "256", "--step-images", "16",
                     "--batch-size", "16", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "evakit Loader" in out and "DataLoader + albumentations, 2 workers" in out
    assert "training step of the custom ResNet" in out and out.count("ratio:") == 2
