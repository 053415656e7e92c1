from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evakit.errors import ArgumentError
from evakit.models import count_parameters, create, input_size
from evakit.models.language import (
    BERT,
    GPT,
    TransformerConfig,
    fixed_mask,
    generate,
    parameter_formula,
    sample_top_k,
    strided_mask,
)


def small(**changes) -> TransformerConfig:
    settings = dict(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32, stride=4)
    return TransformerConfig(**{**settings, **changes})


def drawn(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in row] for row in rows])


# --- sparse masks, against cases drawn by hand from Child et al.'s definitions ---

def test_strided_mask_matches_the_hand_drawn_case():
    # Stride 3: the last 3 positions (i - j < 3) and every 3rd before them.
    assert torch.equal(strided_mask(8, 3), drawn([
        "10000000",
        "11000000",
        "11100000",
        "11110000",
        "01111000",
        "00111100",
        "10011110",
        "01001111",
    ]))
    assert torch.equal(strided_mask(8, 3, causal=False), strided_mask(8, 3, causal=False).T)
    assert torch.equal(strided_mask(8, 3, causal=False).tril(), strided_mask(8, 3))


def test_fixed_mask_matches_the_hand_drawn_cases():
    # Blocks of 4: one's own block so far, and the last cell (c=1) of each earlier block.
    assert torch.equal(fixed_mask(8, 4, 1), drawn([
        "10000000",
        "11000000",
        "11100000",
        "11110000",
        "00011000",
        "00011100",
        "00011110",
        "00011111",
    ]))
    # c=2: the last two cells of each block summarize it.
    assert torch.equal(fixed_mask(8, 4, 2)[4:], drawn([
        "00111000",
        "00111100",
        "00111110",
        "00111111",
    ]))
    # Without causality the first block also reads the second block's summary.
    assert fixed_mask(8, 4, 1, causal=False)[0].tolist() == [True] * 4 + [False] * 3 + [True]
    with pytest.raises(ValueError, match="c must lie in 1..block"):
        fixed_mask(8, 4, 5)


# --- causality: the future never reaches the past, whatever the pattern ---

@pytest.mark.parametrize("attention", ["dense", "strided", "fixed"])
def test_a_later_token_leaves_earlier_logits_exactly_unchanged(attention):
    torch.manual_seed(0)
    model = GPT(small(attention=attention)).eval()
    idx = torch.randint(0, 20, (3, 16))
    changed = idx.clone()
    changed[:, 10] = (idx[:, 10] + 1) % 20
    with torch.no_grad():
        before, after = model(idx), model(changed)
    assert torch.equal(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])
    # A shorter sequence gets the same logits: the mask's top corner is the right one.
    with torch.no_grad():
        assert torch.allclose(model(idx[:, :10]), before[:, :10], atol=1e-5)


@pytest.mark.parametrize("attention,mask", [("strided", strided_mask(16, 4)),
                                            ("fixed", fixed_mask(16, 4, 1))])
def test_one_sparse_layer_reads_exactly_the_positions_its_mask_allows(attention, mask):
    torch.manual_seed(0)
    model = GPT(small(n_layer=1, attention=attention)).eval()
    idx = torch.randint(0, 20, (1, 16))
    i = 13
    with torch.no_grad():
        base = model(idx)[0, i]
        for j in range(i):
            changed = idx.clone()
            changed[0, j] = (idx[0, j] + 1) % 20
            moved = not torch.equal(model(changed)[0, i], base)
            assert moved == bool(mask[i, j]), f"position {i} vs token {j}"


def test_bert_sees_both_sides_and_gpt_refuses_to():
    torch.manual_seed(0)
    model = BERT(small(causal=False)).eval()
    idx = torch.randint(0, 20, (2, 16))
    changed = idx.clone()
    changed[:, 10] = (idx[:, 10] + 1) % 20
    with torch.no_grad():
        assert model(idx).shape == (2, 16, 20)
        assert not torch.allclose(model(idx)[:, :10], model(changed)[:, :10])
    with pytest.raises(ValueError, match="causal must be True"):
        GPT(small(causal=False))
    with pytest.raises(ValueError, match="causal must be False"):
        BERT(small())


