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
# takes an MNIST network from a working but bloated 6.4-million-parameter first attempt down
# to 99.4 % with fewer than 7 000 parameters, one change at a time. Every step has a
# **Target** (what this change should achieve), **Results** (read from its recorded run, never
# typed) and an **Analysis** (what the numbers say, and what to try next).
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
from IPython.display import Markdown, display

from evakit import augment, check, data, recipes, records, rf, runner, viz
from evakit.table import Table


def show(name: str) -> dict:
    """The recipe's layer table and its recorded results."""
    record = records.load(name)
    display(rf.summary(recipes.get(name).build_model(), (1, 28, 28)))
    display(Markdown(record.results_markdown()))
    return record


# %% [markdown]
# ## The data path
#
# MNIST is 47 MB as uint8: it fits on any GPU. `evakit.data.Loader` moves it to the training
# device once, then for every batch converts to float, augments the whole batch at once and
# normalizes — no per-image PIL work, no worker processes. The ±7° rotation of iteration 9 is
# one `affine_grid` + `grid_sample` call per batch:

# %%
train_set = data.load("mnist", "train")
loader = data.Loader(train_set, 16, shuffle=True, seed=0, augment=augment.random_rotation(7.0))
x, y = next(iter(loader))
viz.image_grid(x * 0.3081 + 0.1307, [f"label {int(v)}" for v in y], cols=8,
               suptitle="a training batch, each image rotated by up to ±7°");

# %% [markdown]
# `evakit bench loader` measures this path against torchvision's `DataLoader` with
# `transforms.RandomRotation` doing the same augmentation image by image; its figures for this
# course's CI machine are in the issue notes of the repository.
#
# ## Code 1 — setup
#
# **Target.** Get the whole pipeline working: data, a network that can learn, the training
# loop, the test. No attention to size yet.

# %%
r1 = show("s04/code01")

# %% [markdown]
# **Analysis.** It works — and it is absurd: over six million parameters for 28 × 28 digits.
# The train accuracy runs away from the test accuracy (the model memorises), and most of the
# parameters sit in the last two 3 × 3 convolutions at 512 and 1024 channels. Everything after
# this is about getting the same accuracy from a network a thousand times smaller.
#
# ## Code 2 — skeleton
#
# **Target.** The right *shape*: two blocks of 3 × 3 convolutions, one max pool after the
# first block (RF 8), a 1 × 1 transition to cut channels, a second block, and a head that turns
# the last 7 × 7 map into 10 outputs; no padding, no biases.

# %%
r2 = show("s04/code02")
best = {1: max(r1.history.test_acc), 2: max(r2.history.test_acc)}
assert 25 < r1.params / r2.params < 35 and 98.5 < best[2] < best[1]  # the analysis below

# %% [markdown]
# **Analysis.** Thirty times fewer parameters and still in the high 98s: the shape is sound.
# It learns more slowly than code 1 at first and is not yet converged after 15 epochs; the
# train–test gap is smaller. The width (32–128 channels) is still far more than MNIST needs.
#
# ## Code 3 — lighter model
#
# **Target.** Keep the skeleton, cut the channels to 10–20: about 10 k parameters.

# %%
r3 = show("s04/code03")
assert 15 < r2.params / r3.params < 20 and max(r3.history.train_acc) < 99  # below

# %% [markdown]
# **Analysis.** Eighteen times fewer parameters than code 2, a few tenths of a percent lower.
# Look at the first epochs in the curves below: without normalization this small network starts
# slowly. Both train and test accuracy are below 99 %: it is *under*fitting, so the next step
# should help it learn, not regularise it.
#
# ## Code 4 — batch normalization
#
# **Target.** Add batch norm after every convolution (but the last) to speed up and stabilise
# learning.

# %%
r4 = show("s04/code04")
h3, h4 = r3.history, r4.history
lift = max(h4.test_acc) - max(h3.test_acc)
print(f"batch norm: best test accuracy +{lift:.2f} points for {r4['params'] - r3['params']} "
      f"more parameters; first epoch {h4.test_acc[0]:.2f} % (code 3: {h3.test_acc[0]:.2f} %)")
assert 0.5 < lift < 1.0 and h4.test_acc[0] > 98                       # the analysis below
assert max(h4.train_acc) > 99.8 and max(h4.train_acc) - h4.test_acc[-1] > 0.5

