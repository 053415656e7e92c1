"""Object-detection maths for session 10: IoU, COCO-format annotations, anchor boxes by k-means
with distance 1 − IoU (YOLOv2's dimension clusters), and the YOLOv2 loss written term by term.

Boxes are float torch tensors. Corner boxes are N×4 ``(x1, y1, x2, y2)``; box shapes (anchors and
the sizes they are fitted to) are N×2 ``(w, h)``, compared as if the boxes shared one centre.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from evakit.errors import ArgumentError, DataError

LAMBDA_COORD = 5.0
LAMBDA_NOOBJ = 0.5


# ---------------------------------------------------------------------------------------- IoU

def _check_boxes(boxes: torch.Tensor, name: str, kind: str) -> None:
    columns = {"corner": 4, "shape": 2}[kind]
    layout = "(x1, y1, x2, y2)" if kind == "corner" else "(w, h)"
    if (not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != columns
            or not boxes.is_floating_point()):
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a float tensor N×{columns} of {layout} boxes, "
                         f"got {shape}")
    if not torch.isfinite(boxes).all():
        row = int((~torch.isfinite(boxes)).any(1).nonzero()[0])
        raise ValueError(f"{name} must hold finite numbers, but box {row} is "
                         f"{boxes[row].tolist()}")
    sizes = boxes[:, 2:] - boxes[:, :2] if kind == "corner" else boxes
    if (sizes <= 0).any():
        row = int((sizes <= 0).any(1).nonzero()[0])
        raise ValueError(f"{name} must hold boxes of positive width and height, but box {row} "
                         f"{layout} is {boxes[row].tolist()}")


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Args:
        a: N×4 corner boxes ``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1``.
        b: M×4 corner boxes.

    Returns:
        N×M IoU in [0, 1]; boxes that only touch along an edge have IoU 0.

    Raises:
        ValueError: a box is not finite or has zero or negative width or height.
    """
    _check_boxes(a, "a", "corner")
    _check_boxes(b, "b", "corner")
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def wh_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of box shapes as if each pair shared its centre: the anchor-matching IoU of YOLOv2.

    Args:
        a: N×2 shapes ``(w, h)``, positive.
        b: M×2 shapes ``(w, h)``, positive.

    Returns:
        N×M IoU in (0, 1].

    Raises:
        ValueError: a shape is not finite or not positive.
    """
    _check_boxes(a, "a", "shape")
    _check_boxes(b, "b", "shape")
    return _wh_iou(a, b)


def _wh_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    inter = torch.minimum(a[:, None], b[None, :]).prod(-1)
    return inter / (a.prod(-1)[:, None] + b.prod(-1)[None, :] - inter)


# --------------------------------------------------------------------------- COCO annotations

@dataclass(frozen=True)
class Annotations:
    """The boxes of a COCO-format annotation file, one row per box.

    Attributes:
        path: the file read.
        image_ids: int64 N, the COCO image id of each box.
        category_ids: int64 N, the COCO category id of each box (COCO's ids have gaps: 1–90).
        labels: int64 N, each box's index into ``classes`` (0…C−1, in category-id order).
        boxes: float64 N×4 ``(x, y, w, h)``: top-left corner and size as fractions of the box's
            own image width (x, w) and height (y, h).
        classes: class names, indexed by label.
        image_sizes: image id → (width, height) in pixels, for every image in the file
            (including images without boxes).
    """

    path: Path
    image_ids: torch.Tensor
    category_ids: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    classes: list[str]
    image_sizes: dict[int, tuple[int, int]]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def wh(self) -> torch.Tensor:
        """N×2 box shapes ``(w, h)`` as fractions of their image: what anchors are fitted to."""
        return self.boxes[:, 2:]

    @property
    def names(self) -> list[str]:
        """The class name of each box."""
        return [self.classes[i] for i in self.labels.tolist()]


def read_coco(path: str | Path, *, include_crowd: bool = False) -> Annotations:
    """Read the boxes of a COCO-format annotation file, normalised by each image's size.

    Args:
        path: a JSON file with ``images`` (id, width, height), ``annotations`` (image_id,
            category_id, bbox ``[x, y, w, h]`` in pixels) and ``categories`` (id, name).
        include_crowd: keep ``iscrowd`` boxes (one box around a crowd); detectors such as YOLO
            leave them out, and so does this reader by default.

    Returns:
        The boxes as :class:`Annotations`.

    Raises:
        DataError: the file is not JSON, not COCO-shaped, or holds no boxes.
    """
    path = Path(path)
    coco = _load_json(path)
    sizes = _image_sizes(path, coco["images"])
    categories = _categories(path, coco["categories"])
    rows = [_box_row(path, a, sizes, categories) for a in coco["annotations"]
            if include_crowd or not a.get("iscrowd", 0)]
    if not rows:
        raise DataError(f"{path} holds no boxes: expected at least one annotation with a "
                         f"bbox [x, y, w, h]")
    ids = sorted(categories)
    label_of = {cid: i for i, cid in enumerate(ids)}
    image_ids, category_ids, boxes = zip(*rows, strict=True)
    return Annotations(
        path=path,
        image_ids=torch.tensor(image_ids, dtype=torch.int64),
        category_ids=torch.tensor(category_ids, dtype=torch.int64),
        labels=torch.tensor([label_of[c] for c in category_ids], dtype=torch.int64),
        boxes=torch.tensor(boxes, dtype=torch.float64),
        classes=[categories[c] for c in ids],
        image_sizes=sizes,
    )


def _load_json(path: Path) -> dict:
    expected = "expected a COCO-format annotation file"
    try:
        with open(path, encoding="utf-8") as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}): "
                         f"{expected}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text: {expected}") from None
    if not isinstance(coco, dict) or not all(
            isinstance(coco.get(key), list) for key in ("images", "annotations", "categories")):
        raise DataError(f"{path} is not a COCO annotation file: expected a JSON object with "
                         f"lists 'images', 'annotations' and 'categories'")
    return coco


def _image_sizes(path: Path, images: list) -> dict[int, tuple[int, int]]:
    sizes = {}
    for i, image in enumerate(images):
        try:
            key, width, height = image["id"], image["width"], image["height"]
            if not (isinstance(key, int) and width > 0 and height > 0):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: images[{i}] is not a COCO image: expected an integer id "
                            f"and a positive width and height in pixels") from None
        sizes[key] = (width, height)
    return sizes


def _categories(path: Path, categories: list) -> dict[int, str]:
    try:
        return {c["id"]: str(c["name"]) for c in categories}
    except (KeyError, TypeError):
        raise DataError(f"{path}: a category is not COCO: expected each category to have an "
                         f"id and a name") from None


def _box_row(path: Path, annotation: dict, sizes: dict[int, tuple[int, int]],
             categories: dict[int, str]) -> tuple[int, int, list[float]]:
    try:
        image, category, bbox = (annotation["image_id"], annotation["category_id"],
                                 [float(v) for v in annotation["bbox"]])
        if len(bbox) != 4:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: annotation {annotation.get('id', '?')} is not COCO: expected "
                         f"image_id, category_id and bbox [x, y, w, h] in pixels") from None
    if image not in sizes:
        raise DataError(f"{path}: annotation {annotation.get('id', '?')} refers to image "
                         f"{image}, which is not in 'images'")
    if category not in categories:
        raise DataError(f"{path}: annotation {annotation.get('id', '?')} refers to category "
                         f"{category}, which is not in 'categories'")
    if not (all(math.isfinite(v) for v in bbox) and bbox[2] > 0 and bbox[3] > 0):
        raise DataError(f"{path}: annotation {annotation.get('id', '?')} has bbox {bbox}: "
                         f"expected finite numbers and a positive width and height in pixels")
    width, height = sizes[image]
    x, y, w, h = bbox
    return image, category, [x / width, y / height, w / width, h / height]


def class_counts(annotations: Annotations) -> dict[str, int]:
    """Boxes per class, for every class in the file (zero for classes without boxes).

    Args:
        annotations: from :func:`read_coco`.

    Returns:
        Class name → number of boxes, in class order.
    """
    counts = torch.bincount(annotations.labels, minlength=len(annotations.classes)).tolist()
    return dict(zip(annotations.classes, counts, strict=True))


def plot_class_counts(counts: Mapping[str, int], *, top: int | None = None,
                      title: str | None = None) -> Figure:
    """The class distribution as a horizontal bar chart, most frequent class at the top.

    Args:
        counts: class name → number of boxes, e.g. from :func:`class_counts`.
        top: show only the ``top`` most frequent classes.
        title: the axes title.

    Returns:
        The figure.
    """
    ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)[:top]
    names, values = zip(*reversed(ranked), strict=True) if ranked else ((), ())
    fig, ax = plt.subplots(figsize=(7, 1 + 0.2 * len(names)))
    ax.barh(range(len(names)), values, color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=7)
    ax.set_xlabel("boxes")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ anchors by k-means

@dataclass(frozen=True)
class AnchorFit:
    """k anchor shapes clustered from box shapes with distance 1 − IoU.

    Attributes:
        anchors: k×2 ``(w, h)``, sorted by area, smallest first.
        best_iou: N, the IoU of each box with its best anchor.
        assignment: N int64, the index (into ``anchors``) of each box's best anchor.
        iterations: assignment rounds until no box changed cluster (in the best restart).
    """

    anchors: torch.Tensor
    best_iou: torch.Tensor
    assignment: torch.Tensor
    iterations: int

    @property
    def k(self) -> int:
        """The number of anchors."""
        return len(self.anchors)

    @property
    def mean_iou(self) -> float:
        """The mean IoU of each box with its best anchor (the YOLOv2 paper's "Avg IOU")."""
        return float(self.best_iou.mean())


def kmeans_anchors(wh: torch.Tensor, k: int, *, seed: int = 0, restarts: int = 3,
                   max_iter: int = 300) -> AnchorFit:
    """Cluster box shapes into ``k`` anchors with distance ``1 − IoU`` (YOLOv2, section 2).

    Euclidean k-means on (w, h) would let large boxes make larger errors than small ones; 1 − IoU
    treats a shape's error relative to its size. Centres start k-means++ style (the first a
    random box, each next one a box drawn with probability ∝ distance² to its nearest centre),
    then move to the mean (w, h) of their boxes until no box changes cluster. A cluster left
    empty restarts at the box worst served by the others.

    Args:
        wh: N×2 box shapes ``(w, h)``, positive (e.g. :attr:`Annotations.wh`).
        k: number of anchors.
        seed: seed of the initialisation; the same seed gives the same anchors.
        restarts: independent initialisations; the fit with the highest mean IoU is kept.
        max_iter: most assignment rounds per restart.

    Returns:
        The best :class:`AnchorFit`.

    Raises:
        ValueError: bad shapes.
        ArgumentError: ``k`` is not between 1 and the number of distinct shapes.
    """
    _check_boxes(wh, "wh", "shape")
    wh = wh.double()
    distinct = len(torch.unique(wh, dim=0))
    if not isinstance(k, int) or not 1 <= k <= distinct:
        raise ArgumentError(f"k must be an integer from 1 to the number of distinct box shapes "
                         f"({distinct}), got {k!r}")
    if restarts < 1 or max_iter < 1:
        raise ArgumentError(f"restarts and max_iter must be positive integers, got {restarts!r} "
                         f"and {max_iter!r}")
    generator = torch.Generator().manual_seed(seed)
    fits = [_lloyd(wh, _init_centres(wh, k, generator), max_iter) for _ in range(restarts)]
    return max(fits, key=lambda fit: fit.mean_iou)


def _init_centres(wh: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    centres = wh[torch.randint(len(wh), (1,), generator=generator)]
    for _ in range(1, k):
        distance = 1 - _wh_iou(wh, centres).max(1).values
        pick = torch.multinomial(distance**2, 1, generator=generator)
        centres = torch.cat([centres, wh[pick]])
    return centres


def _lloyd(wh: torch.Tensor, centres: torch.Tensor, max_iter: int) -> AnchorFit:
    k = len(centres)
    assignment, iterations = None, 0
    while iterations < max_iter:
        iterations += 1
        iou = _wh_iou(wh, centres)
        new = iou.argmax(1)
        if assignment is not None and torch.equal(new, assignment):
            break
        assignment = new
        counts = torch.bincount(assignment, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, assignment, wh)
        worst = iou.max(1).values.argsort()
        for j, cluster in enumerate((counts == 0).nonzero().flatten().tolist()):
            sums[cluster], counts[cluster] = wh[worst[j]], 1
        centres = sums / counts[:, None]
    order = centres.prod(1).argsort()
    centres = centres[order]
    iou = _wh_iou(wh, centres)
    best = iou.max(1)
    return AnchorFit(centres, best.values, best.indices, iterations)


def anchor_fits(wh: torch.Tensor, ks: Sequence[int] = (3, 4, 5, 6), *,
                seed: int = 0) -> dict[int, AnchorFit]:
    """One :func:`kmeans_anchors` fit per number of anchors.

    Args:
        wh: N×2 box shapes ``(w, h)``.
        ks: the numbers of anchors to try.
        seed: seed of every fit.

    Returns:
        k → its :class:`AnchorFit`, in the order of ``ks``.
    """
    if not ks:
        raise ArgumentError("ks must name at least one number of anchors, got none")
    return {k: kmeans_anchors(wh, k, seed=seed) for k in ks}


def anchor_curve(wh: torch.Tensor, ks: Sequence[int] = (3, 4, 5, 6), *,
                 seed: int = 0) -> dict[int, float]:
    """Mean IoU of each box with its best anchor, per number of anchors (YOLOv2's figure 2).

    Args:
        wh: N×2 box shapes ``(w, h)``.
        ks: the numbers of anchors to try.
        seed: seed of every fit.

    Returns:
        k → mean IoU.
    """
    return {k: fit.mean_iou for k, fit in anchor_fits(wh, ks, seed=seed).items()}


def _draw_curve(ax: Axes, curve: Mapping[int, float]) -> None:
    ks = sorted(curve)
    ax.plot(ks, [curve[k] for k in ks], "o-")
    for k in ks:
        ax.annotate(f"{curve[k]:.3f}", (k, curve[k]), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    ax.set_xticks(ks)
    ax.set_xlabel("number of anchors k")
    ax.set_ylabel("mean IoU with the best anchor")


def _draw_anchors(ax: Axes, anchors: torch.Tensor) -> None:
    colours = plt.get_cmap("viridis")
    for i, (w, h) in enumerate(anchors.tolist()):
        colour = colours(i / max(len(anchors) - 1, 1))
        ax.add_patch(Rectangle((0.5 - w / 2, 0.5 - h / 2), w, h, fill=False, lw=1.5,
                               edgecolor=colour, label=f"{w:.3f} × {h:.3f}"))
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("width (fraction of the image)")
    ax.set_ylabel("height (fraction of the image)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), title="w × h")


def plot_anchor_curve(curve: Mapping[int, float], *, title: str | None = None) -> Figure:
    """Mean IoU against the number of anchors, e.g. from :func:`anchor_curve`.

    Args:
        curve: k → mean IoU.
        title: the axes title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    _draw_curve(ax, curve)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_anchors(anchors: torch.Tensor, *, title: str | None = None) -> Figure:
    """Anchors drawn to scale as rectangles centred in the unit square (the image).

    Args:
        anchors: k×2 ``(w, h)`` as fractions of the image.
        title: the axes title.

    Returns:
        The figure.
    """
    _check_boxes(anchors, "anchors", "shape")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    _draw_anchors(ax, anchors)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------- anchors CLI

@dataclass(frozen=True)
class AnchorsReport:
    """Anchor fits for one annotation file: what ``evakit anchors`` prints.

    Attributes:
        path: the annotation file.
        n_images: images in the file.
        n_boxes: boxes clustered.
        n_classes: categories in the file.
        seed: seed of every fit.
        fits: k → its :class:`AnchorFit`.
    """

    path: Path
    n_images: int
    n_boxes: int
    n_classes: int
    seed: int
    fits: dict[int, AnchorFit]

    @property
    def curve(self) -> dict[int, float]:
        """k → mean IoU."""
        return {k: fit.mean_iou for k, fit in self.fits.items()}

    def __str__(self) -> str:
        lines = [f"{self.path}: {self.n_boxes} boxes in {self.n_images} images, "
                 f"{self.n_classes} classes",
                 f"k-means on box (w, h) with distance 1 - IoU, seed {self.seed}; anchors as "
                 f"(w, h) fractions of the image, smallest first",
                 " k  mean IoU  anchors"]
        for k, fit in self.fits.items():
            anchors = "  ".join(f"({w:.3f}, {h:.3f})" for w, h in fit.anchors.tolist())
            lines.append(f"{k:2d}  {fit.mean_iou:8.4f}  {anchors}")
        return "\n".join(lines)

    def figure(self) -> Figure:
        """Mean IoU against k beside the anchors of the largest k, drawn to scale."""
        k = max(self.fits)
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8),
                                          gridspec_kw={"width_ratios": [1, 1.4]})
        _draw_curve(left, self.curve)
        _draw_anchors(right, self.fits[k].anchors)
        fig.suptitle(f"{self.path.name}: {self.n_boxes} boxes; right: the {k} anchors")
        fig.tight_layout()
        return fig


def anchors_report(path: str | Path, ks: Sequence[int] = (3, 4, 5, 6), *,
                   seed: int = 0) -> AnchorsReport:
    """Read a COCO-format file and fit anchors for each k: ``evakit anchors FILE --k 3 4 5 6``.

    Print the result for the table; ``report.figure().savefig(FILE)`` for ``--plot FILE``.

    Args:
        path: the COCO-format annotation file.
        ks: the numbers of anchors to fit.
        seed: seed of every fit.

    Returns:
        The :class:`AnchorsReport`.

    Raises:
        DataError: a bad annotation file (one sentence naming it).
        ArgumentError: a bad k.
    """
    annotations = read_coco(path)
    return AnchorsReport(Path(path), len(annotations.image_sizes), len(annotations),
                         len(annotations.classes), seed,
                         anchor_fits(annotations.wh, ks, seed=seed))


# ------------------------------------------------------------------------------- YOLOv2 loss

def to_grid(raw: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """A detection head's raw output N×(B·(5+C))×S×S rearranged to N×S×S×B×(5+C).

    Args:
        raw: the output of the last 1×1 convolution, channels grouped by anchor.
        num_anchors: B.

    Returns:
        The same numbers in the layout of :func:`yolo_loss`.
    """
    n, channels, rows, cols = raw.shape
    if channels % num_anchors:
        raise ValueError(f"raw has {channels} channels, which is not a multiple of "
                         f"num_anchors={num_anchors}")
    return raw.view(n, num_anchors, channels // num_anchors, rows, cols).permute(0, 3, 4, 1, 2)


def decode(grid: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Raw predictions (from :func:`to_grid`) turned into the values :func:`yolo_loss` compares.

    x, y = sigmoid(t_x), sigmoid(t_y) (offsets within the cell); w, h = anchor · exp(t); the
    objectness goes through a sigmoid and the class scores through a softmax.

    Args:
        grid: N×S×S×B×(5+C) raw numbers.
        anchors: B×2 ``(w, h)`` as fractions of the image.

    Returns:
        N×S×S×B×(5+C) predictions.
    """
    _check_boxes(anchors, "anchors", "shape")
    if grid.ndim != 5 or grid.shape[3] != len(anchors):
        raise ValueError(f"grid must be N×S×S×B×(5+C) with B = {len(anchors)} anchors, "
                         f"got {tuple(grid.shape)}")
    return torch.cat([grid[..., :2].sigmoid(), anchors.to(grid) * grid[..., 2:4].exp(),
                      grid[..., 4:5].sigmoid(), grid[..., 5:].softmax(-1)], dim=-1)


def yolo_targets(boxes: Sequence[torch.Tensor], anchors: torch.Tensor, grid_size: int,
                 num_classes: int) -> torch.Tensor:
    """The target tensor of :func:`yolo_loss` for a batch of labelled images.

    Each object is given to the cell holding its centre and, within it, to the anchor whose
    shape has the highest IoU with the object's (:func:`wh_iou`). When two objects land on the
    same cell and anchor, the later one wins, as in YOLO.

    Args:
        boxes: one K×5 tensor per image, rows ``(class, cx, cy, w, h)`` with centre and size as
            fractions of the image (the YOLO label-file format).
        anchors: B×2 ``(w, h)``.
        grid_size: S.
        num_classes: C.

    Returns:
        N×S×S×B×(5+C) targets: cell offsets x, y; w, h; objectness 1; one-hot class.
    """
    _check_boxes(anchors, "anchors", "shape")
    target = torch.zeros(len(boxes), grid_size, grid_size, len(anchors), 5 + num_classes)
    for n, image_boxes in enumerate(boxes):
        _check_yolo_boxes(image_boxes, n, num_classes)
        best = _wh_iou(image_boxes[:, 3:5].float(), anchors.float()).argmax(1)
        for (label, cx, cy, w, h), b in zip(image_boxes.tolist(), best.tolist(), strict=True):
            col, row = min(int(cx * grid_size), grid_size - 1), min(int(cy * grid_size),
                                                                     grid_size - 1)
            target[n, row, col, b, :5] = torch.tensor(
                [cx * grid_size - col, cy * grid_size - row, w, h, 1.0])
            target[n, row, col, b, 5 + int(label)] = 1.0
    return target


def _check_yolo_boxes(boxes: torch.Tensor, n: int, num_classes: int) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError(f"boxes[{n}] must be K×5 rows (class, cx, cy, w, h), "
                         f"got {tuple(boxes.shape)}")
    labels, centres, sizes = boxes[:, 0], boxes[:, 1:3], boxes[:, 3:5]
    if not (torch.isfinite(boxes).all() and (labels >= 0).all() and (labels < num_classes).all()
            and (centres >= 0).all() and (centres <= 1).all() and (sizes > 0).all()):
        raise ValueError(f"boxes[{n}] must hold class ids 0…{num_classes - 1}, centres in "
                         f"[0, 1] and positive sizes")


def _objects(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if pred.shape != target.shape or pred.ndim != 5 or pred.shape[-1] < 6:
        raise ValueError(f"pred and target must both be N×S×S×B×(5+C) with C ≥ 1, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    responsible = target[..., 4]
    if not ((responsible == 0) | (responsible == 1)).all():
        raise ValueError("target objectness (last axis, index 4) must be 0 or 1")
    return responsible.bool()


def coord_loss(pred: torch.Tensor, target: torch.Tensor, *,
               lambda_coord: float = LAMBDA_COORD) -> torch.Tensor:
    """λ_coord Σ_responsible [(x − x̂)² + (y − ŷ)² + (√w − √ŵ)² + (√h − √ĥ)²], per image.

    Square roots make a miss of the same size cost more on a small box than on a large one
    (see :func:`size_error_table`).

    Args:
        pred: N×S×S×B×(5+C) predictions, w and h ≥ 0 (see :func:`yolo_loss`).
        target: N×S×S×B×(5+C) targets.
        lambda_coord: weight of the term (5 in YOLO).

    Returns:
        A scalar: the sum over responsible anchors, averaged over the N images.
    """
    obj = _objects(pred, target)
    p, t = pred[obj], target[obj]
    if (p[:, 2:4] < 0).any():
        raise ValueError("predicted w and h must be ≥ 0 (decoded as anchor · exp(t)) to take "
                         "their square roots")
    centre = (p[:, :2] - t[:, :2]).pow(2).sum()
    size = (p[:, 2:4].sqrt() - t[:, 2:4].sqrt()).pow(2).sum()
    return lambda_coord * (centre + size) / len(pred)


def object_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Σ_responsible (1 − Ĉ)², per image: confidence where an anchor holds an object.

    The target confidence is 1 (darknet's region layer with ``rescore=0``; with rescoring it
    is the IoU of the predicted box with the object).

    Args:
        pred: N×S×S×B×(5+C) predictions.
        target: N×S×S×B×(5+C) targets.

    Returns:
        A scalar, averaged over the N images.
    """
    obj = _objects(pred, target)
    return (pred[..., 4][obj] - 1).pow(2).sum() / len(pred)


def no_object_loss(pred: torch.Tensor, target: torch.Tensor, *,
                   lambda_noobj: float = LAMBDA_NOOBJ) -> torch.Tensor:
    """λ_noobj Σ_not responsible Ĉ², per image: confidence pushed to 0 where there is no object.

    Most anchors hold no object, so this term is down-weighted (0.5) to keep it from drowning
    the others. (Darknet also skips anchors whose box already overlaps an object by IoU > 0.6;
    that refinement is left out here.)

    Args:
        pred: N×S×S×B×(5+C) predictions.
        target: N×S×S×B×(5+C) targets.
        lambda_noobj: weight of the term.

    Returns:
        A scalar, averaged over the N images.
    """
    obj = _objects(pred, target)
    return lambda_noobj * pred[..., 4][~obj].pow(2).sum() / len(pred)


def class_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Σ_responsible Σ_c (p(c) − p̂(c))², per image: squared error of the class probabilities.

    YOLOv2 predicts classes per anchor (YOLOv1 per cell), so only responsible anchors count.

    Args:
        pred: N×S×S×B×(5+C) predictions, class probabilities after a softmax.
        target: N×S×S×B×(5+C) targets, one-hot classes.

    Returns:
        A scalar, averaged over the N images.
    """
    obj = _objects(pred, target)
    return (pred[obj][:, 5:] - target[obj][:, 5:]).pow(2).sum() / len(pred)


@dataclass(frozen=True)
class YoloLoss:
    """The four terms of the YOLOv2 loss (scalars, averaged over the images of a batch)."""

    coord: torch.Tensor
    obj: torch.Tensor
    noobj: torch.Tensor
    cls: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """The sum of the four terms: what to call ``backward()`` on."""
        return self.coord + self.obj + self.noobj + self.cls


def yolo_loss(pred: torch.Tensor, target: torch.Tensor, *, lambda_coord: float = LAMBDA_COORD,
              lambda_noobj: float = LAMBDA_NOOBJ) -> YoloLoss:
    """The YOLOv2 loss as a sum of squared errors, term by term.

    Tensor layout (``pred`` and ``target`` alike): N×S×S×B×(5+C), indexed
    ``[image, grid row (y), grid column (x), anchor, value]``; the last axis holds

    ====  =======================================================================================
    0, 1  x, y: the box centre as an offset within its cell, in [0, 1]
    2, 3  w, h: the box size as fractions of the image (pred decoded, anchor · exp(t), ≥ 0)
    4     objectness: pred a confidence in [0, 1]; target 1 where this anchor of this cell is
          responsible for an object (:func:`yolo_targets`), else 0
    5…    class probabilities: pred after a softmax, target one-hot
    ====  =======================================================================================

    Args:
        pred: the decoded predictions (e.g. ``decode(to_grid(raw, B), anchors)``).
        target: from :func:`yolo_targets`.
        lambda_coord: weight of :func:`coord_loss`.
        lambda_noobj: weight of :func:`no_object_loss`.

    Returns:
        The terms; ``.total`` is the loss.
    """
    return YoloLoss(coord_loss(pred, target, lambda_coord=lambda_coord),
                    object_loss(pred, target),
                    no_object_loss(pred, target, lambda_noobj=lambda_noobj),
                    class_loss(pred, target))


@dataclass(frozen=True)
class SizeErrorRow:
    """One box size, true against predicted, and what each form of the loss charges for it."""

    true: float
    predicted: float
    squared: float
    sqrt_squared: float

    @property
    def relative_error(self) -> float:
        """|predicted − true| / true."""
        return abs(self.predicted - self.true) / self.true


def size_error_table(pairs: Sequence[tuple[float, float]] = ((0.05, 0.10), (0.80, 0.85)),
                     ) -> list[SizeErrorRow]:
    """(v₁ − v₂)² against (√v₁ − √v₂)² for pairs of (true, predicted) widths or heights.

    The default pairs miss by the same 0.05 of the image: doubling a small box, 6 % on a large
    one. The plain square charges both alike; the square roots charge the small box's miss
    about ten times more, which is why YOLO regresses √w and √h.

    Args:
        pairs: (true, predicted) sizes as fractions of the image, non-negative.

    Returns:
        One :class:`SizeErrorRow` per pair.
    """
    rows = []
    for true, predicted in pairs:
        if not (true > 0 and predicted >= 0):
            raise ValueError(f"sizes must be true > 0 and predicted ≥ 0, got {(true, predicted)}")
        rows.append(SizeErrorRow(true, predicted, (true - predicted) ** 2,
                                 (math.sqrt(true) - math.sqrt(predicted)) ** 2))
    return rows
