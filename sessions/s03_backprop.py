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
# # Session 3 — Backpropagation and architectural basics
#
# How does a network learn its weights? By gradient descent: nudge every weight against the
# derivative of the error. **Backpropagation** computes all those derivatives at once, with the
# chain rule, from the output back to the input. This session derives it by hand for a network
# small enough to hold in your head, builds it as a spreadsheet whose every cell is a live
# formula (recalculated by a real spreadsheet engine and checked against PyTorch), and watches
# the learning rate shape the error curve. Then it turns to the building blocks that every
# later network uses — softmax and the negative log-likelihood, max pooling, batch norm,
# dropout, 1 × 1 transitions, global average pooling — and solves the assignment: 99.4 % on
# MNIST with fewer than 20 000 parameters.
#
# ```{note}
# **FAST mode on this page.** Sections 1–7 compute exactly the same thing in every mode. With
# `EVAKIT_FAST=1` (the tests, and the build of this book) the two cells that train — the
# batch-size comparison of section 8 and the live run of the assignment — use the first 2,000
# training and 1,000 test images for a few epochs: they show the code working on a small
# slice, not what the network can reach. The assignment's result is read from its recorded
# full run in `book/records/`. Without `EVAKIT_FAST` (in Colab) the same cells train on all of
# MNIST.
# ```
#
# **Objectives.** After this session you can
# - derive every gradient of a 2-2-2 sigmoid network with the chain rule;
# - read the backprop workbook and predict how the learning rate changes its error curve;
# - explain why a linear activation cannot learn XOR and why networks output log-softmax;
# - place max pooling, batch norm, dropout, 1 × 1 transitions and GAP in a network, and say why;
# - build and verify a network that meets the session's constraints.
#
# {download}`Download the backprop workbook (backprop.xlsx) <../book/downloads/backprop.xlsx>`
# — every derived cell is a formula; change a weight on the *network* sheet and watch it flow.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import math
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from evakit import check, data, models, recipes, records, rf, runner, sheets, viz
from evakit.table import Table

# %% [markdown]
# ## 1. The network and its error
#
# Two inputs, two hidden neurons, two outputs, sigmoid activations $\sigma(z) = 1/(1+e^{-z})$,
# no biases:
#
# $$
# \begin{aligned}
# h_1 &= w_1 i_1 + w_2 i_2, & a_{h_1} &= \sigma(h_1), &
# h_2 &= w_3 i_1 + w_4 i_2, & a_{h_2} &= \sigma(h_2),\\
# o_1 &= w_5 a_{h_1} + w_6 a_{h_2}, & a_{o_1} &= \sigma(o_1), &
# o_2 &= w_7 a_{h_1} + w_8 a_{h_2}, & a_{o_2} &= \sigma(o_2),
# \end{aligned}
# $$
#
# $$ E_\text{total} = E_1 + E_2 = \tfrac12 (t_1 - a_{o_1})^2 + \tfrac12 (t_2 - a_{o_2})^2 . $$
#
# The course's numbers: inputs $(0.05, 0.10)$, targets $(0.01, 0.99)$, weights
# $w_1 \dots w_8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55$. The same network as a
# picture, with those numbers on it:

