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
# # Session 9 — Attention, part I: embeddings, position, and where to look
#
# Every network so far has combined information with weights fixed by training: a kernel
# mixes the same 3×3 neighbourhood the same way wherever it is, a fully connected layer
# mixes its inputs with one matrix for every image, global average pooling gives every
# position the same weight. **Attention** computes the mixing weights from the input
# itself, so each image — each word, each patch — decides what it combines. This session
# looks at what a trained network's last features hold (an *embedding*), at what
# aggregation forgets about position and how position encodings put it back, builds
# self-attention by hand, lets a network learn *where* to look in an image (the spatial
# transformer), and ends with the assignment: ULTIMUS, four small attention blocks on top
# of three convolutions.
#
# ```{note}
# **FAST mode on this page.** With `EVAKIT_FAST=1` (the tests, and the build of this book)
# the cells that train use a small slice for a few epochs: they show the code working, not
# what the network reaches, and say so in their output. The results discussed come from
# recorded full runs in `book/records/`; where a record is missing, the page says so.
# ```
#
# **Objectives.** After this session you can
# - say what distinguishes fixed aggregation (FC, pooling) from attention, and why both lose
#   position unless it is encoded;
# - build and draw 1-D, 2-D and sinusoidal position encodings;
# - project a trained network's embeddings with PCA and t-SNE, cluster them with k-means,
#   and test whether a trait the labels never mention lives there;
# - compute self-attention by hand — Q, K, V, $QK^\top/\sqrt d$, softmax, weighted sum — and
#   check it against PyTorch; explain multi-head and cross-attention;
# - explain and train a spatial transformer (localisation net → `affine_grid` →
#   `grid_sample`);
# - build the ULTIMUS network, say exactly what its attention computes, and check it with
#   `evakit check s09`.

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
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import cross_val_score
from torch import nn

from evakit import check, data, models, recipes, records, runner, viz
from evakit.errors import RecordError
from evakit.models import attention
from evakit.table import Table

# %% [markdown]
# ## 1. Aggregating context: fixed weights or chosen ones
#
# Take a sequence of six tokens, each an 8-d vector (words of a sentence, patches of an
# image). A fully connected layer *across positions* makes output $i$ from
# $\sum_j W_{ij} x_j$: the matrix $W$ is learned once and then applies to every input —
# **full** aggregation, decided by the architecture and the training set. Self-attention
# computes its matrix from the tokens themselves — a query $q_i = W_q x_i$ is compared with
# every key $k_j = W_k x_j$ and the softmax of the scores says how much of each token to
# take — so two inputs get two different matrices: **selective** aggregation.

# %%
torch.manual_seed(0)
T, d = 6, 8
words = ["a", "cat", "sat", "on", "the", "mat"]
x_a, x_b = torch.randn(T, d), torch.randn(T, d)          # two inputs of six tokens
across = nn.Linear(T, T, bias=False)                    # an FC layer across positions
W_q, W_k, W_v = (nn.Linear(d, d, bias=False) for _ in range(3))


