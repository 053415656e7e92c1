"""Session 12's practices (evakit.practice) and the runner hooks they use.

Each test runs on synthetic sets and networks a few hundred parameters wide, in seconds; the
long-tailed counts are also checked on the real CIFAR-10 labels when they are here.
"""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evakit import data, losses, models, practice, recipes, records, runner, tasks, train
from evakit.errors import ArgumentError, RecordError
from evakit.practice import View
from evakit.recipes import Fast, Practice, Recipe
from tests.conftest import needs_real

TINY = {"widths": (8, 8, 8, 8)}            # session 6's network, 8 channels wide


def _sets(n_train: int = 240, n_test: int = 120):
    return (data.synthetic("synthetic-cifar10", n_train, seed=0),
            data.synthetic("synthetic-cifar10", n_test, seed=1, split="test"))


def _recipe(name: str = "t12/demo", epochs: int = 2, **practice_kwargs) -> Recipe:
    return Recipe(name, "12", "a test recipe", "s06/cifar-net", TINY, dataset="cifar10",
                  task="practice", epochs=epochs, batch_size=32, lr=0.05,
                  scheduler="onecycle", crop_padding=2, flip=True,
                  practice=Practice(**practice_kwargs), fast=Fast(epochs=1))


def _run(recipe: Recipe, sets=None, **kwargs) -> runner.Run:
    train_set, test_set = sets or _sets()
    return runner.run(recipe, fast=False, device="cpu", precision="fp32", verbose=False,
                      train_set=train_set, test_set=test_set, **kwargs)


# ------------------------------------------------------------------------------------------------
# Data


def test_validation_split_is_stratified_disjoint_and_seeded():
    images = data.synthetic("synthetic-mnist", 1000, seed=3)
    torch.manual_seed(0)
    kept, val = practice.validation_split(images, 0.2, seed=5)
    counts, val_counts = (torch.bincount(s.labels, minlength=10) for s in (images, val))
    assert val_counts.tolist() == [round(0.2 * int(c)) for c in counts]
    assert len(kept) + len(val) == len(images) and val.split == "val"
    rows = {tuple(x.flatten().tolist()[:40]) for x in images.images}
    assert len(rows) == len(images)                     # every image is distinct, so ...
    kept_rows = {tuple(x.flatten().tolist()[:40]) for x in kept.images}
    val_rows = {tuple(x.flatten().tolist()[:40]) for x in val.images}
    assert not kept_rows & val_rows and kept_rows | val_rows == rows   # ... a partition
    torch.manual_seed(123)                              # the global generator plays no part
    again = practice.validation_split(images, 0.2, seed=5)[1]
    assert torch.equal(again.images, val.images) and torch.equal(again.labels, val.labels)
    other = practice.validation_split(images, 0.2, seed=6)[1]
    assert not torch.equal(other.images, val.images)
    assert "held out per class" in val.note and val.identity().split == "val"
    with pytest.raises(ArgumentError, match="fraction"):
        practice.validation_split(images, 1.0)


@needs_real("cifar10", "train")
def test_long_tailed_cifar10_has_the_published_counts():
    images = data.load("cifar10", "train", fast=False)
    tail = practice.long_tailed(images, 100, seed=0)
    counts = torch.bincount(tail.labels, minlength=10).tolist()
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert len(tail) == 12_406 == sum(losses.long_tailed_counts(5000, 10, 100))
    again = practice.long_tailed(images, 100, seed=0)
    assert torch.equal(again.images, tail.images)


def test_long_tailed_subset_has_the_stated_counts():
    labels = torch.arange(10).repeat_interleave(300)[torch.randperm(3000)]
    images = data.ImageSet(torch.zeros(3000, 1, 2, 2, dtype=torch.uint8), labels,
                           [str(c) for c in range(10)], "synthetic-mnist", "train", "test")
    tail = practice.long_tailed(images, 10, seed=1)
    assert torch.bincount(tail.labels).tolist() == losses.long_tailed_counts(300, 10, 10)


def test_class_subset_keeps_those_images_and_relabels_them_in_order():
    images = data.synthetic("synthetic-cifar10", 300, seed=2)
    vehicles = (0, 1, 8, 9)
    subset = practice.keep_classes(images, vehicles)
    original = torch.isin(images.labels, torch.tensor(vehicles))
    assert torch.equal(subset.images, images.images[original])
    assert subset.labels.tolist() == [vehicles.index(int(c)) for c in images.labels[original]]
    assert subset.classes == [images.classes[c] for c in vehicles]
    reordered = practice.keep_classes(images, (9, 0))
    original = images.labels[torch.isin(images.labels, torch.tensor([0, 9]))]
    assert torch.equal(reordered.labels, (original == 0).long())       # 9 → 0, 0 → 1
    with pytest.raises(ArgumentError, match="distinct labels"):
        practice.keep_classes(images, (1, 1))