# %% tags=["remove-input"]
def draw_network(inputs, targets, weights):
    """The 2-2-2 network: neurons as circles, weights on the edges, the error."""
    fig, ax = plt.subplots(figsize=(11, 3.4))
    r, dx, dy = 0.4, 2.8, 1.5
    nodes = {"i1": (0, dy), "i2": (0, 0), "h1": (dx, dy), "h2": (dx, 0),
             "o1": (2 * dx, dy), "o2": (2 * dx, 0)}
    text = {"i1": "$i_1$", "i2": "$i_2$",
            "h1": "$h_1 | a_{h_1}$", "h2": "$h_2 | a_{h_2}$",
            "o1": "$o_1 | a_{o_1}$", "o2": "$o_2 | a_{o_2}$"}
    edges = [("i1", "h1"), ("i2", "h1"), ("i1", "h2"), ("i2", "h2"),
             ("h1", "o1"), ("h2", "o1"), ("h1", "o2"), ("h2", "o2")]
    for k, (a, b) in enumerate(edges):
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        length = math.hypot(x1 - x0, y1 - y0)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        ax.annotate("", (x1 - r * ux, y1 - r * uy), (x0 + r * ux, y0 + r * uy),
                    arrowprops=dict(arrowstyle="-|>", color="0.45", lw=1.2))
        f = 0.5 if y0 == y1 else 0.3           # crossing edges: labels near their start
        ax.text(x0 + f * (x1 - x0), y0 + f * (y1 - y0), f"$w_{k + 1}$ = {weights[k]:g}",
                ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="0.8"))
    colours = {"i": "#dbe9f6", "h": "#fde2c8", "o": "#d5ecd4"}
    for name, (x, y) in nodes.items():
        ax.add_patch(plt.Circle((x, y), r, fc=colours[name[0]], ec="0.3"))
        ax.text(x, y, text[name], ha="center", va="center", fontsize=10)
    for k, y in ((1, dy), (2, 0)):
        ax.text(-r - 0.1, y, f"{inputs[k - 1]:g}", ha="right", va="center", fontsize=10)
        ax.annotate("", (2 * dx + r + 0.6, y), (2 * dx + r, y),
                    arrowprops=dict(arrowstyle="-|>", color="0.45"))
        ax.text(2 * dx + r + 0.7, y,
                f"$E_{k} = \\frac{{1}}{{2}}(t_{k} - a_{{o_{k}}})^2$,"
                f"  $t_{k}$ = {targets[k - 1]:g}", va="center", fontsize=11)
    ax.text(2 * dx + r + 0.7, dy / 2, r"$E_\mathrm{total} = E_1 + E_2$", va="center",
            fontsize=12)
    for x, label in ((0, "inputs"), (dx, "hidden, σ"), (2 * dx, "outputs, σ")):
        ax.text(x, dy + r + 0.25, label, ha="center", fontsize=10, color="0.3")
    ax.set_xlim(-1.0, 2 * dx + 4.3)
    ax.set_ylim(-r - 0.15, dy + r + 0.55)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


draw_network(sheets.DEFAULT_INPUTS, sheets.DEFAULT_TARGETS, sheets.DEFAULT_WEIGHTS);

# %% [markdown]
# ## 2. Backpropagation, step by step
#
# **Output weights.** $w_5$ reaches the error through one path: $w_5 \to o_1 \to a_{o_1} \to
# E_1$. The chain rule multiplies the local derivatives along it:
#
# $$
# \frac{\partial E_\text{total}}{\partial w_5}
# = \frac{\partial E_1}{\partial a_{o_1}} \cdot \frac{\partial a_{o_1}}{\partial o_1} \cdot
#   \frac{\partial o_1}{\partial w_5}
# = (a_{o_1} - t_1) \cdot a_{o_1}(1 - a_{o_1}) \cdot a_{h_1},
# $$
#
# using $\sigma'(z) = \sigma(z)(1 - \sigma(z))$. Likewise
# $\partial E/\partial w_6 = (a_{o_1} - t_1)\,a_{o_1}(1 - a_{o_1})\,a_{h_2}$,
# $\partial E/\partial w_7 = (a_{o_2} - t_2)\,a_{o_2}(1 - a_{o_2})\,a_{h_1}$ and
# $\partial E/\partial w_8 = (a_{o_2} - t_2)\,a_{o_2}(1 - a_{o_2})\,a_{h_2}$.
#
# **Hidden weights.** $a_{h_1}$ feeds *both* outputs, so its derivative sums two paths:
#
# $$
# \frac{\partial E_\text{total}}{\partial a_{h_1}}
# = (a_{o_1} - t_1)\,a_{o_1}(1 - a_{o_1})\,w_5 + (a_{o_2} - t_2)\,a_{o_2}(1 - a_{o_2})\,w_7 ,
# $$
#
# and then one more step down to the weight:
#
# $$
# \frac{\partial E_\text{total}}{\partial w_1}
# = \frac{\partial E_\text{total}}{\partial a_{h_1}} \cdot a_{h_1}(1 - a_{h_1}) \cdot i_1 ,
# \qquad
# \frac{\partial E_\text{total}}{\partial w_2}
# = \frac{\partial E_\text{total}}{\partial a_{h_1}} \cdot a_{h_1}(1 - a_{h_1}) \cdot i_2 ,
# $$
#
# and the same with $a_{h_2}$, $w_6$, $w_8$ for $w_3$ and $w_4$. Notice the reuse: the factor
# $(a_{o} - t)\,a_o(1-a_o)$ computed for the output weights is needed again for the hidden ones.
# Computing from the output backwards, each such factor is computed once — that is all
# "backpropagation" means.
#
# **Update.** Every weight moves against its gradient, scaled by the learning rate $\eta$:
# $w \leftarrow w - \eta \, \partial E_\text{total} / \partial w$. Then the forward pass runs again.
#
# The same derivation, as code, checked against autograd on the course's numbers:

# %%
def gradients_by_hand(i, t, w):
    """The eight ∂E_total/∂w of the 2-2-2 sigmoid network, from the formulas above."""
    sig = torch.sigmoid
    a_h1, a_h2 = sig(w[0] * i[0] + w[1] * i[1]), sig(w[2] * i[0] + w[3] * i[1])
    a_o1, a_o2 = sig(w[4] * a_h1 + w[5] * a_h2), sig(w[6] * a_h1 + w[7] * a_h2)
    d_o1, d_o2 = (a_o1 - t[0]) * a_o1 * (1 - a_o1), (a_o2 - t[1]) * a_o2 * (1 - a_o2)
    d_h1 = (d_o1 * w[4] + d_o2 * w[6]) * a_h1 * (1 - a_h1)
    d_h2 = (d_o1 * w[5] + d_o2 * w[7]) * a_h2 * (1 - a_h2)
    return torch.stack([d_h1 * i[0], d_h1 * i[1], d_h2 * i[0], d_h2 * i[1],
                        d_o1 * a_h1, d_o1 * a_h2, d_o2 * a_h1, d_o2 * a_h2])


def error(i, t, w):
    """The forward pass and E_total, in tensors so that autograd can follow it."""
    a_h = torch.sigmoid(torch.stack([w[0] * i[0] + w[1] * i[1],
                                     w[2] * i[0] + w[3] * i[1]]))
    a_o = torch.sigmoid(torch.stack([w[4] * a_h[0] + w[5] * a_h[1],
                                     w[6] * a_h[0] + w[7] * a_h[1]]))
    return (0.5 * (t - a_o) ** 2).sum()


i = torch.tensor(sheets.DEFAULT_INPUTS, dtype=torch.float64)
t = torch.tensor(sheets.DEFAULT_TARGETS, dtype=torch.float64)
w = torch.tensor(sheets.DEFAULT_WEIGHTS, dtype=torch.float64, requires_grad=True)
E_total = error(i, t, w)
E_total.backward()
torch.testing.assert_close(gradients_by_hand(i, t, w.detach()), w.grad)
Table(["weight", "value", "∂E_total/∂w (by hand = autograd)"],
      [[f"w{k + 1}", w[k].item(), round(w.grad[k].item(), 9)] for k in range(8)],
      f"E_total = {E_total.item():.9f} at the starting weights")

# %% [markdown]
# ## 3. The workbook
#
# `evakit.sheets.backprop_workbook` writes the same computation as an Excel workbook: a
# *network* sheet with the inputs, targets and initial weights; one sheet per learning rate,
# one row per step, with every quantity above as a **live formula** referring to other cells
# (the next row's weights are this row's minus $\eta$ times its gradients); a *notes* sheet
# with the chain-rule formula of every column; and line charts of $E_\text{total}$. Nothing in
# it is a number computed by Python except the inputs you may edit.
#
# To show its values, the notebook hands the workbook to a spreadsheet engine, which
# recalculates every formula, and reads the results back: LibreOffice when it is installed
# (in Colab it is installed first), else the pure-Python
# [`formulas`](https://github.com/vinci1it2000/formulas) package. The next cell prints which
# engine computed the numbers shown here.

# %%
if "google.colab" in sys.modules and shutil.which("soffice") is None:
    import subprocess

    subprocess.run("apt-get -qq install -y libreoffice-calc-nogui > /dev/null",
                   shell=True, check=True)

learning_rates = sheets.DEFAULT_LEARNING_RATES
workdir = Path(tempfile.mkdtemp(prefix="s03-"))
workbook = sheets.backprop_workbook(workdir / "backprop.xlsx",
                                    learning_rates=learning_rates, steps=50)
computed = sheets.recalculate(workbook, workdir / "recalculated")
columns = {lr: sheets.read_columns(computed.path, f"lr={lr:g}")
           for lr in learning_rates}
