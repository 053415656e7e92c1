"""Every viz function returns a Figure and draws nothing else."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from evakit import models, train, viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_to_hwc_accepts_every_layout():
    assert viz.to_hwc(torch.zeros(3, 8, 9)).shape == (8, 9, 3)
    assert viz.to_hwc(np.zeros((8, 9, 3), np.uint8)).shape == (8, 9, 3)
    assert viz.to_hwc(torch.zeros(1, 8, 9)).shape == (8, 9)
    assert viz.to_hwc(np.full((2, 2), 255, np.uint8)).max() == 1.0


def test_figures_are_returned():
    img = torch.randint(0, 255, (3, 16, 16), dtype=torch.uint8)
    model = models.create("s01/rf-net")
    history = train.History([1, 0.5], [50, 80], [0.9, 0.6], [60, 75], [0.1, 0.1], [1, 1])
    result = train.LRRangeResult([1e-4, 1e-3, 1e-2], [2.3, 2.0, 2.5])
    figures = [
        viz.image_grid([img, img], ["a", "b"]),
        viz.channels(img),
        viz.kernel_grid(model.features[0][0].weight),
        viz.feature_maps(model, model.features[0][0], torch.zeros(1, 1, 28, 28)),
        viz.curves({"run": history.to_dict()}),
        viz.lr_range(result),
        viz.matrix(torch.eye(3)),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert len(figures[3].axes) >= 16


def test_curves_draw_train_and_test_for_each_run():
    h = {"train_loss": [1, 0.5], "test_loss": [1.1, 0.7], "train_acc": [50, 70],
         "test_acc": [45, 65]}
    fig = viz.curves({"a": h, "b": h})
    assert [len(ax.lines) for ax in fig.axes] == [4, 4]


def test_bad_input_is_one_sentence():
    with pytest.raises(ValueError, match="colour image"):
        viz.channels(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="4-D conv weight"):
        viz.kernel_grid(nn.Linear(2, 2).weight)


def test_misclassified_shows_only_wrong_predictions_and_refuses_when_none():
    images = torch.rand(6, 3, 8, 8)
    preds, labels = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([0, 2, 2, 1, 4, 0])
    fig = viz.misclassified(images, preds, labels, [str(i) for i in range(6)])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["2 / 1", "1 / 3", "0 / 5"]
    with pytest.raises(ValueError, match="no misclassified"):
        viz.misclassified(images, labels, labels, [str(i) for i in range(6)])


def test_gradcam_gallery_refuses_a_feature_map_under_5_pixels():
    model = models.create("s07/resnet18")
    x = torch.randn(2, 3, 32, 32)
    fig = viz.gradcam_gallery(model, model.stages[2], x, torch.rand(2, 3, 32, 32), ["a", "b"])
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2
    with pytest.raises(ValueError, match="at least 5×5.*4×4"):
        viz.gradcam_gallery(model, model.stages[3], x, torch.rand(2, 3, 32, 32), ["a", "b"])


def _patches(fig, kind):
    return [p for p in fig.axes[0].patches if type(p).__name__ == kind]


def test_diagram_draws_every_box_and_arrow_with_their_labels():
    from evakit.viz import Arrow, Box

    boxes = {"x": Box("input\n1×28×28", 0, 0), "f": Box("conv 3×3", 1, 0),
             "s": Box("+", 2, 0, shape="circle"), "n": Box("number", 0, 1)}
    fig = viz.diagram(boxes, [("x", "f", "16 maps"), Arrow("f", "s"), ("n", "s"),
                              Arrow("x", "s", "skip", curve=-0.4)], title="a block")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"input\n1×28×28", "conv 3×3", "+", "number", "16 maps", "skip"} <= texts
    assert len(_patches(fig, "FancyArrowPatch")) == 4
    assert len(_patches(fig, "FancyBboxPatch")) == 3 and len(_patches(fig, "Ellipse")) == 1


def test_diagram_label_sits_in_the_gap_between_its_boxes():
    from evakit.viz import Box

    boxes = {"a": Box("a", 0, 0, width=0.9), "b": Box("b", 1, 0, width=0.5)}
    fig = viz.diagram(boxes, [("a", "b", "w")])
    label = next(t for t in fig.axes[0].texts if t.get_text() == "w")
    x, y = label.get_position()
    assert 0.45 < x < 0.75 and y == pytest.approx(0)        # between 0 + 0.45 and 1 − 0.25


def test_diagram_makes_room_for_a_curved_arrow():
    from evakit.viz import Arrow, Box

    boxes = {"a": Box("a", 0, 0), "b": Box("b", 1, 0), "c": Box("c", 2, 0)}
    flat = viz.diagram(boxes, [("a", "b"), ("b", "c")])
    skip = viz.diagram(boxes, [("a", "b"), ("b", "c"), Arrow("a", "c", curve=-0.5)])
    assert skip.get_size_inches()[1] > flat.get_size_inches()[1]
    assert skip.axes[0].get_ylim()[1] < flat.axes[0].get_ylim()[1]  # room above row 0


def test_diagram_bad_input_is_one_sentence():
    from evakit.errors import ArgumentError
    from evakit.viz import Box

    boxes = {"a": Box("a", 0, 0), "b": Box("b", 1, 0)}
    with pytest.raises(ArgumentError, match="no box is named 'c'"):
        viz.diagram(boxes, [("a", "c")])
    with pytest.raises(ArgumentError, match="arrow 0 must be"):
        viz.diagram(boxes, [("a",)])
    with pytest.raises(ArgumentError, match="shape 'star'"):
        viz.diagram({"a": Box("a", 0, 0, shape="star")}, [])
    with pytest.raises(ArgumentError, match="at least one box"):
        viz.diagram({}, [])
    with pytest.raises(ArgumentError, match="must be a viz.Box"):
        viz.diagram({"a": ("a", 0, 0)}, [])


def test_image_rows_draws_one_labelled_row_per_name():
    batch = torch.rand(8, 3, 8, 8)
    fig = viz.image_rows({"original": batch, "flipped": batch.flip(-1)}, cols=4)
    axes = fig.axes
    assert len(axes) == 8
    assert [axes[0].get_ylabel(), axes[4].get_ylabel()] == ["original", "flipped"]
