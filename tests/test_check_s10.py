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
