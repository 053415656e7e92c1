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
# # Session 10 — Vision transformers, and finding objects (YOLO)
#
# Session 9 built attention. This session puts it to work on images twice over. First the
# **Vision Transformer** (ViT): cut an image into patches, treat the patches as the words of a
# sentence, and let a stack of transformer blocks decide which patches matter to which — no
# convolution beyond the first cut. Then the step from *recognition* (what is in the image)
# to *detection* (what, and where): intersection over union, anchor boxes found by k-means on
# real annotations, the YOLOv2 loss term by term, and how boxes are annotated in the first
# place.
#
# **Objectives.** After this session you can
# - write multi-head self-attention in NumPy and show it equals PyTorch's;
# - build a ViT step by step — patches, CLS token, position embeddings, pre-norm blocks, head
#   — and say what each part is for; place ConvMixer beside it;
# - write the ViT class by class and prove it equal to a formulation from
#   `nn.TransformerEncoderLayer`; size its training run to a CPU budget;
# - read GradCAM maps of a transformer (tokens laid back on their grid);
# - compute IoU, cluster anchor boxes with distance 1 − IoU (`evakit anchors`), and take the
#   YOLOv2 loss apart term by term;
# - read a COCO annotation file you have never seen, and annotate images with VIA.

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import json
import math
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from evakit import (
    bench,
    check,
    data,
    detect,
    detection_data,
    evidence,
    models,
    practice,
    recipes,
    records,
    runner,
    tiny_imagenet,
    viz,
)
from evakit.models import vit
from evakit.table import Table

# %% [markdown]
# # Part I — Vision transformers
#
# ## 1. Attention by hand, at the size of a ViT layer
#
# Self-attention turns T tokens into T new ones, each a weighted mix of all of them. With
# $h$ heads of width $d = D/h$, head $i$ computes
#
# $$\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q_i K_i^\top}{\sqrt d}\right) V_i,
# \qquad Q = XW_q^\top + b_q,\; K = XW_k^\top + b_k,\; V = XW_v^\top + b_v,$$
#
# and the heads, side by side, are projected by $W_o$. Here it is in NumPy for the case of
# this session: **9 patch tokens** (a 3×3 grid of patches) **of width 512, 8 heads** of 64.

# %%
def attention_by_hand(x, w_in, b_in, w_out, b_out, heads):
    """Multi-head self-attention of T×D tokens (nn.MultiheadAttention's weights)."""
    T, D = x.shape
    d = D // heads
    q, k, v = np.split(x @ w_in.T + b_in, 3, axis=1)           # T×D each
    q, k, v = (m.reshape(T, heads, d).transpose(1, 0, 2) for m in (q, k, v))  # h×T×d
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)             # h×T×T
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)                  # softmax over the keys
    mixed = (weights @ v).transpose(1, 0, 2).reshape(T, D)     # heads side by side
    return mixed @ w_out.T + b_out, weights

# %% [markdown]
# PyTorch's `nn.MultiheadAttention` keeps $W_q, W_k, W_v$ stacked in one `in_proj_weight`
# (3D×D) and $W_o$ in `out_proj`. Loaded with the same weights, it must give the same output
# and the same 8 × 9 × 9 attention weights:

# %%
torch.manual_seed(0)
mha = nn.MultiheadAttention(512, 8, batch_first=True)
for bias in (mha.in_proj_bias, mha.out_proj.bias):
    nn.init.normal_(bias, std=0.1)      # PyTorch starts them at zero: make them count
tokens = torch.randn(1, 9, 512)
with torch.no_grad():
    theirs, their_weights = mha(tokens, tokens, tokens, average_attn_weights=False)
params = [p.detach().double().numpy() for p in (mha.in_proj_weight, mha.in_proj_bias,
                                               mha.out_proj.weight, mha.out_proj.bias)]
ours, our_weights = attention_by_hand(tokens[0].double().numpy(), *params, heads=8)
out_gap = np.abs(ours - theirs[0].numpy()).max()
weight_gap = np.abs(our_weights - their_weights[0].numpy()).max()
print(f"output {ours.shape}: largest difference {out_gap:.1e}; attention weights "
      f"{our_weights.shape}: largest difference {weight_gap:.1e}")
assert out_gap < 1e-6 and weight_gap < 1e-6

# %% [markdown]
# Equal to within float32 rounding (PyTorch computes in float32, the NumPy version in
# float64). `evakit.models.vit.attention_numpy` is the same function, and `tests/test_vit.py`
# checks it the same way.
#
# ## 2. ViT step by step
#
# Dosovitskiy et al. (2021) asked what happens if an image is given to a transformer almost
# as a sentence is: each 16×16 patch of a 224×224 image becomes one token — 196 of them. On
# 32×32 CIFAR-10 images 4×4 patches give an 8×8 grid of **64 tokens of 4·4·3 = 48 numbers**.

# %%
cifar_test = data.load("cifar10", "test")
image = cifar_test.images[0]
P, grid = 4, 32 // 4
patches = image.unfold(1, P, P).unfold(2, P, P)                # 3×8×8×4×4
sequence = np.ones((4 * (P + 1), 16 * (P + 1), 3))      # 4 rows of 16, white gaps
for t in range(grid * grid):
    r, c = divmod(t, 16)
    patch = patches[:, t // grid, t % grid].permute(1, 2, 0).numpy() / 255
    sequence[r * (P + 1):r * (P + 1) + P, c * (P + 1):c * (P + 1) + P] = patch
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2),
                                  gridspec_kw={"width_ratios": [1, 3.2]})
left.imshow(image.permute(1, 2, 0).numpy())
for k in range(1, grid):
    left.axhline(k * P - 0.5, color="white", lw=0.8)
    left.axvline(k * P - 0.5, color="white", lw=0.8)
left.set_title(f"'{cifar_test.classes[cifar_test.labels[0]]}', cut into 8×8 patches",
               fontsize=9)
right.imshow(sequence)
right.set_title("the same 64 patches as a sequence (row by row): tokens 1…64",
                fontsize=9)
for ax in (left, right):
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# **Patch embedding.** Each patch is flattened and mapped by one linear layer to D numbers.
# A convolution whose kernel and stride are both P does exactly that — it visits every patch
# once, without overlap — which is why ViT code writes it as `Conv2d(3, D, P, stride=P)`:

# %%
D = 96
embed = nn.Conv2d(3, D, kernel_size=P, stride=P)
x = cifar_test.images[:2].float() / 255
with torch.no_grad():
    by_conv = embed(x).flatten(2).transpose(1, 2)                    # B×64×D
    flat = F.unfold(x, kernel_size=P, stride=P).transpose(1, 2)      # B×64×48
    by_linear = flat @ embed.weight.flatten(1).T + embed.bias        # one linear map
print(f"patches {tuple(flat.shape)} → tokens {tuple(by_conv.shape)}; conv vs unfold + "
      f"linear: largest difference {(by_conv - by_linear).abs().max():.1e}")
