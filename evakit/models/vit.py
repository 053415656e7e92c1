"""The attention-based image classifiers of session 10: the Vision Transformer and ConvMixer.

:class:`ViT` (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words") cuts an image into P×P
patches, embeds each with one linear map (a ``Conv2d`` whose kernel and stride are P), puts a
learned CLS token in front, adds learned position embeddings and runs pre-norm encoder blocks —
LN → multi-head self-attention → +, then LN → MLP (GELU) → + — before a final LayerNorm and a
linear head read the CLS token. It is written class by class (:class:`PatchEmbedding`,
:class:`Attention`, :class:`MLP`, :class:`EncoderBlock`) as the session's assignment asks, and
:class:`ReferenceViT` is the same network built from PyTorch's ``nn.TransformerEncoderLayer``,
into which :func:`reference_from` copies a ViT's weights: equal outputs prove the classes right.

:class:`ConvMixer` (Trockman & Kolter 2022, "Patches Are All You Need?") keeps the patch
embedding and swaps attention for depthwise (spatial) and pointwise (channel) convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evakit.errors import ArgumentError
from evakit.models.registry import evaluating, register

CIFAR = (3, 32, 32)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ViTConfig:
    """Every hyperparameter of a :class:`ViT`; the defaults are the course's CIFAR-10 model.

    Attributes:
        image_size: side of the square input image, in pixels.
        patch_size: side of a patch; must divide ``image_size``.
        channels: colour channels of the input.
        classes: outputs of the head.
        dim: width D of every token.
        depth: encoder blocks.
        heads: attention heads per block; must divide ``dim``.
        mlp_ratio: the MLP's hidden width as a multiple of ``dim``.
        dropout: dropout on the embeddings, the attention weights and both residual branches.
    """

    image_size: int = 32
    patch_size: int = 4
    channels: int = 3
    classes: int = 10
    dim: int = 96
    depth: int = 6
    heads: int = 4
    mlp_ratio: int = 3
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "channels", "classes", "dim", "depth", "heads",
                     "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
        if self.image_size % self.patch_size:
            raise ArgumentError(f"patch_size ({self.patch_size}) must divide image_size "
                                f"({self.image_size})")
        if self.dim % self.heads:
            raise ArgumentError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ArgumentError(f"dropout must lie in [0, 1), got {self.dropout!r}")

    @property
    def grid(self) -> int:
        """Patches along one side of the image."""
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        """Patch tokens per image (the CLS token not counted)."""
        return self.grid**2

    @property
    def mlp_dim(self) -> int:
        """The MLP's hidden width."""
        return self.dim * self.mlp_ratio


