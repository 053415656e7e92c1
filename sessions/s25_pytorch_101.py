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
# # Session 2.5 — PyTorch 101
#
# Everything in this course is written in PyTorch. This session is a working tour: tensors and
# their dtype and device, how they share memory with NumPy, indexing and reshaping, autograd, and
# then one network written three times — by hand with manual weight updates, with `nn` and
# `optim`, and with batches and epochs. The assignment is a network with two inputs and two
# outputs: an MNIST image and a random integer go in; the digit and the sum come out.
#
# **Objectives.** After this session you can
# - create, index and reshape tensors, and move them between devices and dtypes;
# - predict when a tensor shares memory with a NumPy array;
# - compute gradients with autograd and update weights by hand;
# - write the standard training loop with `nn.Module`, a loss and an optimizer;
# - build a model with two inputs and two outputs, and evaluate each output.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from evakit import data, models, recipes, records, rf, runner, viz

# %% [markdown]
# ## 1. Tensors: shape, dtype, device
#
# A tensor is an n-dimensional array with a **dtype** (what each number is) and a **device**
# (where it lives: CPU memory or a GPU's). Operations between tensors need the same device;
# mixing dtypes follows promotion rules.

# %%
t = torch.tensor([[1, 2, 3], [4, 5, 6]])
print("tensor", t.tolist(), "shape", tuple(t.shape), "dtype", t.dtype, "device", t.device)
f = t.float() / 2
print("as float32 / 2:", f.tolist(), f.dtype)
print("int + float promotes to:", (t + 0.5).dtype, "| uint8 overflows:",
      (torch.tensor([250], dtype=torch.uint8) + 10).item())
print("this session's device:", S.device, "→", t.to(S.device).device)

# %% [markdown]
# The uint8 addition wraps around (250 + 10 = 4): images are stored as uint8 to save memory,
# and that is why every loader converts them to float before doing arithmetic.
#
# ## 2. Memory shared with NumPy
#
# `torch.from_numpy` and `.numpy()` do **not** copy: the tensor and the array are two views of
# the same memory, so writing through one changes the other. `torch.tensor(array)` copies.

# %%
array = np.zeros(3, dtype=np.float32)
shared = torch.from_numpy(array)
copied = torch.tensor(array)
shared[0] = 7.0
print("array after writing to the shared tensor:", array.tolist())
print("the copy is unchanged:", copied.tolist())
print("same memory?", shared.data_ptr() == array.__array_interface__["data"][0])

# %% [markdown]
# ## 3. Indexing and reshaping
#
# A batch of MNIST images is N × C × H × W. Indexing works as in NumPy; `reshape`/`view`
# change the shape without changing the numbers; `unsqueeze` adds an axis of size 1 and
# `squeeze` removes one — the usual fix when a function wants a batch and you have one image.

# %%
batch = data.load("mnist", "test").images[:8]            # 8 × 1 × 28 × 28, uint8
one = batch[0]                                           # 1 × 28 × 28
print("batch", tuple(batch.shape), "| one image", tuple(one.shape),
      "| its 14th row", tuple(one[0, 13].shape))
print("squeeze →", tuple(one.squeeze(0).shape), "| unsqueeze(0) →", tuple(one.unsqueeze(0).shape))
print("flatten(1) →", tuple(batch.flatten(1).shape), "| every other pixel →",
      tuple(batch[:, :, ::2, ::2].shape))
print("boolean mask: pixels brighter than 200 in image 0:", int((one > 200).sum()))

# %% [markdown]
# ## 4. Autograd
#
# Every operation on a tensor with `requires_grad=True` is recorded; `backward()` walks the
# record in reverse and fills `.grad` with the derivative of the result. For
# $y = x^2 + 3x$ at $x = 2$: $dy/dx = 2x + 3 = 7$.

# %%
x = torch.tensor(2.0, requires_grad=True)
y = x**2 + 3 * x
y.backward()
print(f"y = {y.item()}, dy/dx = {x.grad.item()}")

# %% [markdown]
# ## 5. A network from scratch, weights updated by hand
#
# A two-layer network for MNIST written with nothing but tensors: weights created by hand, the
# forward pass as matrix products, autograd for the gradients, and gradient descent as one line
# per weight, $w \leftarrow w - \eta\, \partial L / \partial w$.

# %%
train_set, test_set = data.load("mnist", "train"), data.load("mnist", "test")
x_train = ((train_set.images.float() / 255 - 0.1307) / 0.3081).flatten(1)
x_test = ((test_set.images.float() / 255 - 0.1307) / 0.3081).flatten(1)
y_train, y_test = train_set.labels, test_set.labels