def test_per_class_keeps_n_of_each_class_seeded():
    labels = torch.arange(4).repeat(50)
    chosen = practice.per_class_indices(labels, 7, seed=0)
    assert torch.bincount(labels[chosen]).tolist() == [7, 7, 7, 7]
    assert torch.equal(chosen, practice.per_class_indices(labels, 7, seed=0))
    assert torch.bincount(labels[practice.per_class_indices(labels, 80)]).tolist() == [50] * 4


def test_select_applies_classes_then_labels_per_class_then_validation():
    train_set, test_set = _sets(400, 200)
    kept, val, test = practice.select(Practice(classes=(3, 5), per_class=20, val_split=0.25),
                                      train_set, test_set)
    assert torch.bincount(kept.labels).tolist() == [15, 15]
    assert torch.bincount(val.labels).tolist() == [5, 5]
    assert set(test.labels.tolist()) == {0, 1}
    assert len(test) == int(torch.isin(test_set.labels, torch.tensor([3, 5])).sum())


# ------------------------------------------------------------------------------------------------
# Transfer


def test_replace_head_swaps_the_last_layer_for_k_outputs():
    net = recipes.get("s06/cifar-net").build_model()
    assert practice.last_layer(net) == "head.1"
    practice.replace_head(net, 4)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 10))
    practice.replace_head(mlp, 3)
    assert mlp[2].out_features == 3 and mlp[2].in_features == 7


def test_linear_probe_trains_the_head_only_and_keeps_batch_norm_statistics():
    torch.manual_seed(0)
    net = practice.replace_head(models.create("s06/cifar-net", **TINY), 4)
    probe = practice.LinearProbe(net)
    trainable = [n for n, p in probe.named_parameters() if p.requires_grad]
    assert trainable == ["net.head.1.weight", "net.head.1.bias"]
    before = {k: v.clone() for k, v in probe.state_dict().items()}
    probe.train()
    assert not any(m.training for m in probe.net.modules() if m is not probe.net.head[1])
    optimizer = torch.optim.SGD([p for p in probe.parameters() if p.requires_grad], lr=0.1)
    train.train_step(probe, torch.randn(8, 3, 32, 32), torch.randint(4, (8,)), optimizer)
    after = probe.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["net.head.1.bias", "net.head.1.weight"]   # BN statistics untouched


def test_copy_backbone_copies_all_but_the_head():
    torch.manual_seed(0)
    source = practice.replace_head(recipes.get("s06/cifar-net").build_model(), 6)
    target = practice.replace_head(recipes.get("s06/cifar-net").build_model(), 4)
    copied = practice.copy_backbone(target, source)
    mine, theirs = target.state_dict(), source.state_dict()
    assert copied == len(mine) - 2
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith("head.1."))
    with pytest.raises(ArgumentError, match="same architecture"):
        practice.copy_backbone(target, nn.Sequential(nn.Conv2d(3, 4, 1)))


def test_param_groups_give_the_backbone_its_fraction_of_the_lr_through_one_cycle():
    recipe = _recipe(init_from="t12/source", backbone_lr=0.1)
    task = tasks.get("practice")
    model = task.build_model(recipe, pretrained=False)
    groups = task.param_groups(recipe, model)
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(0.005)
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in model.parameters()}
    optimizer = runner._optimizer(recipe, groups)
    schedule = runner.lr_scheduler(recipe, optimizer, steps_per_epoch=10)
    peaks = [0.0, 0.0]
    for _ in range(20):
        optimizer.step()
        schedule.step()
        peaks = [max(p, g["lr"]) for p, g in zip(peaks, optimizer.param_groups, strict=True)]
    assert peaks[0] == pytest.approx(0.05, rel=1e-3) and peaks[1] == pytest.approx(0.005, rel=1e-3)


