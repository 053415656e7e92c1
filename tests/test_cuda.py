"""Every kind of recipe trains on a GPU, in fp32 and in bf16, and its record's evidence is
collected there (what a Colab runtime with a GPU does on every page).

Skipped where there is no CUDA (this course's CI has none); run it on a GPU machine with the real
data under EVAKIT_DATA: ``pytest tests/test_cuda.py``. FAST sizes, one epoch each.
"""

import pytest
import torch

from evakit import evidence, recipes, records, runner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")

# One recipe for each task, network and dataset the course trains (tiny-imagenet has no data
# offline), plus the practice variants that change the training step.
KINDS = ["s01/rf-net", "s02/kernel-3", "s25/digit-sum", "s03/assignment", "s04/code02",
         "s05/bn", "s05/bn-l1", "s06/cifar-net", "s07/resnet18", "s08/custom-resnet",
         "s08/speedrun",
         "s09/stn", "s09/ultimus", "s10/vit", "s11/gpt", "s11/gpt-sparse", "s11/gpt-bpe",
         "s11/bert", "s11/clip", "s12/plain", "s12/mixup", "s12/cutmix", "s12/randaugment",
         "s12/swa", "s12/lt-focal", "s12/lt-class-balanced", "s12/vehicles-10-finetune",
         "s12/vehicles-10-probe", "s12/early-stop"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", KINDS)
def test_recipe_trains_on_cuda_and_its_evidence_is_collected(name, precision):
    recipe = recipes.get(name)
    start = recipe.practice.init_from if recipe.practice else None
    if start and not records.path_for(start).is_file():
        pytest.skip(f"{name} starts from the record {start}, not here yet")
    done = runner.run(recipe, epochs=1, fast=True, device="cuda", precision=precision,
                      verbose=False)
    assert done.device.startswith("cuda") and done.precision == precision
    assert all(p.device.type == "cuda" for p in done.model.parameters())
    assert torch.isfinite(torch.tensor(done.history.train_loss)).all()
    evidence.collect(done, done.test_set)                 # what `evakit train --record` keeps