def attention_weights(x: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ / √d): row i says how much of each token output i takes."""
    return torch.softmax(W_q(x) @ W_k(x).T / math.sqrt(d), dim=-1)


fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
with torch.no_grad():
    viz.matrix(across.weight, ax=axes[0], fmt="{:.2f}", cmap="RdBu",
               title="FC across positions:\nthe same W for every input")
    viz.matrix(attention_weights(x_a), ax=axes[1], fmt="{:.2f}", vmin=0, vmax=1,
               title="attention weights, input A")
    viz.matrix(attention_weights(x_b), ax=axes[2], fmt="{:.2f}", vmin=0, vmax=1,
               title="attention weights, input B")
for ax in axes:
    ax.set_xlabel("from token j")
    ax.set_ylabel("output i")
fig.tight_layout()

# %% [markdown]
# **What aggregation forgets.** Global average pooling followed by an FC layer — the head of
# every network since session 3 — adds up all positions, so shuffling the positions of the
# last feature map changes nothing. Self-attention is blind to order in a subtler way: the
# maps to Q, K and V are fully connected layers applied to *each token with the same
# weights* (like a 1×1 convolution), so they know what a token is, not where it stands;
# permuting the tokens only permutes the outputs. (A single FC layer on a whole flattened
# image does tie each weight to one pixel — session 0 showed what that costs: it is tied to
# exact positions, and its size grows with the image.) A **position encoding** added to each
# token gives the position back: after $x_i + p_i$, moving a token changes what it is.

# %%
def self_attention(x: torch.Tensor) -> torch.Tensor:
    """Single-head self-attention: the attention weights times the values."""
    return attention_weights(x) @ W_v(x)


fmap = torch.randn(1, 16, 5, 5)
shuffled = fmap.flatten(2)[..., torch.randperm(25)].view(1, 16, 5, 5)
head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
perm = torch.tensor([5, 2, 0, 4, 1, 3])
code = attention.sinusoidal_encoding(T, d)
with torch.no_grad():
    gap_blind = torch.allclose(head(fmap), head(shuffled), atol=1e-6)
    order_blind = torch.allclose(self_attention(x_a)[perm], self_attention(x_a[perm]),
                                 atol=1e-6)
    with_code = torch.allclose(self_attention(x_a + code)[perm],
                               self_attention(x_a[perm] + code), atol=1e-6)
print(f"GAP → FC gives the same output for a shuffled map: {gap_blind}")
print(f"self-attention of permuted tokens = permuted self-attention: {order_blind}")
print(f"... once a position encoding is added: {with_code}")
assert gap_blind and order_blind and not with_code

# %% [markdown]
# ## 2. Position encodings, drawn
#
# The simplest code is a learned table: one vector per position, trained with the rest
# (GPT's `wpe` in session 11). Vaswani et al. (2017) used a fixed one instead: channel pair
# $(2i, 2i+1)$ of position $p$ holds
# $\sin(p/10000^{2i/d})$ and $\cos(p/10000^{2i/d})$ — a clock with $d/2$ hands turning at
# geometrically spaced speeds. Every position gets a distinct code, nearby positions get
# similar codes, and moving $k$ positions turns each hand by a fixed angle, so "$k$ to the
# left" is the same linear map wherever it happens. By hand, checked against the library's:

# %%
def sinusoid(positions: int, dim: int, base: float = 10_000.0) -> torch.Tensor:
    """The sinusoidal position code, one position and one channel pair at a time."""
    code = torch.zeros(positions, dim)
    for p in range(positions):
        for i in range(0, dim, 2):
            angle = p / base ** (i / dim)
            code[p, i], code[p, i + 1] = math.sin(angle), math.cos(angle)
    return code


code_1d = sinusoid(64, 32)
assert torch.allclose(code_1d, attention.sinusoidal_encoding(64, 32), atol=1e-5)

# %% [markdown]
# An image needs two coordinates. A **2-D** code gives half the channels to the row and half
# to the column (`attention.sinusoidal_encoding_2d`); ViT (session 10) learns its table
# instead, and its learned codes come out looking much like these. Below: the 1-D code of 64
# positions, how similar each position's code is to every other's (their dot product), and,
# for the 2-D code of an 8×8 grid, the similarity of every cell to two chosen cells.

# %%
code_2d = attention.sinusoidal_encoding_2d(8, 8, 32)
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6),
                         gridspec_kw={"width_ratios": [1.1, 1.1, 0.8, 0.8]})
axes[0].imshow(code_1d.T, cmap="RdBu", aspect="auto")
axes[0].set(xlabel="position p", ylabel="channel", title="1-D sinusoidal code")
axes[1].imshow(code_1d @ code_1d.T, cmap="viridis")
axes[1].set(xlabel="position", ylabel="position", title="code · code: near is similar")
for ax, (r, c) in zip(axes[2:], ((1, 1), (5, 6)), strict=True):
    ax.imshow((code_2d.reshape(64, 32) @ code_2d[r, c]).view(8, 8), cmap="viridis")
    ax.plot(c, r, "r+", markersize=12)
    ax.set(title=f"2-D code: similarity to ({r}, {c})", xticks=[], yticks=[])
fig.tight_layout()

# %% [markdown]
# The band along the diagonal is the point: a dot product — exactly what attention computes
# between a query and a key — is largest for nearby positions and falls off with distance,
# in one dimension along the sequence and in two across the grid.
#
# ## 3. Embeddings: what a trained network's last features hold
#
# The 16 numbers session 3's network computes just before its classifier (after global
# average pooling) are its **embedding** of the image: the classifier is a single linear
# layer, so whatever it needs must already be laid out there, nearly linearly. We read them
# from the recorded session-3 model on 1,000 test images.

# %%
try:
    mnist_net = records.load_model("s03/assignment")
    mnist_source = "the recorded s03/assignment model"
    print(records.load("s03/assignment").provenance())
except RecordError:
    print("No recorded weights of s03/assignment are in book/records/ yet: this "
          "section needs them. Until they exist, it trains a stand-in here.")
    stand_in = runner.run("s03/assignment", verbose=False)
    mnist_net = stand_in.model.cpu().eval()
    mnist_source = f"a stand-in model, {stand_in.label}"
test = data.load("mnist", "test").subset(1000)
pixels = test.images.float() / 255
with torch.no_grad():
    embedding = mnist_net.features((pixels - 0.1307) / 0.3081).numpy()
labels = test.labels.numpy()
print(f"{len(labels)} test images → embeddings of {embedding.shape[1]} numbers "
      f"({mnist_source})")

# %% [markdown]
# **Projections.** 16 dimensions do not fit on a page. PCA keeps the two directions of
# largest variance — a linear view, honest about distances. t-SNE (van der Maaten & Hinton,
# 2008) places points so that each one's nearest neighbours stay its neighbours — good at
# showing clusters, but distances *between* clusters and cluster sizes mean little.

# %%
pca = PCA(2).fit(embedding)
flat_pca = pca.transform(embedding)
flat_tsne = TSNE(2, init="pca", perplexity=30, max_iter=500,
                 random_state=0).fit_transform(embedding)
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
explained = pca.explained_variance_ratio_.sum()
for ax, flat, name in ((axes[0], flat_pca, f"PCA ({explained:.0%} of the variance)"),
                       (axes[1], flat_tsne, "t-SNE")):
    points = ax.scatter(*flat.T, c=labels, cmap="tab10", s=7)
    for digit in range(10):
        ax.annotate(str(digit), np.median(flat[labels == digit], 0), fontsize=14,
                    weight="bold", ha="center")
    ax.set(title=f"{name} of the embeddings, coloured by label", xticks=[], yticks=[])
fig.colorbar(points, ax=axes, ticks=range(10))
fig.suptitle(mnist_source);

# %% [markdown]
# **Clusters without labels.** k-means with $k=10$ groups the embeddings without ever seeing
# a label; the adjusted Rand index measures how well its groups match the digits (1 is a
# perfect match, 0 what chance gives). The same k-means on the raw pixels is the baseline:

# %%
def kmeans_agreement(features: np.ndarray) -> float:
    """Adjusted Rand index between k-means' ten clusters and the digit labels."""
    found = KMeans(10, n_init=4, random_state=0).fit_predict(features)
    return adjusted_rand_score(labels, found)


