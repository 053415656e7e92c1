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
# Session 1 built networks from convolutions and pooling. This session steps back to the
# neuron and the fully connected layer, and asks what convolutions do better. We look
# inside trained networks at their first-layer kernels of different sizes, watch strided
# and transposed convolutions change the resolution (and leave a checkerboard), compare
# two ways of arranging channels, and study the activation functions that make depth
# worth having.
#
# **Objectives.** After this session you can
# - explain what a fully connected layer loses that a convolution keeps, and show it;
# - describe what first-layer kernels of 3 × 3 to 11 × 11 learn on MNIST;
# - compute the output of strided and transposed convolutions and explain the
#   checkerboard;
# - count parameters of squeeze-expand and pyramid networks;
# - plot common activations and their gradients, and show why a linear activation
#   collapses a deep network into one layer.
#
# ```{note}
# **FAST mode.** When `EVAKIT_FAST=1` is set (the book's build and the tests set it),
# MNIST is cut to its first 2,000 training and 1,000 test images: the permuted-pixel
# experiment of section 1 trains its two networks on those 2,000 digits (its table says
# so). The first-layer kernels of section 2 come from the recorded full runs in both
# modes (were their weights missing from `book/records/`, the page would train the four
# networks itself and say so); the rest of the page is the same in both modes.
# ```

# %%
import evakit

S = evakit.setup(seed=1)

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from evakit import data, models, recipes, records, rf, runner, train, viz
from evakit.table import Table

# %% tags=["remove-cell"]
assert data.FAST_SIZES == {"train": 2000, "test": 1000}          # the note above

# %% [markdown]
# ## 1. Neurons and fully connected layers
#
# A neuron computes a weighted sum of its inputs plus a bias, then applies a
# non-linearity: $a = \sigma(\mathbf{w}^\top \mathbf{x} + b)$. A **fully connected**
# (linear) layer is many neurons reading the same inputs: $\mathbf{a} = \sigma(W\mathbf{x}
# + \mathbf{b})$. To feed it an image we flatten the image into a vector — and with that,
# the layer no longer knows which pixels are neighbours.
#
# A two-input, two-hidden, two-output network small enough to compute by hand is in
# {download}`this workbook <../book/downloads/feedforward.xlsx>` (written by
# `evakit.sheets.feedforward_workbook`): every cell of its forward pass — $h$,
# $\sigma(h)$, $o$, $\sigma(o)$ and the error — is a live formula; change an input or a
# weight and follow it through. Session 3 extends it with backpropagation.
#
# One experiment makes the loss of neighbourhoods concrete: shuffle the pixels of every
# image with one fixed permutation. To a person the digits become noise. To a fully
# connected network nothing has changed: it learns just as well.

# %%
train_set, test_set = data.load("mnist", "train"), data.load("mnist", "test")
permutation = torch.randperm(28 * 28, generator=torch.Generator().manual_seed(0))


def scrambled(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)[:, permutation].reshape(images.shape)


def train_and_test(model: nn.Module, train_images, test_images,
                   epochs: int = 3) -> float:
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
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


results = []
for name, make in (("fully connected", mlp), ("convolutional", small_cnn)):
    torch.manual_seed(0)
    normal = train_and_test(make(), train_set.images, test_set.images)
    torch.manual_seed(0)
    shuffled = train_and_test(make(), scrambled(train_set.images),
                              scrambled(test_set.images))
    results.append([name, f"{models.count_parameters(make()):,}", round(normal, 1),
                    round(shuffled, 1)])
viz.image_grid(list(test_set.images[:4]) + list(scrambled(test_set.images[:4])),
               ["original"] * 4 + ["pixels permuted"] * 4, cols=4, size=1.6);
permuted = Table(["network", "parameters", "test acc %, original",
                  "test acc %, permuted"], results,
                 f"3 epochs on {len(train_set):,} training images "
                 f"({'FAST slice' if S.fast else 'full MNIST'})")
permuted

# %% [markdown]
# The fully connected network scores about the same on permuted pixels: it never used the
# arrangement. The convolutional network relies on it — its 3 × 3 kernels look at
# neighbourhoods, and once neighbours are scattered its accuracy drops. That reliance is
# the *inductive bias* that makes convolutions efficient on images: the same small kernel
# is reused at every position, so a stroke detector learned in one place works
# everywhere, with a fraction of the parameters of a dense layer.