g = torch.Generator().manual_seed(0)
W1 = (torch.randn(784, 64, generator=g) * (2 / 784) ** 0.5).requires_grad_()
b1 = torch.zeros(64, requires_grad=True)
W2 = (torch.randn(64, 10, generator=g) * (2 / 64) ** 0.5).requires_grad_()
b2 = torch.zeros(10, requires_grad=True)
lr = 0.1
for step in range(200):
    idx = torch.randint(0, len(x_train), (64,), generator=g)
    hidden = (x_train[idx] @ W1 + b1).clamp(min=0)                  # ReLU
    logits = hidden @ W2 + b2
    loss = F.cross_entropy(logits, y_train[idx])
    loss.backward()
    with torch.no_grad():                                           # the update itself
        for w in (W1, b1, W2, b2):
            w -= lr * w.grad
            w.grad = None
    if step % 50 == 0:
        print(f"step {step:3d}  loss {loss.item():.3f}")
with torch.no_grad():
    manual_acc = ((x_test @ W1 + b1).clamp(min=0) @ W2 + b2).argmax(1).eq(y_test).float().mean()
print(f"hand-written network after 200 steps: test accuracy {100 * manual_acc:.1f}%")

# %% [markdown]
# ## 6. The same with `nn` and `optim`
#
# `nn.Linear` holds a weight and a bias, `nn.Sequential` chains layers, and an optimizer does
# the update loop. Same architecture, same initialisation scale, same steps: the two versions
# must agree. We check it by copying the hand-made weights into the module version and taking
# one step each.

# %%
net = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
with torch.no_grad():
    net[0].weight.copy_(W1.T)
    net[0].bias.copy_(b1)
    net[2].weight.copy_(W2.T)
    net[2].bias.copy_(b2)
optimizer = torch.optim.SGD(net.parameters(), lr=lr)
probe = torch.arange(64)
loss = F.cross_entropy(net(x_train[probe]), y_train[probe])
optimizer.zero_grad()
loss.backward()
optimizer.step()

manual = F.cross_entropy((x_train[probe] @ W1 + b1).clamp(min=0) @ W2 + b2, y_train[probe])
manual.backward()
with torch.no_grad():
    W1_next = W1 - lr * W1.grad
torch.testing.assert_close(net[0].weight.T, W1_next)
print("one optim.SGD step == one hand-written step")

# %% [markdown]
# ## 7. Batches and epochs
#
# One **epoch** passes over every training image once; it is split into **batches**. Each batch
# gives one gradient estimate and one update. Larger batches give smoother gradients and better
# hardware use; smaller ones more updates per epoch. `evakit.data.Loader` does the batching
# (shuffled with its own seed), and `evakit.train.fit` is this loop plus evaluation and
# bookkeeping:
#
# ```python
# for epoch in range(epochs):
#     for x, y in loader:            # one batch
#         loss = loss_fn(model(x), y)
#         optimizer.zero_grad()      # forget the previous batch's gradients
#         loss.backward()            # compute this batch's
#         optimizer.step()           # update the weights
# ```
#
# ## Assignment: a digit and a sum
#
# Write a network that takes an MNIST image **and** a random integer from 0 to 9, and outputs
# the digit in the image **and** the sum of the digit and the integer.
#
# **Data generator.** For every image the generator draws an integer with its own seeded
# generator: fresh numbers every training epoch (so the network cannot memorise pairs), and the
# same numbers on every pass over the test set (so test accuracies are comparable). The targets
# are the digit label and label + integer (0 to 18). Here it is as teaching code, checked
# against `evakit.data.DigitSumLoader`, which the recipe uses:

# %%
def digit_sum_batches(loader, generator):
    """Pair each image of each batch with a random integer 0–9; targets are (digit, sum)."""
    for x, digits in loader:
        numbers = torch.randint(0, 10, (len(digits),), generator=generator)
        yield (x, numbers), torch.stack([digits, digits + numbers], dim=1)


images = data.Loader(test_set, 500)
ours = list(digit_sum_batches(images, torch.Generator().manual_seed(7)))
library = list(data.DigitSumLoader(images, seed=7, fixed=True))
assert all(torch.equal(a[0][1], b[0][1]) and torch.equal(a[1], b[1]) for a, b in zip(ours, library))
(example_x, example_n), example_y = library[0]
viz.image_grid(example_x[:8], [f"{d} + {n} = {s}" for n, (d, s) in
                               zip(example_n[:8].tolist(), example_y[:8].tolist())], cols=8);

