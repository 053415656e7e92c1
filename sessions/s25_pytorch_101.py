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
# Everything in this course is written in PyTorch. This session is a working tour of the
# parts every later session stands on: tensors (dtype, device, memory shared with NumPy,
# indexing), autograd, and then the core API written out in plain sight — a network by
# hand, the same network as an `nn.Module` subclass, a `Dataset` subclass and a
# `DataLoader` to feed it, the training loop line by line (`zero_grad`, forward, loss,
# `backward`, `step`), and saving and loading weights with `state_dict`. Each piece is
# checked against the path evakit provides (`evakit.data.Loader`,
# `evakit.train.train_step` and `fit`), which the rest of the course uses. The assignment
# is a network with two inputs and two outputs: an MNIST image and a random integer go
# in; the digit and the sum come out.
#
# **Objectives.** After this session you can
# - create, index and reshape tensors, and move them between devices and dtypes;
# - predict when a tensor shares memory with a NumPy array;
# - compute gradients with autograd and update weights by hand;
# - write an `nn.Module`, a `Dataset` and a `DataLoader`, and the training loop;
# - save a model's weights with `state_dict` and load them back;
# - build a model with two inputs and two outputs, and evaluate each output.
#
# ```{note}
# **FAST mode.** When `EVAKIT_FAST=1` is set (the book's build and the tests set it),
# MNIST is cut to its first 2,000 training and 1,000 test images: the networks trained on
# this page learn from those 2,000 digits, and the assignment's network trains on them
# for 3 epochs — a check that the code runs, not a result. The assignment's accuracies
# discussed here are the recorded full run's (all 60,000 training images), shown with its
# provenance.
# ```

# %%
import evakit

S = evakit.setup(seed=1)

# %%
import copy
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn
from torch.utils.data import DataLoader, Dataset

from evakit import data, models, recipes, records, rf, runner, tasks, train, viz
from evakit.viz import Arrow, Box

# %% tags=["remove-cell"]
assert data.FAST_SIZES == {"train": 2000, "test": 1000}          # the note above
assert recipes.get("s25/digit-sum").fast.epochs == 3

# %% [markdown]
# ## 1. Tensors: shape, dtype, device
#
# A tensor is an n-dimensional array with a **dtype** (what each number is) and a
# **device** (where it lives: CPU memory or a GPU's). Operations between tensors need the
# same device; mixing dtypes follows promotion rules.

# %%
t = torch.tensor([[1, 2, 3], [4, 5, 6]])
print("tensor", t.tolist(), "shape", tuple(t.shape), "dtype", t.dtype,
      "device", t.device)
f = t.float() / 2
print("as float32 / 2:", f.tolist(), f.dtype)
print("int + float promotes to:", (t + 0.5).dtype, "| uint8 overflows:",
      (torch.tensor([250], dtype=torch.uint8) + 10).item())
print("this session's device:", S.device, "→", t.to(S.device).device)

# %% [markdown]
# The uint8 addition wraps around (250 + 10 = 4, that is 260 − 256): images are stored as
# uint8 to save memory, and that is why every loader converts them to float before doing
# arithmetic.
#
# ## 2. Memory shared with NumPy
#
# `torch.from_numpy` and `.numpy()` do **not** copy: the tensor and the array are two
# views of the same memory, so writing through one changes the other.
# `torch.tensor(array)` copies.

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
# `squeeze` removes one — the usual fix when a function wants a batch and you have one
# image.

# %%
batch = data.load("mnist", "test").images[:8]            # 8 × 1 × 28 × 28, uint8
one = batch[0]                                           # 1 × 28 × 28
print("batch", tuple(batch.shape), "| one image", tuple(one.shape),
      "| its 14th row", tuple(one[0, 13].shape))
print("squeeze →", tuple(one.squeeze(0).shape),
      "| unsqueeze(0) →", tuple(one.unsqueeze(0).shape))
print("flatten(1) →", tuple(batch.flatten(1).shape), "| every other pixel →",
      tuple(batch[:, :, ::2, ::2].shape))
