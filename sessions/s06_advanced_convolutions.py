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
# **Objectives.** After this session you can
# - compute the receptive field and parameter count of dilated, depthwise-separable, grouped
#   and spatially separable convolutions, and say what each buys;
# - explain the checkerboard of transposed convolutions and how pixel shuffle avoids it;
# - write an albumentations 2.x pipeline with the current API, and know the silent trap of
#   the 1.x argument names;
# - implement cutout, mixup, RICAP and Patch Gaussian on whole batches;
# - build a network that meets a structural budget and prove it with `evakit check`.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%

import albumentations as A
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn
from torchvision.transforms import v2

from evakit import augment, check, data, models, recipes, records, rf, viz

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
fig = viz.image_grid(test_set.images[first], [test_set.classes[c] for c in range(10)], cols=10,
                     size=1.2, suptitle="one test image per class")

# %% [markdown]
# Ten classes at 32×32 means little detail per object: a cat is a few hundred pixels. The
# network has to combine evidence from most of the image, so the receptive field matters as
# much as on MNIST — and the image is bigger (32 against 28) while the objects fill it.
#
# ## 2. Dilated convolutions: a wider view for the same weights
#
# A 3×3 kernel with dilation $d$ samples its nine inputs $d$ pixels apart: it *covers*
# $2d+1$ pixels per side but still has nine weights. Stacked, dilations grow the receptive
# field quickly without pooling, which is why segmentation networks (DeepLab, WaveNet in 1-D)
# use them: the map keeps its resolution.

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
    display(Markdown(f"**{name}** — {models.count_parameters(net):,} parameters"))
    display(table)
rf_plain = rf.receptive_field(plain, (8, 32, 32))
rf_dilated = rf.receptive_field(dilated, (8, 32, 32))
assert models.count_parameters(plain) == models.count_parameters(dilated)
assert (rf_plain, rf_dilated) == (7, 15)

# %% [markdown]
# Same parameters, receptive field 15 instead of 7. The price: a dilated kernel skips pixels,
# and stacking the same dilation leaves a regular grid of inputs that never meet (the
# "gridding" artefact), which is why dilations are mixed (1, 2, 4) rather than repeated.
#
# On a real image, a dilated edge kernel responds to edges at a coarser scale:

# %%
photo = torch.tensor(skimage.color.rgb2gray(skimage.data.astronaut()), dtype=torch.float32)
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
assert n_full == 9 * c_in * c_out and n_sep == 9 * c_in + c_in * c_out
x = torch.randn(1, c_in, 32, 32)
assert full(x).shape == separable(x).shape
print(f"full 3×3, {c_in}→{c_out}: {n_full:,} weights; depthwise-separable: {n_sep:,} "
      f"({n_full / n_sep:.1f}× fewer)")

# %% [markdown]
# The same split also cuts the multiply-adds by that factor. It loses something — the two
# steps cannot express every 3×3×C_in filter — which the network pays back with more layers
# or channels for the same budget.
#
# **Grouped convolutions** are the middle ground (AlexNet split across two GPUs; ResNeXt):
# `groups=g` splits the channels into $g$ groups convolved separately, dividing the weights
# by $g$. Depthwise is the extreme $g = C_{in}$.

# %%
for g in (1, 2, 4, 16):
    conv = nn.Conv2d(c_in, c_out, 3, groups=g, bias=False)
    print(f"groups={g:>2}: {models.count_parameters(conv):>5,} weights "
          f"(= 9·{c_in}·{c_out}/{g})")
    assert models.count_parameters(conv) == 9 * c_in * c_out // g

# %% [markdown]
# ## 4. Spatially separable convolutions
#
# A 3×3 kernel that is an outer product of a column and a row (rank 1) can be applied as a
# 3×1 then a 1×3 convolution: 6 weights instead of 9. Sobel is such a kernel. Most learned
# kernels are not rank 1, so a 3×1 + 1×3 pair is a restriction (Inception v3 uses it on 7×7
# kernels, where 14 against 49 is a real saving).

# %%
column, row = torch.tensor([1.0, 2, 1]), torch.tensor([-1.0, 0, 1])
assert torch.equal(torch.outer(column, row), sobel_x[0, 0])
print("singular values of Sobel:", torch.linalg.svdvals(sobel_x[0, 0]).numpy().round(3))
two_step = F.conv2d(F.conv2d(photo[None, None], column.view(1, 1, 3, 1), padding=(1, 0)),
                    row.view(1, 1, 1, 3), padding=(0, 1))
