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
# # Session 0 — Channels, kernels and convolutions
#
# A convolutional network sees an image as a stack of numbers and learns small filters
# that slide over it. Before we train anything, this session takes that sentence apart:
# what a *channel* is, what a *kernel* does to an image, how a convolution is computed (by
# hand, twice), how big its output is, and why one layer of 3×3 kernels cannot see a
# whole digit.
#
# **Objectives.** After this session you can
# - split an image into channels and say what a channel holds;
# - apply a 3×3 kernel to a real image and predict what it will highlight;
# - write a 2-D convolution with loops and with `unfold` + matrix multiply, and check both
#   against `torch.nn.functional.conv2d`;
# - compute the output size of a convolution for any size, kernel, padding and stride;
# - explain what a fully connected layer does with a flattened image, and what it loses;
# - state what a receptive field is and why it grows with depth.
#
# ```{note}
# **FAST mode.** When `EVAKIT_FAST=1` is set (the book's build and the tests set it),
# MNIST is cut to its first 2,000 training and 1,000 test images, so the linear
# classifier of section 5 learns from 2,000 digits; its printed accuracy says which.
# Everything else on this page (the photo, the kernels, the convolutions and their
# checks) is the same in both modes. Without `EVAKIT_FAST` (in Colab, say) it trains on
# all 60,000.
# ```

# %%
import evakit

S = evakit.setup(seed=1)

# %%
import matplotlib.pyplot as plt
import skimage.data
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from evakit import data, rf, viz
from evakit.table import Table

# %% tags=["remove-cell"]
assert data.FAST_SIZES == {"train": 2000, "test": 1000}  # the note above

# %% [markdown]
# ## 1. An image is a stack of channels
#
# A colour photograph is three grids of numbers of the same size: how much red, green and
# blue light each pixel holds. Each grid is a **channel**. A network never sees "a photo";
# it sees a tensor of shape channels × height × width, and every later layer produces
# *more* channels, each one a map of where some feature occurs. Think of the three input
# channels as the first three features: "redness", "greenness", "blueness".
#
# The photo below is the astronaut Eileen Collins (NASA, public domain), shipped with
# scikit-image. In each channel's panel a deeper colour means a larger value; white is 0.

# %%
photo = skimage.data.astronaut()  # H×W×3, uint8
print("shape", photo.shape, "dtype", photo.dtype,
      "range", photo.min(), "to", photo.max())
viz.channels(photo);

# %% [markdown]
# The orange suit is deep in the red channel and pale in the blue one; the light-grey
# background is strong in all three, and the black of the helmet is white (zero) in
# all three. Each channel is a *feature map*: large where its feature is present. A hidden
# layer with 64 output channels is 64 such maps, for 64 features the network learned.
#
# The MNIST digits used through this course have a single channel: 28 × 28 grey levels.

# %% tags=["remove-cell"]
# the prose: suit (left arm) red ≫ blue; background bright in all three; helmet black
suit, wall = photo[345:355, 55:65], photo[15:25, 255:265]
visor = photo[445:455, 395:405]
assert suit[..., 0].mean() > 200 and suit[..., 2].mean() < 100
assert wall.mean(axis=(0, 1)).min() > 150 and visor.max() == 0

# %%
mnist = data.load("mnist", "train")
print(mnist.source)
print("images", tuple(mnist.images.shape), mnist.images.dtype,
      "labels", tuple(mnist.labels.shape))
viz.image_grid(mnist.images[:16], [f"label {int(y)}" for y in mnist.labels[:16]],
               cols=8);

# %% [markdown]
# To a network, the first digit is nothing but this grid of numbers (shown here every
# other pixel so the numbers stay readable):

# %%
digit = mnist.images[0, 0]
viz.matrix(digit[::2, ::2], fmt="{:d}",
           title=f"label {int(mnist.labels[0])}, pixels 0–255");

