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
# # Session 6 — Advanced convolutions and data augmentation
#
# Up to now every layer was a plain 3×3 convolution and MNIST was the whole world. CIFAR-10
# is harder: 32×32 colour photographs of ten kinds of object, each seen from any angle, at
# any size, on any background. Two things help a small network there. **Cheaper or wider
# convolutions** — dilated ones that see further for the same weights, depthwise-separable
# ones that cost a fraction, strided ones that replace max pooling — and **augmentation**,
# which shows the network the variations it must ignore. This session takes both apart and
# ends with a CIFAR-10 network under 200 000 parameters that uses them.
#
# ```{note}
# **FAST mode on this page.** The assignment's results — the Results line, the grading by
# `evakit check s06`, the curves and the galleries — are read from the recorded full run in
# `book/records/`, whatever the mode; where the record is missing, the page says so. With
# `EVAKIT_FAST=1` (the tests, and the build of this book) the one cell that trains runs the
# recipe on a slice for a couple of epochs — a check that the code runs, labelled as such in
# its output, not a result. Without `EVAKIT_FAST` (in Colab) it trains the recipe in full.
# ```
#
# **Objectives.** After this session you can
# - compute the receptive field and parameter count of dilated, depthwise-separable, grouped
#   and spatially separable convolutions, and say what each buys;
# - explain the checkerboard of transposed convolutions and how pixel shuffle avoids it;
# - write an albumentations 2.x pipeline with the current API, and know the silent trap of
#   the 1.x argument names; run the same augmentation on whole batches, and say what that
#   saves;
# - implement cutout, mixup, RICAP and Patch Gaussian on whole batches;
# - build a network that meets a structural budget and prove it with `evakit check`.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn
from torchvision.transforms import v2

from evakit import augment, check, data, models, recipes, records, rf, runner, viz
from evakit.table import Table

with warnings.catch_warnings():    # tqdm (albumentations imports it) misses ipywidgets
    warnings.simplefilter("ignore")
    import albumentations as A


def say(text: str) -> None:
    """Show prose generated from the code's results and the records."""
    display(Markdown(text))

# %% [markdown]
# ## 1. CIFAR-10
#
# 50 000 training and 10 000 test images, 32×32×3, ten balanced classes. In FAST mode on a
# machine without the full set, `evakit.data` falls back to a real sample of it (the first
# training batch and the first 1 000 test images) and says so below.

# %%
test_set = data.load("cifar10", "test")
print(test_set.source)
first = [int(torch.nonzero(test_set.labels == c)[0]) for c in range(10)]
viz.image_grid(test_set.images[first], [test_set.classes[c] for c in range(10)], cols=5,
               size=1.5, suptitle="one test image per class");

# %% [markdown]
# Ten classes at 32×32 means little detail per object: a cat is a few hundred pixels. The
# network has to combine evidence from most of the image, so the receptive field matters as
# much as on MNIST — and the image is bigger (32 against 28) while the objects fill it.
#
# ## 2. Dilated convolutions: a wider view for the same weights
#
# A 3×3 kernel with dilation $d$ samples its nine inputs $d$ pixels apart: it *covers*
# $2d+1$ pixels per side but still has nine weights. Stacked, dilations grow the receptive
# field quickly without pooling, so the map keeps its resolution. That is why segmentation
# networks, which must label every pixel, use them (DeepLab; Yu & Koltun, 2016). The same
# trick works in one dimension: WaveNet (van den Oord et al., 2016), a model that
# *generates audio* one sample at a time, stacks dilated causal 1-D convolutions (dilations
# 1, 2, 4, …, 512) so that each new sample depends on thousands of past ones.

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, d in zip(axes, (1, 2, 3), strict=True):
    footprint = np.zeros((7, 7))
    footprint[3 - d:3 + d + 1:d, 3 - d:3 + d + 1:d] = 1
    ax.imshow(footprint, cmap="Blues", vmin=0, vmax=1.3)
    ax.set_xticks(np.arange(-0.5, 7, 1), [])
    ax.set_yticks(np.arange(-0.5, 7, 1), [])
    ax.grid(color="grey", linewidth=0.5)
    ax.set_title(f"dilation {d}: 9 weights over {2 * d + 1}×{2 * d + 1}")
fig.tight_layout()