print("boolean mask: pixels brighter than 200 in image 0:", int((one > 200).sum()))

# %% [markdown]
# ## 4. Autograd
#
# Every operation on a tensor with `requires_grad=True` is recorded; `backward()` walks
# the record in reverse and fills `.grad` with the derivative of the result. For
# $y = x^2 + 3x$ at $x = 2$: $dy/dx = 2x + 3 = 7$.

# %%
x = torch.tensor(2.0, requires_grad=True)
y = x**2 + 3 * x
y.backward()
print(f"y = {y.item()}, dy/dx = {x.grad.item()}")

# %% [markdown]
# ## 5. A network from scratch, weights updated by hand
#
# A two-layer network for MNIST written with nothing but tensors: weights created by
# hand, the forward pass as matrix products, autograd for the gradients, and gradient
# descent as one line per weight, $w \leftarrow w - \eta\, \partial L / \partial w$.

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
    scores = (x_test @ W1 + b1).clamp(min=0) @ W2 + b2
    manual_acc = scores.argmax(1).eq(y_test).float().mean()
print(f"hand-written network after 200 steps: test accuracy {100 * manual_acc:.1f}% "
      f"(trained on {len(x_train):,} images)")

# %% [markdown]
# ## 6. The same network as an `nn.Module`
#
# Real code packs the weights and the forward pass into a class. A subclass of
# `nn.Module` creates its layers in `__init__` (each `nn.Linear` holds a weight and a
# bias, registered as *parameters*) and says how they connect in `forward`. Calling the
# module, `net(x)`, runs `forward` (plus any hooks).

# %%
class TwoLayerNet(nn.Module):
    """784 pixels → 64 hidden units (ReLU) → 10 digit scores."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = nn.Linear(28 * 28, hidden)
        self.out = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(x.flatten(1))))


net = TwoLayerNet()
for name, p in net.named_parameters():
    print(f"{name:14s} {tuple(p.shape)}")
print("parameters:", sum(p.numel() for p in net.parameters()))

# %% [markdown]
# `nn.Linear` stores its weight as out × in and computes $x W^\top + b$, so the
# hand-made `W1` (in × out) goes in transposed. With the same weights, one step of
# `torch.optim.SGD` must equal one hand-written update:

# %%
with torch.no_grad():
    net.hidden.weight.copy_(W1.T)
    net.hidden.bias.copy_(b1)
    net.out.weight.copy_(W2.T)
    net.out.bias.copy_(b2)
optimizer = torch.optim.SGD(net.parameters(), lr=lr)
probe = torch.arange(64)
loss = F.cross_entropy(net(x_train[probe]), y_train[probe])
optimizer.zero_grad()
loss.backward()
optimizer.step()

manual = F.cross_entropy((x_train[probe] @ W1 + b1).clamp(min=0) @ W2 + b2,
                         y_train[probe])
manual.backward()
with torch.no_grad():
    W1_next = W1 - lr * W1.grad
torch.testing.assert_close(net.hidden.weight.T, W1_next)
print("one optim.SGD step == one hand-written step")

# %% [markdown]
# ## 7. Feeding it: `Dataset` and `DataLoader`
#
# PyTorch splits data loading in two. A **`Dataset`** answers two questions: how many
# examples (`__len__`) and what example `i` is (`__getitem__`, here one normalized image
# and its label). A **`DataLoader`** asks the dataset for `batch_size` examples at a time
# (in a new random order every epoch with `shuffle=True`), and *collates* them — stacks
# them into one batch tensor.

# %%
class MnistDataset(Dataset):
    """MNIST images as float tensors normalized with the training set's mean and std."""

    def __init__(self, images: data.ImageSet) -> None:
        self.images, self.labels = images.images, images.labels
        self.mean, self.std = images.mean[0], images.std[0]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = (self.images[i].float() / 255 - self.mean) / self.std
        return image, self.labels[i]


dataset = MnistDataset(train_set)
loader = DataLoader(dataset, batch_size=128, shuffle=True,
                    generator=torch.Generator().manual_seed(0))
