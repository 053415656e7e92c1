# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Session 12 — From a trained model to a trustworthy one
#
# Eleven sessions ended with a number, an accuracy on CIFAR-10. This one asks what stands
# behind such a number and what can be added to it. Which images was it measured on, and
# were they ever used to make a choice? How sure is it, on a thousand test images? Which classes does it
# get wrong, and does its confidence mean anything? Then the practical tools that move it:
# starting from a network trained on other classes (transfer), training on rare classes
# (imbalance), stronger augmentation policies, averaging at test time (TTA), across networks
# (ensembles) and across the weights of one run (SWA). Everything runs on session 6's small
# CIFAR network (under 200 k parameters, as its assignment asks), whose recorded weights are
# small enough to keep, so this page evaluates the recorded models themselves.
#
# ```{note}
# **FAST mode on this page.** Every result the prose discusses is read from the recorded full
# runs in `book/records/` (the recipes `s12/…`, one command each, listed where they are
# used); a section whose records are not there yet says so and quotes nothing. The cells
# that evaluate recorded models (calibration, test-time augmentation, ensembles, flatness)
# do the same work in every mode, in seconds. With `EVAKIT_FAST=1` (the tests, and the build
# of this book) the one training cell ({ref}`Training one recipe <s12-training>`) runs
# `s12/plain` on 1,000 images for two epochs — a check that the code runs, not a result;
# without it (in Colab) it trains the recipe in full.
# ```
#
# **Objectives.** After this session you can
# - carve a stratified validation set out of the training data, stop early on it, and say
#   why the test set is scored once;
# - compute a confusion matrix, per-class precision, recall and F1, macro and micro averages
#   and the balanced accuracy by hand, and put a bootstrap interval on an accuracy;
# - read a reliability diagram and fix an over-confident network with temperature scaling;
# - transfer a network to new classes by linear probing or fine-tuning, and say when each
#   beats training from scratch;
# - train on a long-tailed set with weighted, focal and class-balanced losses, and lift
#   the rare classes' recall without giving up balanced accuracy (the assignment);
# - add mixup, CutMix, RandAugment or AutoAugment to a recipe, and average predictions over
#   test-time views, over seeds and over the weights of one run (SWA).

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics.functional.classification as tmc
from IPython.display import Markdown, display

from evakit import data, losses, metrics, practice, recipes, records, runner, train, viz
from evakit.check import grade
from evakit.table import Table

CLASSES = data.CLASSES["cifar10"]
FASTEST = train.Precision(train.default_precision("cpu"))  # bf16 where native


def say(text: str) -> None:
    """Show prose generated from the records."""
    display(Markdown(text))


def recorded(name: str, seed: int | None = None):
    """The record of a recipe (on a seed), or None when it has not been made yet."""
    if not records.path_for(name, seed=seed).is_file():
        return None
    return records.load(name, seed=seed)


def weights_kept(name: str, seed: int | None = None) -> bool:
    return records.weights_path(name, seed=seed).is_file()


def none_yet(*commands: str) -> None:
    """Say plainly that a section has no record to show yet, and how to make it."""
    lines = "\n".join(f"    evakit train {c} --record" for c in commands)
    say("**No record yet.** This section shows results from recorded full runs only, "
        "and these are not in `book/records/` yet, so it quotes none. They are made "
        "with\n\n" + lines)


def pct(x: float) -> str:
    return f"{x:.1f} %"


# %% [markdown]
# ## 1. Held out, and touched once
#
# A training run makes choices: the epoch to stop at, the learning rate, the augmentation,
# the network. Each choice picks whichever option scored best on some data — and a score
# used to choose is no longer an honest estimate of how the choice does on new data: it is
# the best of several noisy numbers, biased upwards. So the data splits three ways. The
# **training set** fits the weights. The **validation set**, held out of the training data,
# makes the choices. The **test set** scores the final choice, once. (Sessions 1–11 printed
# the test accuracy after every epoch; that is fine as a picture, and it stops being fine
# the moment an epoch, a schedule or a network is picked by it.)
#
# The validation set should look like the test set: every class in its proportion
# (**stratified**), drawn by a seeded generator so that it is the same set on every machine
# and for every training seed. By hand, for one tenth:

# %%
def held_out_by_hand(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of round(fraction × n_c) images of each class c (a seeded draw)."""
    generator = torch.Generator().manual_seed(seed)
    held = []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero()[:, 0]
        n = round(fraction * len(members))
        held.append(members[torch.randperm(len(members), generator=generator)[:n]])
    return torch.cat(held).sort().values


cifar_train = data.load("cifar10", "train")
held = held_out_by_hand(cifar_train.labels, 0.1, seed=0)
kept, val = practice.validation_split(cifar_train, 0.1, seed=0)
assert torch.equal(cifar_train.images[held], val.images)   # the library does the same
share = torch.bincount(val.labels, minlength=10) / torch.bincount(cifar_train.labels,
                                                                   minlength=10)
print(f"{len(kept):,} images to train on, {len(val):,} held out "
      f"({len(cifar_train):,} loaded); held-out share per class:",
      [round(float(s), 3) for s in share])

# %% [markdown]
# The `s12/…` recipes that train on all ten classes (`s12/plain`, the augmentation policies,
# SWA) hold out 10 % this way (`Practice(val_split=0.1)`): the same 5,000 of the 50,000
# training images for every recipe and every training seed (`data_seed=0`), scored after
# every epoch into `History.val_loss` and `val_acc`.
#
# **Early stopping** turns the validation curve into a decision: stop once the validation
# loss has not improved for `patience` epochs, and keep the weights of its best epoch. Here
# it is on a network that overfits on purpose — session 4's code-4 network (batch norm, no
# dropout) on 1,000 MNIST images, 200 of them held out, Adam at a constant learning rate
# (`s12/early-stop`):

# %%
early = recorded("s12/early-stop")
if early is None:
    none_yet("s12/early-stop")
else:
    h = early.history
    epochs = np.arange(1, len(h) + 1)
    best_epoch = int(np.argmin(h.val_loss)) + 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for key, style in (("train", "--"), ("val", "-"), ("test", ":")):
        axes[0].plot(epochs, getattr(h, f"{key}_loss"), style, label=key)
        axes[1].plot(epochs, getattr(h, f"{key}_acc"), style, label=key)
    for ax in axes:
        ax.axvline(best_epoch, color="k", lw=1, ls="-.",
                   label=f"best val, epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("loss")
    axes[1].set_ylabel("accuracy (%)")
    axes[0].set_yscale("log")
    fig.suptitle(early.provenance(), fontsize=8)
    fig.tight_layout()

# %% tags=["remove-input"]
if early is not None:
    stop_gain = early.metrics["test_acc"] - h.test_acc[-1]
    rose = h.val_loss[-1] / h.val_loss[best_epoch - 1]
    stopped = len(h) < early.epochs_planned
    ending = (f"where the patience of 10 epochs runs out and training stops (of at "
              f"most {early.epochs_planned})" if stopped else "the last epoch planned")
    say(f"""The training loss keeps falling to {h.train_loss[-1]:.4f}, while the
validation loss is lowest at epoch **{best_epoch}** ({h.val_loss[best_epoch - 1]:.3f})
and {100 * (rose - 1):.1f} % above that minimum by epoch {len(h)}, {ending}. (Ten epochs
without a new minimum is what stops the run, not the size of the rise.) The weights kept
are epoch
{best_epoch}'s: test accuracy {early.metrics['test_acc']:.2f} %, against
{h.test_acc[-1]:.2f} % for the last epoch's ({stop_gain:+.2f} points). The dotted test
curve is drawn here after the fact, to show that the choice made on 200 validation
images holds on the 10,000 test images; nothing read it during training.""")

# %% tags=["remove-cell"]
if early is not None:
    assert len(h) - best_epoch == 10 if stopped else len(h) == early.epochs_planned
    assert h.train_loss[-1] < h.train_loss[best_epoch - 1] and rose > 1  # the prose
    assert abs(early.metrics["test_acc"] - h.test_acc[best_epoch - 1]) < 1e-6

# %% [markdown]
# ## 2. One number is not enough: per-class scores
#
# From here on the subject is `s12/plain`: session 6's network, 20 epochs on the 45,000
# training images left, one-cycle, crop and flip. Its record keeps the predicted class of
# every test image, so all that follows is computed from the recorded model's answers.

# %%
display(Markdown(records.results_or_missing("s12/plain")))
plain = recorded("s12/plain")
if plain is not None:
    test_set = practice.recorded_data(plain, "test")
    pred, truth = practice.recorded_predictions(plain), test_set.labels

# %% [markdown]
# The **confusion matrix** counts, for every true class (row), what it was predicted as
# (column). Everything else derives from it. For class $c$, the diagonal entry is its true
# positives; the rest of its column are false positives, the rest of its row false negatives:
#
# $$\text{precision}_c = \frac{TP_c}{TP_c + FP_c}, \quad
#   \text{recall}_c = \frac{TP_c}{TP_c + FN_c}, \quad
#   F_1 = \frac{2\,P\,R}{P + R}.$$
#
# **Macro** averages take the mean over classes (each class counts once); **micro**
# averages pool the counts first — with one label per image, micro precision, recall and F1
# all equal the accuracy. The **balanced accuracy** is the macro recall: the accuracy a test
# set with equally many images of every class would give.

# %%
def scores_by_hand(pred: torch.Tensor, truth: torch.Tensor, k: int) -> dict:
    """Confusion matrix and the scores derived from it."""
    cm = torch.bincount(truth * k + pred, minlength=k * k).view(k, k)
    tp = cm.diag().double()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return {"cm": cm, "precision": precision, "recall": recall, "f1": f1,
            "macro_f1": float(f1.mean()), "micro_f1": float(tp.sum() / cm.sum()),
            "balanced": float(recall.mean()), "accuracy": float(tp.sum() / cm.sum())}


if plain is None:
    none_yet("s12/plain")
else:
    s = scores_by_hand(pred, truth, 10)
    check = {   # torchmetrics computes the same
        "cm": tmc.multiclass_confusion_matrix(pred, truth, 10),
        "precision": tmc.multiclass_precision(pred, truth, 10, average=None),
        "recall": tmc.multiclass_recall(pred, truth, 10, average=None),
        "macro_f1": tmc.multiclass_f1_score(pred, truth, 10, average="macro"),
        "micro_f1": tmc.multiclass_f1_score(pred, truth, 10, average="micro"),
        "balanced": tmc.multiclass_accuracy(pred, truth, 10, average="macro")}
    for key, value in check.items():
        torch.testing.assert_close(torch.as_tensor(s[key]).double(), value.double(),
                                   rtol=1e-6, atol=1e-6)
    viz.matrix(s["cm"], title="s12/plain: true class (rows) → predicted (columns)")
    plt.yticks(range(10), CLASSES)
    plt.xticks(range(10), CLASSES, rotation=60)
    report = metrics.classification_report(pred, truth, 10, class_names=CLASSES)
    display(report)

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
if plain is not None:
    cm = s["cm"].clone().fill_diagonal_(0)
    a, b = divmod(int(cm.argmax()), 10)
    worst = int(s["recall"].argmin())
    say(f"""The commonest confusion is **{CLASSES[a]} → {CLASSES[b]}** ({int(cm[a, b])}
images); the class found least often is **{CLASSES[worst]}** (recall
{s['recall'][worst]:.2f}). The test set is nearly balanced, so the balanced accuracy
({s['balanced']:.3f}) is close to the accuracy ({s['accuracy']:.3f}) and the macro F1
({s['macro_f1']:.3f}) close to the micro F1 (= accuracy); on
{{ref}}`the long-tailed training <s12-imbalance>` further down they tell different
stories.""")

# %% [markdown]
# ## 3. How sure is an accuracy? A bootstrap interval
#
# The offline CIFAR-10 test set is the first 1,000 official test images. An accuracy $p$
# measured on $n$ independent images has a standard error of $\sqrt{p(1-p)/n}$ — about 1.1
# points at $p = 0.86$, $n = 1000$. The **bootstrap** gets the same without a formula, and
# works for any score: resample the test set with replacement many times, recompute the
# score each time, and read the spread.

# %%
def bootstrap_by_hand(correct: torch.Tensor, resamples: int = 2000, seed: int = 0):
    """Accuracies of `resamples` resampled test sets; their 2.5 and 97.5 percentiles."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(correct), (resamples, len(correct)), generator=generator)
    accs = correct.double()[idx].mean(1)
    return accs, torch.quantile(accs, torch.tensor([0.025, 0.975], dtype=accs.dtype))


if plain is not None:
    correct = pred == truth
    accs, (low, high) = bootstrap_by_hand(correct)
    interval = metrics.bootstrap_accuracy(pred, truth, resamples=2000, seed=0)
    assert math.isclose(interval.low, low) and math.isclose(interval.high, high)
    se = metrics.binomial_std_error(interval.estimate, len(truth))
    print(interval)
    print(f"binomial standard error {se:.4f}; bootstrap standard error "
          f"{interval.std_error:.4f}")

# %% tags=["remove-input"]
if plain is not None:
    half = 100 * interval.width / 2
    resolved = 100 * 1.96 * math.sqrt(2) * se
    say(f"""The 95 % interval is
**{100 * interval.low:.1f}–{100 * interval.high:.1f} %**, ± {half:.1f} points around
{100 * interval.estimate:.1f} %. What 1,000 images can tell: whether a network is near
{100 * interval.estimate:.0f} % or several points away. What they cannot: whether one
recipe beats another by one point — the difference of two accuracies measured on
independent test sets has a standard error √2 times larger, so differences under about
{resolved:.1f} points are within the noise. Two networks scored on the *same* images can
be compared more finely: only the images on which they disagree carry information about
the difference, and a paired bootstrap (resampling images, scoring both networks on each
resample) gives an interval for the difference directly; sections 7 and 8 use it. With
the internet the whole 10,000-image test set is downloaded, and every interval shrinks
by $\\sqrt{{10}} \\approx 3.2$.""")

# %% tags=["remove-cell"]
if plain is not None:
    assert 0.8 < half / (100 * 1.96 * se) < 1.2 and interval.n == 1000   # "± about"

# %% [markdown]
# ## 4. Can its confidence be trusted? Calibration
#
# A classifier is **calibrated** when, of the images it labels with confidence 0.8, 80 % are
# right. Modern networks trained to a low loss tend to be **over-confident** (Guo et al.,
# 2017). The reliability diagram sorts the predictions into confidence bins and plots each
# bin's accuracy against its mean confidence; the **expected calibration error** (ECE) is the
# gap averaged over bins, weighted by how many predictions fall in each.
#
# **Temperature scaling** divides the logits by one number $T$, fitted to minimise the
# negative log-likelihood — on the *validation* set, never the test set. $T > 1$ softens
# over-confident predictions; the arg-max, and so the accuracy, does not change. The
# recorded `s12/plain` network, its 5,000 held-out images and its test images:

# %%
def logits_of(model, images: data.ImageSet) -> torch.Tensor:
    """The model's logits for every image (recorded weights, bf16 where native)."""
    x, cpu = practice.normalized(images), torch.device("cpu")
    with torch.no_grad():
        return torch.cat([train._forward(model, x[i:i + 500], cpu, FASTEST).float()
                          for i in range(0, len(x), 500)])


if plain is None or not weights_kept("s12/plain"):
    none_yet("s12/plain")
    plain_model = None
else:
    plain_model = records.load_model("s12/plain")
    val_set = practice.recorded_data(plain, "val")
    val_logits, test_logits = logits_of(plain_model, val_set), logits_of(plain_model,
                                                                         test_set)
    same = float((test_logits.argmax(1) == pred).float().mean())  # the record's answers
    assert same > 0.99              # up to the float16 copy of the weights kept
    temps = np.exp(np.linspace(np.log(0.5), np.log(4), 60))
    nll_curve = [metrics.nll(val_logits, val_set.labels, float(t)) for t in temps]
    T = metrics.fit_temperature(val_logits, val_set.labels)
    before = metrics.reliability_bins(test_logits.softmax(1), truth)
    after = metrics.reliability_bins((test_logits / T).softmax(1), truth)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(temps, nll_curve)
    axes[0].axvline(T, color="k", ls=":", label=f"fitted T = {T:.2f}")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("temperature T")
    axes[0].set_ylabel("validation NLL")
    axes[0].legend()
    for ax, bins, what in ((axes[1], before, "as trained"),
                           (axes[2], after, f"T = {T:.2f}")):
        centres = (bins.edges[:-1] + bins.edges[1:]) / 2
        width = float(bins.edges[1] - bins.edges[0])
        shown = bins.counts > 0
        ax.bar(centres[shown], bins.accuracy[shown], width=width, edgecolor="k",
               label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"test set, {what}: ECE {bins.ece:.3f}")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()

# %% tags=["remove-input"]
if plain_model is not None:
    conf = float(test_logits.softmax(1).max(1).values.mean())
    state = "over-confident" if conf > s["accuracy"] else "under-confident"
    say(f"""As trained, the network's mean confidence on the test set is {conf:.3f}
against an accuracy of {s['accuracy']:.3f}: **{state}**, with an ECE of
{before.ece:.3f}. The validation NLL is lowest at **T = {T:.2f}**; dividing the test
logits by it moves the ECE to **{after.ece:.3f}**, at the same accuracy. (An ECE on
1,000 images in 15 bins is itself noisy — a few hundredths either way.)""")

# %% tags=["remove-cell"]
if plain_model is not None:          # "the validation NLL is lowest at T"
    assert metrics.nll(val_logits, val_set.labels, T) <= min(nll_curve) + 1e-6

# %% [markdown]
# ## 5. Transfer: start from a network trained on something else
#
# A network's early layers learn edges, colours and textures that most images share; its
# later layers learn the classes it was trained on. **Transfer learning** reuses the first
# and replaces the last. Here, session 6's network is trained on CIFAR-10's six *animal*
# classes (`s12/animals`, 30,000 images), then asked to tell apart the four *vehicle*
# classes — classes it has never seen — from 10, 100 or 1,000 labelled images each, in three
# ways:
#
# - **from scratch**: random weights, the usual recipe;
# - **linear probe**: the animal network's last layer is replaced by a fresh one with four
#   outputs, and only that layer trains; everything before it is frozen, batch norm
#   included (`practice.LinearProbe` keeps those layers in eval mode, so their statistics
#   stay the animal ones);
# - **fine-tuning**: the same start, every layer trains, the pretrained ones at a tenth of
#   the new head's learning rate (two parameter groups, each with its own one-cycle peak),
#   so the features adapt without being overwritten by the large early gradients of a
#   random head.
#
# The recipes set this in `Practice(classes=..., per_class=..., init_from="s12/animals",
# freeze=... | backbone_lr=0.1)`; `PracticeTask` replaces the head
# (`practice.replace_head`), copies the recorded weights into the rest
# (`practice.copy_backbone`) and builds the optimizer's groups:

# %%
vehicles = recipes.get("s12/vehicles-100-finetune")
task = practice.PracticeTask()
net = task.build_model(vehicles, pretrained=False)   # pretrained=True loads the record
groups = task.param_groups(vehicles, net)
probe = task.build_model(recipes.get("s12/vehicles-100-probe"), pretrained=False)
print(f"head: {practice.last_layer(net)} → {net.head[1].out_channels} outputs; "
      f"fine-tuning groups: {[len(g['params']) for g in groups]} tensors at lr "
      f"{[g.get('lr', vehicles.lr) for g in groups]}; linear probe trains "
      f"{sum(p.numel() for p in probe.parameters() if p.requires_grad)} of "
      f"{sum(p.numel() for p in probe.parameters()):,} parameters")

# %%
SIZES, HOWS = (10, 100, 1000), ("scratch", "probe", "finetune")
TRANSFER = [f"s12/vehicles-{n}-{how}" for n in SIZES for how in HOWS]
animals = recorded("s12/animals")
transfer = {name: recorded(name) for name in TRANSFER}
display(Markdown(records.results_or_missing("s12/animals")))
if animals is None or None in transfer.values():
    none_yet("s12/animals", *[n for n, r in transfer.items() if r is None])
else:
    acc = {(n, how): transfer[f"s12/vehicles-{n}-{how}"].metrics["test_acc"]
           for n in SIZES for how in HOWS}
    n_test = transfer[TRANSFER[0]].data["test"].size
    display(Table(["labels per class", *HOWS],
                  [[n, *(round(acc[n, how], 1) for how in HOWS)] for n in SIZES],
                  f"test accuracy (%) on the {n_test} vehicle images among the first "
                  "1,000 official test images (chance: 25 %)"))
    fig, ax = plt.subplots(figsize=(7, 4))
    for how in HOWS:
        ax.plot(SIZES, [acc[n, how] for n in SIZES], "o-", label=how)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.axhline(25, color="k", ls=":", lw=1, label="chance")
    ax.legend()
    ax.grid(alpha=0.3)

# %% tags=["remove-input"]
if animals is not None and None not in transfer.values():
    def best_at(n: int) -> str:
        return max(HOWS, key=lambda how: acc[n, how])

    lead_10 = acc[10, best_at(10)] - acc[10, "scratch"]
    gap = {n: acc[n, "finetune"] - acc[n, "scratch"] for n in SIZES}
    probe_gap = {n: acc[n, "finetune"] - acc[n, "probe"] for n in SIZES}
    shrinks = gap[10] > gap[1000]
    say(f"""With 10 labels per class the best start is **{best_at(10)}**
({pct(acc[10, best_at(10)])}, {lead_10:+.1f} points over scratch); with 100 it is
**{best_at(100)}**, with 1,000 **{best_at(1000)}**. Fine-tuning's lead over training
from scratch goes {', '.join(f'{gap[n]:+.1f}' for n in SIZES)} points from 10 to 1,000
labels per class — {'pretrained features matter most when labels are scarce'
if shrinks else 'here it does not shrink as the labels grow'}. Fine-tuning against the
frozen probe: {', '.join(f'{probe_gap[n]:+.1f}' for n in SIZES)} points; the probe can
only draw a line through features learnt for animals. Each cell is one run scored on
{n_test} images (± {100 * metrics.binomial_std_error(0.8, n_test):.0f} points at 80 %):
read the pattern, not the decimals.""")

# %% tags=["remove-cell"]
# The summary: fine-tuning leads scratch by most with few labels, and beats the probe.
if animals is not None and None not in transfer.values():
    assert shrinks and min(probe_gap.values()) > 0

# %% [markdown]
# Kornblith et al. (2019) measured this across 16 ImageNet networks and 12 datasets: the
# better a network does on ImageNet, the better it transfers, both as frozen features and
# fine-tuned — and fine-tuning beats the frozen probe almost everywhere once a few thousand
# labels are available. With the internet, the usual start is a torchvision network with
# ImageNet weights:
#
# ```python
# from torchvision.models import ResNet18_Weights
# weights = ResNet18_Weights.IMAGENET1K_V1
# net = practice.torchvision_transfer("resnet18", classes=4, weights=weights)
# preprocess = weights.transforms()   # resize to 224, ImageNet mean and std
# ```
#
# Offline the same function takes a state dict saved from such a network; here one saved
# from a freshly initialised ResNet-18 stands in for the downloaded file:

# %%
import tempfile
from pathlib import Path

import torchvision

with tempfile.TemporaryDirectory() as folder:
    saved = Path(folder) / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), saved)
    state = torch.load(saved, weights_only=True)
