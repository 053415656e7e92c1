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
# them up. We start with the inputs — normalization versus histogram equalization, and why
# zero-centred inputs make gradient descent easier — then write batch norm by hand and match
# PyTorch in training and evaluation, count its parameters, see why it makes a convolution's
# bias useless, and compare it with group, layer and instance norm by the axes they average
# over. Dropout and L1/L2 penalties close the session, and the assignment compares four
# trained variants of one network.
#
# **Objectives.** After this session you can
# - tell normalization from histogram equalization and explain why centred inputs help;
# - compute batch norm by hand in train and eval mode, including running statistics;
# - say which axes BN, GN, LN and IN normalize over, and when each is used;
# - explain what dropout does at train and at test time;
# - show the difference between L1 and L2 penalties on the weights.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import skimage.exposure
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from evakit import data, models, records, rf, viz

# %% [markdown]
# ## 1. Normalization versus histogram equalization
#
# **Normalization** is an affine map of the pixel values, $x \mapsto (x - \mu)/\sigma$: it
# shifts and scales the histogram but keeps its shape, so every relation between pixels
# survives. **Histogram equalization** is a non-linear remapping that spreads the values to
# fill the range evenly: it boosts contrast for a person, but changes the image's statistics
# in a way a network would have to undo. Networks get normalization; equalization is an
# augmentation at most.

# %%
photo = skimage.color.rgb2gray(skimage.data.astronaut())
normalized = (photo - photo.mean()) / photo.std()
equalized = skimage.exposure.equalize_hist(photo)
fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
for col, (name, img) in enumerate((("original", photo), ("normalized (x − μ)/σ", normalized),
                                   ("histogram-equalized", equalized))):
    axes[0, col].imshow(img, cmap="gray")
    axes[0, col].set_title(name)
    axes[0, col].axis("off")
    axes[1, col].hist(img.ravel(), bins=64)
    axes[1, col].set_title(f"mean {img.mean():.2f}, std {img.std():.2f}")
fig.tight_layout()

# %% [markdown]
# The normalized histogram is the original one, moved to mean 0 and stretched to unit
# standard deviation; the equalized one is flattened. For MNIST we normalize with the
# training set's mean and std (0.1307, 0.3081 — computed from the data, see `evakit.data.STATS`
# and its test).
#
# ## 2. Why zero-centred inputs help
#
# Take the simplest model, $\hat y = w_1 x_1 + w_2 x_2$, with a squared error. The loss is a bowl
# whose shape is set by the inputs' second moments. If both inputs are large and positive (raw
# pixels in 0–255, say), the bowl is a long, narrow valley: the gradient points across it, and
# gradient descent zig-zags. Centring and scaling the inputs makes it round, and the same
# learning rate walks straight to the minimum.

# %%
g = torch.Generator().manual_seed(0)
raw = torch.rand(200, 2, generator=g) * torch.tensor([1.0, 1.0]) + torch.tensor([3.0, 3.5])
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


fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, (name, x, y) in zip(axes, (("raw inputs, far from zero", raw, target),
                                  ("centred and scaled inputs", centred, centred_target))):
    w_best = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    span = 3 * w_best.abs().max() + 1
    w1, w2 = torch.meshgrid(torch.linspace(-span, span, 200), torch.linspace(-span, span, 200),
                            indexing="ij")
    surface = loss_surface(x, y, w1, w2)
    ax.contour(w1.numpy(), w2.numpy(), surface.log().numpy(), levels=25, cmap="viridis")
    hessian_eigs = torch.linalg.eigvalsh(2 * x.T @ x / len(x))
    lr = 1.0 / hessian_eigs.max().item()        # the largest stable-ish step for both
    path = descend(x, y, lr)
    ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), "o-", color="C3", ms=3,
            label=f"40 steps, lr {lr:.2g}: loss {loss_surface(x, y, path[-1, 0], path[-1, 1]):.3f}")
    ax.plot(*w_best.numpy(), "k*", ms=12)
    ax.set_title(f"{name}\ncondition number {hessian_eigs.max() / hessian_eigs.min():.0f}")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.legend(loc="lower left")
