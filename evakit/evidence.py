"""What a page needs from a trained model, kept in its record so the page never retrains it.

A gallery of misclassified images or a GradCAM figure must come from the recorded model, not
from a smoke run. The model itself may be too large for the repository, so the record keeps
the evidence: every test image's predicted class and confidence, and GradCAM maps of the first
misclassified ones at the layer the page explains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from evakit import data, train
from evakit.models.vit import tokens_to_map

if TYPE_CHECKING:
    from evakit.runner import Run
    from evakit.text import BPETokenizer, CharTokenizer

# The layer whose GradCAM each CIFAR recipe's page shows: the last one whose map is at least
# 5×5 for a 32×32 image (8×8 here), so a map cell covers a sixteenth of the image, not a quarter.
GRADCAM_LAYERS = {"s06/cifar-net": "c2", "s07/resnet18": "stages.2", "s07/resnet34": "stages.2",
                  "s08/custom-resnet": "layer2", "s10/vit": "blocks.5.norm1"}
# A transformer's layers output tokens, not maps: its entry also names grad-cam's
# reshape_transform, which lays the patch tokens back on their grid (8×8 for the ViT). The ViT's
# layer is the last block's first LayerNorm: what the last attention reads. After that
# attention only the CLS token reaches the head, so later layers have no gradient at the patches.
RESHAPE_TRANSFORMS = {"s10/vit": tokens_to_map}
GALLERY = 10


def predictions(model: nn.Module, test_batches: Iterable,
                precision: train.Precision) -> dict:
    """Every test image's predicted class and confidence (in thousandths), in test order.

    With at most 10 classes the classes are kept as one string of digits, else as a list;
    confidences as integers: compact enough for a record of 10,000 test images. Readers index
    either form the same way (``int(pred[i])``).
    """
    probs, _ = train.predict(model, test_batches, precision)
    confidence, pred = probs.max(1)
    classes = [int(p) for p in pred]
    return {"pred": "".join(map(str, classes)) if probs.shape[1] <= 10 else classes,
            "confidence_permille": [int(c) for c in (confidence * 1000).round()]}


def misclassified(outputs: dict, labels: torch.Tensor, n: int = GALLERY) -> list[int]:
    """Indices of the first ``n`` test images the recorded model got wrong."""
    pred = outputs["pred"]
    return [i for i in range(len(pred)) if int(pred[i]) != int(labels[i])][:n]


def normalized(images: data.ImageSet, indices: list[int]) -> torch.Tensor:
    """Those test images as the model saw them: floats, normalized by the set's statistics."""
    x = images.images[indices].float() / 255
    mean = torch.tensor(images.mean).view(1, -1, 1, 1)
    std = torch.tensor(images.std).view(1, -1, 1, 1)
    return (x - mean) / std


def gradcam_maps(model: nn.Module, layer_name: str, inputs: torch.Tensor,
                 targets: list[int] | None = None,
                 reshape_transform: Callable | None = None) -> torch.Tensor:
    """GradCAM maps (the ``grad-cam`` package) of ``inputs`` at the named layer, N×H×W in [0, 1],
    for the predicted class (or ``targets``); ``reshape_transform`` turns the layer's output
    into B×C×h×w maps where it is not one (a transformer's tokens)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = dict(model.named_modules())[layer_name]
    model = model.float().eval()
    wanted = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape_transform) as cam:
        return torch.from_numpy(cam(input_tensor=inputs.contiguous(), targets=wanted))


SAMPLES, SAMPLE_TOKENS = 3, 400


def samples(model: nn.Module, tokenizer: CharTokenizer | BPETokenizer, *, n: int = SAMPLES,
            tokens: int = SAMPLE_TOKENS, top_k: int = 40, temperature: float = 1.0,
            seed: int = 0) -> list[str]:
    """Text a language model writes from a newline, by top-k sampling (seeded)."""
    from evakit.models.language import generate

    device = next(model.parameters()).device
    start = tokenizer.encode("\n")[:1].view(1, 1).repeat(n, 1).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = generate(model, start, tokens, temperature=temperature, top_k=top_k,
                   generator=generator)
    return [tokenizer.decode(row[1:]) for row in out.cpu()]


def collect(run: Run, test_set: data.ImageSet | None) -> dict:
    """The evidence a record keeps from a finished :class:`evakit.runner.Run`."""
    if run.recipe.task == "next-token":
        return {"samples": {"top_k": 40, "temperature": 1.0,
                            "texts": samples(run.model, test_set.tokenizer)}}
    if run.recipe.task == "masked-token":
        return {}
    precision = train.Precision(run.precision)
    if run.recipe.task == "contrastive":   # CLIP: its zero-shot digit for every test image
        from evakit import clip
        return clip.evidence(run.model, run.test_batches, precision)
    outputs = {"test_predictions": predictions(run.model, run.test_batches, precision)}
    layer = GRADCAM_LAYERS.get(run.recipe.name)
    if layer is not None:
        wrong = misclassified(outputs["test_predictions"], test_set.labels)
        device = next(run.model.parameters()).device
        maps = gradcam_maps(run.model, layer, normalized(test_set, wrong).to(device),
                            reshape_transform=RESHAPE_TRANSFORMS.get(run.recipe.name))
        outputs["gradcam"] = {"layer": layer, "indices": wrong,
                              "maps": [[round(float(v), 3) for v in m.flatten()] for m in maps],
                              "size": list(maps.shape[1:])}
    return outputs
