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
# # Session 4 — Coding drill-down
#
# Designing a network is not one leap but a sequence of small, measured steps. This session
# takes an MNIST network from a working but bloated first attempt of several million
# parameters down to 99.4 % with a few thousand, one change at a time. Every step has a
# **Target** (what this change should achieve), **Results** (read from its recorded run, never
# typed) and an **Analysis** (what the numbers say, and what to try next; every number in it
# is generated from the records).
#
# ```{note}
# **FAST mode on this page.** Every Results block, table, curve and comparison on this page is
# read from the recorded full runs in `book/records/`, whatever the mode. With
# `EVAKIT_FAST=1` (the tests, and the build of this book) only two cells do real work, on a
# small scale: the data-path cell times the two loaders on 2,048 images, and the last cell
# before the exercises trains step 3 on the first 2,000 training images for a few epochs — a
# check that the code runs, not a result. Without `EVAKIT_FAST` (in Colab) that cell trains
# step 3 in full.
# ```
#
# **Objectives.** After this session you can
# - run a model-design loop: one change per iteration, measured, analysed;
# - read over- and under-fitting from the gap between train and test accuracy;
# - say what batch norm, dropout, GAP, the position of max pooling, augmentation and an LR
#   schedule each contribute;
# - keep data on the training device and augment whole batches, and measure that it is faster;
# - meet a hard budget: ≥ 99.4 % in each of the last three epochs, ≤ 15 epochs, < 8 000
#   parameters.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from evakit import augment, bench, check, data, recipes, records, rf, runner, viz
from evakit.table import Table

SHORT = {"ReLU": "ReLU", "BatchNorm2d": "BN", "Dropout": "dropout",
         "MaxPool2d": "max pool", "AdaptiveAvgPool2d": "GAP"}


def unit_table(name: str) -> Table:
    """The recipe's EVA table with one row per unit (conv → ReLU → BN → dropout)."""
    full = rf.summary(recipes.get(name).build_model(), (1, 28, 28))
    units: dict[str, list[dict]] = {}
    for row in list(full)[1:-1]:                        # not the input and total rows
        unit = row["layer"].rsplit(".", 1)[0] if row["layer"].count(".") == 2 \
            else row["layer"]
        units.setdefault(unit, []).append(row)

    def short(row: dict) -> str:
        if row["type"] == "Conv2d":
            pad = f" pad {row['padding']}" if row["padding"] else ""
            return f"conv {row['kernel']}×{row['kernel']}{pad}"
        return SHORT.get(row["type"], row["type"])

    rows = [[unit, " → ".join(short(r) for r in layers), layers[-1]["output"],
             layers[-1]["RF"], sum(r["params"] for r in layers)]
            for unit, layers in units.items()]
    total = full[-1]["params"]
    return Table(["unit", "layers", "output", "RF", "params"],
                 rows + [["total", "", "", "", total]],
                 f"{name}: {total:,} parameters, one row per unit")


def show(name: str, table: bool = True):
    """The recipe's layer table (once per distinct network) and its recorded results."""
    if table:
        display(unit_table(name))
    record = records.load(name)
    display(Markdown(record.results_markdown()))
    return record


def say(text: str) -> None:
    """Show prose generated from the records."""
    display(Markdown(text))


# %% [markdown]
# ## The data path
#
# MNIST is 47 MB as uint8: it fits on any GPU. `evakit.data.Loader` moves it to the training
# device once, then for every batch converts to float, augments the whole batch at once and
# normalizes — no per-image PIL work, no worker processes. The ±7° rotation of code 9 is
# one `affine_grid` + `grid_sample` call per batch:

# %%
train_set = data.load("mnist", "train")
loader = data.Loader(train_set, 16, shuffle=True, seed=0,
                     augment=augment.random_rotation(7.0))
x, y = next(iter(loader))
viz.image_grid(x * train_set.std[0] + train_set.mean[0], [f"label {int(v)}" for v in y],
               cols=8, suptitle="a training batch, each image rotated by up to ±7°");