one_step = F.conv2d(photo[None, None], sobel_x, padding=1)
assert torch.allclose(two_step, one_step, atol=1e-5)
print("3×1 then 1×3 equals the 3×3 Sobel on the photo:", True)

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
transposed = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
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
# The assignment's pipeline in the current API — flip, shift/scale/rotate (`Affine`; the old
# `ShiftScaleRotate` is now a wrapper around it) and one 16×16 hole filled with the dataset
# mean — built with `strict=True` so a wrong argument name is an error, not a surprise:

# %%
mean_fill = tuple(round(255 * m) for m in test_set.mean)
pipeline = A.Compose([
    A.HorizontalFlip(p=0.5),
    A.Affine(translate_percent=(-0.0625, 0.0625), scale=(0.9, 1.1), rotate=(-15, 15), p=0.5),
    A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16),
                    hole_width_range=(16, 16), fill=mean_fill, p=0.5),
], strict=True, seed=1)
hwc = test_set.images[first].permute(0, 2, 3, 1).numpy()
views = [pipeline(image=img)["image"] for img in hwc for _ in range(3)]
fig = viz.image_grid(views, [test_set.classes[c] for c in range(10) for _ in range(3)],
                     cols=6, size=1.3, suptitle="albumentations: three draws per image")

# %% [markdown]
# ### The same augmentations on whole batches
#
# albumentations works on one NumPy image at a time, in DataLoader worker processes. For a
# small dataset that fits in memory, `evakit.augment` does the same on a whole batch of
# tensors at once, on the training device — the approach of fast CIFAR-10 training code
# (airbench): no worker processes, one call per batch. `evakit bench cifar` times both.
# Below, eight test images through each batch augmentation (one draw each):

# %%
batch = test_set.images[first[:8]].float() / 255
g = torch.Generator().manual_seed(0)
mean = test_set.mean
rows = {
    "original": batch,
    "crop (pad 4)": augment.random_crop(4)(batch, g),
    "flip": augment.random_flip()(batch, g),
    "affine": augment.random_affine(degrees=15, shift=0.0625, scale=0.1, fill=mean)(batch, g),
    "cutout 16, mean": augment.cutout(16, fill=mean)(batch, g),
    "Patch Gaussian": augment.patch_gaussian(16, 0.8)(batch, g),
}
fig, axes = plt.subplots(len(rows), 8, figsize=(11, 1.45 * len(rows)))
for r, (name, imgs) in enumerate(rows.items()):
    for c in range(8):
        axes[r, c].imshow(viz.to_hwc(imgs[c]))
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
fig.tight_layout()

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
labels = test_set.labels[first[:8]]
mixed, mix_labels, mix_w = augment.mixup(batch, labels, 1.0, torch.Generator().manual_seed(3))
tiled, ricap_labels, ricap_w = augment.ricap(batch, labels, 0.3, torch.Generator().manual_seed(4))
names = test_set.classes
fig = viz.image_grid(
    list(mixed[:4]) + list(tiled[:4]),
    [f"{mix_w[0]:.2f} {names[a]}\n+ {mix_w[1]:.2f} {names[b]}"
     for a, b in zip(mix_labels[0][:4], mix_labels[1][:4], strict=True)]
    + ["\n".join(f"{w:.2f} {names[lab[i]]}" for lab, w in zip(ricap_labels, ricap_w, strict=True)
                 if w > 0)[:60] for i in range(4)],
    cols=4, size=2.2, suptitle="mixup (top) and RICAP (bottom), with the label weights")
logits = torch.zeros(8, 10)
assert torch.isclose(augment.mixed_loss(logits, mix_labels, mix_w), torch.tensor(np.log(10.0),
                                                                                   dtype=torch.float32))

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
fig = viz.image_grid([randaugment(img) for img in test_set.images[first[:8]]],
                     [names[c] for c in range(8)], cols=8, size=1.3,
                     suptitle="torchvision RandAugment(N=2, M=9)")

# %% [markdown]
# ## 7. The assignment: C1 C2 C3 C4 without max pooling
#
# **The task.** A CIFAR-10 network of four blocks C1 C2 C3 C4 and an output, with
# - no max pooling: downsample with stride-2 convolutions (or dilated ones — the bonus);
# - one depthwise-separable and one dilated convolution;
# - global average pooling, then the classifier;
# - a total receptive field above 44 and fewer than 200 000 parameters;
# - flip, shift/scale/rotate and a 16×16 cutout filled with the dataset mean;
# - a target of 85 % test accuracy.
#
# **The solution** is `s06/cifar-net` (see `evakit.models.CifarNet`): each of C1–C3 ends in a
# stride-2 3×3 convolution, C2 opens with a dilation-2 convolution and C3 with a depthwise-
# separable one, C4 works at 4×4, then GAP and a 1×1 convolution to ten classes.

