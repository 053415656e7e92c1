"""The runner: a recipe end to end on in-memory data, FAST sizes, precision, schedules."""

from dataclasses import replace

import pytest
import torch

from evakit import data, errors, recipes, runner, tasks, train
from tests.conftest import needs_real

TRAIN = data.synthetic("synthetic-mnist", 512, seed=1)
TEST = data.synthetic("synthetic-mnist", 128, seed=2, split="test")


def _run(recipe, **kw):
    return runner.run(recipe, fast=False, device="cpu", verbose=False, train_set=TRAIN,
                      test_set=TEST, **kw)


def test_a_recipe_runs_end_to_end_on_synthetic_tensors_and_learns():
    done = _run(replace(recipes.get("s04/step3"), batch_size=32, rotation=0.0), epochs=3)
    assert len(done.history) == 3 and done.precision == "fp32"
    assert done.history.test_acc[-1] > 50            # chance is 10 %: the set is learnable
    assert done.data["train"].dataset == "synthetic-mnist" and done.data["train"].size == 512
    assert done.params == 6876 and done.label == "full run"
    line = done.result_line()
    assert line.startswith(f"full run: test accuracy {done.history.test_acc[-1]:.2f} % after "
                           "3 epochs, ") and line.endswith("on cpu (fp32)")


def test_the_digit_sum_task_owns_its_batches_loss_and_metrics():
    done = _run("s25/digit-sum", epochs=1)
    assert set(done.metrics) == {"test_acc", "digit_acc", "sum_acc"}
    assert done.metrics["test_acc"] <= min(done.metrics["digit_acc"], done.metrics["sum_acc"])
    assert isinstance(tasks.get("digit-sum"), tasks.DigitSum)
    with pytest.raises(errors.ArgumentError, match="unknown task"):
        tasks.get("regression")


def test_fast_sizes_live_on_the_recipe():
    recipe = recipes.get("s08/custom-resnet")
    fast = runner.for_fast(recipe)
    assert fast.epochs == recipe.fast.epochs and fast.model_kwargs == {"width": 16}
    assert "FAST run (1,000 training images, 2 epochs, width=16" in \
        recipe.fast.describe(1000)
    assert "fast" not in recipe.config()            # not part of what a record compares


def test_step_schedule_divides_every_step_size_epochs():
    recipe = replace(recipes.get("s04/code10"), epochs=6, step_size=2)
    done = _run(recipe)
    lr = done.history.lr
    assert lr[0] == pytest.approx(0.05) and lr[2] == pytest.approx(0.005)
    assert lr[4] == pytest.approx(0.0005) and lr[1] == lr[0]


def test_one_cycle_without_annihilation_ends_at_its_start():
    recipe = replace(recipes.get("s03/assignment"), epochs=2, lr_start=0.01, lr_end=0.01,
                     rotation=0.0)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr)
    sched = runner.lr_scheduler(recipe, opt, steps_per_epoch=10)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01) and max(lrs) == pytest.approx(recipe.lr)
    assert lrs[-1] == pytest.approx(0.01)


@pytest.mark.skipif(not train.bf16_supported("cpu"), reason="no native bf16 on this CPU")
def test_bf16_runs_channels_last_and_learns_like_fp32():
    cifar = data.synthetic("synthetic-cifar10", 512, seed=1)
    cifar_test = data.synthetic("synthetic-cifar10", 128, seed=2, split="test")
    recipe = replace(recipes.get("s08/custom-resnet"), model_kwargs={"width": 8}, epochs=3,
                     batch_size=32, lr=0.05, crop_padding=0, flip=False, cutout=0)
    accs = {}
    for mode in train.PRECISIONS:
        done = runner.run(recipe, fast=False, device="cpu", verbose=False, precision=mode,
                          train_set=cifar, test_set=cifar_test)
        accs[mode] = done.history.test_acc[-1]
        conv = next(m for m in done.model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (mode == "bf16")
        assert conv.weight.dtype == torch.float32      # weights stay fp32 under autocast
    assert accs["bf16"] > 50 and accs["fp32"] > 50


def test_bad_run_arguments_are_one_sentence():
    with pytest.raises(errors.ArgumentError, match="epochs must be a positive integer"):
        _run("s04/step3", epochs=0)
    with pytest.raises(errors.ArgumentError, match="not available here"):
        runner.parse_device("cuda:3") if not torch.cuda.is_available() else \
            runner.parse_device("tpu")
    with pytest.raises(errors.ArgumentError, match="unknown device 'tpu'"):
        runner.parse_device("tpu")


@needs_real("mnist", "train")
def test_step3_first_epoch_reproduces_its_committed_record():
    """The refactors kept every random draw: epoch 1 of s04/step3 equals its record exactly
    (one torch thread, as the record was made)."""
    from evakit import records

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        done = runner.run("s04/step3", fast=False, device="cpu", verbose=False, stop_after=1)
    finally:
        torch.set_num_threads(threads)
    record = records.load("s04/step3")
    assert record.threads == 1 and record.precision == "fp32"
    first = {name: values[0] for name, values in done.history.to_dict().items()}
    expected = {name: values[0] for name, values in record.history.to_dict().items()}
    first.pop("seconds"), expected.pop("seconds")
    assert first == expected                       # to the last digit
    config = runner.resolve("s04/step3").config()
    assert {key: config[key] for key in record.config} == record.config
    # fields the recipe gained after the record was made stand at their default (what the run did)
    assert all(config[key] is None for key in config.keys() - record.config.keys())


def _two_digits(x: float) -> float:
    return float(f"{x:.2g}")


def test_session8_one_cycle_ends_are_the_ones_its_range_test_found():
    from evakit import records

    sweep = records.load_range("s08/custom-resnet")
    found = train.LRRangeResult(sweep["lrs"], sweep["losses"])
    recipe = recipes.get("s08/custom-resnet")
    assert recipe.lr == _two_digits(found.minimum_lr)
    assert recipe.lr_start == recipe.lr_end == _two_digits(found.falling_lr)
    assert sweep["batch_size"] == recipe.batch_size and sweep["data"]["size"] == 50_000