# %% [markdown]
# Is it faster? `evakit.bench.loader` times this path against torchvision's `DataLoader`
# doing the same augmentation image by image with `transforms.RandomRotation` on PIL images,
# both delivering the same MNIST training images to the training device. Measured on the
# machine that ran this page, while it ran — a snapshot that shares the CPU with whatever
# else runs; `evakit bench loader` on a quiet machine is the figure to quote:

# %%
rates = bench.loader(images=2048, workers=(0,))
Table(["pipeline", "images", "seconds", "images / s"],
      [[r.name, r.images, round(r.seconds, 3), round(r.per_second)] for r in rates],
      f"evakit's batch rotation delivers "
      f"{rates[0].per_second / rates[1].per_second:.1f}× "
      "the images per second of torchvision's per-image rotation, on this machine, now")

# %% [markdown]
# ## Code 1 — setup
#
# **Target.** Get the whole pipeline working: data, a network that can learn, the training
# loop, the test. No attention to size yet.

# %%
r1 = show("s04/code01")

# %% tags=["remove-input"]
h1 = r1.history
convs = sorted((r["params"] for r in rf.summary(recipes.get("s04/code01").build_model(),
                                                 (1, 28, 28)) if r["type"] == "Conv2d"),
               reverse=True)
biggest = 100 * sum(convs[:2]) / r1.params
say(f"""**Analysis.** It works — and it is absurd: {r1.params / 1e6:.1f} million
parameters for 28 × 28 digits. The train accuracy runs away from the test accuracy (the
model memorises): {h1.train_acc[-1]:.2f} % against {h1.test_acc[-1]:.2f} % in the last
epoch. {biggest:.0f} % of the parameters sit in the two largest 3 × 3 convolutions, at
512 and 1024 channels. Everything after this is about getting the same accuracy from a
network about a thousand times smaller.""")

# %% tags=["remove-cell"]
assert h1.train_acc[-1] - h1.test_acc[-1] > 0.5
assert 500 < r1.params / records.load("s04/step3").params < 2000   # "a thousand times"

# %% [markdown]
# ## Code 2 — skeleton
#
# **Target.** The right *shape*: two blocks of 3 × 3 convolutions, one max pool after the
# first block (RF 8), a 1 × 1 transition to cut channels, a second block, and a head that turns
# the last 7 × 7 map into 10 outputs; no padding, no biases. As a picture — each box one unit
# of the table below, with its output and receptive field:

# %% tags=["remove-input"]
def draw_units(table: Table, title: str):
    """The units of a unit table as boxes left to right: layers, output, RF."""
    rows = [r for r in table if r["unit"] != "total"]
    colour = {"conv 3×3": "#dbe9f6", "max pool": "#fde2c8", "conv 1×1": "#d5ecd4",
              "GAP": "#eeeeee"}                    # any other kind (the head): lilac
    fig, ax = plt.subplots(figsize=(1.35 * (len(rows) + 1), 2.4))
    ax.text(0, 0, "input\n1×28×28", ha="center", va="center", fontsize=9)
    for k, row in enumerate(rows, start=1):
        kind = row["layers"].split(" → ")[0]
        fill = colour.get(kind.split(" pad")[0], "#e6dcf2")
        ax.add_patch(plt.Rectangle((k - 0.42, -0.62), 0.84, 1.24, fc=fill, ec="0.4"))
        layers = row["layers"].replace(" → ReLU", "").replace(" → BN", "")
        ax.text(k, 0.3, layers.replace(" → ", "\n").replace(" pad", "\npad"),
                ha="center", va="center", fontsize=8)
        out = "×".join(str(v) for v in row["output"])
        ax.text(k, -0.3, f"{out}\nRF {row['RF']}", ha="center", va="center", fontsize=8)
        ax.annotate("", (k - 0.43, 0), (k - 0.57 if k > 1 else 0.45, 0),
                    arrowprops=dict(arrowstyle="-|>", color="0.4"))
    ax.set_xlim(-0.6, len(rows) + 0.6)
    ax.set_ylim(-0.75, 0.75)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    return fig


