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
# # Session 2 — First neural networks
#
# Session 1 built networks from convolutions and pooling. This session steps back to the neuron
# and the fully connected layer, and asks what convolutions do better. We look inside trained
# networks at their first-layer kernels of different sizes, watch strided and transposed
# convolutions change the resolution (and leave a checkerboard), compare two ways of arranging
# channels, and study the activation functions that make depth worth having.
#
# **Objectives.** After this session you can
# - explain what a fully connected layer loses that a convolution keeps, and show it;
# - describe what first-layer kernels of 3 × 3 to 11 × 11 learn on MNIST;
# - compute the output of strided and transposed convolutions and explain the checkerboard;
# - count parameters of squeeze-expand and pyramid networks;
# - plot common activations and their gradients, and show why a linear activation collapses a
#   deep network into one layer.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from evakit import data, models, records, rf, runner, viz
from evakit.table import Table

# %% [markdown]
# ## 1. Neurons and fully connected layers
#
# A neuron computes a weighted sum of its inputs plus a bias, then applies a non-linearity:
# $a = \sigma(\mathbf{w}^\top \mathbf{x} + b)$. A **fully connected** (linear) layer is many
# neurons reading the same inputs: $\mathbf{a} = \sigma(W\mathbf{x} + \mathbf{b})$. To feed it an
# image we flatten the image into a vector — and with that, the layer no longer knows which
# pixels are neighbours.
#
# A two-input, two-hidden, two-output network small enough to compute by hand is in
# {download}`this workbook <../book/downloads/feedforward.xlsx>` (written by
# `evakit.sheets.feedforward_workbook`): every cell of its forward pass — $h$, $\sigma(h)$,
# $o$, $\sigma(o)$ and the error — is a live formula; change an input or a weight and follow it
# through. Session 3 extends it with backpropagation.
#
# One experiment makes the loss of neighbourhoods concrete: shuffle the pixels of every image
# with one fixed permutation. To a person the digits become noise. To a fully connected network
# nothing has changed: it learns just as well.

# %%
train_set, test_set = data.load("mnist", "train"), data.load("mnist", "test")
permutation = torch.randperm(28 * 28, generator=torch.Generator().manual_seed(0))


def scrambled(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)[:, permutation].reshape(images.shape)