# %% tags=["remove-cell"]
dense, conv = permuted[0], permuted[1]                            # the prose above
assert abs(dense["test acc %, original"] - dense["test acc %, permuted"]) < 3
assert conv["test acc %, original"] - conv["test acc %, permuted"] > 5

# %% [markdown]
# ## 2. What do trained kernels look like?
#
# `s02/kernel-K` trains the same small network with a first layer of 16 kernels of size
# K × K, for K = 3, 5, 7 and 11 (5 epochs of Adam on all of MNIST). Below are the
# first-layer kernels of the recorded runs — the trained models kept beside their
# records — each kernel scaled to its own largest weight (red positive, blue negative).

# %%
kernel_sizes = (3, 5, 7, 11)
names = [f"s02/kernel-{k}" for k in kernel_sizes]
recorded = all(records.weights_path(name).is_file() for name in names)
if recorded:
    trained = {k: records.load_model(name) for k, name in zip(kernel_sizes, names)}
    source = "recorded full run"
else:
    trained = {k: runner.run(name, verbose=False).model
               for k, name in zip(kernel_sizes, names)}
    source = "run made on this page"
    display(Markdown(
        "**No recorded weights yet.** `book/records/` does not hold the trained "
        "models of these recipes yet (`evakit train s02/kernel-K --record` keeps "
        "them), so the kernels below come from runs made on this page "
        f"({'FAST: 2,000 images' if S.fast else 'all of MNIST'}) and this page does "
        "not describe them."))


def first_kernels(model: nn.Module) -> torch.Tensor:
    """The first layer's kernels, each scaled to its own largest absolute weight."""
    w = model.first.weight.detach()
    return w / w.abs().amax(dim=(1, 2, 3), keepdim=True)


for k in kernel_sizes:
    viz.kernel_grid(first_kernels(trained[k]), cols=8, size=1.1,
                    title=f"the 16 first-layer kernels, {k}×{k} ({source})");

# %% tags=["remove-input"]
if recorded:
    display(Markdown(
        "The 3 × 3 kernels are too small for shapes: each is a red patch beside a blue "
        "one — a step in brightness at some orientation, an edge detector — or nearly "
        "all one colour, a blob that responds to ink itself. The 11 × 11 kernels have "
        "room for more, and many use it: a bar of one sign flanked by the other (a "
        "stroke detector, at several orientations), a few a curved band (an arc). The "
        "5 × 5 kernels are mostly larger edges, a red half against a blue half; the "
        "7 × 7 ones are the least legible of the four, broad red and blue bands under "
        "heavy speckle. None is as clean as a textbook filter."))

# %% [markdown]
# How much of each kernel is still its random start? The cosine similarity between the
# trained first layer and the same layer at initialisation (same seed) answers it: 0 would
# mean training replaced the start entirely, 1 that it kept the start's pattern.

# %%
def start_of(name: str) -> nn.Module:
    """The recipe's model as initialised (a run seeds, then builds the model)."""
    recipe = recipes.get(name)
    train.seed_everything(recipe.seed)
    return recipe.build_model()


similarity_rows = []
for k, name in zip(kernel_sizes, names):
    before = start_of(name).first.weight.detach().flatten()
    after = trained[k].first.weight.detach().flatten()
    similarity_rows.append([f"{k}×{k}", k * k,
                            round(F.cosine_similarity(before, after, dim=0).item(), 2)])
Table(["kernel", "weights per kernel", "similarity to the random start"],
      similarity_rows, f"First layer, trained vs initial (each {source})")

# %% tags=["remove-input"]
if recorded:
    kept = {row[0]: row[2] for row in similarity_rows}
    display(Markdown(
        f"Five epochs moved every kernel away from its random start, and erased none "
        f"of it. The smaller the kernel, the more of its start it kept: the similarity "
        f"is {kept['3×3']} for 3 × 3, {kept['5×5']} for 5 × 5, {kept['7×7']} for "
        f"7 × 7 and {kept['11×11']} for 11 × 11. In the large kernels, much of the "
        f"speckle around the bars and arcs is that leftover start."))