draw_units(unit_table("s04/code02"),
           "code 2: conv → ReLU after every 3 × 3 and 1 × 1 (not drawn), no padding");

# %%
r2 = show("s04/code02")

# %% tags=["remove-input"]
h2 = r2.history
best = {k: max(r.history.test_acc) for k, r in ((1, r1), (2, r2))}
gap = {k: r.history.train_acc[-1] - r.history.test_acc[-1]
       for k, r in ((1, r1), (2, r2))}
unconverged = (" and is not yet converged: its best epoch is its last"
               if h2.best()[0] == len(h2) else "")
say(f"""**Analysis.** {r1.params / r2.params:.0f} times fewer parameters, and the best
test accuracy is {best[2]:.2f} % (code 1: {best[1]:.2f} %): the shape is sound. It
learns more slowly than code 1 at first ({h2.test_acc[0]:.2f} % after one epoch, code 1
{h1.test_acc[0]:.2f} %){unconverged}; the train–test gap of the last epoch is smaller
({gap[2]:.2f} points against {gap[1]:.2f}). The width (32–128 channels) is still far
more than MNIST needs.""")

# %% tags=["remove-cell"]
assert h2.test_acc[0] < h1.test_acc[0] and gap[2] < gap[1]
code2_rows = list(unit_table("s04/code02"))
pool = next(r for r in code2_rows if r["layers"] == "max pool")
assert pool["RF"] == 8 and code2_rows[-3]["output"][1:] == (7, 7)   # the target's words

# %% [markdown]
# ## Code 3 — lighter model
#
# **Target.** Keep the skeleton, cut the channels to 10–20: about 10 k parameters.

# %%
r3 = show("s04/code03")

# %% tags=["remove-input"]
h3 = r3.history
best[3] = max(h3.test_acc)
say(f"""**Analysis.** {r2.params / r3.params:.0f} times fewer parameters than code 2,
and {best[2] - best[3]:.2f} points lower at the best epoch ({best[3]:.2f} %). Look at
the first epoch: without normalization this small network starts slowly —
{h3.test_acc[0]:.2f} % test accuracy after one epoch (code 2: {h2.test_acc[0]:.2f} %).
Both train and test accuracy stay below 99 % (at best {max(h3.train_acc):.2f} % and
{best[3]:.2f} %): it is *under*fitting, so the next step should help it learn, not
regularise it.""")

# %% tags=["remove-cell"]
assert 9_000 < r3.params < 12_000 and best[3] < best[2]
assert h3.test_acc[0] < h2.test_acc[0] and max(h3.train_acc) < 99 and best[3] < 99

# %% [markdown]
# ## Code 4 — batch normalization
#
# **Target.** Add batch norm after every convolution (but the last) to speed up and stabilise
# learning.

# %%
r4 = show("s04/code04")

# %% tags=["remove-input"]
h4 = r4.history
best[4] = max(h4.test_acc)
gap[4] = h4.train_acc[-1] - h4.test_acc[-1]
say(f"""**Analysis.** Batch norm lifts the best test accuracy by {best[4] - best[3]:.2f}
points for {r4.params - r3.params} more parameters (a scale and a shift per channel),
and the first epoch already reaches {h4.test_acc[0]:.2f} % (code 3: {h3.test_acc[0]:.2f}
%). But train accuracy now climbs to {max(h4.train_acc):.2f} % while test accuracy stays
between {min(h4.test_acc[-5:]):.2f} and {max(h4.test_acc[-5:]):.2f} % over the last five
epochs: the model *over*fits. Next: regularise.""")

# %% tags=["remove-cell"]
assert best[4] > best[3] and h4.test_acc[0] > h3.test_acc[0]
assert max(h4.train_acc) > 99.5 and gap[4] > 0.5

