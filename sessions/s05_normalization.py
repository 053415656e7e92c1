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
# # Session 5 — Batch normalization and regularization
#
# Session 4 added batch norm and dropout and watched the numbers move. This session opens
# them up. We start with the inputs — min–max and standard normalization, histogram
# equalization, and why zero-centred inputs make gradient descent easier — then write batch
# norm by hand and match PyTorch in training and evaluation, count its parameters, see why
# it makes a convolution's bias useless, train it before and after the ReLU, and compare it
# with group, layer and instance norm by the axes they average over. Dropout, L1/L2
# penalties and weight decay close the session, and the assignment compares four trained
# variants of one network — and asks what a single run of each can tell.
#
# ```{note}
# **FAST mode on this page.** Sections 1–3 and 5–8 do not depend on the mode, except that
# the L1/L2 demonstration of section 7 draws its 300 batches from the MNIST images loaded:
# the first 2,000 in FAST mode, all 60,000 otherwise. With `EVAKIT_FAST=1` (the tests, and
# the build of this book) the before-or-after-ReLU comparison of section 4 trains each order
# for 4 epochs on the first 2,000 training images and scores it on the first 1,000 test
# images: enough to see both train, far too little to rank them. The assignment's results
# are read from its recorded full runs in `book/records/`, whatever the mode. Without
# `EVAKIT_FAST` (in Colab) section 4 trains both orders in full.
# ```
#
# **Objectives.** After this session you can
# - tell min–max from standard normalization, and both from histogram equalization, and
#   explain why centred inputs help;
# - compute batch norm by hand in train and eval mode, including running statistics;
# - say what changes when batch norm comes before or after the ReLU;
# - say which axes BN, GN, LN and IN normalize over, and when each is used;
# - explain what dropout does at train and at test time;
# - show the difference between L1 and L2 penalties, and that weight decay is an L2 penalty;
# - say what one training run per variant can and cannot show.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import copy
import math
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import skimage.exposure
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from evakit import data, models, recipes, records, rf, runner, viz
from evakit.models import conv_block


def say(text: str) -> None:
    """Show prose generated from the results."""
    display(Markdown(text))


# %% [markdown]
# ## 1. Min–max, standard, or equalized?
#
# Two **normalizations** are in common use, and both are affine maps of the pixel values:
# **min–max** scaling, $x \mapsto (x - \min)/(\max - \min)$, puts the values in $[0, 1]$;
# **standard** normalization, $x \mapsto (x - \mu)/\sigma$, gives them mean 0 and standard
# deviation 1. An affine map shifts and scales the histogram but keeps its shape, so every
# relation between pixels survives — the picture itself does not change, only the numbers
# it is written in. **Histogram equalization** is a non-linear remapping that spreads the
# values to fill the range evenly: it boosts contrast for a person, but changes the image's
# statistics in a way a network would have to undo. Networks get normalization;
# equalization is an augmentation at most.

# %%
photo = (255 * skimage.color.rgb2gray(skimage.data.astronaut())).round()   # 0–255
versions = {
    "original (0–255)": photo,
    "min–max: (x − min)/(max − min)": (photo - photo.min())
                                      / (photo.max() - photo.min()),
    "standard: (x − μ)/σ": (photo - photo.mean()) / photo.std(),
    "histogram-equalized": skimage.exposure.equalize_hist(photo),
}
fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
for col, (name, img) in enumerate(versions.items()):
    axes[0, col].imshow(img, cmap="gray")
    axes[0, col].set_title(name, fontsize=10)
    axes[0, col].axis("off")
    axes[1, col].hist(img.ravel(), bins=64, color=f"C{col}")
    axes[1, col].set_title(f"range {img.min():.2f} … {img.max():.2f}\n"
                           f"mean {img.mean():.2f}, std {img.std():.2f}", fontsize=9)
fig.tight_layout()

# %% [markdown]
# The three histograms on the left have the same shape on different axes; the equalized one
# is flattened. Which affine map? Min–max fixes the *range*, but the range is set by two
# pixels: one unusually bright pixel in an image squeezes all the others towards 0.
# Standard normalization uses every pixel's value, fixes the mean and the spread, and is
# what the loss surface of the next section wants. The two are usually combined: MNIST's
# uint8 pixels are divided by 255 (min–max by the format's known range, 0–255), then
# standardized with the training set's mean and std (0.1307, 0.3081 — computed from the
# data, see `evakit.data.STATS` and its test).
#
# ## 2. Why zero-centred inputs help
#
# Take the simplest model, $\hat y = w_1 x_1 + w_2 x_2$, with a squared error. The loss is a
# bowl whose shape is set by the inputs' second moments. If both inputs are large and
# positive (raw pixels in 0–255, say), the bowl is a long, narrow valley: the gradient points
# across it, and gradient descent zig-zags. Centring and scaling the inputs makes it round,
# and the same learning rate walks straight to the minimum.