ari = {"pixels (784 numbers)": kmeans_agreement(pixels.flatten(1).numpy()),
       f"embedding ({embedding.shape[1]} numbers)": kmeans_agreement(embedding)}
display(Table(["k-means on", "adjusted Rand index with the labels"],
              [[k, f"{v:.2f}"] for k, v in ari.items()],
              f"{len(labels)} MNIST test images"))

# %% tags=["remove-cell"]
on_pixels, on_embedding = ari.values()
assert on_embedding > on_pixels + 0.1                       # "fall apart into groups"

# %% [markdown]
# The network was only ever asked for the label, and it built a space in which the labels
# fall apart into groups on their own.
#
# **A trait no label mentions: slant.** Does the embedding keep anything else? Handwriting
# leans. Slant can be measured from the image's moments: with $(\bar x, \bar y)$ the centre
# of the ink, a digit sheared to the right has its ink further right the higher it goes, so
# the covariance of $x$ and $y$ (with $y$ pointing down) is negative:
# $\text{slant} = -\mu_{11}/\mu_{02}$ — pixels of horizontal shift per pixel of height (the
# quantity classic "deskewing" removes).

# %%
def slant(images: torch.Tensor) -> torch.Tensor:
    """Horizontal shift per row going up, from the image moments (> 0: leans right)."""
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    ink = images.squeeze(1)
    mass = ink.sum((1, 2))
    x_bar = (ink * xs).sum((1, 2)) / mass
    y_bar = (ink * ys).sum((1, 2)) / mass
    dx, dy = xs - x_bar[:, None, None], ys - y_bar[:, None, None]
    mu11 = (ink * dx * dy).sum((1, 2)) / mass
    mu02 = (ink * dy * dy).sum((1, 2)) / mass
    return -mu11 / mu02


slants = slant(pixels).numpy()
ones = np.flatnonzero(labels == 1)
picked = ones[np.argsort(slants[ones])][np.linspace(0, len(ones) - 1, 8).astype(int)]
viz.image_grid(pixels[picked], [f"slant {slants[i]:+.2f}" for i in picked], cols=8,
               suptitle="test 1s from most left- to most right-leaning");

# %% [markdown]
# If slant lives in the embedding, a *linear* map from the 16 numbers should predict it on
# images it was not fitted to. Cross-validated ridge regression says how much of the
# variation of slant it explains ($R^2$; 0 = no better than the mean). Two things must be
# kept apart. Digits differ in their *typical* slant, and that part the label already tells;
# so we ask (a) among the 1s alone, the digit whose slant varies most, and (b) over all
# digits, for the slant left after removing each digit's mean — what the label cannot
# explain. As a control, the same regression against the slants shuffled between images
# must explain nothing: that is what "no slant in there" would look like.

# %%
def r2_from_embedding(rows: np.ndarray, target: np.ndarray) -> float:
    """Mean R² of ridge regression embedding → target on those rows, 5-fold CV."""
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13))
    scores = cross_val_score(ridge, embedding[rows], target, cv=5, scoring="r2")
    return float(scores.mean())


digit_mean = np.array([slants[labels == c].mean() for c in range(10)])
beyond_label = slants - digit_mean[labels]
everyone = np.arange(len(labels))
shuffle = np.random.default_rng(0).permutation
r2 = {"slant of the 1s": r2_from_embedding(ones, slants[ones]),
      "  control: shuffled among the 1s":
          r2_from_embedding(ones, shuffle(slants[ones])),
      "slant beyond each digit's mean, all digits":
          r2_from_embedding(everyone, beyond_label),
      "  control: shuffled among all":
          r2_from_embedding(everyone, shuffle(beyond_label))}
display(Table(["predicted from the embedding", "R² (5-fold cross-validated)"],
              [[k, f"{v:.2f}"] for k, v in r2.items()],
              f"{len(ones)} test 1s and {len(labels)} test digits; {mnist_source}"))
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
limit = np.quantile(np.abs(slants), 0.95)
points = axes[0].scatter(*flat_tsne.T, c=slants, cmap="coolwarm", vmin=-limit,
                         vmax=limit, s=7)
axes[0].set(title="the t-SNE map above, coloured by slant", xticks=[], yticks=[])
ones_flat = PCA(2).fit_transform(embedding[ones])
axes[1].scatter(*ones_flat.T, c=slants[ones], cmap="coolwarm", vmin=-limit, vmax=limit,
                s=14)
axes[1].set(title="PCA of the 1s' embeddings alone, coloured by slant", xticks=[],
            yticks=[])
fig.colorbar(points, ax=axes, label="slant (blue: leans left, red: right)");

# %% tags=["remove-cell"]
controls = [v for k, v in r2.items() if "control" in k]
assert max(controls) < 0.05                                             # "get nothing"
if mnist_source == "the recorded s03/assignment model":        # the prose below
    assert r2["slant of the 1s"] > 0.5
    assert r2["slant beyond each digit's mean, all digits"] > 0.03

