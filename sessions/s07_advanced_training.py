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
# on. An adversarial example shows how little it takes to change the decision. The loss
# surface has saddle points and plateaus, the mini-batch gradient is noisy, and the
# optimizers and learning-rate schedules decide which minimum training ends in — flat minima
# generalize better than sharp ones. Numbers matter too: the CIFAR runs of this course were
# trained in bfloat16, and the page shows what that keeps and what it loses. The assignment
# trains ResNet18 on CIFAR-10 and looks at its mistakes through GradCAM.
#
# ```{note}
# **FAST mode on this page.** The trained networks looked inside here are the course's
# recorded ones (`book/records/`): the ResNet18 of the assignment (its predictions and
# GradCAM maps are kept in its record) and session 6's network (small enough that its
# weights are kept, so gradients can be taken through it), whatever the mode; where a record
# is missing, the page says so and draws nothing from a stand-in. With `EVAKIT_FAST=1` (the
# tests, and the build of this book) the adversarial attacks run on fewer test images (the
# output says how many), and the assignment's training cell runs a narrow copy on a slice —
# a check that the code runs, labelled as such, not a result. Without `EVAKIT_FAST` (in
# Colab) the attacks use every test image and the assignment trains in full.
# ```
#
# **Objectives.** After this session you can
# - compute GradCAM by hand and with the `grad-cam` package, and pick a layer it makes
#   sense on;
# - build FGSM and iterated adversarial examples, and measure accuracy against ε;
# - recognise saddle points and plateaus, and say why gradient noise helps escape them;
# - write the update rules of SGD, momentum, Nesterov, Adagrad, RMSProp, Adadelta, Adam
#   (with its bias correction) and AdamW, and say when to choose which;
# - read an LR range test, a one-cycle and a plateau schedule;
# - say what bfloat16 keeps and loses against float16 and float32, and why it needs no loss
#   scaling;
# - explain why a flat minimum is preferable to a sharp one.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from pytorch_grad_cam import GradCAM

from evakit import data, evidence, models, recipes, records, runner, train, viz
from evakit.table import Table


def say(text: str) -> None:
    """Show prose generated from the code's results and the records."""
    display(Markdown(text))


def recorded(name: str) -> records.Record | None:
    """The record of ``name``, or None while it has not been made."""
    return records.load(name) if records.path_for(name).is_file() else None


# %% [markdown]
# ## 1. The trained networks this page looks inside
#
# Everything in sections 2 and 3 needs networks that have actually learned CIFAR-10. Two
# recorded runs provide them:
# - **`s07/resnet18`**, the assignment of this session: ResNet18 (CIFAR variant: a 3×3 stem,
#   four stages of basic blocks at 64–512 channels, GAP, one linear layer). Its weights are
#   too large for the repository, so its record keeps the evidence a page needs: the recorded model's prediction for every test image and the
#   GradCAM maps of its first ten mistakes.
# - **`s06/cifar-net`**, session 6's assignment, under 200 000 parameters: its record keeps
#   its weights, so this page can load the trained network and take gradients through it —
#   GradCAM by hand and adversarial examples need that.

# %%
resnet18 = recorded("s07/resnet18")
cifar_net = recorded("s06/cifar-net")
for name in ("s07/resnet18", "s06/cifar-net"):
    display(Markdown(records.results_or_missing(name)))
have_weights = cifar_net is not None and records.weights_path("s06/cifar-net").is_file()
test_set = data.load("cifar10", "test", fast=False)
classes = test_set.classes
if have_weights:
    model = records.load_model("s06/cifar-net")
    source = "the recorded s06/cifar-net"
else:
    model = models.create("s06/cifar-net").eval()
    source = "an untrained CifarNet (no recorded weights of s06/cifar-net yet)"
print(f"Gradients below are taken through {source}.")

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
# **Which layer?** The map has the layer's resolution. In ResNet18 the last stage works at
# 4×4 for a 32×32 image: one cell covers a quarter of the picture, so its map can only say
# "top left". Stage 3 (8×8) still sees most of the object and localizes it. `evakit.viz`
# refuses maps under 5×5 for this reason. Here is GradCAM by hand, on session 6's network at
# the end of its block C2 (8×8), for eight test images:

# %%
layer = dict(model.named_modules())[evidence.GRADCAM_LAYERS["s06/cifar-net"]]
x = evidence.normalized(test_set, list(range(8)))
saved = {}


def keep(module, inputs_, output):
    saved["activations"] = output
    output.register_hook(lambda grad: saved.__setitem__("gradients", grad))


handle = layer.register_forward_hook(keep)
scores = model(x)
chosen = scores.argmax(1)
model.zero_grad()
scores[torch.arange(len(x)), chosen].sum().backward()
handle.remove()
alpha = saved["gradients"].mean((2, 3), keepdim=True)
cam = F.relu((alpha * saved["activations"]).sum(1)).detach()
print("activations", tuple(saved["activations"].shape), "→ map", tuple(cam.shape))