# %% [markdown]
# ## 2. Kernels: small filters that find features
#
# A **kernel** (or filter) is a small grid of weights, here 3 × 3. Place it on the image,
# multiply each weight by the pixel under it, add the nine products: that sum is one
# output pixel. Slide the kernel one pixel and repeat. Where the image looks like the
# kernel, the sum is large.
#
# A vertical-edge kernel has negative weights on the left and positive on the right: on a
# flat region they cancel to zero; where the image gets brighter from left to right, the
# sum is large and positive (and large and negative where it gets darker).

# %%
vertical = torch.tensor([[-1.0, 0.0, 1.0],
                         [-2.0, 0.0, 2.0],
                         [-1.0, 0.0, 1.0]])
kernels = {
    "vertical edges": vertical,
    "horizontal edges": vertical.T,
    "blur (box)": torch.full((3, 3), 1 / 9),
    "sharpen": torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
}
fig, axes = plt.subplots(1, len(kernels), figsize=(10, 2.6))
for ax, (name, k) in zip(axes, kernels.items()):
    viz.matrix(k, ax=ax, fmt="{:.2g}", cmap="bwr", vmin=-2, vmax=2, title=name)

# %%
grey = torch.from_numpy(skimage.color.rgb2gray(photo)).float()[None, None]  # 1×1×H×W
fig, axes = plt.subplots(2, 3, figsize=(10, 7))
axes[0, 0].imshow(grey[0, 0].numpy(), cmap="gray")
axes[0, 0].set_title("input (grey)")
for ax, (name, k) in zip(axes.flat[1:], kernels.items()):
    out = F.conv2d(grey, k[None, None], padding=1)[0, 0]
    limits = {} if "edges" in name else {"vmin": 0, "vmax": 1}  # grey levels stay 0–1
    ax.imshow(out.numpy(), cmap="gray", **limits)
    ax.set_title(name)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# In the two edge maps mid-grey is zero, light is positive and dark negative. The
# vertical-edge map responds along vertical borders: the sides of the rocket, of the neck
# and of the suit's zipper. The horizontal one responds along horizontal borders: the
# eyes and mouth, the top of the helmet, the rocket's fins. The flag's stripes run
# diagonally, so they show in both. No one told the kernel what a rocket is: it responds
# to a local pattern of brightness wherever that pattern occurs. A convolutional network
# *learns* its kernels, and on natural photos its first layer typically ends up with edge
# and colour detectors much like these (Zeiler & Fergus, 2014).
#
# The same kernels on a digit show the strokes' left/right and top/bottom borders (red
# where the output is positive, blue where negative):

# %%
x = mnist.images[:1].float() / 255  # 1×1×28×28
maps = [F.conv2d(x, k[None, None], padding=1)[0, 0] for k in kernels.values()]
viz.image_grid([x[0, 0]] + maps, ["digit"] + list(kernels), cols=5, size=2.0,
               cmap="RdBu_r");

# %% [markdown]
# ## 3. A convolution by hand
#
# The definition, for one input channel and one kernel $K$ of size $k \times k$:
#
# $$ \text{out}[i, j] = \sum_{u=0}^{k-1} \sum_{v=0}^{k-1} \text{in}[i + u, j + v] \;
#    K[u, v] $$
#
# (strictly this is *cross-correlation*; deep-learning libraries call it convolution and
# do not flip the kernel). With several input channels the kernel has a slice per channel
# and the sums run over channels too. Here it is, written with loops, straight from the
# formula:

# %%
def conv2d_loops(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid convolution (no padding, stride 1) of a C×H×W image, C×k×k kernel."""
    _, h, w = image.shape
    k = kernel.shape[-1]
    out = torch.zeros(h - k + 1, w - k + 1)
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            out[i, j] = (image[:, i:i + k, j:j + k] * kernel).sum()
    return out


ours = conv2d_loops(x[0], vertical[None])
reference = F.conv2d(x, vertical[None, None])[0, 0]
torch.testing.assert_close(ours, reference)
print("loops == F.conv2d:", tuple(ours.shape))

# %% [markdown]
# Loops are clear and slow: 26 × 26 = 676 Python iterations for one small digit.
# Libraries instead **unroll** the image: every 3 × 3 patch becomes a column of 9 numbers
# (`unfold`, also called *im2col*), and the whole convolution becomes one matrix
# multiplication of the flattened kernels (out_channels × 9) with the patch matrix (9 ×
# number of positions). Matrix multiplication is what GPUs are built for.

# %%
def conv2d_unfold(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Valid convolution of N×C×H×W images with O×C×k×k kernels as one matmul."""
    n, _, h, w = images.shape
    o, _, k, _ = kernels.shape
    patches = F.unfold(images, kernel_size=k)      # N × (C·k·k) × positions
    out = kernels.reshape(o, -1) @ patches         # N × O × positions
    return out.reshape(n, o, h - k + 1, w - k + 1)


bank = torch.stack(list(kernels.values()))[:, None]  # 4 kernels, 1 input channel
batch = mnist.images[:8].float() / 255
torch.testing.assert_close(conv2d_unfold(batch, bank), F.conv2d(batch, bank))
patches = F.unfold(x, kernel_size=3)
print(f"patch matrix of one digit: {tuple(patches.shape[1:])} "
      f"({patches.shape[1]} numbers × {patches.shape[2]} positions)")
print("unfold + matmul == F.conv2d for", len(batch), "digits and", len(bank), "kernels")

# %% [markdown]
# The same check on the colour photo, with a kernel bank of 3 input channels, makes the
# point that a kernel always spans *all* input channels:

# %%
rgb = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
colour_bank = torch.randn(5, 3, 3, 3, generator=torch.Generator().manual_seed(0))
torch.testing.assert_close(conv2d_unfold(rgb, colour_bank), F.conv2d(rgb, colour_bank),
                           rtol=1e-4, atol=1e-4)
print("kernel bank", tuple(colour_bank.shape),
      "→ output", tuple(F.conv2d(rgb, colour_bank).shape))

# %% [markdown]
# ## 4. How big is the output?
#
# A $k \times k$ kernel fits in $n - k + 1$ positions along an axis of length $n$: a 5 × 5
# image and a 3 × 3 kernel give 3 × 3. **Padding** $p$ adds $p$ rows/columns of zeros on
# each side, **stride** $s$ moves the kernel $s$ pixels at a time, and **dilation** $d$
# spreads its taps $d$ pixels apart, so it spans $d(k-1)+1$ pixels:
#
# $$ n_\text{out} = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1 $$
#
# As teaching code, then checked against the library version and against what PyTorch
# produces:

# %%
def output_size(n: int, k: int, p: int = 0, s: int = 1, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


cases = [(5, 3, 0, 1), (5, 3, 1, 1), (7, 3, 0, 2), (7, 3, 1, 2), (28, 3, 0, 1),
         (28, 5, 2, 1), (32, 3, 1, 2), (400, 3, 0, 1), (224, 7, 3, 2), (224, 11, 2, 4)]
rows = []
for n, k, p, s in cases:
    actual = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k),
                      padding=p, stride=s).shape[-1]
    assert output_size(n, k, p, s) == rf.conv_output_size(n, k, s, p) == actual
    rows.append([f"{n}×{n}", f"{k}×{k}", p, s, f"{actual}×{actual}"])
Table(["input", "kernel", "padding", "stride", "output"], rows,
      "Output sizes, checked against F.conv2d")

# %% [markdown]
# Without padding each 3 × 3 layer eats one pixel from every border: 400 → 398 → 396 …
# With padding 1 ("same" padding) the size is kept, and stride 2 halves it (rounding up:
# 7 → 4). The last two rows are the first layers of ResNet (7 × 7, stride 2) and of
# torchvision's AlexNet (11 × 11, stride 4).

# %% [markdown]
# ## 5. The fully connected reading of an image
#
# The oldest way to feed an image to a network is to **flatten** it: the 28 × 28 digit
# becomes a vector of 784 numbers and a fully connected (linear) layer gives every output
# a weight for every pixel. A single linear layer with 10 outputs is a digit classifier;
# its weights, reshaped to 28 × 28, are ten *templates*, one per digit, that it matches
# against the whole image.