resnet = practice.torchvision_transfer("resnet18", classes=4, state_dict=state)
frozen = practice.torchvision_transfer("resnet18", classes=4, state_dict=state,
                                       freeze=True)
assert torch.equal(resnet.conv1.weight, state["conv1.weight"])
trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
print(f"ResNet-18 with a 4-way head: {sum(p.numel() for p in resnet.parameters()):,} "
      f"parameters to fine-tune, {trainable:,} to probe")

# %% [markdown]
# (s12-imbalance)=
# ## 6. Rare classes: imbalance
#
# Real data is rarely balanced. **CIFAR-10-LT** (Cui et al., 2019) keeps class $i$'s
# $5000 \cdot 100^{-i/9}$ training images: 5,000 airplanes down to 50 trucks, an imbalance
# ratio of 100, 12,406 images in all (`losses.long_tailed_indices`, seeded). The test set
# stays balanced, so the balanced accuracy and the per-class recalls are what to watch. A
# network trained with plain cross-entropy learns that "airplane" is a good guess. Three
# fixes change the loss:
#
# - **weighted cross-entropy**: weigh each image by $1/n_{\text{class}}$;
# - **focal loss** (Lin et al., 2017): multiply each image's cross-entropy by
#   $(1 - p_t)^\gamma$, so images already classified well (mostly of the big classes) stop
#   dominating the gradient;
# - **class-balanced loss** (Cui et al., 2019): weigh by the inverse *effective number* of
#   samples $E_n = (1 - \beta^n)/(1 - \beta)$, which grows like $n$ for a few images and
#   saturates for many — a new image of a big class adds less than its count suggests.

