import json
import math

import pytest
import torch
import torchvision
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from evakit import data, detect
from evakit.errors import ArgumentError, DataError

DETECTION = data.data_root() / "detection"
TACO = DETECTION / "taco" / "annotations.json"
COCO128 = DETECTION / "coco128"
COCO128_OFFICIAL = COCO128 / "official" / "instances_train2017_first128.json"
COCO128_FROM_YOLO = COCO128 / "coco128_train2017_from_yolo.json"
needs_taco = pytest.mark.skipif(not TACO.is_file(), reason=f"TACO not under {DETECTION}")
needs_coco128 = pytest.mark.skipif(not COCO128_OFFICIAL.is_file(),
                                   reason=f"COCO128 not under {DETECTION}")


def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------------------------------- IoU

@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 1, 1], [2, 2, 3, 3], 0.0),                # disjoint
    ([0, 0, 4, 4], [1, 1, 2, 2], 1 / 16),             # nested: inner area / outer area
    ([0, 0, 1, 1], [1, 0, 2, 1], 0.0),                # sharing an edge
    ([0, 0, 1, 1], [1, 1, 2, 2], 0.0),                # sharing a corner
    ([0, 0, 2, 3], [0, 0, 2, 3], 1.0),                # identical
    ([0, 0, 2, 2], [1, 1, 3, 3], 1 / 7),              # overlap 1×1, union 4 + 4 − 1
    ([0, 0, 4, 2], [2, -1, 6, 1], 2 / 14),            # overlap 2×1, union 8 + 8 − 2
])
def test_box_iou_hand_cases(a, b, expected):
    assert detect.box_iou(boxes(a), boxes(b)).item() == pytest.approx(expected)
    assert detect.box_iou(boxes(b), boxes(a)).item() == pytest.approx(expected)


def test_box_iou_is_pairwise_and_agrees_with_torchvision():
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(7, 2, generator=g) * 10
    a = torch.cat([corners, corners + 0.5 + torch.rand(7, 2, generator=g) * 5], 1)
    corners = torch.rand(5, 2, generator=g) * 10
    b = torch.cat([corners, corners + 0.5 + torch.rand(5, 2, generator=g) * 5], 1)
    iou = detect.box_iou(a, b)
    assert iou.shape == (7, 5)
    assert torch.allclose(iou, torchvision.ops.box_iou(a, b))
    assert iou.gt(0).any() and iou.eq(0).any()    # the random boxes test both cases


def test_wh_iou_hand_cases_and_pairwise_shape():
    a = boxes([2, 2], [2, 1])
    b = boxes([1, 1], [1, 2], [2, 1])
    iou = detect.wh_iou(a, b)
    assert iou.shape == (2, 3)
    expected = boxes([1 / 4, 2 / 4, 2 / 4],        # a small shape inside a large one
                     [1 / 2, 1 / 3, 1.0])          # 2×1 against 1×2: overlap 1, union 3
    assert torch.allclose(iou, expected)


@pytest.mark.parametrize("bad, words", [
    ([0, 0, 0, 1], "positive width and height"),     # zero width
    ([0, 2, 1, 1], "positive width and height"),     # negative height
    ([0, 0, math.nan, 1], "finite"),
    ([0, 0, math.inf, 1], "finite"),
])
def test_degenerate_corner_boxes_are_refused_in_one_sentence(bad, words):
    with pytest.raises(ValueError, match=words) as err:
        detect.box_iou(boxes([0, 0, 1, 1]), boxes([0, 0, 1, 1], bad))
    message = str(err.value)
    assert message.startswith("b ") and "box 1" in message and message.count(". ") == 0


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-1.0, 1.0], [math.nan, 1.0]])
def test_degenerate_shapes_are_refused(bad):
    with pytest.raises(ValueError, match="box 0"):
        detect.wh_iou(boxes(bad), boxes([1, 1]))