assert torch.allclose(by_conv, by_linear, atol=1e-5)

# %% [markdown]
# **The CLS token.** A learned vector is put in front of the 64 patch tokens. It belongs to
# no patch; through attention it reads all of them, and at the end the classifier looks at
# its output alone (BERT's `[CLS]`, Devlin et al. 2019).
#
# **Position embeddings.** Attention compares tokens by content only: shuffle the patches and
# the outputs are shuffled the same way, nothing else changes. Here is that property checked
# on the library's attention layer:

# %%
attention = vit.Attention(vit.ViTConfig(dim=D)).eval()
shuffle = torch.randperm(64)
with torch.no_grad():
    same = torch.allclose(attention(by_conv)[:, shuffle],
                          attention(by_conv[:, shuffle]), atol=1e-5)
print("attention(shuffled patches) == shuffled attention(patches):", same)
assert same

# %% [markdown]
# Without help, then, a ViT could not tell an image from its patches shuffled. ViT adds a
# learned vector per position (65 of them, the CLS token's included) to the tokens before
# the first block; what they learn is drawn in section 5.

# %%
cls_token = nn.Parameter(torch.zeros(1, 1, D))
pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, D) * 0.02)
cls = cls_token.expand(len(by_conv), -1, -1)
sequence_in = torch.cat([cls, by_conv], 1) + pos_embed
print("encoder input:", tuple(sequence_in.shape), "= batch × (CLS + 64 patches) × D")

# %% [markdown]
# **The encoder block** is *pre-norm*: LayerNorm → multi-head attention → add the input, then
# LayerNorm → MLP (two linear layers with a GELU between) → add. The sum path is never
# normalized, so — as in ResNet v2 (He et al. 2016) — the identity runs clean from the
# first block to the last.
# By hand, with the weights of the library's block:

# %%
block = vit.EncoderBlock(vit.ViTConfig(dim=D)).eval()


