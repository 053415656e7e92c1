"""evakit.check grades structure from the model and accuracy from the record."""

import json
from dataclasses import replace

import pytest
from torch import nn

from evakit import check, cli, models, records
from evakit.train import History

TEMPLATE = records.load("s03/assignment")


def _record(model="s03/assignment", accs=(98.0, 99.3, 99.45, 99.5), **kw) -> records.Record:
    """A record of the given test accuracies (the rest taken from a committed record)."""
    n = len(accs)
    history = History([0.1] * n, [99.0] * n, [0.05] * n, list(accs), [0.01] * n, [1.0] * n)
    return replace(TEMPLATE, recipe="demo", history=history,
                   config={**TEMPLATE.config, "model": model, "model_kwargs": kw})


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
    report = check.grade("s03", _record(accs=[99.5] * 20))
    assert [v.constraint for v in report.verdicts if not v.passed] == ["fewer than 20 epochs"]
    assert next(v for v in report.verdicts if "epochs" in v.constraint).measured == "20"


def test_s04_needs_the_last_three_epochs():
    small = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3),
                          nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 10, 3),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    record = _record(accs=(99.0, 99.5, 99.45, 99.41))
    good = check.grade("s04", record, model=small)
    assert good.passed, str(good)
    worse = _record(accs=(99.0, 99.5, 99.39, 99.41))
    assert not check.grade("s04", worse, model=small).passed


def test_unknown_session_is_one_sentence():
    with pytest.raises(ValueError, match="no assignment constraints for session 's99'"):
        check.grade("s99", model=nn.Linear(1, 1))


def test_cli_check_exit_codes(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record(accs=(99.5, 99.6)).to_dict()))
    assert cli.main(["check", "s03", str(path)]) == 0
    assert "all constraints met" in capsys.readouterr().out
    path.write_text(json.dumps(_record(accs=(99.0,)).to_dict()))
    assert cli.main(["check", "s03", str(path)]) == 1
    assert cli.main(["check", "s03", str(tmp_path / "missing.json")]) == 2


def test_cli_sheet_writes_a_workbook(tmp_path, capsys):
    out = tmp_path / "b.xlsx"
    assert cli.main(["sheet", "backprop", "-o", str(out), "--lr", "0.5", "--steps", "3"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["sheet", "backprop", "-o", str(out), "--steps", "0"])
    assert e.value.code == 2


class PooledCifarNet(nn.Module):
    """A small CIFAR net that breaks session 6's rules: max pooling, no dilation, no depthwise."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        return self.body(x)


def test_s06_model_meets_the_structure_constraints_and_a_pooled_net_does_not():
    assert check.grade("s06", model=models.create("s06/cifar-net")).passed
    failed = {v.constraint for v in check.grade("s06", model=PooledCifarNet()).verdicts
              if not v.passed}
    assert failed == {"receptive field > 44 (before global pooling)", "no max pooling",
                      "a depthwise-separable convolution", "a dilated convolution"}


def test_s06_record_is_graded_on_its_final_accuracy():
    report = check.grade("s06", _record("s06/cifar-net", accs=(80.0, 86.0, 84.9)))
    assert [v.constraint for v in report.verdicts if not v.passed] == ["test accuracy ≥ 85 %"]


def test_s08_custom_resnet_passes_and_resnet18_fails_on_layout():
    assert check.grade("s08", model=models.create("s08/custom-resnet")).passed
    failed = {v.constraint for v in check.grade("s08", model=models.create("s07/resnet18"))
              .verdicts if not v.passed}
    assert failed == {"two residual additions (layer 1 and layer 3)",
                      "MaxPool(4) before the classifier"}


def test_s08_record_needs_24_epochs_and_90_percent_and_reports_the_stretch():
    report = check.grade("s08", _record("s08/custom-resnet", accs=[50.0] * 23 + [93.9]))
    assert report.passed and "stretch ≥ 93.8 %: met" in str(report)
    short = check.grade("s08", _record("s08/custom-resnet", accs=[50.0] * 20 + [89.0]))
    assert {v.constraint for v in short.verdicts if not v.passed} == {"24 epochs",
                                                                      "test accuracy ≥ 90 %"}


def test_cli_grades_a_recipes_structure_without_a_record(capsys):
    assert cli.main(["check", "s06", "s06/cifar-net", "--structure"]) == 0
    assert "all constraints met" in capsys.readouterr().out
    assert cli.main(["check", "s06", "s07/resnet18", "--structure"]) == 1


def test_receptive_field_is_judged_where_the_global_pool_takes_over():
    report = check.grade("s03", model=models.create("s03/assignment"))
    rf_verdict = next(v for v in report.verdicts if "receptive field" in v.constraint)
    assert rf_verdict.measured == "RF 22 entering features.8" and rf_verdict.passed
    shallow = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Dropout(0.1),
                            nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(8, 10))
    verdicts = check.grade("s03", model=shallow).verdicts
    assert [v.measured for v in verdicts if "receptive field" in v.constraint] == \
        ["RF 5 entering 4"]
    assert [v.passed for v in verdicts if "receptive field" in v.constraint] == [False]


def test_grading_leaves_the_model_in_the_mode_it_was_in():
    model = models.create("s08/custom-resnet", width=8).train()
    check.grade("s08", model=model)
    assert model.training
