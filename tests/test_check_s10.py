"""evakit.check grades session 10's assignment: a ViT written as classes, equal to the
nn.TransformerEncoderLayer formulation, trained on CIFAR-10 (the recorded run)."""

from dataclasses import replace

import torch
from torch import nn

from evakit import check, models, records
from evakit.models import vit
from evakit.train import History

RECORD = records.load("s10/vit")


def _failed(report: check.Report) -> set[str]:
    return {v.constraint for v in report.verdicts if not v.passed}


def test_the_committed_record_meets_every_constraint():
    report = check.grade("s10", RECORD)
    assert report.passed, str(report)
    assert len(report.verdicts) == 9 and "25 of 25 epochs" in str(report)


class Unplaced(vit.ViT):
    """The same parameters, but the position embeddings are never added."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def test_a_vit_that_is_not_the_reference_network_fails_on_its_outputs():
    report = check.grade("s10", model=Unplaced(dim=32, heads=2, depth=2))
    assert _failed(report) == {"same outputs once the weights are copied"}


def test_a_convnet_is_not_a_vit():
    failed = _failed(check.grade("s10", model=models.create("s10/convmixer")))
    assert {"a patch embedding: one convolution whose stride is its kernel",
            "a learned CLS token (1×1×D)", "encoder blocks (two LayerNorms and an attention "
            "each)", "same parameter count as the nn.TransformerEncoderLayer formulation"} \
        <= failed


def test_a_cut_short_or_small_run_fails_on_the_record():
    n = 20
    history = History([1.0] * n, [50.0] * n, [1.0] * n, [60.0] * n, [1e-3] * n, [1.0] * n)
    short = replace(RECORD, history=history)
    assert _failed(check.grade("s10", short)) == {"the training run finished"}
    small = replace(RECORD, data={**RECORD.data,
                                  "train": replace(RECORD.data["train"], size=2_000)})
    assert _failed(check.grade("s10", small)) == \
        {"trained on CIFAR-10 (50,000 training images)"}


def test_grading_leaves_the_model_in_training_mode():
    model = vit.ViT(dim=16, heads=2, depth=1).train()
    check.grade("s10", model=model)
    assert model.training and isinstance(model.head, nn.Linear)



class LearnerAttention(nn.Module):
    """Attention as a learner might write it: separate query, key and value maps, no biases."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (f(x).view(B, T, self.h, D // self.h).transpose(1, 2)
                   for f in (self.q, self.k, self.v))
        y = torch.softmax(q @ k.transpose(-2, -1) / (D // self.h) ** 0.5, -1) @ v
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class TorchAttention(nn.MultiheadAttention):
    """Self-attention from PyTorch's own layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x, x, x, need_weights=False)[0]


class LearnerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, torch_attention: bool) -> None:
        super().__init__()
        self.ln_a = nn.LayerNorm(dim, eps=1e-6)
        self.mix = (TorchAttention(dim, heads, batch_first=True) if torch_attention
                    else LearnerAttention(dim, heads))
        self.ln_b = nn.LayerNorm(dim, eps=1e-6)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mix(self.ln_a(x))
        return x + self.ff(self.ln_b(x))


class LearnerViT(nn.Module):
    """A ViT written without any of evakit's names: 8×8 patches, 16 tokens and a CLS token."""

    def __init__(self, dim: int = 32, heads: int = 2, depth: int = 2,
                 torch_attention: bool = False) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 8, stride=8)
        self.start = nn.Parameter(torch.randn(1, 1, dim))
        self.where = nn.Parameter(torch.randn(1, 17, dim))
        self.layers = nn.Sequential(*(LearnerBlock(dim, heads, torch_attention)
                                      for _ in range(depth)))
        self.final = nn.LayerNorm(dim, eps=1e-6)
        self.classify = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.start.expand(len(x), -1, -1), x], dim=1) + self.where
        return self.classify(self.final(self.layers(x))[:, 0])


def test_a_learners_vit_with_its_own_names_is_recognised_by_its_structure():
    torch.manual_seed(0)
    report = check.grade("s10", model=LearnerViT(heads=4))
    # q, k and v without biases: 3·32 parameters fewer per block than PyTorch's layer
    assert _failed(report) == {"same parameter count as the nn.TransformerEncoderLayer "
                               "formulation"}, str(report)
    assert "with 4 heads" in str(report)
    blocks = next(v for v in report.verdicts if v.constraint.startswith("encoder blocks"))
    assert blocks.measured == "2"
    torch.manual_seed(0)
    report = check.grade("s10", model=LearnerViT(heads=2, torch_attention=True))
    assert report.passed, str(report)
    assert "with 2 heads" in str(report)


def test_a_learners_vit_without_its_cls_token_names_what_is_missing():
    model = LearnerViT()
    del model.start
    model.start = torch.zeros(1, 1, 32)                  # a constant, not a parameter
    report = check.grade("s10", model=model)
    assert "the CLS token" in str(report) and not report.passed


class ReorderedAttention(LearnerAttention):
    """The same attention with its maps assigned in another order than they are called."""

    def __init__(self, dim: int, heads: int) -> None:
        nn.Module.__init__(self)
        self.h = heads
        self.out = nn.Linear(dim, dim)
        self.v, self.k, self.q = (nn.Linear(dim, dim, bias=False) for _ in range(3))


class ReorderedBlock(LearnerBlock):
    """The MLP assigned before the attention, the attention's maps in reverse."""

    def __init__(self, dim: int, heads: int, torch_attention: bool) -> None:
        nn.Module.__init__(self)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ln_a = nn.LayerNorm(dim, eps=1e-6)
        self.mix = ReorderedAttention(dim, heads)
        self.ln_b = nn.LayerNorm(dim, eps=1e-6)


def test_the_parts_are_read_in_the_order_the_forward_pass_calls_them():
    torch.manual_seed(0)
    model = LearnerViT(heads=4)
    model.layers = nn.Sequential(*(ReorderedBlock(32, 4, False) for _ in range(2)))
    report = check.grade("s10", model=model)
    outputs = next(v for v in report.verdicts if v.constraint.startswith("same outputs"))
    assert outputs.passed and "with 4 heads" in outputs.measured, str(report)


def test_an_extra_token_table_beside_the_position_embeddings_is_named_not_mistaken():
    model = LearnerViT()
    model.registers = nn.Parameter(torch.zeros(1, 4, 32))     # 1×4×D, never used
    report = check.grade("s10", model=model)
    position = next(v for v in report.verdicts if v.constraint.startswith("learned position"))
    assert position.passed and "registers (1, 4, 32)" in position.measured
    assert "found 2" in str(report) and not report.passed    # which one is the position table?
