"""Session 11's CLIP of our own: an image encoder and a text encoder that meet in one space.

CLIP (Radford et al. 2021) trains two encoders jointly so that an image and the caption that
describes it land on nearby unit vectors, and unrelated ones far apart. Here the images are
MNIST digits and the captions are sentences generated from their labels (see
:mod:`evakit.clip`). :class:`ImageEncoder` is a small CNN (conv blocks, global average pool, a
linear projection); :class:`TextEncoder` is a small causal transformer over word tokens, as
CLIP's text encoder is, averaged up to the end-of-text token; :class:`CLIP` scales their
cosine similarities by a learned temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evakit.errors import ArgumentError
from evakit.models.cnn import conv_block
from evakit.models.language import Block, TransformerConfig, _init_weights
from evakit.models.registry import register

MNIST = (1, 28, 28)
# The word vocabulary of evakit.clip's captions: [PAD], [EOS] and the words of its training
# templates (tests check that the two agree).
CAPTION_VOCAB = 38
CAPTION_CONTEXT = 12


@dataclass(frozen=True)
class CLIPConfig:
    """Every hyperparameter of :class:`CLIP`; the defaults are the course's MNIST model.

    Attributes:
        embed_dim: width of the shared image–text space.
        width: channels of the image encoder's first block (doubled twice).
        vocab_size: word tokens of the captions (padding and end-of-text included).
        context: the longest caption, in tokens.
        text_width: width of the text transformer.
        text_layers: its blocks.
        text_heads: its attention heads; must divide ``text_width``.
        temperature: the initial temperature τ (CLIP's 0.07); its log is learned.
        max_scale: the largest 1/τ allowed (CLIP clips the learned scale at 100).
    """

    embed_dim: int = 64
    width: int = 16
    vocab_size: int = CAPTION_VOCAB
    context: int = CAPTION_CONTEXT
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    temperature: float = 0.07
    max_scale: float = 100.0

    def __post_init__(self) -> None:
        for name in ("embed_dim", "width", "vocab_size", "context", "text_width",
                     "text_layers", "text_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
        if self.text_width % self.text_heads:
            raise ArgumentError(f"text_width ({self.text_width}) must be a multiple of "
                                f"text_heads ({self.text_heads})")
        if not 0 < self.temperature < 1 or self.max_scale * self.temperature < 1:
            raise ArgumentError(f"temperature must lie in (0, 1) and 1/temperature at most "
                                f"max_scale ({self.max_scale}), got {self.temperature!r}")


class ImageEncoder(nn.Module):
    """A small MNIST CNN: three stages of 3×3 conv blocks (28 → 14 → 7), GAP, projection.

    Shapes:
        B×1×28×28 normalized images → B×``embed_dim`` features (not yet normalized).
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        w = config.width
        unit = {"padding": 1, "norm": "bn", "norm_first": True}
        self.features = nn.Sequential(
            conv_block(1, w, **unit), conv_block(w, w, **unit), nn.MaxPool2d(2),
            conv_block(w, 2 * w, **unit), conv_block(2 * w, 2 * w, **unit), nn.MaxPool2d(2),
            conv_block(2 * w, 4 * w, **unit), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.proj = nn.Linear(4 * w, config.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(images))


class TextEncoder(nn.Module):
    """A causal transformer over caption tokens, read up to the end-of-text token.

    Under a causal mask no position up to the end-of-text token sees the padding after it,
    so padding changes nothing. CLIP reads the end-of-text position alone; this encoder
    takes the mean of the layer-normed features of every position up to it, so that each
    word — the digit above all — reaches the embedding directly from the first step (read
    at one position, a freshly initialised encoder passes on mostly that position's own
    embedding, and a short run spends its first epochs learning to route the digit there).
    The mean is projected to the shared space.

    Shapes:
        int64 tokens B×T (T ≤ ``context``) and the end-of-text positions B → B×``embed_dim``.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        blocks = TransformerConfig(vocab_size=config.vocab_size, block_size=config.context,
                                   n_layer=config.text_layers, n_head=config.text_heads,
                                   n_embd=config.text_width, causal=True)
        self.config = blocks
        self.wte = nn.Embedding(config.vocab_size, config.text_width)
        self.wpe = nn.Embedding(config.context, config.text_width)
        self.blocks = nn.ModuleList(Block(blocks) for _ in range(config.text_layers))
        self.ln_f = nn.LayerNorm(config.text_width)
        self.proj = nn.Linear(config.text_width, config.embed_dim, bias=False)
        _init_weights(self, config.text_layers)

    def forward(self, tokens: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        if T > self.config.block_size:
            raise ArgumentError(f"captions of {T} tokens exceed the context of "
                                f"{self.config.block_size}")
        x = self.wte(tokens) + self.wpe(torch.arange(T, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        upto = torch.arange(T, device=tokens.device)[None, :] <= eos[:, None]      # B×T
        x = (self.ln_f(x) * upto[..., None]).sum(1) / upto.sum(1, keepdim=True)
        return self.proj(x)


@register("s11/clip", MNIST)
class CLIP(nn.Module):
    """Session 11's CLIP: MNIST images and generated captions embedded on one unit sphere.

    ``forward(images, tokens)`` returns the N×N matrix of scaled cosine similarities,
    ``exp(logit_scale) · îᵢ · t̂ⱼ``: row i scores image i against every caption of the batch.
    The scale starts at 1/0.07 and is learned (its log, so it stays positive), clipped at 100.
    Captions are word ids, then the end-of-text token (1), then padding (0), as
    :class:`evakit.clip.Captions` encodes them.

    Args:
        config: the hyperparameters.
        **settings: instead of ``config``, its fields by name (how a recipe builds it).

    Shapes:
        B×1×28×28 images and int64 B×T caption tokens → B×B logits.
    """

    PAD, EOS = 0, 1

    def __init__(self, config: CLIPConfig | None = None, **settings) -> None:
        super().__init__()
        config = config or CLIPConfig(**settings)
        self.config = config
        self.image = ImageEncoder(config)
        self.text = TextEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.temperature)))

    @property
    def scale(self) -> torch.Tensor:
        """1/τ, the learned factor on the cosine similarities (at most ``max_scale``)."""
        return self.logit_scale.clamp(max=math.log(self.config.max_scale)).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length image embeddings, B×``embed_dim``."""
        return F.normalize(self.image(images).float(), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unit-length caption embeddings, B×``embed_dim`` (tokens as the captions' ids)."""
        eos = (tokens == self.EOS).int().argmax(1)
        return F.normalize(self.text(tokens, eos).float(), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        image, text = self.encode_image(images), self.encode_text(tokens)
        # Cosines times up to 100 need more than bf16's three significant digits.
        with torch.autocast(images.device.type, enabled=False):
            return self.scale * image @ text.T