# %% tags=["remove-cell"]
if recorded:                                                      # the prose above
    values = [row[2] for row in similarity_rows]
    assert all(0.2 < v < 0.9 for v in values) and values == sorted(values, reverse=True)

# %% [markdown]
# A single 11 × 11 kernel costs 121 weights where a stack of five 3 × 3 layers (same RF of
# 11) costs 45 per channel pair and adds four non-linearities: modern networks prefer
# stacks of 3 × 3. The recorded full runs of the four networks:

# %%
records.overview(names).select(["recipe", "params", "epochs", "best test acc %",
                                "final test acc %"])

# %% [markdown]
# ## 3. Strided and transposed convolutions
#
# A **strided** convolution skips positions: stride 2 halves the output, like pooling but
# learned. A **transposed** convolution goes the other way: each input pixel *paints* a
# copy of the kernel, scaled by its value, into the output, with the copies placed
# `stride` pixels apart and summed where they overlap. It upsamples (decoders,
# segmentation, GANs).

# %%
x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
ones3 = torch.ones(1, 1, 3, 3)
strided = F.conv2d(x, ones3, stride=2, padding=1)
up = F.conv_transpose2d(torch.ones(1, 1, 4, 4), ones3, stride=2)
for name, t, formula in [("conv 3×3, stride 2, pad 1", strided,
                          rf.conv_output_size(4, 3, 2, 1)),
                         ("transposed conv 3×3, stride 2", up, (4 - 1) * 2 + 3)]:
    assert t.shape[-1] == formula
    print(f"{name}: 4×4 → {t.shape[-1]}×{t.shape[-1]}")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
viz.matrix(x[0, 0], ax=axes[0], fmt="{:.0f}", title="input 4×4")
viz.matrix(strided[0, 0], ax=axes[1], fmt="{:.0f}", cmap="Greens",
           title="strided conv → 2×2")
viz.matrix(up[0, 0], ax=axes[2], fmt="{:.0f}", cmap="Oranges",
           title="transposed conv of ones → 9×9");

# %% [markdown]
# The transposed convolution of an all-ones input should be flat, but it is not: where
# two or four painted kernels overlap the output is 2 or 4, elsewhere 1. Because the
# 3 × 3 kernel is not a multiple of the stride 2, the overlap is uneven, and a regular
# grid appears — the **checkerboard artefact** of Odena, Dumoulin & Olah. On an image,
# with a random (untrained) kernel, upsampling a digit twice shows it; resizing first and
# then convolving does not:

# %% tags=["remove-cell"]
assert sorted(up.unique().tolist()) == [1, 2, 4]                  # the prose above

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
# Two ways to spend a channel budget on the same six 3 × 3 convolutions and one max pool.
# A **pyramid** keeps growing the channels with depth (16 → 32 → … → 512). A
# **squeeze-expand** network grows them within a block, then *squeezes* back with one
# cheap 1 × 1 convolution and expands again, so the widest layers never meet each other.
# Both built for MNIST:

# %%
def pyramid() -> nn.Sequential:
    return nn.Sequential(
        models.conv_block(1, 16), models.conv_block(16, 32), models.conv_block(32, 64),
        nn.MaxPool2d(2), models.conv_block(64, 128), models.conv_block(128, 256),
        models.conv_block(256, 512), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(512, 10))


def squeeze_expand() -> nn.Sequential:
    return nn.Sequential(
        models.conv_block(1, 16), models.conv_block(16, 32), models.conv_block(32, 64),
        nn.MaxPool2d(2), models.conv_block(64, 16, 1), models.conv_block(16, 32),
        models.conv_block(32, 64), models.conv_block(64, 128), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(128, 10))


comparison = []
for name, make in (("pyramid", pyramid), ("squeeze-expand", squeeze_expand)):
    t = rf.summary(make(), (1, 28, 28))
    convs = t.rows_where(type="Conv2d")
    comparison.append([name, " → ".join(str(c["output"][0]) for c in convs),
                       sum(c["kernel"] == 3 for c in convs),
                       sum(c["kernel"] == 1 for c in convs), convs[-1]["RF"],
                       t[-1]["params"], max(c["params"] for c in convs)])