# %%
counts = torch.tensor(losses.long_tailed_counts(5000, 10, 100))
inverse = practice.class_weights(counts, "inverse")
effective = practice.class_weights(counts, "effective", 0.9999)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
axes[0].bar(CLASSES, counts)
axes[0].set_yscale("log")
axes[0].set_title(f"CIFAR-10-LT: {int(counts.sum()):,} training images")
axes[0].tick_params(axis="x", rotation=60)
for w, label in ((inverse, "1 / n"), (effective, "1 / E_n, β = 0.9999")):
    axes[1].plot(CLASSES, w, "o-", label=label)
axes[1].set_yscale("log")
axes[1].set_title("class weights (a training image weighs 1 on average)")
axes[1].tick_params(axis="x", rotation=60)
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# **By hand, against the libraries.** Weighted cross-entropy is what
# `F.cross_entropy(weight=w)` computes — up to its normalisation: PyTorch divides the
# weighted sum by the sum of the batch's weights $\sum_i w_{y_i}$, not by the batch size.
# The focal loss below matches `evakit.losses.focal_loss`; `torchvision.ops.sigmoid_focal_loss`
# is a different loss — Lin et al.'s detector scores every class with its own sigmoid, so
# it is a sum of *binary* focal losses, one per class, on one-hot targets, where the softmax
# version here has one term per image.

# %%
import torchvision.ops

g = torch.Generator().manual_seed(0)
logits = 2 * torch.randn(256, 10, generator=g)
target = torch.multinomial(counts.double(), 256, replacement=True,   # the long tail
                           generator=g)
per_image = -F.log_softmax(logits, 1).gather(1, target[:, None])[:, 0]   # cross-entropy
w = inverse[target]
torch.testing.assert_close((w * per_image).sum() / w.sum(),
                           F.cross_entropy(logits, target, weight=inverse))
print(f"a batch drawn from the long tail: Σ w·CE / N = "
      f"{float((w * per_image).mean()):.4f}, Σ w·CE / Σ w = "
      f"{float((w * per_image).sum() / w.sum()):.4f} (= F.cross_entropy(weight=w)); "
      f"the batch's mean weight is {float(w.mean()):.2f}")

p_t = per_image.neg().exp()
focal = ((1 - p_t) ** 2 * per_image).mean()
torch.testing.assert_close(focal, losses.focal_loss(logits, target, gamma=2.0))

one_hot = F.one_hot(target, 10).float()
p = logits.sigmoid()
p_bin = p * one_hot + (1 - p) * (1 - one_hot)                # per class, binary
binary = -(0.25 * one_hot + 0.75 * (1 - one_hot)) * (1 - p_bin) ** 2 * p_bin.log()
torch.testing.assert_close(binary.sum(1).mean(), torchvision.ops.sigmoid_focal_loss(
    logits, one_hot, alpha=0.25, gamma=2.0, reduction="sum") / len(logits))
print(f"softmax focal loss {float(focal):.4f}; torchvision's sigmoid focal loss, "
      f"summed over the 10 binary problems: {float(binary.sum(1).mean()):.4f} — "
      "another quantity")

# %% [markdown]
# One more thing hides in the normalisation. Cui et al. scale their class weights to sum to
# the number of classes and average the loss over the batch size. On a long tail most images
# belong to big classes with small weights, so the loss — and its gradient — shrinks by the
# mean weight of a training image:

# %%
cui = losses.class_balanced_weights(counts, 0.9999)
mean_weight = float((cui.double() * counts).sum() / counts.sum())
print(f"weights summing to 10: a training image weighs {mean_weight:.3f} on average — "
      f"as if the learning rate were divided by {1 / mean_weight:.1f}")

# %% [markdown]
# so `practice.class_weights` keeps the same ratios and scales them so that a training
# image weighs 1 on average; the four recipes `s12/lt-…` then differ in the loss alone
# (30 epochs each):