# %% [markdown]
# Among the 1s, a linear map from the embedding recovers most of the slant, and in the PCA
# of the 1s alone the colour runs from blue to red along one direction. Over all digits,
# the slant the label cannot explain is there too, more weakly; the shuffled controls get
# nothing. The network was trained with ±7° rotations — an invitation to ignore slant — and
# still keeps it, because the features that tell a 1 from a 7 are oriented strokes.
# Embeddings hold more than the task asked for; that is what makes a network's features
# reusable, and what lets attention compare tokens by a dot product.
#
# ## 4. Self-attention by hand
#
# Now the mechanism itself, on the six tokens of section 1 (each with its position code
# added). Three linear maps make a query, a key and a value for each token; the scores are
# all queries against all keys, $QK^\top$, divided by $\sqrt{d}$ so that their spread does
# not grow with the width (a dot product of $d$ unit-variance terms has variance $d$, and a
# softmax of large scores is nearly one-hot, with vanishing gradients); a softmax along each
# row turns scores into weights; the output is the weighted sum of the values.

# %%
x = x_a + code                                        # six tokens, position added
with torch.no_grad():
    Q, K, V = W_q(x), W_k(x), W_v(x)                  # each T × d
    scores = Q @ K.T / math.sqrt(d)                   # T × T
    weights = torch.exp(scores) / torch.exp(scores).sum(dim=1, keepdim=True)
    out = weights @ V                                 # T × d: row i = Σ_j w_ij v_j
fig = viz.matrix(weights, fmt="{:.2f}", vmin=0, vmax=1, title="attention weights")
ax = fig.axes[0]
ax.set_xticks(range(T), words)
ax.set_yticks(range(T), words)
ax.set(xlabel="key (token attended to)", ylabel="query (token being updated)");

# %%
with torch.no_grad():
    reference = F.scaled_dot_product_attention(Q[None], K[None], V[None])[0]
assert torch.allclose(out, reference, atol=1e-6)
assert torch.allclose(weights.sum(1), torch.ones(T))
print("by hand = torch.nn.functional.scaled_dot_product_attention, max difference "
      f"{(out - reference).abs().max():.1e}")

# %% [markdown]
# The weights here come from random maps, so they mean nothing yet; training shapes $W_q$,
# $W_k$ and $W_v$ so that, say, "sat" learns to look at "cat".
#
# **Multi-head attention** is to attention what channels are to convolution. One softmax
# row is one mixing pattern; a token may need several at once (its subject, its neighbour,
# the start of the sentence). So the $d$ channels of Q, K and V are split into $h$ heads of
# $d/h$, each head computes its own attention matrix on its own slice, the heads' outputs
# are concatenated back to $d$ channels and mixed by one more linear map $W_o$. Same number
# of weights as one head of width $d$; $h$ different patterns.

# %%
heads, d_head = 2, d // 2
W_o = nn.Linear(d, d, bias=False)
with torch.no_grad():
    # each of Q, K, V split into h heads: h × T × d/h
    q, k, v = (t.view(T, heads, d_head).transpose(0, 1) for t in (Q, K, V))
    head_weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d_head), dim=-1)
    multi = W_o((head_weights @ v).transpose(0, 1).reshape(T, d))            # T × d

mha = nn.MultiheadAttention(d, heads, bias=False, batch_first=True)
with torch.no_grad():
    mha.in_proj_weight.copy_(torch.cat([W_q.weight, W_k.weight, W_v.weight]))
    mha.out_proj.weight.copy_(W_o.weight)
    reference, reference_weights = mha(x[None], x[None], x[None],
                                       average_attn_weights=False)
assert torch.allclose(multi, reference[0], atol=1e-6)
assert torch.allclose(head_weights, reference_weights[0], atol=1e-6)
fig, axes = plt.subplots(1, heads, figsize=(8, 3.6))
for h, ax in enumerate(axes):
    viz.matrix(head_weights[h], ax=ax, fmt="{:.2f}", vmin=0, vmax=1,
               title=f"head {h + 1}")
    ax.set_xticks(range(T), words)
    ax.set_yticks(range(T), words)
fig.suptitle("two heads, two patterns (= torch.nn.MultiheadAttention)")
fig.tight_layout()

# %% [markdown]
# **Cross-attention** is the same computation with the queries taken from one sequence and
# the keys and values from another: a translation decoder's words query the source
# sentence's (Bahdanau et al., 2015, where attention began), a caption's words query an
# image's patches. The attention matrix becomes rectangular — one row per query, one column
# per token of the other sequence — and each output is a mixture of the *other* sequence's
# values.

# %%
targets = ["le", "chat", "assis", "tapis"]
y = torch.randn(len(targets), d) + attention.sinusoidal_encoding(len(targets), d)
with torch.no_grad():
    Q_y = W_q(y)                                   # queries from the target sequence
    cross = torch.softmax(Q_y @ K.T / math.sqrt(d), dim=-1)    # keys from the source
    mixed = F.scaled_dot_product_attention(Q_y[None], K[None], V[None])[0]
assert torch.allclose(mixed, cross @ V, atol=1e-6)
fig = viz.matrix(cross, fmt="{:.2f}", vmin=0, vmax=1,
                 title="cross-attention: 4 queries × 6 keys")
ax = fig.axes[0]
ax.set_xticks(range(T), words)
ax.set_yticks(range(len(targets)), targets)
ax.set(xlabel="source tokens (keys, values)", ylabel="target tokens (queries)");