# %% [markdown]
# ## Code 5 — regularization (dropout)
#
# **Target.** Dropout of 10 % after every block to close the train–test gap. The network is
# code 4's with a dropout layer at the end of every unit (same parameters), so its table is
# not repeated.

# %%
r5 = show("s04/code05", table=False)

# %% tags=["remove-input"]
h5 = r5.history
best[5] = max(h5.test_acc)
gap[5] = h5.train_acc[-1] - h5.test_acc[-1]
head = unit_table("s04/code05")[-2]["params"]


def moved(new: float, old: float) -> str:
    way = "rises" if new > old else "falls" if new < old else "stays"
    return f"{way} from {old:.2f} to {new:.2f} %"


say(f"""**Analysis.** The gap closes — train accuracy ends *below* test accuracy
({h5.train_acc[-1]:.2f} % against {h5.test_acc[-1]:.2f} %), because the train accuracy
is measured with dropout active. The last epoch's test accuracy
{moved(h5.test_acc[-1], h4.test_acc[-1])}; the best epoch's {moved(best[5], best[4])}.
The network is small but still carries a 7 × 7 × 10 × 10 convolution in its head:
{head:,} of its {r5.params:,} parameters.""")

# %% tags=["remove-cell"]
assert gap[5] < 0 < gap[4] and r5.params == r4.params

# %% [markdown]
# The first three steps of the loop, in the curves: code 3 (no normalization) stays below
# the others; code 4's train accuracy (dashed) runs away from its test accuracy; code 5's
# dropout pulls train below test.

# %%
viz.curves({name.split("/")[1]: records.load(name).history
            for name in ("s04/code03", "s04/code04", "s04/code05")},
           acc_range=(97.0, 100.0));

# %% tags=["remove-cell"]
assert min(h4.train_acc[-5:]) > max(h4.test_acc[-5:])          # "runs away"
assert max(h3.test_acc) < min(h4.test_acc[-5:] + h5.test_acc[-5:])   # "stays below"

# %% [markdown]
# ## Code 6 — global average pooling
#
# **Target.** Replace the big 7 × 7 head with global average pooling: each of the last 20
# channels is averaged to one number and a 1 × 1 convolution maps 20 → 10.

# %%
r6 = show("s04/code06")

# %% tags=["remove-input"]
best[6] = max(r6.history.test_acc)
say(f"""**Analysis.** Parameters drop by {100 * (1 - r6.params / r5.params):.0f} %
({r6.params:,} against {r5.params:,}) and the best test accuracy drops with them, from
{best[5]:.2f} to {best[6]:.2f} %: not because GAP is bad, but because we removed
capacity along with the 7 × 7 convolution. Comparing models of different size tells us
little; we now have room to add capacity where it helps.""")

# %% tags=["remove-cell"]
assert best[6] < best[5] and r6.params < r5.params

# %% [markdown]
# ## Code 7 — increase capacity
#
# **Target.** Spend parameters before GAP instead of in the head: two more 3 × 3 layers
# (padding 1, 16 channels) at the end of the second block.

# %%
r7 = show("s04/code07")

# %% tags=["remove-input"]
best[7] = max(r7.history.test_acc)
_, rf7 = rf.receptive_field_before_pool(recipes.get("s04/code07").build_model(),
                                        (1, 28, 28))
say(f"""**Analysis.** Best test accuracy {best[7]:.2f} %: better than code 6
({best[6]:.2f} %), and better than code 5 ({best[5]:.2f} %) with fewer parameters
({r7.params:,} against {r5.params:,}). The weights taken out of the 7 × 7 head work
harder as 3 × 3 layers before GAP, and the receptive field entering the GAP is {rf7}
pixels. The first block still wastes capacity, though: its max pool comes late (RF 8),
after three convolutions at full resolution, the most expensive place to compute.""")