missing = ("" if "libreoffice" in sheets.engines_available()
           else "; LibreOffice was not found")
print(f"Recalculated by {computed.label}{missing}.")
shown = ("w1", "w5", "a_h1", "a_o1", "a_o2", "E_total", "∂E_total/∂w1", "∂E_total/∂w5")
first_rows = columns[0.5]
Table(["step", *shown],
      [[first_rows["step"][s]] + [round(first_rows[c][s], 6) for c in shown]
       for s in range(6)],
      f"Sheet lr=0.5, first six rows, as computed by {computed.label}")

# %% [markdown]
# Is the spreadsheet right? Run the same 50 steps of gradient descent in PyTorch, with
# autograd computing the gradients, and compare every weight and every error, step by step,
# on every sheet:

# %%
def descend(lr: float, steps: int = 50) -> dict[str, list[float]]:
    """Gradient descent with autograd: the weights and E_total at every step."""
    w = torch.tensor(sheets.DEFAULT_WEIGHTS, dtype=torch.float64, requires_grad=True)
    trace = {name: [] for name in (*sheets.WEIGHTS, "E_total")}
    for _ in range(steps):
        E = error(i, t, w)
        for k, name in enumerate(sheets.WEIGHTS):
            trace[name].append(w[k].item())
        trace["E_total"].append(E.item())
        E.backward()
        with torch.no_grad():
            w -= lr * w.grad
        w.grad = None
    return trace


largest = 0.0
for lr in learning_rates:
    for name, values in descend(lr).items():
        sheet = torch.tensor(columns[lr][name], dtype=torch.float64)
        torch_values = torch.tensor(values, dtype=torch.float64)
        torch.testing.assert_close(sheet, torch_values, rtol=0, atol=1e-9)
        largest = max(largest, (sheet - torch_values).abs().max().item())
print(f"{len(learning_rates)} sheets × 50 steps × 9 columns: largest difference "
      f"between {computed.label} and autograd {largest:.1e}")

# %% [markdown]
# `tests/test_sheets.py` repeats this check for every spreadsheet engine installed, and fails
# if a derived cell is a typed number instead of a formula. The first row's gradients are the
# ones in the table of section 2.
#
# ## 4. The learning rate, read from the curves

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
for lr in learning_rates:
    ax.plot(columns[lr]["step"], columns[lr]["E_total"], label=f"η = {lr:g}")
ax.set_xlabel("step")
ax.set_ylabel("E_total")
ax.set_title(f"E_total per step, recalculated by {computed.label}")
ax.legend()
ax.grid(alpha=0.3)
final = {lr: columns[lr]["E_total"][-1] for lr in learning_rates}
Table(["η", "E_total at step 0", "E_total at step 49", "reduction"],
      [[lr, round(columns[lr]["E_total"][0], 6), round(final[lr], 6),
        f"{100 * (1 - final[lr] / columns[lr]['E_total'][0]):.1f} %"]
       for lr in learning_rates])

# %% tags=["remove-input"]
drops = {lr: 100 * (1 - final[lr] / columns[lr]["E_total"][0]) for lr in learning_rates}
ranked = sorted(learning_rates, key=final.get) == sorted(learning_rates, reverse=True)
monotone = all(b < a for lr in learning_rates
               for a, b in zip(columns[lr]["E_total"], columns[lr]["E_total"][1:]))
low, high = learning_rates[0], learning_rates[-1]
display(Markdown(
    f"After 50 steps, η = {low:g} has removed {drops[low]:.0f} % of the initial error "
    f"and η = {high:g} {drops[high]:.0f} %. "
    + ("The final errors rank exactly as the learning rates do. " if ranked else
       "The final errors do not rank as the learning rates do. ")
    + ("Every curve falls at every step: none of these learning rates overshoots."
       if monotone else "At least one curve rises at some step: that learning rate "
                        "overshoots.")))

# %% tags=["remove-cell"]
# The paragraph below: every step helps, larger η is faster, the curves flatten.
assert monotone and ranked
for lr in learning_rates:
    E = columns[lr]["E_total"]
    assert E[0] - E[10] > E[-11] - E[-1], f"η = {lr}: the curve does not flatten"