# %% [markdown]
# ## 5. Where to look: the spatial transformer
#
# Attention chooses *which* tokens to combine. A spatial transformer (Jaderberg et al.,
# 2015) chooses *where* to read an image: a small **localisation network** looks at the
# image and outputs six numbers, an affine matrix $\theta$; `affine_grid` turns $\theta$
# into a sampling grid — for every output pixel, the point of the input to read, in
# coordinates from −1 to 1 — and `grid_sample` reads those points by bilinear
# interpolation. Both steps are differentiable in the image *and* in $\theta$, so the
# classification loss alone teaches the localisation net which warp helps. evakit already
# uses the same two calls, with random $\theta$s, to rotate training images
# (`evakit.augment.random_affine`, session 4's ±7°).
#
# By hand: $\theta$ maps output coordinates to input coordinates, so a grid that reads the
# input rotated by $+a$ shows the digit turned the other way, and a zoom *in* has entries
# below 1.

# %%
def rotation(angles: torch.Tensor, zoom: float = 1.0) -> torch.Tensor:
    """θ (N × 2 × 3) whose grid reads the input rotated by each angle (radians),
    zoomed by ``zoom``."""
    cos, sin, zero = angles.cos() / zoom, angles.sin() / zoom, torch.zeros_like(angles)
    return torch.stack([torch.stack([cos, -sin, zero], 1),
                        torch.stack([sin, cos, zero], 1)], 1)


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Images read through the grid that θ defines (bilinear, zeros outside)."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


digit = pixels[:1]
theta = rotation(torch.tensor([math.radians(30)]), zoom=1.4)
grid = F.affine_grid(theta, [1, 1, 28, 28], align_corners=False)[0]
turned = warp(digit, theta)
# one output pixel by hand (the brightest): its grid point, in input pixels, and the
# four pixels around that point
row, col = divmod(int(turned.argmax()), 28)
gx, gy = ((grid[row, col] + 1) * 28 - 1) / 2
x0, y0 = int(gx.floor()), int(gy.floor())
fx, fy = float(gx - x0), float(gy - y0)
img = digit[0, 0]
by_hand = ((1 - fx) * (1 - fy) * img[y0, x0] + fx * (1 - fy) * img[y0, x0 + 1]
           + (1 - fx) * fy * img[y0 + 1, x0] + fx * fy * img[y0 + 1, x0 + 1])
assert torch.isclose(by_hand, turned[0, 0, row, col], atol=1e-6)

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(img, cmap="gray")
points = ((grid.reshape(-1, 2) + 1) * 28 - 1) / 2
axes[0].scatter(*points[::3].T, s=2, c="C1")
axes[0].plot(gx, gy, "r+", markersize=14)
axes[0].set_title("input and the grid θ defines (every 3rd point)")
axes[1].imshow(turned[0, 0], cmap="gray")
axes[1].plot(col, row, "r+", markersize=14)
axes[1].set_title("grid_sample: 30° and zoom 1.4")
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# The red cross on the right is the output pixel computed by hand above: it reads the input
# at the red cross on the left, mixing its four neighbouring pixels by their distances.
#
# **The STN network.** `s09/stn` puts a spatial transformer in front of a small classifier
# that flattens its last feature map (so it cares where strokes are). The localisation net
# (two conv → pool → ReLU stages, FC → 32 → 6) starts at the identity: its last layer has
# zero weights and the identity's bias, so training begins from "change nothing". To give it
# something to undo, the recipe trains on MNIST rotated by up to ±45°, shifted and zoomed on
# the fly.

# %%
stn_recipe = recipes.get("s09/stn")
print(stn_recipe.summary)
print(f"{models.count_parameters(stn_recipe.build_model()):,} parameters "
      f"(kept with the record: at most {records.MAX_WEIGHTS:,})")
if records.weights_path("s09/stn").is_file():
    stn_model = records.load_model("s09/stn")
    stn_source = "the recorded s09/stn model"
    display(Markdown(records.load("s09/stn").results_markdown()))
else:
    display(Markdown(records.results_or_missing("s09/stn")))
    stn_run = runner.run(stn_recipe, verbose=False)
    stn_model = stn_run.model.cpu().eval()
    stn_source = f"trained here: {stn_run.label}"
    print(f"The warps below come from a model {stn_source}; with the record they show "
          "the recorded model's.")

# %% [markdown]
# What did it learn? Rotate test digits by known angles, hand them to the network, and look
# at what its transformer makes of them — and at the rotation in the $\theta$ it predicts
# for each, against the rotation we applied.

# %%
n = 500
uniform = torch.rand(n, generator=torch.Generator().manual_seed(0))
angles = (uniform * 2 - 1) * math.pi / 4                     # ±45°, as in training
rotated = warp(pixels[:n], rotation(angles))
normalized = (rotated - 0.1307) / 0.3081
with torch.no_grad():
    undone = stn_model.warp(normalized) * 0.3081 + 0.1307
    predicted = stn_model.stn.theta(normalized)
stn_angle = torch.atan2(predicted[:, 1, 0], predicted[:, 0, 0])
correlation = float(torch.corrcoef(torch.stack([angles, stn_angle]))[0, 1])
show = list(range(8))
viz.image_grid([*rotated[show], *undone[show]],
               [f"rotated {math.degrees(a):+.0f}°" for a in angles[show]]
               + ["what the STN reads"] * len(show), cols=len(show),
               suptitle="top: input; bottom: after the spatial transformer "
                        f"({stn_source})");