fig.tight_layout()

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
def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm over N, H, W for each channel; updates the running stats in training."""
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
torch.testing.assert_close(batch_norm(test_batch, gamma, beta, run_mean, run_var, training=False),
                           bn.eval()(test_batch))
print("train mode: batch statistics — match; running mean/var after 3 batches — match;")
print("eval mode: running statistics — match")
print("running mean after 3 batches:", [round(v, 3) for v in bn.running_mean.tolist()])

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
print(f"BatchNorm2d(6): {learned} learned parameters (γ, β), {buffers} running statistics;"
      " conv bias before BN changes nothing")

# %% [markdown]
# ## 4. Batch, group, layer and instance norm: which axes?
#
# All four compute $(x - \mu)/\sigma$ followed by a per-channel $\gamma, \beta$; they differ in
# *which* values share one $\mu$ and $\sigma$. In each panel below, one colour is one set of
# statistics, for a batch of N = 4 images with C = 8 channels (each cell stands for all H × W
# positions of that image and channel).

# %%
N, C, groups = 4, 8, 4
sets = {
    "batch norm: per channel, over N, H, W": np.tile(np.arange(C), (N, 1)),
    f"group norm ({groups} groups): per image and group": (np.arange(N)[:, None] * groups
                                                           + np.arange(C)[None, :] // (C // groups)),
    "layer norm: per image, over C, H, W": np.tile(np.arange(N)[:, None], (1, C)),
    "instance norm: per image and channel": np.arange(N * C).reshape(N, C),
}
fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
for ax, (name, ids) in zip(axes, sets.items()):
    ax.imshow(ids, cmap="tab20", aspect="auto")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("channel")
    ax.set_ylabel("image in batch")
    ax.set_xticks(range(C))
    ax.set_yticks(range(N))
fig.tight_layout()

# %% [markdown]
# Each one checked against PyTorch by computing the statistics over exactly those sets:

# %%
x = torch.randn(N, C, 5, 5)


def normalize_over(x: torch.Tensor, ids: np.ndarray) -> torch.Tensor:
    """Normalize x so that all (image, channel) cells with the same id share mean and std."""
    out = torch.empty_like(x)
    for k in np.unique(ids):
        cells = torch.from_numpy(ids == k)
        values = x[cells]                              # (cells, H, W)
        out[cells] = (values - values.mean()) / torch.sqrt(values.var(unbiased=False) + 1e-5)
    return out


library = {
    "batch norm: per channel, over N, H, W": nn.BatchNorm2d(C, affine=False).train(),
    f"group norm ({groups} groups): per image and group": nn.GroupNorm(groups, C, affine=False),
    "layer norm: per image, over C, H, W": nn.GroupNorm(1, C, affine=False),
    "instance norm: per image and channel": nn.InstanceNorm2d(C),
}
for name, ids in sets.items():
    torch.testing.assert_close(normalize_over(x, ids), library[name](x), rtol=1e-4, atol=1e-4)
print("all four match PyTorch")

# %% [markdown]
# Batch norm needs a batch: its statistics are noisy with 2–4 images and it behaves
# differently in train and eval. Group and layer norm work per image, so they are the same in
# training and inference and indifferent to batch size — transformers use layer norm, and
# detection models trained with small batches use group norm. Instance norm removes each
# channel's contrast per image, which suits style transfer more than classification.
#
# ## 5. Dropout, in training and in evaluation
#
# In training, dropout zeroes each activation with probability $p$ and scales the survivors by
# $1/(1-p)$, so the expected value is unchanged; in evaluation it does nothing.

# %%
drop = nn.Dropout(p=0.25)
ones = torch.ones(10_000)
trained_out = drop.train()(ones)
print(f"train: {(trained_out == 0).float().mean():.3f} zeroed, survivors = {trained_out.max():.4f} "
      f"(1/(1−p) = {1 / 0.75:.4f}), mean {trained_out.mean():.3f}")
print("eval: identity →", bool(torch.equal(drop.eval()(ones), ones)))

# %% [markdown]
# ## 6. L1 versus L2 on the weights
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
    for _ in range(300):                                 # 300 steps of 100 images, any mode
        idx = torch.randint(0, len(x_all), (100,))
        loss = F.cross_entropy(linear(x_all[idx]), mnist.labels[idx]) + 5e-3 * penalty(linear.weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    weights[name] = linear.weight.detach()
fig, axes = plt.subplots(2, 3, figsize=(13, 6))
for col, (name, w) in enumerate(weights.items()):
    near_zero = (w.abs() < 1e-3).float().mean().item()
    axes[0, col].hist(w.flatten().numpy(), bins=80)
    axes[0, col].set_title(f"{name}: {100 * near_zero:.0f} % of |w| < 0.001")
    axes[0, col].set_yscale("log")
    limit = float(w.abs().max())
    axes[1, col].imshow(w[3].reshape(28, 28).numpy(), cmap="bwr", vmin=-limit, vmax=limit)
    axes[1, col].set_title(f"{name}: weights of class 3")
    axes[1, col].axis("off")
fig.tight_layout()

# %% [markdown]
# With L1 most weights of the border pixels — which never carry ink — are pushed to (nearly)
# exactly zero and the template of each class is concentrated where strokes are; L2 shrinks
# them without zeroing.
#
# ## Assignment — BN, GN, LN and BN + L1 on one network
#
# One network (`s05/norm-net`) whose normalization is chosen by name, trained four times for 20
# epochs with the same schedule (SGD with momentum, one-cycle to 0.05): with batch norm, group
# norm (4 groups), layer norm, and batch norm with an L1 penalty (λ = 1e-4).

# %%
variants = ["s05/bn", "s05/gn", "s05/ln", "s05/bn-l1"]
display(rf.summary(models.create("s05/norm-net", norm="gn"), (1, 28, 28)))
runs = {name: records.load(name) for name in variants}
records.overview(variants)

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 5))
for i, (name, r) in enumerate(runs.items()):
    h = r.history
    epochs = range(1, len(h.test_loss) + 1)
    axes[0].plot(epochs, h.test_loss, color=f"C{i}", label=name)
    axes[1].plot(epochs, h.test_acc, color=f"C{i}", label=name)
    best = int(np.argmax(h.test_acc))
    axes[1].annotate(f"{h.test_acc[best]:.2f}", (best + 1, h.test_acc[best]),
                     textcoords="offset points", xytext=(0, 8), ha="center", color=f"C{i}")
axes[0].set_title("graph 1: test loss")
axes[1].set_title("graph 2: test accuracy (best epoch annotated)")
axes[1].set_ylim(98.5, 99.8)
for ax in axes:
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()

# %% [markdown]
# **Findings**, generated from the records:

# %%
final = {name: r.history.test_acc[-1] for name, r in runs.items()}
best = {name: max(r.history.test_acc) for name, r in runs.items()}
gaps = {name: r.history.train_acc[-1] - r.history.test_acc[-1] for name, r in runs.items()}
ranking = sorted(variants, key=final.get, reverse=True)
lines = ["- Final test accuracy, best first: " + ", ".join(f"{n} {final[n]:.2f} %" for n in ranking) + "."]
lines.append(f"- Best epoch overall: {max(best, key=best.get)} at {max(best.values()):.2f} %.")
lines.append("- Train − test accuracy in the last epoch (dropout is active in training, so "
             "negative means no overfitting): " + ", ".join(f"{n} {gaps[n]:+.2f}" for n in variants) + ".")
bn_l1 = runs["s05/bn-l1"]["history"]
lines.append(f"- L1 on top of BN: final {final['s05/bn-l1']:.2f} % against {final['s05/bn']:.2f} % "
             f"without it; its training loss includes the penalty, so compare test losses "
             f"({bn_l1.test_loss[-1]:.4f} vs {runs['s05/bn'].history.test_loss[-1]:.4f}).")
display(Markdown("\n".join(lines)))

# %% [markdown]
# Each record keeps the recorded model's prediction for every test image, so the galleries
# below show what *those* models get wrong — 10 misclassified test digits per variant, as a
# 5 × 2 grid.

# %%
test_set = data.load("mnist", "test", fast=False)
for name in variants:
    record = runs[name]
    fig = viz.misclassified_from_record(record, test_set,
                                        suptitle=f"{name}: 10 misclassified, true / predicted "
                                                 f"(test acc {record.final_test_acc:.2f} %)")

# %% [markdown]
# ## Exercises
#
# 1. How many learned parameters does `nn.BatchNorm2d(64)` have, and how many buffers?
# 2. With a batch of one image, which of BN, GN, LN can still normalize meaningfully in
#    training?
# 3. Why does dropout scale the kept activations by $1/(1-p)$?
#
# ```{admonition} Answers
# :class: dropdown
# (1) 128 learned (γ, β) and 128 running statistics (plus a counter). (2) GN and LN: they use
# one image's own values; BN's per-channel statistics over a batch of one are just that image's
# per-channel statistics, and its running averages become noisy. (3) So that the expected
# input of the next layer is the same in training and in evaluation, where nothing is dropped.
# ```

# %%
bn64 = nn.BatchNorm2d(64)
print("1:", sum(p.numel() for p in bn64.parameters()), "learned,",
      sum(b.numel() for n, b in bn64.named_buffers() if "running" in n), "running statistics")

# %% [markdown]
# ## Summary
#
# - Normalize inputs (affine); equalization changes the distribution's shape.
# - Centred, scaled inputs make the loss surface round and gradient descent direct.
# - BN: per-channel batch statistics in training, running statistics in evaluation; two learned
#   parameters per channel; a conv bias before it is redundant.
# - GN and LN normalize per image — independent of batch size; IN per image and channel.
# - Dropout: zero with probability p and rescale in training, identity in evaluation.
# - L1 drives weights to zero (sparsity); L2 shrinks them.
#
# ## References
#
# - S. Ioffe, C. Szegedy, *Batch normalization*, ICML (2015).
# - Y. Wu, K. He, *Group normalization*, ECCV (2018).
# - J. L. Ba, J. R. Kiros, G. E. Hinton, *Layer normalization*, arXiv:1607.06450 (2016).
# - D. Ulyanov, A. Vedaldi, V. Lempitsky, *Instance normalization*, arXiv:1607.08022 (2016).
# - Y. LeCun, L. Bottou, G. Orr, K.-R. Müller, *Efficient backprop*, in *Neural networks: tricks
#   of the trade* (1998) — centring inputs.
# - R. Tibshirani, *Regression shrinkage and selection via the lasso*, JRSS B 58 (1996) — L1.