class PatchEmbedding(nn.Module):
    """P×P patches, each mapped linearly to D numbers: one ``Conv2d(C, D, P, stride=P)``.

    A kernel as large as its stride sees every pixel exactly once, so the convolution is the
    same linear map applied to each flattened patch (unfold + ``nn.Linear``).

    Shapes:
        B×C×H×W images → B×N×D tokens, row by row (N = (H/P)·(W/P)).
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(config.channels, config.dim, config.patch_size,
                              stride=config.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention: every token attends to every token (no mask)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
                   for t in self.qkv(x).split(D, dim=2))
        # softmax(Q Kᵀ / √d) V written out, as session 10 teaches it (not through
        # F.scaled_dot_product_attention), so the page's code and the model's are one.
        weights = (q @ k.transpose(-2, -1) * (D // self.heads) ** -0.5).softmax(-1)
        y = F.dropout(weights, self.dropout, self.training) @ v
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class MLP(nn.Module):
    """The token-wise feed-forward net: widen ``mlp_ratio``×, GELU, project back."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.dim, config.mlp_dim)
        self.fc2 = nn.Linear(config.mlp_dim, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderBlock(nn.Module):
    """A pre-norm encoder block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


@register("s10/vit", CIFAR)
class ViT(nn.Module):
    """Session 10's assignment: a Vision Transformer for 32×32 CIFAR-10 images.

    By default 4×4 patches (64 tokens and a CLS token), width 96, 6 blocks of 4 heads, MLP ×3:
    0.57 M parameters — small enough for a CPU run of the whole recipe, and for its recorded
    weights to stay in the repository.

    Args:
        config: the hyperparameters.
        **settings: instead of ``config``, its fields by name (how a recipe builds it).

    Shapes:
        B×C×H×W images → B×``classes`` logits.
    """

    def __init__(self, config: ViTConfig | None = None, **settings) -> None:
        super().__init__()
        config = config or ViTConfig(**settings)
        self.config = config
        self.patch_embed = PatchEmbedding(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.patches + 1, config.dim))
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def _init_weights(model: nn.Module) -> None:
    # ViT's (and timm's) initialization: truncated N(0, 0.02) for the tokens, the position
    # embeddings and every linear map, zero biases; LayerNorms and the patch convolution keep
    # PyTorch's defaults.
    nn.init.trunc_normal_(model.pos_embed, std=0.02)
    nn.init.trunc_normal_(model.cls_token, std=0.02)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)


def tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """grad-cam's ``reshape_transform`` for a ViT: tokens back to a grid of feature maps.

    GradCAM weights the channels of a B×D×h×w activation. A transformer's activation is
    B×(1 + h·w)×D tokens; dropping the CLS token and laying the patch tokens back on their grid
    (row by row, as :class:`PatchEmbedding` flattened them) gives the maps GradCAM expects.

    Args:
        tokens: B×(1 + N)×D, the CLS token first and N a square number.

    Returns:
        B×D×√N×√N.
    """
    if tokens.ndim != 3:
        raise ArgumentError(f"tokens must be B×(1 + N)×D, got {tuple(tokens.shape)}")
    B, T, D = tokens.shape
    side = math.isqrt(T - 1)
    if side * side != T - 1:
        raise ArgumentError(f"{T} tokens are not a CLS token plus a square grid of patches")
    return tokens[:, 1:].transpose(1, 2).reshape(B, D, side, side)


class ReferenceViT(nn.Module):
    """The same network as :class:`ViT`, built from PyTorch's own transformer layers.

    ``nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True)`` is
    the pre-norm block; ``nn.TransformerEncoder`` stacks them and adds the final LayerNorm. Load
    a ViT's weights with :func:`reference_from`.

    Args:
        config: the hyperparameters of the ViT it mirrors.
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        D = config.dim
        self.patch = nn.Conv2d(config.channels, D, config.patch_size, stride=config.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, D))
        self.pos = nn.Parameter(torch.zeros(1, config.patches + 1, D))
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(D, config.heads, config.mlp_dim, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.depth, norm=nn.LayerNorm(D),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(D, config.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = self.drop(torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos)
        return self.head(self.encoder(x)[:, 0])


# Where each tensor of a ViT block lives in nn.TransformerEncoderLayer.
_BLOCK_TO_TORCH = {"norm1": "norm1", "attn.qkv.weight": "self_attn.in_proj_weight",
                   "attn.qkv.bias": "self_attn.in_proj_bias", "attn.proj": "self_attn.out_proj",
                   "norm2": "norm2", "mlp.fc1": "linear1", "mlp.fc2": "linear2"}
_TOP_TO_TORCH = {"patch_embed.proj": "patch", "cls_token": "cls", "pos_embed": "pos",
                 "norm": "encoder.norm", "head": "head"}


def reference_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A :class:`ViT` state dict renamed for :class:`ReferenceViT` (the same tensors).

    The ViT's ``qkv`` rows are the queries, then the keys, then the values — the layout of
    ``nn.MultiheadAttention``'s ``in_proj_weight`` — so no tensor needs reordering.
    """
    renamed = {}
    for key, value in state.items():
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            prefix = f"encoder.layers.{index}."
            for ours, theirs in _BLOCK_TO_TORCH.items():
                if rest == ours or rest.startswith(ours + "."):
                    renamed[prefix + theirs + rest[len(ours):]] = value
                    break
            else:
                raise ArgumentError(f"no place for {key!r} in nn.TransformerEncoderLayer")
        else:
            for ours, theirs in _TOP_TO_TORCH.items():
                if key == ours or key.startswith(ours + "."):
                    renamed[theirs + key[len(ours):]] = value
                    break
            else:
                raise ArgumentError(f"no place for {key!r} in ReferenceViT")
    return renamed


def reference_from(vit: ViT) -> ReferenceViT:
    """A :class:`ReferenceViT` holding copies of ``vit``'s weights, in the same mode."""
    reference = ReferenceViT(vit.config)
    reference.load_state_dict(reference_state(vit.state_dict()), strict=True)
    return reference.train(vit.training)


def reference_like(model: nn.Module, heads: int) -> ReferenceViT:
    """A :class:`ReferenceViT` holding copies of the weights of any pre-norm ViT, found by
    structure rather than by name — for a ViT written elsewhere (a learner's).

    The patch embedding is the one ``Conv2d`` whose stride is its kernel; the CLS token and
    the position embeddings are the parameters shaped 1×1×D and 1×(N + 1)×D; each encoder
    block is a module with two ``LayerNorm`` children (see :func:`encoder_blocks`), whose
    linear maps, in the order a forward pass calls them, are the attention's — one 3D-wide
    map of the queries, keys and values (in that order), or three D-wide ones, or an
    ``nn.MultiheadAttention`` — then its output projection, then the MLP's two. The one
    LayerNorm outside the blocks is the final one, the one ``Linear`` outside them the head. A
    missing bias is copied as zeros; the LayerNorms keep their epsilon. The number of heads is
    not in the weights, so it is given.

    Raises:
        ArgumentError: naming the part that was not found.
    """
    found = embedding_parts(model)
    patch = _only([c for _, c in found.patch],
                  "Conv2d whose stride is its kernel (the patch embedding)")
    D = patch.out_channels
    cls = _only([p for _, p in found.cls], f"1×1×{D} parameter (the CLS token)")
    pos = _only([p for _, p in found.pos], f"1×(N + 1)×{D} parameter "
                "(the position embeddings)")
    blocks = encoder_blocks(model)
    if not blocks:
        raise ArgumentError("found no encoder block (a module with two LayerNorm children)")
    inside = {m for b in blocks for m in b.modules()}
    outside = [m for m in model.modules() if m not in inside]
    final_norm = _only([m for m in outside if isinstance(m, nn.LayerNorm)],
                       "LayerNorm outside the encoder blocks (the final norm)")
    head = _only([m for m in outside if isinstance(m, nn.Linear)],
                 "Linear outside the encoder blocks (the head)")
    order = _call_order(model, patch, pos.shape[1] - 1)
    parts = [_block_parts(b, D, order) for b in blocks]
    hidden = parts[0]["linear1.weight"].shape[0]
    if hidden % D:
        raise ArgumentError(f"the MLP's width {hidden} is not a multiple of the width {D}")
    grid = math.isqrt(pos.shape[1] - 1)
    config = ViTConfig(image_size=grid * patch.kernel_size[0], patch_size=patch.kernel_size[0],
                       channels=patch.in_channels, classes=head.out_features, dim=D,
                       depth=len(blocks), heads=heads, mlp_ratio=hidden // D)
    state = {"patch.weight": patch.weight, "patch.bias": _bias(patch, D), "cls": cls,
             "pos": pos, **_affine(final_norm, "encoder.norm", D), "head.weight": head.weight,
             "head.bias": _bias(head, head.out_features)}
    for i, block_state in enumerate(parts):
        state |= {f"encoder.layers.{i}.{k}": v for k, v in block_state.items()}
    reference = ReferenceViT(config)
    reference.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
    reference.encoder.norm.eps = final_norm.eps
    for layer, block in zip(reference.encoder.layers, blocks, strict=True):
        layer.norm1.eps, layer.norm2.eps = (n.eps for n in _norms(block))
    return reference.train(model.training)


class EmbeddingParts(NamedTuple):
    """Every candidate, with its name, for each part of a ViT that turns an image into tokens:
    a caller can use the one it expects or say what it found instead."""

    patch: list[tuple[str, nn.Conv2d]]      # convolutions whose stride is their kernel
    cls: list[tuple[str, nn.Parameter]]     # 1×1×D parameters, D the first patch conv's width
    pos: list[tuple[str, nn.Parameter]]     # 1×(N + 1)×D parameters, N > 0


def embedding_parts(model: nn.Module) -> EmbeddingParts:
    """The patch embedding, CLS token and position embeddings of any ViT, found by structure
    (see :func:`reference_like`), not by name."""
    patch = [(n, c) for n, c in model.named_modules() if isinstance(c, nn.Conv2d)
             and c.kernel_size == c.stride and c.padding == (0, 0)]
    if not patch:
        return EmbeddingParts([], [], [])
    D = patch[0][1].out_channels
    own = [(n, p) for n, p in model.named_parameters()
           if p.ndim == 3 and p.shape[0] == 1 and p.shape[2] == D]
    return EmbeddingParts(patch, [(n, p) for n, p in own if p.shape[1] == 1],
                          [(n, p) for n, p in own if p.shape[1] > 1])


def encoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The innermost modules of ``model`` that have two ``LayerNorm`` children and an
    attention — an ``nn.MultiheadAttention`` or at least four linear maps (queries, keys and
    values, the output projection, the MLP's two) — in the order they were assigned."""
    found = [m for m in model.modules() if len(_norms(m)) == 2
             and (any(isinstance(c, nn.MultiheadAttention | Attention) for c in m.modules())
                  or sum(isinstance(c, nn.Linear) for c in m.modules()) >= 4)]
    # A whole model with a norm of its own before and after the blocks (CLIP's ln_pre) also
    # has two LayerNorm children: keep only the candidates that hold no other one.
    return [m for m in found if not any(o is not m and o in set(m.modules()) for o in found)]


def _call_order(model: nn.Module, patch: nn.Conv2d, patches: int) -> dict[nn.Module, int]:
    """Each ``nn.Linear`` of ``model`` and when a forward pass of one image first calls it."""
    side = math.isqrt(patches) * patch.kernel_size[0]
    order: dict[nn.Module, int] = {}

    def called(module: nn.Module, *_) -> None:     # returns None: the output stays as it is
        order.setdefault(module, len(order))

    hooks = [m.register_forward_hook(called) for m in model.modules()
             if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad(), evaluating(model):
            model(torch.zeros(1, patch.in_channels, side, side))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _norms(module: nn.Module) -> list[nn.LayerNorm]:
    return [c for c in module.children() if isinstance(c, nn.LayerNorm)]


def _only(found: list[_T], what: str) -> _T:
    if len(found) != 1:
        raise ArgumentError(f"expected one {what}, found {len(found)}")
    return found[0]


def _bias(layer: nn.Module, size: int) -> torch.Tensor:
    return layer.bias if layer.bias is not None else torch.zeros(size)


def _affine(norm: nn.LayerNorm, name: str, D: int) -> dict[str, torch.Tensor]:
    """A LayerNorm's scale and shift (1 and 0 where it has none) under ``name``."""
    weight = norm.weight if norm.weight is not None else torch.ones(D)
    return {f"{name}.weight": weight, f"{name}.bias": _bias(norm, D)}


def _block_parts(block: nn.Module, D: int,
                 order: dict[nn.Module, int]) -> dict[str, torch.Tensor]:
    """One block's tensors under ``nn.TransformerEncoderLayer``'s names; ``order``: when a
    forward pass first called each linear map (those it never calls are not part of it)."""
    norm1, norm2 = _norms(block)
    mha = [m for m in block.modules() if isinstance(m, nn.MultiheadAttention)]
    if mha:
        attention = _only(mha, "nn.MultiheadAttention per block")
        if attention.in_proj_weight is None:
            raise ArgumentError("an nn.MultiheadAttention with separate key and value widths "
                                "is not a ViT's self-attention")
        qkv_w, qkv_b = attention.in_proj_weight, attention.in_proj_bias
        within = set(attention.modules())
        rest = [attention.out_proj] + sorted(
            (m for m in block.modules() if m in order and m not in within), key=order.get)
    else:
        linears = sorted((m for m in block.modules() if m in order), key=order.get)
        n = 1 if linears and linears[0].out_features == 3 * D else 3
        qkv, rest = linears[:n], linears[n:]
        if sum(m.out_features for m in qkv) != 3 * D or any(m.in_features != D for m in qkv):
            raise ArgumentError(f"a block's first linear maps are not its queries, keys and "
                                f"values ({D}→{3 * D} in all)")
        qkv_w = torch.cat([m.weight for m in qkv])
        qkv_b = torch.cat([_bias(m, m.out_features) for m in qkv])
    if len(rest) != 3:
        raise ArgumentError(f"expected an output projection and the MLP's two linear maps "
                            f"after the attention in each block, found {len(rest)} maps")
    proj, fc1, fc2 = rest
    return {**_affine(norm1, "norm1", D), "self_attn.in_proj_weight": qkv_w,
            "self_attn.in_proj_bias": qkv_b if qkv_b is not None else torch.zeros(3 * D),
            "self_attn.out_proj.weight": proj.weight,
            "self_attn.out_proj.bias": _bias(proj, D),
            **_affine(norm2, "norm2", D),
            "linear1.weight": fc1.weight, "linear1.bias": _bias(fc1, fc1.out_features),
            "linear2.weight": fc2.weight, "linear2.bias": _bias(fc2, D)}


def attention_numpy(x: np.ndarray, in_proj_weight: np.ndarray, in_proj_bias: np.ndarray,
                    out_proj_weight: np.ndarray, out_proj_bias: np.ndarray,
                    heads: int) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head self-attention written out in NumPy (``nn.MultiheadAttention``'s layout).

    Q, K, V = x W_qᵀ + b_q, …; each head takes its D/h columns, computes
    softmax(Q Kᵀ / √(D/h)) V; the heads are concatenated and projected by W_o.

    Args:
        x: T×D tokens.
        in_proj_weight: 3D×D, the query, key and value weights stacked (in that order).
        in_proj_bias: 3D.
        out_proj_weight: D×D.
        out_proj_bias: D.
        heads: h, dividing D.

    Returns:
        The T×D output and the h×T×T attention weights (each row sums to 1).
    """
    T, D = x.shape
    if D % heads:
        raise ArgumentError(f"the width {D} must be a multiple of heads ({heads})")
    d = D // heads
    q, k, v = np.split(x @ in_proj_weight.T + in_proj_bias, 3, axis=1)
    q, k, v = (m.reshape(T, heads, d).transpose(1, 0, 2) for m in (q, k, v))   # h×T×d
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    scores = scores - scores.max(-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(-1, keepdims=True)
    heads_out = (weights @ v).transpose(1, 0, 2).reshape(T, D)
    return heads_out @ out_proj_weight.T + out_proj_bias, weights


# ---------------------------------------------------------------------------------- ConvMixer

class Residual(nn.Sequential):
    """x + f(x) for the layers f given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


def _conv_gelu_bn(conv: nn.Conv2d) -> list[nn.Module]:
    return [conv, nn.GELU(), nn.BatchNorm2d(conv.out_channels)]


@register("s10/convmixer", CIFAR)
class ConvMixer(nn.Module):
    """ConvMixer-``dim``/``depth`` (Trockman & Kolter 2022): ViT's patches, mixed by convolutions.

    A patch embedding (``Conv2d(3, dim, p, stride=p)``, GELU, BN) keeps the resolution fixed at
    H/p for the whole network, like ViT's tokens; each layer then mixes space with a residual
    depthwise k×k convolution (one filter per channel, like attention mixing tokens) and mixes
    channels with a pointwise 1×1 convolution (like the MLP), each followed by GELU and BN.
    The defaults are the paper's CIFAR-10 setting ConvMixer-256/8, patch 2, kernel 5.

    Args:
        dim: channels everywhere after the stem.
        depth: ConvMixer layers.
        patch_size: p.
        kernel_size: k of the depthwise convolution.
        classes: outputs.
    """

    def __init__(self, dim: int = 256, depth: int = 8, patch_size: int = 2,
                 kernel_size: int = 5, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_gelu_bn(nn.Conv2d(3, dim, patch_size,
                                                           stride=patch_size)))
        self.layers = nn.Sequential(*(nn.Sequential(
            Residual(*_conv_gelu_bn(nn.Conv2d(dim, dim, kernel_size, groups=dim,
                                              padding="same"))),
            *_conv_gelu_bn(nn.Conv2d(dim, dim, 1))) for _ in range(depth)))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))