# %%
LT = {"ce": "cross-entropy", "weighted-ce": "weighted CE", "focal": "focal (γ = 2)",
      "class-balanced": "class-balanced focal (β = 0.9999, γ = 1)"}
lt = {key: recorded(f"s12/lt-{key}") for key in LT}
if None in lt.values():
    none_yet(*[f"s12/lt-{key}" for key, r in lt.items() if r is None])
else:
    lt_test = practice.recorded_data(lt["ce"], "test")
    lt_scores = {k: scores_by_hand(practice.recorded_predictions(r), lt_test.labels, 10)
                 for k, r in lt.items()}
    rows = [[LT[k], round(100 * v["accuracy"], 1), round(100 * v["balanced"], 1),
             round(v["macro_f1"], 3), round(float(v["recall"][:3].mean()), 2),
             round(float(v["recall"][-3:].mean()), 2)] for k, v in lt_scores.items()]
    display(Table(["loss", "accuracy %", "balanced accuracy %", "macro F1",
                   "recall: 3 biggest", "recall: 3 rarest"], rows,
                  f"CIFAR-10-LT, 30 epochs each; {lt_test.identity().describe()}"))
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for i, (k, v) in enumerate(lt_scores.items()):
        ax.bar(np.arange(10) + (i - 1.5) * 0.2, v["recall"], width=0.2, label=LT[k])
    ax.set_xticks(range(10), [f"{c}\n({int(n)})" for c, n in zip(CLASSES, counts,
                                                                 strict=True)])
    ax.set_ylabel("test recall")
    ax.set_title("recall per class (training images per class in brackets)")
    ax.legend(fontsize=8)
    fig.tight_layout()

# %% tags=["remove-input"]
if None not in lt.values():
    base = lt_scores["ce"]
    best_key = max(LT, key=lambda k: lt_scores[k]["balanced"])
    def change(k: str, part: slice) -> str:
        return f"{float((lt_scores[k]['recall'] - base['recall'])[part].mean()):+.2f}"

    if best_key == "ce":
        others = ", ".join(f"{LT[k]} {100 * lt_scores[k]['balanced']:.1f} %"
                           for k in LT if k != "ce")
        best = (f"No re-weighted loss beats plain cross-entropy on balanced accuracy "
                f"here ({100 * base['balanced']:.1f} %; {others}).")
    else:
        best = (f"The best balanced accuracy here comes from **{LT[best_key]}** "
                f"({100 * lt_scores[best_key]['balanced']:.1f} % against "
                f"{100 * base['balanced']:.1f} % with cross-entropy).")
    rare = ", ".join(f"{change(k, slice(-3, None))} ({LT[k]})" for k in LT if k != "ce")
    big = ", ".join(change(k, slice(0, 3)) for k in LT if k != "ce")
    say(f"""With plain cross-entropy the three biggest classes are found
{float(base['recall'][:3].mean()):.0%} of the time and the three rarest
{float(base['recall'][-3:].mean()):.0%}. {best} Against cross-entropy, the mean
recall of the three rarest classes changes by {rare}, and that of the three biggest by
{big}: a weighted loss moves
the network's attention between classes, and what the rare ones gain the big ones can
lose. On a balanced test set the accuracy and the balanced accuracy agree; the point is
which classes they come from. Each class's recall rests on about 100 test images
(± 4–5 points).""")

# %% tags=["remove-cell"]
# The summary: class weights move recall to the rare classes, the focal loss far less.
if None not in lt.values():
    rare_gain = {k: float((lt_scores[k]["recall"] - base["recall"])[-3:].mean())
                 for k in LT}
    assert min(rare_gain["weighted-ce"], rare_gain["class-balanced"]) > 0.05
    assert min(rare_gain["weighted-ce"], rare_gain["class-balanced"]) > \
        2 * abs(rare_gain["focal"])

# %% [markdown]
# ## 7. Augmentation policies
#
# Session 6 composed its augmentation by hand. Two families go further. **Label-mixing**
# augmentations build new training images from two: **mixup** (Zhang et al., 2018) blends
# them, $\lambda x_a + (1-\lambda) x_b$; **CutMix** (Yun et al., 2019) pastes a rectangle of
# one into the other. Either way the label becomes the same mixture of the two one-hot labels
# (with CutMix, by area), $\lambda \sim \text{Beta}(\alpha, \alpha)$, and the loss is
# cross-entropy against that soft label. **Learned policies** apply a random sequence of
# photometric and geometric operations: **AutoAugment** (Cubuk et al., 2019) searched for
# 25 sub-policies on a proxy task; **RandAugment** (Cubuk et al., 2020) replaced the search by
# two numbers — apply $N$ random operations, each at magnitude $M$.
#
# torchvision's v2 `MixUp` and `CutMix` act on a batch; the recipes use them through
# `practice.MixingLoader`. By hand, against them:

# %%
from torchvision.transforms import v2

x = torch.rand(8, 3, 32, 32)
y = torch.arange(8)
torch.manual_seed(3)
mixed, soft = v2.MixUp(alpha=1.0, num_classes=10)(x, y)
lam = float(soft[0, 0])                              # image 0 keeps λ of its own label
torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.roll(1, 0))  # partner: i − 1
torch.manual_seed(3)
cut, cut_soft = v2.CutMix(alpha=1.0, num_classes=10)(x, y)
pasted = (cut != x).any(1).float().mean((1, 2))       # share of each image replaced
torch.testing.assert_close(pasted, 1 - cut_soft[torch.arange(8), y])
print(f"mixup λ = {lam:.3f}; CutMix replaced {float(pasted[0]):.3f} of each image, its "
      f"label weight {float(cut_soft[0, 0]):.3f}")

# %% [markdown]
# AutoAugment and RandAugment work on uint8 images; given a batch, v2 draws *one* operation
# for all of it, so `practice.policy_augment` applies them image by image (seeded from the
# loader's generator, like every other evakit augmentation). The same eight training images
# through each:

# %%
raw = cifar_train.images[:8].float() / 255
g = torch.Generator().manual_seed(0)
rows = {"original": raw,
        "RandAugment": practice.policy_augment("randaugment")(raw, g),
        "AutoAugment": practice.policy_augment("autoaugment")(raw, g)}
for name, mixer in (("mixup (α = 1)", v2.MixUp), ("CutMix (α = 1)", v2.CutMix)):
    torch.manual_seed(1)
    rows[name] = mixer(alpha=1.0, num_classes=10)(raw, cifar_train.labels[:8])[0]
viz.image_grid([im for batch in rows.values() for im in batch],
               [name if i == 0 else "" for name in rows for i in range(8)], cols=8,
               size=1.2);

# %% [markdown]
# The five recipes differ only in these (20 epochs each, on the same 45,000 images, scored
# on the same 5,000 held-out and 1,000 test images): `s12/plain`, `s12/mixup` (α = 0.2),
# `s12/cutmix` (α = 1), `s12/randaugment` (N = 2, M = 9) and `s12/autoaugment`.