# %% [markdown]
# `evakit.rf` follows the dilation through the network. Three plain 3×3 layers against three
# with dilations 1, 2, 4 — the same 3·9·C² weights:

# %%
plain = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
dilated = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=d, dilation=d) for d in (1, 2, 4)])
for name, net in (("plain", plain), ("dilated 1-2-4", dilated)):
    table = rf.summary(net, (8, 32, 32))
    display(table.select(["layer", "dilation", "output", "jump", "RF", "params"],
                         f"{name}: {models.count_parameters(net):,} parameters"))

# %% tags=["remove-cell"]
rf_plain = rf.receptive_field(plain, (8, 32, 32))
rf_dilated = rf.receptive_field(dilated, (8, 32, 32))
assert models.count_parameters(plain) == models.count_parameters(dilated)
assert (rf_plain, rf_dilated) == (7, 15), "the prose below"

# %% [markdown]
# Same parameters, receptive field 15 instead of 7. The price: a dilated kernel skips pixels,
# and stacking the same dilation leaves a regular grid of inputs that never meet (the
# "gridding" artefact), which is why dilations are mixed (1, 2, 4) rather than repeated.
#
# On a real image, a dilated edge kernel responds to edges at a coarser scale:

# %%
photo = torch.tensor(skimage.color.rgb2gray(skimage.data.astronaut()),
                     dtype=torch.float32)
sobel_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
axes[0].imshow(photo.numpy(), cmap="gray")
axes[0].set_title("input")
for ax, d in zip(axes[1:], (1, 8), strict=True):
    edges = F.conv2d(photo[None, None], sobel_x, padding=d, dilation=d)[0, 0]
    ax.imshow(edges.abs().numpy(), cmap="magma")
    ax.set_title(f"vertical-edge kernel, dilation {d}")
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## 3. Depthwise-separable convolutions: a fraction of the cost
#
# A full 3×3 convolution from $C_{in}$ to $C_{out}$ channels has $9\,C_{in}C_{out}$ weights:
# every output channel looks at every input channel at every offset. The **depthwise-
# separable** version (MobileNet) splits this into a 3×3 *depthwise* convolution — one filter
# per input channel, `groups=C_in` — and a 1×1 *pointwise* convolution that mixes channels:
# $9\,C_{in} + C_{in}C_{out}$ weights.

# %%
c_in, c_out = 16, 32
full = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
separable = models.DepthwiseSeparable(c_in, c_out)
n_full, n_sep = models.count_parameters(full), models.count_parameters(separable)
x = torch.randn(1, c_in, 32, 32)
print(f"output shapes: full {tuple(full(x).shape)}, separable "
      f"{tuple(separable(x).shape)}")
print(f"full 3×3, {c_in}→{c_out}: {n_full:,} weights = 9·{c_in}·{c_out}; "
      f"depthwise-separable: {n_sep:,} = 9·{c_in} + {c_in}·{c_out} "
      f"({n_full / n_sep:.1f}× fewer)")

# %% tags=["remove-cell"]
assert n_full == 9 * c_in * c_out and n_sep == 9 * c_in + c_in * c_out
assert full(x).shape == separable(x).shape

# %% [markdown]
# The same split also cuts the multiply-adds by that factor. It loses something — the two
# steps cannot express every 3×3×C_in filter — which the network pays back with more layers
# or channels for the same budget.
#
# **Grouped convolutions** are the middle ground (AlexNet split across two GPUs; ResNeXt):
# `groups=g` splits the channels into $g$ groups convolved separately, dividing the weights
# by $g$. Depthwise is the extreme $g = C_{in}$.

# %%
grouped = {g: models.count_parameters(nn.Conv2d(c_in, c_out, 3, groups=g, bias=False))
           for g in (1, 2, 4, 16)}
for g, n in grouped.items():
    print(f"groups={g:>2}: {n:>5,} weights (9·{c_in}·{c_out}/{g} = "
          f"{9 * c_in * c_out // g:,})")

# %% [markdown]
# ## 4. Spatially separable convolutions
#
# A 3×3 kernel that is an outer product of a column and a row (rank 1) can be applied as a
# 3×1 then a 1×3 convolution: 6 weights instead of 9. Sobel is such a kernel. Most learned
# kernels are not rank 1, so a 3×1 + 1×3 pair is a restriction (Inception v3 uses it on 7×7
# kernels, where 14 against 49 is a real saving).