# %% [markdown]
# **Encoding the integer: one-hot.** The integer enters as a 10-dimensional one-hot vector,
# not as a single number. As a scalar, 9 would be "nine times as much input" as 1 and the
# network would have to undo that scaling; a 4-bit binary code is compact but makes neighbours
# like 7 (0111) and 8 (1000) differ in every bit. One-hot treats the ten values as ten
# categories, each with its own learned weights — what the digit is to the image branch.
#
# **The combining layer.** The image goes through a small CNN to a 64-d embedding (from which
# a linear head predicts the digit). That embedding is **concatenated** with the one-hot integer
# — 74 numbers — and two fully connected layers map it to 19 logits, one for each possible sum.
#
# **Loss.** Both outputs are classifications (10 digits, 19 sums), so each gets a cross-entropy
# and the loss is their sum; the gradient of the sum loss also trains the image branch, since
# the network must read the digit to add it. Treating the sum as regression (MSE on a number)
# would also work but rewards "nearly right" answers that are still wrong.

# %%
recipe = recipes.get("s25/digit-sum")
model = recipe.build_model()
print(model)
out = model(example_x[:4], example_n[:4])
print("output", tuple(out.shape), "= 10 digit logits + 19 sum logits |",
      f"{models.count_parameters(model):,} parameters")
rf.summary(model.features, (1, 28, 28))

# %% [markdown]
# **Evaluation.** Accuracy of the digit head, accuracy of the sum head, and (what `fit` reports
# as accuracy) both right at once. In this run the model is trained on the FAST slice when
# `EVAKIT_FAST` is set, and on all of MNIST otherwise:

# %%
run = runner.run(recipe)
print(f"{run.label}: digit "
      f"{run.metrics['digit_acc']:.2f}%, sum {run.metrics['sum_acc']:.2f}%, both "
      f"{run.history.test_acc[-1]:.2f}%")

# %% [markdown]
# The recorded full run (`evakit train s25/digit-sum --record`, all 60 000 training images):

# %%
record = records.load("s25/digit-sum")
m = record.metrics
display(Markdown(f"**Result.** {record.params:,} parameters; after {record.epochs_run} "
                 f"epochs, digit accuracy **{m['digit_acc']:.2f} %**, sum accuracy "
                 f"**{m['sum_acc']:.2f} %**, both right {m['test_acc']:.2f} % "
                 f"(test images, each with a fixed random integer). *{record.provenance()}.*"))
viz.curves({"s25/digit-sum (both right)": record.history});
display(Markdown(f"The sum head is right on {m['sum_acc']:.2f} % of test images against "
                 f"{m['digit_acc']:.2f} % for the digit head, a gap of "
                 f"{m['digit_acc'] - m['sum_acc']:.2f} points."))

# %% [markdown]
# The sum head needs the digit too — it reads it from the same image embedding — and must also
# learn the addition, a lookup over 10 × 10 combinations; the gap above measures what that
# extra step costs.
#
# ## Exercises
#
# 1. What does `torch.zeros(2, 3).unsqueeze(1).shape` give?
# 2. After `a = np.ones(2); t = torch.tensor(a); a[0] = 5`, what is `t[0]`?
# 3. Why must `optimizer.zero_grad()` be called every step?
#
# ```{admonition} Answers
# :class: dropdown
# (1) (2, 1, 3). (2) 1: `torch.tensor` copies. (3) `backward()` *adds* into `.grad`; without
# zeroing, each step would use the sum of all previous gradients. The cell below checks all three.
# ```

# %%
print("1:", tuple(torch.zeros(2, 3).unsqueeze(1).shape))
a = np.ones(2)
t2 = torch.tensor(a)
a[0] = 5
print("2:", t2[0].item())
w = torch.tensor(1.0, requires_grad=True)
(2 * w).backward()
(2 * w).backward()
print("3: gradient after two backward() calls without zeroing:", w.grad.item(), "(not 2)")

# %% [markdown]
# ## Summary
#
# - Tensors have a shape, a dtype and a device; uint8 wraps around, so convert before arithmetic.
# - `from_numpy` / `.numpy()` share memory; `torch.tensor` copies.
# - Autograd records operations and `backward()` accumulates gradients into `.grad`.
# - A training loop is: forward, loss, zero the gradients, backward, step — per batch, for
#   several epochs.
# - Several inputs are concatenated into one representation; several outputs each get a loss,
#   and the losses are added.
#
# ## References
#
# - A. Paszke et al., *PyTorch: an imperative style, high-performance deep learning library*,
#   NeurIPS (2019).
# - PyTorch documentation, *Autograd mechanics* and *Learning PyTorch with examples*.