# %%
g = torch.Generator().manual_seed(0)
raw = torch.rand(200, 2, generator=g) + torch.tensor([3.0, 3.5])
target = raw @ torch.tensor([1.5, -1.0]) + 0.1 * torch.randn(200, generator=g)
centred = (raw - raw.mean(0)) / raw.std(0)
centred_target = target - target.mean()


def loss_surface(x, y, w1, w2):
    pred = w1[..., None] * x[:, 0] + w2[..., None] * x[:, 1]
    return ((pred - y) ** 2).mean(-1)


def descend(x, y, lr, steps=40):
    w, path = torch.zeros(2), [torch.zeros(2)]
    for _ in range(steps):
        w = w - lr * 2 * ((x @ w - y)[:, None] * x).mean(0)
        path.append(w.clone())
    return torch.stack(path)


final_loss = {}
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
cases = (("raw inputs, far from zero", raw, target),
         ("centred and scaled inputs", centred, centred_target))
for ax, (name, x, y) in zip(axes, cases):
    w_best = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    span = 3 * w_best.abs().max() + 1
    w1, w2 = torch.meshgrid(torch.linspace(-span, span, 200),
                            torch.linspace(-span, span, 200), indexing="ij")
    surface = loss_surface(x, y, w1, w2)
    ax.contour(w1.numpy(), w2.numpy(), surface.log().numpy(), levels=25, cmap="viridis")
    hessian_eigs = torch.linalg.eigvalsh(2 * x.T @ x / len(x))
    lr = 1.0 / hessian_eigs.max().item()        # the largest stable-ish step for both
    path = descend(x, y, lr)
    final_loss[name] = loss_surface(x, y, path[-1, 0], path[-1, 1]).item()
    ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), "o-", color="C3", ms=3,
            label=f"40 steps, lr {lr:.2g}: loss {final_loss[name]:.3f}")
    ax.plot(*w_best.numpy(), "k*", ms=12)
    condition = hessian_eigs.max() / hessian_eigs.min()
    ax.set_title(f"{name}\ncondition number {condition:.0f}")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.legend(loc="lower left")
fig.tight_layout()

# %% tags=["remove-cell"]
assert final_loss["centred and scaled inputs"] < final_loss["raw inputs, far from zero"]

# %% [markdown]
# With raw inputs the curvature differs by orders of magnitude between directions (the
# condition number in the title); a learning rate small enough for the steep direction crawls
# along the flat one. Centred inputs give a round bowl and the path goes straight in.
# Batch norm applies the same idea to every layer's inputs.
#
# ## 3. Batch norm by hand
#
# For a batch of feature maps N × C × H × W, batch norm computes, **per channel**, the mean
# and variance over the batch and all positions, normalizes, and then applies a learned
# scale $\gamma_c$ and shift $\beta_c$:
#
# $$ \hat x = \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}, \qquad y = \gamma_c \hat x + \beta_c . $$
#
# In training it also updates running estimates,
# $\mu_\text{run} \leftarrow (1-m)\,\mu_\text{run} + m\,\mu_c$ (momentum $m = 0.1$; the
# variance uses the unbiased estimate), and in evaluation it uses those running estimates
# instead of the batch's.

# %%
def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1,
               eps=1e-5):
    """Batch norm over N, H, W per channel; updates the running stats in training."""
    if training:
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        n = x.numel() / x.shape[1]
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var * n / (n - 1))
    else:
        mean, var = running_mean, running_var
    x_hat = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + eps)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]


torch.manual_seed(0)
bn = nn.BatchNorm2d(6)
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.5, 0.5)
gamma, beta = bn.weight.detach().clone(), bn.bias.detach().clone()
run_mean, run_var = torch.zeros(6), torch.ones(6)
for _ in range(3):                                        # three training batches
    batch = torch.randn(8, 6, 5, 5) * 3 + 2
    ours = batch_norm(batch, gamma, beta, run_mean, run_var, training=True)
    torch.testing.assert_close(ours, bn.train()(batch))