# %% tags=["remove-cell"]
assert best[7] > best[5] > best[6] and r7.params < r5.params

# %% [markdown]
# ## Code 8 — max pooling at RF 5, dropout everywhere, capacity after GAP
#
# **Target.** Pool after two convolutions (RF 5 is enough for edges and gradients on MNIST),
# which frees parameters for a deeper second block; keep a little dropout (5 %) on every layer;
# add a 1 × 1 layer after GAP.

# %%
r8 = show("s04/code08")

# %% tags=["remove-input"]
h8 = r8.history
best[8] = max(h8.test_acc)
say(f"""**Analysis.** Best test accuracy {best[8]:.2f} % with {r8.params:,} parameters,
against code 7's {best[7]:.2f} % with {r7.params:,}: as good, with
{100 * (1 - r8.params / r7.params):.0f} % fewer parameters — pooling at RF 5 moves the
work to the cheaper half-resolution block. The train accuracy stays below test
({h8.train_acc[-1]:.2f} % against {h8.test_acc[-1]:.2f} % in the last epoch: dropout),
so the model is not overfitting. A guess at what remains: digits written unusually —
slanted, rotated — that the training set shows too rarely. Code 9 tests it.""")

# %% tags=["remove-cell"]
assert abs(best[8] - best[7]) < 0.1 and r8.params < r7.params
assert h8.train_acc[-1] < h8.test_acc[-1]
code8_rows = list(unit_table("s04/code08"))
assert next(r for r in code8_rows if r["layers"] == "max pool")["RF"] == 6  # 5, pooled

# %% [markdown]
# ## Code 9 — image augmentation
#
# **Target.** Rotate training images randomly by up to ±7° (the batch rotation above) so the
# network sees slanted digits. The network is code 8's.

# %%
r9 = show("s04/code09", table=False)

# %% tags=["remove-input"]
h9 = r9.history
best[9] = max(h9.test_acc)


def swing(acc: list[float], epochs: int = 10) -> tuple[float, float]:
    """Mean and largest change of accuracy from one epoch to the next, last epochs."""
    steps = [abs(b - a) for a, b in zip(acc[-epochs - 1:], acc[-epochs:])]
    return sum(steps) / len(steps), max(steps)


say(f"""**Analysis.** Rotation makes training harder — the final train accuracy is
{h9.train_acc[-1]:.2f} %, code 8's {h8.train_acc[-1]:.2f} % — while the best test
accuracy stays where it was ({best[9]:.2f} % against {best[8]:.2f} %). That is a
regulariser's signature, but no gain yet: with a constant learning rate of 0.01 the test
accuracy moves by {swing(h9.test_acc)[0]:.2f} points on average from one epoch to the
next over the last ten epochs, and by up to {swing(h9.test_acc)[1]:.2f}; whatever the
augmentation buys is hidden in that noise. The weights never settle.""")

# %% tags=["remove-cell"]
assert h9.train_acc[-1] < h8.train_acc[-1] and abs(best[9] - best[8]) < 0.1
assert r9.config["lr"] == 0.01 and r9.config["scheduler"] is None

# %% [markdown]
# ## Code 10 — learning-rate scheduler
#
# **Target.** Start faster and finish gentler: learning rate 0.05, divided by 10 every 5 epochs
# (StepLR), instead of a constant 0.01. The network is code 8's.

# %%
r10 = show("s04/code10", table=False)