def block_by_hand(x, b, heads=4):
    """x + MHA(LN(x)), then x + MLP(LN(x)), written out with block b's weights."""
    B, T, D = x.shape
    h = F.layer_norm(x, (D,), b.norm1.weight, b.norm1.bias)
    q, k, v = (h @ b.attn.qkv.weight.T + b.attn.qkv.bias).split(D, dim=-1)
    q, k, v = (t.view(B, T, heads, D // heads).transpose(1, 2) for t in (q, k, v))
    w = (q @ k.transpose(-2, -1) / math.sqrt(D // heads)).softmax(-1)
    mixed = (w @ v).transpose(1, 2).reshape(B, T, D)
    x = x + mixed @ b.attn.proj.weight.T + b.attn.proj.bias
    h = F.layer_norm(x, (D,), b.norm2.weight, b.norm2.bias)
    h = F.gelu(h @ b.mlp.fc1.weight.T + b.mlp.fc1.bias)
    return x + h @ b.mlp.fc2.weight.T + b.mlp.fc2.bias


with torch.no_grad():
    gap = (block_by_hand(sequence_in, block) - block(sequence_in)).abs().max()
print(f"block by hand vs vit.EncoderBlock: largest difference {gap:.1e}")
assert gap < 1e-5

# %% [markdown]
# **The head.** After the last block a final LayerNorm, then one linear layer reads the CLS
# token: `logits = head(norm(x)[:, 0])`. Put together — 6 blocks of width 96 with 4 heads
# and an MLP three times as wide — this is the session's model `s10/vit`. Where its
# parameters sit:

# %%
model = models.create("s10/vit")
config = model.config
parts = {"patch embedding (Conv2d 3→D, 4×4)": model.patch_embed,
         "CLS token + 65 position embeddings": [model.cls_token, model.pos_embed],
         f"{config.depth} encoder blocks": model.blocks,
         "final LayerNorm + head": [model.norm, model.head]}


def count(part) -> int:
    if isinstance(part, nn.Module):
        return models.count_parameters(part)
    return sum(count(p) if isinstance(p, nn.Module) else p.numel() for p in part)


rows = [[name, f"{count(part):,}"] for name, part in parts.items()]
rows.append(["total", f"{models.count_parameters(model):,}"])
display(Table(["part", "parameters"], rows,
              f"s10/vit: {config.patches} patches of {config.patch_size}×"
              f"{config.patch_size}, D = {config.dim}, {config.heads} heads, "
              f"MLP {config.mlp_dim}"))
assert sum(count(p) for p in parts.values()) == models.count_parameters(model)
assert (config.depth, config.dim, config.heads, config.mlp_ratio) == (6, 96, 4, 3)

# %% [markdown]
# Almost everything is in the blocks — $10D^2$ weights each ($4D^2$ for attention's query,
# key, value and output maps, $6D^2$ for the 3× MLP) — and nothing depends on the image size
# except the number of position embeddings.
#
# ## 3. ConvMixer: patches without attention
#
# Is it the attention, or the patches? Trockman & Kolter (2022) kept ViT's patch embedding and
# its constant resolution, and replaced attention by a **depthwise** convolution (each channel
# filtered on its own with a k×k kernel: mixing *where*, like attention mixing tokens) and
# the MLP by a **pointwise** 1×1 convolution (mixing *what*, like the MLP mixing channels),
# each followed by GELU and batch norm, the depthwise one inside a residual. The whole
# network fits in a few lines, and the paper found it competitive with ViTs of similar size.
# `s10/convmixer` is its CIFAR-10 form ConvMixer-256/8 (256 channels, 8 layers, 2×2
# patches, 5×5 kernels):

# %%
mixer = models.create("s10/convmixer").eval()
with torch.no_grad():
    grid_maps = mixer.stem(cifar_test.images[:1].float() / 255)
    logits = mixer(cifar_test.images[:1].float() / 255)
depthwise = mixer.layers[0][0][0]
print(f"ConvMixer-256/8: {models.count_parameters(mixer):,} parameters; patch "
      f"embedding → {tuple(grid_maps.shape[1:])} (256 channels on a 16×16 grid, kept "
      f"to the end); "
      f"depthwise conv {depthwise.kernel_size}, groups={depthwise.groups}; logits "
      f"{tuple(logits.shape)}")
print(mixer.layers[0])

# %% [markdown]
# The two networks side by side: both cut the image into patches once and keep one resolution
# throughout; ViT mixes patches by attention (every patch with every patch, weights computed
# from the data), ConvMixer by a fixed k×k neighbourhood (weights learned, the same
# everywhere). The course trains the ViT; ConvMixer is here to make the comparison concrete.
#
# ## 4. The assignment: a ViT, class by class
#
# **The task.** Write the ViT as classes — patch embedding, CLS token, position embeddings,
# encoder blocks, head — and show that it is the same network as a compact formulation built
# from PyTorch's `nn.TransformerEncoderLayer` (pre-norm, GELU, batch first): same parameter
# count, same outputs once the weights are copied. Then train it on CIFAR-10.
#
# **The solution** is `evakit.models.vit`: `PatchEmbedding`, `Attention`, `MLP`,
# `EncoderBlock` and `ViT` (registered as `s10/vit`); `ReferenceViT` is the PyTorch
# formulation and `reference_from(model)` copies a ViT's weights into it (the ViT's `qkv`
# rows — queries, keys, values — are already `in_proj_weight`'s layout).

# %%
torch.manual_seed(1)
model = models.create("s10/vit").eval()
reference = vit.reference_from(model)
print(reference.encoder.layers[0])
x = cifar_test.images[:8].float() / 255
with torch.no_grad():
    gap = (model(x) - reference(x)).abs().max()
n_ours, n_theirs = models.count_parameters(model), models.count_parameters(reference)
print(f"parameters: ViT {n_ours:,}, nn.TransformerEncoderLayer formulation "
      f"{n_theirs:,}; logits of 8 images: largest difference {gap:.1e}")
assert n_ours == n_theirs and gap < 1e-5

# %% [markdown]
# **Sizing the run for a CPU.** The recorded run trains on a CPU, so the model's size and the
# number of epochs were chosen from a measurement: the 50 000 training images of an epoch
# divided by the images per second of one bf16 training step, against the CPU time the run
# may take; the model also stays small enough for its recorded weights to be kept in the
# repository (section 5 needs them). The recipe writes attention out as plain matrix
# products (section 2's code) rather than calling PyTorch's fused
# `F.scaled_dot_product_attention`; which of the two is quicker depends on the machine. The
# same measurement on the machine running this notebook — on a CPU in seconds of CPU time on
# one thread, so that other programs running beside it do not change the answer:

# %%
recipe = recipes.get("s10/vit")
step, where = bench.step_rate(recipe, (3, 32, 32), classes=10)
rate = step.per_second
print(f"here ({where}): {rate:,.0f} images per second → "
      f"{50_000 / rate / 60:.1f} min per epoch of 50 000 images, "
      f"{recipe.epochs} epochs in ≈ "
      f"{recipe.epochs * 50_000 / rate / 60:.0f} min (training steps only)")

# %% [markdown]
# And what the recorded run took (its record keeps the machine, the number of torch threads
# and the wall time, test passes included):

# %%
vit_record = records.load("s10/vit") if records.path_for("s10/vit").is_file() else None
if vit_record is not None:
    wall = vit_record.wall_seconds
    display(Markdown(                      # device_name: cores and torch threads
        f"The recorded run: {vit_record.epochs_run} epochs on {vit_record.device_name} "
        f"({vit_record.precision}) in {wall / 60:.0f} minutes of wall time — "
        f"{wall / vit_record.epochs_run / 60:.1f} minutes per epoch."))
else:
    display(Markdown("*No record of `s10/vit` yet: `evakit train s10/vit --record` "
                     "makes it.*"))

# %% [markdown]
# The recipe: AdamW (weight decay 0.05 — transformers have no batch norm to regularize them),
# a one-cycle schedule that warms up for the first 20 % of the steps (attention is unstable
# under a large learning rate at the start) and anneals along a cosine, label smoothing 0.1,
# random crop (padding 4) and horizontal flip; precision None, i.e. bf16 where the hardware
# has it.

# %%
def settings(r: recipes.Recipe, names: list[str]) -> Table:
    """The named fields of a recipe, one row each (precision None: the fastest here)."""
    rows = [[f, getattr(r, f)] for f in names]
    rows = [[f, "None (bf16 where native)" if f == "precision" and v is None else v]
            for f, v in rows]
    return Table(["field", "value"], rows, f"{r.name}: {r.summary}")


fields = ["epochs", "batch_size", "optimizer", "lr", "weight_decay", "scheduler",
          "pct_start", "label_smoothing", "crop_padding", "flip", "precision"]
display(settings(recipe, fields))

# %% [markdown]
# Training, in full mode, is the recipe (`evakit train s10/vit --record` makes the record
# below); in FAST mode a narrow copy runs on 1 000 images to show that the loop works:

# %%
live = runner.run(recipe)
print(live.result_line())

# %% [markdown]
# **The check.** `evakit check s10 s10/vit` grades the assignment: the parts written as
# classes (a patch embedding, a CLS token, position embeddings, encoder blocks, a head with 10
# outputs), the same parameter count and the same outputs as the `nn.TransformerEncoderLayer`
# formulation, and — from the record — a finished run on CIFAR-10's 50 000 training images.
# The assignment sets no accuracy target; the grade reports the recorded accuracy beside it.
# The parts are found by their structure, not by evakit's names, so a ViT of your own passes
# the same way: the one convolution whose stride is its kernel, the 1×1×D and 1×(N + 1)×D
# parameters, blocks with two LayerNorms whose linear maps a forward pass calls in the order
# queries, keys and values, output projection, MLP (`vit.reference_like` copies them into the
# reference), and the number of heads — which the weights do not hold — by trying each one
# that divides D.

# %%
if vit_record is not None:
    display(check.grade("s10", vit_record))
else:
    display(check.grade("s10", model=models.create("s10/vit")))
    display(Markdown("*No record of `s10/vit` yet: only the model's structure is "
                     "graded.*"))

# %% [markdown]
# ## 5. What the recorded ViT learned
#
# Everything in this section comes from the recorded full run of `s10/vit`: its history, the
# weights it ended with, and the GradCAM maps computed from it when it was recorded.

# %%
display(Markdown(records.results_or_missing("s10/vit")))
if vit_record is not None:
    minutes = vit_record.wall_seconds / 60
    display(Markdown(
        f"The run: {vit_record.epochs_run} epochs of "
        f"{vit_record.config['batch_size']} images per step in {minutes:.0f} minutes "
        f"on {vit_record.device_name} ({vit_record.precision})."))
    display(vit_record.epochs_table())
    viz.curves({"s10/vit": vit_record.history})

# %% [markdown]
# **Position embeddings.** For each of the 64 patch positions, the cosine similarity of its
# learned embedding with the embeddings of all 64 positions, drawn as an 8×8 map at that
# position's place in the grid (the ViT paper's figure 7). Every map has a bright spot at its
# own position — an embedding is similar to itself. Freshly initialised, the rest is noise;
# the recorded model's maps show whether training found the image's geometry: neighbouring
# positions with similar embeddings, similarity falling off with distance along rows and
# columns.

# %%
def position_similarity(pos: torch.Tensor) -> np.ndarray:
    """64 maps of 8×8: cosine similarity of each patch position's embedding with all."""
    p = F.normalize(pos.detach()[0, 1:].float(), dim=-1)      # CLS's embedding left out
    side = math.isqrt(len(p))
    return (p @ p.T).view(len(p), side, side).numpy()


def similarity_mosaic(sim: np.ndarray) -> np.ndarray:
    """The maps laid out on their positions' grid, one pixel of gap between them."""
    side = sim.shape[-1]
    mosaic = np.full((side * (side + 1) - 1,) * 2, np.nan)
    for i, m in enumerate(sim):
        r, c = divmod(i, side)
        top, left = r * (side + 1), c * (side + 1)
        mosaic[top:top + side, left:left + side] = m
    return mosaic


def show_similarities(named: dict[str, torch.Tensor]):
    fig, axes = plt.subplots(1, len(named), figsize=(5 * len(named), 4.8),
                             squeeze=False)
    for ax, (title, pos) in zip(axes[0], named.items()):
        shown = ax.imshow(similarity_mosaic(position_similarity(pos)), vmin=-1, vmax=1,
                          cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.colorbar(shown, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
    return fig


embeddings = {"freshly initialised": models.create("s10/vit").pos_embed}
if records.weights_path("s10/vit").is_file():
    trained = records.load_model("s10/vit")
    embeddings["recorded s10/vit, after training"] = trained.pos_embed
show_similarities(embeddings)
if len(embeddings) == 1:
    display(Markdown("*No recorded weights of `s10/vit` yet: only the untrained "
                     "embeddings are drawn. `evakit train s10/vit --record` keeps the "
                     "trained ones.*"))


# %% tags=["remove-input"]
def similarity_by_distance(pos: torch.Tensor) -> dict[int, float]:
    """Mean cosine similarity of two different positions, by their grid distance (max of
    row and column offsets)."""
    sim = position_similarity(pos).reshape(64, 64)
    rows, cols = np.divmod(np.arange(64), 8)
    apart = np.maximum(abs(rows[:, None] - rows), abs(cols[:, None] - cols))
    return {d: float(sim[apart == d].mean()) for d in range(1, 8)}


for title, pos in embeddings.items():
    near = [similarity_by_distance(pos)[d] for d in (1, 2, 3, 4)]
    falls = all(a > b + 0.05 for a, b in zip(near, near[1:]))
    display(Markdown(
        f"*{title}*: mean cosine similarity of two positions 1, 2, 3 and 4 steps apart "
        f"(rows or columns): {', '.join(f'{v:.2f}' for v in near)}"
        + (" — it falls with distance: the network learnt the grid from the images "
           "alone, since nothing told it which patch sits next to which." if falls
           else ".")))

# %% [markdown]
# **GradCAM on a transformer.** GradCAM (Selvaraju et al. 2017) weights each channel of a
# layer's B×C×h×w activation by its mean gradient. A transformer layer outputs B×(1 + 64)×D
# *tokens*, so the `grad-cam` package takes a `reshape_transform`: drop the CLS token and lay
# the 64 patch tokens back on their 8×8 grid, D channels deep
# (`evakit.models.vit.tokens_to_map`). The layer is the last block's first LayerNorm (what the last attention
# reads); after that attention only the CLS token reaches the head, so later layers have no
# gradient at the patches at all.

# %%
with torch.no_grad():
    token_out = []
    last_norm1 = model.blocks[-1].norm1
    hook = last_norm1.register_forward_hook(lambda m, i, o: token_out.append(o))
    model(x[:2])
    hook.remove()
print(f"{evidence.GRADCAM_LAYERS['s10/vit']} outputs {tuple(token_out[0].shape)} "
      f"tokens; tokens_to_map → {tuple(vit.tokens_to_map(token_out[0]).shape)} maps")

# %% [markdown]
# The record keeps the maps of the recorded model's first 10 misclassified test images
# (computed by `evakit.evidence` with that transform when the run was recorded). Each is an
# 8×8 grid of patch scores, scaled up to the image; titles read true / predicted (confidence).

# %%
if vit_record is not None:
    recorded_test = practice.recorded_data(vit_record, "test")   # the images it scored
    viz.gradcam_from_record(vit_record, recorded_test)
else:
    print("No record of s10/vit yet, so no GradCAM maps: they must come from the "
          "recorded model, never from a smoke run.")

# %% [markdown]
# # Part II — Finding objects: YOLO
#
# ## 6. Recognition, detection, and three ways to propose boxes
#
# A classifier answers *what* is in an image. A detector answers *what and where*, for every
# object: a list of boxes, each with a class and a confidence — and the number of objects is
# not known in advance. Three generations of answer to "where":
#
# - **Sliding windows.** Run a classifier on every window, at every position, scale and aspect
#   ratio. Exhaustive and slow: thousands of classifier runs per image (the figure below
#   counts them for one image).
# - **Region proposals.** Let a cheap method (Selective Search, Uijlings et al. 2013: ~2 000
#   regions that merge similar superpixels) propose where objects may be, and classify only
#   those: R-CNN (Girshick et al. 2014). Fast R-CNN (Girshick 2015) runs the network once per
#   image and pools each proposal's features from the shared map (RoI pooling); Faster R-CNN
#   (Ren et al. 2015) learns the proposals too.
# - **Anchors on a grid (YOLO).** One network pass over the whole image predicts, for every
#   cell of an S×S grid and each of B *anchor* shapes, a box offset, an objectness and class
#   scores (Redmon et al. 2016; Redmon & Farhadi 2017). YOLOv2 at 416×416 pixels has
#   13 × 13 × 5 = 845 such predictions.
#
# Below, one COCO image (from COCO128, the first 128 images of COCO 2017's training set) with
# its labelled boxes: left, the windows of one size and shape that a sliding-window detector
# would classify; right, YOLOv2's 13×13 grid, the cell holding a giraffe's centre and the five
# anchor shapes of that cell (the anchors of COCO128 found in section 9), the best-matching one
# drawn bold.

# %%
coco_file = detection_data.coco128_annotations()     # here, or downloaded and checked
official = json.loads(coco_file.read_text())
names = {c["id"]: c["name"] for c in official["categories"]}
picture = next(i for i in official["images"] if i["id"] == 25)
boxes25 = [a for a in official["annotations"] if a["image_id"] == 25]
photo = np.asarray(Image.open(detection_data.coco128_image(picture["file_name"])))
W, H = picture["width"], picture["height"]
coco = detect.read_coco(coco_file)


def on_page(report: detect.AnchorsReport) -> detect.AnchorsReport:
    """The report with its file named from the detection folder (no folder of this
    machine)."""
    parts = report.path.parts
    start = len(parts) - 1 - parts[::-1].index("detection")
    return replace(report, path=Path(*parts[start:]))


coco_report = on_page(detect.anchors_report(coco_file, (3, 4, 5, 6)))
anchors5 = coco_report.fits[5].anchors.float()

window, stride = 128, 64
positions = (1 + (W - window) // stride) * (1 + (H - window) // stride)
scales = [64, 128, 256]
shapes = [(s * a, s * b) for s in scales for a, b in ((1, 1), (1, 0.5), (0.5, 1))]
windows = sum((1 + int((W - w) // (w / 4))) * (1 + int((H - h) // (h / 4)))
              for w, h in shapes)

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
for ax in (left, right):
    ax.imshow(photo)
    ax.axis("off")
    for a in boxes25:
        bx, by, bw, bh = a["bbox"]
        ax.add_patch(Rectangle((bx, by), bw, bh, fill=False, color="yellow", lw=2))
for y0 in range(0, H - window + 1, stride):
    for x0 in range(0, W - window + 1, stride):
        left.add_patch(Rectangle((x0, y0), window, window, fill=False, lw=0.5,
                                 color="white", alpha=0.6))
for k, x0 in enumerate(range(0, 3 * stride, stride)):   # three overlapping neighbours
    left.add_patch(Rectangle((x0, stride), window, window, fill=False, lw=2.5,
                             color=f"C{k}"))
left.set_title(f"sliding windows: {positions} of one size ({window}×{window}, stride "
               f"{stride});\n{windows:,} for 3 sizes × 3 shapes at a quarter-window "
               "stride",
               fontsize=9)
S_grid = 13
cw, ch = W / S_grid, H / S_grid
for k in range(1, S_grid):
    right.axvline(k * cw, color="white", lw=0.5)
    right.axhline(k * ch, color="white", lw=0.5)
giraffe = max(boxes25, key=lambda a: a["bbox"][2] * a["bbox"][3])
gx, gy, gw, gh = giraffe["bbox"]
col, row = int((gx + gw / 2) / cw), int((gy + gh / 2) / ch)
right.add_patch(Rectangle((col * cw, row * ch), cw, ch, color="red", alpha=0.5))
best = int(detect.wh_iou(torch.tensor([[gw / W, gh / H]]), anchors5.double()).argmax())
cx, cy = (col + 0.5) * cw, (row + 0.5) * ch
for b, (aw, ah) in enumerate(anchors5.tolist()):
    right.add_patch(Rectangle((cx - aw * W / 2, cy - ah * H / 2), aw * W, ah * H,
                              fill=False, color="cyan", lw=2.5 if b == best else 0.8))
right.set_title(f"YOLOv2: a 13×13 grid; the giraffe's centre falls in cell (row {row}, "
                f"column {col});\nits 5 anchors, the best by IoU in bold: "
                f"{S_grid * S_grid * 5} predictions in all", fontsize=9)
fig.tight_layout()

# %% [markdown]
# ## 7. Intersection over union
#
# How well does a predicted box match a true one? **IoU** = area of the intersection / area
# of the union: 1 for a perfect match, 0 for boxes that do not overlap. It is scale-free (a
# miss of 10 pixels is bad on a small box and harmless on a large one), it decides which
# prediction is a hit in evaluation (typically IoU ≥ 0.5), which anchor is responsible for an
# object in training, and — as 1 − IoU — the distance used to find anchors. Four cases by
# hand, each checked with `evakit.detect.box_iou` (which `tests/test_detect.py` checks
# against torchvision's):

# %%
cases = {"identical": ([0, 0, 2, 2], [0, 0, 2, 2], 1.0),
         "shifted by half a width": ([0, 0, 2, 2], [1, 0, 3, 2], 2 / (4 + 4 - 2)),
         "one inside the other": ([0, 0, 4, 4], [1, 1, 3, 3], 4 / 16),
         "touching along an edge": ([0, 0, 2, 2], [2, 0, 4, 2], 0.0)}
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
for ax, (name, (a, b, by_hand)) in zip(axes, cases.items()):
    iou = float(detect.box_iou(torch.tensor([a], dtype=torch.float),
                               torch.tensor([b], dtype=torch.float)))
    assert math.isclose(iou, by_hand, abs_tol=1e-6), name
    for box, colour in ((a, "C0"), (b, "C1")):
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=True,
                               alpha=0.35, color=colour, lw=2))
    ax.set_xlim(-0.5, 4.5)
    ax.set_ylim(4.5, -0.5)
    ax.set_aspect("equal")
    ax.set_title(f"{name}\nIoU = {iou:.3f}", fontsize=9)
fig.tight_layout()

# %% [markdown]
# ## 8. A new annotation file: discover its schema (TACO)
#
# TACO (Trash Annotations in Context, Proença & Simões 2020) labels litter in 1 500 photos.
# Faced with an annotation file you have not seen, read its structure before you trust any
# parser with it: the top-level keys, what each holds, and one record of each kind.

# %%
taco_path = detection_data.taco_annotations()
taco_json = json.loads(taco_path.read_text())
display(Table(["key", "type", "entries"],
              [[k, type(v).__name__, len(v)] for k, v in taco_json.items()],
              "TACO annotations.json: the top level"))


def shortened(record: dict) -> dict:
    """A record with its polygon cut to its first 3 points, for printing."""
    seg = record.get("segmentation")
    if isinstance(seg, list) and seg and isinstance(seg[0], list):
        record = {**record, "segmentation": [seg[0][:6] + ["…"]]}
    return record


for key in ("images", "annotations", "categories", "scene_annotations"):
    print(f"{key}[0]:", json.dumps(shortened(taco_json[key][0])))

# %% [markdown]
# This is the COCO layout (Lin et al. 2014) with two extras (`scene_annotations`,
# `scene_categories`: the background of each photo). What matters for boxes: `bbox` is
# `[x, y, width, height]` in pixels with (x, y) the top-left corner, `image_id` links a box to
# its image, whose `width` and `height` are needed to normalise it — TACO's photos come from
# phones at full resolution and in both orientations, so pixel sizes are not comparable
# across images. `iscrowd` boxes (one box around a crowd) are left out, as YOLO does.
# `evakit.detect.read_coco` does exactly this; the class distribution it gives:

# %%
taco = detect.read_coco(taco_path)
counts = detect.class_counts(taco)
fig = detect.plot_class_counts(counts, title=f"TACO: {len(taco):,} boxes in "
                                             f"{len(taco.image_sizes):,} images, "
                                             f"{len(counts)} classes")
ranked = sorted(counts.values(), reverse=True)
top5 = sum(ranked[:5]) / len(taco)
rare = sum(c < 10 for c in ranked)
empty_classes = sum(c == 0 for c in ranked)
display(Markdown(
    f"A long tail: the five commonest classes hold {top5:.0%} of the boxes, while "
    f"{rare} of the {len(counts)} classes have fewer than 10 boxes each "
    f"({empty_classes} {'has' if empty_classes == 1 else 'have'} none) — a detector "
    f"trained on this would "
    f"need class-balanced losses, or merged classes."))

# %% [markdown]
# ## 9. Anchor boxes by k-means, with distance 1 − IoU
#
# Anchors are the shapes the network starts from; a good set makes each object's shape a
# small correction of one of them. YOLOv2 finds them by k-means on the (width, height) of the
# training boxes — not with Euclidean distance, which lets large boxes dominate, but with
# $d = 1 - \mathrm{IoU}$ of two shapes placed on the same centre. More clusters fit better,
# at the cost of more predictions per cell; YOLOv2 found that 5 clusters gave an average IoU
# of 61.0 on VOC 2007, about that of 9 hand-picked anchors (60.9), and chose k = 5.
#
# `evakit anchors FILE --k 3 4 5 6 --plot FILE.png` runs `detect.anchors_report` — the same
# function as the cells below — on any COCO-format file. On TACO (widths and heights as
# fractions of each image):

# %%
taco_report = on_page(detect.anchors_report(taco_path, (3, 4, 5, 6)))
print(taco_report)
taco_report.figure();

# %% [markdown]
# And on COCO128's boxes (COCO 2017's official annotations of those 128 images, crowd boxes
# left out as above):

# %%
print(coco_report)
coco_report.figure();

# %% [markdown]
# Every box, as a point (width, height), coloured by the anchor it is closest to in IoU, for
# k = 5. The clusters are bands of similar size, tight among the small boxes and wide among
# the large ones: 1 − IoU measures a difference relative to the box, so a few hundredths of
# the image separate two small shapes as much as a few tenths separate two large ones.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
for ax, (name, report, wh) in zip(axes, (("TACO", taco_report, taco.wh),
                                         ("COCO128", coco_report, coco.wh))):
    fit = report.fits[5]
    ax.scatter(wh[:, 0], wh[:, 1], c=fit.assignment, cmap="viridis", s=5, alpha=0.6)
    ax.scatter(fit.anchors[:, 0], fit.anchors[:, 1], marker="X", s=120, c="red",
               edgecolors="white", label="anchors")
    ax.set_xlabel("box width (fraction of the image)")
    ax.set_ylabel("box height (fraction of the image)")
    ax.set_title(f"{name}: k = 5, mean IoU {fit.mean_iou:.3f}", fontsize=9)
    ax.legend(fontsize=8)
fig.tight_layout()

# %%
curves = {"TACO": taco_report.curve, "COCO128": coco_report.curve}
gains = {name: c[6] - c[3] for name, c in curves.items()}
display(Markdown(
    "From the fits above: going from 3 to 6 anchors raises the mean IoU by "
    + " and ".join(f"{gains[n]:.3f} on {n} ({c[3]:.3f} → {c[6]:.3f})"
                   for n, c in curves.items())
    + f". TACO's smallest anchor is {float(taco_report.fits[6].anchors[0, 0]):.1%} of "
    "the image wide: much litter is small in a phone photo taken standing up."))
assert all(list(c.values()) == sorted(c.values()) for c in curves.values())

# %% [markdown]
# ## 10. The YOLOv2 loss, term by term
#
# For every cell and anchor the network predicts $t_x, t_y, t_w, t_h$, an objectness and C
# class scores. Decoded, the box centre is $\sigma(t_x), \sigma(t_y)$ within the cell and
# its size is the anchor's times $e^{t_w}, e^{t_h}$. Each labelled object is given to the
# cell holding its centre and, there, to the anchor whose shape matches it best: that anchor
# is *responsible* for it. The loss is a sum of squared errors in four terms:
#
# $$\lambda_\text{coord}\!\!\sum_\text{resp.}\!\big[(x-\hat x)^2 + (y-\hat y)^2
# + (\sqrt w-\sqrt{\hat w})^2 + (\sqrt h-\sqrt{\hat h})^2\big]
# + \sum_\text{resp.}\!(1-\hat C)^2
# + \lambda_\text{noobj}\!\!\sum_\text{not resp.}\!\hat C^2
# + \sum_\text{resp.}\sum_c (p_c-\hat p_c)^2$$
#
# with $\lambda_\text{coord} = 5$ (boxes matter) and $\lambda_\text{noobj} = 0.5$ (most
# anchors hold nothing; their term must not drown the others). Take the image above, its two
# giraffes as YOLO labels, the 5 COCO128 anchors and a 13×13 grid:

# %%
label_file = detection_data.coco128_labels(picture["file_name"])
labels25 = torch.tensor(np.loadtxt(label_file, ndmin=2), dtype=torch.float32)
coco_classes = coco.classes                     # in category-id order: YOLO's 0…79
target = detect.yolo_targets([labels25], anchors5, S_grid, 80)
for row_, col_, anchor in target[0, ..., 4].nonzero().tolist():
    cls = int(target[0, row_, col_, anchor, 5:].argmax())
    print(f"a {coco_classes[cls]} in cell (row {row_}, "
          f"column {col_}), anchor {anchor} "
          f"{tuple(round(v, 3) for v in anchors5[anchor].tolist())} responsible")

# %% [markdown]
# A perfect prediction equals the target and costs nothing. Then one mistake at a time, and
# the term that charges for it:

# %%
def terms(pred: torch.Tensor) -> list[float]:
    loss = detect.yolo_loss(pred, target)
    return [round(float(v), 4) for v in (loss.coord, loss.obj, loss.noobj, loss.cls,
                                         loss.total)]


big, small = target[0, ..., 4].nonzero().tolist()[:2]
if target[(0, *big, 2)] < target[(0, *small, 2)]:
    big, small = small, big
mistakes = {}
pred = target.clone()
mistakes["perfect"] = pred
pred = target.clone()
pred[(0, *big, 0)] += 0.3
mistakes["big giraffe's centre off by 0.3 of a cell"] = pred
pred = target.clone()
pred[(0, *big, 2)] += 0.05
mistakes["big giraffe 0.05 of the image too wide"] = pred
pred = target.clone()
pred[(0, *small, 2)] += 0.05
mistakes["small giraffe 0.05 of the image too wide"] = pred
pred = target.clone()
pred[(0, *big, 4)] = 0.6
mistakes["unsure: objectness 0.6 on the big giraffe"] = pred
pred = target.clone()
pred[0, 0, 0, 0, 4] = 0.8
mistakes["false alarm: objectness 0.8 in an empty corner"] = pred
pred = target.clone()
giraffe_class = int(target[(0, *big)][5:].argmax())
pred[(0, *big, 5 + giraffe_class)], pred[(0, *big, 5 + giraffe_class + 1)] = 0.7, 0.3
mistakes["70 % giraffe, 30 % the next class"] = pred
loss_table = Table(["prediction", "coord", "obj", "noobj", "cls", "total"],
                   [[name, *terms(p)] for name, p in mistakes.items()],
                   "evakit.detect.yolo_loss, per image (λ_coord = 5, λ_noobj = 0.5)")
display(loss_table)
assert loss_table[0]["total"] == 0 and loss_table[3]["coord"] > loss_table[2]["coord"]

# %% [markdown]
# The same 0.05 of extra width costs more on the small giraffe than on the big one — the
# square roots at work. YOLO regresses $\sqrt w$ and $\sqrt h$ because a fixed miss matters
# more on a small box; `detect.size_error_table` shows it on two sizes that miss by the same
# amount:

# %%
rows = [[r.true, r.predicted, f"{r.relative_error:.0%}", f"{r.squared:.5f}",
         f"{r.sqrt_squared:.5f}"] for r in detect.size_error_table()]
display(Table(["true w", "predicted w", "relative error", "(v₁ − v₂)²", "(√v₁ − √v₂)²"],
              rows, "a miss of 0.05 of the image on a small and on a large box"))
small_row, large_row = detect.size_error_table()
display(Markdown(
    f"The plain square charges both misses {small_row.squared:.4f}; with square roots "
    f"the small box pays {small_row.sqrt_squared / large_row.sqrt_squared:.0f}× more "
    f"than the large one."))

# %% [markdown]
# In a network, the last layer is a 1×1 convolution with B·(5 + C) channels — 5 · 85 = 425
# for COCO — whose output `detect.to_grid` rearranges to N×S×S×B×(5 + C) and `detect.decode`
# turns into the values above (sigmoids, anchor · exp, softmax). An untrained head's loss, and
# where it comes from:

# %%
torch.manual_seed(0)
raw = 0.1 * torch.randn(1, 5 * (5 + 80), S_grid, S_grid)
untrained = detect.decode(detect.to_grid(raw, 5), anchors5)
loss = detect.yolo_loss(untrained, target)
empty = int((target[..., 4] == 0).sum())
print(f"raw {tuple(raw.shape)} → decoded {tuple(untrained.shape)}; loss terms: "
      f"coord {float(loss.coord):.3f}, obj {float(loss.obj):.3f}, "
      f"noobj {float(loss.noobj):.3f}, cls {float(loss.cls):.3f}; {empty} of "
      f"{target[..., 4].numel()} anchors hold no "
      f"object, their objectness near {float(untrained[..., 4].mean()):.2f}")

# %% [markdown]
# Every anchor without an object starts near objectness 0.5, so "no object" is at first the
# largest term — which is why it is down-weighted; training drives those confidences to zero.
#
# ## 11. Annotating images: the VGG Image Annotator (VIA)
#
# Boxes come from people. VIA (Dutta & Zisserman 2019) is one HTML file that runs in a
# browser, offline: add your images, pick the rectangle shape, drag a box around each
# object, and give the region an attribute — say `class`, with a dropdown of your class
# names. *Annotation → Export annotations* saves either VIA's own JSON — per image, a list of
# regions, each a `shape_attributes` (`name: "rect"`, `x`, `y`, `width`, `height` in pixels)
# and its `region_attributes` — or COCO JSON, the layout of section 8. Converting to YOLO's
# text labels is then arithmetic: one line per box, `class cx cy w h`, normalised by the
# image size.
#
# One real COCO record — the first giraffe of the image above — in all three forms:

# %%
record = {k: v for k, v in giraffe.items() if k != "segmentation"}
record["segmentation"] = "… (polygon, left out)"
image_fields = ("id", "file_name", "width", "height")
print("COCO image:     ", json.dumps({k: picture[k] for k in image_fields}))
print("COCO annotation:", json.dumps(record))
x0, y0, bw, bh = giraffe["bbox"]
via_region = {"shape_attributes": {"name": "rect", "x": round(x0), "y": round(y0),
                                   "width": round(bw), "height": round(bh)},
              "region_attributes": {"class": names[giraffe["category_id"]]}}
print("VIA region:     ", json.dumps(via_region))
yolo_line = [x0 + bw / 2, y0 + bh / 2, bw, bh] / np.array([W, H, W, H])
line_in_file = next(line for line in label_file.read_text().splitlines()
                    if np.allclose([float(v) for v in line.split()[1:]], yolo_line,
                                   atol=1e-4))
yolo_class = int(line_in_file.split()[0])
print(f"YOLO label line: {line_in_file}  (class {yolo_class} = "
      f"{coco_classes[yolo_class]} in YOLO's 0…79 numbering)")

fig, ax = plt.subplots(figsize=(6, 4.2))
ax.imshow(photo)
ax.add_patch(Rectangle((x0, y0), bw, bh, fill=False, color="yellow", lw=2))
ax.text(x0, y0 - 6, f"{names[giraffe['category_id']]}  bbox [x, y, w, h] = "
        f"{[round(v) for v in giraffe['bbox']]}", color="black", fontsize=8,
        bbox={"facecolor": "yellow", "edgecolor": "none", "pad": 1})
ax.set_title(f"{picture['file_name']} ({W}×{H}): the COCO record drawn", fontsize=9)
ax.axis("off")
fig.tight_layout()

# %% [markdown]
# COCO numbers its categories 1…90 with gaps (giraffe is 25), YOLO's text labels 0…79
# without them (giraffe is 23): a converter must map one onto the other, and a wrong map
# silently relabels everything — draw a few boxes, as above, before training on converted
# labels.
#
# ## 12. Assignment A: Tiny ImageNet with ResNet18
#
# **The task.** Tiny ImageNet: 200 classes of 64×64 images, 500 training and 50 validation
# images per class. Pool the 110 000 labelled images, split them 70/30 within each class,
# train ResNet18 for 50 epochs and reach at least 50 % test accuracy.
#
# **The solution** is the recipe `s10/tiny-imagenet-resnet18`: the CIFAR variant of
# ResNet18 (3×3 stem, no max pool — at 64×64 the last stage still sees an 8×8 map) with
# 200 outputs, SGD with Nesterov momentum and a one-cycle schedule, label smoothing,
# random crop (padding 8) and flip. Its task, `tiny-imagenet`, loads the data through
# `evakit.tiny_imagenet`: the official archive downloaded and checked, the pooled images
# cached, and a seeded split (seed 0 whatever the training seed, so every run is tested on
# the same images). The split, on the labels alone:

# %%
tiny = recipes.get("s10/tiny-imagenet-resnet18")
labels = torch.arange(200).repeat_interleave(550)          # 200 classes × (500 + 50)
train_idx, test_idx = tiny_imagenet.stratified_split(labels, seed=0)
per_class = torch.bincount(labels[train_idx]), torch.bincount(labels[test_idx])
print(f"{len(train_idx):,} training and {len(test_idx):,} test images; every class "
      f"{int(per_class[0].min())}/{int(per_class[1].min())}")
assert set(per_class[0].tolist()) == {385} and set(per_class[1].tolist()) == {165}
display(settings(tiny, ["model", "model_kwargs", "task", *fields]))

# %%
display(Markdown(records.results_or_missing(tiny.name)))

# %% [markdown]
# **Why there is no result here.** The book is built on a machine without internet access,
# where Tiny ImageNet cannot be fetched, and the run is long on a CPU. How long, measured as
# in section 4 (one training step of the full-size ResNet18 on 64×64 images, 200 classes):

# %%
tiny_step, tiny_where = bench.step_rate(tiny, (3, 64, 64), classes=200, batch_size=8,
                                        steps=2)
tiny_rate = tiny_step.per_second
tiny_images = tiny.epochs * len(train_idx)
hours = tiny_images / tiny_rate / 3600
display(Markdown(
    f"Here ({tiny_where}, batches of 8 to keep the timing short): {tiny_rate:,.1f} "
    f"images per second, so {tiny.epochs} epochs of {len(train_idx):,} images — "
    f"{tiny_images:,} training images in all, before any test pass — take about "
    f"{hours:,.1f} hours" + (" of CPU time" if "CPU" in tiny_where else "")
    + f". The recipe's batches of {tiny.batch_size} use the chip somewhat better per "
    "image, so read this as an upper estimate of the same order."))

# %% [markdown]
# So this page quotes no accuracy for assignment A. On a GPU machine with internet access,
# one command downloads the archive (248 MB, md5-checked), caches it, trains the recipe and
# writes the record this section reads:
#
# ```
# evakit train s10/tiny-imagenet-resnet18 --record
# ```
#
# ## Exercises
#
# 1. ViT-B/16 takes 224×224 images in 16×16 patches with D = 768. How many tokens enter its
#    encoder, and how many numbers are in its position embeddings?
# 2. What is the IoU of the boxes (0, 0, 2, 2) and (1, 1, 3, 3)?
# 3. YOLOv2 on PASCAL VOC: a 13×13 grid, 5 anchors, 20 classes. How many channels has its
#    last 1×1 convolution?
# 4. Why is a ViT's GradCAM taken at the last block's first LayerNorm, not at the final
#    LayerNorm before the head?
# 5. In ConvMixer, what plays the part of attention, and what the part of the MLP?
#
# ```{admonition} Answers
# :class: dropdown
# 1. $(224/16)^2 = 196$ patches plus the CLS token: 197 tokens; $197 \cdot 768 = 151\,296$
#    position-embedding numbers.
# 2. The intersection is the unit square (1, 1)–(2, 2): $1 / (4 + 4 - 1) = 1/7 \approx 0.143$.
# 3. $5 \cdot (5 + 20) = 125$: per anchor 4 box numbers, 1 objectness, 20 class scores.
# 4. The head reads only the CLS token. After the last attention, no patch token's value
#    reaches it, so the gradient of the class score with respect to the patch tokens is zero
#    there; the input of the last attention is the latest layer where patch tokens still
#    matter.
# 5. The depthwise k×k convolution mixes positions (attention's job, with fixed learned
#    weights instead of data-dependent ones); the pointwise 1×1 convolution mixes channels
#    (the MLP's job).
# ```

# %% tags=["remove-cell"]
assert (224 // 16) ** 2 + 1 == 197 and 197 * 768 == 151_296
assert math.isclose(float(detect.box_iou(torch.tensor([[0.0, 0, 2, 2]]),
                                         torch.tensor([[1.0, 1, 3, 3]]))), 1 / 7,
                    abs_tol=1e-6)
assert 5 * (5 + 20) == 125
probe, seen = vit.ViT(dim=16, heads=2).eval(), {}


def keep(name):
    def hook(module, inputs, output):
        output.retain_grad()
        seen[name] = output
    return hook


probe.norm.register_forward_hook(keep("final LayerNorm"))
probe.blocks[-1].norm1.register_forward_hook(keep("last block's norm1"))
probe(torch.randn(2, 3, 32, 32))[:, 3].sum().backward()
assert seen["final LayerNorm"].grad[:, 1:].abs().max() == 0          # exercise 4
assert seen["last block's norm1"].grad[:, 1:].abs().max() > 0
assert mixer.layers[0][0][0].groups == 256 and mixer.layers[0][1].kernel_size == (1, 1)

# %% [markdown]
# ## Summary
#
# - Multi-head self-attention is a few matrix products and a softmax; NumPy and
#   `nn.MultiheadAttention` agree to float precision.
# - ViT: patches embedded by a `Conv2d` with kernel = stride (a linear map per patch), a CLS
#   token, learned position embeddings (attention alone ignores order), pre-norm blocks
#   LN → MHA → + → LN → MLP → +, a head on the CLS token. ConvMixer keeps the patches and
#   mixes them with depthwise and pointwise convolutions instead.
# - Written class by class, the ViT is the same function as PyTorch's
#   `nn.TransformerEncoderLayer` stack with the weights copied.
# - GradCAM reads a transformer once its tokens are laid back on their grid
#   (`reshape_transform`).
# - Detection = what + where for every object. IoU measures a match; anchors from k-means
#   with 1 − IoU fit the data's shapes; YOLOv2's loss sums squared errors of coordinates (with
#   √w, √h), objectness, no-object confidence (down-weighted) and class probabilities.
# - Read an unknown annotation file's structure before parsing it; check converted labels by
#   drawing them.
#
# ## References
#
# - A. Dosovitskiy et al., *An Image is Worth 16x16 Words: Transformers for Image Recognition
#   at Scale*, ICLR 2021.
# - A. Trockman, J. Z. Kolter, *Patches Are All You Need?* (ConvMixer), TMLR 2022.
# - J. Redmon, S. Divvala, R. Girshick, A. Farhadi, *You Only Look Once: Unified, Real-Time
#   Object Detection*, CVPR 2016.
# - J. Redmon, A. Farhadi, *YOLO9000: Better, Faster, Stronger* (YOLOv2), CVPR 2017.
# - J. R. R. Uijlings, K. E. A. van de Sande, T. Gevers, A. W. M. Smeulders, *Selective
#   Search for Object Recognition*, IJCV 2013.
# - R. Girshick, J. Donahue, T. Darrell, J. Malik, *Rich Feature Hierarchies for Accurate
#   Object Detection and Semantic Segmentation* (R-CNN), CVPR 2014.
# - R. Girshick, *Fast R-CNN*, ICCV 2015.
# - S. Ren, K. He, R. Girshick, J. Sun, *Faster R-CNN: Towards Real-Time Object Detection
#   with Region Proposal Networks*, NeurIPS 2015.
# - K. He, X. Zhang, S. Ren, J. Sun, *Identity Mappings in Deep Residual Networks*
#   (ResNet v2, pre-activation), ECCV 2016.
# - R. R. Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via
#   Gradient-based Localization*, ICCV 2017.
# - J. Devlin et al., *BERT*, NAACL 2019 (the CLS token).
# - T.-Y. Lin et al., *Microsoft COCO: Common Objects in Context*, ECCV 2014.
# - P. F. Proença, P. Simões, *TACO: Trash Annotations in Context for Litter Detection*,
#   arXiv:2003.06975, 2020.
# - A. Dutta, A. Zisserman, *The VIA Annotation Software for Images, Audio and Video*, ACM
#   Multimedia 2019.