def test_transfer_from_a_recorded_model_end_to_end(tmp_path, monkeypatch):
    """Pretrain on six classes, record the weights, then a probe and a fine-tune on four
    others start from them: the probe's backbone never moves, the fine-tune's does."""
    monkeypatch.setenv("EVAKIT_RECORDS", str(tmp_path))
    source = _recipe("t12/source", classes=(2, 3, 4, 5, 6, 7))
    probe = _recipe("t12/probe", classes=(0, 1, 8, 9), per_class=10, init_from="t12/source",
                    freeze=True)
    tune = _recipe("t12/tune", classes=(0, 1, 8, 9), per_class=10, init_from="t12/source",
                   backbone_lr=0.1)
    for r in (source, probe, tune):
        monkeypatch.setitem(recipes.RECIPES, r.name, r)
    with pytest.raises(RecordError, match="no recorded weights"):
        _run(probe)
    pretrained = _run(source)
    assert pretrained.data["train"].size == int(torch.isin(
        _sets()[0].labels, torch.tensor(source.practice.classes)).sum())
    records.save_weights(pretrained)
    loaded = practice.load_model("t12/source")
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 6)

    backbone = {k: v for k, v in loaded.state_dict().items() if not k.startswith("head.1.")}
    probed = _run(probe)
    assert probed.params == 8 * 4 + 4 and probed.data["train"].size == 40
    assert all(torch.equal(probed.model.net.state_dict()[k], v) for k, v in backbone.items())
    tuned = _run(tune)
    assert any(not torch.equal(tuned.model.state_dict()[k], v) for k, v in backbone.items())
    records.save_weights(probed)
    again = practice.load_model("t12/probe")
    assert isinstance(again, practice.LinearProbe)
    assert torch.equal(again.net.head[1].weight, probed.model.net.head[1].weight.half().float())


def test_torchvision_transfer_offline_from_a_saved_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(0)
    pretrained = torchvision.models.resnet18(weights=None)
    torch.save(pretrained.state_dict(), tmp_path / "resnet18.pt")
    state = torch.load(tmp_path / "resnet18.pt", weights_only=True)
    net = practice.torchvision_transfer("resnet18", 4, weights=None, state_dict=state)
    assert net.fc.out_features == 4
    assert torch.equal(net.conv1.weight, pretrained.conv1.weight)
    probe = practice.torchvision_transfer("resnet18", 4, state_dict=state, freeze=True)
    assert [n for n, p in probe.named_parameters() if p.requires_grad] == \
        ["net.fc.weight", "net.fc.bias"]


# ------------------------------------------------------------------------------------------------
# Imbalance


def test_class_weights_make_a_training_image_weigh_one_on_average():
    counts = torch.tensor(losses.long_tailed_counts(5000, 10, 100))
    for kind in ("inverse", "effective"):
        w = practice.class_weights(counts, kind).double()
        assert float((w * counts).sum()) == pytest.approx(float(counts.sum()), rel=1e-5)
    inverse = practice.class_weights(counts, "inverse")
    assert float(inverse[-1] / inverse[0]) == pytest.approx(100.0, rel=1e-4)
    # Cui et al.'s weights, scaled to sum to C, are the same ratios at a smaller scale.
    cui = losses.class_balanced_weights(counts, 0.9999)
    ours = practice.class_weights(counts, "effective", 0.9999)
    torch.testing.assert_close(cui / cui[0], ours / ours[0])
    assert float((cui.double() * counts).sum() / counts.sum()) < 0.2


def test_weighted_ce_is_cross_entropy_with_weight_normalised_by_the_batch_weights():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(64, 10, generator=g), torch.randint(10, (64,), generator=g)
    counts = torch.tensor(losses.long_tailed_counts(500, 10, 100))
    loss = practice.imbalance_loss(Practice(loss="weighted-ce"), counts)
    w = practice.class_weights(counts, "inverse")
    by_hand = (w[target] * F.cross_entropy(logits, target, reduction="none")).sum() \
        / w[target].sum()
    torch.testing.assert_close(loss(logits, target), by_hand)
    cb = practice.imbalance_loss(Practice(loss="class-balanced", focal_gamma=1.0), counts)
    weights = practice.class_weights(counts, "effective", 0.9999)
    torch.testing.assert_close(cb(logits, target), losses.focal_loss(
        logits, target, gamma=1.0, alpha=weights))


# ------------------------------------------------------------------------------------------------
# Augmentation policies and mixing


def test_policy_augment_is_per_image_seeded_and_leaves_the_global_generator_alone():
    images = data.synthetic("synthetic-cifar10", 16, seed=0).images.float() / 255
    augment = practice.policy_augment("randaugment")
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)
    b = augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == images.shape
    assert torch.equal((a * 255).round() / 255, a)                # still whole uint8 levels
    assert not torch.equal(a, augment(images, torch.Generator().manual_seed(2)))