# %% tags=["remove-input"]
h10 = r10.history
reached = next(e for e, a in enumerate(h10.test_acc, start=1) if a >= 99.4)
settled = next(e for e in range(len(h10)) if min(h10.test_acc[e:]) >= 99.4) + 1
divided = [e for e in range(2, len(h10) + 1) if h10.lr[e - 1] < h10.lr[e - 2] * 0.5]
say(f"""**Analysis.** This is the improvement the schedule was meant to bring, and the
records agree: while the rate is 0.05 the test accuracy climbs quickly
({h10.test_acc[divided[0] - 2]:.2f} % after epoch {divided[0] - 1}); it first reaches
99.4 % in epoch {reached}, and is at or above it in every epoch from epoch {settled} on.
Once the rate has been divided (from epochs {' and '.join(map(str, divided))}) the test
accuracy moves by {swing(h10.test_acc)[0]:.2f} points on average from one epoch to the
next over the last ten epochs (code 9: {swing(h9.test_acc)[0]:.2f}). A settled network
is what the assignment's "each of the last three epochs" asks for — the three steps
below build on exactly this, with a one-cycle schedule.""")

# %% tags=["remove-cell"]
assert settled <= 10 and swing(h10.test_acc)[0] < swing(h9.test_acc)[0]

# %% tags=["remove-input"]
say(f"""Codes 8, 9 and 10 on one zoomed axis, with the 99.4 % line: code 8 and code 9
(constant learning rate) swing from epoch to epoch, reaching {best[8]:.2f} and
{best[9]:.2f} % at best; code 10 climbs while the rate is high and stays above the line
once the rate is divided.""")

# %%
viz.curves({name.split("/")[1]: records.load(name).history
            for name in ("s04/code08", "s04/code09", "s04/code10")},
           acc_range=(98.5, 99.7), target=99.4, test_only=True);


# %%
records.overview([f"s04/code{i:02d}" for i in range(1, 11)]).select(
    ["recipe", "params", "best test acc %", "final test acc %"])

# %% [markdown]
# ## Assignment — three steps to 99.4 % under 8 000 parameters
#
# **Constraints**, checked by `evakit check s04 RECORD`: test accuracy ≥ 99.4 % in **each of
# the last three epochs**, at most 15 epochs, fewer than 8 000 parameters. We also try to go
# lower, to ≤ 6 000, and report on three seeds whether that holds.
#
# ### Step 1
#
# **Target.** The skeleton of code 8 squeezed under budget (8–14 channels), batch norm and GAP,
# no dropout, no augmentation, learning rate 0.05.

# %%
s1 = show("s04/step1")
check.grade("s04", s1)

# %% tags=["remove-input"]
def last3(h) -> str:
    return ", ".join(f"{a:.2f}" for a in h.test_acc[-3:])


g1 = s1.history
epoch1, best1 = g1.best()
touch = "touches it and falls back" if best1 >= 99.4 else "stays below it too"
say(f"""**Analysis.** Close, but the last three epochs ({last3(g1)} %) stay under 99.4
%; the best epoch ({best1:.2f} %, epoch {epoch1}) {touch}. Train accuracy ends above
test ({g1.train_acc[-1]:.2f} % against {g1.test_acc[-1]:.2f} %): it overfits slightly.
Next: regularise with dropout and rotation.""")

# %% tags=["remove-cell"]
assert max(g1.test_acc[-3:]) < 99.4 and g1.train_acc[-1] > g1.test_acc[-1]

# %% [markdown]
# ### Step 2
#
# **Target.** Same network, 5 % dropout and ±7° rotation (same parameters, so the table of
# step 1 holds).

# %%
s2 = show("s04/step2", table=False)
check.grade("s04", s2)

# %% tags=["remove-input"]
g2 = s2.history
epoch2, best2 = g2.best()
say(f"""**Analysis.** The gap is now negative (train {g2.train_acc[-1]:.2f} % below test
{g2.test_acc[-1]:.2f} %: regularised) and the best epoch reaches {best2:.2f} % (epoch
{epoch2}), but the last three epochs ({last3(g2)} %) do not all hold 99.4 %: with a
constant learning rate the weights keep jumping around the minimum — the test accuracy
moves by {swing(g2.test_acc)[0]:.2f} points on average from one epoch to the next over
the last ten. Next: let the learning rate anneal.""")