# %%
column, row = torch.tensor([1.0, 2, 1]), torch.tensor([-1.0, 0, 1])
print("column ⊗ row equals Sobel:",
      torch.equal(torch.outer(column, row), sobel_x[0, 0]))
print("singular values of Sobel:", torch.linalg.svdvals(sobel_x[0, 0]).numpy().round(3))
vertical = F.conv2d(photo[None, None], column.view(1, 1, 3, 1), padding=(1, 0))
two_step = F.conv2d(vertical, row.view(1, 1, 1, 3), padding=(0, 1))
one_step = F.conv2d(photo[None, None], sobel_x, padding=1)
print(f"3×1 then 1×3 against the 3×3 Sobel on the photo: largest difference "
      f"{(two_step - one_step).abs().max():.1e}")

# %% tags=["remove-cell"]
assert torch.equal(torch.outer(column, row), sobel_x[0, 0])
assert torch.allclose(two_step, one_step, atol=1e-5)

# %% [markdown]
# ## 5. Transposed convolution and its checkerboard; pixel shuffle
#
# A transposed convolution with stride 2 upsamples by spreading each input pixel over a
# kernel-sized patch of the output, two pixels apart. With a 3×3 kernel the patches overlap
# on every other row and column but not on the rest: even a constant input and a constant
# kernel give a **checkerboard** (Odena et al., 2016). Pixel shuffle (Shi et al., 2016)
# instead computes $r^2$ channels at low resolution with an ordinary convolution and
# rearranges them into an $r\times$ larger map: every output pixel comes from one
# computation, so no overlap pattern.

# %%
ones = torch.ones(1, 1, 8, 8)
transposed = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1,
                                bias=False)
nn.init.constant_(transposed.weight, 1.0)
shuffle = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.PixelShuffle(2))
nn.init.constant_(shuffle[0].weight, 1.0)
with torch.no_grad():
    up_t, up_s = transposed(ones)[0, 0], shuffle(ones)[0, 0]
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, img, name in ((axes[0], up_t, "ConvTranspose2d, stride 2, 3×3"),
                      (axes[1], up_s, "Conv 1→4 + PixelShuffle(2)")):
    ax.imshow(img.numpy(), cmap="viridis")
    ax.set_title(f"{name}\n(constant input and weights)")
    ax.axis("off")
fig.tight_layout()
interior_t, interior_s = up_t[2:-2, 2:-2], up_s[2:-2, 2:-2]
print("distinct values inside, transposed:", interior_t.unique().tolist(),
      "| pixel shuffle:", interior_s.unique().tolist())

# %% tags=["remove-cell"]
assert interior_t.unique().tolist() == [1.0, 2.0, 4.0] and len(interior_s.unique()) == 1

# %% [markdown]
# The transposed convolution's interior holds 1, 2 and 4 — the checkerboard; pixel shuffle's
# interior is uniform. `evakit.rf` handles both: a transposed conv divides the jump (the
# output is finer than the input), pixel shuffle keeps the receptive field of the convolution
# before it.

# %%
display(rf.summary(nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1),
                                 nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1,
                                                    output_padding=1)), (1, 16, 16)))

# %% [markdown]
# ## 6. Augmentation with albumentations 2.x
#
# Augmentation turns one labelled image into many: flipped, shifted, scaled, rotated, partly
# hidden. The network then has to recognise the object in all of them, so it learns what is
# invariant instead of memorising pixels. albumentations is the library most course code
# uses; **version 2 renamed several arguments**, and the old names are dropped with only a
# warning. The classic Cutout line
# `CoarseDropout(max_holes=1, max_height=16, max_width=16)` therefore does *not* cut a 16×16
# hole in 2.x — it runs with the defaults (one or two holes of 10–20 % of the side). With
# `strict=True` albumentations refuses it instead:

# %%
try:
    A.CoarseDropout(max_holes=1, max_height=16, max_width=16, strict=True)
except ValueError as e:
    print("strict=True:", e)

# %% [markdown]
# The assignment's pipeline in the current API — `HorizontalFlip`, `ShiftScaleRotate` and
# `CoarseDropout` with one 16×16 hole filled with the dataset mean, each applied with
# probability 0.5 — is `evakit.augment.albumentations_pipeline`, built from the recipe's
# fields with `strict=True`, so a wrong argument name is an error, not a surprise. It is
# what the recorded run of the assignment trained with (the recipe says
# `pipeline="albumentations"`). `ShiftScaleRotate` still exists in 2.x as a special case of
# `Affine`, and says so when it is built:

# %%
r6 = recipes.get("s06/cifar-net")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pipeline = augment.albumentations_pipeline(r6, test_set.mean, test_set.std)
for w in caught:
    print("albumentations says:", w.message)
for step in pipeline.transforms:
    print(f"  {type(step).__name__:<18} p = {step.p}")

# %% tags=["remove-cell"]
steps = {type(t).__name__: t for t in pipeline.transforms}
assert {"HorizontalFlip", "ShiftScaleRotate", "CoarseDropout"} <= set(steps)
assert all(steps[n].p == 0.5
           for n in ("HorizontalFlip", "ShiftScaleRotate", "CoarseDropout"))
assert (r6.pipeline, r6.augment_p, r6.cutout) == ("albumentations", 0.5, 16)

# %% [markdown]
# ### The same augmentation on whole batches
#
# albumentations works on one NumPy image at a time, in DataLoader worker processes. For a
# small dataset that fits in memory, `evakit.augment` does the same on a whole batch of
# tensors at once, on the training device — the approach of fast CIFAR-10 training code
# (airbench): no worker processes, one call per batch. `augment.for_recipe` builds the batch
# version of the same recipe, with the same steps and the same probabilities. Eight test
# images, two draws of each road:

# %%
picked = first[:8]
mean = torch.tensor(test_set.mean).view(3, 1, 1)
std = torch.tensor(test_set.std).view(3, 1, 1)
hwc = test_set.images[picked].permute(0, 2, 3, 1).numpy()
batch = test_set.images[picked].float() / 255
batch_version = augment.for_recipe(r6, test_set.mean)
g = torch.Generator().manual_seed(0)
rows = {"original": batch}
for draw in (1, 2):
    rows[f"albumentations, draw {draw}"] = [
        (pipeline(image=img)["image"] * std + mean).clamp(0, 1) for img in hwc]
for draw in (1, 2):
    rows[f"batch version, draw {draw}"] = batch_version(batch, g)
viz.image_rows(rows);

# %% [markdown]
# One difference is worth knowing. albumentations places the hole entirely inside the
# image; `evakit.augment.cutout` draws the square's centre anywhere in the image, as the
# Cutout paper does, so near a border part of the square falls outside. Counted on many
# draws of a hole on a blank image:

# %%
blank = np.full((32, 32, 3), 255, np.uint8)
one_hole = A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16),
                           hole_width_range=(16, 16), fill=0, p=1.0)
hole_only = A.Compose([one_hole], strict=True, seed=0)
hidden_album = [int((hole_only(image=blank)["image"][..., 0] == 0).sum())
                for _ in range(200)]
ones = torch.ones(200, 1, 32, 32)
hidden_batch = (augment.cutout(16)(ones, torch.Generator().manual_seed(0)) == 0)
hidden_batch = hidden_batch.flatten(1).sum(1).float()
print(f"pixels hidden by one 16×16 hole (256 pixels), {len(hidden_album)} draws each:")
print(f"  albumentations CoarseDropout: {min(hidden_album)} to {max(hidden_album)}")
print(f"  evakit.augment.cutout: {int(hidden_batch.min())} to "
      f"{int(hidden_batch.max())}, on average {hidden_batch.mean():.0f}")

# %% [markdown]
# **What the batch road saves.** Both roads on the same 512 training images, timed here in
# one process (one call per batch against one call per image; no worker processes on either
# side):

# %%
train_images = data.load("cifar10", "train").subset(512)
as_hwc = train_images.images.permute(0, 2, 3, 1).numpy()
start = time.perf_counter()
for img in as_hwc:
    pipeline(image=img)
per_image = time.perf_counter() - start
start = time.perf_counter()
batch_version(train_images.images.float() / 255, torch.Generator().manual_seed(0))
per_batch = time.perf_counter() - start
print(f"albumentations, one image at a time: {len(as_hwc) / per_image:,.0f} images/s; "
      f"batch version, one call: {len(as_hwc) / per_batch:,.0f} images/s "
      f"(the batch version delivers {per_image / per_batch:.1f}× as many images per "
      "second, on the machine that ran this page)")