# %% [markdown]
# On this tiny problem the error surface is smooth and gently curved, so every step in the
# downhill direction helps and a larger η simply takes bigger steps. Two lessons carry over to
# real networks. First, the curves flatten: the sigmoid's slope $a(1-a)$ shrinks as the
# outputs approach their targets, so the gradients — and the steps — shrink with them.
# Second, "larger is faster" holds only while the step stays smaller than the curvature
# allows; on a deep network's far more curved surface, too large an η makes the loss jump or
# diverge, which is why session 7 *measures* the largest usable learning rate with a range
# test instead of guessing it.
#
# ## 5. Why a linear activation breaks learning
#
# Session 2 showed that linear layers collapse into one. What that costs: XOR — output 1 when
# exactly one input is 1 — is not linearly separable. A two-layer network with a linear
# activation cannot go below the error of predicting 0.5 everywhere, whatever gradient descent
# does; the same network with a non-linearity fits it.

# %%
xor_x = torch.tensor([[0.0, 0], [0, 1], [1, 0], [1, 1]])
xor_y = torch.tensor([[0.0], [1], [1], [0]])
xor_losses = {}
for name, activation in (("linear (identity)", nn.Identity()), ("tanh", nn.Tanh())):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), activation, nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    curve = []
    for _ in range(500):
        loss = F.mse_loss(net(xor_x), xor_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
    xor_losses[name] = curve
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, curve in xor_losses.items():
    ax.plot(curve, label=f"{name}: final MSE {curve[-1]:.4f}")
ax.axhline(0.25, color="grey", ls=":", label="predict 0.5 everywhere (MSE 0.25)")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("MSE on XOR")
ax.legend();

# %% tags=["remove-cell"]
assert xor_losses["linear (identity)"][-1] > 0.25 - 1e-4    # "cannot go below"
assert xor_losses["tanh"][-1] < 1e-2                         # "fits it"

# %% [markdown]
# ## 6. Softmax, likelihood and why log-softmax
#
# A classifier outputs one score (logit) $z_k$ per class. **Softmax** turns them into
# probabilities, $p_k = e^{z_k} / \sum_j e^{z_j}$. Training maximises the **likelihood** of the
# true labels, $\prod_n p_{y_n}$ — equivalently minimises the **negative log-likelihood**
# $-\sum_n \log p_{y_n}$, which is what `F.cross_entropy` computes. Two practical facts: taking
# the log of a softmax separately is numerically fragile (large logits overflow $e^{z}$, tiny
# probabilities underflow to 0 and $\log 0 = -\infty$), while `log_softmax` computes
# $z_k - \log\sum_j e^{z_j}$ stably with the max subtracted first; and
# `cross_entropy(z, y)` is exactly `nll_loss(log_softmax(z), y)`.

# %%
logits = torch.tensor([[1000.0, 0.0, -1000.0], [2.0, 1.0, 0.1]])
labels = torch.tensor([1, 0])
naive = torch.log(torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True))
stable = F.log_softmax(logits, dim=1)
print("naive log(softmax):", naive.tolist())
print("log_softmax:       ", [[round(v, 4) for v in row] for row in stable.tolist()])
torch.testing.assert_close(F.cross_entropy(logits, labels), F.nll_loss(stable, labels))
print("cross_entropy == nll_loss(log_softmax):",
      round(F.cross_entropy(logits, labels).item(), 4))

# %% tags=["remove-cell"]
assert naive[0, 0].isnan() and naive[0, 1] == -float("inf") and stable[0, 1] == -1000

# %% [markdown]
# The naive version returns `nan` and `-inf` for the first example; `log_softmax` gives the
# correct −1000 for the middle class. This is why our networks end in raw logits and leave
# the softmax to the loss.
#
# ## 7. Where each building block goes, and why
#
# - **Max pooling** after the first block of convolutions, once the RF (here 5 pixels before
#   the pool, 6 after it) covers edges and gradients, and never just before the output: the
#   last layers need every position.
# - **1 × 1 transition** right after the pooling: it reduces the channels (16 → 10) before the
#   next block, so the block's 3 × 3 convolutions start cheap. It mixes features; it adds no RF.
# - **Batch normalization** after each convolution: it rescales each channel to zero mean and
#   unit variance over the batch, which keeps every layer's inputs in a range where gradients
#   flow, and allows higher learning rates. Session 5 takes it apart.
# - **Dropout**, a little (5 %), after each 3 × 3 block: randomly zeroing activations in
#   training stops units from relying on each other and narrows the gap between train and
#   test accuracy.
# - **Global average pooling** instead of a big flatten + FC: it averages each final channel
#   to one number, so the classifier needs 16 × 10 weights instead of 16 · 6 · 6 × 10, and it
#   has no position to overfit to.
#
# All of them in one network — the assignment below — with the output shape, receptive field
# and parameters of every layer:

# %%
model = models.create("s03/assignment")
layers = rf.summary(model, (1, 28, 28))
layers.select(["layer", "type", "output", "RF", "params"])

# %% tags=["remove-cell"]
# The bullets above, checked on the network they describe.
rows = list(layers)
pool = next(k for k, r in enumerate(rows) if r["type"] == "MaxPool2d")
assert rows[pool - 1]["RF"] == 5 and rows[pool]["RF"] == 6
transition = rows[pool + 1]
assert rows[pool]["output"][0] == 16 and transition["kernel"] == 1
assert transition["output"][0] == 10
assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.05}
gap = next(k for k, r in enumerate(rows) if r["type"] == "AdaptiveAvgPool2d")
assert tuple(rows[gap - 1]["output"]) == (16, 6, 6)
assert model.classifier.in_features == 16

# %% [markdown]
# ## 8. Batch size and accuracy
#
# One epoch with batch size $B$ makes $N/B$ updates. Smaller batches: more (noisier) updates
# per epoch; larger batches: fewer, smoother ones and better use of parallel hardware. With the
# learning rate fixed, one epoch gives (measured here, on the data the caption names):

# %%
train_images = len(data.load("mnist", "train"))
batch_rows = []
for batch_size in (16, 64, 256, 1024):
    trial = runner.run(recipes.Recipe("batch-size-trial", "3", "batch size trial",
                                      "s03/assignment", epochs=1, batch_size=batch_size,
                                      lr=0.05, fast=recipes.Fast(epochs=1)),
                       verbose=False)
    batch_rows.append([batch_size, -(-train_images // batch_size),
                       round(trial.history.test_acc[-1], 2)])
Table(["batch size", "updates in one epoch", "test accuracy %"], batch_rows,
      f"s03 network, one epoch at a constant lr of 0.05, {train_images:,} training "
      f"images ({'the FAST slice' if S.fast else 'all of MNIST'})")

# %% tags=["remove-input"]
accuracy = {row[0]: row[2] for row in batch_rows}
updates = {row[0]: row[1] for row in batch_rows}
display(Markdown(
    f"Here batch size 16 makes {updates[16]:,} updates and reaches "
    f"{accuracy[16]:.2f} %; batch size 1024 makes {updates[1024]:,} and reaches "
    f"{accuracy[1024]:.2f} %."))

# %% tags=["remove-cell"]
assert accuracy[16] > accuracy[1024]                     # the paragraph below

# %% [markdown]
# With the epochs and learning rate held fixed, a small batch makes many more updates, so it
# usually gets further in the same number of epochs; a large batch needs a larger learning
# rate (and a warm-up) to catch up — the trade-off the "linear scaling rule" of Goyal et al.
# formalises. Too small a batch, on the other hand, makes each update noisy and slow on
# parallel hardware.
#
# ## Assignment: 99.4 % with fewer than 20 000 parameters
#
# **Constraints.** MNIST, test accuracy ≥ 99.4 %, < 20 000 parameters, < 20 epochs, using batch
# normalization, dropout, global average pooling and one fully connected layer.

# %% tags=["remove-input"]
record = records.load("s03/assignment")
config = record.config
pool_layer, pool_rf = rf.receptive_field_before_pool(model, (1, 28, 28))
display(Markdown(
    f"**Solution.** The network of section 7 (`s03/assignment`): two 3 × 3 blocks to "
    f"RF 5, max pooling, a 1 × 1 transition, four more 3 × 3 blocks to RF {pool_rf} at "
    f"the input of the global average pooling, and one FC layer; trained with SGD "
    f"(momentum {config['momentum']:g}) under a one-cycle schedule peaking at "
    f"{config['lr']:g}, for {record.epochs_run} epochs, with training images rotated "
    f"by up to ±{config['rotation']:g}°. Its recorded full run and the constraint "
    f"check:"))

# %% tags=["remove-cell"]
assert config["optimizer"] == "sgd" and config["scheduler"] == "onecycle"

# %%
display(Markdown(record.results_markdown()))
viz.curves({"s03/assignment": record.history}, acc_range=(98.5, 99.7), target=99.4);

# %%
report = check.grade("s03", record)
report

# %% tags=["remove-cell"]
assert report.passed, report

# %% tags=["remove-input"]
display(Markdown(
    f"The receptive-field line of the check is judged where it matters for a network "
    f"that ends in global average pooling: at the pool's input. There each position of "
    f"the last map has a receptive field of {pool_rf} × {pool_rf} pixels — at least "
    f"the {check.DIGIT_BOX} × {check.DIGIT_BOX} box in which MNIST centres every "
    f"digit — so each feature the GAP averages was computed from a window as large as "
    f"a whole digit. (After the GAP, the FC layer sees every position anyway; an RF "
    f"measured there would say nothing.)"))

# %% tags=["remove-cell"]
assert pool_rf >= check.DIGIT_BOX and "AdaptiveAvgPool2d" in type(
    dict(model.named_modules())[pool_layer]).__name__

# %% [markdown]
# In FAST mode the cell below trains the same recipe on the FAST slice (its output says how
# much), to show the code path; in full mode it reproduces the recorded run.

# %%
live = runner.run("s03/assignment")
print(live.result_line())

# %% [markdown]
# ## Exercises
#
# 1. With the course's numbers, which weight has the largest gradient at step 0, and why is it
#    an output weight?
# 2. If $t_1 = a_{o_1}$ exactly, what are $\partial E/\partial w_5$ and $\partial E/\partial w_6$?
# 3. How many parameters would the assignment network have with a flatten + FC instead of GAP?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
largest_k = int(w.grad.abs().argmax())
c, h, wd = rows[gap - 1]["output"]
fc = model.classifier
flat_fc = (models.count_parameters(model) - models.count_parameters(fc)
           + c * h * wd * fc.out_features + fc.out_features)
display(Markdown(f"""
:::{{admonition}} Answers
:class: dropdown
(1) $w_{largest_k + 1}$: its gradient at step 0 is {w.grad[largest_k].item():.6f}
(the table of section 2). The hidden-weight gradients carry an extra factor
$a_h(1-a_h) \\le 0.25$ and the small inputs 0.05 and 0.10, so they are far smaller.

(2) Both are 0: the factor $(a_{{o_1}} - t_1)$ vanishes.

(3) The last map is {c} × {h} × {wd}; an FC layer from all {c * h * wd} of its values to
{fc.out_features} classes makes the network {flat_fc:,} parameters instead of
{models.count_parameters(model):,}.
:::
"""))

# %% tags=["remove-cell"]
assert largest_k >= 4, "exercise 1 says the largest gradient is an output weight's"

# %% [markdown]
# ## Summary
#
# - Backpropagation is the chain rule applied from the output back, reusing each shared factor.
# - The workbook computes it with live formulas; the spreadsheet engine's values match
#   autograd to 1e-9 at every step of every sheet (checked on this page).
# - On a smooth problem larger learning rates are faster; on real networks the usable maximum
#   must be measured.
# - Without a non-linearity, depth adds nothing; XOR stays unsolved.
# - Networks output logits; `cross_entropy` = `nll_loss(log_softmax)`, computed stably.
# - Pool after the edge block, transition with 1 × 1, normalize and drop out after each block,
#   finish with GAP and one FC layer; judge the receptive field at the GAP's input.
#
# ## References
#
# - D. E. Rumelhart, G. E. Hinton, R. J. Williams, *Learning representations by back-propagating
#   errors*, Nature 323 (1986).
# - M. Mazur, *A step by step backpropagation example* (2015) — the 2-2-2 worked example.
# - S. Ioffe, C. Szegedy, *Batch normalization*, ICML (2015).
# - N. Srivastava et al., *Dropout: a simple way to prevent neural networks from overfitting*,
#   JMLR 15 (2014).
# - M. Lin, Q. Chen, S. Yan, *Network in network*, ICLR (2014) — global average pooling.
# - P. Goyal et al., *Accurate, large minibatch SGD: training ImageNet in 1 hour*,
#   arXiv:1706.02677 (2017).
# - L. N. Smith, *Cyclical learning rates for training neural networks*, WACV (2017).