fig, ax = plt.subplots(figsize=(5.5, 4.5))
ax.scatter(np.degrees(angles.numpy()), np.degrees(stn_angle.numpy()), s=6)
ax.plot([-45, 45], [45, -45], "k:", label="undoes the rotation exactly")
ax.set(xlabel="rotation applied (°)", ylabel="rotation in the STN's θ (°)",
       title=f"correlation {correlation:+.2f}")
ax.legend();

# %% tags=["remove-cell"]
if stn_source == "the recorded s09/stn model":
    assert correlation < -0.5                                      # the prose below

# %% [markdown]
# The recorded transformer turns its θ against the rotation it is shown: the points fall
# along the dotted line's direction, and the digits in the bottom row stand more upright
# than those above them. Nobody told it about rotation; straightening the digits simply
# made the classifier's job easier.
#
# ## 6. The assignment: ULTIMUS
#
# **The task.** Take a CIFAR-10 image (32×32×3); three convolutions to 48 channels
# (3×3: 3 → 16 → 32 → 48); global average pooling to a 48-d vector $X$. An **ULTIMUS**
# block makes $K$, $Q$, $V$ = FC 48 → 8 each, $AM = \text{softmax}(Q^\top K)/\sqrt{8}$
# ("8×8"), $Z = V \cdot AM$ (8), and an FC "out" 8 → 48. Four ULTIMUS blocks, then an FC
# 48 → 10. Train 24 epochs with a one-cycle policy and Adam; show the training log and the
# train/test loss chart.
#
# **What the attention computes.** For one image, $X$ is one row of 48 numbers, and $K$,
# $Q$, $V$ are rows of 8 (as `nn.Linear` returns them). Written as rows,
# $Q^\top K$ is a column times a row, $(8\times1)(1\times8) = 8\times8$:
# $AM_{ij} \propto \exp(q_i k_j)$ — the outer product, a softmax along each row $j$, then
# the division by $\sqrt 8$ — and $Z = V \cdot AM$ is a row times the matrix,
# $(1\times8)(8\times8) = 1\times8$: $z_j = \sum_i v_i\,AM_{ij}$. In words: the image's
# vector becomes 8 "tokens" of *one number each*, every token compares itself with every
# other by a product of two scalars, and the values are redistributed by those weights.
# Two honest remarks about the formula as written:
#
# - **The scaling order.** The usual attention is $\text{softmax}(QK^\top/\sqrt{d_k})\,V$:
#   the scale goes *inside* the softmax, to keep the scores' spread from saturating it.
#   Outside, $/\sqrt8$ only multiplies $Z$ by a constant that the out FC absorbs — it
#   tempers nothing. (And with tokens of one number, $d_k = 1$: the usual scale would be
#   $\sqrt1$.) We keep the order as written.
# - **The product's side.** Rows of $AM$ sum to $1/\sqrt8$, and $V \cdot AM$ sums over the
#   row index: each value $v_i$ is *spread* over the outputs by its row of weights, where
#   the usual $AM \cdot V$ lets each output *gather* a weighted average. We keep $V\cdot AM$
#   as written; exercise 2 asks what the other side would change.
#
# **Why per image.** Many implementations read $Q$ and $K$ as the $B \times 8$ matrices of a
# whole batch; then $Q^\top K$ is $8\times8$ too — but it is a *sum over the images of the
# batch*, so one image's prediction depends on which other images share its batch (and on
# the batch size at test time). Here every image has its own $AM$.

# %%
torch.manual_seed(0)
net = models.create("s09/ultimus").eval()
block = net.blocks[0]
cifar = data.load("cifar10", "test").subset(256)
images = (cifar.images.float() / 255 - torch.tensor(cifar.mean).view(1, 3, 1, 1)) \
    / torch.tensor(cifar.std).view(1, 3, 1, 1)
with torch.no_grad():
    X = net.embed(images)                               # 256 × 48
    x1 = X[0]                                           # one image: 48 numbers
    q, k, v = block.q(x1), block.k(x1), block.v(x1)     # 8 numbers each
    qt_k = q[:, None] @ k[None, :]                      # Qᵀ (8×1) · K (1×8) = 8×8
    am = torch.softmax(qt_k, dim=1) / math.sqrt(8)      # softmax along rows, then /√8
    z = v[None, :] @ am                                 # V (1×8) · AM (8×8) = 1×8
    by_hand = block.out(z[0])                           # 8 → 48
    assert torch.allclose(by_hand, block(X)[0], atol=1e-6)

    def batch_reading(X: torch.Tensor) -> torch.Tensor:
        """The other reading: Q, K, V as B × 8, so QᵀK sums over the batch."""
        Q, K, V = block.q(X), block.k(X), block.v(X)
        return block.out(V @ (torch.softmax(Q.T @ K, dim=1) / math.sqrt(8)))

    alone, in_batch = batch_reading(X[:1])[0], batch_reading(X)[0]
    ours_alone, ours_in_batch = block(X[:1])[0], block(X)[0]
print("per image (evakit.models.attention.Ultimus) = the spec by hand: True")
print(f"image 0 alone vs in a batch of 256 — per image: max difference "
      f"{(ours_alone - ours_in_batch).abs().max():.1e}; batch reading: "
      f"{(alone - in_batch).abs().max():.1e}")
assert torch.allclose(ours_alone, ours_in_batch, atol=1e-6)
assert not torch.allclose(alone, in_batch, atol=1e-3)