# %% [markdown]
# That is the augmentation alone. `evakit bench cifar` measures the whole input pipeline
# and what it does to a training step: it times evakit's batch loader against a
# `DataLoader` over albumentations with 0 and 2 worker processes, each delivering augmented
# batches (session 8's crop, flip and cutout), and then the custom ResNet's training step fed
# by each: where the step is quick (a GPU), a slow input pipeline becomes what limits
# training, and the bench shows whether it does on your machine. It takes minutes on a CPU,
# too long for this page; run it where you train:
#
# ```bash
# evakit bench cifar --images 10000
# ```
#
# The other batch augmentations of `evakit.augment`, one draw each:

# %%
g = torch.Generator().manual_seed(0)
rows = {
    "original": batch,
    "crop (pad 4)": augment.random_crop(4)(batch, g),
    "flip": augment.random_flip()(batch, g),
    "affine": augment.random_affine(degrees=15, shift=0.0625, scale=0.1,
                                    fill=test_set.mean)(batch, g),
    "cutout 16, mean": augment.cutout(16, fill=test_set.mean)(batch, g),
    "Patch Gaussian": augment.patch_gaussian(16, 0.8)(batch, g),
}
viz.image_rows(rows);

# %% [markdown]
# **Cutout** (DeVries & Taylor, 2017) hides a square, so the network cannot lean on one
# discriminative part. **Patch Gaussian** (Lopes et al., 2019) adds noise in a square
# instead of erasing it: it buys robustness to noise without the accuracy cost of noising the
# whole image.
#
# ### Mixing labels: mixup and RICAP
#
# Two augmentations change the labels as well. **mixup** (Zhang et al., 2018) blends two
# images, $\lambda x_i + (1-\lambda) x_j$, and trains on the same blend of their one-hot
# labels, $\lambda \sim \mathrm{Beta}(\alpha, \alpha)$. **RICAP** (Takahashi et al., 2018)
# tiles crops of four images into one and weights the four labels by their areas. The loss is
# the weighted sum of cross-entropies (`evakit.augment.mixed_loss`).

# %%
labels = test_set.labels[picked]
names = test_set.classes
mixed, mix_labels, mix_w = augment.mixup(batch, labels, 1.0,
                                         torch.Generator().manual_seed(3))
tiled, ricap_labels, ricap_w = augment.ricap(batch, labels, 0.3,
                                             torch.Generator().manual_seed(4))
mix_titles = [f"{mix_w[0]:.2f} {names[a]}\n+ {mix_w[1]:.2f} {names[b]}"
              for a, b in zip(mix_labels[0][:4], mix_labels[1][:4], strict=True)]
ricap_titles = ["\n".join(f"{w:.2f} {names[lab[i]]}"
                          for lab, w in zip(ricap_labels, ricap_w, strict=True)
                          if w > 0)
                for i in range(4)]
viz.image_grid(list(mixed[:4]) + list(tiled[:4]), mix_titles + ricap_titles, cols=4,
               size=2.2,
               suptitle="mixup (top) and RICAP (bottom), with the label weights");

# %%
uniform = augment.mixed_loss(torch.zeros(8, 10), mix_labels, mix_w)
print(f"mixed loss of uniform logits: {uniform:.4f}; ln 10 = {np.log(10):.4f}")

# %% [markdown]
# (With uniform logits every cross-entropy is $\ln 10$, so any weighting that sums to one
# gives $\ln 10$ — the check in the cell above.)
#
# **Learned policies.** AutoAugment (Cubuk et al., 2019) searched for a policy of operations
# and magnitudes per dataset; RandAugment (Cubuk et al., 2020) showed that picking $N$ random
# operations at one magnitude $M$ does as well with two numbers to tune. Both ship with
# torchvision:

# %%
randaugment = v2.RandAugment(num_ops=2, magnitude=9)
torch.manual_seed(0)
viz.image_grid([randaugment(img) for img in test_set.images[picked]],
               [names[c] for c in test_set.labels[picked]], cols=4, size=1.6,
               suptitle="torchvision RandAugment(N=2, M=9)");