def test_mixing_loader_yields_soft_labels_from_its_own_generator():
    images = data.synthetic("synthetic-cifar10", 64, seed=0)
    for kind in ("mixup", "cutmix"):
        loader = practice.MixingLoader(data.Loader(images, 16, shuffle=True, seed=3), kind,
                                       1.0, 10)
        x, y = next(iter(loader))
        assert y.shape == (16, 10) and torch.allclose(y.sum(1), torch.ones(16))
        assert (y.max(1).values < 1).any()                     # something was mixed
        again = practice.MixingLoader(data.Loader(images, 16, shuffle=True, seed=3), kind,
                                      1.0, 10)
        x2, y2 = next(iter(again))
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_every_practice_trains_through_the_runner():
    for name, settings, extra in (
            ("mixup", {"mix": "mixup", "mix_alpha": 0.2}, {}),
            ("cutmix", {"mix": "cutmix"}, {}),
            ("autoaugment", {"policy": "autoaugment"}, {}),
            ("lt", {"imbalance": 5, "loss": "class-balanced", "focal_gamma": 1.0}, {}),
            ("focal", {"loss": "focal"}, {})):
        done = _run(replace(_recipe(f"t12/{name}", epochs=1, **settings), **extra))
        assert len(done.history) == 1 and 0 <= done.metrics["test_acc"] <= 100


# ------------------------------------------------------------------------------------------------
# After every epoch: validation, early stopping, SWA


def test_validation_is_scored_every_epoch_and_recorded_with_the_run():
    done = _run(_recipe(epochs=2, val_split=0.25))
    h = done.history
    assert len(h.val_loss) == len(h.val_acc) == 2 and "val_acc" in h.to_dict()
    assert done.data["val"].size + done.data["train"].size == 240
    assert done.metrics["val_acc"] == pytest.approx(h.val_acc[-1])
    assert "val_acc" not in _run(_recipe(epochs=1)).history.to_dict()   # older records' shape


def test_early_stopping_stops_after_patience_and_keeps_the_best_epoch():
    stopper = practice.EarlyStopping(patience=2)
    model = nn.Linear(2, 2)
    history = train.History()
    stopped = []
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.6, 0.4], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        history.append(val_loss=loss)
        stopped.append(stopper.update(epoch, history, model))
    assert stopped == [False, False, False, True, False] and stopper.best_epoch == 5
    stopper = practice.EarlyStopping(patience=2)
    history = train.History()
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.6], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        history.append(val_loss=loss)
        stopper.update(epoch, history, model)
    assert torch.all(stopper.restore(model).weight == 2)


def test_early_stopping_through_the_runner_returns_the_best_epochs_model():
    recipe = replace(_recipe(epochs=8, val_split=0.25, patience=1), scheduler=None, lr=0.5)
    done = _run(recipe)
    h = done.history
    best = min(range(len(h)), key=lambda i: h.val_loss[i])
    assert len(h) <= 8 and (len(h) == 8 or len(h) - 1 - best == 1)
    assert done.metrics["val_acc"] == pytest.approx(h.val_acc[best])
    assert done.metrics["test_acc"] == pytest.approx(h.test_acc[best])


def test_swa_averages_the_epochs_and_recomputes_batch_norm_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(torch.randn(8, 3, 6, 6) + i, torch.randint(2, (8,))) for i in range(3)]
    swa = practice.SWA(optimizer, start=2, swa_lr=0.01, train_batches=batches)
    snapshots = []
    for epoch in range(1, 5):
        for x, y in batches:
            train.train_step(model, x, y, optimizer)
        if epoch >= 2:
            snapshots.append(model[0].weight.detach().clone())
        swa.update(epoch, model)
    assert swa.averaged == 3
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    averaged = swa.finish(model)
    torch.testing.assert_close(averaged[0].weight, torch.stack(snapshots).mean(0))
    # update_bn: the running mean is the mean over the batches of each batch's mean of the
    # averaged network's BN input (cumulative average, equal batch sizes).
    with torch.no_grad():
        means = [averaged[0](x).mean((0, 2, 3)) for x, _ in batches]
    torch.testing.assert_close(averaged[1].running_mean, torch.stack(means).mean(0))
    assert not torch.equal(averaged[1].running_mean, model[1].running_mean)


def test_swa_through_the_runner_keeps_the_averaged_model():
    recipe = replace(_recipe(epochs=3, val_split=0.25, swa_start=2, swa_lr=0.01),
                     scheduler=None)
    done = _run(recipe)
    assert done.history.lr[:2] == [0.05, 0.05] and done.history.lr[2] < 0.05
    assert isinstance(done.model, nn.Module) and not hasattr(done.model, "n_averaged")
    assert done.metrics["test_acc"] == pytest.approx(train.evaluate(
        done.model, done.test_batches)[1])
    with pytest.raises(ArgumentError, match="scheduler=None"):
        _run(_recipe(epochs=1, swa_start=1))