# %% tags=["remove-cell"]
assert g2.train_acc[-1] < g2.test_acc[-1] and min(g2.test_acc[-3:]) < 99.4
assert s2.params == s1.params and s2.config["scheduler"] is None

# %% [markdown]
# ### Step 3
#
# **Target.** Let the learning rate anneal: a one-cycle schedule peaking at 0.1 that falls to
# almost zero by epoch 15, so the last epochs settle instead of jumping around the minimum.
# A little less dropout (2 %) and ±6° rotation, and a slightly wider end of the network (the
# last 3×3 at 16 channels, the padded layer at 14) to buy margin over 99.4 %. Checked on three
# seeds, because a margin of hundredths of a percent is within run-to-run noise.

# %%
s3 = show("s04/step3")


def seed_table(recipe: str) -> tuple[Table, dict, dict]:
    """Each seed's record of ``recipe``, its verdict, and a table of both."""
    runs = {seed: records.load(recipe, seed=None if seed == 1 else seed)
            for seed in (1, 2, 3)}
    verdicts = {seed: check.grade("s04", r) for seed, r in runs.items()}
    table = Table(["seed", "last three test accuracies %", "all constraints"],
                  [[seed, last3(r.history), "PASS" if verdicts[seed].passed else "FAIL"]
                   for seed, r in runs.items()],
                  f"{recipe}, {runs[1].params:,} parameters, on three seeds")
    return table, runs, verdicts


step3_table, step3_runs, step3_verdicts = seed_table("s04/step3")
step3_table

# %% tags=["remove-input"]
def seeds_in_words(n: int) -> str:
    words = {0: "none of the three seeds", 3: "all three seeds"}
    return words.get(n, f"{n} of 3 seeds")


step3_passed = sum(v.passed for v in step3_verdicts.values())
worst3 = min(min(r.history.test_acc[-3:]) for r in step3_runs.values())
say(f"""**Analysis.** The annealed learning rate is what step 2 lacked: the accuracy
climbs while the rate is high and then stops moving, so "each of the last three epochs"
becomes a property of the run rather than of luck — step 3 meets every constraint on
**{seeds_in_words(step3_passed)}**, with {s3.params:,} parameters. The margin is small:
the worst of the nine last-three accuracies is {worst3:.2f} %,
{100 * (worst3 - 99.4):.0f} hundredths of a point above the line.""")

# %% tags=["remove-cell"]
assert step3_passed == 3 and worst3 >= 99.4, "the paragraph above says step 3 holds"

# %% [markdown]
# ### The ≤ 6 000 attempt
#
# **Target.** The same training with the aim the assignment sets lower: ≤ 6 000 parameters
# (the last 3×3 back to 14 channels, the padded layer at 10) — `s04/step3-lean`.

# %%
lean_table, lean_runs, lean_verdicts = seed_table("s04/step3-lean")
lean_table

# %% tags=["remove-input"]
lean_passed = sum(v.passed for v in lean_verdicts.values())
lean_params = lean_runs[1].params
lean_last3 = [a for r in lean_runs.values() for a in r.history.test_acc[-3:]]
lean_reached = sum(max(r.history.test_acc) >= 99.4 for r in lean_runs.values())
say(f"""**Analysis.** With {lean_params:,} parameters the network meets every constraint
on **{seeds_in_words(lean_passed)}**. It *reaches* 99.4 % in some epoch on
{seeds_in_words(lean_reached)}, but it does not *hold* it: its last-three accuracies
range from {min(lean_last3):.2f} to {max(lean_last3):.2f} %, straddling the line by a
few hundredths — the size of the seed-to-seed noise. A result this close to the line has
to be reported with its spread, as here, not as a single lucky run; it is why step 3
spends {s3.params - lean_params:,} more parameters (the budget allows up to 8 000).""")

# %% tags=["remove-cell"]
assert lean_params <= 6000 and lean_passed < 3
assert min(lean_last3) < 99.4 < max(lean_last3)                     # "straddling"
assert max(lean_last3) - 99.4 < 0.1 and 99.4 - min(lean_last3) < 0.1  # "few hundredths"