# %% [markdown]
# ## 7. The assignment: C1 C2 C3 C4 without max pooling
#
# **The task.** A CIFAR-10 network of four blocks C1 C2 C3 C4 and an output, with
# - no max pooling: downsample with stride-2 convolutions (or dilated ones — the bonus);
# - one depthwise-separable and one dilated convolution;
# - global average pooling, then the classifier;
# - a total receptive field above 44 and fewer than 200 000 parameters;
# - albumentations: horizontal flip, shift/scale/rotate and a 16×16 cutout filled with the
#   dataset mean;
# - a target of 85 % test accuracy.
#
# **The solution** is `s06/cifar-net` (see `evakit.models.CifarNet`): each of C1–C3 ends in a
# stride-2 3×3 convolution, C2 opens with a dilation-2 convolution and C3 with a depthwise-
# separable one, C4 works at 4×4, then GAP and a 1×1 convolution to ten classes. The key
# layers (the full table, with every BN and ReLU, is folded below it):

# %%
net = models.create("s06/cifar-net")
table = rf.summary(net, (3, 32, 32))
key = [row for row in table if row["type"] in ("Conv2d", "AdaptiveAvgPool2d")
       or row["layer"] in ("input", "total")]
columns = ["layer", "type", "stride", "dilation", "output", "RF", "params"]
Table(columns, [[row[c] for c in columns] for row in key],
      f"{table.caption} — key layers")

# %% tags=["hide-output"]
table

# %%
block_rf = {block: max(row["RF"] for row in table
                       if str(row["layer"]).startswith(block) and row["RF"] is not None)
            for block in ("c1", "c2", "c3", "c4")}
print("receptive field at the end of each block:", block_rf)
check.grade("s06", model=net)

# %% tags=["remove-cell"]
assert block_rf["c2"] <= 44 < block_rf["c3"], "the prose below"
assert check.grade("s06", model=net).passed

# %% [markdown]
# The receptive field passes 44 in C3 already; the strided layers do most of the work,
# doubling the jump each time, and the dilated layer adds as much as two plain ones.

# %% tags=["remove-input"]
say(f"**Training.** The recipe `{r6.name}` trains {r6.epochs} epochs of batches of "
    f"{r6.batch_size} with SGD (momentum {r6.momentum}, weight decay "
    f"{r6.weight_decay}) and a one-cycle learning rate up to {r6.lr}, in the fastest "
    f"precision of the machine (bf16 autocast on this course's CPU; the record says "
    f"which), on the albumentations pipeline above (`pipeline=\"{r6.pipeline}\"`, "
    f"p = {r6.augment_p} for the shift/scale/rotate and the cutout). In FAST mode the "
    f"cell below trains it on a slice for a couple of epochs — enough to show the code "
    f"runs, not a result.")

# %%
with warnings.catch_warnings():      # ShiftScaleRotate's note to use Affine: read above
    warnings.filterwarnings("ignore", message="ShiftScaleRotate")
    live = runner.run(r6)
print(live.result_line())
if not live.fast:
    viz.curves({"this run": live.history}, target=85)

# %% [markdown]
# ### Results of the recorded run
#
# Read from `book/records/s06/cifar-net.json`: the Results line, the grading by
# `evakit check s06` (the structure measured on the network the record's config builds, the
# accuracy read from the record), the curves, and the recorded model's first ten mistakes
# with their GradCAM maps at the end of C2 (8×8).

# %%
display(Markdown(records.results_or_missing(r6.name)))
s06 = records.load(r6.name) if records.path_for(r6.name).is_file() else None
if s06 is not None:
    display(check.grade("s06", record=s06))
    viz.curves({r6.name: s06.history}, target=85)
else:
    print("No record of s06/cifar-net yet, so no grading, curves or galleries: they "
          "must come from the recorded run, never from a smoke run.")

# %% tags=["remove-input"]
if s06 is not None:
    h, config = s06.history, s06.config
    say(f"The record trained with `pipeline=\"{config['pipeline']}\"` and "
        f"`augment_p={config['augment_p']}`, in {s06.precision} on {s06.device_name}, "
        f"in {s06.training_time()}. Test accuracy {h.test_acc[-1]:.2f} % "
        f"after the last epoch against a training accuracy of {h.train_acc[-1]:.2f} % "
        f"measured on augmented images while training: "
        + ("the network does not overfit." if h.train_acc[-1] <= h.test_acc[-1] + 1
           else f"a gap of {h.train_acc[-1] - h.test_acc[-1]:.1f} points."))