def test_a_watched_run_refuses_a_checkpoint(tmp_path):
    with pytest.raises(ArgumentError, match="without --checkpoint"):
        _run(_recipe(epochs=1, val_split=0.2), checkpoint=tmp_path / "c.pt")


def test_fit_stops_when_on_epoch_says_so():
    train_set, test_set = _sets(64, 32)
    model = models.create("s06/cifar-net", **TINY)
    seen = []

    def stop_after_two(epoch, history, net):
        seen.append((epoch, len(history), net is model))
        return epoch == 2
    history = train.fit(model, data.Loader(train_set, 32), data.Loader(test_set, 32), 5,
                        torch.optim.SGD(model.parameters(), lr=0.01), verbose=False,
                        on_epoch=stop_after_two)
    assert len(history) == 2 and seen == [(1, 1, True), (2, 2, True)]


# ------------------------------------------------------------------------------------------------
# Test-time augmentation


def test_views_shift_like_a_reflect_padded_crop_and_flip():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    shifted = View(dy=1, dx=-2)(x)
    assert torch.equal(shifted[..., :5, 2:], x[..., 1:, :4])
    assert torch.equal(shifted[..., 5, 2:], x[..., 4, :4])      # reflected at the border
    assert torch.equal(View(flip=True)(x), x.flip(-1)) and torch.equal(View()(x), x)
    assert len(practice.crop_views(4)) == 10 and len({v.name for v in practice.crop_views()}) == 10


def test_tta_averages_the_softmax_of_each_view():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 5))
    x = torch.randn(7, 3, 8, 8)
    views = practice.crop_views(2)
    got = practice.predict_tta(model, x, views, batch_size=3)
    with torch.no_grad():
        expected = torch.stack([model(v(x)).softmax(1) for v in views]).mean(0)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.sum(1), torch.ones(7))
    with torch.no_grad():
        torch.testing.assert_close(practice.predict_tta(model, x), model(x).softmax(1))
    images = data.synthetic("synthetic-cifar10", 5, seed=0)
    net = models.create("s06/cifar-net", **TINY).eval()
    with torch.no_grad():
        plain = net(practice.normalized(images)).softmax(1)
    torch.testing.assert_close(practice.predict_tta(net, images), plain)


# ------------------------------------------------------------------------------------------------
# Flatness


def test_loss_along_a_direction_starts_at_the_model_and_leaves_it_unchanged():
    train_set, _ = _sets(64, 32)
    model = models.create("s06/cifar-net", **TINY).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    direction = practice.random_direction(model, seed=0)
    conv = model.c1[0][0].weight
    d = direction["c1.0.0.weight"]
    torch.testing.assert_close(d.flatten(1).norm(dim=1), conv.detach().flatten(1).norm(dim=1))
    batches = data.Loader(train_set, 32)
    curve = practice.loss_along(model, direction, [0.0, 1.0], batches)
    assert curve[0] == pytest.approx(train.evaluate(model, batches)[0])
    assert curve[1] != curve[0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------------------------------------
# Recipes


def test_earlier_recipes_keep_their_config_and_session_12_ones_name_their_practices():
    for name in recipes.names():
        recipe = recipes.get(name)
        if recipe.session != "12":
            assert recipe.practice is None and "practice" not in recipe.config()
        else:
            assert recipe.task == "practice" and recipe.config()["practice"] is not None
    plain, swa = recipes.get("s12/plain"), recipes.get("s12/swa")
    assert swa.differences(plain)["practice"][1]["swa_start"] == 15
    assert plain.differences(recipes.get("s06/cifar-net"))["practice"][0] is None


def test_transfer_recipes_start_from_a_recipe_recorded_before_them():
    names = recipes.names()
    for name in names:
        source = recipes.get(name).practice and recipes.get(name).practice.init_from
        if source:
            assert source in names and recipes.get(source).practice.init_from is None


def test_bad_practices_are_one_sentence():
    for bad in ({"val_split": 1.0}, {"patience": 3}, {"loss": "hinge"}, {"mix": "blend"},
                {"freeze": True}, {"mix": "mixup", "loss": "focal"}, {"classes": (1,)},
                {"swa_start": 0}):
        with pytest.raises(ArgumentError, match="^Practice: "):
            Practice(**bad)
    with pytest.raises(ArgumentError, match="task='practice'"):
        _run(replace(_recipe(), task="classify"))