def to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map rescaled to [0, 1], so that maps of different images share a colour
    scale."""
    low = maps.amin((1, 2), keepdim=True)
    return (maps - low) / (maps.amax((1, 2), keepdim=True) - low + 1e-7)


upsampled = F.interpolate(to_unit(cam)[:, None], size=32, mode="bilinear",
                          align_corners=False)
by_hand = to_unit(upsampled[:, 0])

# %% [markdown]
# The `grad-cam` package computes the same thing. Its two rescalings are the ones above: to
# [0, 1] at the layer's resolution, and again after the bilinear resize to the image size
# (the resized map's extremes lie between pixel centres, a little inside the original ones):

# %%
with GradCAM(model=model, target_layers=[layer]) as package_cam:
    from_package = package_cam(input_tensor=x, targets=None)  # None: predicted class
difference = np.abs(from_package - by_hand.numpy()).max()
print(f"largest difference, by hand against grad-cam ({source}): {difference:.1e}")

# %% tags=["remove-cell"]
assert difference < 1e-3

# %% [markdown]
# Now the assignment's ResNet18. Its record keeps the recorded model's first ten
# misclassified test images and their GradCAM maps at stage 3 (`stages.2`, 8×8), computed
# when the run was recorded; each map explains the class the network *chose* — where it
# found the evidence for its wrong answer.

# %%
if resnet18 is not None:
    recorded_test = test_set.subset(resnet18.data["test"].size)
    viz.misclassified_from_record(resnet18, recorded_test)
    viz.gradcam_from_record(resnet18, recorded_test)
else:
    print("No record of s07/resnet18 yet, so no gallery: it must come from the "
          "recorded model, never from a smoke run.")

# %% [markdown]
# Read them with one question: for each wrong answer, does the map sit on the object, or on
# something the two classes share — sky or water behind an airplane and a ship, fur on a cat
# and a dog? Evidence can be real and still not discriminative.
#
# ## 3. Adversarial examples
#
# The gradient that GradCAM reads can also be used against the network. The **fast gradient
# sign method** (Goodfellow et al., 2015) moves every pixel by $\epsilon$ in the direction
# that increases the loss: $x' = x + \epsilon\,\mathrm{sign}(\nabla_x L)$. Iterating small
# steps and projecting back into the $\epsilon$-ball (Kurakin et al., 2017; Madry et al.,
# 2018) is stronger still. We work in pixel space [0, 1] and normalize inside, so
# $\epsilon = 4/255$ means "each pixel changes by at most 4 grey levels". The network is
# session 6's, as recorded; the accuracy is measured here, on the page, for each ε.

# %%
n_attacked = 200 if S.fast else len(test_set)
mean = torch.tensor(test_set.mean).view(1, 3, 1, 1)
std = torch.tensor(test_set.std).view(1, 3, 1, 1)
pixels = test_set.images[:n_attacked].float() / 255
truth = test_set.labels[:n_attacked]


def loss_on(p: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model((p - mean) / std), truth)


def gradient_sign(p: torch.Tensor) -> torch.Tensor:
    p = p.clone().requires_grad_(True)
    grad, = torch.autograd.grad(loss_on(p), p)
    return grad.sign()


def fgsm(p: torch.Tensor, eps: float) -> torch.Tensor:
    return (p + eps * gradient_sign(p)).clamp(0, 1)


def iterated(p: torch.Tensor, eps: float, step: float, n: int) -> torch.Tensor:
    adv = p.clone()
    for _ in range(n):
        adv = fgsm(adv, step)
        adv = torch.min(torch.max(adv, p - eps), p + eps)    # stay within ±eps of p
    return adv


def predict(p: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model((p - mean) / std).argmax(1)


def accuracy(p: torch.Tensor) -> float:
    return 100 * (predict(p) == truth).float().mean().item()


levels = [0, 1, 2, 4, 8]                                      # ε in grey levels (/255)
direction = gradient_sign(pixels)            # FGSM's direction is the same for every ε
attacked = {"FGSM": {}, "iterated (5 steps of ε/2)": {}}
for level in levels:
    eps = level / 255
    attacked["FGSM"][level] = (pixels + eps * direction).clamp(0, 1)
    attacked["iterated (5 steps of ε/2)"][level] = (iterated(pixels, eps, eps / 2, 5)
                                                    if level else pixels)
acc = {name: {lv: accuracy(p) for lv, p in by_level.items()}
       for name, by_level in attacked.items()}
rows = [[f"{lv}/255", *(f"{acc[name][lv]:.1f}" for name in attacked)] for lv in levels]
Table(["ε", *(f"{name}: accuracy %" for name in attacked)], rows,
      f"{source}, the first {n_attacked:,} test images, measured on this page")

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
for name in attacked:
    ax.plot(levels, [acc[name][lv] for lv in levels], "o-", label=name)
ax.set_xlabel("ε (grey levels of 255)")
ax.set_ylabel("test accuracy (%)")
ax.set_xticks(levels)
ax.set_ylim(0, 100)
ax.grid(alpha=0.3)
ax.legend()
ax.set_title(f"{source}: accuracy against ε", fontsize=10)
fig.tight_layout()

# %% tags=["remove-input"]
n_se = 100 * math.sqrt(0.25 / n_attacked)
if have_weights:
    say(f"On the recorded network the clean accuracy here is {acc['FGSM'][0]:.1f} % "
        f"(in float32 on the first {n_attacked:,} test images; the record's "
        f"{cifar_net.final_test_acc:.2f} % was measured in {cifar_net.precision} on "
        f"{cifar_net.data['test'].size:,}). At ε = 4/255 FGSM brings it to "
        f"**{acc['FGSM'][4]:.1f} %** and the iterated attack to "
        f"**{acc['iterated (5 steps of ε/2)'][4]:.1f} %**; at 8/255, to "
        f"{acc['FGSM'][8]:.1f} % and {acc['iterated (5 steps of ε/2)'][8]:.1f} %. "
        f"With {n_attacked:,} images each accuracy is known to within about "
        f"±{n_se:.0f} points (one standard error at most).")
else:
    say("These accuracies come from an untrained network and mean nothing: the "
        "recorded weights of `s06/cifar-net` are not here yet. When they are, this "
        "section measures the trained network.")

# %% [markdown]
# One attacked image, at ε = 4/255 — the first test image the network gets right and the
# iterated attack turns into a mistake:

# %%
adv4 = attacked["iterated (5 steps of ε/2)"][4]
clean_pred, adv_pred = predict(pixels), predict(adv4)
flipped = torch.nonzero((clean_pred == truth) & (adv_pred != truth)).flatten()
if have_weights and len(flipped):
    i = int(flipped[0])
    delta = adv4[i] - pixels[i]
    viz.image_grid([pixels[i], (delta * 255 / 8 + 0.5).clamp(0, 1), adv4[i]],
                   [f"original: {classes[clean_pred[i]]}",
                    "perturbation (magnified 32×)",
                    f"adversarial: {classes[adv_pred[i]]}"], cols=3, size=2.6)
else:
    print("No attacked example drawn: it must come from the recorded network.")

# %% [markdown]
# The perturbation is invisible at its real scale (it is magnified 32× in the middle panel:
# ±4 grey levels are drawn as ±0.5 of the range). A network trained only on clean images has
# no reason to be stable in these directions — which is what adversarial training (training
# on attacked images, Madry et al.) was invented to fix, at a cost in clean accuracy.

# %% [markdown]
# ## 4. Saddle points and plateaus
#
# In many dimensions most points where the gradient vanishes are not minima but **saddle
# points**: the loss curves up in some directions and down in others (Dauphin et al., 2014).
# Near a saddle the gradient is tiny, so gradient descent slows to a crawl — a **plateau** in
# the loss curve — until it drifts far enough along a descending direction to leave. The
# surface below, $f(x, y) = \tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2$, has a saddle at the
# origin (up along $x$, down along $y$) and two minima at $(0, \pm 1)$. Plain gradient
# descent (step 0.1) starts at $x = 2$ from three heights $y_0$; a fourth run starts exactly
# on the ridge and adds a little Gaussian noise to each gradient — as a mini-batch does.

# %%
def saddle(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * w[..., 0] ** 2 + 0.25 * w[..., 1] ** 4 - 0.5 * w[..., 1] ** 2


def descend(start: tuple[float, float], steps: int = 250, lr: float = 0.1,
            noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Gradient descent on the saddle surface; noise: std of a Gaussian added to the
    gradient."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    path = [w.detach().clone()]
    for _ in range(steps):
        grad, = torch.autograd.grad(saddle(w), w)
        grad = grad + noise * torch.randn(2, generator=generator, dtype=torch.float64)
        with torch.no_grad():
            w -= lr * grad
        path.append(w.detach().clone())
    return torch.stack(path)


runs = {"y₀ = 0 (on the ridge)": descend((2.0, 0.0)),
        "y₀ = 10⁻⁶": descend((2.0, 1e-6)), "y₀ = 10⁻²": descend((2.0, 1e-2)),
        "y₀ = 0, noisy gradient (σ = 0.05)": descend((2.0, 0.0), noise=0.05)}
losses = {name: saddle(path).numpy() for name, path in runs.items()}
plateau = {name: int((np.abs(loss) < 0.01).sum()) for name, loss in losses.items()}

grid = torch.stack(torch.meshgrid(torch.linspace(-2.2, 2.2, 200),
                                  torch.linspace(-1.6, 1.6, 200), indexing="xy"), -1)
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
left.contour(grid[..., 0].numpy(), grid[..., 1].numpy(), saddle(grid).numpy(),
             levels=np.linspace(-0.25, 2.5, 23), cmap="Greys", linewidths=0.7)
for i, (name, path) in enumerate(runs.items()):
    left.plot(path[:, 0].numpy(), path[:, 1].numpy(), ".-", color=f"C{i}", markersize=2,
              linewidth=0.8, label=name)
    right.plot(losses[name], color=f"C{i}",
               label=f"{name}: {plateau[name]} steps at the saddle's level")
left.plot(0, 0, "kx", markersize=10)
left.plot([0, 0], [-1, 1], "k+", markersize=12, linestyle="none")
left.set_xlabel("x")
left.set_ylabel("y")
left.set_title("paths (× saddle, + minima)", fontsize=10)
right.axhline(0, color="grey", lw=0.8, ls=":")
right.set_xlabel("step")
right.set_ylabel("loss f(x, y)")
right.set_title("loss curves: the plateau is the time spent near the saddle",
                fontsize=10)
right.legend(fontsize=8)
fig.tight_layout()

# %% tags=["remove-input"]
names = list(runs)
say(f"Started exactly on the ridge, plain gradient descent never leaves it: the "
    f"gradient has no $y$ component there, and after {len(runs[names[0]]) - 1} steps "
    f"it sits on the saddle (loss {losses[names[0]][-1]:.1e}). A tiny offset is "
    f"enough to leave, but the smaller the offset the longer the plateau: "
    f"{plateau[names[1]]} steps within 0.01 of the saddle's loss from "
    f"$y_0 = 10^{{-6}}$, {plateau[names[2]]} from $10^{{-2}}$ — the distance from the "
    f"ridge grows by a constant factor per step, so the time to leave grows with "
    f"$\\log(1/y_0)$. Gradient noise gives the offset for free: the noisy run "
    f"leaves the ridge after {plateau[names[3]]} steps at the saddle's level. In a "
    f"network the plateaus are the flat stretches of a loss curve, and the noise comes "
    f"from the mini-batches, which the next section measures.")

# %% tags=["remove-cell"]
assert abs(losses[names[0]][-1]) < 1e-6 and abs(runs[names[0]][-1, 1]) == 0
assert plateau[names[1]] > plateau[names[2]] > 0
assert losses[names[3]][-1] < -0.24 and plateau[names[3]] < plateau[names[1]]
assert all(losses[n][-1] < -0.24 for n in names[1:])

# %% [markdown]
# ## 5. Gradient noise: the mini-batch gradient against the full one
#
# SGD never sees the true gradient of the training loss — the mean over all $N$ examples —
# only the mean over a mini-batch of $B$. That estimate is **unbiased** (its average over
# batches is the full gradient) and **noisy**, with a variance that falls as $1/B$
# (exactly $\frac{\sigma^2}{B}\cdot\frac{N-B}{N-1}$ for batches drawn without replacement,
# $\sigma^2$ the variance of one example's gradient). A small problem shows both: logistic
# regression with two weights on 2 000 points, so that every gradient is an arrow in the
# plane. At one point $w$ of the weights, the full gradient and 300 mini-batch gradients for
# each of three batch sizes:

# %%
generator = torch.Generator().manual_seed(0)
N = 2000
points = torch.randn(N, 2, generator=generator, dtype=torch.float64)
label_noise = 0.8 * torch.randn(N, generator=generator, dtype=torch.float64)
targets = ((points @ torch.tensor([2.0, -1.0], dtype=torch.float64) + label_noise) > 0)
targets = targets.double()
w_at = torch.tensor([0.3, 0.4], dtype=torch.float64)


def batch_gradient(index: torch.Tensor) -> torch.Tensor:
    """The gradient of the mean logistic loss over the examples in ``index``, at
    w_at."""
    w = w_at.clone().requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(points[index] @ w, targets[index])
    return torch.autograd.grad(loss, w)[0]


full = batch_gradient(torch.arange(N))
# one example's gradient of the logistic loss is (sigmoid(x·w) − y) x
per_example = (torch.sigmoid(points @ w_at) - targets)[:, None] * points
sigma2 = per_example.var(0, unbiased=False).sum().item()
sizes, draws = (8, 32, 128), 300
clouds = {b: torch.stack([batch_gradient(torch.randperm(N, generator=generator)[:b])
                          for _ in range(draws)]) for b in sizes}

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
for i, b in enumerate(sizes):
    left.scatter(clouds[b][:, 0], clouds[b][:, 1], s=5, alpha=0.4, color=f"C{i}",
                 label=f"B = {b}")
left.plot(*full.numpy(), "k*", markersize=14, label="full gradient (all 2 000)")
left.set_xlabel("∂L/∂w₁")
left.set_ylabel("∂L/∂w₂")
left.set_aspect("equal")
left.legend(fontsize=8)
left.set_title("mini-batch gradients around the full gradient", fontsize=10)
measured = [(clouds[b] - full).pow(2).sum(1).mean().item() for b in sizes]
theory = [sigma2 / b * (N - b) / (N - 1) for b in sizes]
right.loglog(sizes, measured, "o", label="measured: mean ‖g_B − g‖²")
right.loglog(sizes, theory, "-", color="grey", label="σ²/B · (N − B)/(N − 1)")
right.set_xlabel("batch size B")
right.set_ylabel("squared error of the estimate")
right.set_xticks(sizes, [str(b) for b in sizes])
right.legend(fontsize=8)
right.set_title("the noise falls as 1/B", fontsize=10)
fig.tight_layout()

# %% tags=["remove-input"]
bias = {b: (clouds[b].mean(0) - full).norm().item() / full.norm().item() for b in sizes}
say("The averages of the clouds sit on the full gradient (relative distance "
    + ", ".join(f"{bias[b]:.2f} for B = {b}" for b in sizes)
    + f", from {draws} draws each) and their spread shrinks with the batch: the "
    "measured squared error is "
    + ", ".join(f"{m / t:.2f}" for m, t in zip(measured, theory, strict=True))
    + " times the formula's. Sixteen times the batch buys four times less noise "
    "(standard deviation ∝ $1/\\sqrt{B}$) for sixteen times the computation — one "
    "reason large batches need larger learning rates to make the same progress, and "
    "why the noise of small batches acts as the exploration seen at the saddle above.")

# %% tags=["remove-cell"]
assert all(v < 0.1 for v in bias.values())
assert torch.allclose(per_example.mean(0), full)
assert all(0.7 < m / t < 1.3 for m, t in zip(measured, theory, strict=True))
assert measured[0] > measured[1] > measured[2]

# %% [markdown]
# ## 6. Optimizers: update rules, paths, and which to choose
#
# With $g$ the (mini-batch) gradient at step $t$, $\eta$ the learning rate and all squares
# and roots taken per coordinate, the optimizers of `torch.optim` update the weights $w$ as
# follows (each in PyTorch's form):
#
# | optimizer | state it keeps | update |
# |---|---|---|
# | SGD | — | $w \leftarrow w - \eta g$ |
# | momentum | $v \leftarrow \mu v + g$ | $w \leftarrow w - \eta v$ |
# | Nesterov | $v \leftarrow \mu v + g$ | $w \leftarrow w - \eta (g + \mu v)$ |
# | Adagrad | $s \leftarrow s + g^2$ (a sum: it never forgets) | $w \leftarrow w - \eta\, g / (\sqrt{s} + \epsilon)$ |
# | RMSProp | $s \leftarrow \alpha s + (1-\alpha) g^2$ (a running average) | $w \leftarrow w - \eta\, g / (\sqrt{s} + \epsilon)$ |
# | Adadelta | $s \leftarrow \rho s + (1-\rho) g^2$; $\Delta = \frac{\sqrt{u+\epsilon}}{\sqrt{s+\epsilon}}\, g$; $u \leftarrow \rho u + (1-\rho)\Delta^2$ | $w \leftarrow w - \eta \Delta$ ($\eta = 1$: no learning rate) |
# | Adam | $m \leftarrow \beta_1 m + (1-\beta_1) g$; $v \leftarrow \beta_2 v + (1-\beta_2) g^2$ | $w \leftarrow w - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$, $\hat m = \frac{m}{1-\beta_1^t}$, $\hat v = \frac{v}{1-\beta_2^t}$ |
# | AdamW | as Adam | $w \leftarrow w - \eta\,\big(\hat m / (\sqrt{\hat v} + \epsilon) + \lambda w\big)$ |
#
# **Adagrad** (Duchi et al., 2011) gives every coordinate its own learning rate,
# $\eta/\sqrt{\sum g^2}$: coordinates with rare, small gradients (a rare word's embedding)
# keep large steps, frequent ones slow down. Because the sum only grows, so does the
# slowing, for ever — fine on a convex problem, too early a stop for a deep network.
# **RMSProp** (Hinton, 2012) replaces the sum by a running average, which forgets.
# **Adadelta** (Zeiler, 2012) goes one step further: it scales the step by the running RMS
# of its own past steps, so that the update has the units of the weights and needs no
# learning rate — at the price of a first step of the size of $\sqrt\epsilon$. **Adam**
# (Kingma & Ba, 2015) is momentum on top of RMSProp, with a bias correction explained
# below. **AdamW** (Loshchilov & Hutter, 2019) applies weight decay to the weights
# directly instead of adding it to the gradient, where Adam's rescaling would shrink it.
#
# **Their paths.** A network's loss surface has millions of dimensions, but the behaviour
# of the optimizers shows on two. The surface below is a long, narrow valley tilted by 30°
# — 40 times steeper across than along, the shape that makes plain gradient descent
# zig-zag — with its minimum at (1.5, 1) (+). Each optimizer starts at the same point (★),
# runs 100 steps of `torch.optim`, and draws its path.

# %%
CENTRE = torch.tensor([1.5, 1.0])
COS, SIN = np.cos(np.pi / 6), np.sin(np.pi / 6)


def surface(w: torch.Tensor) -> torch.Tensor:
    d = w - CENTRE
    along = COS * d[..., 0] + SIN * d[..., 1]
    across = -SIN * d[..., 0] + COS * d[..., 1]
    return 0.5 * (0.1 * along**2 + 4.0 * across**2)


optimizers = {
    "SGD": lambda p: torch.optim.SGD(p, lr=0.45),
    "momentum 0.9": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "Nesterov 0.9": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "Adagrad": lambda p: torch.optim.Adagrad(p, lr=1.0),
    "RMSProp": lambda p: torch.optim.RMSprop(p, lr=0.05),
    "Adadelta (lr 1)": lambda p: torch.optim.Adadelta(p, lr=1.0),
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

axis = torch.linspace(-4, 4, 200)
grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1)
fig, axes = plt.subplots(2, 4, figsize=(15, 7.8), sharex=True, sharey=True)
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
# What the paths show, each claim checked in a hidden cell: plain SGD, with the largest
# step that is still stable across the valley, bounces from wall to wall while creeping
# along it. Momentum averages successive gradients: the bounces cancel, the steps along the
# valley add up, and it arrives closer to the minimum than SGD in the same 100 steps —
# swinging a few times across the valley on the way. Nesterov evaluates the gradient where
# momentum is about to take it, which damps those swings. Adagrad's first step moves each
# coordinate by exactly $\eta$ ($g/\sqrt{g^2} = \pm 1$), then its steps shrink as the
# squared gradients pile up. RMSProp and Adam divide each coordinate's step by the size of
# its recent gradients, so the steep and the shallow direction are walked at similar speed:
# a nearly straight line, but at a pace set by the learning rate, and after 100 steps they
# are still on their way. Adadelta, with no learning rate to speak of, has barely left the
# start: its steps are scaled by the RMS of its own past steps, which starts at
# $\sqrt\epsilon$. AdamW's decoupled weight decay pulls towards the origin as well, and it
# stops short of the minimum — a trade of loss for small weights that a network makes to
# generalize.

# %% tags=["remove-cell"]
across = {name: -SIN * (p[:, 0] - CENTRE[0]) + COS * (p[:, 1] - CENTRE[1])
          for name, p in paths.items()}
sgd_sign_changes = int((torch.diff(torch.sign(across["SGD"][:20])) != 0).sum())
assert sgd_sign_changes >= 10, "SGD should bounce across the valley"
swing = {name: a[10:].abs().max().item() for name, a in across.items()}
assert swing["Nesterov 0.9"] < swing["momentum 0.9"], "Nesterov should swing less"
assert finals["momentum 0.9"] < finals["SGD"] and finals["Nesterov 0.9"] < finals["SGD"]
assert min(finals["RMSProp"], finals["Adam"]) > finals["SGD"]
assert paths["AdamW (wd 0.5)"][-1].norm() < paths["Adam"][-1].norm()
first = (paths["Adagrad"][1] - paths["Adagrad"][0]).abs()
assert torch.allclose(first, torch.ones(2), atol=1e-4), "Adagrad's first step is lr"
adagrad_steps = (paths["Adagrad"][1:] - paths["Adagrad"][:-1]).norm(dim=1)
assert adagrad_steps[60:].max() < 0.1 * adagrad_steps[0]
travelled = {name: (p[-1] - p[0]).norm().item() for name, p in paths.items()}
assert travelled["Adadelta (lr 1)"] < 0.1 * min(v for n, v in travelled.items()
                                                if n != "Adadelta (lr 1)")

# %% [markdown]
# ### Adam's bias correction, by hand
#
# Adam's averages $m$ and $v$ start at zero, so in the first steps they are biased towards
# zero: after one step $m = (1-\beta_1)g$ and $v = (1-\beta_2)g^2$, a tenth and a
# thousandth of what they estimate. Dividing by $1-\beta^t$ removes the bias exactly when
# the gradient is constant, and matters less and less as $\beta^t \to 0$. Here is Adam
# written out, run for six steps on a small quadratic beside `torch.optim.Adam`, and the
# step it would take *without* the correction:

# %%
torch.manual_seed(0)
scales = torch.tensor([0.1, 1.0, 10.0, 100.0], dtype=torch.float64)
target = torch.randn(4, dtype=torch.float64)


def quadratic(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (scales * (w - target) ** 2).sum()


lr, (beta1, beta2), eps = 0.01, (0.9, 0.999), 1e-8
w_hand = torch.zeros(4, dtype=torch.float64)
w_torch = torch.zeros(4, dtype=torch.float64, requires_grad=True)
adam = torch.optim.Adam([w_torch], lr=lr, betas=(beta1, beta2), eps=eps)
m, v = torch.zeros_like(w_hand), torch.zeros_like(w_hand)
rows = []
for t in range(1, 7):
    w = w_hand.clone().requires_grad_(True)
    g, = torch.autograd.grad(quadratic(w), w)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    step = lr * m_hat / (v_hat.sqrt() + eps)
    uncorrected = lr * m / (v.sqrt() + eps)
    w_hand = w_hand - step
    adam.zero_grad()
    quadratic(w_torch).backward()
    adam.step()
    gap = (w_hand - w_torch.detach()).abs().max().item()
    rows.append([t, round(1 - beta1**t, 4), round(1 - beta2**t, 4),
                 f"{step.abs().max():.4f}", f"{uncorrected.abs().max():.4f}",
                 f"{gap:.1e}"])
Table(["step t", "1 − β₁ᵗ", "1 − β₂ᵗ", "largest |step|, corrected",
       "largest |step|, uncorrected", "max |w by hand − w torch|"], rows,
      f"Adam (lr {lr}, β = {beta1}, {beta2}) by hand against torch.optim.Adam, float64")

# %% tags=["remove-input"]
say(f"By hand and `torch.optim.Adam` agree to {max(float(r[-1]) for r in rows):.0e} "
    f"at every step. With the correction the first step is {rows[0][3]} — the learning "
    f"rate, in every coordinate, since $\\hat m/\\sqrt{{\\hat v}} = g/|g|$. Without "
    f"it, "
    f"it would be {rows[0][4]}: $(1-\\beta_1)/\\sqrt{{1-\\beta_2}} \\approx "
    f"{(1 - beta1) / math.sqrt(1 - beta2):.2f}$ times the learning rate, a jump at the "
    "moment the network is least ready for one.")

# %% tags=["remove-cell"]
assert all(float(r[-1]) < 1e-12 for r in rows)
assert math.isclose(float(rows[0][3]), lr, rel_tol=1e-3)
assert math.isclose(float(rows[0][4]), lr * (1 - beta1) / math.sqrt(1 - beta2),
                    rel_tol=1e-3)

# %% [markdown]
# ### Which optimizer when
#
# There is no optimizer that wins everywhere; there are habits that work.
# - **SGD with momentum (or Nesterov) and a schedule** is the default for convolutional
#   networks on images, when you can afford to find its learning rate (the range test of
#   the next section): it is cheap in memory, well understood, and on image classification
#   it tends to generalize at least as well as the adaptive methods (Wilson et al., 2017).
# - **Adam** is the robust first try — for a new architecture, for parts whose gradients
#   differ in scale by orders of magnitude (embeddings, attention, small heads on top of
#   convolutions), or when there is no time to tune.
# - **AdamW** is Adam whenever weight decay is wanted — which is always, for transformers:
#   it is their standard optimizer.
# - **Adagrad** suits sparse features and convex problems; **RMSProp** and **Adadelta** are
#   the steps that led to Adam, met today mostly in older code (RMSProp in some
#   reinforcement learning).
#
# Which optimizer each recipe of this course uses:

# %%
by_optimizer: dict[str, list[str]] = {}
for name in recipes.names():
    by_optimizer.setdefault(recipes.get(name).optimizer, []).append(name)
Table(["optimizer", "recipes of this course"],
      [[opt, ", ".join(names)] for opt, names in sorted(by_optimizer.items())],
      "evakit.recipes, grouped by optimizer")

# %% [markdown]
# ## 7. Finding the learning rate: the range test
#
# Smith's LR range test (2017) trains for a few hundred batches while the learning rate
# grows exponentially, one batch per rate, and watches the smoothed loss: too small,
# nothing happens; too large, it explodes; the useful range lies between.
# `evakit.train.lr_range_test` runs it and restores the model afterwards
# (`tests/test_train.py` checks it against the `torch-lr-finder` package: the same
# learning rates and the same losses on the same batches), and `evakit lr-find RECIPE
# --record` records it. Below is the recorded sweep of session 8's custom ResNet on all of
# CIFAR-10's training images.
#
# **Reading it.** Past the point where the loss **turns up** the sweep is noise — the
# weights have been thrown about, and a large rate can even show a second, spurious dip —
# so `train.LRRangeResult` reads nothing beyond it. The turn-up rule: the first batch whose
# smoothed loss is more than 10 % above the lowest loss seen so far. Before it, three
# readings: where the loss **starts to fall** (1 % below its start), where it falls
# **fastest** (steepest slope against log LR), and where it is **lowest**.

# %%
found = records.load_range("s08/custom-resnet")
sweep = train.LRRangeResult(found["lrs"], found["losses"])
turn_lr = sweep.lrs[sweep.usable] if sweep.usable < len(sweep.lrs) else None
fig, ax = plt.subplots(figsize=(8, 4))
viz.lr_range(sweep, ax=ax, readings=True)
ax.set_title(f"recorded range test of {found['recipe']} ({len(sweep.lrs)} batches of "
             f"{found['batch_size']}, {found['precision']})", fontsize=10)
fig.tight_layout()

# %% tags=["remove-input"]
best = min(sweep.losses[:sweep.usable])
say(f"The sweep (`{found['command']}`) starts at a loss of {sweep.losses[0]:.2f}; its "
    f"lowest smoothed loss before the turn-up is {best:.2f} at {sweep.minimum_lr:.2g}, "
    + (f"and at {turn_lr:.2g} — batch {sweep.usable + 1} of {len(sweep.lrs)} — "
       f"the loss is {sweep.losses[sweep.usable]:.2f}, more than 10 % above the lowest "
       "so far: the turn-up. "
       if turn_lr is not None else "and it never turns up. ")
    + f"Session 8 builds its one-cycle from two of the readings: it starts and ends at "
    f"{sweep.falling_lr:.2g}, where the loss starts to fall, and peaks at "
    f"{sweep.minimum_lr:.2g}, the largest rate that still lowers it.")

# %% tags=["remove-cell"]
assert (train.TURN_UP, train.FALL) == (1.1, 0.99), "the prose: 10 % above, 1 % below"
assert turn_lr is not None and sweep.losses[sweep.usable] > 1.1 * best

# %% [markdown]
# ## 8. Schedules: one-cycle and reduce-on-plateau
#
# **One-cycle** (Smith & Topin, 2019) raises the LR from a fraction of its maximum to the
# maximum over the first part of training, then anneals it; momentum moves the opposite way.
# **ReduceLROnPlateau** divides the LR when a monitored metric stops improving for
# `patience` epochs. Below, both as PyTorch computes them: the one-cycle of this session's
# assignment, built from the recipe's fields exactly as `evakit.runner` builds it (one
# scheduler step per batch of 128 on 50 000 training images), and the plateau rule fed the
# real test-loss curve of session 4's code-4 record.

# %%
recipe = recipes.get("s07/resnet18")
steps_per_epoch = math.ceil(found["data"]["size"] / recipe.batch_size)
lr_start = recipe.lr_start or recipe.lr / 25           # the runner's defaults
lr_end = recipe.lr_end or lr_start / 1e4
probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr,
                        momentum=recipe.momentum)
onecycle = torch.optim.lr_scheduler.OneCycleLR(
    probe, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch,
    pct_start=recipe.pct_start, div_factor=recipe.lr / lr_start,
    final_div_factor=lr_start / lr_end)
lrs, moms = [], []
for _ in range(recipe.epochs * steps_per_epoch):
    lrs.append(probe.param_groups[0]["lr"])
    moms.append(probe.param_groups[0]["momentum"])
    probe.step()
    onecycle.step()

plateau_probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(plateau_probe, factor=0.1,
                                                     patience=2)
code04 = records.load("s04/code04")
plateau_lrs = []
for test_loss in code04.history.test_loss:
    plateau_lrs.append(plateau_probe.param_groups[0]["lr"])
    plateau.step(test_loss)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
epochs_axis = np.arange(len(lrs)) / steps_per_epoch
axes[0].plot(epochs_axis, lrs, label="learning rate")
if resnet18 is not None:
    axes[0].plot(np.arange(resnet18.epochs_run), resnet18.history.lr, "o", color="C3",
                 markersize=4, label="the record: LR at each epoch's start")
    axes[0].legend(fontsize=8, loc="upper right")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("lr")
twin = axes[0].twinx()
twin.plot(epochs_axis, moms, color="C1", alpha=0.6)
twin.set_ylabel("momentum", color="C1")
axes[0].set_title(f"{recipe.name}: OneCycleLR, max {recipe.lr}, {recipe.epochs} epochs",
                  fontsize=10)
e = np.arange(1, len(plateau_lrs) + 1)
axes[1].step(e, plateau_lrs, where="post", label="lr")
axes[1].set_yscale("log")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("lr")
twin2 = axes[1].twinx()
twin2.plot(e, code04.history.test_loss, "o-", color="C2", markersize=3)
twin2.set_ylabel("test loss (s04/code04 record)")
axes[1].set_title("ReduceLROnPlateau(factor 0.1, patience 2)", fontsize=10)
fig.tight_layout()

# %% tags=["remove-input"]
cuts = [i for i in range(1, len(plateau_lrs)) if plateau_lrs[i] < plateau_lrs[i - 1]]
peak_epoch = np.argmax(lrs) / steps_per_epoch
said = (f"The one-cycle starts at {lrs[0]:.3g} (a 25th of the maximum, PyTorch's "
        f"default), peaks at {max(lrs):.3g} at epoch {peak_epoch:.1f} "
        f"(`pct_start` {recipe.pct_start}) and anneals to {lrs[-1]:.1e}; momentum "
        f"moves between {min(moms):.2f} and {max(moms):.2f}. ")
if resnet18 is not None:
    at_starts = [lrs[k * steps_per_epoch] for k in range(resnet18.epochs_run)]
    worst = max(abs(a - b) / b
                for a, b in zip(resnet18.history.lr, at_starts, strict=True))
    said += (f"The recorded run's learning rate at the start of each epoch (red dots) "
             f"lies on the curve: largest relative difference {worst:.1e}. ")
else:
    said += ("When the record of `s07/resnet18` exists, its learning rate at the start "
             "of each epoch is drawn on the curve as a check; there is no record yet. ")
said += ("The plateau rule, fed session 4's recorded test losses, cuts the learning "
         "rate " + (f"after epochs {', '.join(map(str, cuts))}." if cuts else "never."))
say(said)

# %% tags=["remove-cell"]
if resnet18 is not None:
    assert worst < 1e-6, "the record's LR must follow the recipe's schedule"
assert np.isclose(moms[int(np.argmax(lrs))], 0.85) and np.isclose(min(moms), 0.85)
assert found["data"]["size"] == 50_000 and recipe.batch_size == 128, "the prose above"

# %% [markdown]
# ## 9. Numbers: float32, float16 and bfloat16
#
# A float is a sign, an exponent and a mantissa: the exponent bits set the **range** (how
# large and how small a number can be), the mantissa bits the **precision** (how many
# significant digits). float16 and bfloat16 both halve float32's 32 bits, but spend them
# differently — `torch.finfo` says how:

# %%
formats = {"float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16}
rows = []
for name, dtype in formats.items():
    info = torch.finfo(dtype)
    mantissa = round(-math.log2(info.eps))
    subnormal = info.smallest_normal * info.eps
    rows.append([name, info.bits, info.bits - 1 - mantissa, mantissa, f"{info.max:.3g}",
                 f"{info.smallest_normal:.3g}", f"{subnormal:.3g}", f"{info.eps:.3g}"])
Table(["format", "bits", "exponent bits", "mantissa bits", "largest",
       "smallest normal", "smallest subnormal", "relative step (eps)"], rows,
      "torch.finfo")

# %% [markdown]
# bfloat16 keeps float32's 8-bit exponent — the same range, down to about $10^{-38}$ — and
# keeps only 7 mantissa bits: about two to three significant digits. float16 has 10
# mantissa bits but a 5-bit exponent: nothing above 65 504, and nothing below about
# $6\times10^{-8}$. A few numbers through each format:

# %%
probes = {"1 + 1/1000": 1.001, "70 000": 70_000.0, "10⁻⁸": 1e-8, "3.14159265": math.pi}
Table(["value", *formats],
      [[label, *(f"{torch.tensor(value, dtype=d).item():.8g}"
                 for d in formats.values())]
       for label, value in probes.items()], "the same values stored in each format")

# %% [markdown]
# **Why float16 training needs loss scaling and bfloat16 does not.** Gradients are often
# tiny: a loss averaged over a large batch, passed back through many layers, gives weight
# gradients of $10^{-8}$ and less. In float16 those **underflow** to zero and the weight
# stops learning; mixed-precision training in float16 therefore multiplies the loss by a
# large factor before the backward pass and divides the gradients afterwards, in float32
# (loss scaling, Micikevicius et al., 2018; `torch.amp.GradScaler`). bfloat16's exponent
# reaches as far down as float32's, so the same gradient survives unscaled. One weight, one
# activation of $10^{-4}$ and an incoming gradient of $10^{-4}$ — the weight's gradient is
# their product, $10^{-8}$:

# %%
def weight_gradient(dtype: torch.dtype, scale: float = 1.0) -> float:
    """d loss / d w for loss = scale · upstream · (w · activation), computed in
    dtype; upstream stands for ∂loss/∂(w · activation) from the layers above."""
    w = torch.tensor(0.5, dtype=dtype, requires_grad=True)
    activation = torch.tensor(1e-4, dtype=dtype)
    upstream = torch.tensor(1e-4 * scale, dtype=dtype)
    ((w * activation) * upstream).backward()
    return w.grad.float().item() / scale                   # unscaled in float32


Table(["computed in", "weight gradient", "with loss scaling × 2¹⁶"],
      [[name, f"{weight_gradient(d):.3g}", f"{weight_gradient(d, 2.0**16):.3g}"]
       for name, d in formats.items()], "the exact gradient is 1e-08")

# %% [markdown]
# What bfloat16 loses is precision: a small update to a weight of 1 vanishes when the sum
# is rounded to 8 significant bits. This is why bf16 **autocast** keeps the weights and the
# optimizer's state in float32 and computes only the convolutions and matrix products in
# bfloat16 — the sums that update the weights never happen in bfloat16:

# %%
for name, dtype in formats.items():
    weight = torch.tensor(1.0, dtype=dtype)
    print(f"{name:>9}: 1 + 0.001 = {(weight + 0.001).item():.6f}")

# %% [markdown]
# **How the CIFAR records of this course were trained.** On a CPU with native bfloat16
# (AVX-512 BF16) or a recent GPU, `evakit.train.Precision("bf16")` runs each training step
# under bfloat16 autocast with the network and its inputs in the channels-last memory
# layout, and keeps weights and optimizer state in float32. A recipe with
# `precision=None` takes the fastest correct precision of the machine it runs on; each
# record says which it got:

# %%
rows = []
for name in ("s06/cifar-net", "s07/resnet18", "s08/custom-resnet"):
    record = recorded(name)
    rows.append([name, record.precision if record else "no record yet",
                 record.device_name if record else "",
                 str(recipes.get(name).precision)])
rows.append(["s08/custom-resnet (LR range test)", found["precision"],
             found["device_name"], ""])
Table(["run", "precision", "device", "recipe's precision field"], rows,
      "read from book/records")

# %% tags=["remove-input"]
here = train.default_precision(S.device)
say(f"On the machine that ran this page the fastest correct precision is **{here}**. "
    "`evakit bench precision` measures the speed of each CIFAR network's training "
    "step in both precisions, and trains session 6's network from the same seed in "
    "both to compare their accuracies.")

# %% tags=["remove-cell"]
info16, info_bf = torch.finfo(torch.float16), torch.finfo(torch.bfloat16)
bf_mantissa, fp16_mantissa = (round(-math.log2(i.eps)) for i in (info_bf, info16))
assert (info_bf.bits - 1 - bf_mantissa, bf_mantissa) == (8, 7)
assert info16.bits - 1 - fp16_mantissa == 5 and info16.max == 65504
assert info_bf.smallest_normal == torch.finfo(torch.float32).tiny
assert weight_gradient(torch.float16) == 0 and weight_gradient(torch.bfloat16) > 9e-9
assert abs(weight_gradient(torch.float16, 2.0**16) - 1e-8) < 1e-10
assert (torch.tensor(1.0, dtype=torch.bfloat16) + 0.001).item() == 1.0

# %% [markdown]
# ## 10. Flat and sharp minima
#
# Two minima can have the same training loss and very different neighbourhoods. In a **sharp**
# minimum a small change of the weights — or the small shift between the training and the test
# distribution — raises the loss a lot; in a **flat** one it hardly matters (Hochreiter &
# Schmidhuber, 1997; Keskar et al., 2017). Large learning rates and small batches add noise
# that cannot settle into narrow holes, one reason they generalize better; SAM (Foret et al.,
# 2021) looks for flat minima on purpose. A one-dimensional picture of the idea:

# %%
w = np.linspace(-3, 3, 600)
train_loss = (1 - 0.9 * np.exp(-((w + 1.5) ** 2) / 0.02)
              - 0.9 * np.exp(-((w - 1.2) ** 2) / 0.6))
test_loss = (1 - 0.9 * np.exp(-((w + 1.35) ** 2) / 0.02)
             - 0.9 * np.exp(-((w - 1.35) ** 2) / 0.6))
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
# ## 11. The assignment: ResNet18 on CIFAR-10
#
# **The task.** ResNet18 (CIFAR variant, basic blocks only) for 20 epochs with
# RandomCrop(32, padding 4) and a 16×16 cutout; training curves; ten misclassified images and
# their GradCAM maps.

# %% tags=["remove-input"]
say(f"**The solution** is the recipe `{recipe.name}`: SGD with momentum "
    f"{recipe.momentum}, weight decay {recipe.weight_decay}, one-cycle up to "
    f"{recipe.lr}, batch {recipe.batch_size}, {recipe.epochs} epochs; the crop "
    f"(padding {recipe.crop_padding}) and the {recipe.cutout}×{recipe.cutout} cutout "
    f"filled with the dataset mean run on whole batches "
    f"(`evakit.augment.for_recipe`), in the fastest precision of the machine. In full "
    f"mode the next cell trains it (`evakit train {recipe.name} --record` made the "
    f"record below); in FAST mode it runs a narrow copy on a slice, "
    f"which only shows the loop works.")

# %% tags=["remove-cell"]
assert (recipe.optimizer, recipe.scheduler, recipe.pipeline, recipe.precision) == (
    "sgd", "onecycle", "batch", None)

# %%
live = runner.run(recipe)
print(live.result_line())
if not live.fast:
    viz.curves({"this run": live.history})

# %% [markdown]
# ### Results of the recorded run

# %%
display(Markdown(records.results_or_missing(recipe.name)))
if resnet18 is not None:
    viz.curves({recipe.name: resnet18.history})
else:
    print("No record of s07/resnet18 yet, so no curves: they must come from the "
          "recorded run, never from a smoke run.")

# %% tags=["hide-output"]
if resnet18 is not None:
    display(resnet18.epochs_table())

# %% tags=["remove-input"]
if resnet18 is not None:
    h = resnet18.history
    say(f"The record trained in {resnet18.precision} on {resnet18.device_name} in "
        f"{resnet18.training_time()}. Test accuracy {h.test_acc[-1]:.2f} % "
        f"after the last epoch (best {h.best()[1]:.2f} % at epoch {h.best()[0]}), "
        f"training accuracy {h.train_acc[-1]:.2f} % on augmented images. Its ten "
        "misclassified test images and their GradCAM maps are the gallery of "
        "section 2.")

# %% [markdown]
# ## Exercises
#
# 1. GradCAM on ResNet18's last stage for a 32×32 input: how many cells does the map have,
#    and how many image pixels does one cell stand for?
# 2. Why does FGSM use the *sign* of the gradient rather than the gradient itself?
# 3. With one-cycle, where does the momentum sit when the learning rate is at its peak, and
#    why?
# 4. Adam with $\beta_2 = 0.999$ and no bias correction: by what factor is the second-moment
#    estimate $v$ too small after 10 steps of a constant gradient?
# 5. A gradient of $3\times10^{-9}$ in float16, in bfloat16 and in float32: what is stored?
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
# 4. $v_{10} = (1 - 0.999^{10})\,g^2 \approx 0.00995\,g^2$: about 100 times too small, so
#    the step $m/\sqrt v$ would be about 10 times too large (times the smaller error of $m$).
# 5. float16: 0 (below its smallest subnormal, about $6\times10^{-8}$); bfloat16: about
#    $3.0\times10^{-9}$, rounded to 8 significant bits; float32: $3\times10^{-9}$ to 7
#    digits.
# ```

# %% tags=["remove-cell"]
assert np.isclose(1 - 0.999**10, 0.00995, atol=1e-5)
assert torch.tensor(3e-9, dtype=torch.float16).item() == 0
assert abs(torch.tensor(3e-9, dtype=torch.bfloat16).item() - 3e-9) < 0.02 * 3e-9

# %% [markdown]
# ## Summary
#
# - GradCAM weights a layer's channels by their average gradient; use a layer of 5×5 or more
#   (8×8 here), and check your own implementation against `grad-cam`.
# - A perturbation of a few grey levels, invisible to us, flips predictions: FGSM in one
#   step, iterated attacks more reliably — measure accuracy against ε on the trained model.
# - Saddle points cause plateaus; gradient noise, which falls as $1/\sqrt B$, helps leave
#   them.
# - Momentum smooths and accelerates; Adagrad, RMSProp, Adadelta and Adam rescale per
#   coordinate; Adam's bias correction fixes its first steps; AdamW decouples the weight
#   decay. SGD with momentum for CNNs you can tune, Adam(W) for the rest.
# - The LR range test finds the usable learning rates, read before the loss turns up;
#   one-cycle spends training going up to the largest and down again; plateau schedules
#   react to the validation curve.
# - bfloat16 has float32's range and an eighth of float16's precision: no underflow, no loss
#   scaling, weights kept in float32 by autocast.
# - Flat minima are robust to the train/test shift; noise from large LRs helps find them.
#
# ## References
#
# - Zhou et al., *Learning Deep Features for Discriminative Localization* (CAM), CVPR 2016.
# - Selvaraju et al., *Grad-CAM*, ICCV 2017; Gildenblat et al., *pytorch-grad-cam*, GitHub.
# - Goodfellow, Shlens & Szegedy, *Explaining and Harnessing Adversarial Examples*, ICLR 2015.
# - Kurakin, Goodfellow & Bengio, *Adversarial Examples in the Physical World*, ICLR 2017;
#   Madry et al., *Towards Deep Learning Models Resistant to Adversarial Attacks*, ICLR 2018.
# - Dauphin et al., *Identifying and attacking the saddle point problem in high-dimensional
#   non-convex optimization*, NeurIPS 2014.
# - Sutskever et al., *On the importance of initialization and momentum*, ICML 2013;
#   Duchi, Hazan & Singer, *Adaptive Subgradient Methods* (Adagrad), JMLR 2011; Hinton,
#   *Neural Networks for Machine Learning*, lecture 6e (RMSProp), 2012; Zeiler, *ADADELTA*,
#   2012; Kingma & Ba, *Adam*, ICLR 2015; Loshchilov & Hutter, *Decoupled Weight Decay
#   Regularization*, ICLR 2019; Wilson et al., *The Marginal Value of Adaptive Gradient
#   Methods in Machine Learning*, NeurIPS 2017.
# - Smith, *Cyclical Learning Rates for Training Neural Networks*, WACV 2017; Smith & Topin,
#   *Super-Convergence*, 2019.
# - Micikevicius et al., *Mixed Precision Training*, ICLR 2018; Kalamkar et al., *A Study of
#   BFLOAT16 for Deep Learning Training*, 2019.
# - Hochreiter & Schmidhuber, *Flat Minima*, 1997; Keskar et al., *On Large-Batch Training*,
#   ICLR 2017; Foret et al., *Sharpness-Aware Minimization*, ICLR 2021.
# - He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016.
