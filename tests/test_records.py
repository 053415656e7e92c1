"""Records: where they live, what they say about their provenance."""

import json

import pytest
import torch

from evakit import recipes, records
from tests.conftest import needs_real


def _record(**over):
    r = {"recipe": "s04/step3", "seed": 2, "seed_is_default": False, "epochs_run": 3,
         "epochs_planned": 15, "shortened": True, "params": 5852, "device": "cuda",
         "device_name": "NVIDIA H200", "wall_seconds": 46.0, "git_commit": "22e10df4315a",
         "git_dirty": False, "versions": {"torch": "2.11.0"}, "created": "2026-11-26T19:00:00",
         "history": {"train_acc": [98.0, 99.0, 99.5], "test_acc": [98.5, 99.45, 99.4],
                     "train_loss": [0.1, 0.05, 0.02], "test_loss": [0.06, 0.03, 0.02],
                     "lr": [0.1, 0.05, 0.0], "seconds": [15.0, 15.0, 16.0]}}
    r.update(over)
    return r


def test_a_run_on_another_seed_gets_its_own_file(tmp_path):
    path = records.save(_record(), tmp_path)
    assert path == tmp_path / "s04" / "step3-seed2.json"
    assert records.load("s04/step3", tmp_path, seed=2)["seed"] == 2
    default = records.save(_record(seed=1, seed_is_default=True), tmp_path)
    assert default == tmp_path / "s04" / "step3.json"
    assert not list(tmp_path.rglob("*.part"))
    json.loads(default.read_text())


def test_provenance_and_results_come_from_the_record():
    r = _record()
    line = records.provenance(r)
    assert "SHORTENED" in line and "NVIDIA H200" in line and "22e10df431" in line
    md = records.results_markdown(r)
    assert "5,852" in md and "99.45 % (epoch 2)" in md and "99.50 % (epoch 3)" in md


def test_git_state_without_a_repository_uses_the_stated_commit(monkeypatch):
    monkeypatch.setattr(records, "_git", lambda *a: "")
    monkeypatch.setenv("EVAKIT_GIT_COMMIT", "abc123")
    state = records.git_state()
    assert state["git_commit"] == "abc123" and "EVAKIT_GIT_COMMIT" in state["git_note"]


def test_every_committed_record_is_complete_and_full_size():
    folder = records.records_dir()
    found = sorted(folder.rglob("*.json"))
    assert found, f"no records under {folder}"
    for path in found:
        r = json.loads(path.read_text())
        assert not r["fast"], f"{path} is a FAST run"
        assert r["git_commit"], f"{path} does not say which commit produced it"
        assert len(r["history"]["test_acc"]) == r["epochs_run"]
        assert "mnist-train" in r["data"]["train"] and "first" not in r["data"]["train"]


@needs_real("mnist", "train")
def test_a_run_on_a_limited_slice_cannot_become_a_record():
    run = recipes.run("s01/rf-net", epochs=1, fast=False, limit=64, device="cpu", verbose=False)
    assert run.data_sources["train"].endswith("(first 64 of 60000)")
    with pytest.raises(ValueError, match="first 64 images only"):
        records.make(run)


def test_session8_recipe_augments_with_crop_flip_and_mean_filled_cutout():
    recipe = recipes.get("s08/custom-resnet")
    mean = (0.25, 0.5, 0.75)
    x = torch.zeros(64, 3, 32, 32)
    out = recipes.train_augment(recipe, mean)(x, torch.Generator().manual_seed(0))
    filled = (out != 0).any(1)
    assert filled.flatten(1).sum(1).max() <= 8 * 8 and filled.any()
    assert torch.allclose(out[:, 2][filled], torch.tensor(0.75))
    assert recipes.train_augment(recipes.get("s01/rf-net"), (0.1,)) is None


def test_results_or_missing_says_plainly_when_there_is_no_record(tmp_path):
    text = records.results_or_missing("s08/custom-resnet", tmp_path)
    assert "No recorded full run" in text and "evakit train s08/custom-resnet --record" in text
    records.save(_record(recipe="s08/custom-resnet", seed=1, seed_is_default=True), tmp_path)
    found = records.results_or_missing("s08/custom-resnet", tmp_path)
    assert found.startswith("**Results.** Parameters")
