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
# # Session 1 — Neural architecture
#
# Session 0 ended on a cliffhanger: a stack of 3 × 3 convolutions widens what one output
# pixel sees by only 2 pixels per layer. This session resolves it. We do the arithmetic of
# a convolution on numbers you can check by hand, define the **receptive field** precisely
# and compute it for any network, meet **max pooling** (what it buys and what it is
# invariant to), count how many layers a 400 × 400 image needs with and without it, and
# see how kernels span channels and how 1 × 1 convolutions mix them. The assignment: an
# MNIST network whose every layer is annotated with its shape and receptive field,
# trained.
#
# **Objectives.** After this session you can
# - compute a convolution's output on paper and check it in PyTorch;
# - compute the receptive field of every layer of a network, by the recurrence and with
#   `evakit.rf`;
# - say what max pooling does to size, receptive field and small shifts;
# - explain why a network needs ~27 layers rather than 200 to see a 400 × 400 image;
# - give the weight shape and parameter count of any convolution, including 1 × 1.
#
# ```{note}
# **FAST mode.** When `EVAKIT_FAST=1` is set (the book's build and the tests set it),
# MNIST is cut to its first 2,000 training and 1,000 test images, and the assignment's
# network trains on those 2,000 for 10 epochs: enough to draw its feature maps, not a
# result. The accuracy this page discusses is the recorded full run's (all 60,000
# training images), shown with its provenance. Everything else is the same in both modes.
# ```

# %%
import evakit

S = evakit.setup(seed=1)

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from evakit import data, models, recipes, records, rf, runner, viz
from evakit.table import Table


def layers_of(table: Table) -> list[dict]:
    """The rows of a layer table that are layers (not the input and total rows)."""
    return [row for row in table if row["layer"] not in ("input", "total")]


COLUMNS = ("layer", "type", "kernel", "stride", "output", "jump", "RF", "params")


def compact(table: Table, columns=COLUMNS) -> Table:
    """A layer table without its activation rows, in the columns this page discusses."""
    kept = [row for row in table if row["type"] not in ("ReLU", "BatchNorm2d")]
    return Table(list(columns), [[row[c] for c in columns] for row in kept],
                 table.caption)


# %% tags=["remove-cell"]
assert data.FAST_SIZES == {"train": 2000, "test": 1000}          # the note above
assert recipes.get("s01/rf-net").fast.epochs == 10

# %% [markdown]
# ## 1. Why layers?
#
# Images are built from parts: edges and gradients combine into textures, textures into
# patterns, patterns into parts of objects, parts into objects. A network mirrors this:
# its first layers can only see a few pixels, so they detect edges; each later layer
# combines the previous layer's detections over a larger area. The *number* of layers is
# set by how large an area the last layer must see — the receptive field, made precise
# below.
#
# ## 2. A convolution on paper
#
# The 5 × 5 input and the 3 × 3 kernel below are the classic example of Dumoulin &
# Visin's guide to convolution arithmetic. Each output is the sum of the nine products of
# the kernel with the patch under it; try the top-left one by hand before reading the
# answer.

# %%
image = torch.tensor([[3, 3, 2, 1, 0],
                      [0, 0, 1, 3, 1],
                      [3, 1, 2, 2, 3],
                      [2, 0, 0, 2, 2],
                      [2, 0, 0, 0, 1]], dtype=torch.float32)
kernel = torch.tensor([[0, 1, 2],
                       [2, 2, 0],
                       [0, 1, 2]], dtype=torch.float32)

out = torch.zeros(3, 3)
for i in range(3):
    for j in range(3):
        out[i, j] = (image[i:i + 3, j:j + 3] * kernel).sum()
torch.testing.assert_close(out, F.conv2d(image[None, None], kernel[None, None])[0, 0])

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
viz.matrix(image, ax=axes[0], fmt="{:.0f}", cmap="Blues", title="input 5×5")
viz.matrix(kernel, ax=axes[1], fmt="{:.0f}", cmap="Oranges", title="kernel 3×3")
viz.matrix(out, ax=axes[2], fmt="{:.0f}", cmap="Greens", title="output 3×3")
top_left = " + ".join(f"{a:.0f}·{b:.0f}"
                      for a, b in zip(image[:3, :3].flatten(), kernel.flatten()))
print(f"top-left: {top_left} = {out[0, 0]:.0f}")