def test_wrong_layout_is_refused():
    with pytest.raises(ValueError, match="N×4"):
        detect.box_iou(boxes([0, 0, 1]), boxes([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="float tensor"):
        detect.wh_iou(torch.tensor([[1, 1]]), boxes([1, 1]))


# --------------------------------------------------------------------------- COCO annotations

def write_coco(path, **overrides):
    coco = {
        "images": [{"id": 1, "width": 200, "height": 100}, {"id": 5, "width": 50, "height": 50},
                   {"id": 9, "width": 10, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [20, 10, 100, 50]},
            {"id": 2, "image_id": 5, "category_id": 3, "bbox": [0, 25, 25, 25], "iscrowd": 0},
            {"id": 3, "image_id": 5, "category_id": 7, "bbox": [0, 0, 50, 50], "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "bottle"},
                       {"id": 4, "name": "unused"}],
    }
    coco.update(overrides)
    path.write_text(json.dumps(coco))
    return path


def test_read_coco_normalises_each_box_by_its_own_image(tmp_path):
    ann = detect.read_coco(write_coco(tmp_path / "a.json"))
    assert len(ann) == 2                                   # the crowd box is left out
    assert ann.classes == ["bottle", "unused", "cat"]      # in category-id order: 3, 4, 7
    assert ann.image_ids.tolist() == [1, 5]
    assert ann.category_ids.tolist() == [7, 3]
    assert ann.labels.tolist() == [2, 0]
    assert ann.names == ["cat", "bottle"]
    assert torch.allclose(ann.boxes, boxes([0.1, 0.1, 0.5, 0.5], [0.0, 0.5, 0.5, 0.5]))
    assert torch.equal(ann.wh, ann.boxes[:, 2:])
    assert ann.image_sizes == {1: (200, 100), 5: (50, 50), 9: (10, 10)}


def test_read_coco_can_keep_crowd_boxes(tmp_path):
    ann = detect.read_coco(write_coco(tmp_path / "a.json"), include_crowd=True)
    assert ann.image_ids.tolist() == [1, 5, 5] and ann.wh[2].tolist() == [1.0, 1.0]


def test_class_counts_include_empty_classes(tmp_path):
    ann = detect.read_coco(write_coco(tmp_path / "a.json"), include_crowd=True)
    assert detect.class_counts(ann) == {"bottle": 1, "unused": 0, "cat": 2}


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(DataError, match="not valid JSON") as err:
        detect.read_coco(path)
    assert str(path) in str(err.value) and "COCO" in str(err.value)


@pytest.mark.parametrize("content", ['[1, 2]', '{"images": [], "annotations": []}',
                                     '{"images": {}, "annotations": [], "categories": []}'])
def test_json_that_is_not_coco_names_the_file(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(DataError, match="is not a COCO annotation file") as err:
        detect.read_coco(path)
    assert str(path) in str(err.value) and "'categories'" in str(err.value)


def test_file_without_boxes_names_the_file(tmp_path):
    path = write_coco(tmp_path / "empty.json", annotations=[])
    with pytest.raises(DataError, match="holds no boxes") as err:
        detect.read_coco(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("annotation, words", [
    ({"id": 4, "image_id": 2, "category_id": 3, "bbox": [0, 0, 1, 1]}, "image 2"),
    ({"id": 4, "image_id": 1, "category_id": 8, "bbox": [0, 0, 1, 1]}, "category 8"),
    ({"id": 4, "image_id": 1, "category_id": 3, "bbox": [0, 0, 0, 1]}, "positive width"),
    ({"id": 4, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1]}, r"bbox \[x, y, w, h\]"),
    ({"id": 4, "image_id": 1, "category_id": 3}, "bbox"),
])
def test_bad_annotation_is_named(tmp_path, annotation, words):
    path = write_coco(tmp_path / "a.json", annotations=[annotation])
    with pytest.raises(DataError, match=words) as err:
        detect.read_coco(path)
    assert str(path) in str(err.value) and "annotation 4" in str(err.value)


def test_class_distribution_figure_ranks_classes(tmp_path):
    fig = detect.plot_class_counts({"bottle": 1, "unused": 0, "cat": 2}, title="boxes")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["unused", "bottle", "cat"]
    assert [p.get_width() for p in ax.patches] == [0, 1, 2]
    top = detect.plot_class_counts({"bottle": 1, "unused": 0, "cat": 2}, top=1)
    assert [t.get_text() for t in top.axes[0].get_yticklabels()] == ["cat"]


@needs_taco
def test_real_taco_matches_its_readme():
    ann = detect.read_coco(TACO)
    assert (len(ann), len(ann.image_sizes), len(ann.classes)) == (4784, 1500, 60)
    assert (ann.wh > 0).all() and (ann.boxes[:, :2] + ann.wh <= 1 + 1e-9).all()
    assert sum(detect.class_counts(ann).values()) == 4784


@needs_coco128
def test_real_coco128_official_boxes_match_the_yolo_labels():
    official = detect.read_coco(COCO128_OFFICIAL)
    converted = detect.read_coco(COCO128_FROM_YOLO)
    # README: 929 non-crowd boxes (10 crowd boxes more in the official file), person 254.
    assert len(official) == len(converted) == 929
    assert len(detect.read_coco(COCO128_OFFICIAL, include_crowd=True)) == 939
    assert detect.class_counts(official) == detect.class_counts(converted)
    assert detect.class_counts(official)["person"] == 254
    # The YOLO label file of image 9 holds (class, cx, cy, w, h) normalised by the same sizes.
    lines = (COCO128 / "labels" / "train2017" / "000000000009.txt").read_text().split("\n")
    yolo = torch.tensor([[float(v) for v in line.split()[3:]] for line in lines if line])
    mine = official.wh[official.image_ids == 9]
    assert len(mine) == len(yolo)
    distance = torch.cdist(yolo.double(), mine)
    assert distance.min(1).values.max() < 1e-5


# ------------------------------------------------------------------------ anchors by k-means

def three_shapes(n_each=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = boxes([0.05, 0.08], [0.3, 0.15], [0.6, 0.7])
    jitter = 1 + 0.05 * (torch.rand(3 * n_each, 2, generator=g, dtype=torch.float64) - 0.5)
    return centres.repeat_interleave(n_each, 0) * jitter, centres


def test_kmeans_recovers_well_separated_shapes_sorted_by_area():
    wh, centres = three_shapes()
    fit = detect.kmeans_anchors(wh, 3, seed=0)
    assert fit.k == 3 and fit.anchors.shape == (3, 2)
    assert torch.allclose(fit.anchors, centres, rtol=0.02)
    assert (fit.anchors.prod(1).diff() > 0).all()
    assert fit.assignment.tolist() == [0] * 40 + [1] * 40 + [2] * 40
    assert fit.mean_iou > 0.95


def test_kmeans_on_exactly_k_shapes_finds_them_with_iou_one():
    wh = boxes([0.5, 0.5], [0.1, 0.4], [0.1, 0.4], [0.2, 0.1])
    fit = detect.kmeans_anchors(wh, 3, seed=3)
    assert torch.equal(fit.anchors, boxes([0.2, 0.1], [0.1, 0.4], [0.5, 0.5]))
    assert fit.mean_iou == 1.0


@needs_taco
def test_kmeans_on_taco_is_a_fixed_point_and_deterministic():
    wh = detect.read_coco(TACO).wh
    fit = detect.kmeans_anchors(wh, 5, seed=1)
    # Converged Lloyd: each anchor is the mean shape of the boxes it serves best.
    for j in range(5):
        assert torch.allclose(fit.anchors[j], wh[fit.assignment == j].mean(0))
    best = detect.wh_iou(wh, fit.anchors).max(1)
    assert torch.equal(fit.best_iou, best.values) and torch.equal(fit.assignment, best.indices)
    assert fit.mean_iou == pytest.approx(best.values.mean().item())
    again = detect.kmeans_anchors(wh, 5, seed=1)
    assert torch.equal(fit.anchors, again.anchors)


@needs_taco
def test_anchor_curve_on_taco_rises_with_k():
    curve = detect.anchor_curve(detect.read_coco(TACO).wh, ks=(1, 3, 5, 7))
    assert list(curve) == [1, 3, 5, 7]
    values = list(curve.values())
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert 0 < values[0] and values[-1] < 1


def test_k_larger_than_the_distinct_shapes_is_refused():
    with pytest.raises(ArgumentError, match=r"distinct box shapes \(2\), got 3"):
        detect.kmeans_anchors(boxes([1, 1], [1, 1], [2, 1]), 3)
    with pytest.raises(ValueError, match="positive width and height"):
        detect.kmeans_anchors(boxes([1, 1], [0, 1]), 1)


def test_anchor_figures():
    wh, _ = three_shapes()
    curve = detect.anchor_curve(wh, ks=(1, 2, 3))
    fig = detect.plot_anchor_curve(curve, title="mean IoU")
    assert isinstance(fig, Figure)
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == list(curve.values())
    anchors = detect.kmeans_anchors(wh, 3).anchors
    fig = detect.plot_anchors(anchors)
    rects = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert [(r.get_width(), r.get_height()) for r in rects] == [tuple(a) for a in anchors.tolist()]
    # Centred in the unit square.
    assert all(r.get_x() + r.get_width() / 2 == pytest.approx(0.5) for r in rects)


def test_anchors_report_prints_one_row_per_k(tmp_path):
    path = write_coco(tmp_path / "a.json", annotations=[
        {"id": i, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10 * i, 5 * i]}
        for i in range(1, 8)])
    report = detect.anchors_report(path, ks=(2, 3), seed=0)
    text = str(report)
    lines = text.splitlines()
    assert str(path) in lines[0] and "7 boxes in 3 images, 3 classes" in lines[0]
    assert lines[-2].startswith(" 2  ") and lines[-1].startswith(" 3  ")
    assert f"{report.fits[3].mean_iou:8.4f}" in lines[-1]
    w, h = report.fits[3].anchors[0].tolist()
    assert f"({w:.3f}, {h:.3f})" in lines[-1]
    assert len(report.figure().axes) == 2


def test_anchors_report_on_a_bad_file_says_which(tmp_path):
    (tmp_path / "x.json").write_text("nope")
    with pytest.raises(DataError, match="x.json is not valid JSON"):
        detect.anchors_report(tmp_path / "x.json")
    with pytest.raises(ArgumentError, match="ks must name"):
        detect.anchors_report(write_coco(tmp_path / "a.json"), ks=())


# ------------------------------------------------------------------------------- YOLOv2 loss

ANCHORS = torch.tensor([[0.1, 0.1], [0.4, 0.2]])
S, B, C = 2, 2, 3
ROW, COL, ANCHOR = 1, 0, 1      # where the one object of the hand case lands


def one_object_target():
    # class 2, centre (0.25, 0.75), size 0.36 × 0.16: cell row 1, col 0; anchor 1 (IoU 0.72
    # against 0.17 for anchor 0).
    return detect.yolo_targets([torch.tensor([[2, 0.25, 0.75, 0.36, 0.16]])], ANCHORS, S, C)


def test_targets_put_the_object_in_its_cell_and_best_anchor():
    target = one_object_target()
    assert target.shape == (1, S, S, B, 5 + C)
    assert target[0, ROW, COL, ANCHOR].tolist() == pytest.approx(
        [0.5, 0.5, 0.36, 0.16, 1, 0, 0, 1])
    assert target.sum() == pytest.approx(sum([0.5, 0.5, 0.36, 0.16, 1, 1]))


def test_perfect_prediction_has_zero_loss():
    target = one_object_target()
    loss = detect.yolo_loss(target.clone(), target)
    assert [loss.coord.item(), loss.obj.item(), loss.noobj.item(), loss.cls.item()] == [0] * 4
    assert loss.total.item() == 0


def hand_prediction():
    pred = one_object_target()
    pred[0, ROW, COL, ANCHOR, :4] = torch.tensor([0.6, 0.3, 0.25, 0.09])
    pred[0, ROW, COL, ANCHOR, 4] = 0.7
    pred[0, ROW, COL, ANCHOR, 5:] = torch.tensor([0.1, 0.2, 0.7])
    pred[0, 0, 0, 0, 4] = pred[0, 1, 1, 1, 4] = 0.2
    return pred


def test_coordinate_term_by_hand():
    # 5 · [(0.6 − 0.5)² + (0.3 − 0.5)² + (√0.25 − √0.36)² + (√0.09 − √0.16)²] = 5 · 0.07
    assert detect.coord_loss(hand_prediction(), one_object_target()).item() == \
        pytest.approx(0.35)


def test_objectness_term_by_hand():
    assert detect.object_loss(hand_prediction(), one_object_target()).item() == \
        pytest.approx((1 - 0.7) ** 2)


def test_no_object_term_by_hand():
    assert detect.no_object_loss(hand_prediction(), one_object_target()).item() == \
        pytest.approx(0.5 * (0.2**2 + 0.2**2))


def test_class_term_by_hand():
    assert detect.class_loss(hand_prediction(), one_object_target()).item() == \
        pytest.approx(0.1**2 + 0.2**2 + 0.3**2)


def test_total_and_batch_average():
    target, pred = one_object_target(), hand_prediction()
    assert detect.yolo_loss(pred, target).total.item() == pytest.approx(0.35 + 0.09 + 0.04 + 0.14)
    doubled = detect.yolo_loss(torch.cat([pred, pred]), torch.cat([target, target]))
    assert doubled.total.item() == pytest.approx(0.62)


def test_anchors_without_objects_only_pay_for_objectness():
    target, pred = one_object_target(), hand_prediction()
    noisy = pred.clone()
    noisy[0, 0, 1, 0, :4] = torch.tensor([0.9, 0.9, 0.8, 0.8])
    noisy[0, 0, 1, 0, 5:] = torch.tensor([1.0, 0.0, 0.0])
    before, after = detect.yolo_loss(pred, target), detect.yolo_loss(noisy, target)
    assert (after.coord, after.obj, after.noobj, after.cls) == \
        (before.coord, before.obj, before.noobj, before.cls)


def test_loss_matches_a_loop_over_cells_on_random_numbers():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 3, 2, 5 + 4, generator=g)
    target = torch.rand(2, 3, 3, 2, 5 + 4, generator=g)
    target[..., 4] = (torch.rand(2, 3, 3, 2, generator=g) < 0.3).float()
    loss = detect.yolo_loss(pred, target, lambda_coord=2.0, lambda_noobj=0.25)
    terms = [0.0] * 4
    for index in torch.cartesian_prod(*(torch.arange(n) for n in target.shape[:4])).tolist():
        p, t = pred[tuple(index)].tolist(), target[tuple(index)].tolist()
        if t[4] == 1:
            centre = (p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2
            size = (p[2] ** 0.5 - t[2] ** 0.5) ** 2 + (p[3] ** 0.5 - t[3] ** 0.5) ** 2
            terms[0] += 2.0 * (centre + size)
            terms[1] += (p[4] - 1) ** 2
            terms[3] += sum((a - b) ** 2 for a, b in zip(p[5:], t[5:], strict=True))
        else:
            terms[2] += 0.25 * p[4] ** 2
    got = [loss.coord.item(), loss.obj.item(), loss.noobj.item(), loss.cls.item()]
    assert got == pytest.approx([x / 2 for x in terms], rel=1e-5)


def test_raw_head_output_decodes_into_the_loss_layout():
    raw = torch.zeros(1, B * (5 + C), S, S, requires_grad=True)
    grid = detect.to_grid(raw, B)
    assert grid.shape == (1, S, S, B, 5 + C)
    marked = torch.arange(B * (5 + C) * S * S, dtype=torch.float32).view(1, -1, S, S)
    # Channel b·(5+C)+v at row i, column j is value v of anchor b in cell (i, j).
    assert detect.to_grid(marked, B)[0, 1, 0, 1, 3] == marked[0, 1 * (5 + C) + 3, 1, 0]
    pred = detect.decode(grid, ANCHORS)
    assert torch.allclose(pred[0, 0, 0, :, :2], torch.full((B, 2), 0.5))
    assert torch.allclose(pred[0, 0, 0, :, 2:4], ANCHORS)
    assert torch.allclose(pred[..., 5:], torch.full((1, S, S, B, C), 1 / C))
    detect.yolo_loss(pred, one_object_target()).total.backward()
    assert torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0


def test_loss_refuses_mismatched_tensors_and_negative_sizes():
    target = one_object_target()
    with pytest.raises(ValueError, match="N×S×S×B×"):
        detect.yolo_loss(target[..., :7], target)
    pred = target.clone()
    pred[0, ROW, COL, ANCHOR, 2] = -0.1
    with pytest.raises(ValueError, match="w and h must be ≥ 0"):
        detect.coord_loss(pred, target)
    with pytest.raises(ValueError, match="class ids 0…2"):
        detect.yolo_targets([torch.tensor([[3, 0.5, 0.5, 0.1, 0.1]])], ANCHORS, S, C)


def test_square_roots_charge_small_boxes_more():
    small, large = detect.size_error_table()
    # The same miss of 0.05 costs the same without square roots...
    assert small.squared == pytest.approx(0.0025) and large.squared == pytest.approx(0.0025)
    # ...and (√0.05 − √0.10)² = 0.15 − 2√0.005 against (√0.80 − √0.85)² = 1.65 − 2√0.68 with.
    assert small.sqrt_squared == pytest.approx(0.15 - 2 * math.sqrt(0.005))
    assert large.sqrt_squared == pytest.approx(1.65 - 2 * math.sqrt(0.68))
    assert small.sqrt_squared > 10 * large.sqrt_squared
    assert small.relative_error == pytest.approx(1.0)
    with pytest.raises(ValueError, match="true > 0"):
        detect.size_error_table([(0.0, 0.1)])
