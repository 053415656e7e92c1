"""Session 9: position encodings, the ULTIMUS block and network, the spatial transformer, the
s09 grader and the two recipes."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from evakit import check, data, models, recipes, records, runner
from evakit.errors import ArgumentError
from evakit.models.attention import (
    SpatialTransformer,
    Ultimus,
    UltimusNet,
    sinusoidal_encoding,
    sinusoidal_encoding_2d,
)
from evakit.train import History

# --- position encodings --------------------------------------------------------------------


def test_sinusoidal_encoding_is_the_papers_formula():
    T, d = 50, 16
    code = sinusoidal_encoding(T, d)
    for p in (0, 1, 7, 49):
        for i in range(d // 2):
            angle = p / 10_000 ** (2 * i / d)
            assert code[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert code[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_a_shift_of_k_positions_is_one_rotation_of_every_channel_pair():
    T, d, k = 40, 8, 5
    code = sinusoidal_encoding(T + k, d)
    frequency = 10_000 ** (-torch.arange(0, d, 2) / d)
    cos, sin = torch.cos(k * frequency), torch.sin(k * frequency)
    s, c = code[:T, 0::2], code[:T, 1::2]
    # sin(a + b) = sin a cos b + cos a sin b;  cos(a + b) = cos a cos b − sin a sin b
    assert torch.allclose(code[k:, 0::2], s * cos + c * sin, atol=1e-4)
    assert torch.allclose(code[k:, 1::2], c * cos - s * sin, atol=1e-4)


def test_2d_encoding_is_a_row_code_beside_a_column_code():
    code = sinusoidal_encoding_2d(5, 7, 16)
    assert code.shape == (5, 7, 16)
    assert torch.equal(code[3, 4, :8], sinusoidal_encoding(5, 8)[3])
    assert torch.equal(code[3, 4, 8:], sinusoidal_encoding(7, 8)[4])
    assert len({tuple(v.tolist()) for v in code.reshape(-1, 16)}) == 35   # all distinct


@pytest.mark.parametrize("args", [(0, 8), (10, 7), (10, 0)])
def test_bad_encoding_sizes_are_one_sentence(args):
    with pytest.raises(ArgumentError, match="positions must be"):
        sinusoidal_encoding(*args)
    with pytest.raises(ArgumentError, match="multiple of 4"):
        sinusoidal_encoding_2d(4, 4, 6)


# --- ULTIMUS -------------------------------------------------------------------------------


def test_ultimus_computes_the_spec_for_each_image_by_hand():
    torch.manual_seed(0)
    block = Ultimus(48, 8)
    x = torch.randn(5, 48)
    out = block(x)
    for b in range(5):
        q = x[b] @ block.q.weight.T + block.q.bias        # 8
        k = x[b] @ block.k.weight.T + block.k.bias
        v = x[b] @ block.v.weight.T + block.v.bias
        qt_k = q[:, None] @ k[None, :]                    # Qᵀ (8×1) · K (1×8) = 8×8
        am = torch.exp(qt_k) / torch.exp(qt_k).sum(1, keepdim=True) / math.sqrt(8)
        z = v[None, :] @ am                               # V (1×8) · AM (8×8) = 1×8
        expected = z[0] @ block.out.weight.T + block.out.bias
        assert torch.allclose(out[b], expected, atol=1e-5)


def test_ultimus_attention_rows_sum_to_one_over_root_8_and_images_stay_apart():
    torch.manual_seed(1)
    block = Ultimus()
    x = torch.randn(6, 48)
    am = block.attention_map(x)
    assert am.shape == (6, 8, 8)
    assert torch.allclose(am.sum(-1), torch.full((6, 8), 1 / math.sqrt(8)))
    alone = torch.cat([block(x[i:i + 1]) for i in range(6)])
    assert torch.allclose(block(x), alone, atol=1e-6)   # no image sees another's K, Q, V


def test_ultimus_net_shapes_and_its_embedding():
    net = UltimusNet().eval()
    x = torch.randn(2, 3, 32, 32)
    assert net.embed(x).shape == (2, 48) and net(x).shape == (2, 10)
    assert models.count_parameters(net.blocks[0]) == 3 * (48 * 8 + 8) + 8 * 48 + 48


def _spread_after_blocks(residual: bool) -> float:
    """How much the images' vectors differ after the four blocks, relative to before them."""
    torch.manual_seed(0)
    net = UltimusNet(residual=residual).eval()
    with torch.no_grad():
        h = net.embed(torch.randn(64, 3, 32, 32))
        before = h.std(0).mean()
        for block in net.blocks:
            h = h + block(h) if residual else block(h)
    return float(h.std(0).mean() / before)


