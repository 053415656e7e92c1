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
# # Session 7 — Advanced training: GradCAM, adversarial examples, optimizers, schedules
#
# A trained network gives an answer; this session asks *why* that answer, *how fragile* it
# is, and *how* training got there. GradCAM shows which part of the image the decision rests
# on. An adversarial example shows how little it takes to change the decision. The
# optimizers and learning-rate schedules decide which minimum training ends in — and flat
# minima generalize better than sharp ones. The assignment trains ResNet18 on CIFAR-10 and
# looks at its mistakes through GradCAM.
#
# **Objectives.** After this session you can
# - compute GradCAM by hand and with the `grad-cam` package, and pick a layer it makes sense on;
# - build FGSM and iterated adversarial examples;
# - compare SGD, momentum, Nesterov, RMSProp, Adam and AdamW by their paths on a loss surface;
# - run an LR range test and read a one-cycle and a plateau schedule;
# - explain why a flat minimum is preferable to a sharp one.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from pytorch_grad_cam import GradCAM

from evakit import data, recipes, records, runner, train, viz

# %% [markdown]
# ## 1. A network to look inside
#
# Everything below needs a trained CIFAR-10 network: the assignment's ResNet18 (CIFAR
# variant: a 3×3 stem, four stages of basic blocks at 64–512 channels, GAP, one linear layer).
# In full mode this cell trains the recipe `s07/resnet18` for its 20 epochs (minutes on a
# GPU). In FAST mode it trains the same architecture at a quarter of the width on 600
# images for two epochs — a network that barely beats chance, so the pictures below show the
# *method* on a weak model, not what a trained ResNet sees.

# %%
recipe = recipes.get("s07/resnet18")
run = runner.run(recipe)
model = run.model.eval()
print(f"ResNet18, {run.label}: {run.params:,} parameters, test accuracy "
      f"{run.history.test_acc[-1]:.2f} %")

# %%
test_set = data.load("cifar10", "test")
test_batches = data.Loader(test_set, 500)
inputs, targets = next(iter(test_batches))
classes = test_set.classes
probs, labels = train.predict(model, test_batches)
preds = probs.argmax(1)
print(f"{int((preds != labels).sum())} of {len(labels)} test images misclassified")

# %% [markdown]
# ## 2. Class activation maps and GradCAM
#
# A network that ends in global average pooling and one linear layer has a built-in map of
# its evidence: the **class activation map** (Zhou et al., 2016) weights the last feature maps
# by the linear layer's weights for a class. **GradCAM** (Selvaraju et al., 2017) generalizes
# it to any layer and any head: weight each channel of a layer's activations $A^k$ by the
# average gradient of the class score with respect to it, sum, and keep the positive part:
#
# $$\alpha_k = \frac{1}{HW}\sum_{i,j} \frac{\partial y^c}{\partial A^k_{ij}}, \qquad
# L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k A^k\Big).$$
#
# **Which layer?** The map has the layer's resolution. In this ResNet the last stage works at
# 4×4 for a 32×32 image: one cell covers a quarter of the picture, so its map can only say
# "top left". Stage 3 (8×8) still sees most of the object and localizes it. `evakit.viz`
# refuses maps under 5×5 for this reason. Here is GradCAM by hand, at stage 3:

# %%
layer = model.stages[2]
saved = {}


def keep(module, inputs_, output):
    saved["activations"] = output
    output.register_hook(lambda grad: saved.__setitem__("gradients", grad))


handle = layer.register_forward_hook(keep)
x = inputs[:8].clone()
scores = model(x)
chosen = scores.argmax(1)
model.zero_grad()
scores[torch.arange(len(x)), chosen].sum().backward()
handle.remove()
alpha = saved["gradients"].mean((2, 3), keepdim=True)
cam = F.relu((alpha * saved["activations"]).sum(1)).detach()
print("activations", tuple(saved["activations"].shape), "→ map", tuple(cam.shape))


