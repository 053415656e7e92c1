"""evakit.rf against hand-worked examples and published receptive fields."""

import pytest
import torch
import torchinfo
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck

from evakit import models, rf


def _final_rf(model: nn.Module, size=(3, 224, 224)):
    return rf.receptive_field(model, size)


def test_two_3x3_convs_see_5x5():
    table = rf.summary(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)), (1, 9, 9))
    assert table.column("RF")[1:3] == [3, 5]
    assert table.column("output")[1:3] == [(1, 7, 7), (1, 5, 5)]


def test_pooling_doubles_the_jump_and_dilation_spreads_the_kernel():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3),
                        nn.Conv2d(1, 1, 3, dilation=2))
    t = rf.summary(net, (1, 32, 32))
    assert t.column("jump")[1:5] == [1, 2, 2, 2]
    assert t.column("RF")[1:5] == [3, 4, 8, 16]   # 8 + (3-1)*2*2


def test_session1_400px_network_by_hand():
    # 4 convs (RF 9), pool (10, jump 2), 4 convs (+4*4 = 26), pool (28, jump 4): hand-worked.
    blocks = []
    for _ in range(2):
        blocks += [nn.Conv2d(1, 1, 3) for _ in range(4)] + [nn.MaxPool2d(2)]
    t = rf.summary(nn.Sequential(*blocks), (1, 400, 400))
    assert t.column("RF")[1:11] == [3, 5, 7, 9, 10, 14, 18, 22, 26, 28]
    assert t.column("output")[10] == (1, 94, 94)


def test_residual_merge_takes_the_widest_input():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))

        def forward(self, x):
            return x + self.body(x)

    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), Residual(), nn.Conv2d(1, 1, 1))
    assert rf.receptive_field(net, (1, 16, 16)) == 7


def test_transposed_convolution_halves_the_jump():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.ConvTranspose2d(1, 1, 4, stride=2))
    t = rf.summary(net, (1, 16, 16))
    assert t.column("jump")[1:3] == [2, 1]
    assert t.column("RF")[2] == 3 + (2 - 1) * 2   # each output sees ceil(4/2) = 2 inputs


def test_asymmetric_kernels_are_tracked_per_axis():
    t = rf.summary(nn.Sequential(nn.Conv2d(1, 1, (3, 1)), nn.Conv2d(1, 1, (3, 1))), (1, 8, 8))
    assert t.column("RF")[2] == (5, 1)


@pytest.mark.parametrize("name, published", [("alexnet", 195), ("vgg16", 212)])
def test_published_receptive_fields(name, published):
    # Araujo, Norris & Sim, Distill 2019, Table 1 (alexnet_v2: 195, vgg_16: 212). Only shapes
    # matter, so the network is built on the meta device: no weights are allocated.
    with torch.device("meta"):
        net = getattr(torchvision.models, name)()
    assert _final_rf(net.features) == published


def _slim_resnet50() -> nn.Sequential:
    """ResNet-50 laid out as TF-slim's resnet_v1_50: each block strides in its *last* unit."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    inplanes = 64
    for planes, units, stride in [(64, 3, 2), (128, 4, 2), (256, 6, 2), (512, 3, 1)]:
        for u in range(units):
            s = stride if u == units - 1 else 1
            down = None
            if s != 1 or inplanes != planes * 4:
                down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, s, bias=False),
                                     nn.BatchNorm2d(planes * 4))
            layers.append(Bottleneck(inplanes, planes, s, down))
            inplanes = planes * 4
    return nn.Sequential(*layers)


def test_resnet50_in_tf_slim_layout_matches_the_published_483():
    assert _final_rf(_slim_resnet50()) == 483


def test_torchvision_resnet50_strides_earlier_so_its_rf_is_smaller():
    net = torchvision.models.resnet50()
    trunk = nn.Sequential(*list(net.children())[:-2])     # up to layer4
    assert _final_rf(trunk) == 427


@pytest.mark.parametrize("build, size", [
    (lambda: torchvision.models.resnet18(), (3, 224, 224)),
    (lambda: models.create("s01/rf-net"), (1, 28, 28)),
    (lambda: models.create("s02/first-kernel", kernel=7), (1, 28, 28)),
])
def test_parameter_counts_agree_with_torchinfo(build, size):
    model = build()
    ours = rf.summary(model, size).rows[-1][-1]
    assert ours == torchinfo.summary(model, (1, *size), verbose=0).total_params


def test_table_prints_as_text_and_html():
    t = rf.summary(models.create("s01/rf-net"), (1, 28, 28))
    assert "RF" in str(t).splitlines()[1] and "<table" in t._repr_html_()


def test_bad_input_size_is_one_clear_error():
    with pytest.raises(ValueError, match="channels, height, width"):
        rf.summary(nn.Conv2d(1, 1, 3), (28, 28))


@pytest.mark.parametrize("n, k, s, p, d, expected", [
    (5, 3, 1, 0, 1, 3), (5, 3, 1, 1, 1, 5), (7, 3, 2, 1, 1, 4), (224, 7, 2, 3, 1, 112),
    (9, 3, 1, 0, 2, 5)])
def test_conv_output_size_matches_pytorch(n, k, s, p, d, expected):
    assert rf.conv_output_size(n, k, s, p, d) == expected
    assert nn.Conv2d(1, 1, k, s, p, d)(torch.zeros(1, 1, n, n)).shape[-1] == expected


def test_conv_output_size_rejects_nonsense():
    with pytest.raises(ValueError, match="does not fit"):
        rf.conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride"):
        rf.conv_output_size(5, 3, 0)