# %% [markdown]
# ### The vertical-edge kernel on numbers
#
# A 6 × 6 image, bright (10) on the left half and dark (0) on the right, and a
# vertical-edge kernel with +1 in its left column and −1 in its right. Where the kernel
# sits on a flat region the two columns cancel; where it straddles the boundary the output
# is large.

# %%
step = torch.zeros(6, 6)
step[:, :3] = 10
vertical = torch.tensor([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]])
edge = F.conv2d(step[None, None], vertical[None, None])[0, 0]
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
viz.matrix(step, ax=axes[0], fmt="{:.0f}", title="image")
viz.matrix(vertical, ax=axes[1], fmt="{:.0f}", cmap="bwr", title="vertical edge")
viz.matrix(edge, ax=axes[2], fmt="{:.0f}", cmap="Greens", title="output")
print("output columns:", edge[0].tolist())

# %% tags=["remove-cell"]
assert edge[0].tolist() == [0, 30, 30, 0]                        # the prose below
flipped = F.conv2d(step.flip(1)[None, None], -vertical[None, None])[0, 0]
assert flipped[0].tolist() == [0, 30, 30, 0]

# %% [markdown]
# The two middle columns of the output are 30: the boundary has been found, and its
# position in the output tells where it was. Flip the kernel's sign and a dark-to-bright
# edge gives +30 instead. A trained network learns such kernels by itself.
#
# ## 3. The receptive field, precisely
#
# The **receptive field** (RF) of a layer is the size of the input region one of its
# output pixels depends on. Two more quantities make it computable for any layer: the
# **jump** $j$, the distance in input pixels between two neighbouring output pixels (it
# grows with each stride), and the kernel size $k$ (dilation $d$ spreads it). For every
# layer:
#
# $$ r_\text{out} = r_\text{in} + (k - 1)\, d\, j_\text{in}, \qquad
#    j_\text{out} = j_\text{in}\, s $$
#
# starting from the image: $r = 1$, $j = 1$. Written as teaching code, then compared with
# `evakit.rf`, which applies the same recurrence to any `nn.Module` by following the
# tensors through a forward pass:

# %%
def receptive_fields(layers: list[tuple[int, int]]) -> list[int]:
    """RF after each (kernel, stride) layer of a plain stack."""
    r, j, out = 1, 1, []
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
        out.append(r)
    return out


stack = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)]
net = nn.Sequential(*[nn.Conv2d(1, 1, k) if s == 1 else nn.MaxPool2d(k)
                      for k, s in stack])
table = rf.summary(net, (1, 28, 28))
assert receptive_fields(stack) == [row["RF"] for row in layers_of(table)]
compact(table, ("layer", "type", "kernel", "stride", "output", "jump", "RF"))

# %% [markdown]
# Each 3 × 3 convolution adds $2j$: 2 pixels while the jump is 1, 4 after one pooling, 8
# after two. **Pooling does not add much RF itself; it doubles the jump, so that every
# later layer adds twice as much.** That is how networks reach a large RF in few layers.
#
# ## 4. Max pooling
#
# A 2 × 2 max pool with stride 2 keeps the largest value of each 2 × 2 block: the map
# halves in each direction (a quarter of the computation for the next layer), the
# strongest detection of each block survives, and its exact position within the block is
# forgotten. That last part is a small **invariance to shifts**. Below, a digit and the
# same digit shifted one pixel right go through a vertical-edge kernel; we compare their
# maps before and after pooling.