def to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map rescaled to [0, 1], so that maps of different images share a colour scale."""
    low = maps.amin((1, 2), keepdim=True)
    return (maps - low) / (maps.amax((1, 2), keepdim=True) - low + 1e-7)


upsampled = F.interpolate(to_unit(cam)[:, None], size=32, mode="bilinear", align_corners=False)
by_hand = to_unit(upsampled[:, 0])

# %% [markdown]
# The `grad-cam` package computes the same thing. Its two rescalings are the ones above: to
# [0, 1] at the layer's resolution, and again after the bilinear resize to the image size
# (the resized map's extremes lie between pixel centres, a little inside the original ones):

# %%
with GradCAM(model=model, target_layers=[layer]) as package_cam:
    from_package = package_cam(input_tensor=x, targets=None)  # None: the predicted class
difference = np.abs(from_package - by_hand.numpy()).max()
print(f"largest difference by hand vs grad-cam: {difference:.1e}")
assert difference < 1e-3

# %% [markdown]
# Now the gallery: ten misclassified test images, each with the GradCAM of the class the
# network *chose* — where it found the evidence for its wrong answer.

# %%
wrong = torch.nonzero(preds[:len(inputs)] != labels[:len(inputs)]).flatten()[:10]
fig = viz.misclassified(test_set.images[:len(inputs)], preds[:len(inputs)],
                        labels[:len(inputs)], classes, suptitle=f"{label}: 10 misclassified "
                        "test images (true / predicted)")
fig = viz.gradcam_gallery(model, layer, inputs[wrong], test_set.images[wrong],
                          [f"{classes[labels[i]]} / {classes[preds[i]]}" for i in wrong],
                          suptitle=f"{label}: GradCAM of the predicted class, stage 3 (8×8)")

# %% [markdown]
# ## 3. Adversarial examples
#
# The gradient that GradCAM reads can also be used against the network. The **fast gradient
# sign method** (Goodfellow et al., 2015) moves every pixel by $\epsilon$ in the direction
# that increases the loss: $x' = x + \epsilon\,\mathrm{sign}(\nabla_x L)$. Iterating small
# steps and projecting back into the $\epsilon$-ball (Kurakin et al., 2017; Madry et al.,
# 2018) is stronger still. We work in pixel space [0, 1] and normalize inside, so
# $\epsilon = 4/255$ means "each pixel changes by at most 4 grey levels".

# %%
mean = torch.tensor(test_set.mean).view(1, 3, 1, 1)
std = torch.tensor(test_set.std).view(1, 3, 1, 1)
n_attacked = 48 if S.fast else 500
pixels = inputs[:n_attacked] * std + mean
truth = targets[:n_attacked]


def loss_on(p: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model((p - mean) / std), truth)


def fgsm(p: torch.Tensor, eps: float) -> torch.Tensor:
    p = p.clone().requires_grad_(True)
    grad, = torch.autograd.grad(loss_on(p), p)
    return (p + eps * grad.sign()).clamp(0, 1).detach()


def iterated(p: torch.Tensor, eps: float, step: float, n: int) -> torch.Tensor:
    adv = p.clone()
    for _ in range(n):
        adv = fgsm(adv, step)
        adv = torch.min(torch.max(adv, p - eps), p + eps)    # stay within ±eps of the original
    return adv


def accuracy(p: torch.Tensor) -> float:
    with torch.no_grad():
        return 100 * (model((p - mean) / std).argmax(1) == truth).float().mean().item()


eps = 4 / 255
attacks = {"clean": pixels, "FGSM": fgsm(pixels, eps), "iterated (10 × ε/4)":
           iterated(pixels, eps, eps / 4, 10)}
for name, p in attacks.items():
    print(f"{name:<22} accuracy {accuracy(p):5.1f} %   max change {(p - pixels).abs().max() * 255:.1f}/255")

# %%
i = 0
with torch.no_grad():
    before = model((pixels[i:i + 1] - mean) / std).argmax(1).item()
    after = model((attacks["iterated (10 × ε/4)"][i:i + 1] - mean) / std).argmax(1).item()
delta = attacks["iterated (10 × ε/4)"][i] - pixels[i]
fig = viz.image_grid([pixels[i], (delta / (2 * eps) + 0.5).clamp(0, 1),
                      attacks["iterated (10 × ε/4)"][i]],
                     [f"original: {classes[before]}", "perturbation (×32)",
                      f"adversarial: {classes[after]}"], cols=3, size=2.6)

# %% [markdown]
# The perturbation is invisible at its real scale (it is magnified 32× in the middle
# panel). On the FAST model the effect is weak because the model knows little; a fully
# trained network typically loses most of its accuracy at $\epsilon = 4/255$ under the
# iterated attack — which is what adversarial training was invented to fix.
#
# ## 4. Optimizers on a loss surface
#
# A network's loss surface has millions of dimensions, but the behaviour of the optimizers
# shows on two. The surface below is a long, narrow valley tilted by 30° — 40 times steeper
# across than along, the shape that makes plain gradient descent zig-zag — with its minimum
# at (1.5, 1) (+). Each optimizer starts at the same point (★), runs 100 steps of
# `torch.optim`, and draws its path.

# %%
CENTRE = torch.tensor([1.5, 1.0])
COS, SIN = np.cos(np.pi / 6), np.sin(np.pi / 6)


def surface(w: torch.Tensor) -> torch.Tensor:
    d = w - CENTRE
    along, across = COS * d[..., 0] + SIN * d[..., 1], -SIN * d[..., 0] + COS * d[..., 1]
    return 0.5 * (0.1 * along**2 + 4.0 * across**2)


optimizers = {
    "SGD": lambda p: torch.optim.SGD(p, lr=0.45),
    "momentum 0.9": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "Nesterov 0.9": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "RMSProp": lambda p: torch.optim.RMSprop(p, lr=0.05),
    "Adam": lambda p: torch.optim.Adam(p, lr=0.1),
    "AdamW (wd 0.5)": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.5),
}
start = torch.tensor([-3.0, -2.5])
paths, finals = {}, {}
for name, make in optimizers.items():
    w = start.clone().requires_grad_(True)
    opt, path = make([w]), [w.detach().clone()]
    for _ in range(100):
        opt.zero_grad()
        surface(w).backward()
        opt.step()
        path.append(w.detach().clone())
    paths[name], finals[name] = torch.stack(path), surface(w).item()

grid = torch.stack(torch.meshgrid(torch.linspace(-4, 4, 200), torch.linspace(-4, 4, 200),
                                  indexing="xy"), -1)
fig, axes = plt.subplots(2, 3, figsize=(12, 8.2), sharex=True, sharey=True)
for i, (ax, (name, path)) in enumerate(zip(axes.flat, paths.items(), strict=True)):
    ax.contour(grid[..., 0].numpy(), grid[..., 1].numpy(), surface(grid).numpy(),
               levels=np.geomspace(0.01, 40, 14), cmap="Greys", linewidths=0.8)
    ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), ".-", color=f"C{i}", markersize=3,
            linewidth=1)
    ax.plot(*start.numpy(), "k*", markersize=11)
    ax.plot(*CENTRE.numpy(), "k+", markersize=11)
    ax.set_title(f"{name}\nloss {finals[name]:.2g} after 100 steps", fontsize=10)
    ax.set_aspect("equal")
fig.tight_layout()

# %% [markdown]
# What the paths show, each claim checked in the next cell: plain SGD, with the largest step
# that is still stable across the valley, bounces from wall to wall while creeping along it.
# Momentum averages successive gradients: the bounces cancel, the steps along the valley add
# up, and it arrives closer to the minimum than SGD in the same 100 steps — swinging a few
# times across the valley on the way. Nesterov evaluates the gradient where momentum is about
# to take it, which damps those swings. RMSProp and Adam divide each coordinate's step by the
# size of its recent gradients, so the steep and the shallow direction are walked at similar
# speed: a nearly straight line, but at a fixed pace set by the learning rate, and after 100
# steps they are still on their way. AdamW adds weight decay *decoupled* from the adaptive
# step (Loshchilov & Hutter, 2019): it pulls towards the origin as well, and stops short of
# the minimum — a trade of loss for small weights that a network makes to generalize.

# %%
across = [(-SIN * (p[:, 0] - CENTRE[0]) + COS * (p[:, 1] - CENTRE[1])) for p in paths.values()]

def side_changes(offsets: torch.Tensor) -> int:
    return int((torch.diff(torch.sign(offsets)) != 0).sum())


sgd_sign_changes = side_changes(across[0][:20])
assert sgd_sign_changes >= 10, "SGD should bounce across the valley"
swing = {name: across[i][10:].abs().max().item() for i, name in enumerate(paths)}
assert swing["Nesterov 0.9"] < swing["momentum 0.9"], "Nesterov should swing less"
assert finals["momentum 0.9"] < finals["SGD"] and finals["Nesterov 0.9"] < finals["SGD"]
assert min(finals["RMSProp"], finals["Adam"]) > finals["SGD"]
assert paths["AdamW (wd 0.5)"][-1].norm() < paths["Adam"][-1].norm()
print(f"SGD changes side {sgd_sign_changes} times in its first 20 steps; widest swing across "
      f"the valley after step 10: momentum {swing['momentum 0.9']:.2f}, Nesterov "
      f"{swing['Nesterov 0.9']:.2f}")

# %% [markdown]
# ## 5. Finding the learning rate: the range test
#
# Smith's LR range test (2017) trains for a few hundred batches while the learning rate grows
# exponentially, and watches the loss: too small, nothing happens; too large, it explodes; the
# useful range is where it falls fastest. `evakit.train.lr_range_test` runs it and restores the
# model afterwards; `tests/test_train.py` checks it against the `torch-lr-finder` package (the
# same learning rates and the same losses on the same batches). (In FAST mode it sweeps the small FAST model on the slice; the suggestion
# is then not one to train with.)

# %%
sweep = runner.lr_find(replace(recipe, batch_size=32) if S.fast else recipe, start_lr=1e-5,
                       iterations=16 if S.fast else 200).result
fig = viz.lr_range(sweep)
print(f"steepest descent at lr ≈ {sweep.suggested_lr:.2g}"
      + (" (FAST sweep of 16 batches: illustrative only)" if S.fast else ""))

# %% [markdown]
# ## 6. Schedules: one-cycle and reduce-on-plateau
#
# **One-cycle** (Smith & Topin, 2019) raises the LR from a tenth (here a 25th) of its maximum
# to the maximum over the first part of training, then anneals it to almost zero; momentum
# moves the opposite way. **ReduceLROnPlateau** divides the LR when a monitored metric stops
# improving for `patience` epochs. Below, both as PyTorch computes them: one-cycle for the
# assignment's 20 epochs, and the plateau rule fed the real test-loss curve of session 4's
# code-4 record.

# %%
probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
steps_per_epoch = 98
onecycle = torch.optim.lr_scheduler.OneCycleLR(probe, max_lr=0.1, epochs=20,
                                               steps_per_epoch=steps_per_epoch)
lrs, moms = [], []
for _ in range(20 * steps_per_epoch):
    lrs.append(probe.param_groups[0]["lr"])
    moms.append(probe.param_groups[0]["momentum"])
    probe.step()
    onecycle.step()

plateau_probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(plateau_probe, factor=0.1, patience=2)
code04 = records.load("s04/code04")
plateau_lrs = []
for test_loss in code04.history.test_loss:
    plateau_lrs.append(plateau_probe.param_groups[0]["lr"])
    plateau.step(test_loss)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
epochs_axis = np.arange(len(lrs)) / steps_per_epoch
axes[0].plot(epochs_axis, lrs, label="learning rate")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("lr")
twin = axes[0].twinx()
twin.plot(epochs_axis, moms, color="C1", label="momentum")
twin.set_ylabel("momentum")
axes[0].set_title("OneCycleLR, max 0.1, 20 epochs")
e = np.arange(1, len(plateau_lrs) + 1)
axes[1].step(e, plateau_lrs, where="post", label="lr")
axes[1].set_yscale("log")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("lr")
twin2 = axes[1].twinx()
twin2.plot(e, code04.history.test_loss, "o-", color="C2", markersize=3)
twin2.set_ylabel("test loss (s04/code04 record)")
axes[1].set_title("ReduceLROnPlateau(factor 0.1, patience 2)")
fig.tight_layout()

# %% [markdown]
# ## 7. Flat and sharp minima
#
# Two minima can have the same training loss and very different neighbourhoods. In a **sharp**
# minimum a small change of the weights — or the small shift between the training and the test
# distribution — raises the loss a lot; in a **flat** one it hardly matters (Hochreiter &
# Schmidhuber, 1997; Keskar et al., 2017). Large learning rates and small batches add noise
# that cannot settle into narrow holes, one reason they generalize better; SAM (Foret et al.,
# 2021) looks for flat minima on purpose.

# %%
w = np.linspace(-3, 3, 600)
train_loss = 1 - 0.9 * np.exp(-((w + 1.5) ** 2) / 0.02) - 0.9 * np.exp(-((w - 1.2) ** 2) / 0.6)
test_loss = 1 - 0.9 * np.exp(-((w + 1.35) ** 2) / 0.02) - 0.9 * np.exp(-((w - 1.35) ** 2) / 0.6)
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(w, train_loss, label="training loss")
ax.plot(w, test_loss, "--", label="test loss (the surface shifted a little)")
for at, name in ((-1.5, "sharp"), (1.2, "flat")):
    gap = np.interp(at, w, test_loss) - np.interp(at, w, train_loss)
    ax.annotate(f"{name}: test − train = {gap:.2f}", (at, np.interp(at, w, test_loss)),
                xytext=(at - 0.4, 0.75), arrowprops={"arrowstyle": "->"})
ax.set_xlabel("a weight")
ax.legend(loc="lower left")
fig.tight_layout()

# %% [markdown]
# ## 8. The assignment: ResNet18 on CIFAR-10
#
# **The task.** ResNet18 (CIFAR variant, basic blocks only) for 20 epochs with
# RandomCrop(32, padding 4) and a 16×16 cutout; training curves; ten misclassified images and
# their GradCAM maps.
#
# **The solution** is the recipe `s07/resnet18`: SGD with momentum 0.9, weight decay 5e-4,
# one-cycle up to 0.1, batch 128; the crop and cutout run on whole batches
# (`evakit.augment.random_crop(4)`, `cutout(16, fill=mean)`). The network of section 1 is it
# (in FAST mode its smoke version); its curves:

# %%
assert (recipe.momentum, recipe.weight_decay, recipe.lr, recipe.batch_size, recipe.epochs,
        recipe.crop_padding, recipe.cutout) == (0.9, 5e-4, 0.1, 128, 20, 4, 16)  # the prose
fig = viz.curves({label: run.history.to_dict()})

# %%
display(Markdown(records.results_or_missing("s07/resnet18")))

# %% [markdown]
# The misclassified gallery and its GradCAM maps are in section 2 above. Run this notebook in
# full mode and read them with one question: for each wrong answer, does the map sit on the
# object, or on something the two classes share — sky or water behind an airplane and a ship,
# fur on a cat and a dog? Evidence can be real and still not discriminative.
#
# ## Exercises
#
# 1. GradCAM on ResNet18's last stage for a 32×32 input: how many cells does the map have,
#    and how many image pixels does one cell stand for?
# 2. Why does FGSM use the *sign* of the gradient rather than the gradient itself?
# 3. With one-cycle, where does the momentum sit when the learning rate is at its peak, and
#    why?
#
# ```{admonition} Answers
# :class: dropdown
# 1. 4 × 4 = 16 cells, each standing for an 8 × 8 block of pixels — too coarse to locate
#    anything smaller than a quarter of the image.
# 2. The attack is bounded per pixel ($L_\infty$ ball of radius ε); under that bound the
#    largest first-order increase of the loss is obtained by moving every pixel the full ε in
#    the gradient's direction — the sign.
# 3. At its minimum (0.85 by default): a large step with large momentum would overshoot; low
#    momentum keeps the effective step in check while the LR is high.
# ```

# %%
assert np.isclose(moms[int(np.argmax(lrs))], 0.85) and np.isclose(min(moms), 0.85)

# %% [markdown]
# ## Summary
#
# - GradCAM weights a layer's channels by their average gradient; use a layer of 5×5 or more
#   (here stage 3, 8×8), and check your own implementation against `grad-cam`.
# - An $\epsilon = 4/255$ perturbation, invisible to us, can flip a prediction: FGSM in one
#   step, iterated attacks more reliably.
# - Momentum smooths and accelerates, adaptive methods rescale per coordinate, AdamW decouples
#   the weight decay.
# - The LR range test finds the usable learning rates; one-cycle spends training going up to
#   the largest and down again; plateau schedules react to the validation curve.
# - Flat minima are robust to the train/test shift; noise from large LRs helps find them.
#
# ## References
#
# - Zhou et al., *Learning Deep Features for Discriminative Localization* (CAM), CVPR 2016.
# - Selvaraju et al., *Grad-CAM*, ICCV 2017; Gildenblat et al., *pytorch-grad-cam*, GitHub.
# - Goodfellow, Shlens & Szegedy, *Explaining and Harnessing Adversarial Examples*, ICLR 2015.
# - Kurakin, Goodfellow & Bengio, *Adversarial Examples in the Physical World*, ICLR 2017;
#   Madry et al., *Towards Deep Learning Models Resistant to Adversarial Attacks*, ICLR 2018.
# - Sutskever et al., *On the importance of initialization and momentum*, ICML 2013;
#   Kingma & Ba, *Adam*, ICLR 2015; Loshchilov & Hutter, *Decoupled Weight Decay
#   Regularization*, ICLR 2019.
# - Smith, *Cyclical Learning Rates for Training Neural Networks*, WACV 2017; Smith & Topin,
#   *Super-Convergence*, 2019.
# - Hochreiter & Schmidhuber, *Flat Minima*, 1997; Keskar et al., *On Large-Batch Training*,
#   ICLR 2017; Foret et al., *Sharpness-Aware Minimization*, ICLR 2021.
# - He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016.
