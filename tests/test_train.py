"""evakit.train: determinism, checkpoint/resume, schedulers, LR range test."""

import pytest
import torch
from torch import nn

from evakit import data, train


def _setup(seed=0, scheduler=None, dropout=True):
    train.seed_everything(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.2) if dropout else
                          nn.Identity(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    s = data.synthetic("synthetic-mnist", 96, seed=1)
    loader = data.Loader(s, 32, shuffle=True, seed=seed,
                         augment=lambda x, g: x + 0.01 * torch.randn(x.shape, generator=g))
    test = data.Loader(data.synthetic("synthetic-mnist", 64, seed=2), 32)
    sched = scheduler(opt) if scheduler else None
    return model, opt, loader, test, sched


def _metrics(h: train.History):
    d = h.to_dict()
    d.pop("seconds")
    return d


def test_same_seed_same_history_on_cpu():
    m1, o1, l1, t1, _ = _setup()
    h1 = train.fit(m1, l1, t1, 3, o1, progress=False)
    m2, o2, l2, t2, _ = _setup()
    h2 = train.fit(m2, l2, t2, 3, o2, progress=False)
    assert _metrics(h1) == _metrics(h2)
    assert all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(),
                                                  m2.state_dict().values(), strict=True))
    assert len(h1) == 3


def test_different_seed_different_history():
    m1, o1, l1, t1, _ = _setup(0)
    m2, o2, l2, t2, _ = _setup(5)
    assert _metrics(train.fit(m1, l1, t1, 2, o1, progress=False)) != \
        _metrics(train.fit(m2, l2, t2, 2, o2, progress=False))


@pytest.mark.parametrize("make_scheduler", [
    None,
    lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, epochs=4, steps_per_epoch=3),
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=0),
])
def test_resume_after_a_kill_ends_identical(tmp_path, make_scheduler):
    model, opt, loader, test, sched = _setup(scheduler=make_scheduler)
    full = train.fit(model, loader, test, 4, opt, sched, progress=False)

    ckpt = tmp_path / "run.pt"
    m, o, batches, t, s = _setup(scheduler=make_scheduler)
    train.fit(m, batches, t, 4, o, s, checkpoint=ckpt, progress=False, stop_after=2)  # "killed"
    m, o, batches, t, s = _setup(scheduler=make_scheduler)       # a fresh process
    torch.manual_seed(12345)                               # RNG state must come from the file
    resumed = train.fit(m, batches, t, 4, o, s, checkpoint=ckpt, resume=True, progress=False)
    assert _metrics(resumed) == _metrics(full)
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(),
                                                  m.state_dict().values(), strict=True))
    assert not list(tmp_path.glob("*.part"))


def test_schedulers_step_when_they_should():
    model, opt, loader, test, _ = _setup()
    one = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, epochs=2, steps_per_epoch=3)
    h = train.fit(model, loader, test, 2, opt, one, progress=False)
    assert one.last_epoch == 6                           # 3 batches × 2 epochs
    assert h.lr[0] < h.lr[1]                             # warming up
    model, opt, loader, test, _ = _setup()
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    h = train.fit(model, loader, test, 3, opt, step, progress=False)
    assert h.lr == pytest.approx([0.1, 0.01, 0.001])


def test_checkpoint_loads_with_weights_only(tmp_path):
    model, opt, loader, test, _ = _setup()
    train.fit(model, loader, test, 1, opt, checkpoint=tmp_path / "c.pt", progress=False)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["history"]["test_acc"]) == 1


def test_fit_learns_a_learnable_set():
    train.seed_everything(0)
    s = data.synthetic("synthetic-mnist", 512)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    h = train.fit(model, data.Loader(s, 64, shuffle=True), data.Loader(s, 256), 3, opt,
                  progress=False)
    assert h.test_acc[-1] > 90 and h.train_loss[-1] < h.train_loss[0]


def test_bad_arguments_are_one_sentence():
    model, opt, loader, test, _ = _setup()
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.fit(model, loader, test, 0, opt)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        train.fit(model, loader, test, 1, opt, resume=True)
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        train.lr_range_test(model, loader, opt, start_lr=1.0, end_lr=0.1)


def test_lr_range_test_sweeps_exponentially_and_restores_the_model():
    train.seed_everything(0)
    s = data.synthetic("synthetic-mnist", 512)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train.lr_range_test(model, data.Loader(s, 32, shuffle=True), opt,
                                 start_lr=1e-5, end_lr=1e3, num_iter=60)
    ratios = torch.tensor(result.lrs[1:]) / torch.tensor(result.lrs[:-1])
    assert torch.allclose(ratios, ratios[0]) and result.lrs[0] == pytest.approx(1e-5)
    assert len(result.lrs) < 60                          # stopped once the loss diverged
    assert 1e-4 < result.suggested_lr < 10
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert opt.param_groups[0]["lr"] == 0.01


def test_lr_range_test_matches_torch_lr_finder_on_the_same_batches():
    # torch-lr-finder (Gugger's / Smith's method as most courses use it) is the reference: same
    # model, same batches, no smoothing → the same learning rates and the same raw losses.
    torch_lr_finder = pytest.importorskip("torch_lr_finder")
    s = data.synthetic("synthetic-mnist", 256)
    dataset = torch.utils.data.TensorDataset(s.images.float() / 255, s.labels)

    def setup():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
        return model, torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)

    model, opt = setup()
    ours = train.lr_range_test(model, torch.utils.data.DataLoader(dataset, 32), opt,
                               start_lr=1e-4, end_lr=1.0, num_iter=24, smoothing=1.0,
                               diverge=1e9)
    model, opt = setup()
    for group in opt.param_groups:
        group["lr"] = 1e-4                                  # torch-lr-finder starts here
    finder = torch_lr_finder.LRFinder(model, opt, nn.CrossEntropyLoss(), device="cpu")
    finder.range_test(torch.utils.data.DataLoader(dataset, 32), end_lr=1.0, num_iter=24,
                      smooth_f=0.0, diverge_th=1e9)
    assert ours.lrs == pytest.approx(finder.history["lr"], rel=1e-9)
    assert ours.losses == pytest.approx(finder.history["loss"], rel=1e-5)


def test_range_readings_stop_where_the_loss_turns_up():
    lrs = [10 ** (-4 + i / 10) for i in range(50)]            # 1e-4 … ~8
    # flat, then falling, lowest at index 29, up, then a spurious second dip (from 40)
    losses = [2.3] * 10 + [2.3 - 0.05 * i for i in range(1, 21)] + \
             [1.3 + 0.1 * i for i in range(1, 11)] + [1.0] * 10
    result = train.LRRangeResult(lrs, losses)
    assert result.usable == 31                      # 1.5 > 1.1 × 1.3 first at index 31
    assert result.minimum_lr == lrs[29]             # 1.3, before the turn (not the 1.0 dip)
    assert result.falling_lr == lrs[10]             # the first point below 0.99 × 2.3
    assert lrs[10] <= result.suggested_lr <= lrs[29]
