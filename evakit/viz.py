"""Plots for the sessions. Every function returns a matplotlib Figure and draws nothing else.

Images are accepted as torch tensors or NumPy arrays, C×H×W or H×W×C or H×W, uint8 or float.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from evakit.errors import ArgumentError
from evakit.models.registry import evaluating
from evakit.train import History, LRRangeResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from evakit.data import ImageSet
    from evakit.records import Record


def to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An image as a NumPy array H×W (grey) or H×W×3, floats in [0, 1] when it was uint8."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return a / 255.0 if a.dtype == np.uint8 else a


def _grid(n: int, cols: int, size: float) -> tuple[Figure, np.ndarray]:
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def image_grid(images: Sequence, titles: Sequence[str] | None = None, *, cols: int = 8,
               size: float = 1.4, cmap: str = "gray", title_colors: Sequence[str] | None = None,
               suptitle: str | None = None) -> Figure:
    """Images in a grid, each with an optional title (e.g. "true 7 / pred 1").

    Args:
        images: the images (see the module docstring for accepted layouts).
        titles: one title per image.
        cols: images per row.
        size: inches per image.
        cmap: colour map for single-channel images.
        title_colors: one colour per title (e.g. red for a wrong prediction).
        suptitle: a title for the whole figure.
    """
    fig, axes = _grid(len(images), min(cols, len(images)), size)
    for i, (ax, image) in enumerate(zip(axes, images, strict=False)):
        a = to_hwc(image)
        ax.imshow(a, cmap=cmap if a.ndim == 2 else None, interpolation="nearest")
        if titles is not None:
            color = title_colors[i] if title_colors is not None else "black"
            ax.set_title(titles[i], fontsize=8, color=color)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def image_rows(rows: Mapping[str, Sequence], *, cols: int = 8, size: float = 1.4) -> Figure:
    """One row of images per name (the name written at the row's left): the first ``cols``
    images of each, e.g. one batch under several augmentations."""
    fig, axes = plt.subplots(len(rows), cols, figsize=(size * cols, 1.04 * size * len(rows)),
                             squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(cols):
            axes[r, c].imshow(to_hwc(images[c]), cmap="gray")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def channels(image: torch.Tensor | np.ndarray,
             names: Sequence[str] = ("red", "green", "blue")) -> Figure:
    """An RGB image beside each of its channels, each channel drawn in its own colour."""
    a = to_hwc(image)
    if a.ndim != 3:
        raise ValueError(f"channels() needs a colour image H×W×C or C×H×W, got shape {a.shape}")
    fig, axes = plt.subplots(1, a.shape[-1] + 1, figsize=(3.2 * (a.shape[-1] + 1), 3.4))
    axes[0].imshow(a)
    axes[0].set_title("image")
    cmaps = {"red": "Reds", "green": "Greens", "blue": "Blues"}
    for c, ax in enumerate(axes[1:]):
        name = names[c] if c < len(names) else f"channel {c}"
        ax.imshow(a[..., c], cmap=cmaps.get(name, "gray"), vmin=0, vmax=1)
        ax.set_title(f"{name} channel")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def kernel_grid(weight: torch.Tensor, *, cols: int = 8, size: float = 1.0,
                title: str | None = None) -> Figure:
    """The kernels of a conv layer (out×in×k×k): one tile per (out, in) pair, blue<0<red."""
    w = weight.detach().cpu().float()
    if w.ndim != 4:
        raise ValueError(f"kernel_grid() needs a 4-D conv weight, got shape {tuple(w.shape)}")
    tiles = w.reshape(-1, *w.shape[2:])
    fig, axes = _grid(len(tiles), min(cols, len(tiles)), size)
    limit = float(tiles.abs().max()) or 1.0
    for ax, tile in zip(axes, tiles, strict=False):
        ax.imshow(tile.numpy(), cmap="bwr", vmin=-limit, vmax=limit)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_maps(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, *,
                 cols: int = 8, size: float = 1.2, limit: int = 32) -> Figure:
    """The output channels of ``layer`` when ``model`` sees one image batch ``x`` (1×C×H×W)."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        with torch.no_grad(), evaluating(model):
            model(x)
    finally:
        handle.remove()
    maps = captured[0][0, :limit].cpu()
    fig, axes = _grid(len(maps), min(cols, len(maps)), size)
    for i, (ax, fmap) in enumerate(zip(axes, maps, strict=False)):
        ax.imshow(fmap.numpy(), cmap="viridis")
        ax.set_title(f"ch {i}", fontsize=7)
    fig.suptitle(f"{type(layer).__name__} output, {tuple(captured[0].shape[1:])}")
    fig.tight_layout()
    return fig


def curves(runs: Mapping[str, History | Mapping[str, Sequence[float]]], *,
           metrics: Sequence[str] = ("loss", "acc"),
           acc_range: tuple[float, float] | None = None, target: float | None = None,
           test_only: bool = False) -> Figure:
    """Training curves of several runs on shared axes.

    Args:
        runs: run name → a :class:`evakit.train.History` (or a mapping with ``train_loss``,
            ``test_loss``, ``train_acc``, ``test_acc``).
        metrics: which panels to draw: "loss", "acc" or both.
        acc_range: the accuracy axis' limits, to zoom on the differences that matter.
        target: an accuracy to draw as a dotted line (e.g. an assignment's 99.4 %).
        test_only: draw the test curves only (for many runs on one panel).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (name, h) in enumerate(runs.items()):
            h = h if isinstance(h, History) else History.from_dict(dict(h))
            color = f"C{i % 10}"
            test = getattr(h, f"test_{metric}")
            epochs = np.arange(1, len(test) + 1)
            if not test_only:
                ax.plot(epochs, getattr(h, f"train_{metric}"), "--", color=color,
                        label=f"{name} train")
            ax.plot(epochs, test, "-", color=color, label=f"{name} test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)" if metric == "acc" else "loss")
        if metric == "acc" and acc_range is not None:
            ax.set_ylim(*acc_range)
        if metric == "acc" and target is not None:
            ax.axhline(target, color="k", ls=":", lw=1, label=f"{target:g} %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lr_range(result: LRRangeResult, *, ax: Axes | None = None,
             readings: bool = False) -> Figure:
    """The LR range test: smoothed loss against learning rate (log axis), suggestion marked.

    With ``readings``, also what :class:`evakit.train.LRRangeResult` reads before the turn-up
    (shaded after it, where nothing is read): where the loss starts to fall and where it is
    lowest.
    """
    fig, ax = (plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax))
    ax.plot(result.lrs, result.losses)
    ax.axvline(result.suggested_lr, color="C3", ls="--",
               label=f"steepest descent: {result.suggested_lr:.2g}")
    if readings:
        if result.usable < len(result.lrs):
            turn = result.lrs[result.usable]
            ax.axvspan(turn, result.lrs[-1], color="grey", alpha=0.15,
                       label=f"after the turn-up at {turn:.2g}: not read")
        ax.axvline(result.falling_lr, color="C2", ls=":",
                   label=f"starts to fall: {result.falling_lr:.2g}")
        ax.axvline(result.minimum_lr, color="C1", ls="-.",
                   label=f"lowest before the turn-up: {result.minimum_lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed loss")
    ax.legend(fontsize=8 if readings else None)
    ax.grid(alpha=0.3)
    return fig


def matrix(values: torch.Tensor | np.ndarray, *, ax: Axes | None = None, fmt: str = "{:g}",
           cmap: str = "Greys", title: str | None = None, vmin: float | None = None,
           vmax: float | None = None) -> Figure:
    """A small 2-D array drawn as a grid of cells with each value written in its cell."""
    a = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    fig, ax = (plt.subplots(figsize=(0.45 * a.shape[1] + 0.6, 0.45 * a.shape[0] + 0.6))
               if ax is None else (ax.figure, ax))
    image = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
    for (r, c), v in np.ndenumerate(a):
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8,
                color=_text_colour(image.cmap(image.norm(v))))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (by the cell colour's luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def misclassified(images: torch.Tensor | np.ndarray, preds: torch.Tensor, labels: torch.Tensor,
                  classes: Sequence[str], *, n: int = 10, cols: int = 5,
                  suptitle: str | None = None) -> Figure:
    """The first ``n`` images whose prediction is wrong, titled "true / predicted".

    Args:
        images: the test images, in the order of ``preds`` and ``labels``.
        preds: predicted class per image.
        labels: true class per image.
        classes: class names.
    """
    wrong = torch.nonzero(preds != labels).flatten()[:n].tolist()
    if not wrong:
        raise ValueError("no misclassified images to show: every prediction is right")
    return image_grid([images[i] for i in wrong],
                      [f"{classes[labels[i]]} / {classes[preds[i]]}" for i in wrong],
                      cols=cols, size=1.7, title_colors=["C3"] * len(wrong),
                      suptitle=suptitle or f"{len(wrong)} misclassified (true / predicted)")


def _feature_size(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor) -> tuple:
    sizes = []
    handle = layer.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[-2:])))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        handle.remove()
    return sizes[0]


def gradcam_gallery(model: torch.nn.Module, layer: torch.nn.Module, inputs: torch.Tensor,
                    images: torch.Tensor | np.ndarray, titles: Sequence[str], *,
                    targets: Sequence[int] | None = None, cols: int = 5,
                    suptitle: str | None = None) -> Figure:
    """GradCAM heat maps (the ``grad-cam`` package) over the images, one panel each.

    Args:
        model: the trained network (in eval mode here, back in its own mode afterwards).
        layer: the layer whose activations are weighted; its map must be at least 5×5 —
            a 4×4 map spreads one cell over a quarter of the image and says little.
        inputs: the model's inputs (normalized), N×C×H×W.
        images: the same images for display (uint8 or floats in [0, 1]).
        titles: one title per image.
        targets: the class each map explains (default: the predicted class).
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with evaluating(model):
        size = _feature_size(model, layer, inputs)
        if min(size) < 5:
            raise ValueError(f"GradCAM needs a feature map of at least 5×5, the layer given "
                             f"gives {size[0]}×{size[1]}: choose an earlier layer")
        wanted = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
        with GradCAM(model=model, target_layers=[layer]) as cam:
            maps = cam(input_tensor=inputs, targets=wanted)
    overlays = [show_cam_on_image(to_hwc(img).astype(np.float32), m, use_rgb=True)
                for img, m in zip(images, maps, strict=True)]
    return image_grid(overlays, titles, cols=cols, size=1.7,
                      suptitle=suptitle or "GradCAM: where the evidence for the class lies")


def misclassified_from_record(record: Record, test_set: ImageSet, *, n: int = 10, cols: int = 5,
                              suptitle: str | None = None) -> Figure:
    """The first ``n`` test images the *recorded* model got wrong, from its stored predictions.

    Args:
        record: an :class:`evakit.records.Record` whose outputs hold ``test_predictions``.
        test_set: the test set it was scored on (the same images, checked by content hash).
    """
    outputs = record.outputs.get("test_predictions")
    if outputs is None:
        raise ValueError(f"the record of {record.recipe} keeps no test predictions: re-make it "
                         f"with `evakit train {record.recipe} --record`")
    _same_test_set(record, test_set)
    preds = torch.tensor([int(c) for c in outputs["pred"]])
    return misclassified(test_set.images, preds, test_set.labels, test_set.classes, n=n,
                         cols=cols, suptitle=suptitle)


def gradcam_from_record(record: Record, test_set: ImageSet, *, cols: int = 5,
                        suptitle: str | None = None) -> Figure:
    """The recorded model's GradCAM maps of its first misclassified test images, overlaid.

    Titles read "true / predicted (confidence)"; the maps explain the predicted class.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    cam = record.outputs.get("gradcam")
    if cam is None:
        raise ValueError(f"the record of {record.recipe} keeps no GradCAM maps")
    _same_test_set(record, test_set)
    pred = record.outputs["test_predictions"]
    size = cam["size"]
    overlays, titles = [], []
    for i, values in zip(cam["indices"], cam["maps"], strict=True):
        heat = np.asarray(values, dtype=np.float32).reshape(size)
        overlays.append(show_cam_on_image(to_hwc(test_set.images[i]).astype(np.float32), heat,
                                          use_rgb=True))
        confidence = pred["confidence_permille"][i] / 10
        titles.append(f"{test_set.classes[test_set.labels[i]]} / "
                      f"{test_set.classes[int(pred['pred'][i])]} ({confidence:.0f} %)")
    return image_grid(overlays, titles, cols=cols, size=1.8, title_colors=["C3"] * len(titles),
                      suptitle=suptitle or f"GradCAM at {cam['layer']} of the recorded "
                                           f"{record.recipe} (true / predicted)")


def _same_test_set(record, test_set) -> None:
    if test_set.identity().images_md5 != record.data["test"].images_md5:
        raise ValueError(f"these test images are not the ones {record.recipe} was scored on "
                         f"({record.test_set()}): load the same split without FAST slicing")


@dataclass(frozen=True)
class Box:
    """One labelled block of a :func:`diagram`, placed on a grid of columns and rows.

    Attributes:
        label: the text in the box (``\\n`` breaks lines).
        col: its column (x, left to right); fractions place it between columns.
        row: its row (y, top to bottom); fractions place it between rows.
        color: its fill colour.
        shape: ``"box"`` (a rounded rectangle) or ``"circle"`` (a neuron, a sum node).
        width: its width in column units (a box may span several columns).
    """

    label: str
    col: float
    row: float
    color: str = "#dbe9f6"
    shape: str = "box"
    width: float = 0.8


@dataclass(frozen=True)
class Arrow:
    """An arrow of a :func:`diagram` from box ``src`` to box ``dst``.

    Attributes:
        src, dst: names of boxes.
        label: text written at the arrow's middle (a weight, a tensor shape).
        curve: bend of the arrow (0 straight; ±0.3 to ±0.6 for a skip connection arcing
            over or under the boxes between; positive bends to the left of the direction of
            travel, as matplotlib's ``arc3``).
        dashed: draw it dashed (e.g. a path taken only at training time).
        label_at: where the label sits along the visible arrow, 0 (start) to 1 (tip); move
            it off the middle where two labelled arrows cross.
    """

    src: str
    dst: str
    label: str = ""
    curve: float = 0.0
    dashed: bool = False
    label_at: float = 0.5


SHAPES = ("box", "circle")
EDGE = "#333333"


def diagram(boxes: Mapping[str, Box], arrows: Sequence[Arrow | tuple], *,
            title: str | None = None, col_width: float = 2.2, row_height: float = 1.2,
            fontsize: float = 9) -> Figure:
    """A block diagram: labelled boxes on a grid of columns and rows joined by arrows.

    The same helper draws a small fully connected network (circles, weights on the arrows), a
    network's skeleton (one column per layer), a block with branches (an Inception block: one
    row per branch) or a residual block (a curved skip arrow around the main path).

    Args:
        boxes: box name → :class:`Box` (its label, column, row and look).
        arrows: :class:`Arrow` objects, or tuples ``(src, dst)`` / ``(src, dst, label)``.
        title: a title over the figure.
        col_width: inches per column.
        row_height: inches per row.
        fontsize: size of the box labels (arrow labels are a little smaller).

    Returns:
        The Figure.

    Example:
        >>> viz.diagram({"x": Box("input", 0, 0), "f": Box("conv 3×3", 1, 0)},
        ...             [("x", "f", "1×28×28")])
    """
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    if not boxes:
        raise ArgumentError("diagram() needs at least one box")
    for name, box in boxes.items():
        if not isinstance(box, Box):
            raise ArgumentError(f"box {name!r} must be a viz.Box, got {type(box).__name__}")
        if box.shape not in SHAPES:
            raise ArgumentError(f"box {name!r} has shape {box.shape!r}: expected one of "
                                f"{SHAPES}")
    arrows = [_as_arrow(a, i, boxes) for i, a in enumerate(arrows)]
    half = max(b.width for b in boxes.values()) / 2
    # the grid's extent, and the bulge of every curved arrow (computed in inches, y up)
    xs = [b.col for b in boxes.values()]
    ys = [b.row for b in boxes.values()]
    for arrow in arrows:
        if arrow.curve:
            a, b = boxes[arrow.src], boxes[arrow.dst]
            x, y = _bezier(a.col * col_width, -a.row * row_height, b.col * col_width,
                           -b.row * row_height, arrow.curve, 0.5)
            xs.append(x / col_width)
            ys.append(-y / row_height)
    x0, x1 = min(xs) - half - 0.1, max(xs) + half + 0.1
    y0, y1 = min(ys) - 0.5, max(ys) + 0.5
    band = 0.4 if title else 0.0                          # inches above for the title
    height_in = (y1 - y0) * row_height
    fig = plt.figure(figsize=((x1 - x0) * col_width, height_in + band))
    ax = fig.add_axes((0.0, 0.0, 1.0, height_in / (height_in + band)))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)                                   # row 0 at the top
    ax.axis("off")
    height = 0.62
    diameter = 0.6 * min(col_width, row_height)           # inches: round whatever the grid
    patches = {}
    for name, box in boxes.items():
        if box.shape == "circle":
            patch = Ellipse((box.col, box.row), diameter / col_width, diameter / row_height,
                            facecolor=box.color, edgecolor=EDGE)
        else:
            patch = FancyBboxPatch((box.col - box.width / 2, box.row - height / 2), box.width,
                                   height, boxstyle="round,pad=0,rounding_size=0.06",
                                   facecolor=box.color, edgecolor=EDGE, mutation_aspect=0.5)
        ax.add_patch(patch)
        patches[name] = patch
        ax.text(box.col, box.row, box.label, ha="center", va="center", fontsize=fontsize,
                zorder=3)
    for arrow in arrows:
        a, b = boxes[arrow.src], boxes[arrow.dst]
        ax.add_patch(FancyArrowPatch(
            (a.col, a.row), (b.col, b.row), patchA=patches[arrow.src],
            patchB=patches[arrow.dst], arrowstyle="-|>", mutation_scale=12,
            connectionstyle=f"arc3,rad={arrow.curve}", color=EDGE, lw=1.0,
            linestyle="--" if arrow.dashed else "-", zorder=2))
        if arrow.label:
            x, y = _label_point(ax, a, b, arrow, height, diameter / col_width,
                                diameter / row_height)
            ax.text(x, y, arrow.label, ha="center", va="center", fontsize=fontsize - 1.5,
                    zorder=4, bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                    "ec": "none", "alpha": 0.9})
    if title:
        fig.suptitle(title, y=1 - 0.5 * band / (height_in + band), va="center")
    return fig


def _as_arrow(arrow, i: int, boxes: Mapping[str, Box]) -> Arrow:
    if not isinstance(arrow, Arrow):
        if not isinstance(arrow, tuple | list) or len(arrow) not in (2, 3):
            raise ArgumentError(f"arrow {i} must be a viz.Arrow or a tuple (src, dst) or "
                                f"(src, dst, label), got {arrow!r}")
        arrow = Arrow(*arrow)
    for end in (arrow.src, arrow.dst):
        if end not in boxes:
            raise ArgumentError(f"arrow {i} goes from {arrow.src!r} to {arrow.dst!r}, but no "
                                f"box is named {end!r}: the boxes are {sorted(boxes)}")
    return arrow


def _bezier(xa: float, ya: float, xb: float, yb: float, curve: float,
            t: float) -> tuple[float, float]:
    """The point at ``t`` of matplotlib's ``arc3`` curve from (xa, ya) to (xb, yb) (y up).

    arc3 is the quadratic Bézier whose control point is the chord's middle + rad × (dy, −dx).
    """
    cx, cy = (xa + xb) / 2 + curve * (yb - ya), (ya + yb) / 2 - curve * (xb - xa)
    u = 1 - t
    return u * u * xa + 2 * t * u * cx + t * t * xb, u * u * ya + 2 * t * u * cy + t * t * yb


def _exit(box: Box, dcol: float, drow: float, height: float, rx: float, ry: float) -> float:
    """The fraction of the centre-to-centre step (dcol, drow) that lies inside ``box``."""
    if box.shape == "circle":
        return 1 / max(((dcol / (rx / 2)) ** 2 + (drow / (ry / 2)) ** 2) ** 0.5, 1e-9)
    return min(box.width / 2 / abs(dcol) if dcol else float("inf"),
               height / 2 / abs(drow) if drow else float("inf"))


def _label_point(ax, a: Box, b: Box, arrow: Arrow, height: float, rx: float,
                 ry: float) -> tuple[float, float]:
    """Where an arrow's label goes: ``label_at`` of the way along its visible part."""
    dcol, drow = b.col - a.col, b.row - a.row
    start = _exit(a, dcol, drow, height, rx, ry)
    end = 1 - _exit(b, -dcol, -drow, height, rx, ry)
    t = start + arrow.label_at * (end - start) if end > start else 0.5
    (xa, ya), (xb, yb) = ax.transData.transform([(a.col, a.row), (b.col, b.row)])
    x, y = ax.transData.inverted().transform(_bezier(xa, ya, xb, yb, arrow.curve, t))
    return float(x), float(y)
