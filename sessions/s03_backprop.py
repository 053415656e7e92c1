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
# $w_1 \dots w_8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55$.
#
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


i = torch.tensor(sheets.DEFAULT_INPUTS, dtype=torch.float64)
t = torch.tensor(sheets.DEFAULT_TARGETS, dtype=torch.float64)
w = torch.tensor(sheets.DEFAULT_WEIGHTS, dtype=torch.float64, requires_grad=True)
a_h = torch.sigmoid(torch.stack([w[0] * i[0] + w[1] * i[1], w[2] * i[0] + w[3] * i[1]]))
a_o = torch.sigmoid(torch.stack([w[4] * a_h[0] + w[5] * a_h[1], w[6] * a_h[0] + w[7] * a_h[1]]))
E_total = (0.5 * (t - a_o) ** 2).sum()
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

    subprocess.run("apt-get -qq install -y libreoffice-calc-nogui > /dev/null", shell=True, check=True)

learning_rates = sheets.DEFAULT_LEARNING_RATES
workdir = Path(tempfile.mkdtemp(prefix="s03-"))
workbook = sheets.backprop_workbook(workdir / "backprop.xlsx", learning_rates=learning_rates, steps=50)
computed = sheets.recalculate(workbook, workdir / "recalculated")
columns = {lr: sheets.read_columns(computed.path, f"lr={lr:g}") for lr in learning_rates}
missing = "" if "libreoffice" in sheets.engines_available() else "; LibreOffice was not found"
print(f"Recalculated by {computed.label}{missing}.")
first_rows = columns[0.5]
Table(["step", "w1", "w5", "a_h1", "a_o1", "a_o2", "E_total", "∂E/∂w1", "∂E/∂w5"],
         [[first_rows["step"][s]] + [round(first_rows[c][s], 6) for c in
          ("w1", "w5", "a_h1", "a_o1", "a_o2", "E_total", "∂E_total/∂w1", "∂E_total/∂w5")]
          for s in range(6)],
         f"Sheet lr=0.5, first six rows, as computed by {computed.label}")

# %% [markdown]
# Both engines' values agree with PyTorch's float64 autograd to within $10^{-9}$ for every
# cell of every sheet — `tests/test_sheets.py` checks it for each engine installed on each
# run, and fails if a derived cell is a typed number instead of a formula. The first row's
# gradients are the ones in the table of section 2.
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
           f"{100 * (1 - final[lr] / columns[lr]['E_total'][0]):.1f} %"] for lr in learning_rates])

# %%
drops = {lr: 100 * (1 - final[lr] / columns[lr]["E_total"][0]) for lr in learning_rates}
ranked = sorted(learning_rates, key=final.get) == sorted(learning_rates, reverse=True)
monotone = all(b < a for lr in learning_rates
               for a, b in zip(columns[lr]["E_total"], columns[lr]["E_total"][1:]))
display(Markdown(
    f"After 50 steps, η = {learning_rates[0]:g} has removed {drops[learning_rates[0]]:.0f} % of "
    f"the initial error and η = {learning_rates[-1]:g} {drops[learning_rates[-1]]:.0f} %. "
    + ("The final errors rank exactly as the learning rates do. " if ranked else
       "The final errors do not rank as the learning rates do. ")
    + ("Every curve falls at every step: none of these learning rates overshoots."
       if monotone else "At least one curve rises at some step: that learning rate overshoots.")))

# %% [markdown]
# On this tiny problem the error surface is smooth and gently curved, so every step in the
# downhill direction helps and a larger η simply takes bigger steps. Two lessons carry over to real networks. First, the curves flatten:
# the sigmoid's slope $a(1-a)$ shrinks as the outputs approach their targets, so the
# gradients — and the steps — shrink with them. Second, "larger is faster" holds only while
# the step stays smaller than the curvature allows; on a deep network's far more curved
# surface, too large an η makes the loss jump or diverge, which is why session 7 *measures*
# the largest usable learning rate with a range test instead of guessing it.
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
print("cross_entropy == nll_loss(log_softmax):", round(F.cross_entropy(logits, labels).item(), 4))

