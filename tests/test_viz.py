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
    result = train.LRRangeResult([1e-4, 1e-3, 1e-2], [2.3, 2.0, 2.5], 1e-3)
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