# %%
net = models.create("s06/cifar-net")
table = rf.summary(net, (3, 32, 32))
display(table)
block_rf = {block: max(r for name, r in zip(table.column("layer"), table.column("RF"), strict=True)
                       if str(name).startswith(block) and r is not None)
            for block in ("c1", "c2", "c3", "c4")}
print("receptive field at the end of each block:", block_rf)
assert block_rf["c2"] <= 44 < block_rf["c3"]

# %%
report = check.grade("s06", model=net)
display(report)
assert report.passed

# %% [markdown]
# The receptive field passes 44 in C3 already; the strided layers do most of the work,
# doubling the jump each time, and the dilated layer adds as much as two plain ones.
#
# **Training.** The recipe `s06/cifar-net` trains 40 epochs with SGD with
# momentum 0.9, one-cycle LR up to 0.05 and weight decay 5e-4, with the batch versions of the
# assignment's augmentations (flip, affine, cutout 16 with the mean). In FAST mode the cell
# below trains a couple of epochs on a slice — enough to show the code runs, not a result.

# %%
r6 = recipes.get("s06/cifar-net")
assert (r6.epochs, r6.momentum, r6.scheduler, r6.lr, r6.weight_decay, r6.cutout) == (
    40, 0.9, "onecycle", 0.05, 5e-4, 16), "the paragraph above describes this recipe"
live = recipes.run("s06/cifar-net", epochs=2 if S.fast else None,
                   limit=1000 if S.fast else None, verbose=True)
print(("FAST smoke run (not a result): " if S.fast else "full run: ")
      + f"test accuracy {live.history.test_acc[-1]:.2f} % after {len(live.history)} epochs")
if S.fast:
    fig = viz.curves({"FAST smoke run": live.history.to_dict()})

# %%
display(Markdown(records.results_or_missing("s06/cifar-net")))

# %% [markdown]
# ## Exercises
#
# 1. A stack of four 3×3 convolutions with dilations 1, 2, 4, 8 (stride 1): what is its
#    receptive field? Check with `rf.summary`.
# 2. How many weights does a depthwise-separable convolution from 64 to 128 channels have,
#    and how many does a full 3×3 convolution?
# 3. Why does a 16×16 cutout on a 32×32 image sometimes hide less than a quarter of it?
# 4. mixup with $\alpha \to 0$: what does $\mathrm{Beta}(\alpha, \alpha)$ concentrate on, and
#    what does that do to the augmentation?
#
# ```{admonition} Answers
# :class: dropdown
# 1. $1 + 2(1 + 2 + 4 + 8) = 31$.
# 2. $9 \cdot 64 + 64 \cdot 128 = 8\,768$ against $9 \cdot 64 \cdot 128 = 73\,728$ — 8.4×
#    fewer.
# 3. The square's centre is uniform over the whole image (as in the paper), so near a border
#    part of the square falls outside.
# 4. On 0 and 1: $\lambda$ is almost always near 0 or 1, so most "mixed" images are one
#    image — mixup fades away.
# ```

# %%
stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=d, dilation=d) for d in (1, 2, 4, 8)])
assert rf.receptive_field(stack, (1, 64, 64)) == 31
assert models.count_parameters(models.DepthwiseSeparable(64, 128)) == 8768

# %% [markdown]
# ## Summary
#
# - Dilation widens a kernel's view without weights; mixed dilations avoid gridding.
# - Depthwise-separable convolutions cost $9C_{in} + C_{in}C_{out}$ instead of
#   $9C_{in}C_{out}$; grouped convolutions sit between.
# - Transposed convolutions leave a checkerboard when the kernel does not divide evenly by
#   the stride; pixel shuffle does not.
# - albumentations 2.x renamed arguments: write `num_holes_range`, `hole_height_range`,
#   `hole_width_range`, `fill`, and build pipelines with `strict=True`.
# - Cutout, Patch Gaussian, mixup and RICAP run on whole batches in `evakit.augment`.
# - The assignment network meets every structural constraint, checked by `evakit check s06`.
#
# ## References
#
# - Yu & Koltun, *Multi-Scale Context Aggregation by Dilated Convolutions*, ICLR 2016.
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