# %% [markdown]
# **Analysis.** Batch norm lifts the best test accuracy by most of a percent for a handful of
# parameters (a scale and a shift per channel), and the first epoch is already above 98 %
# (printed above). But train accuracy now climbs to 99.9 % while test accuracy stalls around
# 99.1–99.3: the model *over*fits. Next: regularise.
#
# ## Code 5 — regularization (dropout)
#
# **Target.** Dropout of 10 % after every block to close the train–test gap.

# %%
r5 = show("s04/code05")
gap = {name: r.history.train_acc[-1] - r.history.test_acc[-1]
       for name, r in (("code04", r4), ("code05", r5))}
assert gap["code05"] < 0 < gap["code04"]                                 # the analysis below
assert r5.history.test_acc[-1] > r4.history.test_acc[-1]

# %% [markdown]
# **Analysis.** The gap closes — test accuracy is now *above* train accuracy, because the train
# accuracy is measured with dropout active. The last epoch's test accuracy improves; the best
# epoch's hardly moves. The network is
# small but still carries a 7 × 7 × 10 × 10 convolution in its head: 4 900 of its ~11 k
# parameters.
#
# ## Code 6 — global average pooling
#
# **Target.** Replace the big 7 × 7 head with global average pooling: each of the last 20
# channels is averaged to one number and a 1 × 1 convolution maps 20 → 10.

# %%
r6 = show("s04/code06")
assert 0.4 < 1 - r6.params / r5.params < 0.5                       # "almost half"
assert max(r6.history.test_acc) < max(r5.history.test_acc)

# %% [markdown]
# **Analysis.** Parameters drop by almost half and accuracy drops a little: not because GAP is
# bad, but because we removed capacity along with the 7 × 7 convolution. Comparing models of
# different size tells us nothing; we now have room to add capacity where it helps.
#
# ## Code 7 — increase capacity
#
# **Target.** Spend parameters before GAP instead of in the head: two more 3 × 3 layers
# (padding 1, 16 channels) at the end of the second block.

# %%
r7 = show("s04/code07")
best = {name: max(records.load(f"s04/{name}").history.test_acc)
        for name in ("code05", "code06", "code07")}
assert best["code07"] > best["code05"] > best["code06"] and r7.params < r5.params

# %% [markdown]
# **Analysis.** Better than code 6, and better than code 5 with fewer parameters: the weights
# taken out of the 7 × 7 head work harder as 3 × 3 layers before GAP, and the receptive field
# at the end is large. The first block still wastes capacity, though: its max pool comes late
# (RF 8), after three convolutions at full resolution, the most expensive place to compute.
#
# ## Code 8 — max pooling at RF 5, dropout everywhere, capacity after GAP
#
# **Target.** Pool after two convolutions (RF 5 is enough for edges and gradients on MNIST),
# which frees parameters for a deeper second block; keep a little dropout (5 %) on every layer;
# add a 1 × 1 layer after GAP.

# %%
r8 = show("s04/code08")
best8, best7 = max(r8.history.test_acc), max(r7.history.test_acc)
print(f"best test accuracy: code 8 {best8:.2f} % with {r8['params']:,} parameters, code 7 "
      f"{best7:.2f} % with {r7['params']:,}")
assert abs(best8 - best7) < 0.1 and r8.params < 0.92 * r7.params
assert r8.history.train_acc[-1] < r8.history.test_acc[-1]

# %% [markdown]
# **Analysis.** As good as code 7 with about a tenth fewer parameters — pooling at RF 5 moves
# the work to the cheaper half-resolution block. The train accuracy stays below test
# (dropout), so the model is not overfitting; the errors that remain are digits written
# unusually — slanted, rotated — that the training set does not show often enough.
#
# ## Code 9 — image augmentation
#
# **Target.** Rotate training images randomly by up to ±7° (the batch rotation above) so the
# network sees slanted digits.

# %%
r9 = show("s04/code09")
h8, h9 = r8.history, r9.history
print(f"final train accuracy: code 8 {h8.train_acc[-1]:.2f} %, code 9 {h9.train_acc[-1]:.2f} %;"
      f" best test: code 8 {max(h8.test_acc):.2f} %, code 9 {max(h9.test_acc):.2f} %")