# %% [markdown]
# **Why each block gets a residual connection.** Stack the four blocks bare, as the
# diagram C → C → C → U → U → U → U → FC draws them, and measure how much the images'
# vectors still differ after each block (the spread across the 256 images, relative to
# before the first block), at initialisation — and how much gradient the loss of those 256
# images sends back to the first convolution:

# %%
def spread(residual: bool) -> tuple[list[float], float]:
    """A fresh network's spread across images after each block (relative to X's), and
    the gradient norm its loss sends back to the first convolution's weights."""
    torch.manual_seed(0)
    fresh = models.create("s09/ultimus", residual=residual)   # training mode, as in fit
    h = X0 = fresh.embed(images)
    values = []
    for b in fresh.blocks:
        h = h + b(h) if residual else b(h)
        values.append(float((h.std(0).mean() / X0.std(0).mean()).detach()))
    F.cross_entropy(fresh.fc(h), cifar.labels).backward()
    return values, float(fresh.convs[0][0].weight.grad.norm())


(bare, bare_grad), (residual, residual_grad) = spread(False), spread(True)
rows = [[f"after block {i + 1}", f"{b:.1e}", f"{r:.2f}"]
        for i, (b, r) in enumerate(zip(bare, residual, strict=True))]
rows.append(["gradient norm at the first conv", f"{bare_grad:.1e}",
             f"{residual_grad:.1e}"])
display(Table(["spread across images", "bare: U → U → U → U",
               "with residuals: h + U(h)"],
              rows, "s09/ultimus at initialisation, 256 CIFAR-10 test images"))

# %% tags=["remove-cell"]
assert bare[-1] < 1e-5 and all(r > 0.5 for r in residual)   # "a hundred-thousandth"
assert bare_grad < 1e-3 * residual_grad                      # "no gradient reaches"

# %% [markdown]
# At initialisation $q_i k_j$ is small, so every row of $AM$ is nearly uniform and
# $z_j \approx \frac{1}{8\sqrt8}\sum_i v_i$ for *every* $j$: one number per image gets
# through each block, and it is shrunk on the way. After four blocks the differences between
# images are less than a hundred-thousandth of what they were — far below the three
# significant digits of bfloat16, the precision of this course's CPU runs: every image
# produces practically the same logits, and almost no gradient reaches the convolutions
# (the last row). Training has nothing to follow. So `s09/ultimus` adds each block's
# output to its input, $h \leftarrow h + U(h)$, exactly as every transformer block does:
# every layer the assignment lists is there, in its order and with its shapes; the identity
# path is the one addition, and the `residual=False` argument builds the bare stack.
# `evakit check s09` grades the structure the assignment asks for:

# %%
recipe = recipes.get("s09/ultimus")
report = check.grade("s09", model=recipe.build_model())
display(report)
assert report.passed
print(recipe.summary)
peak = recipe.pct_start * recipe.epochs
print(f"Adam, one-cycle up to {recipe.lr} (peak at epoch {peak:.0f} of "
      f"{recipe.epochs}), batch {recipe.batch_size}, precision: the fastest here (bf16 "
      "on a CPU that has it)")

# %% [markdown]
# The maximum learning rate, 0.01, is a common one for Adam under one-cycle; `evakit
# lr-find s09/ultimus` runs session 7's range test on this network to check it. The cycle
# peaks at epoch 5, as in session 8. In full mode the next cell trains the recipe (24
# epochs); in FAST mode two epochs on 1,000 images show that the loop runs.

# %% tags=["remove-cell"]
_s08 = recipes.get("s08/custom-resnet")
assert recipe.lr == 0.01 and recipe.epochs == 24
assert round(recipe.pct_start * recipe.epochs) == 5
assert round(_s08.pct_start * _s08.epochs) == 5
assert (recipe.fast.epochs, recipe.fast.limit) == (2, 1000)

# %%
live = runner.run(recipe)
print(live.result_line())
fig = viz.curves({live.label: live.history})

# %% [markdown]
# **The recorded run.** The training log, the train/test loss chart and the grade of the
# record (its epochs, schedule and optimizer) come from `book/records/s09/ultimus.json`:

# %%
display(Markdown(records.results_or_missing("s09/ultimus")))
if records.path_for("s09/ultimus").is_file():
    ultimus_record = records.load("s09/ultimus")
    display(ultimus_record.epochs_table())
    viz.curves({"s09/ultimus (record)": ultimus_record.history}, metrics=("loss",))
    display(check.grade("s09", ultimus_record))

# %% [markdown]
# What to expect, and why: three 3×3 convolutions see 7×7 pixels each, and global average
# pooling keeps only *how much* of each of 48 local patterns the image holds, not where —
# colour and texture statistics. Four ULTIMUS blocks then work on one 48-d vector, one
# number per "token". This is a lesson in the mechanics of attention, not a strong CIFAR
# model — session 8's ResNet is built for 90 % and more; the point of section 1 is that
# attention needs many tokens — positions, patches — to choose among, which is where
# session 10 (ViT) takes it.
#
# Here is what the attention maps of one trained network look like for three test images
# (the recorded model when its weights exist, else the model trained above):

# %%
if records.weights_path("s09/ultimus").is_file():
    trained, trained_source = records.load_model("s09/ultimus"), "recorded s09/ultimus"
else:
    trained, trained_source = live.model.cpu().float().eval(), live.label