# %% [markdown]
# The naive version returns `nan` and `-inf` for the first example; `log_softmax` gives the
# correct −1000 for the middle class. This is why our networks end in raw logits and leave
# the softmax to the loss.
#
# ## 7. Where each building block goes, and why
#
# - **Max pooling** after the first block of convolutions, once the RF (here 5–6 pixels) covers
#   edges and gradients, and never just before the output: the last layers need every position.
# - **1 × 1 transition** right after the pooling: it reduces the channels (16 → 10) before the
#   next block, so the block's 3 × 3 convolutions start cheap. It mixes features; it adds no RF.
# - **Batch normalization** after each convolution (not after the last one): it rescales each
#   channel to zero mean and unit variance over the batch, which keeps every layer's inputs in
#   a range where gradients flow, and allows higher learning rates. Session 5 takes it apart.
# - **Dropout**, a little (5 %), after each block: randomly zeroing activations in training
#   stops units from relying on each other and narrows the gap between train and test accuracy.
# - **Global average pooling** instead of a big flatten + FC: it averages each final channel
#   to one number, so the classifier needs 16 × 10 weights instead of 16 · 6 · 6 × 10, and it
#   has no position to overfit to.
#
# All of them in one network — the assignment below — with the RF and shape of every layer:

# %%
model = models.create("s03/assignment")
rf.summary(model, (1, 28, 28))

# %% [markdown]
# ## 8. Batch size and accuracy
#
# One epoch with batch size $B$ makes $N/B$ updates. Smaller batches: more (noisier) updates
# per epoch; larger batches: fewer, smoother ones and better use of parallel hardware. With the
# learning rate fixed, the same number of epochs gives:

# %%
n_train = len(data.load("mnist", "train"))
batch_rows = []
for batch_size in (16, 64, 256, 1024):
    trial = runner.run(recipes.Recipe("batch-size-trial", "3", "batch size trial",
                                       "s03/assignment", epochs=2, batch_size=batch_size,
                                       lr=0.05), verbose=False)
    batch_rows.append([batch_size, -(-n_train // batch_size) * 2,
                       round(trial.history.test_acc[-1], 2)])
best_batch = max(batch_rows, key=lambda row: row[2])[0]
display(Table(["batch size", "updates in 2 epochs", "test accuracy %"], batch_rows,
                 f"s03 network, 2 epochs, lr 0.05 "
                 f"({'FAST slice of 2 000 images' if S.fast else 'full MNIST'})"))
display(Markdown(f"Best here: batch size {best_batch}."))

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
#
# **Solution.** The network of section 7 (`s03/assignment`): two 3 × 3 blocks to RF 5, max
# pooling, a 1 × 1 transition, four more 3 × 3 blocks to RF 22, GAP and one FC layer; trained
# with SGD (momentum 0.9) under a one-cycle schedule peaking at 0.05, for 19 epochs, with
# training images rotated by up to ±7°. Its recorded full run and the constraint check:

# %%
record = records.load("s03/assignment")
display(Markdown(record.results_markdown()))
viz.curves({"s03/assignment": record.history});

# %%
report = check.grade("s03", record)
assert report.passed, report
report

# %% [markdown]
# In FAST mode the cell below trains the same recipe on the 2 000-image slice for 3 epochs, to
# show the code path; in full mode it reproduces the recorded run.

# %%
live = runner.run("s03/assignment")
print(f"{live.label}: test accuracy {live.history.test_acc[-1]:.2f}%")

# %% [markdown]
# ## Exercises
#
# 1. With the course's numbers, which weight has the largest gradient at step 0, and why is it
#    an output weight?
# 2. If $t_1 = a_{o_1}$ exactly, what are $\partial E/\partial w_5$ and $\partial E/\partial w_6$?
# 3. How many parameters would the assignment network have with a flatten + FC instead of GAP?
#
# ```{admonition} Answers
# :class: dropdown
# (1) From the table of section 2; the hidden-weight gradients carry an extra factor
# $a_h(1-a_h) \le 0.25$ and the small inputs 0.05 and 0.10, so they are far smaller.
# (2) Both are 0: the factor $(a_{o_1} - t_1)$ vanishes. (3) Computed below.
# ```

# %%
print("1:", f"w{int(w.grad.abs().argmax()) + 1}")
flat_fc = models.count_parameters(model) - models.count_parameters(model.classifier) + 16 * 6 * 6 * 10 + 10
print("3:", f"{flat_fc:,} parameters instead of {models.count_parameters(model):,}")

# %% [markdown]
# ## Summary
#
# - Backpropagation is the chain rule applied from the output back, reusing each shared factor.
# - The workbook computes it with live formulas; LibreOffice's results match autograd to 1e-9.
# - On a smooth problem larger learning rates are faster; on real networks the usable maximum
#   must be measured.
# - Without a non-linearity, depth adds nothing; XOR stays unsolved.
# - Networks output logits; `cross_entropy` = `nll_loss(log_softmax)`, computed stably.
# - Pool after the edge block, transition with 1 × 1, normalize and drop out after each block,
#   finish with GAP and one FC layer.
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
