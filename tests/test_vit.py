"""Session 10: attention by hand, the class-style ViT against PyTorch's own transformer layers,
ConvMixer, GradCAM of a ViT through its token maps, and the Tiny ImageNet task."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from evakit import data, evidence, models, recipes, records, runner, tasks
from evakit.errors import ArgumentError
from evakit.models import vit
from tests.test_tiny_imagenet import make_tiny

CIFAR_TRAIN = data.synthetic("synthetic-cifar10", 96, seed=1)
CIFAR_TEST = data.synthetic("synthetic-cifar10", 64, seed=2, split="test")
TINY = {"dim": 16, "heads": 2, "mlp_ratio": 2}          # depth 6, as the recipe's GradCAM layer


def test_attention_in_numpy_equals_torch_multihead_attention():
    # The session's case: 9 patch tokens of width 512, 8 heads, the same weights.
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(512, 8, batch_first=True)
    nn.init.normal_(mha.in_proj_bias, std=0.1)             # PyTorch starts the biases at 0
    nn.init.normal_(mha.out_proj.bias, std=0.1)
    tokens = torch.randn(1, 9, 512)
    with torch.no_grad():
        out, weights = mha(tokens, tokens, tokens, average_attn_weights=False)
    params = (mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight, mha.out_proj.bias)
    mine, my_weights = vit.attention_numpy(tokens[0].double().numpy(),
                                           *(p.detach().double().numpy() for p in params),
                                           heads=8)
    assert mine.shape == (9, 512) and my_weights.shape == (8, 9, 9)
    assert np.abs(mine - out[0].numpy()).max() < 1e-6
    assert np.abs(my_weights - weights[0].numpy()).max() < 1e-6
    np.testing.assert_allclose(my_weights.sum(-1), 1.0)
    with pytest.raises(ArgumentError, match="multiple of heads"):
        vit.attention_numpy(np.zeros((9, 10)), *(p.detach().numpy() for p in params), heads=3)


@pytest.mark.parametrize("settings", [{}, {"patch_size": 8, "dim": 48, "depth": 2, "heads": 6,
                                           "mlp_ratio": 4, "classes": 7}])
def test_vit_equals_the_torch_transformer_encoder_formulation(settings):
    torch.manual_seed(1)
    model = vit.ViT(**settings).eval()
    reference = vit.reference_from(model)
    layer = reference.encoder.layers[0]
    assert isinstance(layer, nn.TransformerEncoderLayer) and layer.norm_first
    assert models.count_parameters(reference) == models.count_parameters(model)
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert ours.shape == (5, model.config.classes)
    assert (ours - theirs).abs().max() < 1e-5
    # The same gradients too (training mode, no dropout): the networks are one function.
    model.train(), reference.train()
    model(x).square().sum().backward()
    reference(x).square().sum().backward()
    grads = vit.reference_state({k: p.grad for k, p in model.named_parameters()})
    for name, p in reference.named_parameters():
        assert torch.allclose(p.grad, grads[name], atol=1e-5), name


def test_a_changed_weight_changes_the_reference_too():
    # The copy is a copy: the comparison above is not of two untouched initialisations.
    model = vit.ViT(**TINY).eval()
    with torch.no_grad():
        model.blocks[2].mlp.fc1.weight.add_(0.5)
    reference = vit.reference_from(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)
        assert not torch.allclose(model(x), vit.ReferenceViT(model.config).eval()(x), atol=1e-3)


def test_patch_embedding_is_unfold_then_one_linear_map():
    config = vit.ViTConfig(dim=24)
    embed = vit.PatchEmbedding(config)
    x = torch.randn(2, 3, 32, 32)
    patches = nn.functional.unfold(x, kernel_size=4, stride=4).transpose(1, 2)   # B×64×48
    linear = nn.Linear(48, 24)
    with torch.no_grad():
        linear.weight.copy_(embed.proj.weight.flatten(1))
        linear.bias.copy_(embed.proj.bias)
        assert torch.allclose(embed(x), linear(patches), atol=1e-5)
    assert embed(x).shape == (2, 64, 24)


def test_tokens_to_map_puts_each_patch_token_back_on_its_grid():
    B, D = 2, 5
    tokens = torch.zeros(B, 1 + 16, D)
    tokens[:, 0] = 99.0                                  # the CLS token is dropped
    tokens[:, 1 + 1 * 4 + 2] = torch.arange(D).float()   # patch at row 1, column 2
    maps = vit.tokens_to_map(tokens)
    assert maps.shape == (B, D, 4, 4)
    assert maps[0, :, 1, 2].tolist() == list(range(D)) and maps.sum() == 2 * sum(range(D))
    # The order matches the patch embedding's: row by row.
    model = vit.ViT(**TINY)
    x = torch.zeros(1, 3, 32, 32)
    x[..., 4:8, 24:28] = 1.0                              # patch at row 1, column 6
    embedded = model.patch_embed(x) - model.patch_embed(torch.zeros_like(x))
    grid = vit.tokens_to_map(torch.cat([torch.zeros(1, 1, 16), embedded], 1))
    assert grid.abs().sum((0, 1)).nonzero().tolist() == [[1, 6]]
    with pytest.raises(ArgumentError, match="square grid"):
        vit.tokens_to_map(torch.zeros(1, 1 + 15, D))
    with pytest.raises(ArgumentError, match="B×"):
        vit.tokens_to_map(torch.zeros(16, D))


@pytest.mark.parametrize("settings, says", [
    ({"patch_size": 5}, "must divide image_size"),
    ({"dim": 30, "heads": 4}, "multiple of heads"),
    ({"depth": 0}, "depth must be a positive integer"),
    ({"dropout": 1.0}, "dropout must lie in"),
])
def test_bad_vit_settings_are_one_sentence(settings, says):
    with pytest.raises(ArgumentError, match=says):
        vit.ViT(**settings)


def test_registered_models_and_their_sizes():
    model = models.create("s10/vit")
    c = model.config
    assert (c.patch_size, c.patches, c.dim, c.depth, c.heads, c.mlp_dim) == (4, 64, 96, 6, 4, 288)
    # By hand: patch conv 3·16·D + D; CLS D; positions 65·D; per block two LayerNorms 4D,
    # qkv 3D² + 3D, projection D² + D, MLP 2·3D² + 3D + D; final LayerNorm 2D; head 10D + 10.
    D = 96
    block = 4 * D + 3 * D * D + 3 * D + D * D + D + 6 * D * D + 4 * D
    assert models.count_parameters(model) == 48 * D + D + D + 65 * D + 6 * block + 2 * D \
        + 10 * D + 10 == 572_074
    assert models.count_parameters(model) <= records.MAX_WEIGHTS    # weights stay in git
    mixer = models.create("s10/convmixer")
    assert models.count_parameters(mixer) == 594_186
    depthwise = [m for m in mixer.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 8 and all(m.groups == m.in_channels == 256 for m in depthwise)
    with torch.no_grad():
        assert mixer.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        assert mixer.stem(torch.zeros(1, 3, 32, 32)).shape == (1, 256, 16, 16)


def test_the_recipe_and_its_fast_copy_keep_the_gradcam_layer():
    recipe = recipes.get("s10/vit")
    assert (recipe.optimizer, recipe.scheduler, recipe.precision) == ("adamw", "onecycle", None)
    assert recipe.crop_padding and recipe.flip and recipe.dataset == "cifar10"
    for r in (recipe, runner.for_fast(recipe)):
        assert evidence.GRADCAM_LAYERS["s10/vit"] in dict(r.build_model().named_modules())


def test_evidence_for_a_tiny_vit_holds_gradcam_maps_of_the_image_size():
    recipe = replace(recipes.get("s10/vit"), model_kwargs=TINY, batch_size=32)
    run = runner.run(recipe, epochs=1, fast=False, device="cpu", verbose=False,
                     train_set=CIFAR_TRAIN, test_set=CIFAR_TEST)
    outputs = evidence.collect(run, CIFAR_TEST)
    cam = outputs["gradcam"]
    wrong = evidence.misclassified(outputs["test_predictions"], CIFAR_TEST.labels)
    assert cam["layer"] == "blocks.5.norm1" and cam["size"] == [32, 32]
    assert cam["indices"] == wrong and len(cam["maps"]) == len(wrong) > 0
    maps = np.asarray(cam["maps"])
    assert maps.shape == (len(wrong), 32 * 32) and 0 <= maps.min() and maps.max() <= 1
    # Each map says where: not flat.
    assert (maps.max(1) - maps.min(1) > 0.1).all()


def test_gradcam_maps_of_a_cnn_need_no_reshape_transform():
    model = models.create("s08/custom-resnet", width=8)
    maps = evidence.gradcam_maps(model, "layer2", torch.randn(3, 3, 32, 32))
    assert maps.shape == (3, 32, 32)
    assert "s08/custom-resnet" not in evidence.RESHAPE_TRANSFORMS


def test_the_tiny_imagenet_task_trains_on_the_seeded_split(tmp_path, monkeypatch):
    make_tiny(tmp_path)
    monkeypatch.setenv("EVAKIT_DATA", str(tmp_path))
    recipe = recipes.get("s10/tiny-imagenet-resnet18")
    task = tasks.get(recipe.task)
    assert isinstance(task, tasks.TinyImageNet)
    train_set, test_set = task.load(recipe, fast=False)
    assert (len(train_set), len(test_set)) == (28, 12)              # 70/30 of 10, 20, 10
    assert train_set.images.shape[1:] == (3, 64, 64) and len(train_set.classes) == 3
    small = replace(recipe, model_kwargs={"classes": 200, "width": 4}, batch_size=16)
    run = runner.run(small, epochs=1, fast=False, device="cpu", verbose=False)
    assert run.data["train"].dataset == "tiny-imagenet" and run.data["test"].size == 12
    assert len(run.history) == 1