assert h9.train_acc[-1] < h8.train_acc[-1] and abs(max(h9.test_acc) - max(h8.test_acc)) < 0.1

# %% [markdown]
# **Analysis.** Rotation makes training harder — the final train accuracy is lower than code
# 8's — while the best test accuracy stays where it was. That is a regulariser's signature, but
# no gain yet: with a constant learning rate of 0.01 the test accuracy swings by one or two
# tenths from epoch to epoch (look at the Results' epochs), and whatever the augmentation buys
# is hidden in that noise. The weights never settle.
#
# ## Code 10 — learning-rate scheduler
#
# **Target.** Start faster and finish gentler: learning rate 0.05, divided by 10 every 5 epochs
# (StepLR), instead of a constant 0.01.

# %%
r10 = show("s04/code10")
h10 = r10.history.test_acc
settled = next(e for e in range(len(h10)) if min(h10[e:]) >= 99.4) + 1
spread = max(h10[-5:]) - min(h10[-5:])
display(Markdown(f"Code 10 is at or above 99.4 % in every epoch from epoch {settled} on; over the "
                 f"last five epochs its test accuracy moves by {spread:.2f} points (code 9: "
                 f"{max(h9.test_acc[-5:]) - min(h9.test_acc[-5:]):.2f})."))
assert settled <= 10 and spread < max(h9.test_acc[-5:]) - min(h9.test_acc[-5:])

# %% [markdown]
# **Analysis.** This is the improvement the seed expected from the schedule, and the records
# agree: the larger starting rate gets to 99.4 % early, and once the rate has been divided
# (epochs 6 and 11) the test accuracy stops swinging and stays above the line. A settled
# network is what the assignment's "each of the last three epochs" asks for — the three steps
# below build on exactly this, with a one-cycle schedule.

# %%
viz.curves({name.split("/")[1]: records.load(name).history
            for name in ("s04/code03", "s04/code04", "s04/code05", "s04/code09")});

# %%
records.overview([f"s04/code{i:02d}" for i in range(1, 11)])

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

# %%
h1 = s1.history
last3 = ", ".join(f"{a:.2f}" for a in h1.test_acc[-3:])
assert min(h1.test_acc[-3:]) < 99.4 and h1.train_acc[-1] > h1.test_acc[-1]
print(f"last three test epochs {last3}; final train {h1.train_acc[-1]:.2f} % vs test "
      f"{h1.test_acc[-1]:.2f} %")

# %% [markdown]
# **Analysis.** Close, but the last epochs stay under 99.4 % (printed above; the best epoch
# may touch it once and fall back), and train accuracy ends above test: it overfits
# slightly. Next: regularise with dropout and rotation.
#
# ### Step 2
#
# **Target.** Same network, 5 % dropout and ±7° rotation.

# %%
s2 = show("s04/step2")
check.grade("s04", s2)

# %%
h2 = s2.history
assert h2.train_acc[-1] < h2.test_acc[-1], "the prose says the gap is negative"
assert max(h2.test_acc[-3:]) < 99.4 < max(h2.test_acc) + 0.1
print(f"final train {h2.train_acc[-1]:.2f} % vs test {h2.test_acc[-1]:.2f} %; best test "
      f"{max(h2.test_acc):.2f} %; last three {[round(a, 2) for a in h2.test_acc[-3:]]}")

# %% [markdown]
# **Analysis.** The gap is now negative (regularised: train below test) and the best epoch
# comes within a tenth of 99.4 %, but the last three epochs stay below it: with a constant
# learning rate the weights keep jumping around the minimum — the test accuracy goes up and
# down by a tenth from one epoch to the next. Next: let the learning rate anneal.
#
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
    runs = {seed: records.load(recipe, seed=None if seed == 1 else seed) for seed in (1, 2, 3)}
    verdicts = {seed: check.grade("s04", r) for seed, r in runs.items()}
    where = sorted({r["device_name"] for r in runs.values()})
    table = Table(["seed", "last three test accuracies %", "all constraints"],
                     [[seed, ", ".join(f"{a:.2f}" for a in r.history.test_acc[-3:]),
                       "PASS" if verdicts[seed].passed else "FAIL"] for seed, r in runs.items()],
                     f"{recipe}, {runs[1]['params']:,} parameters, on three seeds "
                     f"({', '.join(where)})")
    return table, runs, verdicts