# %% [markdown]
# The three steps on one zoomed axis, then both step-3 networks on all their seeds, with
# the three epochs the check reads shaded:

# %%
viz.curves({"step1": g1, "step2": g2, "step3": s3.history},
           acc_range=(98.5, 99.7), target=99.4, test_only=True);

# %% tags=["remove-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
for ax, (title, runs) in zip(axes, ((f"step3, {s3.params:,} parameters", step3_runs),
                                    (f"step3-lean, {lean_params:,} parameters",
                                     lean_runs))):
    epochs = len(s3.history)
    ax.axvspan(epochs - 2.5, epochs + 0.5, color="0.92")
    ax.axhline(99.4, color="k", ls=":", lw=1, label="99.4 %")
    for seed, r in runs.items():
        ax.plot(range(1, epochs + 1), r.history.test_acc, "o-", ms=3,
                label=f"seed {seed}")
    ax.set_xlim(7.5, epochs + 0.5)
    ax.set_ylim(99.0, 99.6)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
axes[0].set_ylabel("test accuracy (%)")
fig.tight_layout()

# %% [markdown]
# In FAST mode the cell below trains step 3 on the FAST slice (its output says how much) to
# show the code path; in full mode it reproduces the recorded run.

# %%
live = runner.run("s04/step3", verbose=False)
print(f"{live.label}: test accuracy by epoch",
      [round(a, 2) for a in live.history.test_acc])

# %% [markdown]
# ## Exercises
#
# 1. Code 4 overfits and code 5 does not. Which numbers in their Results show it?
# 2. Why does GAP need capacity *before* it, rather than after?
# 3. What is the receptive field entering step 3's global average pooling (read it from its
#    table)?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
_, rf_step3 = rf.receptive_field_before_pool(recipes.get("s04/step3").build_model(),
                                             (1, 28, 28))
say(f"""
:::{{admonition}} Answers
:class: dropdown
(1) Code 4's best train accuracy ({max(h4.train_acc):.2f} %) is far above its best test
accuracy ({best[4]:.2f} %); code 5's best train accuracy ({max(h5.train_acc):.2f} %) is
below its best test accuracy ({best[5]:.2f} %).

(2) GAP throws away *where* features are; the layers before it must already have turned
"where" into "what".

(3) {rf_step3} pixels: the RF column of the last unit before the GAP in step 3's table.
:::
""")

# %% tags=["remove-cell"]
assert max(h4.train_acc) - best[4] > 0.5 and max(h5.train_acc) < best[5]

# %% [markdown]
# ## Summary
#
# - Change one thing per iteration; write the target first and analyse the result against it.
# - Train ≫ test: regularise (dropout, augmentation). Both low: add capacity or help learning
#   (batch norm, a better learning rate).
# - GAP removes the biggest layer; spend the saved parameters before it.
# - Pool once the receptive field covers the basic features (RF 5 on MNIST).
# - With a constant learning rate the test accuracy swings from epoch to epoch; a schedule
#   that lowers the rate lets the weights settle.
# - Claims of 0.1 % need several seeds; a single run is an anecdote. Step 3 and its ≤ 6 000
#   variant are reported above on three seeds each, with their spread.
#
# ## References
#
# - S. Ioffe, C. Szegedy, *Batch normalization*, ICML (2015).
# - N. Srivastava et al., *Dropout*, JMLR 15 (2014).
# - M. Lin, Q. Chen, S. Yan, *Network in network*, ICLR (2014).
# - L. N. Smith, N. Topin, *Super-convergence: very fast training of neural networks using
#   large learning rates*, arXiv:1708.07120 (2017) — one-cycle.
# - P. Y. Simard, D. Steinkraus, J. C. Platt, *Best practices for convolutional neural networks
#   applied to visual document analysis*, ICDAR (2003) — augmentation on MNIST.