torch.testing.assert_close(run_mean, bn.running_mean)
torch.testing.assert_close(run_var, bn.running_var)
test_batch = torch.randn(4, 6, 5, 5) * 3 + 2
torch.testing.assert_close(
    batch_norm(test_batch, gamma, beta, run_mean, run_var, training=False),
    bn.eval()(test_batch))
print("train mode: batch statistics — match; running mean/var after 3 batches — match;")
print("eval mode: running statistics — match")
print("running mean after 3 batches:", [round(v, 3) for v in bn.running_mean.tolist()])

# %% tags=["remove-cell"]
assert (bn.running_mean < 1).all()          # "still far from the true mean of 2"

# %% [markdown]
# Note how the running mean is still far from the data's true mean of 2 after three batches:
# with momentum 0.1 it needs tens of batches to converge, which is why evaluating a model
# after very few training steps can look worse than its training accuracy suggests.
#
# **How many parameters?** Two learned per channel — $\gamma_c$ and $\beta_c$ — plus two
# running statistics per channel that are *buffers*, saved with the model but not trained.
# And a convolution's bias in front of batch norm is wasted: BN subtracts the channel mean,
# which removes any constant the bias added. That is why our networks use `bias=False`.

# %%
conv_bias = nn.Conv2d(3, 6, 3, bias=True)
conv_nobias = nn.Conv2d(3, 6, 3, bias=False)
with torch.no_grad():
    conv_nobias.weight.copy_(conv_bias.weight)
    conv_bias.bias.uniform_(-5, 5)
bn2 = nn.BatchNorm2d(6).train()
x = torch.randn(16, 3, 10, 10)
torch.testing.assert_close(bn2(conv_bias(x)), bn2(conv_nobias(x)), rtol=1e-4, atol=1e-4)
learned = sum(p.numel() for p in bn2.parameters())
buffers = sum(b.numel() for name, b in bn2.named_buffers() if "running" in name)
print(f"BatchNorm2d(6): {learned} learned parameters (γ, β), {buffers} running "
      "statistics; conv bias before BN changes nothing")

# %% [markdown]
# ## 4. Before or after the ReLU?
#
# Every unit of this course's networks is `evakit.models.conv_block`, and it comes in two
# orders. The MNIST networks of sessions 3–5 put the norm *after* the ReLU — conv → ReLU →
# BN — as the course's drill-down was first built (their records are kept comparable that
# way). The CIFAR networks of sessions 6–8 put it *before* — conv → BN → ReLU, with
# `norm_first=True` — as Ioffe and Szegedy proposed ("we add the BN transform immediately
# before the nonlinearity") and as the ResNet papers, which those networks follow, do.
#
# What the order changes is what each layer sees. **BN before the ReLU** hands the ReLU a
# centred input, so at every position roughly half of the units pass, and the next
# convolution receives non-negative values with many exact zeros. **BN after the ReLU**
# normalizes what the next convolution actually receives: a ReLU's output has a positive
# mean, and BN centres and scales it — the argument of section 2, applied to every layer.
# Either way the network can learn the other's statistics through $\gamma$ and $\beta$ and
# the next layer's weights, and both orders are used in published networks.
#
# Both, trained here: session 5's assignment network (`s05/norm-net`, batch norm) built
# from `conv_block` in either order, each trained with the `s05/bn` recipe — in full, or in
# FAST mode for 4 epochs at batch size 32 on the FAST slice.

# %%
def order_net(norm_first: bool = False) -> nn.Sequential:
    """The s05/norm-net layout with batch norm, every unit in the order asked for."""
    def unit(c_in, c_out, k=3, padding=0):
        return conv_block(c_in, c_out, k, padding=padding, norm="bn",
                          norm_first=norm_first, dropout=0.05)
    return nn.Sequential(unit(1, 8), unit(8, 12), nn.MaxPool2d(2), unit(12, 8, 1),
                         unit(8, 12), unit(12, 16), unit(16, 16),
                         unit(16, 16, padding=1), nn.AdaptiveAvgPool2d(1),
                         nn.Conv2d(16, 10, 1, bias=False), nn.Flatten())


if "s05/order-net" not in models.names():
    models.register("s05/order-net", (1, 28, 28))(order_net)