headers = ["network", "conv channels", "3×3 convs", "1×1 convs", "RF of last conv",
           "parameters", "largest layer"]
arrangements = Table(headers, comparison)
Table(headers, [row[:5] + [f"{row[5]:,}", f"{row[6]:,}"] for row in comparison])

# %% [markdown]
# Both see the same receptive field — the 1 × 1 squeeze adds none — but the pyramid's
# last convolution (256 → 512 channels alone is 3·3·256·512 weights) holds most of its
# parameters. Squeezing before expanding again buys the same receptive field, for one
# extra (1 × 1) layer, with less than a tenth of the parameters; the price is a narrower
# representation, which the next sessions learn to balance.

# %% tags=["remove-cell"]
pyr, sqz = arrangements[0], arrangements[1]                       # the prose above
assert (pyr["3×3 convs"], pyr["1×1 convs"], sqz["3×3 convs"], sqz["1×1 convs"]) == \
    (6, 0, 6, 1)
assert pyr["RF of last conv"] == sqz["RF of last conv"]
assert pyr["largest layer"] > 0.5 * pyr["parameters"]
assert sqz["parameters"] < 0.1 * pyr["parameters"]
assert [sum(isinstance(m, nn.MaxPool2d) for m in make().modules())
        for make in (pyramid, squeeze_expand)] == [1, 1]

# %% [markdown]
# ## 5. Activation functions and their gradients
#
# Without a non-linearity between them, layers collapse into one (next section). Which
# non-linearity matters for how gradients flow: a function whose slope is near zero over
# a wide range (sigmoid, tanh far from 0) passes back tiny gradients — *vanishing
# gradients*. Each function and its derivative, the derivative computed by autograd:

# %%
activations = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "ReLU": F.relu,
    "LeakyReLU": lambda z: F.leaky_relu(z, 0.1), "PReLU (a=0.25)": nn.PReLU(init=0.25),
    "ELU": F.elu, "SELU": F.selu, "GELU": F.gelu, "SiLU": F.silu,
}
z = torch.linspace(-4, 4, 401, requires_grad=True)
slopes = {}
fig, axes = plt.subplots(3, 3, figsize=(12, 9), sharex=True)
for ax, (name, f) in zip(axes.flat, activations.items()):
    y = f(z)
    (grad,) = torch.autograd.grad(y.sum(), z)
    slopes[name] = grad
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
# costs one comparison, which is why it became the default; its flaw is a zero gradient
# for negative inputs ("dead" units). LeakyReLU, PReLU (a learned slope), ELU and SELU
# keep a non-zero gradient there. GELU and SiLU are smooth ReLUs used in transformers and
# modern CNNs.

# %% tags=["remove-cell"]
negative = z.detach() < 0                                         # the prose above
assert abs(slopes["sigmoid"].max().item() - 0.25) < 1e-3
assert (slopes["ReLU"][~negative & (z.detach() > 0)] == 1).all()
assert (slopes["ReLU"][negative] == 0).all()
assert all((slopes[n][negative] > 0).all() for n in ("LeakyReLU", "PReLU (a=0.25)",
                                                       "ELU", "SELU"))

# %% [markdown]
# ## 6. Why a linear activation collapses layers
#
# Two linear layers with no non-linearity between them compute
# $W_2(W_1\mathbf{x} + \mathbf{b}_1) + \mathbf{b}_2 = (W_2W_1)\mathbf{x} +
# (W_2\mathbf{b}_1 + \mathbf{b}_2)$: one linear layer. However many we stack, the network
# can only draw straight decision boundaries. Numerically, for a stack of five:

# %%
torch.manual_seed(0)
deep_linear = nn.Sequential(*[nn.Linear(784 if i == 0 else 64, 64) for i in range(4)],
                            nn.Linear(64, 10))
W, b = torch.eye(784), torch.zeros(784)
for layer in deep_linear:
    W, b = layer.weight @ W, layer.weight @ b + layer.bias
collapsed = nn.Linear(784, 10)
with torch.no_grad():
    collapsed.weight.copy_(W)
    collapsed.bias.copy_(b)