step3_table, step3_runs, step3_verdicts = seed_table("s04/step3")
display(step3_table)
step3_passed = sum(v.passed for v in step3_verdicts.values())
display(Markdown(f"**{step3_passed} of 3 seeds** meet every constraint."))

# %% [markdown]
# **Analysis.** The annealed learning rate is what step 2 lacked: the accuracy climbs while
# the rate is high and then stops moving, so "each of the last three epochs" becomes a
# property of the run rather than of luck — on all three seeds (the cell below fails if a
# re-recorded run says otherwise). The margin is still small, a few hundredths of a percent
# on the worst seed: that is what 99.4 % with under 7 000 parameters costs.

# %%
assert step3_passed == 3, "the prose above says step 3 holds on all three seeds"
assert s3.params < 7000, "the prose says fewer than 7 000 parameters"
print(s3["recipe"], "— last three epochs, worst seed:",
      min(min(r.history.test_acc[-3:]) for r in step3_runs.values()))

# %% [markdown]
# ### The ≤ 6 000 attempt
#
# **Target.** The same training with the aim the assignment sets lower: ≤ 6 000 parameters
# (the last 3×3 back to 14 channels, the padded layer at 10) — `s04/step3-lean`.

# %%
lean_table, lean_runs, lean_verdicts = seed_table("s04/step3-lean")
display(lean_table)
lean_passed = sum(v.passed for v in lean_verdicts.values())
lean_last3 = [r.history.test_acc[-3:] for r in lean_runs.values()]
display(Markdown(
    f"**{lean_passed} of 3 seeds** meet every constraint; the best of the last-three accuracies "
    f"reach {max(max(x) for x in lean_last3):.2f} %, the worst {min(min(x) for x in lean_last3):.2f} %."))

# %% [markdown]
# **Analysis.** Under 6 000 parameters the network *reaches* 99.4 % but does not *hold* it on
# every seed: the last three epochs straddle the line by a few hundredths, the size of the
# seed-to-seed noise. A result this close to the line has to be reported with its spread, as
# here, not as a single lucky run; it is why step 3 spends the 1 000 extra parameters (the
# budget allows up to 8 000). The cell below fails if a re-recorded lean run holds on all
# three seeds — then this paragraph must be rewritten.

# %%
assert lean_passed < 3, "the prose above says the lean variant does not hold on every seed"

# %% [markdown]
# In FAST mode the cell below trains step 3 on the 2 000-image slice to show the code path; in
# full mode it reproduces the recorded run.

# %%
live = runner.run("s04/step3", verbose=False)
print(f"{live.label}: test accuracy by epoch", [round(a, 2) for a in live.history.test_acc])

# %% [markdown]
# ## Exercises
#
# 1. Code 4 overfits and code 5 does not. Which numbers in their Results show it?
# 2. Why does GAP need capacity *before* it, rather than after?
# 3. What is the receptive field of step 3's last convolution (read it from its table)?
#
# ```{admonition} Answers
# :class: dropdown
# (1) Code 4's best train accuracy is far above its test accuracy; code 5's train accuracy is
# below its test accuracy. (2) GAP throws away *where* features are; the layers before it must
# already have turned "where" into "what". (3) Computed below from `evakit.rf`.
# ```

# %%
table = rf.summary(recipes.get("s04/step3").build_model(), (1, 28, 28))
last_3x3 = table.rows_where(type="Conv2d", kernel=3)[-1]
print("3: RF of the last 3×3 convolution before GAP:", last_3x3["RF"])

# %% [markdown]
# ## Summary
#
# - Change one thing per iteration; write the target first and analyse the result against it.
# - Train ≫ test: regularise (dropout, augmentation). Both low: add capacity or help learning
#   (batch norm, a better learning rate).
# - GAP removes the biggest layer; spend the saved parameters before it.
# - Pool once the receptive field covers the basic features (RF 5 on MNIST).
# - Claims of 0.1 % need several seeds; a single run is an anecdote. Step 3 holds on three
#   seeds; the ≤ 6 000 variant does not, and the page says so.
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