orders = {"conv → ReLU → BN (MNIST nets)": False, "conv → BN → ReLU (CIFAR nets)": True}
order_runs = {}
for label, norm_first in orders.items():
    recipe = replace(recipes.get("s05/bn"), name="s05/order-net", model="s05/order-net",
                     model_kwargs={"norm_first": norm_first},
                     fast=recipes.Fast(epochs=4, batch_size=32))
    order_runs[label] = runner.run(recipe, verbose=False)
viz.curves({label: r.history for label, r in order_runs.items()});

# %% tags=["remove-cell"]
recorded = models.create("s05/norm-net", norm="bn")                # "the same network"
assert [type(m) for m in order_net().modules()][1:-1] == \
    [type(m) for m in recorded.modules()][2:]
assert models.count_parameters(order_net()) == models.count_parameters(recorded)

# %% [markdown]
# And what the second convolution receives in each — the histogram of its input over a
# batch of test images, from the models just trained:

# %%
def input_of(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``layer`` receives when ``model`` sees ``x`` (eval mode)."""
    seen = []
    handle = layer.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen[0].flatten().cpu()


images, _ = next(iter(order_runs[next(iter(orders))].test_batches))
received = {label: input_of(r.model, r.model[1][0], images)
            for label, r in order_runs.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), sharey=True)
for ax, (label, values) in zip(axes, received.items()):
    ax.hist(values.numpy(), bins=80, color="C2")
    ax.set_yscale("log")
    ax.set_title(f"{label}\nmean {values.mean():.2f}, "
                 f"{100 * (values == 0).float().mean():.0f} % exact zeros", fontsize=10)
    ax.set_xlabel("value entering the second convolution")
fig.tight_layout()

# %% tags=["remove-input"]
acc = {label: r.history.test_acc[-1] for label, r in order_runs.items()}
first, second = orders
run = order_runs[first]
n_test = run.data["test"].size
p_mean = sum(acc.values()) / 200
se_here = 100 * math.sqrt(p_mean * (1 - p_mean) / n_test)
diff = abs(acc[first] - acc[second])
noise = (f"ranks nothing: on {n_test:,} test images one standard error of an accuracy "
         f"near {100 * p_mean:.1f} % is {se_here:.2f} points, so two such accuracies "
         f"differ by chance by about √2 × {se_here:.2f} = {math.sqrt(2) * se_here:.2f}"
         if diff < 2 * math.sqrt(2) * se_here else
         f"is more than the test set's noise ({math.sqrt(2) * se_here:.2f} points for "
         f"the difference of two accuracies on {n_test:,} images), but it comes from "
         f"one seed of each")
zeros = {label: (v == 0).float().mean().item() for label, v in received.items()}
mean_first = received[first].mean().item()
say(f"""After {len(run.history)} epochs on {run.data['train'].size:,} training images
({run.label}), conv → ReLU → BN reaches {acc[first]:.2f} % and conv → BN → ReLU
{acc[second]:.2f} % on {n_test:,} test images: both train. The difference, {diff:.2f}
points, {noise}, and another seed would move each run too (see the end of the
assignment). What differs for certain is what the next layer receives: after ReLU → BN
it takes both signs, with mean {mean_first:.2f}; after BN → ReLU it is non-negative,
{100 * zeros[second]:.0f} % of it exactly 0.""")

# %% tags=["remove-cell"]
assert min(acc.values()) > 90                              # "both train"
assert zeros[second] > 0.2 and received[second].min() >= 0
assert received[first].min().item() < 0 < received[first].max().item()   # "both signs"

# %% [markdown]
# ## 5. Batch, group, layer and instance norm: which axes?
#
# All four compute $(x - \mu)/\sigma$ followed by a per-channel $\gamma, \beta$; they differ in
# *which* values share one $\mu$ and $\sigma$. In each panel below, one outlined block of one
# colour is one set of statistics, for a batch of N = 4 images with C = 8 channels (each
# cell stands for all H × W positions of that image and channel).

# %%
N, C, groups = 4, 8, 4
sets = {
    "batch norm: per channel, over N, H, W": np.tile(np.arange(C), (N, 1)),
    f"group norm ({groups} groups): per image and group":
        np.arange(N)[:, None] * groups + np.arange(C)[None, :] // (C // groups),
    "layer norm: per image, over C, H, W": np.tile(np.arange(N)[:, None], (1, C)),
    "instance norm: per image and channel": np.arange(N * C).reshape(N, C),
}


# %% tags=["remove-input"]
def draw_sets(ax, ids: np.ndarray, colours) -> None:
    """Cells coloured by set, each set outlined in black."""
    rows, cols = ids.shape
    for (r, c), k in np.ndenumerate(ids):
        ax.add_patch(plt.Rectangle((c, r), 1, 1, fc=colours(k), ec="white", lw=1))
        sides = ((0, -1, [(c, c), (r, r + 1)]), (0, 1, [(c + 1, c + 1), (r, r + 1)]),
                 (-1, 0, [(c, c + 1), (r, r)]), (1, 0, [(c, c + 1), (r + 1, r + 1)]))
        for dr, dc, edge in sides:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < rows and 0 <= cc < cols) or ids[rr, cc] != k:
                ax.plot(*edge, color="black", lw=2, solid_capstyle="projecting")
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(cols) + 0.5, range(cols))
    ax.set_yticks(np.arange(rows) + 0.5, range(rows))
    ax.tick_params(length=0)


palettes = {   # one scheme per kind, each set of a panel a colour of its own
    "batch": lambda k: plt.cm.tab10(k % 10),
    "group": lambda k: plt.cm.tab20(k % 20),
    "layer": lambda k: plt.cm.Set2(k),
    "instance": lambda k: plt.cm.hsv((k * 7 % 32) / 32),   # neighbours far apart in hue
}
fig, axes = plt.subplots(1, 4, figsize=(16, 3.0))
for ax, (name, ids) in zip(axes, sets.items()):
    draw_sets(ax, ids, palettes[name.split()[0]])
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("channel")
    ax.set_ylabel("image in batch")
fig.tight_layout()

# %% [markdown]
# Each one checked against PyTorch by computing the statistics over exactly those sets:

# %%
x = torch.randn(N, C, 5, 5)


def normalize_over(x: torch.Tensor, ids: np.ndarray) -> torch.Tensor:
    """Normalize x so that the (image, channel) cells of one id share mean and std."""
    out = torch.empty_like(x)
    for k in np.unique(ids):
        cells = torch.from_numpy(ids == k)
        values = x[cells]                              # (cells, H, W)
        out[cells] = (values - values.mean()) / torch.sqrt(values.var(unbiased=False)
                                                           + 1e-5)
    return out


library = {
    "batch norm: per channel, over N, H, W": nn.BatchNorm2d(C, affine=False).train(),
    f"group norm ({groups} groups): per image and group":
        nn.GroupNorm(groups, C, affine=False),
    "layer norm: per image, over C, H, W": nn.GroupNorm(1, C, affine=False),
    "instance norm: per image and channel": nn.InstanceNorm2d(C),
}
for name, ids in sets.items():
    torch.testing.assert_close(normalize_over(x, ids), library[name](x), rtol=1e-4,
                               atol=1e-4)
print("all four match PyTorch")

# %% [markdown]
# Batch norm needs a batch: its statistics are noisy with 2–4 images and it behaves
# differently in train and eval. Group and layer norm work per image, so they are the same in
# training and inference and indifferent to batch size — transformers use layer norm, and
# detection models trained with small batches use group norm. Instance norm removes each
# channel's contrast per image, which suits style transfer more than classification.
#
# ## 6. Dropout, in training and in evaluation
#
# In training, dropout zeroes each activation with probability $p$ and scales the survivors by
# $1/(1-p)$, so the expected value is unchanged; in evaluation it does nothing.

# %%
drop = nn.Dropout(p=0.25)
ones = torch.ones(10_000)
trained_out = drop.train()(ones)
print(f"train: {(trained_out == 0).float().mean():.3f} zeroed, survivors = "
      f"{trained_out.max():.4f} (1/(1−p) = {1 / 0.75:.4f}), "
      f"mean {trained_out.mean():.3f}")
print("eval: identity →", bool(torch.equal(drop.eval()(ones), ones)))

# %% [markdown]
# ## 7. L1 versus L2 on the weights
#
# An L2 penalty $\lambda \sum w^2$ pulls every weight towards zero in proportion to its size,
# so weights get small but rarely exactly zero. An L1 penalty $\lambda \sum |w|$ pulls with a
# constant force, which drives unhelpful weights all the way to zero: **sparsity**. Shown on a
# linear classifier of MNIST pixels, trained three times with the same data, steps and
# penalty strength:

# %%
mnist = data.load("mnist", "train")
x_all = (mnist.images.float() / 255).flatten(1)
weights = {}
for name, penalty in (("no penalty", lambda w: 0.0), ("L2", lambda w: (w ** 2).sum()),
                      ("L1", lambda w: w.abs().sum())):
    torch.manual_seed(0)
    linear = nn.Linear(784, 10)
    opt = torch.optim.SGD(linear.parameters(), lr=0.1)
    for _ in range(300):                            # 300 steps of 100 images, any mode
        idx = torch.randint(0, len(x_all), (100,))
        loss = (F.cross_entropy(linear(x_all[idx]), mnist.labels[idx])
                + 5e-3 * penalty(linear.weight))
        opt.zero_grad()
        loss.backward()
        opt.step()
    weights[name] = linear.weight.detach()
near_zero = {name: (w.abs() < 1e-3).float().mean().item()
             for name, w in weights.items()}
fig, axes = plt.subplots(2, 3, figsize=(13, 6))
for col, (name, w) in enumerate(weights.items()):
    axes[0, col].hist(w.flatten().numpy(), bins=80)
    axes[0, col].set_title(f"{name}: {100 * near_zero[name]:.0f} % of |w| < 0.001")
    axes[0, col].set_yscale("log")
    limit = float(w.abs().max())
    axes[1, col].imshow(w[3].reshape(28, 28).numpy(), cmap="bwr", vmin=-limit,
                        vmax=limit)
    axes[1, col].set_title(f"{name}: weights of class 3")
    axes[1, col].axis("off")
fig.tight_layout()

# %% tags=["remove-cell"]
border = torch.ones(28, 28, dtype=torch.bool)
border[4:24, 4:24] = False                             # pixels that never carry ink
l1_border = (weights["L1"][:, border.flatten()].abs() < 1e-3).float().mean()
l2_border = (weights["L2"][:, border.flatten()].abs() < 1e-3).float().mean()
assert l1_border > 0.5 > l2_border and near_zero["L1"] > 5 * near_zero["L2"]

# %% [markdown]
# With L1 most weights of the border pixels — which never carry ink — are pushed to (nearly)
# exactly zero and the template of each class is concentrated where strokes are; L2 shrinks
# them without zeroing.
#
# ## 8. Weight decay is an L2 penalty
#
# Optimizers take a `weight_decay` argument; the recipes of sessions 6–8 set it to 5e-4. For
# SGD it *is* the L2 penalty: adding $\frac{\lambda}{2}\lVert w\rVert^2$ to the loss adds
# $\lambda w$ to every gradient, so one step is
# $w \leftarrow w - \eta\,(\nabla L + \lambda w)$. One step three ways — `weight_decay`,
# the penalty added to the loss, and the formula by hand:

# %%
torch.manual_seed(0)
net = nn.Linear(20, 5)
x_small, y_small = torch.randn(32, 20), torch.randint(0, 5, (32,))
lam, eta = 0.1, 0.5

decayed = copy.deepcopy(net)                                   # 1. weight_decay
opt = torch.optim.SGD(decayed.parameters(), lr=eta, weight_decay=lam)
F.cross_entropy(decayed(x_small), y_small).backward()
opt.step()

penalised = copy.deepcopy(net)                                 # 2. loss + (λ/2)‖w‖²
opt = torch.optim.SGD(penalised.parameters(), lr=eta)
l2 = sum((p ** 2).sum() for p in penalised.parameters())
(F.cross_entropy(penalised(x_small), y_small) + lam / 2 * l2).backward()
opt.step()

plain = copy.deepcopy(net)                                     # 3. by hand
F.cross_entropy(plain(x_small), y_small).backward()
by_hand = [p - eta * (p.grad + lam * p) for p in plain.parameters()]

for a, b, c in zip(decayed.parameters(), penalised.parameters(), by_hand):
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
print("weight_decay = loss + (λ/2)‖w‖² = w − η(∇L + λw): all three steps match")

# %% tags=["remove-cell"]
# the prose says "sessions 6–8 set it"
_later = ("s06/cifar-net", "s07/resnet18", "s07/resnet34", "s08/custom-resnet")
assert all((r.weight_decay, r.optimizer) == (5e-4, "sgd")
           for r in map(recipes.get, _later))

# %% [markdown]
# Two details: `weight_decay` decays every parameter it is given, biases and norm scales
# included (the L1 penalty of the assignment below touches only convolution and linear
# weights); and with Adam the added $\lambda w$ is rescaled by the adaptive step like any
# gradient, which is why AdamW *decouples* the decay and applies $\eta\lambda w$ directly
# (Loshchilov & Hutter) — for AdamW the equality above does not hold.
#
# ## Assignment — BN, GN, LN and BN + L1 on one network
#
# One network (`s05/norm-net`) whose normalization is chosen by name, trained four times for
# 20 epochs with the same schedule (SGD with momentum, one-cycle to 0.05): with batch norm,
# group norm (4 groups), layer norm, and batch norm with an L1 penalty (λ = 1e-4). Every
# unit is conv → ReLU → norm → dropout 5 %; the layers, with group norm:

# %%
rf.summary(models.create("s05/norm-net", norm="gn"), (1, 28, 28)).select(
    ["layer", "type", "output", "RF", "params"])

# %%
variants = ["s05/bn", "s05/gn", "s05/ln", "s05/bn-l1"]
runs = {name: records.load(name) for name in variants}
records.overview(variants).select(["recipe", "params", "best test acc %",
                                   "final test acc %"])

# %% tags=["remove-cell"]
config = {name: r.config for name, r in runs.items()}
assert all(c["epochs"] == 20 and c["scheduler"] == "onecycle" and c["lr"] == 0.05
           and c["optimizer"] == "sgd" for c in config.values())
assert config["s05/bn-l1"]["l1"] == 1e-4
assert config["s05/gn"]["model_kwargs"]["norm"] == "gn"

# %%
viz.curves({name: r.history for name, r in runs.items()}, acc_range=(98.5, 99.7),
           target=99.4, test_only=True);

# %% [markdown]
# **Findings**, generated from the records:

# %% tags=["remove-input"]
final = {name: r.final_test_acc for name, r in runs.items()}
gaps = {name: r.history.train_acc[-1] - r.history.test_acc[-1]
        for name, r in runs.items()}
bn_l1, bn_only = runs["s05/bn-l1"].history, runs["s05/bn"].history
say("\n".join([
    "- Final test accuracy: " + ", ".join(f"{n} {final[n]:.2f} %" for n in variants)
    + ". All four train this network to within "
    + f"{max(final.values()) - min(final.values()):.2f} points of each other.",
    "- Train − test accuracy in the last epoch (dropout is active in training, so "
    "negative means no overfitting): "
    + ", ".join(f"{n} {gaps[n]:+.2f}" for n in variants) + ".",
    f"- L1 on top of BN: final {final['s05/bn-l1']:.2f} % against "
    f"{final['s05/bn']:.2f} % without it; its training loss includes the penalty, so "
    f"compare test losses ({bn_l1.test_loss[-1]:.4f} against "
    f"{bn_only.test_loss[-1]:.4f}).",
]))

# %% [markdown]
# ### What one run per variant can show
#
# Four runs, one seed each, ending within a fraction of a point of each other. Is
# layer norm better than batch norm on this network? A test accuracy $p$ measured on $n$
# images is a binomial proportion, with standard error $\sqrt{p(1-p)/n}$:

# %%
n_test = runs["s05/bn"].data["test"].size
p = sum(final.values()) / len(final) / 100
se = 100 * math.sqrt(p * (1 - p) / n_test)
print(f"p = {100 * p:.2f} %, n = {n_test:,}: one standard error = {se:.3f} points")

# %% tags=["remove-input"]
def seeds_of(recipe: str) -> list[float]:
    return [records.load(recipe, seed=None if seed == 1 else seed).final_test_acc
            for seed in (1, 2, 3)]


seeds = {"step 3": seeds_of("s04/step3"),
         "its lean variant": seeds_of("s04/step3-lean")}
spread = max(final.values()) - min(final.values())
se_gap = math.sqrt(2) * se
best_v, worst_v = max(final, key=final.get), min(final, key=final.get)
seed_words = "; ".join(f"{name} ended at {', '.join(f'{a:.2f}' for a in values)} %, a "
                       f"spread of {max(values) - min(values):.2f} points"
                       for name, values in seeds.items())
say(f"""The largest gap between two variants, {best_v} against {worst_v}, is
{spread:.2f} points. Two accuracies each uncertain by {se:.3f} points differ by chance
with a standard error of about √2 × {se:.3f} = {se_gap:.2f} points, so this gap is
{spread / se_gap:.1f} such standard errors — within what the choice of test images alone
produces. And the test set is only one source of noise: training the same recipe again
with another seed moves the result too. In session 4, trained on seeds 1, 2 and 3,
{seed_words}. So these four runs show that all four normalizations train this network to
between {min(final.values()):.2f} and {max(final.values()):.2f} %, and that none of them
is broken here; they cannot rank them. Ranking variants this close takes several seeds
of each, compared against the seed-to-seed spread, as session 4 did.""")

# %% tags=["remove-cell"]
assert spread < 2 * se_gap, "the paragraph says the gap is within the test-set noise"
assert min(final.values()) > 99.2                        # "none of them is broken"

# %% [markdown]
# Each record keeps the recorded model's prediction for every test image, so the galleries
# below show what *those* models get wrong — 10 misclassified test digits per variant, as a
# 5 × 2 grid.

# %%
test_set = data.load("mnist", "test", fast=False)
for name in variants:
    record = runs[name]
    if "test_predictions" not in record.outputs:
        say(f"*The record of `{name}` keeps no test predictions yet, so no gallery: "
            f"`evakit train {name} --record` makes a record that does.*")
        continue
    viz.misclassified_from_record(record, test_set,
                                  suptitle=f"{name}: 10 misclassified, true / "
                                           f"predicted (test acc "
                                           f"{record.final_test_acc:.2f} %)")

# %% [markdown]
# ## Exercises
#
# 1. How many learned parameters does `nn.BatchNorm2d(64)` have, and how many buffers?
# 2. With a batch of one image, which of BN, GN, LN can still normalize meaningfully in
#    training?
# 3. Why does dropout scale the kept activations by $1/(1-p)$?
# 4. How many test images would it take to bring one standard error of an accuracy near
#    99.4 % down to 0.02 points?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
bn64 = nn.BatchNorm2d(64)
learned64 = sum(p.numel() for p in bn64.parameters())
buffers64 = sum(b.numel() for n, b in bn64.named_buffers() if "running" in n)
needed = 0.994 * 0.006 / 0.0002 ** 2
say(f"""
:::{{admonition}} Answers
:class: dropdown
(1) {learned64} learned (γ, β) and {buffers64} running statistics (plus a counter of
batches seen).

(2) GN and LN: they use one image's own values. BN's per-channel statistics over a batch
of one are just that image's per-channel statistics (the same as instance norm), and its
running averages become noisy.

(3) So that the expected input of the next layer is the same in training and in
evaluation, where nothing is dropped.

(4) $n = p(1-p)/\\mathrm{{SE}}^2 = 0.994 \\cdot 0.006 / 0.0002^2 \\approx$ {needed:,.0f}
images — about fifteen times MNIST's test set.
:::
""")

# %% [markdown]
# ## Summary
#
# - Normalize inputs with an affine map (min–max fixes the range, standard the mean and
#   spread); equalization changes the distribution's shape.
# - Centred, scaled inputs make the loss surface round and gradient descent direct.
# - BN: per-channel batch statistics in training, running statistics in evaluation; two learned
#   parameters per channel; a conv bias before it is redundant.
# - BN before or after the ReLU: both train; the order decides whether the next layer sees
#   centred values or non-negative ones.
# - GN and LN normalize per image — independent of batch size; IN per image and channel.
# - Dropout: zero with probability p and rescale in training, identity in evaluation.
# - L1 drives weights to zero (sparsity); L2 shrinks them; SGD's weight decay is L2.
# - One run per variant shows what trains; differences within the test set's standard error
#   and the seed-to-seed spread rank nothing.
#
# ## References
#
# - S. Ioffe, C. Szegedy, *Batch normalization*, ICML (2015).
# - K. He, X. Zhang, S. Ren, J. Sun, *Deep residual learning for image recognition*, CVPR
#   (2016) — BN right after each convolution, before the activation.
# - Y. Wu, K. He, *Group normalization*, ECCV (2018).
# - J. L. Ba, J. R. Kiros, G. E. Hinton, *Layer normalization*, arXiv:1607.06450 (2016).
# - D. Ulyanov, A. Vedaldi, V. Lempitsky, *Instance normalization*, arXiv:1607.08022 (2016).
# - Y. LeCun, L. Bottou, G. Orr, K.-R. Müller, *Efficient backprop*, in *Neural networks: tricks
#   of the trade* (1998) — centring inputs.
# - R. Tibshirani, *Regression shrinkage and selection via the lasso*, JRSS B 58 (1996) — L1.
# - I. Loshchilov, F. Hutter, *Decoupled weight decay regularization*, ICLR (2019) — AdamW.