with torch.no_grad():
    maps = trained.blocks[0].attention_map(trained.embed(images[:3])) * math.sqrt(8)
fig, axes = plt.subplots(2, 3, figsize=(10, 6.6))
for i in range(3):
    axes[0, i].imshow(viz.to_hwc(cifar.images[i]))
    axes[0, i].set_title(cifar.classes[int(cifar.labels[i])])
    axes[0, i].axis("off")
    viz.matrix(maps[i], ax=axes[1, i], fmt="{:.2f}", vmin=0, vmax=1,
               title="block 1: √8 · AM")
fig.suptitle(trained_source, fontsize=9)
fig.tight_layout()

# %% [markdown]
# Each image gets its own 8×8 matrix (multiplied back by $\sqrt8$ so that rows sum to 1):
# that is the "selective" of section 1, at the smallest possible scale.
#
# ## Exercises
#
# 1. How many parameters does one ULTIMUS block have, and the whole network's four?
# 2. In ULTIMUS, what would change if $Z = AM \cdot V^\top$ (the usual side) instead of
#    $V \cdot AM$? And if the $/\sqrt8$ moved inside the softmax?
# 3. Write the 2 × 3 matrix θ whose `affine_grid` zooms *in* 2× on the centre of the image,
#    and the one that shifts the content a quarter of the width to the right.
# 4. In a sinusoidal code of width $d = 32$ (base 10 000), how many positions does the
#    slowest channel pair take to go once round the circle?
# 5. Why does t-SNE's picture not tell you that the 4s and the 9s are close, even when their
#    clusters touch? What would?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
one_block = models.count_parameters(net.blocks[0])
zoom_in = rotation(torch.zeros(1), zoom=2.0)[0]
shift_right = torch.tensor([[1.0, 0, -0.5], [0, 1, 0]])
probe = torch.zeros(1, 1, 8, 8)
probe[0, 0, 3, 3] = 1.0
moved = warp(probe, shift_right[None])        # a quarter of 8 pixels: 2 to the right
wavelength = 2 * math.pi * 10_000 ** (30 / 32)
assert moved[0, 0, 3, 5] == 1.0
assert torch.allclose(zoom_in, torch.tensor([[0.5, 0, 0], [0, 0.5, 0]]))
display(Markdown(f"""```{{admonition}} Answers
:class: dropdown
1. $3 \\cdot (48 \\cdot 8 + 8) + (8 \\cdot 48 + 48) = {one_block:,}$ per block,
   {4 * one_block:,} for four (of {models.count_parameters(net):,} in the network).
2. $AM \\cdot V^\\top$ makes output $i$ a weighted *average* of the values
   ($\\sum_j AM_{{ij}} v_j$, weights summing to $1/\\sqrt8$): the usual attention,
   where each output gathers. $V \\cdot AM$ sums down the columns instead: each value
   is spread over the outputs, and an output's weights need not sum to anything. Moving
   $/\\sqrt8$ inside makes the softmax flatter (it divides every score); outside, it is
   a constant factor that the next FC layer can undo.
3. Zoom in 2×: $\\theta = [[0.5, 0, 0], [0, 0.5, 0]]$ — the output reads only the
   central half of the input. Shift right by a quarter of the width:
   $\\theta = [[1, 0, -0.5], [0, 1, 0]]$ — coordinates run from −1 to 1 (a width of
   2), and θ says where to *read*, so the content moves right when the grid reads to the
   left.
4. $2\\pi \\cdot 10000^{{30/32}} \\approx {wavelength:,.0f}$ positions: the slowest pair
   (i = 30) turns by $10000^{{-30/32}}$ radians per position.
5. t-SNE keeps each point's nearest neighbours, not the distances between clusters; the
   gaps and the clusters' sizes are artefacts of its optimisation. Distances measured in
   the embedding itself (or a PCA view, which is linear) would.
```"""))

# %% [markdown]
# ## Summary
#
# - FC layers and pooling aggregate with fixed weights; attention computes its weights from
#   the input. Both are blind to position unless a position encoding is added.
# - Sinusoidal codes give each position a distinct, smoothly varying code whose dot products
#   fall with distance; a 2-D code splits the channels between row and column.
# - A trained network's last features are an embedding: classes cluster in it (k-means finds
#   them without labels), and traits no label names — slant — are kept too.
# - Self-attention: $\text{softmax}(QK^\top/\sqrt d)\,V$; multi-head runs several in
#   parallel on slices of the channels; cross-attention takes its queries from another
#   sequence.
# - A spatial transformer predicts θ, builds a grid with `affine_grid` and reads it with
#   `grid_sample`, learning from the task's loss alone which warp helps.
# - ULTIMUS: per-image attention over eight one-number tokens, with the scale outside the
#   softmax as the assignment writes it; stacked bare it washes out the differences between
#   images, so each block sits on a residual connection.
#
# ## References
#
# - Vaswani et al., *Attention Is All You Need*, NeurIPS 2017.
# - Bahdanau, Cho & Bengio, *Neural Machine Translation by Jointly Learning to Align and
#   Translate*, ICLR 2015.
# - Jaderberg, Simonyan, Zisserman & Kavukcuoglu, *Spatial Transformer Networks*,
#   NeurIPS 2015.
# - van der Maaten & Hinton, *Visualizing Data using t-SNE*, JMLR 2008.
# - He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016 (the residual
#   connection).
# - Dosovitskiy et al., *An Image is Worth 16x16 Words* (ViT), ICLR 2021 — session 10.
