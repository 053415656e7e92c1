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
# # Session 8 — ResNets, and receptive fields beyond the image
#
# Between 2014 and 2016 three ideas made networks deep: **VGG** showed that stacks of 3×3
# convolutions beat large kernels; **Inception** ran several kernel sizes side by side and
# let 1×1 convolutions pay for them; **ResNet** added the input of a block to its output, so
# that a hundred layers train as easily as ten. This session builds each idea, measures the
# receptive fields of the real networks — far larger than their input images — and ends with
# the nine-layer residual network that trains CIFAR-10 to 94 % in 24 epochs with a one-cycle
# schedule.
#
# **Objectives.** After this session you can
# - explain why two 3×3 convolutions replace a 5×5, and what Inception's 1×1 reductions buy;
# - write a residual block (v1 and pre-activation v2) and a bottleneck, and count their
#   parameters;
# - read the receptive field of VGG and ResNet from an `evakit.rf` table, and explain why it
#   exceeds the image;
# - lay out a one-cycle schedule from an LR range test;
# - build the assignment's custom ResNet and check it with `evakit check s08`.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import math
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision
from IPython.display import Markdown, display
from torch import nn

from evakit import check, models, recipes, records, rf, runner, train, viz
from evakit.table import Table

# %% [markdown]
# ## 1. VGG: depth from small kernels
#
# Two stacked 3×3 convolutions see 5×5 pixels, three see 7×7 — with $2\cdot 9C^2$ and
# $3\cdot 9C^2$ weights against $25C^2$ and $49C^2$, and a non-linearity between each pair
# (Simonyan & Zisserman, 2015). VGG-16 is thirteen 3×3 convolutions in five blocks, each
# closed by max pooling, then three fully connected layers.

# %%
C = 64
for n, k in ((2, 5), (3, 7)):
    stacked = sum(models.count_parameters(nn.Conv2d(C, C, 3, bias=False)) for _ in range(n))
    single = models.count_parameters(nn.Conv2d(C, C, k, bias=False))
    print(f"{n} × 3×3 (RF {2 * n + 1}): {stacked:,} weights   one {k}×{k}: {single:,} "
          f"({single / stacked:.2f}×)")

# %%
vgg = torchvision.models.vgg16(weights=None)
vgg_table = rf.summary(vgg.features, (3, 224, 224))
display(vgg_table)


def last_conv_rf(table: Table) -> int:
    """The receptive field of the last convolution in an evakit.rf table."""
    return [r for t, r in zip(table.column("type"), table.column("RF"), strict=True)
            if t == "Conv2d"][-1]


print(f"VGG-16, 224×224 input: last convolution RF {last_conv_rf(vgg_table)}, after the last "
      f"max pool {rf.receptive_field(vgg.features, (3, 224, 224))}; "
      f"{models.count_parameters(vgg):,} parameters in the whole network")

# %% [markdown]
# The window of a unit grows by $(k-1)\times$jump at every layer, and each pooling doubles
# the jump, so the late layers grow fast: the last block's three convolutions add 32 pixels
# each. Where a window reaches past the border it sees padding — zeros — and this is normal:
# the receptive field is a property of the architecture, not of the image.
#
# ## 2. Inception: several kernel sizes, paid for by 1×1 convolutions
#
# An object can fill the image or a corner of it. Inception (Szegedy et al., 2015) does not
# choose a kernel size: each block runs 1×1, 3×3 and 5×5 convolutions and a pooling branch in
# parallel and concatenates their channels, letting training decide which scale matters. On
# its own that is expensive, so the 3×3 and 5×5 branches first shrink the channels with a
# 1×1 convolution. Here is GoogLeNet's block "3a" (192 channels in, 256 out) both ways:

# %%
class InceptionBlock(nn.Module):
    """GoogLeNet's block: 1×1 | 1×1→3×3 | 1×1→5×5 | 3×3 max pool→1×1, concatenated."""

    def __init__(self, c_in: int, c1: int, c3: tuple[int, int], c5: tuple[int, int],
                 pool: int, reduce: bool = True) -> None:
        super().__init__()

        def conv(a: int, b: int, k: int) -> nn.Conv2d:
            return nn.Conv2d(a, b, k, padding=k // 2)

        def branch(out: tuple[int, int], k: int) -> nn.Module:
            return (nn.Sequential(conv(c_in, out[0], 1), nn.ReLU(), conv(out[0], out[1], k))
                    if reduce else conv(c_in, out[1], k))

        self.b1 = conv(c_in, c1, 1)
        self.b3, self.b5 = branch(c3, 3), branch(c5, 5)
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(c_in, pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


block_3a = dict(c_in=192, c1=64, c3=(96, 128), c5=(16, 32), pool=32)
with_reduction = InceptionBlock(**block_3a)
without = InceptionBlock(**block_3a, reduce=False)
x = torch.randn(1, 192, 28, 28)
assert with_reduction(x).shape == without(x).shape == (1, 256, 28, 28)
n_with, n_without = (models.count_parameters(m) for m in (with_reduction, without))
print(f"inception 3a: {n_with:,} parameters with 1×1 reductions, {n_without:,} without "
      f"({n_without / n_with:.1f}×)")

# %% [markdown]
# **Auxiliary losses.** GoogLeNet is 22 layers deep, and in 2014 the gradient reaching its
# early layers was weak. It attached two small classifiers to intermediate blocks and added
# their losses (weighted 0.3) during training — extra gradient for the middle of the network,
# and a regularizer; at test time they are dropped. torchvision's GoogLeNet keeps them:

# %%
googlenet = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
googlenet.train()
outputs = googlenet(torch.randn(2, 3, 224, 224))
print("train mode returns", type(outputs).__name__, "with", [f for f in outputs._fields])
googlenet.eval()
with torch.no_grad():
    print("eval mode returns", tuple(googlenet(torch.randn(2, 3, 224, 224)).shape))

# %% [markdown]
# Batch normalization, a year later, made those crutches unnecessary; residual connections
# removed the problem at its root.
#
# ## 3. ResNet: learn the change, not the whole mapping
#
# He et al. (2016) observed that a deeper plain network trains *worse* than a shallower one —
# not overfitting, optimization. Their fix: a block computes $x + F(x)$, so it only has to
# learn a correction $F$, and the identity — the easiest thing for a deeper network to add —
# costs nothing. The gradient flows back through the $+$ unchanged.
#
# **v1** (the paper): conv–BN–ReLU–conv–BN, add, ReLU. **v2** (He et al., 2016b,
# "pre-activation"): BN–ReLU–conv–BN–ReLU–conv, add — nothing after the addition, so the
# identity path is clean from the first block to the last. When the shape changes (stride 2,
# more channels), the shortcut is a 1×1 convolution.

# %%
class PreActBlock(nn.Module):
    """ResNet v2's basic block: BN → ReLU → conv, twice, added to the (projected) input."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if not isinstance(self.shortcut, nn.Identity) else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


v1, v2 = models.BasicBlock(64, 128, stride=2), PreActBlock(64, 128, stride=2)
x = torch.randn(2, 64, 32, 32)
assert v1(x).shape == v2(x).shape == (2, 128, 16, 16)
print(f"v1 block (evakit.models.BasicBlock): {models.count_parameters(v1):,} parameters; "
      f"v2 pre-activation block: {models.count_parameters(v2):,}")

# %% [markdown]
# **Bottlenecks.** ResNet-50 and deeper replace the two 3×3 convolutions by 1×1 (reduce
# 4×) → 3×3 → 1×1 (expand back): at 256 channels that is far cheaper, so the network can be
# deeper for the same cost.

# %%
basic_256 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1, bias=False),
                          nn.Conv2d(256, 256, 3, padding=1, bias=False))
bottleneck_256 = torchvision.models.resnet.Bottleneck(256, 64)
print(f"two 3×3 at 256 channels: {models.count_parameters(basic_256):,} weights; "
      f"bottleneck 256→64→64→256: {models.count_parameters(bottleneck_256):,} parameters")
assert models.count_parameters(bottleneck_256) < models.count_parameters(basic_256) / 8

# %% [markdown]
# ## 4. Receptive fields of real networks
#
# `evakit.rf` follows every convolution and pooling of a forward pass; residual additions take
# the wider of their two inputs. The last layer's receptive field, for a 224×224 input:

# %%
real = {"VGG-16": vgg.features, "ResNet-18": torchvision.models.resnet18(weights=None),
        "ResNet-34": torchvision.models.resnet34(weights=None),
        "ResNet-50": torchvision.models.resnet50(weights=None)}
rows = []
for name, net in real.items():
    table = rf.summary(net.eval(), (3, 224, 224))
    rows.append([name, f"{models.count_parameters(net):,}", last_conv_rf(table),
                 rf.receptive_field(net, (3, 224, 224))])
display(Table(["network", "parameters", "RF, last conv", "RF, last layer"], rows,
                 "computed by evakit.rf.summary for a 224×224 input"))
assert all(r[2] > 224 for r in rows[1:]) and rows[3][2] == 427

# %% [markdown]
# Every ResNet's last convolution already sees more than its 224×224 input, and global
# average pooling (the "last layer" column) widens the window by the rest of the final map.
# Two caveats make this less odd: the units near the centre of the window get most of the
# weight (the *effective* receptive field is much smaller and roughly Gaussian, Luo et al.
# 2016), and what lies beyond the border is padding. What it does say is that the last layers
# can combine evidence from the whole image — the property every session since session 1 has
# been building towards. (torchvision puts ResNet-50's stride in the 3×3 of each bottleneck,
# which gives 427 at the last convolution; the original Caffe / TF-slim layout strides in the
# first 1×1 and reaches 483 — tests/test_rf.py checks both against Araujo et al.)
#
# ## 5. One-cycle, explained with its schedule
#
# The assignment trains for 24 epochs with a one-cycle policy whose peak is at **epoch 5**:
# the learning rate rises along a cosine from a 25th of its maximum to the maximum, then
# falls for the remaining 19 epochs to almost zero, while momentum moves the other way. The
# rising part is a warm-up that the batch-norm statistics and the weights survive; the long
# high stretch explores and regularizes (large steps cannot settle in sharp minima); the
# descent lets the network settle in the region found. Here is the recipe's schedule as
# PyTorch computes it (batch 512 → 98 steps per epoch on 50 000 images):

# %%
recipe = recipes.get("s08/custom-resnet")
steps_per_epoch = math.ceil(50_000 / recipe.batch_size)
probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr, momentum=0.9)
schedule = torch.optim.lr_scheduler.OneCycleLR(probe, max_lr=recipe.lr, epochs=recipe.epochs,
                                               steps_per_epoch=steps_per_epoch,
                                               pct_start=recipe.pct_start)
lrs = []
for _ in range(recipe.epochs * steps_per_epoch):
    lrs.append(probe.param_groups[0]["lr"])
    probe.step()
    schedule.step()
peak_epoch = int(np.argmax(lrs)) / steps_per_epoch
fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot(np.arange(len(lrs)) / steps_per_epoch, lrs)
ax.axvline(peak_epoch, color="grey", linestyle=":")
ax.set_xlabel("epoch")
ax.set_ylabel("learning rate")
ax.set_title(f"s08/custom-resnet: one-cycle, max {recipe.lr} at epoch {peak_epoch:.1f}")
fig.tight_layout()
assert abs(peak_epoch - 5) < 0.05

# %% [markdown]
# **Choosing the maximum.** The LR range test (session 7) on the custom ResNet gives the
# range where the loss falls fastest; the maximum of the one-cycle is put near the top of
# that range. The recipe uses 0.4 with Nesterov momentum 0.9 and weight decay 5e-4 — the
# values of Page's DAWNBench runs, where the logits are also scaled by 0.125. In full mode the
# sweep below is the real one (200 batches of 512); in FAST mode it is a 16-batch sweep of a
# narrow copy on the slice, which only shows the mechanics.

# %%
assert (recipe.lr, recipe.nesterov, recipe.momentum, recipe.weight_decay) == (0.4, True, 0.9, 5e-4)
sweep_recipe = replace(recipe, model_kwargs={"width": 16}, batch_size=32) if S.fast else recipe
sweep_model = sweep_recipe.build_model()
sweep_batches, _ = recipes.loaders(sweep_recipe)
sweep = train.lr_range_test(sweep_model, sweep_batches,
                            torch.optim.SGD(sweep_model.parameters(), lr=1e-5, momentum=0.9,
                                            nesterov=True, weight_decay=5e-4),
                            start_lr=1e-4, end_lr=10, num_iter=16 if S.fast else 200)
fig = viz.lr_range(sweep)
print(f"steepest descent at lr ≈ {sweep.suggested_lr:.2g}; the recipe's maximum is {recipe.lr}"
      + (" (FAST sweep: illustrative only)" if S.fast else ""))

# %% [markdown]
# ## 6. The assignment: the custom ResNet
#
# **The task.** PrepLayer conv 64 → Layer 1: conv 128, max pool, BN, ReLU, plus a residual
# block of two conv–BN–ReLU at 128 added to it → Layer 2: conv 256, max pool, BN, ReLU →
# Layer 3: like layer 1 at 512 → MaxPool(4) → FC → softmax. 24 epochs, one-cycle with the
# maximum at epoch 5, batch 512, RandomCrop 32 (padding 4) +
# horizontal flip + 8×8 cutout. Target 90 %; the published reference reaches 94 % in 24
# epochs, so the stretch goal is 93.8 %.
#
# **The solution** is `s08/custom-resnet` (see `evakit.models.CustomResNet`):

# %%
net = models.create("s08/custom-resnet")
net_table = rf.summary(net, (3, 32, 32))
display(net_table)


def block_rf(prefix: str) -> int:
    """The largest receptive field among the table rows of one named block."""
    return max(r for name, r in zip(net_table.column("layer"), net_table.column("RF"), strict=True)
               if str(name).startswith(prefix) and r is not None)


print(f"RF after layer 3: {block_rf('layer3')}, after its residual block: {block_rf('res3')}")
assert block_rf("layer3") >= 32 and block_rf("res3") >= 2 * 32        # the prose below
report = check.grade("s08", model=net)
display(report)
convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
print(f"{convs} convolutions, {models.count_parameters(net):,} parameters")
assert report.passed and convs == 8 and round(models.count_parameters(net) / 1e6, 1) == 6.6

# %% [markdown]
# Eight convolutions and one linear layer (hence "ResNet-9" in the DAWNBench write-ups),
# 6.6 M parameters, and a receptive field that covers the whole 32×32 image at layer 3 and
# twice its width after layer 3's residual block. Training, in full mode, is the
# recipe (about 24 × 98 steps; minutes on a GPU, `evakit train s08/custom-resnet --record`);
# in FAST mode a narrow copy runs two epochs on 1 000 images to show the loop works:

# %%
live = runner.run(recipe)
print(f"{live.label}: test accuracy {live.history.test_acc[-1]:.2f} % after "
      f"{len(live.history)} epochs, {live.wall_seconds:.0f} s on {live.device} ({live.precision})")
fig = viz.curves({live.label: live.history})

# %%
display(Markdown(records.results_or_missing("s08/custom-resnet")))

# %% [markdown]
# ## Exercises
#
# 1. Three stacked 3×3 convolutions at 128 channels against one 7×7: how many weights each?
# 2. In a v1 block, where exactly does the ReLU sit relative to the addition, and what does
#    v2 change?
# 3. The custom ResNet's one-cycle peaks at epoch 5 of 24. What is `pct_start`?
#
# ```{admonition} Answers
# :class: dropdown
# 1. $3 \cdot 9 \cdot 128^2 = 442\,368$ against $49 \cdot 128^2 = 802\,816$.
# 2. v1 applies ReLU *after* the addition, so the identity path passes a ReLU in every block;
#    v2 moves BN and ReLU before the convolutions and leaves the sum untouched.
# 3. $5/24 \approx 0.208$ — the fraction of all steps spent rising.
# ```

# %%
assert 3 * models.count_parameters(nn.Conv2d(128, 128, 3, bias=False)) == 442_368
assert models.count_parameters(nn.Conv2d(128, 128, 7, bias=False)) == 802_816
assert recipe.pct_start == 5 / 24

# %% [markdown]
# ## Summary
#
# - Small kernels stacked (VGG) see as far as large ones with fewer weights and more
#   non-linearity.
# - Inception runs several kernel sizes in parallel; 1×1 reductions make it affordable;
#   auxiliary losses once helped deep networks train.
# - Residual blocks learn a correction to the identity; v2 keeps the identity path clean;
#   bottlenecks make depth cheap.
# - Real networks' receptive fields exceed their inputs; the effective RF is smaller.
# - One-cycle: warm up to a maximum chosen by the range test, stay high to explore, anneal.
#
# ## References
#
# - Simonyan & Zisserman, *Very Deep Convolutional Networks* (VGG), ICLR 2015.
# - Szegedy et al., *Going Deeper with Convolutions* (GoogLeNet), CVPR 2015.
# - He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016; *Identity Mappings in
#   Deep Residual Networks* (v2), ECCV 2016.
# - Luo et al., *Understanding the Effective Receptive Field in Deep CNNs*, NeurIPS 2016.
# - Araujo, Norris & Sim, *Computing Receptive Fields of Convolutional Neural Networks*,
#   Distill 2019.
# - Smith & Topin, *Super-Convergence*, 2019.
# - Page, *How to Train Your ResNet* (DAWNBench, Myrtle.ai blog series), 2018.