inputs = (test_set.images[:256].float() / 255).flatten(1)
gap = (deep_linear(inputs) - collapsed(inputs)).abs().max().item()
print(f"{len(deep_linear)} stacked linear layers "
      f"({models.count_parameters(deep_linear):,} parameters) vs one "
      f"({models.count_parameters(collapsed):,}): "
      f"largest difference in outputs {gap:.1e}")

# %% tags=["remove-cell"]
assert gap < 1e-4 and len(deep_linear) == 5                       # the prose below

# %% [markdown]
# The five-layer network and the single layer give the same outputs up to floating-point
# rounding. With a ReLU between the layers no such collapse exists — that is what buys
# depth its power.
#
# ## Exercises
#
# 1. How many parameters does a fully connected layer from a 28 × 28 image to 128 units
#    have? And a 3 × 3 convolution from 1 to 128 channels?
# 2. What size is the output of a transposed convolution with kernel 4, stride 2,
#    padding 1 on a 7 × 7 input? Does it leave a checkerboard on a constant input?
# 3. What is the largest slope of tanh, and where?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
flat = F.conv_transpose2d(torch.ones(1, 1, 7, 7), torch.ones(1, 1, 4, 4), stride=2,
                          padding=1)
inside = sorted(set(flat[0, 0, 1:-1, 1:-1].flatten().tolist()))
zz = torch.linspace(-3, 3, 601, requires_grad=True)
(g_tanh,) = torch.autograd.grad(torch.tanh(zz).sum(), zz)
display(Markdown(f"""```{{admonition}} Answers
:class: dropdown
1. 784 · 128 + 128 = {models.count_parameters(nn.Linear(784, 128)):,}, against
   1 · 128 · 9 + 128 = {models.count_parameters(nn.Conv2d(1, 128, 3)):,} for the
   convolution.
2. (7 − 1) · 2 − 2 · 1 + 4 = {flat.shape[-1]}, so {flat.shape[-1]} × {flat.shape[-1]}.
   Kernel 4 is a multiple of stride 2, so every interior output pixel receives the same
   number of overlapping copies: on a constant input of ones every interior value is
   {", ".join(f"{v:g}" for v in inside)} — flat inside.
3. {g_tanh.max().item():.4g}, at z = {round(zz[g_tanh.argmax()].item(), 3):g}
   ($\\tanh'(z) = 1 - \\tanh^2 z$).
```"""))

# %% [markdown]
# ## Summary
#
# - Flattening discards which pixels are neighbours: a dense network learns permuted
#   digits as well as real ones; a CNN relies on locality and weight sharing.
# - Trained first-layer kernels on MNIST range from edge and blob detectors (3 × 3) to
#   stroke pieces — bars, a few arcs (11 × 11) — over what remains of their random
#   start; stacks of 3 × 3 buy the same RF more cheaply.
# - Stride shrinks, transposed convolution grows; a kernel that is not a multiple of the
#   stride leaves a checkerboard.
# - Channel arrangement sets the parameter budget: spend channels where maps are small.
# - Non-linearities keep layers from collapsing; their gradients decide how well deep
#   stacks train.
#
# ## References
#
# - A. Odena, V. Dumoulin, C. Olah, *Deconvolution and checkerboard artifacts*, Distill
#   (2016).
# - M. D. Zeiler, R. Fergus, *Visualizing and understanding convolutional networks*, ECCV
#   (2014).
# - V. Nair, G. E. Hinton, *Rectified linear units improve restricted Boltzmann
#   machines*, ICML (2010).
# - K. He, X. Zhang, S. Ren, J. Sun, *Delving deep into rectifiers* (PReLU), ICCV (2015).
# - D.-A. Clevert, T. Unterthiner, S. Hochreiter, *Fast and accurate deep network learning
#   by exponential linear units (ELUs)*, ICLR (2016).
# - G. Klambauer et al., *Self-normalizing neural networks* (SELU), NeurIPS (2017).
# - D. Hendrycks, K. Gimpel, *Gaussian error linear units (GELUs)*, arXiv:1606.08415.
# - F. N. Iandola et al., *SqueezeNet*, arXiv:1602.07360 (2016) — squeeze and expand.