# %%
test_set = data.load("mnist", "test")
digit = test_set.images[:1].float() / 255
moved = torch.roll(digit, shifts=1, dims=3)
kernel_v = torch.tensor([[[[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]]])


def edges_and_pooled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    fmap = F.relu(F.conv2d(x, kernel_v, padding=1))
    return fmap, F.max_pool2d(fmap, 2)


def overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two maps: 1 means identical up to scale."""
    return F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


(f0, p0), (f1, p1) = edges_and_pooled(digit), edges_and_pooled(moved)
before, after = overlap(f0, f1), overlap(p0, p1)
viz.image_grid([f0[0, 0], f1[0, 0], p0[0, 0], p1[0, 0]],
               ["edges", "edges, shifted 1px", "pooled", "pooled, shifted 1px"],
               cols=4, size=2.2,
               suptitle=f"similarity of the two maps: {before:.2f} before pooling, "
                        f"{after:.2f} after");

# %% [markdown]
# After pooling the two maps are more alike than before: many 1-pixel moves stay inside
# the same 2 × 2 block. Max pooling is *not* invariant to large shifts, rotation or scale
# — those a network must learn from data (augmentation, session 6). How much it helps,
# measured on many digits and shift sizes:

# %%
digits = test_set.images[:200].float() / 255
rows = []
for shift in (1, 2, 4):
    shifted = torch.roll(digits, shifts=shift, dims=3)
    (fa, pa), (fb, pb) = edges_and_pooled(digits), edges_and_pooled(shifted)
    sim = [F.cosine_similarity(a.flatten(1), b.flatten(1)).mean().item()
           for a, b in ((fa, fb), (pa, pb), (F.max_pool2d(pa, 2), F.max_pool2d(pb, 2)))]
    rows.append([shift] + [round(s, 3) for s in sim])
similarity = Table(["shift (px)", "no pooling", "after 1 max pool",
                    "after 2 max pools"], rows,
                   "Mean similarity of edge maps of 200 digits and shifted copies")
similarity

# %% [markdown]
# Every max pool raises the similarity, most for the smallest shift; a 4-pixel shift
# still leaves the maps far from identical after two pools.

# %% tags=["remove-cell"]
assert before < after                                            # the prose above
for row in similarity.rows:
    assert row[1] < row[2] < row[3]
assert similarity[-1]["after 2 max pools"] < 0.6

# %% [markdown]
# ## 5. How many layers does a 400 × 400 image need?
#
# To classify an object filling a 400 × 400 image the last layer must see all of it:
# RF ≥ 400. With 3 × 3 convolutions only, every layer adds 2 to the RF. With **four 3 × 3
# convolutions followed by a 2 × 2 max pool**, repeated, the jump doubles after each
# block, so each block's convolutions add twice as much as the previous block's. Counting
# layers with the recurrence:

# %%
def layers_until_rf(target: int, convs_per_block: int | None = None) -> int:
    """Layers of 3×3 convs (and a 2×2 max pool after every `convs_per_block` of them)
    until the receptive field reaches `target`."""
    r, j, layers, convs = 1, 1, 0, 0
    while r < target:
        if convs_per_block and convs == convs_per_block:
            r, j, convs = r + j, 2 * j, 0           # max pool 2×2, stride 2
        else:
            r, convs = r + 2 * j, convs + 1         # conv 3×3, stride 1
        layers += 1
    return layers


without_pool = layers_until_rf(400)
with_pool = layers_until_rf(400, convs_per_block=4)
Table(["architecture", "layers until RF ≥ 400"],
      [["3×3 convolutions only", without_pool],
       ["(4 × conv 3×3 → max pool 2×2) repeated", with_pool]],
      "A 400×400 input")

# %% tags=["remove-cell"]
assert (without_pool, with_pool) == (200, 27)   # objectives, summary: 200 and ~27

# %% [markdown]
# Now the pooled network built for real — 3 × 3 convolutions without padding, a max pool
# after every four, until the map is 1 × 1 — and measured with `evakit.rf`:

# %%
def pooled_network(size: int = 400, convs_per_block: int = 4) -> nn.Sequential:
    layers: list[nn.Module] = []
    while size > 1:
        for _ in range(convs_per_block):
            if size < 3:
                break
            layers.append(nn.Conv2d(1, 1, 3))
            size -= 2
        if size > 1:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    return nn.Sequential(*layers)


built = layers_of(rf.summary(pooled_network(), (1, 400, 400)))
last = built[-1]
print(f"{len(built)} layers, final output {'×'.join(map(str, last['output']))}, "
      f"receptive field {last['RF']}")
sizes = [row["output"][-1] for row in built]
print("map sizes:", " → ".join(str(v) for v in [400] + sizes))

# %% tags=["remove-cell"]
assert len(built) == with_pool and last["output"][-1] == 1 and last["RF"] < 400
pairs = list(zip([400] + sizes, sizes))
assert (35, 17) in pairs and (9, 4) in pairs and sizes[-3:] == [4, 2, 1]

# %% [markdown]
# It reaches 1 × 1 in the same number of layers, yet its receptive field falls short of
# 400. Follow the map sizes: when max pooling meets an odd size (35 → 17, 9 → 4) it drops
# the last row and column, and near the end a 4 × 4 map only fits one more 3 × 3
# convolution before the final pool, so the last block adds less RF than the recurrence
# assumed. Some border pixels of the image never reach the output. Padding (keeping sizes
# even) or `ceil_mode=True` pooling fix it — and the lesson is to measure the receptive
# field of the network you actually built, which is what `evakit.rf` is for.

# %% [markdown]
# ## 6. Kernels span channels; 1 × 1 convolutions mix them
#
# A convolution from $C_\text{in}$ to $C_\text{out}$ channels has $C_\text{out}$ kernels,
# each of size $k \times k \times C_\text{in}$: a kernel always spans *every* input
# channel and produces one output channel. Weights: $C_\text{out} \cdot C_\text{in} \cdot
# k^2$, plus $C_\text{out}$ biases.

# %%
shapes = []
for c_in, c_out, k in [(1, 32, 3), (3, 32, 3), (32, 64, 3), (64, 128, 3), (128, 32, 1),
                       (512, 10, 1)]:
    conv = nn.Conv2d(c_in, c_out, k)
    shapes.append([f"{c_in}→{c_out}", f"{k}×{k}", tuple(conv.weight.shape),
                   models.count_parameters(conv), c_out * c_in * k * k + c_out])
Table(["channels", "kernel", "weight shape", "parameters", "C_out·C_in·k²+C_out"],
      shapes)

# %% [markdown]
# A **1 × 1 convolution** sees one pixel, but all its channels: at every position it
# computes a weighted sum of the input channels — a fully connected layer applied to each
# pixel's channel vector. It changes the number of channels cheaply (512 → 32 costs 16 k
# weights instead of 147 k for a 3 × 3) and combines features that occur at the same
# place. Checked against an explicit sum over channels:

# %% tags=["remove-cell"]
assert round(512 * 32 / 1000) == 16 and round(512 * 32 * 9 / 1000) == 147  # prose

# %%
x = torch.randn(1, 64, 8, 8, generator=torch.Generator().manual_seed(0))
mix = nn.Conv2d(64, 16, 1, bias=False)
by_hand = torch.einsum("oc,nchw->nohw", mix.weight[:, :, 0, 0], x)
torch.testing.assert_close(mix(x), by_hand)
print("1×1 conv == per-pixel linear map over channels:",
      tuple(x.shape), "→", tuple(mix(x).shape))

# %% [markdown]
# ## Assignment: an MNIST network, annotated and trained
#
# Build a network for MNIST from 3 × 3 convolutions and max pooling whose receptive field
# reaches the whole digit, annotate every layer with its output shape and RF, and train
# it.
#
# **Solution.** `s01/rf-net` (in `evakit.models`): two blocks of two 3 × 3 convolutions
# closed by max pooling, a 1 × 1 convolution mixing 32 channels down to 10, and a 4 × 4
# convolution that turns the last 4 × 4 map into 10 logits. No padding anywhere, so every
# number in the table can be checked with the formulas above (the ReLU rows, which change
# nothing here, are left out).

# %%
recipe = recipes.get("s01/rf-net")
model = recipe.build_model()
table = rf.summary(model, (1, 28, 28))
assert layers_of(table)[-1]["RF"] >= 28, "the last layer must see the whole digit"
compact(table)

# %% tags=["remove-cell"]
convs = [row for row in layers_of(table) if row["type"] == "Conv2d"]
rfs = [row["RF"] for row in layers_of(table)]
assert rfs[-1] >= 28 > max(rfs[:-1])          # "reached only by the final layer"
middle = [row["params"] for row in convs
          if row["layer"] in ("features.3.0", "features.4.0")]      # the 32 → 32 convs
assert sum(middle) > 0.5 * table[-1]["params"]       # "most of the parameters"

# %% [markdown]
# Training it on this page (on the FAST slice when `EVAKIT_FAST` is set; the full run is
# the recorded one below):

# %%
run = runner.run(recipe, verbose=False)
print(run.result_line())

# %% [markdown]
# What the network just trained computes for one test digit. The first convolution's 16
# maps (26 × 26) follow the strokes, many of them along one side only: edge detectors.
# The fourth convolution's maps (8 × 8, after one max pool) each light up on a larger
# piece of the digit — a bar, a corner, the end of a stroke.

# %%
one_digit = (test_set.images[:1].float() / 255 - 0.1307) / 0.3081
viz.feature_maps(run.model, run.model.features[0][1], one_digit, cols=8, limit=16);
viz.feature_maps(run.model, run.model.features[4][1], one_digit, cols=8, limit=16);

# %% tags=["remove-cell"]
# the prose above: layer features.4 is the fourth convolution, 8×8, after one pool
names = [row["layer"] for row in layers_of(table)]
assert [row["layer"] for row in convs][3] == "features.4.0"
assert convs[3]["output"][1:] == (8, 8)
assert sum(t == "MaxPool2d" for t in [row["type"] for row in layers_of(table)]
           [:names.index("features.4.0")]) == 1

# %% [markdown]
# The recorded full run (`evakit train s01/rf-net --record`, real MNIST, all 60,000
# training images):

# %%
record = records.load("s01/rf-net")
display(Markdown(record.results_markdown()))
viz.curves({"s01/rf-net": record.history});

# %% [markdown]
# The receptive field of 28 is reached only by the final layer; with 1 × 1 mixing and a
# single 4 × 4 convolution at the end, most of the parameters sit in the two middle 3 × 3
# convolutions (32 → 32 channels). Sessions 3 and 4 make this network far smaller and
# more accurate with batch normalization, global average pooling and a careful budget.
#
# ## Exercises
#
# 1. What is the receptive field after conv 3×3 → conv 3×3 → max pool 2×2 → conv 3×3?
# 2. A 5 × 5 convolution has the same RF as two 3 × 3. Compare their parameter counts for
#    64 → 64 channels (no bias).
# 3. How many layers would the pooled scheme (four 3 × 3 convolutions, then a max pool)
#    need for a 224 × 224 image?
# 4. What is the weight shape of `nn.Conv2d(16, 8, 1)`, and how many parameters does it
#    have?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
rf_steps = receptive_fields([(3, 1), (3, 1), (2, 2), (3, 1)])
one_by_one = nn.Conv2d(16, 8, 1)
display(Markdown(f"""```{{admonition}} Answers
:class: dropdown
1. {rf_steps[-1]}: the receptive field grows {" → ".join(map(str, [1] + rf_steps))};
   the last 3 × 3 convolution comes after the pool, where the jump is 2, so it adds
   2 · 2 = 4.
2. 5 · 5 · 64 · 64 = {5 * 5 * 64 * 64:,} against 2 · 3 · 3 · 64 · 64 =
   {2 * 3 * 3 * 64 * 64:,}: the stack is cheaper *and* has an extra non-linearity.
3. {layers_until_rf(224, 4)} layers, by the recurrence (`layers_until_rf(224, 4)`).
4. {tuple(one_by_one.weight.shape)}: {one_by_one.weight.numel()} weights +
   {one_by_one.bias.numel()} biases = {models.count_parameters(one_by_one)} parameters.
```"""))

# %% [markdown]
# ## Summary
#
# - A convolution output is a sum of kernel × patch products; check by hand, then in
#   PyTorch.
# - $r_\text{out} = r_\text{in} + (k-1)\,d\,j_\text{in}$ and $j_\text{out} =
#   j_\text{in}\,s$: `evakit.rf.summary` applies them to any network.
# - Max pooling halves the map, doubles the jump (so later layers grow the RF faster) and
#   forgives small shifts.
# - 400 × 400 needs 200 layers of plain 3 × 3 convolutions, 27 with a max pool after
#   every four.
# - A kernel spans all input channels; a 1 × 1 convolution is a per-pixel linear map over
#   channels.
#
# ## References
#
# - V. Dumoulin, F. Visin, *A guide to convolution arithmetic for deep learning*,
#   arXiv:1603.07285.
# - A. Araujo, W. Norris, J. Sim, *Computing receptive fields of convolutional neural
#   networks*, Distill (2019).
# - W. Luo, Y. Li, R. Urtasun, R. Zemel, *Understanding the effective receptive field in
#   deep convolutional neural networks*, NeurIPS (2016).
# - M. Lin, Q. Chen, S. Yan, *Network in network*, ICLR (2014) — 1 × 1 convolutions.
# - K. Simonyan, A. Zisserman, *Very deep convolutional networks for large-scale image
#   recognition*, ICLR (2015) — stacks of 3 × 3 convolutions.