images, labels = next(iter(loader))
print(f"{len(dataset):,} examples; example 0: {tuple(dataset[0][0].shape)}, "
      f"label {int(dataset[0][1])}")
print(f"{len(loader)} batches of up to {loader.batch_size}; first batch "
      f"{tuple(images.shape)}, labels {tuple(labels.shape)}")

# %% [markdown]
# `evakit.data.Loader` gives the same batches another way: it keeps the whole uint8 set
# as one tensor (on the GPU, when there is one) and converts and normalizes a batch with
# a handful of tensor operations, instead of calling `__getitem__` once per image and
# stacking the results. Unshuffled, the two must agree batch for batch; then the cell
# times a batch of each on the machine running it:

# %%
ours = DataLoader(MnistDataset(test_set), batch_size=500)
fast = data.Loader(test_set, 500)
for (xa, ya), (xb, yb) in zip(ours, fast, strict=True):
    torch.testing.assert_close(xa, xb)
    assert torch.equal(ya, yb)
print(f"DataLoader(MnistDataset) == evakit Loader on all {len(fast)} test batches")


def ms_per_batch(batches, n: int = 10) -> float:
    """Milliseconds per batch over the first `n` batches."""
    start = time.perf_counter()
    for _ in itertools.islice(batches, n):
        pass
    return 1000 * (time.perf_counter() - start) / n


slow_ms = ms_per_batch(DataLoader(dataset, batch_size=128, shuffle=True))
fast_ms = ms_per_batch(data.Loader(train_set, 128, shuffle=True))
print(f"a batch of 128 on this machine: DataLoader(MnistDataset) {slow_ms:.1f} ms, "
      f"evakit Loader {fast_ms:.1f} ms; the DataLoader takes "
      f"{slow_ms / fast_ms:.1f}× the Loader's time")

# %% [markdown]
# ## 8. The training loop, written out
#
# Training is five lines repeated for every batch, inside a loop over epochs (one
# **epoch** is one pass over the training set):
#
# 1. `optimizer.zero_grad()` — forget the previous batch's gradients (`backward` *adds*
#    into `.grad`);
# 2. `out = model(x)` — the forward pass;
# 3. `loss = loss_fn(out, y)` — one number saying how wrong the batch is;
# 4. `loss.backward()` — autograd fills every parameter's `.grad`;
# 5. `optimizer.step()` — the update, $w \leftarrow w - \eta\,\partial L/\partial w$ for
#    SGD.
#
# `model.train()` and `model.eval()` switch layers that behave differently in training
# (dropout, batch norm — session 3); `torch.no_grad()` skips recording operations when no
# gradient is needed.

# %%
def train_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer) -> float:
    """One epoch of training; returns the mean training loss."""
    model.train()
    total, seen = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(y), seen + len(y)
    return total / seen


def accuracy(model: nn.Module, batches) -> float:
    """Percentage of correctly classified examples."""
    model.eval()
    correct, seen = 0, 0
    with torch.no_grad():
        for x, y in batches:
            correct += (model(x).argmax(1) == y).sum().item()
            seen += len(y)
    return 100 * correct / seen


torch.manual_seed(0)
model = TwoLayerNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
test_batches = DataLoader(MnistDataset(test_set), batch_size=1000)
for epoch in range(1, 4):
    mean_loss = train_epoch(model, loader, optimizer)
    print(f"epoch {epoch}: train loss {mean_loss:.3f}, "
          f"test accuracy {accuracy(model, test_batches):.1f}%")

# %% [markdown]
# `evakit.train.train_step` is the same five lines (plus moving the batch to the model's
# device and, when asked, bf16 autocast); `evakit.train.fit` is the epoch loop around it,
# with evaluation, a history and checkpoints. Two identical copies of a network, one
# trained by our loop and one by `fit`, on the same batches in the same order, must end
# with identical weights:

# %%
torch.manual_seed(0)
start = TwoLayerNet()
a, b = copy.deepcopy(start), copy.deepcopy(start)
x0, y0 = next(iter(data.Loader(train_set, 64)))
opt_a = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9)
opt_b = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
opt_a.zero_grad()
F.cross_entropy(a(x0), y0).backward()
opt_a.step()
train.train_step(b, x0, y0, opt_b)
assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
print("one hand-written step == evakit.train.train_step")

a, b = copy.deepcopy(start), copy.deepcopy(start)
opt_a = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9)
opt_b = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
train_epoch(a, data.Loader(train_set, 128, shuffle=True, seed=0), opt_a)
history = train.fit(b, data.Loader(train_set, 128, shuffle=True, seed=0),
                    data.Loader(test_set, 1000), 1, opt_b, verbose=False,
                    progress=False)
assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
print(f"one epoch of our loop == evakit.train.fit (which also reports: test accuracy "
      f"{history.test_acc[-1]:.1f}%)")

# %% [markdown]
# ## 9. Saving and loading weights: `state_dict`
#
# A module's **`state_dict`** is an ordered dictionary from each parameter's (and
# buffer's) name to its tensor. `torch.save` writes it to a file; to use the weights
# again, build the same class and `load_state_dict` them into it. The file holds tensors
# by name, not code: loading needs the class. `torch.load(..., weights_only=True)` refuses
# anything but tensors and plain containers, so a file from elsewhere cannot run code on
# your machine.

# %%
state = model.state_dict()
print({name: tuple(tensor.shape) for name, tensor in state.items()})
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "two_layer.pt"
    torch.save(state, path)
    restored = TwoLayerNet()
    restored.load_state_dict(torch.load(path, weights_only=True))
restored.eval()
with torch.no_grad():
    torch.testing.assert_close(restored(x_test), model(x_test))
print(f"reloaded model: test accuracy {accuracy(restored, test_batches):.1f}%, "
      "outputs identical to the saved model's")

# %% [markdown]
# `evakit.records.load_model(name)` does exactly this for the course's small recorded
# models: it builds the recipe's class and loads the weights kept beside the record.
#
# ## Assignment: a digit and a sum
#
# Write a network that takes an MNIST image **and** a random integer from 0 to 9, and
# outputs the digit in the image **and** the sum of the digit and the integer.
#
# **Data generator.** For every image the generator draws an integer with its own seeded
# generator: fresh numbers every training epoch (so the network cannot memorise pairs),
# and the same numbers on every pass over the test set (so test accuracies are
# comparable). The targets are the digit label and label + integer (0 to 18). Here it is
# as teaching code, checked against `evakit.data.DigitSumLoader`, which the recipe uses:

# %%
def digit_sum_batches(loader, generator):
    """Pair each image of each batch with a random integer 0–9; targets (digit, sum)."""
    for x, digits in loader:
        numbers = torch.randint(0, 10, (len(digits),), generator=generator)
        yield (x, numbers), torch.stack([digits, digits + numbers], dim=1)


images = data.Loader(test_set, 500)
ours = list(digit_sum_batches(images, torch.Generator().manual_seed(7)))
library = list(data.DigitSumLoader(images, seed=7, fixed=True))
assert all(torch.equal(a[0][1], b[0][1]) and torch.equal(a[1], b[1])
           for a, b in zip(ours, library, strict=True))
(example_x, example_n), example_y = library[0]
viz.image_grid(example_x[:8], [f"{d} + {n} = {s}" for n, (d, s) in
                               zip(example_n[:8].tolist(), example_y[:8].tolist())],
               cols=8);

# %% [markdown]
# **Encoding the integer: one-hot.** The integer enters as a 10-dimensional one-hot
# vector, not as a single number. As a scalar, 9 would be "nine times as much input" as 1
# and the network would have to undo that scaling; a 4-bit binary code is compact but
# makes neighbours like 7 (0111) and 8 (1000) differ in every bit. One-hot treats the ten
# values as ten categories, each with its own learned weights — what the digit is to the
# image branch.
#
# **The combining layer.** The image goes through a small CNN to an embedding (from
# which a linear head predicts the digit). That embedding is **concatenated** with the
# one-hot integer, and two fully connected layers map the result to 19 logits, one for
# each possible sum. The network, drawn from the model itself:

