"""Records: typed, validated once, where they live, what they say about their provenance."""

import json
import subprocess
from dataclasses import replace

import pytest

from evakit import data, errors, records, runner
from evakit.records import Record

SYNTHETIC = data.synthetic("synthetic-mnist", 96, seed=1)
SYNTHETIC_TEST = data.synthetic("synthetic-mnist", 64, seed=2, split="test")


def _run(recipe="s01/rf-net", **kw):
    """A real (tiny) run of a registered recipe on in-memory synthetic images."""
    return runner.run(recipe, epochs=kw.pop("epochs", 1), fast=False, device="cpu",
                      verbose=False, train_set=SYNTHETIC, test_set=SYNTHETIC_TEST, **kw)


@pytest.fixture(scope="module")
def record() -> Record:
    return records.make(_run(seed=2), git={"git_commit": "22e10df4315a", "git_dirty": False},
                        command="evakit train s01/rf-net --seed 2 --record")


def test_a_record_round_trips_through_json_and_says_what_it_saw(record, tmp_path):
    path = records.save(record, tmp_path)
    assert path == tmp_path / "s01" / "rf-net-seed2.json"     # another seed, its own file
    back = records.load("s01/rf-net", tmp_path, seed=2)
    assert back == record and not list(tmp_path.rglob("*.part"))
    assert back.data["train"].dataset == "synthetic-mnist" and back.data["train"].size == 96
    assert len(back.data["test"].images_md5) == 32
    assert str(tmp_path) not in path.read_text() and "/work" not in path.read_text()


def test_provenance_and_results_come_from_the_record(record):
    line = record.provenance()
    assert "SHORTENED" in line and "1 of 10 epochs" in line and "22e10df431" in line
    assert "fp32" in line
    md = record.results_markdown()
    epoch, best = record.history.best()
    assert f"{record.params:,}" in md and f"{best:.2f} % (epoch {epoch})" in md
    assert "synthetic-mnist test: 64 images" in md


def test_make_flags_a_config_that_differs_from_the_named_recipe():
    run = _run()
    run.recipe = run.recipe.__class__(**{**run.recipe.__dict__, "lr": 0.5})
    made = records.make(run, git={"git_commit": "abc", "git_dirty": False})
    assert made.config_differs == {"lr": [0.01, 0.5]}
    assert records.make(_run(), git={"git_commit": "abc", "git_dirty": False}) \
        .config_differs == {}


def test_fast_and_smoke_runs_cannot_become_records():
    smoke = _run(limit=32)
    with pytest.raises(errors.RecordError, match="FAST or smoke run"):
        records.make(smoke)


def test_a_dirty_tree_cannot_record():
    with pytest.raises(errors.RecordError, match="clean tree"):
        records.require_clean({"git_commit": "abc1234567", "git_dirty": True})
    records.require_clean({"git_commit": "abc1234567", "git_dirty": False})


def test_git_state_without_a_repository_uses_the_stated_commit(monkeypatch):
    monkeypatch.setattr(records, "_git", lambda *a, **kw: "")
    monkeypatch.setenv("EVAKIT_GIT_COMMIT", "abc123")
    assert records.git_state() == {"git_commit": "abc123", "git_dirty": False}