def test_config_rejects_bad_settings_in_one_sentence():
    with pytest.raises(ArgumentError, match=r"n_embd \(30\) must be a multiple of n_head \(4\)"):
        small(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="attention must be one of"):
        small(attention="local")
    with pytest.raises(ValueError, match="exceeds block_size 16"):
        GPT(small())(torch.zeros(1, 17, dtype=torch.long))


# --- size ---

def test_parameter_counts_equal_the_hand_formula():
    cfg = small(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=16)
    # V·d + T·d + L·(12d² + 13d) + 2d = 160 + 128 + 2·3280 + 32; BERT adds d² + 3d + V.
    assert count_parameters(GPT(cfg)) == parameter_formula(cfg) == 6880
    bert = BERT(replace(cfg, causal=False))
    assert count_parameters(bert) == parameter_formula(cfg, "bert") == 6880 + 256 + 48 + 10
    gpt = GPT()
    assert count_parameters(gpt) == 809_856
    assert gpt.lm_head.weight is gpt.transformer.wte.weight  # tied, counted once


def test_models_are_found_by_name():
    assert input_size("s11/gpt") == input_size("s11/bert") == (64,)
    assert isinstance(create("s11/gpt"), GPT)
    bert = create("s11/bert", config=small(causal=False, attention="fixed"))
    assert bert.config.attention == "fixed"


# --- sampling ---

def test_top_k_never_samples_outside_the_k_best():
    logits = torch.tensor([0.5, 2.0, -1.0, 1.5, 0.0, 1.9, -3.0, 1.0, 0.2, 1.4])
    draws = sample_top_k(logits.expand(20_000, 10), top_k=3,
                         generator=torch.Generator().manual_seed(0)).flatten()
    counts = torch.bincount(draws, minlength=10)
    assert set(draws.unique().tolist()) == {1, 3, 5}
    expected = F.softmax(logits[[1, 3, 5]], dim=0)
    assert torch.allclose(counts[[1, 3, 5]] / 20_000, expected, atol=0.015)


class FixedLogits(nn.Module):
    """A stand-in model whose next-token scores never change."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.config = TransformerConfig(vocab_size=len(logits), block_size=4)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        assert idx.shape[1] <= self.config.block_size
        return self.logits.expand(*idx.shape, -1)


def test_generate_samples_from_the_top_k_and_crops_the_context():
    model = FixedLogits(torch.arange(30.0) % 7)  # the best scores, 6, sit at 6, 13, 20, 27
    prompt = torch.zeros(50, 6, dtype=torch.long)
    out = generate(model, prompt, 40, top_k=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (50, 46) and torch.equal(out[:, :6], prompt)
    assert set(out[:, 6:].unique().tolist()) == {6, 13, 20, 27}


def test_temperature_towards_zero_approaches_greedy():
    logits = torch.tensor([[1.0, 1.3, 0.2, 1.2]]).expand(4000, 4)
    share = []
    for t in (2.0, 1.0, 0.3, 0.05):
        draws = sample_top_k(logits, temperature=t, top_k=None,
                             generator=torch.Generator().manual_seed(1))
        share.append((draws == 1).float().mean().item())
    assert share == sorted(share) and share[0] < 0.35 and share[-1] > 0.85
    with pytest.raises(ValueError, match="temperature must be positive"):
        sample_top_k(logits, temperature=0.0)

    torch.manual_seed(0)
    model = GPT(small(n_embd=32, dropout=0.1)).train()
    prompt = torch.randint(0, 20, (2, 3))
    greedy = prompt
    with torch.no_grad():
        model.eval()
        for _ in range(20):
            greedy = torch.cat([greedy, model(greedy[:, -16:])[:, -1].argmax(-1, keepdim=True)], 1)
        model.train()
    cold = generate(model, prompt, 20, temperature=1e-4, top_k=None,
                    generator=torch.Generator().manual_seed(2))
    assert torch.equal(cold, greedy)
    assert model.training  # generate switched dropout off and then restored the mode


# --- it learns ---

@pytest.mark.parametrize("attention", ["dense", "fixed"])
def test_gpt_learns_a_periodic_sequence(attention):
    torch.manual_seed(0)
    model = GPT(small(n_layer=1, attention=attention))
    x = torch.tensor([[0, 1, 2, 3, 4, 5, 6] * 3])[:, :17]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 20), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
