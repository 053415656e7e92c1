"""The language models of session 11: GPT, a BERT-style encoder, and sparse attention.

Both are the same pre-norm transformer (token + learned position embeddings, blocks of
LN → self-attention → residual and LN → MLP → residual, a final LN) with a different head and
mask: GPT predicts the next token under a causal mask, BERT the masked tokens seeing both
sides. Attention runs through ``F.scaled_dot_product_attention``; the sparse patterns of Child
et al. (2019), "Generating Long Sequences with Sparse Transformers", are boolean masks handed to
it. One :class:`TransformerConfig` names every hyperparameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evakit.errors import ArgumentError
from evakit.models.registry import evaluating, register

PATTERNS = ("dense", "strided", "fixed")


@dataclass(frozen=True)
class TransformerConfig:
    """Every hyperparameter of a GPT or BERT; the defaults are the course's character model.

    Attributes:
        vocab_size: tokens in the vocabulary (65 characters of Tiny Shakespeare).
        block_size: the longest context, in tokens.
        n_layer: transformer blocks.
        n_head: attention heads per block; must divide ``n_embd``.
        n_embd: embedding width.
        dropout: dropout on embeddings, attention weights and residual branches.
        causal: each position sees only itself and the past (GPT) or every position (BERT).
        attention: ``"dense"``, or a sparse pattern: ``"strided"`` (:func:`strided_mask`) or
            ``"fixed"`` (:func:`fixed_mask`).
        stride: the pattern's period: the stride of ``"strided"``, the block of ``"fixed"``.
        summary: positions at the end of each block every later position sees (``"fixed"``'s c).
    """

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    causal: bool = True
    attention: str = "dense"
    stride: int = 8
    summary: int = 1

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "stride"):
            if getattr(self, name) < 1:
                raise ArgumentError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ArgumentError(f"n_embd ({self.n_embd}) must be a multiple of n_head "
                             f"({self.n_head})")
        if self.attention not in PATTERNS:
            raise ArgumentError(f"attention must be one of {PATTERNS}, got {self.attention!r}")
        if not 1 <= self.summary <= self.stride:
            raise ArgumentError(f"summary must lie in 1..stride ({self.stride}), "
                             f"got {self.summary}")
        if not 0 <= self.dropout < 1:
            raise ArgumentError(f"dropout must lie in [0, 1), got {self.dropout}")


def _causal(allowed: torch.Tensor) -> torch.Tensor:
    return allowed & torch.ones_like(allowed).tril()


def strided_mask(T: int, stride: int, *, causal: bool = True) -> torch.Tensor:
    """Child et al.'s strided pattern: the last ``stride`` positions, and every ``stride``-th.

    Position i sees j when ``|i - j| < stride`` or ``(i - j) % stride == 0``: one head of the
    paper's factorization looks at the recent past, the other at a column of the past; here
    one mask holds their union (the paper's "merged head"). Suits data with a period, like
    image rows.

    Args:
        T: sequence length.
        stride: the pattern's period l.
        causal: also forbid the future (j > i).

    Returns:
        Boolean T×T, True where query i may attend to key j.
    """
    if stride < 1:
        raise ArgumentError(f"stride must be a positive integer, got {stride}")
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = ((i - j).abs() < stride) | ((i - j) % stride == 0)
    return _causal(allowed) if causal else allowed


def fixed_mask(T: int, block: int, c: int = 1, *, causal: bool = True) -> torch.Tensor:
    """Child et al.'s fixed pattern: one's own block, and the last ``c`` positions of every block.

    Position i sees j when both lie in the same block of ``block`` positions, or j is one of the
    last ``c`` of its block (a "summary" cell every later position reads). Suits text, which has
    no period for a stride to follow.

    Args:
        T: sequence length.
        block: block length l.
        c: summary positions per block, 1..l.
        causal: also forbid the future (j > i).

    Returns:
        Boolean T×T, True where query i may attend to key j.
    """
    if not 1 <= c <= block:
        raise ArgumentError(f"c must lie in 1..block ({block}), got {c}")
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = (i // block == j // block) | (j % block >= block - c)
    return _causal(allowed) if causal else allowed


def attention_mask(config: TransformerConfig) -> torch.Tensor | None:
    """The boolean mask ``config.attention`` asks for, or None for dense attention."""
    T, causal = config.block_size, config.causal
    if config.attention == "strided":
        return strided_mask(T, config.stride, causal=causal)
    if config.attention == "fixed":
        return fixed_mask(T, config.stride, config.summary, causal=causal)
    return None


class SelfAttention(nn.Module):
    """Multi-head self-attention, dense (causal or not) or under a sparse mask."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.causal = config.causal
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_drop = nn.Dropout(config.dropout)
        self.register_buffer("mask", attention_mask(config), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.qkv(x).split(C, dim=2))
        p = self.dropout if self.training else 0.0
        if self.mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        else:
            # The patterns depend on (i, j) alone, so a shorter sequence takes the top corner.
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask[:T, :T], dropout_p=p)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    """The position-wise feed-forward net: widen 4×, GELU, project back."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """A pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """The trunk GPT and BERT share: embeddings, blocks, a final LayerNorm.

    Args:
        config: the hyperparameters.

    Shapes:
        int64 token ids B×T (T ≤ ``block_size``) → features B×T×``n_embd``.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ArgumentError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)


def _init_weights(model: nn.Module, n_layer: int) -> None:
    # GPT-2's initialization: N(0, 0.02), zero biases, and the projections that feed the
    # residual stream scaled by 1/sqrt(2 n_layer) so its variance does not grow with depth.
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.ndim == 2:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
            nn.init.normal_(p, mean=0.0, std=std)


@register("s11/gpt", (TransformerConfig.block_size,))
class GPT(nn.Module):
    """Session 11's decoder: next-token prediction under a causal (optionally sparse) mask.

    The LM head shares its weight with the token embedding (as GPT-2 does): a token's input
    vector is also the direction whose score says "this token comes next".

    Args:
        config: the hyperparameters; ``causal`` must be True. By default a 4-layer, 4-head,
            128-wide character model with a 64-token context (0.8 M parameters).
        **settings: instead of ``config``, its fields by name (how a recipe builds it).

    Shapes:
        int64 token ids B×T → logits B×T×``vocab_size``, position t predicting token t + 1.
    """

    def __init__(self, config: TransformerConfig | None = None, **settings) -> None:
        super().__init__()
        config = config or TransformerConfig(**settings)
        if not config.causal:
            raise ArgumentError("GPT predicts the next token, so config.causal must be True")
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        _init_weights(self, config.n_layer)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.transformer(idx))


@register("s11/bert", (TransformerConfig.block_size,))
class BERT(nn.Module):
    """Session 11's encoder: masked-token prediction, every position seeing every other.

    BERT's MLM head (dense → GELU → LayerNorm → vocabulary scores) reads the trunk; its output
    weight is the token embedding, with a bias of its own. No segment embeddings and no
    next-sentence task (RoBERTa showed the masked-token task suffices).

    Args:
        config: the hyperparameters; ``causal`` must be False. By default the character model
            of :class:`GPT` made bidirectional, with one extra token for ``[MASK]`` (66).
        **settings: instead of ``config``, its fields by name (how a recipe builds it).

    Shapes:
        int64 token ids B×T → logits B×T×``vocab_size`` for the token at each position.
    """

    def __init__(self, config: TransformerConfig | None = None, **settings) -> None:
        super().__init__()
        config = config or TransformerConfig(**{"vocab_size": 66, "causal": False, **settings})
        if config.causal:
            raise ArgumentError("BERT sees both sides of each token, so config.causal must be "
                             "False")
        self.config = config
        self.transformer = Transformer(config)
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.ln = nn.LayerNorm(config.n_embd)
        self.decoder = nn.Linear(config.n_embd, config.vocab_size)
        _init_weights(self, config.n_layer)
        self.decoder.weight = self.transformer.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.ln(F.gelu(self.dense(self.transformer(idx))))
        return self.decoder(h)


def parameter_formula(config: TransformerConfig, model: str = "gpt") -> int:
    """The parameter count of :class:`GPT` or :class:`BERT` worked out by hand.

    Embeddings V·d + T·d; per block two LayerNorms (4d), qkv (3d² + 3d), the attention
    projection (d² + d) and the MLP (8d² + 5d), so 12d² + 13d; the final LayerNorm 2d. GPT's
    head is tied (nothing new); BERT's adds a dense layer (d² + d), a LayerNorm (2d) and a
    vocabulary bias (V).

    Args:
        config: the hyperparameters.
        model: ``"gpt"`` or ``"bert"``.

    Returns:
        The number of trainable parameters.
    """
    V, T, L, d = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    trunk = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d
    if model == "gpt":
        return trunk
    if model == "bert":
        return trunk + d * d + 3 * d + V
    raise ArgumentError(f"model must be 'gpt' or 'bert', got {model!r}")


def sample_top_k(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = 40,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row from the ``top_k`` highest-scoring ones.

    Args:
        logits: B×V scores.
        temperature: divides the scores: below 1 sharpens the distribution towards the best
            token, above 1 flattens it. Must be positive; ``top_k=1`` is greedy decoding.
        top_k: keep only this many best tokens (ties with the k-th are kept); None keeps all.
        generator: draws the tokens; must live on ``logits``' device.

    Returns:
        int64 B×1 token ids.
    """
    if temperature <= 0:
        raise ArgumentError(f"temperature must be positive (top_k=1 decodes greedily), "
                         f"got {temperature}")
    logits = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ArgumentError(f"top_k must be a positive integer or None, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, steps: int, temperature: float = 1.0,
             top_k: int | None = 40, generator: torch.Generator | None = None) -> torch.Tensor:
    """Extend each sequence by ``steps`` tokens sampled from the model, one at a time.

    The model sees at most its last ``config.block_size`` tokens. It runs in eval mode (no
    dropout) and is left in the mode it came in.

    Args:
        model: a :class:`GPT` (anything with ``config.block_size`` mapping B×T ids to B×T×V).
        idx: int64 B×T prompt.
        steps: tokens to add.
        temperature, top_k, generator: as in :func:`sample_top_k`.

    Returns:
        int64 B×(T + steps): the prompt and what followed.
    """
    with evaluating(model):
        for _ in range(steps):
            logits = model(idx[:, -model.config.block_size:])[:, -1, :]
            idx = torch.cat([idx, sample_top_k(logits, temperature, top_k, generator)], dim=1)
    return idx