# %%
def paired_difference(a: torch.Tensor, b: torch.Tensor, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of b minus that of a on the same images, with a paired 95 % interval."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(a), (resamples, len(a)), generator=generator)
    diffs = b.double()[idx].mean(1) - a.double()[idx].mean(1)
    low, high = torch.quantile(diffs, torch.tensor([0.025, 0.975], dtype=diffs.dtype))
    return float(b.double().mean() - a.double().mean()), float(low), float(high)


POLICIES = ["plain", "mixup", "cutmix", "randaugment", "autoaugment"]
policy = {name: recorded(f"s12/{name}") for name in POLICIES}
if None in policy.values():
    none_yet(*[f"s12/{n}" for n, r in policy.items() if r is None])
else:
    right = {n: practice.recorded_predictions(r) == truth for n, r in policy.items()}
    rows = []
    for n, r in policy.items():
        diff, low, high = paired_difference(right["plain"], right[n])
        rows.append([n, round(max(r.history.val_acc), 2),
                     round(r.metrics["val_acc"], 2), round(r.metrics["test_acc"], 2),
                     "—" if n == "plain" else f"{100 * diff:+.1f} ({100 * low:+.1f}, "
                                              f"{100 * high:+.1f})",
                     round(r.wall_seconds / 60, 1)])
    display(Table(["recipe", "best val %", "final val %", "test %",
                   "test − plain, points (95 % paired)", "minutes"], rows,
                  "20 epochs each; validation: the 5,000 held-out images"))
    viz.curves({n: r.history for n, r in policy.items()}, metrics=("acc",),
               test_only=True, acc_range=(60, 95))

# %% tags=["remove-input"]
if None not in policy.values():
    val_rank = sorted(POLICIES, key=lambda n: -policy[n].metrics["val_acc"])
    beats = [n for n in POLICIES[1:] if policy[n].metrics["val_acc"]
             > policy["plain"].metrics["val_acc"]]
    plain_run = policy["plain"]
    if beats:
        verb = "beats" if len(beats) == 1 else "beat"
        verdict = (f"{len(beats)} of the four policies {verb} the plain recipe on "
                   f"validation ({', '.join(beats)}).")
    else:
        verdict = "None of the four policies beats the plain recipe on validation."
    say(f"""Ranked by the validation accuracy — the number a choice should be made on —
the order is {' > '.join(val_rank)}. {verdict} Stronger augmentation is
regularisation: it pays when a network has more capacity than its data can pin down,
and it needs epochs to pay — the published gains come from hundreds of epochs on
networks of millions of parameters, not {plain_run.epochs_run} epochs on
{plain_run.params / 1e3:.0f} k. The paired intervals of the test column say how much of
each difference {len(truth):,} test images can resolve.""")

# %% [markdown]
# ## 8. Test-time augmentation
#
# A network trained on flipped and shifted images has learnt that a flipped car is still a
# car. At test time the same image can therefore be shown several times — flipped, shifted
# by a few pixels — and the softmax outputs averaged (`practice.predict_tta`). The price is
# one forward pass per view. On the recorded networks, timed here:

# %%
VIEWS = {"1 view": (practice.View(),), "2 views: + flip": practice.FLIPS,
         "10 views: 5 crops × flip": practice.crop_views(4)}
TTA_MODELS = [n for n in ("s12/plain", "s06/cifar-net") if weights_kept(n)]
if not TTA_MODELS:
    none_yet("s12/plain", "s06/cifar-net")
else:
    tta_rows, tta = [], {}
    for name in TTA_MODELS:
        model = records.load_model(name)
        images = practice.recorded_data(records.load(name), "test")
        for label, views in VIEWS.items():
            t0 = time.perf_counter()
            probs = practice.predict_tta(model, images, views, precision=FASTEST)
            ms = 1000 * (time.perf_counter() - t0) / len(images)
            tta[name, label] = probs.argmax(1) == images.labels
            right_share = float(tta[name, label].float().mean())
            tta_rows.append([name, label, round(100 * right_share, 1), round(ms, 2)])
    display(Table(["recorded model", "views", "test accuracy %", "ms per image"],
                  tta_rows, "test-time augmentation on the recorded weights, timed "
                  "here"))

# %% tags=["remove-input"]
if TTA_MODELS:
    name = TTA_MODELS[0]
    gain, low, high = paired_difference(tta[name, "1 view"],
                                        tta[name, "10 views: 5 crops × flip"])
    flip_gain = paired_difference(tta[name, "1 view"], tta[name, "2 views: + flip"])[0]
    say(f"""On `{name}`, averaging over the flip changes the accuracy by
{100 * flip_gain:+.1f} points and over ten views by **{100 * gain:+.1f}** (paired 95 %
interval {100 * low:+.1f} to {100 * high:+.1f}), for ten times the inference cost. TTA
costs nothing at training time and a lot at serving time: worth it where a prediction
is made once and matters (a medical image, a competition), rarely in a real-time
system.""")

# %% [markdown]
# ## 9. Ensembles
#
# Train the same network from several seeds and average their softmax outputs. The gain
# comes from **diversity**: networks that make the *same* mistakes gain nothing from being
# averaged, networks that disagree on which images are hard correct each other. The
# disagreement rate — the share of test images on which two networks predict different
# classes — measures it. Three seeds of `s12/plain`:

# %%
SEEDS = (1, 2, 3)
have_all = plain is not None and all(weights_kept("s12/plain", None if s == 1 else s)
                                     for s in SEEDS)
if not have_all:
    none_yet("s12/plain", "s12/plain --seed 2", "s12/plain --seed 3")
else:
    members = [records.load_model("s12/plain", seed=None if s == 1 else s)
               for s in SEEDS]
    member_probs = [practice.predict_tta(m, test_set, precision=FASTEST)
                    for m in members]
    member_pred = [p.argmax(1) for p in member_probs]
    ensemble_pred = torch.stack(member_probs).mean(0).argmax(1)
    single = [100 * float((p == truth).float().mean()) for p in member_pred]
    together = 100 * float((ensemble_pred == truth).float().mean())
    any_right = torch.stack([p == truth for p in member_pred]).any(0)
    oracle = 100 * float(any_right.float().mean())
    disagree = torch.tensor([[float((a != b).float().mean()) for b in member_pred]
                             for a in member_pred])
    display(Table(["network", "test accuracy %"],
                  [[f"seed {s}", round(a, 1)]
                   for s, a in zip(SEEDS, single, strict=True)]
                  + [["ensemble (mean softmax)", round(together, 1)],
                     ["any of the three right", round(oracle, 1)]],
                  "three seeds of s12/plain on the same 1,000 test images"))
    viz.matrix(100 * disagree, fmt="{:.1f}", title="disagreement, % of test images")
    plt.xticks(range(3), [f"seed {s}" for s in SEEDS])
    plt.yticks(range(3), [f"seed {s}" for s in SEEDS])

# %% tags=["remove-input"]
if have_all:
    mean_disagree = 100 * float(disagree[~torch.eye(3, dtype=torch.bool)].mean())
    say(f"""The three networks score {', '.join(pct(a) for a in single)}; averaged, they
score **{pct(together)}** ({together - np.mean(single):+.1f} points over their mean).
Two of them disagree on {mean_disagree:.1f} % of the test images on average, and at
least one of the three is right on {pct(oracle)} — the most a vote among them could
reach. An ensemble of three costs three times the training and the inference; it is a
dependable way to spend that compute, and the way most competitions are won.""")

# %% tags=["remove-cell"]
if have_all:
    assert mean_disagree > 0

# %% [markdown]
# ## 10. Stochastic weight averaging
#
# An ensemble averages the *outputs* of several networks. SWA (Izmailov et al., 2018)
# averages the *weights* of one run instead: after a normal start, the learning rate is
# held at a moderately high constant, so the weights keep moving around a wide, flat region
# of the loss surface, and the weights at the end of each epoch are averaged. The average
# lies nearer the middle of that region than any single iterate — the flat minimum of
# session 7, whose neighbourhood has low loss on the training *and* the shifted test
# distribution. One network, one forward pass, the price of a single extra pass over the
# training data: the averaged weights belong to no network that was trained, so batch norm's
# running statistics must be recomputed (`torch.optim.swa_utils.update_bn`).
#
# `s12/swa` trains the plain network at a constant 0.05 for 15 epochs, then moves to 0.01
# (`SWALR`) and averages the weights after each of epochs 15–20 (`AveragedModel`):

# %%
swa = recorded("s12/swa")
display(Markdown(records.results_or_missing("s12/swa")))
if swa is None or plain is None:
    none_yet("s12/swa", "s12/plain")
else:
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for name, r in (("s12/swa", swa), ("s12/plain (one-cycle)", plain)):
        axes[0].plot(np.arange(1, len(r.history) + 1), r.history.lr, "o-", ms=3,
                     label=name)
    axes[0].set_ylabel("learning rate at the start of the epoch")
    for name, r in (("s12/swa, current weights", swa), ("s12/plain", plain)):
        axes[1].plot(np.arange(1, len(r.history) + 1), r.history.val_acc, "o-", ms=3,
                     label=name)
    axes[1].axhline(swa.metrics["val_acc"], color="C0", ls=":",
                    label="s12/swa, averaged weights")
    axes[1].set_ylabel("validation accuracy (%)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()

# %% tags=["remove-input"]
if swa is not None and plain is not None:
    swa_gain = swa.metrics["val_acc"] - swa.history.val_acc[-1]
    versus = swa.metrics["val_acc"] - plain.metrics["val_acc"]
    say(f"""On the validation set, averaging the last six epochs' weights takes the run
from {swa.history.val_acc[-1]:.2f} % (its last iterate) to
**{swa.metrics['val_acc']:.2f} %** ({swa_gain:+.2f} points) — and {versus:+.2f} points
against `s12/plain`'s one-cycle schedule, which anneals to almost zero instead of
averaging. On the test set:
{swa.history.test_acc[-1]:.2f} % → {swa.metrics['test_acc']:.2f} %
(plain {plain.metrics['test_acc']:.2f} %).""")

# %% [markdown]
# Is the averaged network flatter? Move the weights along a random direction — each filter
# by a random vector as long as the filter itself (filter normalisation, Li et al. 2018, so
# that two networks are moved by comparable amounts) — and measure the loss on 500
# held-out images on the way:

# %%
if plain_model is not None and swa is not None and weights_kept("s12/swa"):
    probe_batches = data.Loader(val_set.subset(500), 250)        # the held-out images
    alphas = np.linspace(-1, 1, 9)
    fig, ax = plt.subplots(figsize=(7, 4))
    rise = {}
    for name in ("s12/plain", "s12/swa"):
        model = records.load_model(name)
        curves_ = [practice.loss_along(model, practice.random_direction(model, seed=k),
                                       alphas, probe_batches, precision=FASTEST)
                   for k in range(2)]
        mean_curve = np.mean(curves_, axis=0)
        rise[name] = mean_curve[[0, -1]].mean() - mean_curve[len(alphas) // 2]
        ax.plot(alphas, mean_curve, "o-", label=name)
    ax.set_xlabel("step along a filter-normalised random direction")
    ax.set_ylabel("loss on 500 held-out images")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    flatter = min(rise, key=rise.get)
    say(f"""One step either way (every filter moved by its own length) raises the loss
by {rise['s12/plain']:.2f} for `s12/plain` and {rise['s12/swa']:.2f} for `s12/swa`:
along these directions **{flatter}** sits in the flatter region.""")

# %% [markdown]
# (s12-training)=
# ## 11. Training one recipe
#
# Every practice of this page is a field of `Practice` in a recipe, trained by
# `runner.run` like any other. In FAST mode this trains `s12/plain` for two epochs on 1,000
# images (900 after the validation split) — a check that the code runs; in full mode it is
# the whole recipe, which took as long as its record says:

# %% tags=["remove-input"]
plain_record = recorded("s12/plain")
if plain_record is None:
    none_yet("s12/plain")
else:
    threads = plain_record.threads
    machine = plain_record.device_name.split(", ")[:2]        # the CPU, its cores
    say(f"The recorded `s12/plain` trained {plain_record.epochs_run} epochs in "
        f"**{plain_record.wall_seconds / 60:.1f} minutes** with {threads} torch "
        f"thread{'s' if threads != 1 else ''} on {', '.join(machine)} "
        f"({plain_record.precision}).")

# %% tags=["remove-cell"]
_plain = recipes.get("s12/plain")
assert (_plain.fast.epochs, _plain.fast.limit) == (2, 1000)
assert _plain.practice.val_split == 0.1

# %%
live = runner.run("s12/plain")
print(f"{live.label}: validation {live.metrics['val_acc']:.2f} %, test "
      f"{live.metrics['test_acc']:.2f} % after {len(live.history)} epochs "
      f"({live.wall_seconds:.0f} s on {live.device}, {live.precision}); held out: "
      f"{live.data['val'].describe()}")

# %% [markdown]
# ## 12. The assignment: rare classes
#
# **The task.** Train session 6's network (under 200,000 parameters) on CIFAR-10-LT with an
# imbalance ratio of 100 — the seeded set of {ref}`the imbalance section <s12-imbalance>` —
# for at most 30 epochs, the budget of the plain cross-entropy run `s12/lt-ce`. Scored on
# the same test images as `s12/lt-ce`, it must
#
# - raise the mean recall of the three rarest classes by **at least 10 points** over
#   `s12/lt-ce`'s, and
# - lose **at most 5 points** of balanced accuracy against it.
#
# Anything may change but the network, the data and the budget: the loss, the sampling,
# the augmentation, the schedule. The targets come from the noise of two single-seed runs
# on these images, not from any run's result:

# %% tags=["remove-input"]
LT_COUNTS = losses.long_tailed_counts(5000, 10, 100)
rarest = sorted(range(10), key=lambda c: LT_COUNTS[c])[:3]
lt_base = recorded("s12/lt-ce")
if lt_base is None:
    none_yet("s12/lt-ce")
else:
    lt_truth = practice.recorded_data(lt_base, "test").labels
    n_rare = int(sum((lt_truth == c).sum() for c in rarest))
    rare_noise = 2 * math.sqrt(2) * 100 * metrics.binomial_std_error(0.5, n_rare)
    base_acc = lt_base.final_test_acc / 100
    acc_noise = 2 * math.sqrt(2) * 100 * metrics.binomial_std_error(base_acc,
                                                                len(lt_truth))
    names = ", ".join(f"{CLASSES[c]} ({LT_COUNTS[c]} training images)" for c in rarest)
    say(f"""The three rarest classes are {names}; {n_rare} of the {len(lt_truth):,} test
images show them. Two standard errors of the difference between two runs' recall on
{n_rare} images near 50 % (the widest) are {rare_noise:.1f} points, so a 10-point gain
is more than the noise of one seed; for an accuracy near {100 * base_acc:.0f} % (the
baseline's) on {len(lt_truth):,}
images they are {acc_noise:.1f} points, so 5 points of balanced accuracy is about what
noise alone can cost.""")

# %% [markdown]
# **The solution** is `s12/lt-weighted-ce`, recorded {ref}`above <s12-imbalance>`:
# cross-entropy weighted by $1/n_{\text{class}}$, nothing else changed. `evakit check s12`
# reads its stored test predictions and those of `s12/lt-ce`, and rebuilds the network
# from its config to count the parameters:

# %%
lt_solution = recorded("s12/lt-weighted-ce")
if lt_solution is None or lt_base is None:
    none_yet(*[n for n in ("s12/lt-ce", "s12/lt-weighted-ce") if recorded(n) is None])
else:
    display(grade("s12", lt_solution))

# %% [markdown]
# The other two re-weighted losses of {ref}`the imbalance section <s12-imbalance>`,
# graded the same way — the constraints each one misses:

# %%
if lt_base is not None:
    rows = []
    for name in ("s12/lt-focal", "s12/lt-class-balanced"):
        r = recorded(name)
        if r is None:
            rows.append([name, "no record"])
            continue
        report = grade("s12", r)
        missed = [f"{v.constraint} ({v.measured})" for v in report.verdicts
                  if not v.passed]
        rows.append([name, "; ".join(missed) or "none: it passes too"])
    display(Table(["recipe", "constraints missed"], rows, "evakit check s12"))

# %% tags=["remove-cell"]
if lt_solution is not None and lt_base is not None:
    assert grade("s12", lt_solution).passed
    assert rare_noise < 10 and acc_noise > 4
lt = evakit.check
typed = (lt.LT_RARE_GAIN, lt.LT_BALANCED_LOSS, lt.LT_EPOCHS, lt.LT_RATIO)
assert typed == (10, 5, 30, 100), "the assignment's typed constraints"

# %% [markdown]
# ## Exercises
#
# 1. A test set of 1,000 images, a network at 90 %. What is the standard error of its
#    accuracy, and roughly how many test images would a ± 0.5-point (one standard error)
#    estimate need?
# 2. On CIFAR-10-LT, a network that always answers "airplane": what are its accuracy, its
#    balanced accuracy and its macro F1 on the balanced test set?
# 3. Temperature scaling cannot change the accuracy. Why not — and why must $T$ be fitted on
#    the validation set rather than the test set?
# 4. Why does SWA need `update_bn`, and why does an ensemble not?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
se_90 = metrics.binomial_std_error(0.9, 1000)
n_needed = round(0.9 * 0.1 / 0.005 ** 2)
always = torch.zeros(1000, dtype=torch.long)
balanced_truth = torch.arange(10).repeat_interleave(100)
dumb = scores_by_hand(always, balanced_truth, 10)
say(f"""
:::{{admonition}} Answers
:class: dropdown
(1) $\\sqrt{{0.9 \\cdot 0.1 / 1000}} = {se_90:.4f}$, about ± 0.95 points. For
± 0.5 points, $n = 0.9 \\cdot 0.1 / 0.005^2 = {n_needed:,}$ images — a third of the
official test set, and almost four times the 1,000 offline: halving an error bar costs
four times the images.

(2) It is right on the 100 airplanes only: accuracy {dumb['accuracy']:.2f}, balanced
accuracy {dumb['balanced']:.2f} (recall 1 for airplanes, 0 for the other nine), macro F1
{dumb['macro_f1']:.3f} (airplane's F1 is $2 \\cdot 0.1 \\cdot 1 / 1.1 = 0.18$, the
others 0).
On a balanced test set the first two coincide; on an imbalanced one the accuracy would
flatter it.

(3) Dividing every logit of an image by the same $T > 0$ keeps their order, so the
arg-max is the same. Fitting $T$ on the test set makes the test set a validation set:
the ECE it then reports is the one $T$ was chosen to minimise, an optimistic number.

(4) The averaged weights are a network that was never run: the running means and
variances of its batch norms belong to none of the networks averaged, so they are
recomputed with a pass over the training data. An ensemble averages outputs of networks
that each keep their own, correct statistics.
:::
""")

# %% tags=["remove-cell"]
assert n_needed == 3600 and abs(dumb["balanced"] - 0.1) < 1e-9
assert abs(dumb["macro_f1"] - 2 * 0.1 / 1.1 / 10) < 1e-9

# %% [markdown]
# ## Summary
#
# - Choices are made on a validation set held out of the training data (stratified,
#   seeded); the test set scores the final choice once. Early stopping is such a choice.
# - An accuracy on 1,000 images is ± about 2 points (95 %); compare two networks on the same
#   images with a paired interval. Per-class precision, recall and F1, and the balanced
#   accuracy, say where the errors are.
# - Modern networks tend to be over-confident (Guo et al., 2017); a reliability diagram and
#   the ECE measure it, and temperature scaling fitted on validation data corrects it without
#   changing a prediction. How much there is to correct depends on the network: measure first.
# - Transfer: pretrained features matter most when labels are scarce — fine-tuning (with a
#   lower backbone learning rate) leads training from scratch by most with few labels; a
#   frozen linear probe is held back by features learnt for other classes. Better source
#   networks transfer better (Kornblith et al., 2019).
# - On a long tail, class weights (the weighted and class-balanced losses) trade recall of the
#   big classes for recall of the rare ones; the focal loss, which weighs images by difficulty
#   rather than by class, moves it far less. A loss's scale is a learning rate.
# - mixup, CutMix, RandAugment and AutoAugment regularise; they pay off with capacity and
#   epochs to spare.
# - TTA, ensembles and SWA average views, networks and weights: TTA and ensembles cost at
#   inference, SWA almost nothing.
#
# ## References
#
# - Guo, Pleiss, Sun & Weinberger, *On Calibration of Modern Neural Networks*, ICML 2017.
# - Efron & Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall, 1993.
# - Kornblith, Shlens & Le, *Do Better ImageNet Models Transfer Better?*, CVPR 2019.
# - Cui, Jia, Lin, Song & Belongie, *Class-Balanced Loss Based on Effective Number of
#   Samples*, CVPR 2019.
# - Lin, Goyal, Girshick, He & Dollár, *Focal Loss for Dense Object Detection*, ICCV 2017.
# - Zhang, Cisse, Dauphin & Lopez-Paz, *mixup: Beyond Empirical Risk Minimization*,
#   ICLR 2018.
# - Yun, Han, Oh, Chun, Choe & Yoo, *CutMix: Regularization Strategy to Train Strong
#   Classifiers with Localizable Features*, ICCV 2019.
# - Cubuk, Zoph, Mané, Vasudevan & Le, *AutoAugment: Learning Augmentation Strategies from
#   Data*, CVPR 2019; Cubuk, Zoph, Shlens & Le, *RandAugment: Practical Automated Data
#   Augmentation with a Reduced Search Space*, NeurIPS 2020.
# - Izmailov, Podoprikhin, Garipov, Vetrov & Wilson, *Averaging Weights Leads to Wider Optima
#   and Better Generalization*, UAI 2018.
# - Li, Xu, Taylor, Studer & Goldstein, *Visualizing the Loss Landscape of Neural Nets*,
#   NeurIPS 2018.
# - Lakshminarayanan, Pritzel & Blundell, *Simple and Scalable Predictive Uncertainty
#   Estimation using Deep Ensembles*, NeurIPS 2017.
