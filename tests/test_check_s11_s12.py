"""The session 11 and 12 assignments: the committed solution records pass `evakit check`, and
committed records (or copies of them) that break one constraint fail on exactly that one."""

from dataclasses import replace

from evakit import check, cli, models, records
from tests.conftest import needs_real


def _failed(report: check.Report) -> set[str]:
    return {v.constraint for v in report.verdicts if not v.passed}


def _with_last_loss(record: records.Record, loss: float) -> records.Record:
    h = record.history
    return replace(record, history=replace(h, test_loss=[*h.test_loss[:-1], loss]))


LOSS = "held-out loss < 1.88 nats per character (nanoGPT's small CPU configuration)"


def test_s11_the_recorded_character_gpt_solves_the_assignment():
    report = check.grade("s11", records.load("s11/gpt"))
    assert report.passed, str(report)
    assert check.grade("s11", records.load("s11/gpt-sparse")).passed


def test_s11_fails_on_the_loss_alone_when_it_is_not_below_nanogpts():
    record = records.load("s11/gpt")
    assert _failed(check.grade("s11", _with_last_loss(record, 1.88))) == {LOSS}
    assert check.grade("s11", _with_last_loss(record, 1.879)).passed


def test_s11_a_bpe_model_is_not_graded_per_character():
    failed = _failed(check.grade("s11", records.load("s11/gpt-bpe")))
    assert failed == {"character tokens: a vocabulary of 65, so the loss is per character",
                      "parameters ≤ 809,856 (nanoGPT's small CPU configuration: 4 layers, "
                      "4 heads, width 128)",
                      "held out: the last 10 % of Tiny Shakespeare, by characters", LOSS}
    low = check.grade("s11", _with_last_loss(records.load("s11/gpt-bpe"), 1.0))
    verdict = next(v for v in low.verdicts if v.constraint == LOSS)
    assert not verdict.passed and "per token of shakespeare-bpe" in verdict.measured


def test_s11_structure_needs_a_causal_decoder_of_nanogpts_cpu_size():
    assert check.grade("s11", model=models.create("s11/gpt")).passed
    assert "a causal decoder (GPT)" in _failed(check.grade("s11",
                                                           model=models.create("s11/bert")))
    wide = _failed(check.grade("s11", model=models.create("s11/gpt", n_embd=160)))
    assert wide == {"parameters ≤ 809,856 (nanoGPT's small CPU configuration: 4 layers, "
                    "4 heads, width 128)"}
    assert "context of 64 characters" in _failed(
        check.grade("s11", model=models.create("s11/gpt", block_size=128)))


RARE = "mean recall of the 3 rarest classes ≥ s12/lt-ce's + 10 points"
BALANCED = "balanced accuracy ≥ s12/lt-ce's − 5 points"


@needs_real("cifar10-sample", "test")   # the 1,000 test images the records scored
def test_s12_the_recorded_weighted_loss_solves_the_assignment():
    report = check.grade("s12", records.load("s12/lt-weighted-ce"))
    assert report.passed, str(report)


@needs_real("cifar10-sample", "test")   # the 1,000 test images the records scored
def test_s12_each_committed_long_tail_record_fails_where_it_falls_short():
    assert _failed(check.grade("s12", records.load("s12/lt-ce"))) == {RARE}
    assert _failed(check.grade("s12", records.load("s12/lt-focal"))) == {RARE}
    assert _failed(check.grade("s12", records.load("s12/lt-class-balanced"))) == {BALANCED}


@needs_real("cifar10-sample", "test")   # the 1,000 test images the records scored
def test_s12_needs_the_long_tail_and_the_epoch_budget():
    balanced = _failed(check.grade("s12", records.load("s12/plain")))
    assert "trained on CIFAR-10-LT, imbalance ratio 100" in balanced
    solution = records.load("s12/lt-weighted-ce")
    h = solution.history
    longer = replace(solution, history=replace(h, **{f: [*getattr(h, f), getattr(h, f)[-1]]
                                                     for f in ("train_loss", "train_acc",
                                                               "test_loss", "test_acc", "lr",
                                                               "seconds")}))
    assert _failed(check.grade("s12", longer)) == {"at most 30 epochs (the cross-entropy "
                                                   "baseline's)"}


@needs_real("cifar10-sample", "test")   # the 1,000 test images the records scored
def test_s12_needs_the_baselines_network_and_training_images():
    solution = records.load("s12/lt-weighted-ce")
    other_net = replace(solution, config={**solution.config, "model": "s05/bn"})
    assert _failed(check.grade("s12", other_net, model=models.create("s06/cifar-net"))) == {
        "session 6's network, as in s12/lt-ce"}
    fewer = replace(solution.data["train"], size=solution.data["train"].size - 1,
                    images_md5="0" * 32)
    other_data = replace(solution, data={**solution.data, "train": fewer})
    assert _failed(check.grade("s12", other_data)) == {
        "the long-tailed training images of s12/lt-ce"}


def test_s12_structure_is_session_6s_budget():
    assert check.grade("s12", model=models.create("s06/cifar-net")).passed
    assert not check.grade("s12", model=models.create("s07/resnet18")).passed


def test_cli_grades_the_s11_solution(capsys):
    assert cli.main(["check", "s11", str(records.path_for("s11/gpt"))]) == 0
    assert "all constraints met" in capsys.readouterr().out
    assert cli.main(["check", "s11", str(records.path_for("s11/gpt-bpe"))]) == 1