def test_bare_blocks_wash_out_the_differences_between_images_and_residuals_keep_them():
    assert _spread_after_blocks(residual=False) < 1e-3
    assert _spread_after_blocks(residual=True) > 0.5


# --- the spatial transformer ---------------------------------------------------------------


def test_spatial_transformer_starts_as_the_identity():
    stn = SpatialTransformer(1, 28)
    x = torch.rand(3, 1, 28, 28)
    theta = stn.theta(x)
    assert torch.allclose(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(3, 2, 3))
    with torch.no_grad():
        assert torch.allclose(stn(x), x, atol=1e-5)      # float rounding of the grid only


def test_spatial_transformer_applies_the_theta_it_predicts():
    stn = SpatialTransformer(1, 28)
    shift = torch.tensor([[1.0, 0, 2 / 28 * 2], [0, 1, 0]])     # sample 2 pixels to the right
    with torch.no_grad():
        stn.theta_head[2].bias.copy_(shift.flatten())
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 12] = 1.0
    with torch.no_grad():
        moved = stn(x)
    assert moved[0, 0, 10, 10].item() == pytest.approx(1.0, abs=1e-5)
    assert moved.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_stn_net_trains_on_synthetic_digits():
    recipe = replace(recipes.get("s09/stn"), rotation=0.0, shift=0.0, scale=0.0, batch_size=32)
    done = runner.run(recipe, epochs=2, fast=False, device="cpu", verbose=False,
                      train_set=data.synthetic("synthetic-mnist", 256, seed=1),
                      test_set=data.synthetic("synthetic-mnist", 128, seed=2, split="test"))
    assert done.history.test_acc[-1] > 50                  # chance is 10 %
    assert hasattr(done.model, "warp")


# --- recipes -------------------------------------------------------------------------------


def test_the_assignment_recipe_is_24_epochs_one_cycle_adam_on_cifar10_in_bf16():
    r = recipes.get("s09/ultimus")
    assert (r.dataset, r.epochs, r.scheduler, r.optimizer, r.precision) == \
        ("cifar10", 24, "onecycle", "adam", None)
    assert check.grade("s09", model=r.build_model()).passed


def test_the_stn_is_small_enough_to_keep_its_weights():
    assert models.count_parameters(recipes.get("s09/stn").build_model()) <= records.MAX_WEIGHTS


# --- the grader ----------------------------------------------------------------------------

TEMPLATE = records.load("s03/assignment")


def _record(epochs=24, **config) -> records.Record:
    """A record of ``epochs`` epochs of s09/ultimus (the rest from a committed record)."""
    history = History([1.0] * epochs, [60.0] * epochs, [1.1] * epochs, [55.0] * epochs,
                      [0.01] * epochs, [1.0] * epochs)
    base = recipes.get("s09/ultimus").config()
    return replace(TEMPLATE, recipe="s09/ultimus", history=history,
                   config={**base, **config})


def _failed(report) -> set[str]:
    return {v.constraint for v in report.verdicts if not v.passed}


def test_s09_passes_the_recipe_and_the_bare_stack():
    assert check.grade("s09", _record()).passed
    assert check.grade("s09", model=UltimusNet(residual=False)).passed


def test_s09_reads_epochs_schedule_and_optimizer_from_the_record():
    assert _failed(check.grade("s09", _record(epochs=20))) == {"24 epochs"}
    assert _failed(check.grade("s09", _record(optimizer="sgd"))) == {"Adam optimizer"}
    assert _failed(check.grade("s09", _record(scheduler="step"))) == {"one-cycle schedule"}


def test_s09_checks_the_blocks_the_convolutions_and_the_head():
    assert _failed(check.grade("s09", model=UltimusNet(blocks=3))) == {"four ULTIMUS blocks"}
    assert _failed(check.grade("s09", model=UltimusNet(inner=16))) == \
        {"every block: K 48 → 8, Q 48 → 8, V 48 → 8, out 8 → 48"}
    wide = _failed(check.grade("s09", model=UltimusNet(widths=(16, 32, 64))))
    assert {"three convolutions, 3 → … → 48 channels", "one final FC 48 → 10"} <= wide


def test_s09_accounts_for_every_parameter():
    net = UltimusNet()
    net.extra = nn.Parameter(torch.zeros(5))
    assert _failed(check.grade("s09", model=net)) == \
        {"parameters: all in the convolutions, the blocks and the final FC"}
    four = next(v for v in check.grade("s09", model=UltimusNet()).verdicts
                if v.constraint.startswith("parameters"))
    assert "6,432 in 4 ULTIMUS blocks" in four.measured


def test_s09_on_another_network_fails_and_says_why():
    report = check.grade("s09", model=models.create("s06/cifar-net"))
    assert {"four ULTIMUS blocks", "three convolutions, 3 → … → 48 channels"} <= _failed(report)
    assert "failed:" in str(report)
