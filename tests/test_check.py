"""evakit.check grades structure from the model and accuracy from the record."""

import copy

import pytest
from torch import nn

from evakit import check, cli, models


def _record(model="s03/assignment", accs=(98.0, 99.3, 99.45, 99.5), **kw):
    return {"recipe": "demo", "config": {"model": model, "model_kwargs": kw},
            "epochs_run": len(accs), "history": {"test_acc": list(accs)}}


def test_s03_model_meets_the_structure_constraints():
    report = check.grade("s03", model=models.create("s03/assignment"))
    assert report.passed, str(report)


def test_s03_record_fails_on_accuracy_and_says_so():
    report = check.grade("s03", _record(accs=(98.0, 99.3)))
    failed = [v.constraint for v in report.verdicts if not v.passed]
    assert failed == ["test accuracy ≥ 99.4 %"]
    assert "failed: test accuracy" in str(report)


def test_s03_rejects_a_model_without_bn_dropout_gap():
    report = check.grade("s03", model=models.create("s01/rf-net"))
    failed = {v.constraint for v in report.verdicts if not v.passed}
    assert {"uses batch normalization", "uses dropout", "uses global average pooling",
            "exactly one fully connected layer"} <= failed


def test_s03_counts_epochs():
    record = _record(accs=[99.5] * 20)
    assert not check.grade("s03", record).passed


def test_s04_needs_the_last_three_epochs():
    small = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3),
                          nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 10, 3),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    record = _record(accs=(99.0, 99.5, 99.45, 99.41))
    good = check.grade("s04", record, model=small)
    assert good.passed, str(good)
    worse = copy.deepcopy(record)
    worse["history"]["test_acc"][-2] = 99.39
    assert not check.grade("s04", worse, model=small).passed


def test_unknown_session_is_one_sentence():
    with pytest.raises(ValueError, match="no assignment constraints for session 's99'"):
        check.grade("s99", model=nn.Linear(1, 1))


def test_cli_check_exit_codes(tmp_path, capsys):
    import json
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record(accs=(99.5, 99.6))))
    assert cli.main(["check", "s03", str(path)]) == 0
    assert "all constraints met" in capsys.readouterr().out
    path.write_text(json.dumps(_record(accs=(99.0,))))
    assert cli.main(["check", "s03", str(path)]) == 1
    assert cli.main(["check", "s03", str(tmp_path / "missing.json")]) == 2


def test_cli_sheet_writes_a_workbook(tmp_path, capsys):
    out = tmp_path / "b.xlsx"
    assert cli.main(["sheet", "backprop", "-o", str(out), "--lr", "0.5", "--steps", "3"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["sheet", "backprop", "-o", str(out), "--steps", "0"])
    assert e.value.code == 2