# %%
recipe = recipes.get("s25/digit-sum")
model = recipe.build_model()
channels = [m.out_channels for m in model.features.modules()
            if isinstance(m, nn.Conv2d)]
embed = model.digit_head.in_features
fc1, fc2 = [m for m in model.sum_head if isinstance(m, nn.Linear)]
out = model(example_x[:4], example_n[:4])
output_colour = "#fde2c8"
viz.diagram(
    {"image": Box("image\n1×28×28", 0, 0),
     "cnn": Box(f"CNN: {len(channels)} conv blocks\n"
                f"{'→'.join(map(str, channels))} channels,\nGAP, FC", 1, 0, width=0.86),
     "digit_head": Box(f"digit head\nLinear {embed}→{model.digit_head.out_features}",
                       2, 0),
     "digit": Box(f"digit:\n{model.digit_head.out_features} logits", 3, 0,
                  color=output_colour),
     "number": Box("integer 0–9", 0, 1),
     "onehot": Box("one-hot", 1, 1),
     "concat": Box(f"concatenate\n{embed} + 10 = {fc1.in_features}", 2, 1),
     "sum_head": Box(f"sum head\nFC {fc1.in_features}→{fc1.out_features}, ReLU,\n"
                     f"FC {fc2.in_features}→{fc2.out_features}", 3, 1, width=0.86),
     "sum": Box(f"sum:\n{fc2.out_features} logits", 4, 1, color=output_colour)},
    [("image", "cnn"), ("cnn", "digit_head", str(embed)), ("digit_head", "digit"),
     Arrow("cnn", "concat", str(embed), label_at=0.45), ("number", "onehot"),
     ("onehot", "concat", "10"), ("concat", "sum_head", str(fc1.in_features)),
     ("sum_head", "sum")],
    title="the digit + sum network (s25/digit-sum)", col_width=2.0);
print(f"output {tuple(out.shape)} = {model.digit_head.out_features} digit logits + "
      f"{fc2.out_features} sum logits | {models.count_parameters(model):,} parameters")
rf.summary(model.features, (1, 28, 28)).select(
    ["layer", "type", "output", "RF", "params"],
    caption="the image branch (model.features), layer by layer")

# %% [markdown]
# **Loss.** Both outputs are classifications (10 digits, 19 sums), so each gets a
# cross-entropy and the loss is their sum; the gradient of the sum loss also trains the
# image branch, since the network must read the digit to add it. Treating the sum as
# regression (MSE on a number) would also work but rewards "nearly right" answers that
# are still wrong. As code, checked against the task's loss that the recipe trains with:

# %%
def digit_sum_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the digit (first 10 logits) + that of the sum (last 19)."""
    return F.cross_entropy(out[:, :10], y[:, 0]) + F.cross_entropy(out[:, 10:], y[:, 1])


torch.testing.assert_close(digit_sum_loss(out, example_y[:4]),
                           tasks.digit_sum_loss(out, example_y[:4]))
print(f"loss of the untrained network on 4 examples: "
      f"{digit_sum_loss(out, example_y[:4]).item():.3f}")

# %% [markdown]
# **Training and evaluation.** From here on the course trains with `evakit.data.Loader`:
# `evakit.runner.run(recipe)` builds the model and the batches, and calls `fit` — the loop
# of section 8. It reports the accuracy of the digit head, of the sum head, and (as *the*
# accuracy) of both right at once. On this page it trains on the FAST slice when
# `EVAKIT_FAST` is set, and on all of MNIST otherwise:

# %%
run = runner.run(recipe, verbose=False)
print(f"{run.label}: digit {run.metrics['digit_acc']:.2f}%, "
      f"sum {run.metrics['sum_acc']:.2f}%, both {run.history.test_acc[-1]:.2f}%")

# %% [markdown]
# The recorded full run (`evakit train s25/digit-sum --record`, all 60,000 training
# images):

# %%
record = records.load("s25/digit-sum")
m = record.metrics
display(Markdown(
    f"**Result.** {record.params:,} parameters; after {record.epochs_run} epochs, "
    f"digit accuracy **{m['digit_acc']:.2f} %**, sum accuracy **{m['sum_acc']:.2f} "
    f"%**, both right {m['test_acc']:.2f} % (on {record.test_set()}, each with a "
    f"fixed random integer). *{record.provenance()}.*"))
viz.curves({"s25/digit-sum (both right)": record.history});
display(Markdown(
    f"The sum head is right on {m['sum_acc']:.2f} % of test images against "
    f"{m['digit_acc']:.2f} % for the digit head, a gap of "
    f"{m['digit_acc'] - m['sum_acc']:.2f} points."))

# %% tags=["remove-cell"]
assert m["sum_acc"] < m["digit_acc"] and m["test_acc"] <= m["sum_acc"]  # prose below

# %% [markdown]
# The sum head needs the digit too — it reads it from the same image embedding — and must
# also learn the addition, a lookup over 10 × 10 combinations; the gap above measures what
# that extra step costs.
#
# ## Exercises
#
# 1. What does `torch.zeros(2, 3).unsqueeze(1).shape` give?
# 2. After `a = np.ones(2); t = torch.tensor(a); a[0] = 5`, what is `t[0]`?
# 3. Why must `optimizer.zero_grad()` be called every step?
# 4. A `DataLoader` with `batch_size=128` over all 60,000 MNIST training images: how many
#    batches per epoch, and how many images in the last one?
# 5. A file written by `torch.save(model.state_dict(), path)`: what else do you need to
#    use those weights?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
numbers = np.ones(2)
t2 = torch.tensor(numbers)
numbers[0] = 5
w = torch.tensor(1.0, requires_grad=True)
(2 * w).backward()
(2 * w).backward()
full = DataLoader(range(60_000), batch_size=128)
last_batch = len(list(full)[-1])
display(Markdown(f"""```{{admonition}} Answers
:class: dropdown
1. `{tuple(torch.zeros(2, 3).unsqueeze(1).shape)}`.
2. {t2[0].item():g}: `torch.tensor` copies, so changing the array later does not reach
   the tensor.
3. `backward()` *adds* into `.grad`. Without zeroing, each step would use the sum of all
   previous gradients: $\\frac{{d(2w)}}{{dw}} = 2$, yet after two `backward()` calls
   `w.grad` is {w.grad.item():g}.
4. {len(full)} batches; the last holds {last_batch} images
   (60,000 = {len(full) - 1} · 128 + {last_batch}).
5. The code of the model's class: build an instance, then `load_state_dict` the
   weights into it. The file holds tensors by name, not the network's structure.
```"""))

# %% [markdown]
# ## Summary
#
# - Tensors have a shape, a dtype and a device; uint8 wraps around, so convert before
#   arithmetic.
# - `from_numpy` / `.numpy()` share memory; `torch.tensor` copies.
# - Autograd records operations and `backward()` accumulates gradients into `.grad`.
# - An `nn.Module` holds the parameters and the `forward`; a `Dataset` says what example
#   `i` is, a `DataLoader` batches and shuffles it.
# - A training loop is: zero the gradients, forward, loss, backward, step — per batch,
#   for several epochs. `evakit.train.fit` is that loop, fed by `evakit.data.Loader`.
# - `state_dict` + `torch.save` / `load_state_dict` keep and restore the weights.
# - Several inputs are concatenated into one representation; several outputs each get a
#   loss, and the losses are added.
#
# ## References
#
# - A. Paszke et al., *PyTorch: an imperative style, high-performance deep learning
#   library*, NeurIPS (2019).
# - PyTorch documentation, *Autograd mechanics*, *Datasets & DataLoaders*, *Saving and
#   loading models*, and *Learning PyTorch with examples*.