# %%
if s06 is not None:
    recorded_test = data.load("cifar10", "test", fast=False)
    recorded_test = recorded_test.subset(s06.data["test"].size)
    viz.misclassified_from_record(s06, recorded_test)
    viz.gradcam_from_record(s06, recorded_test)

# %% [markdown]
# ## Exercises
#
# 1. A stack of four 3×3 convolutions with dilations 1, 2, 4, 8 (stride 1): what is its
#    receptive field? Check with `rf.summary`.
# 2. How many weights does a depthwise-separable convolution from 64 to 128 channels have,
#    and how many does a full 3×3 convolution?
# 3. Why does `evakit.augment.cutout(16)` on a 32×32 image sometimes hide less than a
#    quarter of it, while albumentations' `CoarseDropout` always hides exactly a quarter?
# 4. mixup with $\alpha \to 0$: what does $\mathrm{Beta}(\alpha, \alpha)$ concentrate on, and
#    what does that do to the augmentation?
#
# ```{admonition} Answers
# :class: dropdown
# 1. $1 + 2(1 + 2 + 4 + 8) = 31$.
# 2. $9 \cdot 64 + 64 \cdot 128 = 8\,768$ against $9 \cdot 64 \cdot 128 = 73\,728$ — 8.4×
#    fewer.
# 3. The batch cutout draws the square's centre uniformly over the whole image (as in the
#    paper), so near a border part of the square falls outside; albumentations draws the
#    hole's corner so that the whole hole fits inside.
# 4. On 0 and 1: $\lambda$ is almost always near 0 or 1, so most "mixed" images are one
#    image — mixup fades away.
# ```

# %% tags=["remove-cell"]
stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=d, dilation=d)
                        for d in (1, 2, 4, 8)])
assert rf.receptive_field(stack, (1, 64, 64)) == 31
assert models.count_parameters(models.DepthwiseSeparable(64, 128)) == 8768
assert min(hidden_album) == max(hidden_album) == 256 and hidden_batch.min() < 256
assert all(n == 9 * c_in * c_out // g for g, n in grouped.items())
assert np.isclose(uniform.item(), np.log(10.0), atol=1e-6)

# %% [markdown]
# ## Summary
#
# - Dilation widens a kernel's view without weights; mixed dilations avoid gridding. It
#   serves segmentation (DeepLab) and, in 1-D, audio generation (WaveNet).
# - Depthwise-separable convolutions cost $9C_{in} + C_{in}C_{out}$ instead of
#   $9C_{in}C_{out}$; grouped convolutions sit between.
# - Transposed convolutions leave a checkerboard when the kernel does not divide evenly by
#   the stride; pixel shuffle does not.
# - albumentations 2.x renamed arguments: write `num_holes_range`, `hole_height_range`,
#   `hole_width_range`, `fill`, and build pipelines with `strict=True`.
# - The same augmentation runs on whole batches in `evakit.augment`, one call per batch
#   instead of one per image; cutout, Patch Gaussian, mixup and RICAP are there too.
# - The assignment network meets every structural constraint, checked by `evakit check s06`.
#
# ## References
#
# - Yu & Koltun, *Multi-Scale Context Aggregation by Dilated Convolutions*, ICLR 2016;
#   Chen et al., *DeepLab*, TPAMI 2018.
# - van den Oord et al., *WaveNet: A Generative Model for Raw Audio*, 2016.
# - Howard et al., *MobileNets*, 2017; Chollet, *Xception*, CVPR 2017.
# - Szegedy et al., *Rethinking the Inception Architecture* (Inception v3), CVPR 2016.
# - Odena, Dumoulin & Olah, *Deconvolution and Checkerboard Artifacts*, Distill 2016.
# - Shi et al., *Real-Time Single Image and Video Super-Resolution* (pixel shuffle), CVPR 2016.
# - DeVries & Taylor, *Improved Regularization of CNNs with Cutout*, 2017.
# - Zhang et al., *mixup: Beyond Empirical Risk Minimization*, ICLR 2018.
# - Takahashi, Matsubara & Uehara, *RICAP*, ACML 2018.
# - Lopes et al., *Improving Robustness Without Sacrificing Accuracy with Patch Gaussian*, 2019.
# - Cubuk et al., *AutoAugment*, CVPR 2019; *RandAugment*, NeurIPS workshops 2020.
# - Buslaev et al., *Albumentations: Fast and Flexible Image Augmentations*, Information 2020.