# %%
test = data.load("mnist", "test")
train_x = (mnist.images.float() / 255).flatten(1)
test_x = (test.images.float() / 255).flatten(1)
linear = torch.nn.Linear(784, 10)
optimizer = torch.optim.SGD(linear.parameters(), lr=0.5)
for _ in range(3):
    for idx in torch.randperm(len(train_x)).split(100):
        loss = F.cross_entropy(linear(train_x[idx]), mnist.labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
with torch.no_grad():
    accuracy = (linear(test_x).argmax(1) == test.labels).float().mean().item() * 100
print(f"linear classifier trained on {len(train_x):,} images for 3 epochs "
      f"({'FAST slice' if S.fast else 'full MNIST'}): test accuracy {accuracy:.1f}% "
      f"on {len(test_x):,} test images")

templates = linear.weight.detach().reshape(10, 28, 28)
limit = templates.abs().max()
coloured = plt.cm.bwr((templates / limit / 2 + 0.5).numpy())[..., :3]  # 0 → white
viz.image_grid(list(coloured), [f"template {d}" for d in range(10)], cols=5, size=1.8,
               suptitle="weights of each output (red > 0, blue < 0, one scale)");

# %% [markdown]
# Each template is a blurry digit: positive (red) where that digit usually has ink, and
# negative (blue) where ink points to another digit — the centre of the 0, for one, is
# where a 1 has its stroke. The catch: a template is tied to *positions*. Move the digit
# a few pixels and the match breaks, because flattening threw away which pixels are
# neighbours. Watch the probability the classifier gives the right class as the digit
# slides to the right:

# %%
first = test_x[0].reshape(28, 28)
shifted = [torch.roll(first, shifts=dx, dims=1) for dx in (0, 2, 4, 6)]
with torch.no_grad():
    probabilities = torch.softmax(linear(torch.stack(shifted).flatten(1)), 1)
scores = probabilities[:, test.labels[0]]
viz.image_grid(shifted, [f"shift {2 * i}px: p={p:.2f}" for i, p in
                         enumerate(scores.tolist())], cols=4, size=2.0);

# %% tags=["remove-cell"]
assert scores[-1] < scores[0] / 2  # "the match breaks" (the prose above)

# %% [markdown]
# A convolution shares one small kernel across every position, so a stroke is detected
# wherever it is; the network then needs later layers to combine local detections into a
# whole digit. That raises the question of the next section.

# %% [markdown]
# ## 6. Cliffhanger: what does one output pixel see?
#
# An output pixel of a 3 × 3 convolution depends on a 3 × 3 patch of its input: its
# **receptive field** is 3. Stack a second 3 × 3 layer on top and each of its pixels sees
# 3 × 3 pixels of the first layer, each of which saw 3 × 3 of the image: 5 × 5 in total.
# We can *measure* this instead of believing it: the gradient of one output pixel with
# respect to the input is non-zero exactly on the pixels it depends on.

# %%
def receptive_patch(layers: int, size: int = 15) -> torch.Tensor:
    """Which input pixels the centre output of `layers` stacked 3×3 convs depends on."""
    image = torch.zeros(1, 1, size, size, requires_grad=True)
    out, ones = image, torch.ones(1, 1, 3, 3)
    for _ in range(layers):
        out = F.conv2d(out, ones, padding=1)
    out[0, 0, size // 2, size // 2].backward()
    return (image.grad[0, 0] != 0).float()


patches = [receptive_patch(n) for n in range(1, 5)]
sizes = [int(p.sum().sqrt()) for p in patches]
viz.image_grid(patches, [f"{n} layer{'s' * (n > 1)}: {s}×{s}"
                         for n, s in enumerate(sizes, 1)], cols=4, size=2.2);

# %% [markdown]
# Every 3 × 3 layer adds 2 pixels to the receptive field: after $n$ layers it is
# $1 + 2n$. A digit spans most of the 28 × 28 image, so a network built only from 3 × 3
# convolutions would need 14 layers (receptive field 29) before a single output pixel
# could see the whole image, and a 400 × 400 photo would need 200.
# **Session 1** answers how real networks get there much faster, and what `evakit.rf`
# tells us about any network's receptive field.

# %% tags=["remove-cell"]
def layers_to_see(size: int, k: int = 3) -> int:
    return next(n for n in range(1, 10_000) if 1 + (k - 1) * n >= size)


assert sizes == [1 + 2 * n for n in range(1, 5)]                  # "adds 2 pixels"
assert (layers_to_see(28), layers_to_see(400)) == (14, 200)      # the prose above

# %% [markdown]
# ## Exercises
#
# 1. What is the output size of a 3 × 3 convolution without padding, stride 1, on a 7 × 7
#    input? And with padding 1 and stride 2?
# 2. A kernel with weights `[[1, 2, 1], [0, 0, 0], [-1, -2, -1]]`: which edges does it
#    find, and what sign does it give to a dark-above, bright-below edge?
# 3. How many multiplications does one 3 × 3 convolution of a 3-channel 224 × 224 image
#    (padding 1) need for a single output channel?
# 4. A CIFAR-10 image is 32 × 32. How many stacked 3 × 3 convolutions (stride 1, no
#    pooling) until one output pixel sees all of it? How many with 5 × 5 kernels?

# %% tags=["remove-input"] mystnb={"markdown_format": "myst"}
sobel_y = torch.tensor([[[[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]]])
step_edge = torch.zeros(1, 1, 6, 6)
step_edge[..., 3:, :] = 1.0                                   # dark above, bright below
on_edge = F.conv2d(step_edge, sobel_y)[0, 0, 1, 1].item()  # window over the edge
answers = {
    1: (output_size(7, 3), output_size(7, 3, p=1, s=2)),
    2: on_edge,
    3: 224 * 224 * 3 * 3 * 3,
    4: (layers_to_see(32), layers_to_see(32, k=5)),
}
display(Markdown(f"""```{{admonition}} Answers
:class: dropdown
1. {answers[1][0]} × {answers[1][0]}, and {answers[1][1]} × {answers[1][1]}:
   $\\lfloor (7 + 2 - 2 - 1)/2 \\rfloor + 1 = 4$.
2. Horizontal edges. On a dark-above, bright-below edge it gives {on_edge:g}: the
   *positive* row sits on top, over the dark side, so the sum is negative.
3. {answers[3]:,}: 224 · 224 output pixels, each a sum of 3 · 3 · 3 = 27 products.
4. {answers[4][0]} layers with 3 × 3 kernels (receptive field 1 + 2 · {answers[4][0]} =
   {1 + 2 * answers[4][0]}); {answers[4][1]} with 5 × 5 kernels, each adding 4
   (receptive field {1 + 4 * answers[4][1]}).
```"""))

# %% [markdown]
# ## Summary
#
# - An image is a C × H × W tensor; each channel is a map of one feature.
# - A kernel is a small grid of weights slid over every position; its output is large
#   where the image looks like it. A kernel spans all input channels.
# - Convolution = loops over positions, or equivalently `unfold` (im2col) + one matrix
#   product; both match `F.conv2d`.
# - $n_\text{out} = \lfloor (n + 2p - d(k-1) - 1)/s \rfloor + 1$.
# - A fully connected layer on a flattened image matches position-bound templates; it
#   loses neighbourhoods and is fooled by shifts.
# - Each 3 × 3 layer widens the receptive field by 2: depth alone grows it slowly.
#
# ## References
#
# - V. Dumoulin, F. Visin, *A guide to convolution arithmetic for deep learning*,
#   arXiv:1603.07285 (2016).
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, *Gradient-based learning applied to
#   document recognition*, Proc. IEEE 86(11) (1998) — MNIST and LeNet.
# - K. Chellapilla, S. Puri, P. Simard, *High performance convolutional neural networks
#   for document processing* (2006) — convolution as unrolling + matrix multiplication.
# - M. D. Zeiler, R. Fergus, *Visualizing and understanding convolutional networks*,
#   ECCV (2014) — what first layers learn on photos.
# - A. Araujo, W. Norris, J. Sim, *Computing receptive fields of convolutional neural
#   networks*, Distill (2019).