@pytest.mark.parametrize("text, says", [
    ('{\n "recipe": "s04/step3",\n', "is not valid JSON"),
    ('{"format": 1, "recipe": "s04/step3"}', "format 2"),
    ('{"format": 2, "recipe": "s04/step3"}', "lacks seed"),
    ("[1, 2]", "is not an evakit record"),
])
def test_a_bad_record_file_is_one_sentence_naming_it(tmp_path, text, says):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(errors.RecordError, match=says) as e:
        records.read(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


FULL_SIZE = {"mnist": 60_000, "cifar10": 50_000, "shakespeare-char": 1_003_854,
             "shakespeare-bpe": 516_405}    # the training text in a 512-token BPE vocabulary


def test_every_committed_record_is_complete_full_size_and_pathless():
    folder = records.records_dir()
    found = sorted(p for p in folder.rglob("*.json") if not p.name.endswith("-lr-range.json"))
    assert found, f"no records under {folder}"
    for path in found:
        text = path.read_text()
        r = records.read(path)            # validates every field
        assert r.git_commit, f"{path} does not say which commit produced it"
        assert "/work/" not in text and "/home/" not in text, f"{path} names a machine path"
        train = r.data["train"]
        assert "first" not in train.note, f"{path} trained on a slice: {train.note}"
        if r.config["task"] != "practice":   # session 12 trains on the subsets its recipes name
            assert train.size == FULL_SIZE[train.dataset], path
            assert train.note == "", f"{path} trained on a slice: {train.note}"
        assert r.data["test"].dataset == r.config["dataset"]


def test_results_or_missing_says_plainly_when_there_is_no_record(tmp_path, record):
    text = records.results_or_missing("s01/rf-net", tmp_path)
    assert "No recorded full run" in text and "evakit train s01/rf-net --record" in text
    records.save(Record.from_dict({**record.to_dict(), "seed": 1, "seed_is_default": True}),
                 tmp_path)
    assert records.results_or_missing("s01/rf-net", tmp_path).startswith("**Results.**")


def test_a_record_json_is_plain_data(record):
    d = json.loads(json.dumps(record.to_dict()))
    assert Record.from_dict(d) == record


def test_a_small_models_weights_are_kept_per_seed_and_load_back(tmp_path):
    run = _run(seed=2)
    path = records.save_weights(run, tmp_path)
    assert path == tmp_path / "s01" / "rf-net-seed2.weights.pt"
    model = records.load_model("s01/rf-net", tmp_path, seed=2)
    x = SYNTHETIC_TEST.images[:4].float() / 255
    expected = run.model.eval()(x)
    assert not model.training and (model(x) - expected).abs().max() < 0.05  # float16 weights
    with pytest.raises(errors.RecordError, match="no recorded weights"):
        records.load_model("s01/rf-net", tmp_path)


def test_a_recorded_command_names_no_folder(monkeypatch):
    monkeypatch.setattr("sys.argv", ["evakit", "train", "s08/custom-resnet", "--checkpoint",
                                     "/home/me/ckpt/run.pt", "--record"])
    assert records._this_command() == "evakit train s08/custom-resnet --checkpoint run.pt --record"


def test_a_changed_record_does_not_make_the_code_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    (tmp_path / "book/records/s01").mkdir(parents=True)
    (tmp_path / "book/records/s01/rf-net.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    (tmp_path / "book/records/s01/rf-net.json").write_text('{"again": true}')
    assert records.git_state(tmp_path)["git_dirty"] is False     # a re-recorded run
    (tmp_path / "code.py").write_text("x = 2\n")
    assert records.git_state(tmp_path)["git_dirty"] is True      # changed code


def test_runs_that_trained_at_the_same_time_know_for_how_long(record):
    hour_ago = replace(record, created="2026-11-28T12:00:00+00:00", wall_seconds=3600.0)
    start, end = hour_ago.trained_between
    assert (end - start).total_seconds() == 3600 and start.hour == 11
    half_over = replace(hour_ago, created="2026-11-28T12:30:00+00:00")
    assert hour_ago.seconds_beside(half_over) == 1800 == half_over.seconds_beside(hour_ago)
    later = replace(hour_ago, created="2026-11-28T14:00:00+00:00")
    assert hour_ago.seconds_beside(later) == 0
    naive = replace(half_over, created="2026-11-28T12:30:00")        # read as UTC
    assert hour_ago.seconds_beside(naive) == 1800
    resumed = replace(half_over, resumed=True)
    assert resumed.trained_between is None and hour_ago.seconds_beside(resumed) == 0
    assert hour_ago.training_time() == "1.0 h"
    assert resumed.training_time() == "1.0 h (resumed: the sum of its stretches)"
