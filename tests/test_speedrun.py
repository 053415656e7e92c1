"""Session 8's speedrun: the whitening layer, Lookahead, the triangle schedule, the task."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from evakit import data, errors, recipes, runner
from evakit.models.speedrun import SpeedrunNet
from evakit.speedrun import Lookahead

NARROW = {"widths": (16, 32, 32)}
TRAIN = data.synthetic("synthetic-cifar10", 1024, seed=1)
TEST = data.synthetic("synthetic-cifar10", 256, seed=2, split="test")


def _run(**changes):
    recipe = replace(recipes.get("s08/speedrun"), model_kwargs=NARROW, batch_size=128,
                     precision="fp32", **changes)
    return runner.run(recipe, fast=False, device="cpu", verbose=False, train_set=TRAIN,
                      test_set=TEST)


def test_the_whitening_layer_decorrelates_the_patches_it_was_fitted_on():
    torch.manual_seed(0)
    mixing = torch.randn(3, 3)                    # correlated colour channels
    images = torch.einsum("ij,njhw->nihw", mixing, torch.randn(64, 3, 16, 16))
    net = SpeedrunNet(widths=(8, 8, 8))
    net.fit_data(images, eps=0.0)
    out = torch.nn.functional.conv2d(images, net.whiten.weight[:12])   # the + half
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = flat.T @ flat / len(flat)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-3)
    assert torch.equal(net.whiten.weight[12:], -net.whiten.weight[:12])
    assert not net.whiten.weight.requires_grad


def test_lookahead_sets_the_weights_to_their_running_average():
    model = torch.nn.Linear(2, 1, bias=False)
    inner = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = Lookahead(inner, model, total_steps=10, steps_per_epoch=10, every=1, base=0.5,
                    power=0.0)                   # decay 0.5 at every step
    seen = []
    for _ in range(3):
        model.weight.grad = torch.ones_like(model.weight)
        before = model.weight.detach().clone()
        opt.step()
        seen.append(before - 0.1)                # where SGD alone would have gone
    # step 1 starts the average at SGD's weights; later steps move it half way each time
    average = seen[0]
    average = 0.5 * average + 0.5 * seen[1]
    average = 0.5 * average + 0.5 * seen[2]
    assert torch.allclose(model.weight.detach(), average)
    state = opt.state_dict()
    assert state["steps"] == 3 and torch.equal(state["average"]["weight"], model.weight)


def test_triangle_schedule_is_straight_lines_and_keeps_the_momentum():
    recipe = replace(recipes.get("s08/speedrun"), epochs=4)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    sched = runner.lr_scheduler(recipe, opt, steps_per_epoch=25)     # 100 steps
    lrs, momenta = [], []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(recipe.lr_start)
    assert max(lrs) == pytest.approx(recipe.lr, rel=0.01)
    assert lrs.index(max(lrs)) in (22, 23)
    assert lrs[-1] == pytest.approx(recipe.lr_end, rel=0.05)
    rises, falls = torch.tensor(lrs[:22]).diff(), torch.tensor(lrs[24:]).diff()
    assert torch.allclose(rises, rises[0].expand_as(rises), rtol=1e-3)     # straight lines
    assert torch.allclose(falls, falls[0].expand_as(falls), rtol=1e-3)
    assert set(momenta) == {recipe.momentum}


def test_speedrun_trains_end_to_end_with_fast_biases_and_a_frozen_whitening():
    done = _run(epochs=4)
    assert done.history.test_acc[-1] > 50        # chance is 10 %: the set is learnable
    assert set(done.metrics) == {"test_acc", "test_acc_no_tta"}    # with and without TTA
    assert done.model.tta == 2                   # scoring without TTA put it back
    net = done.model
    assert not net.whiten.weight.requires_grad and not net.whiten.bias.requires_grad
    assert net.whiten_bias_epochs == 3
    assert done.params == sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_speedrun_settings_belong_to_the_speedrun_task():
    recipe = recipes.get("s08/speedrun")
    assert recipe.config()["speedrun"]["bias_lr_scale"] == 64.0
    assert "speedrun" not in recipes.get("s08/custom-resnet").config()
    with pytest.raises(errors.ArgumentError, match="task='speedrun'"):
        runner.run(replace(recipe, task="classify", model_kwargs=NARROW, epochs=1),
                   fast=False, device="cpu", verbose=False, train_set=TRAIN, test_set=TEST)


def test_test_time_augmentation_averages_the_mirrored_views():
    net = SpeedrunNet(widths=(8, 8, 8), tta=1).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), 0.5 * (net.logits(x) + net.logits(x.flip(-1))))
        net.tta = 0
        assert torch.allclose(net(x), net.logits(x))


def test_bench_counts_the_speedrun_whole_and_the_custom_resnet_to_90_percent(monkeypatch):
    from evakit import bench, records

    seconds = {"s08/speedrun": 1.0, "s08/speedrun-eager": 1.25, "s08/custom-resnet": 2.0}

    def fake_steps(name, batches, model, limit, device, precision):
        return bench.Rate(name, 1000, seconds[name])
    monkeypatch.setattr(bench, "_train_steps", fake_steps)
    monkeypatch.setattr(bench, "matmul_peak", lambda dtype: 1e11)
    fast, eager, base = bench.speedrun(images=64, device="cpu")
    assert eager.recipe == "s08/speedrun-eager" and eager.epochs == fast.epochs
    assert eager.flops_per_image == fast.flops_per_image       # the same arithmetic
    assert (fast.recipe, fast.epochs) == ("s08/speedrun", recipes.get("s08/speedrun").epochs)
    reached = records.load("s08/custom-resnet").history.time_to(90)
    assert base.epochs == reached[0]
    assert fast.projected_seconds == pytest.approx(fast.epochs * 50_000 / 1000)
    assert base.projected_seconds == pytest.approx(base.epochs * 50_000 / 500)
    assert fast.floor_seconds == pytest.approx(fast.epochs * 50_000 * fast.flops_per_image / 1e11)
    assert base.share_of_peak == pytest.approx(base.flops_per_image * 500 / 1e11)
    assert base.flops_per_image > 2 * fast.flops_per_image       # the speedrun's net is lighter


def test_training_flops_count_forward_and_backward_products_by_hand():
    from evakit import bench
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False), nn.Linear(5, 3, bias=False))
    # forward 2·12·5 + 2·5·3; backward: the second layer's input and weight gradients (2·5·3
    # each), the first layer's weight gradient only (the images need none)
    assert bench.training_flops(net, (3, 2, 2)) == 120 + 30 + 30 + 30 + 120
    assert net.training and all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("alternate", [True, False])
def test_both_flip_plans_mirror_about_half_of_the_images(alternate):
    """Alternating flips mirror a fixed half each epoch; random flips mirror about half of
    every batch (the ablation must still flip, only differently)."""
    from evakit import tasks
    recipe = replace(recipes.get("s08/speedrun"), batch_size=256,
                     speedrun=recipes.Speedrun(translate=0, alternate_flip=alternate))
    marked = data.synthetic("synthetic-cifar10", 256, seed=3)
    batches, _ = tasks.get("speedrun").batches(recipe, marked, marked, torch.device("cpu"))
    x, _ = next(iter(batches))
    mean = torch.tensor(marked.mean).view(1, -1, 1, 1)
    std = torch.tensor(marked.std).view(1, -1, 1, 1)
    plain = (marked.images.float() / 255 - mean) / std
    mirrored = 0
    for xi in x:                                 # find each batch image among the originals
        as_is = ((plain - xi) ** 2).flatten(1).sum(1)
        flipped = ((plain.flip(-1) - xi) ** 2).flatten(1).sum(1)
        mirrored += int(flipped.min() < as_is.min())
    assert 80 < mirrored < 176                   # about half of 256


def test_step_rate_times_one_cpu_thread_in_cpu_seconds_and_restores_the_threads(monkeypatch):
    from evakit import bench

    ticks = iter(range(100))                  # a CPU clock that advances 1 s per reading
    monkeypatch.setattr(bench.time, "process_time", lambda: float(next(ticks)))
    threads_inside = []
    real_step = bench.train.train_step

    def step(*args, **kwargs):
        threads_inside.append(torch.get_num_threads())
        return real_step(*args, **kwargs)
    monkeypatch.setattr(bench.train, "train_step", step)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rate, where = bench.step_rate("s06/cifar-net", (3, 32, 32), classes=10, batch_size=4,
                                      steps=2, device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert (rate.name, rate.images, rate.seconds) == ("s06/cifar-net", 8, 1.0)
    assert where.startswith("one CPU thread, ") and set(threads_inside) == {1}
    assert len(threads_inside) == 3                 # one warm-up step, then the two timed


@pytest.mark.parametrize("eager_seconds, quicker", [(1.25, "s08/speedrun"),
                                                     (0.8, "s08/speedrun-eager")])
def test_cli_bench_speedrun_prints_compiled_against_eager(monkeypatch, capsys, eager_seconds,
                                                          quicker):
    from evakit import bench, cli

    def fake(images, device=None):
        return tuple(bench.RunSpeed(name, bench.Rate(name, 1000, seconds), 10, 50_000, 1e9,
                                    1e11)
                     for name, seconds in (("s08/speedrun", 1.0),
                                           ("s08/speedrun-eager", eager_seconds),
                                           ("s08/custom-resnet", 4.0)))
    monkeypatch.setattr(bench, "speedrun", fake)
    assert cli.main(["bench", "speedrun"]) == 0
    out = capsys.readouterr().out
    assert f"compiled steps run at {eager_seconds:.2f}× the eager steps' speed" in out
    ratio = 4.0 / min(1.0, eager_seconds)
    assert f"takes {ratio:.1f}× as long to reach 90 % as the speedrun ({quicker}, " in out