def train_and_test(model: nn.Module, train_images, test_images, epochs: int = 3) -> float:
    """A plain loop (session 2.5 explains each line); returns test accuracy in %."""
    x = (train_images.float() / 255 - 0.1307) / 0.3081
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(64):
            loss = F.cross_entropy(model(x[idx]), train_set.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        test_x = (test_images.float() / 255 - 0.1307) / 0.3081
        return (model(test_x).argmax(1) == test_set.labels).float().mean().item() * 100


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


results = []
for name, make in (("fully connected", mlp), ("convolutional", small_cnn)):
    torch.manual_seed(0)
    normal = train_and_test(make(), train_set.images, test_set.images)
    torch.manual_seed(0)
    shuffled = train_and_test(make(), scrambled(train_set.images), scrambled(test_set.images))
    results.append([name, models.count_parameters(make()), round(normal, 2), round(shuffled, 2)])
viz.image_grid(list(test_set.images[:4]) + list(scrambled(test_set.images[:4])),
               ["original"] * 4 + ["pixels permuted"] * 4, cols=8);
Table(["network", "parameters", "test acc %, original", "test acc %, permuted pixels"], results,
         f"3 epochs on {len(train_set):,} training images ({'FAST slice' if S.fast else 'full MNIST'})")

# %% [markdown]
# The fully connected network scores about the same on permuted pixels: it never used the
# arrangement. The convolutional network relies on it — its 3 × 3 kernels look at
# neighbourhoods, and once neighbours are scattered its accuracy drops. That reliance is the
# *inductive bias* that makes convolutions efficient on images: the same small kernel is
# reused at every position, so a stroke detector learned in one place works everywhere, with a
# fraction of the parameters of a dense layer.
#
# ## 2. What do trained kernels look like?
#
# `s02/kernel-K` trains the same small network with a first layer of 16 kernels of size
# K × K, for K = 3, 5, 7 and 11. Here each is trained (FAST mode: on the small slice; full mode:
# the whole recipe) and its first-layer kernels drawn (red positive, blue negative):

# %%
kernel_sizes = (3, 5, 7, 11)
trained = {}
for k in kernel_sizes:
    run = runner.run(f"s02/kernel-{k}", verbose=False)
    trained[k] = run
    print(f"kernel {k}×{k}: test accuracy {run.history.test_acc[-1]:.2f}% ({run.label})")

# %%
for k in kernel_sizes:
    viz.kernel_grid(trained[k].model.first.weight, cols=8, size=1.2,
                    title=f"the 16 first-layer kernels, {k}×{k}")

# %% [markdown]
# The 3 × 3 kernels are small edge and blob detectors. Larger kernels have room for oriented
# strokes and pieces of curves: several 7 × 7 and 11 × 11 kernels look like short bars or arcs,
# pieces of digits. But a single 11 × 11 kernel costs 121 weights where a stack of five 3 × 3
# layers (same RF of 11) costs 45 per channel pair and adds four non-linearities: modern networks
# prefer stacks of 3 × 3. The recorded full runs of the four networks:

# %%
records.overview([f"s02/kernel-{k}" for k in kernel_sizes])

# %% [markdown]
# ## 3. Strided and transposed convolutions
#
# A **strided** convolution skips positions: stride 2 halves the output, like pooling but
# learned. A **transposed** convolution goes the other way: each input pixel *paints* a copy of
# the kernel, scaled by its value, into the output, with the copies placed `stride` pixels apart
# and summed where they overlap. It upsamples (decoders, segmentation, GANs).

# %%
x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
ones3 = torch.ones(1, 1, 3, 3)
strided = F.conv2d(x, ones3, stride=2, padding=1)
up = F.conv_transpose2d(torch.ones(1, 1, 4, 4), ones3, stride=2)
for name, t, formula in [("conv 3×3, stride 2, pad 1", strided, rf.conv_output_size(4, 3, 2, 1)),
                         ("transposed conv 3×3, stride 2", up, (4 - 1) * 2 + 3)]:
    assert t.shape[-1] == formula
    print(f"{name}: 4×4 → {t.shape[-1]}×{t.shape[-1]}")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
viz.matrix(x[0, 0], ax=axes[0], fmt="{:.0f}", title="input 4×4")
viz.matrix(strided[0, 0], ax=axes[1], fmt="{:.0f}", cmap="Greens", title="strided conv → 2×2")
viz.matrix(up[0, 0], ax=axes[2], fmt="{:.0f}", cmap="Oranges", title="transposed conv of ones → 9×9");

# %% [markdown]
# The transposed convolution of an all-ones input should be flat, but it is not: where two or
# four painted kernels overlap the output is 2 or 4, elsewhere 1. Because the 3 × 3 kernel is
# not a multiple of the stride 2, the overlap is uneven, and a regular grid appears — the
# **checkerboard artefact** of Odena, Dumoulin & Olah. On an image, with a random (untrained)
# kernel, upsampling a digit twice shows it; resizing first and then convolving does not:

# %%
digit = (test_set.images[:1].float() / 255)
g = torch.Generator().manual_seed(3)
k_up = torch.rand(1, 1, 3, 3, generator=g)
checker = F.conv_transpose2d(F.conv_transpose2d(digit, k_up, stride=2), k_up, stride=2)
resized = F.interpolate(digit, scale_factor=4, mode="nearest")
smooth = F.conv2d(resized, k_up, padding=1)
viz.image_grid([digit[0, 0], checker[0, 0], smooth[0, 0]],
               ["digit 28×28", "2 × transposed conv (stride 2)", "resize ×4 then conv"],
               cols=3, size=3.0, cmap="magma");

# %% [markdown]
# ## 4. Arranging channels: squeeze-expand versus pyramid
#
# Two ways to spend a channel budget over the same seven 3 × 3 convolutions. A **pyramid**
# keeps growing the channels with depth (16 → 32 → … → 512). A **squeeze-expand** network
# grows them within a block, then *squeezes* back with a cheap 1 × 1 convolution and expands
# again, so the widest layers never meet each other. Built for MNIST, same depth:

# %%
def pyramid() -> nn.Sequential:
    return nn.Sequential(
        models.conv_block(1, 16), models.conv_block(16, 32), models.conv_block(32, 64),
        nn.MaxPool2d(2), models.conv_block(64, 128), models.conv_block(128, 256),
        models.conv_block(256, 512), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def squeeze_expand() -> nn.Sequential:
    return nn.Sequential(
        models.conv_block(1, 16), models.conv_block(16, 32), models.conv_block(32, 64),
        nn.MaxPool2d(2), models.conv_block(64, 16, 1), models.conv_block(16, 32),
        models.conv_block(32, 64), models.conv_block(64, 128), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(128, 10))


comparison, tables = [], {}
for name, make in (("pyramid", pyramid), ("squeeze-expand", squeeze_expand)):
    t = tables[name] = rf.summary(make(), (1, 28, 28))
    convs = [row for row in t.rows[1:-1] if row[1] == "Conv2d"]
    comparison.append([name, " → ".join(str(row[6][0]) for row in convs), convs[-1][8],
                       f"{t.rows[-1][-1]:,}", f"{max(row[9] for row in convs):,}"])
Table(["network", "conv channels", "RF of last conv", "parameters", "largest layer"],
         comparison)

# %% [markdown]
# Both see the same receptive field — the 1 × 1 squeeze adds none — but the
# pyramid's last convolutions (256 → 512 channels alone is 3·3·256·512 weights) dominate its
# count. Squeezing before expanding again buys the same depth for a fraction of the
# parameters; the price is a narrower representation, which the next sessions learn to
# balance.
#
# ## 5. Activation functions and their gradients
#
# Without a non-linearity between them, layers collapse into one (next section). Which
# non-linearity matters for how gradients flow: a function whose slope is near zero over a wide
# range (sigmoid, tanh far from 0) passes back tiny gradients — *vanishing gradients*. Each
# function and its derivative, the derivative computed by autograd:

# %%
activations = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "ReLU": F.relu,
    "LeakyReLU": lambda z: F.leaky_relu(z, 0.1), "PReLU (a=0.25)": nn.PReLU(init=0.25),
    "ELU": F.elu, "SELU": F.selu, "GELU": F.gelu, "SiLU": F.silu,
}
z = torch.linspace(-4, 4, 401, requires_grad=True)
fig, axes = plt.subplots(3, 3, figsize=(12, 9), sharex=True)
for ax, (name, f) in zip(axes.flat, activations.items()):
    y = f(z)
    (grad,) = torch.autograd.grad(y.sum(), z)
    ax.plot(z.detach(), y.detach(), label="f(z)")
    ax.plot(z.detach(), grad, "--", label="f'(z)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(f"{name}   max f' = {grad.max():.2f}")
    ax.grid(alpha=0.3)
axes[0, 0].legend()
fig.tight_layout()

# %% [markdown]
# The sigmoid's slope is at most 0.25: ten sigmoid layers can shrink a gradient by
# $0.25^{10} \approx 10^{-6}$. ReLU passes a gradient of exactly 1 for positive inputs and
# costs one comparison, which is why it became the default; its flaw is a zero gradient for
# negative inputs ("dead" units), which LeakyReLU, PReLU (a learned slope), ELU and SELU avoid.
# GELU and SiLU are smooth ReLUs used in transformers and modern CNNs.
#
# ## 6. Why a linear activation collapses layers
#
# Two linear layers with no non-linearity between them compute
# $W_2(W_1\mathbf{x} + \mathbf{b}_1) + \mathbf{b}_2 = (W_2W_1)\mathbf{x} + (W_2\mathbf{b}_1 + \mathbf{b}_2)$:
# one linear layer. However many we stack, the network can only draw straight decision
# boundaries. Numerically, for a stack of five:

# %%
torch.manual_seed(0)
deep_linear = nn.Sequential(*[nn.Linear(784 if i == 0 else 64, 64) for i in range(4)], nn.Linear(64, 10))
W, b = torch.eye(784), torch.zeros(784)
for layer in deep_linear:
    W, b = layer.weight @ W, layer.weight @ b + layer.bias
collapsed = nn.Linear(784, 10)
with torch.no_grad():
    collapsed.weight.copy_(W)
    collapsed.bias.copy_(b)
inputs = (test_set.images[:256].float() / 255).flatten(1)
gap = (deep_linear(inputs) - collapsed(inputs)).abs().max().item()
print(f"5 stacked linear layers ({models.count_parameters(deep_linear):,} parameters) vs one "
      f"({models.count_parameters(collapsed):,}): largest difference in outputs {gap:.1e}")
assert gap < 1e-4

# %% [markdown]
# The five-layer network and the single layer give the same outputs up to floating-point
# rounding. With a ReLU between the layers no such collapse exists — that is what buys depth
# its power.
#
# ## Exercises
#
# 1. How many parameters does a fully connected layer from a 28 × 28 image to 128 units have? And
#    a 3 × 3 convolution from 1 to 128 channels?
# 2. What size is the output of a transposed convolution with kernel 4, stride 2, padding 1 on
#    a 7 × 7 input? Does it leave a checkerboard on a constant input?
# 3. What is the largest slope of tanh, and where?
#
# ```{admonition} Answers
# :class: dropdown
# Computed below. (1) 784·128 + 128 = 100 480 against 1·128·9 + 128 = 1 280. (2)
# (7 − 1)·2 − 2·1 + 4 = 14; kernel 4 is a multiple of stride 2, so every interior output pixel
# receives the same number of overlapping copies: flat inside. (3) 1, at z = 0.
# ```

# %%
print("1:", models.count_parameters(nn.Linear(784, 128)), "vs", models.count_parameters(nn.Conv2d(1, 128, 3)))
flat = F.conv_transpose2d(torch.ones(1, 1, 7, 7), torch.ones(1, 1, 4, 4), stride=2, padding=1)
print("2:", tuple(flat.shape[-2:]), "interior values:", sorted(set(flat[0, 0, 1:-1, 1:-1].flatten().tolist())))
zz = torch.linspace(-3, 3, 601, requires_grad=True)
(g_tanh,) = torch.autograd.grad(torch.tanh(zz).sum(), zz)
print("3:", round(g_tanh.max().item(), 4), "at z =", round(zz[g_tanh.argmax()].item(), 3))

# %% [markdown]
# ## Summary
#
# - Flattening discards which pixels are neighbours: a dense network learns permuted digits as
#   well as real ones; a CNN relies on locality and weight sharing.
# - First-layer kernels learn edges and blobs (3 × 3) up to stroke pieces (11 × 11); stacks of
#   3 × 3 buy the same RF more cheaply.
# - Stride shrinks, transposed convolution grows; a kernel that is not a multiple of the stride
#   leaves a checkerboard.
# - Channel arrangement sets the parameter budget: spend channels where maps are small.
# - Non-linearities keep layers from collapsing; their gradients decide how well deep stacks
#   train.
#
# ## References
#
# - A. Odena, V. Dumoulin, C. Olah, *Deconvolution and checkerboard artifacts*, Distill (2016).
# - M. D. Zeiler, R. Fergus, *Visualizing and understanding convolutional networks*, ECCV (2014).
# - V. Nair, G. E. Hinton, *Rectified linear units improve restricted Boltzmann machines*, ICML (2010).
# - K. He, X. Zhang, S. Ren, J. Sun, *Delving deep into rectifiers* (PReLU), ICCV (2015).
# - D.-A. Clevert, T. Unterthiner, S. Hochreiter, *Fast and accurate deep network learning by
#   exponential linear units (ELUs)*, ICLR (2016).
# - G. Klambauer et al., *Self-normalizing neural networks* (SELU), NeurIPS (2017).
# - D. Hendrycks, K. Gimpel, *Gaussian error linear units (GELUs)*, arXiv:1606.08415.
# - F. N. Iandola et al., *SqueezeNet*, arXiv:1602.07360 (2016) — squeeze and expand.
