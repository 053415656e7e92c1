# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Session 11 — Transformers: a ViT again, BERT, GPT, sparse attention, a CLIP
#
# Session 10 built the Vision Transformer. This session first trains it again, one
# ingredient at a time, to see what each part of its recipe buys. Then it turns to text,
# where transformers began: how text becomes tokens (characters, then byte-pair
# encoding), an encoder trained like BERT to fill in hidden characters, a decoder
# trained like GPT to write the next one, and the Sparse Transformer's masks that let a
# token attend to a fraction of the past. It ends where the two halves meet: a CLIP of
# our own, an image encoder and a text encoder trained together until a digit and a
# sentence about it land on the same point — and then it classifies digits from
# sentences it never saw.
#
# **Objectives.** After this session you can
# - say what augmentation, warm-up, weight decay and label smoothing each do for a small
#   ViT, and read their effect from short recorded runs;
# - tokenize text by characters and by byte-level BPE, and compare language models
#   across tokenizations in bits per character;
# - write causal attention by hand (−∞ above the diagonal before the softmax), the
#   next-token loss, and top-k sampling with a temperature;
# - train a BERT-style encoder on masked tokens and a GPT-style decoder on next tokens,
#   and explain why RoBERTa dropped BERT's next-sentence task;
# - draw the Sparse Transformer's strided and fixed masks, and say what they cost and
#   save;
# - measure and speed up training on a CPU (`evakit bench gpt`);
# - train a CLIP with the symmetric contrastive loss and a learned temperature, and use
#   it for zero-shot classification and text-to-image retrieval;
# - train a character GPT no bigger than nanoGPT's CPU model to a lower held-out loss
#   than nanoGPT reports for it, graded by `evakit check s11` (the assignment).

# %%
import evakit

S = evakit.setup(seed=1)
print(S)

# %%
import math
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from evakit import bench, clip, data, models, recipes, records, runner, text, train, viz
from evakit.check import GPT_TARGET_LOSS, NANOGPT_CPU, grade
from evakit.metrics import binomial_std_error
from evakit.models import language
from evakit.table import Table


def recorded(name: str):
    """The record of ``name``, or None while it has none."""
    return records.load(name) if records.path_for(name).is_file() else None


def say(markdown: str) -> None:
    display(Markdown(markdown))


# %% [markdown]
# ## 1. Training a ViT again
#
# A convolution assumes that what matters is local and that it matters the same
# everywhere; a ViT assumes neither, and has to learn both from the data. On 50 000
# CIFAR-10 images that makes it hungry, and its recipe from session 10 has four
# ingredients that a ResNet can often do without:
#
# - **Augmentation** (random crop after 4 pixels of padding, horizontal flip): every
#   epoch shows the same images shifted and mirrored, so translation invariance — built
#   into a convolution — is learned from examples instead of memorised away.
# - **Warm-up**: the learning rate rises from a 25th of its peak over the first 20 % of
#   the steps. At the start Adam's estimate of each gradient's variance rests on a
#   handful of batches, and a large step through attention's softmax can saturate it for
#   good; small steps first let both settle.
# - **Weight decay** 0.05, AdamW's (decoupled: it shrinks the weights directly, not
#   through the adaptive gradient). A transformer has no batch norm to regularise it.
# - **Label smoothing** 0.1: the target puts 0.91 on the right class and 0.01 on each
#   other, so the logits stop growing once the model is right, and confidence stays
#   honest.
#
# Each is switched on in turn, keeping the ones before, in 5-epoch runs of session 10's
# ViT (0.57 M parameters) on all 50 000 training images; `s11/vit` then trains the full
# recipe for 28 epochs. The recipes, from the recipe table:

# %%
ABLATION = [f"s11/vit-{step}" for step in ("plain", "aug", "warmup", "wd", "ls")]


def ingredients(recipe: recipes.Recipe) -> list:
    crop = f"crop {recipe.crop_padding} + flip" if recipe.crop_padding else "none"
    return [crop, "no" if recipe.lr_start == recipe.lr else "20 %", recipe.weight_decay,
            recipe.label_smoothing, recipe.epochs]


display(Table(["recipe", "augmentation", "warm-up", "weight decay", "label smoothing",
               "epochs"],
              [[n, *ingredients(recipes.get(n))] for n in [*ABLATION, "s11/vit"]],
              "the ViT ablation: one ingredient more per row (AdamW, peak lr 1e-3, "
              "one-cycle)"))

# %% tags=["remove-cell"]
_v = [recipes.get(n) for n in [*ABLATION, "s11/vit"]]
assert all(r.epochs == 5 for r in _v[:-1]) and _v[-1].epochs == 28
assert all(r.model == "s10/vit" and r.pct_start == 0.2 and r.lr == 1e-3 for r in _v)
assert round(models.count_parameters(_v[0].build_model()) / 1e6, 2) == 0.57
_last = _v[-1]
assert (_last.weight_decay, _last.label_smoothing, _last.crop_padding) == (0.05, 0.1, 4)

# %% [markdown]
# Without warm-up the one-cycle schedule starts at its peak and only anneals; with it,
# the rate climbs first. Both, for the 5-epoch runs (391 batches of 128 per epoch):

# %%
def one_cycle(recipe: recipes.Recipe, steps_per_epoch: int) -> list[float]:
    """The learning rate of every step, as the runner's OneCycleLR sets it."""
    start = recipe.lr_start or recipe.lr / 25
    probe = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        probe, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=recipe.pct_start, div_factor=recipe.lr / start,
        final_div_factor=start / (recipe.lr_end or start / 1e4))
    lrs = []
    for _ in range(recipe.epochs * steps_per_epoch):
        lrs.append(probe.param_groups[0]["lr"])
        probe.step()
        schedule.step()
    return lrs


steps_per_epoch = math.ceil(50_000 / recipes.get("s11/vit-aug").batch_size)
fig, ax = plt.subplots(figsize=(7, 3))
for name, label in (("s11/vit-aug", "no warm-up"), ("s11/vit-warmup", "warm-up")):
    lrs = one_cycle(recipes.get(name), steps_per_epoch)
    ax.plot(np.arange(len(lrs)) / steps_per_epoch, lrs, label=f"{name}: {label}")
ax.set_xlabel("epoch")
ax.set_ylabel("learning rate")
ax.legend()
fig.tight_layout()

# %% [markdown]
# **What each buys.** The last epoch of each recorded run. Train accuracy is measured on
# the augmented batches as they were trained on. A recording machine without the
# internet holds only the first 1 000 official CIFAR-10 test images, and on 1 000 images
# one standard error of an accuracy near 60 % is 1.5 points: a difference between two
# single-seed runs needs to be several points wide before it means anything. The prose
# under the table names the test set the records used and the width that counts.

# %%
def ablation_rows(names: list[str]) -> list[list]:
    rows = []
    for name in names:
        r = recorded(name)
        what = recipes.get(name).summary.split(": ", 1)[1].rstrip(".")
        if r is None:
            rows.append([name, what, "no record", "", "", "", ""])
            continue
        h = r.history
        gap = h.train_acc[-1] - h.test_acc[-1]
        rows.append([name, what, f"{h.train_acc[-1]:.2f}", f"{h.test_acc[-1]:.2f}",
                     f"{gap:+.2f}", f"{h.test_loss[-1]:.3f}",
                     f"{r.wall_seconds / 60:.1f}"])
    return rows


display(Table(["recipe", "what changed", "train acc %", "test acc %", "gap",
               "test loss", "minutes"], ablation_rows(ABLATION),
              "5-epoch runs of s10/vit on CIFAR-10, generated from book/records"))

# %% tags=["remove-input"]
ablation = {name: recorded(name) for name in ABLATION}
def noise_points(accuracy: float, n: int) -> float:
    """Two standard errors of the difference of two accuracies near ``accuracy`` (in %),
    each measured on the same ``n`` test images by an independent run."""
    return 2 * math.sqrt(2) * 100 * binomial_std_error(accuracy / 100, n)


if all(ablation.values()):
    words = {"s11/vit-aug": "Augmentation", "s11/vit-warmup": "Warm-up",
             "s11/vit-wd": "Weight decay", "s11/vit-ls": "Label smoothing"}
    lines = []
    for before, after in zip(ABLATION, ABLATION[1:]):
        a, b = ablation[before].history, ablation[after].history
        delta = b.test_acc[-1] - a.test_acc[-1]
        noise = noise_points(b.test_acc[-1], ablation[after].data["test"].size)
        verdict = ("within the noise of one seed" if abs(delta) < noise
                   else "a real gain" if delta > 0 else "a real loss")
        gap = (b.train_acc[-1] - b.test_acc[-1]) - (a.train_acc[-1] - a.test_acc[-1])
        lines.append(f"- **{words[after]}**: test accuracy {a.test_acc[-1]:.2f} → "
                     f"{b.test_acc[-1]:.2f} % ({delta:+.2f} points, {verdict}: two "
                     f"standard errors of the difference are {noise:.1f}); the "
                     f"train–test gap moves by {gap:+.2f} points.")
    tested = ablation[ABLATION[-1]].test_set()
    say(f"**Reading the table** (tested on {tested}).\n\n" + "\n".join(lines)
        + "\n\nFive epochs measure what an ingredient does early in training. A "
        "regulariser makes the training batches harder now; its payoff, if any, comes "
        "later, when a model without it would start memorising — which only a longer "
        "run, like the final recipe's below, can show.")
else:
    say("*The ablation's records are not all in `book/records/` yet, so this page "
        "draws no conclusion from it. `evakit train NAME --record` for each recipe in "
        "the table makes them (the minutes column says how long each recorded one "
        "took).*")

# %% [markdown]
# **The final recipe**, `s11/vit`: everything on, 28 epochs (its record says how long it
# took). Beside it, session 10's run of the same recipe for 25 epochs when both records
# exist:

# %%
say(records.results_or_missing("s11/vit"))
finals = {name: recorded(name) for name in ("s11/vit", "s10/vit")}
if finals["s11/vit"] is not None:
    viz.curves({name: r.history for name, r in finals.items() if r is not None});

# %% tags=["remove-input"]
if None not in finals.values():
    ours, before = finals["s11/vit"], finals["s10/vit"]
    delta = ours.final_test_acc - before.final_test_acc
    noise = noise_points(ours.final_test_acc, ours.data["test"].size)
    verdict = ("within the noise of one seed each" if abs(delta) < noise
               else "more than the noise" if delta > 0 else "less, beyond the noise")
    say(f"""`s11/vit` ended at {ours.final_test_acc:.2f} % after {ours.epochs_run}
epochs, `s10/vit` at {before.final_test_acc:.2f} % after {before.epochs_run}:
{delta:+.2f} points, {verdict} (two standard errors of the difference are
{noise:.1f}). Differences of this size between two runs of the same ingredients are
what the ablation above must be read against.""")

# %% [markdown]
# (s11-tokens)=
# ## 2. Tokens: characters first, then byte-pair encoding
#
# A language model reads integers. The simplest map gives every character its own: Tiny
# Shakespeare (Karpathy's 1.1 MB of plays) has 65 distinct characters. nanoGPT's split
# holds out the last 10 % of the text, and every number on this page is measured there.

# %%
shakespeare = text.tiny_shakespeare()
train_text, test_text = text.split(shakespeare)
chars = text.CharTokenizer(shakespeare)
print(f"{len(shakespeare):,} characters: {len(train_text):,} for training, "
      f"{len(test_text):,} held out; vocabulary of {chars.vocab_size}:")
print(repr("".join(chars.chars)))
line = test_text[test_text.index("\n") + 1:][:60]
print(repr(line), "→", chars.encode(line)[:12].tolist(), "…")

# %% [markdown]
# Characters make long sequences: a 64-token context is 64 characters, a line or two.
# **Byte-pair encoding** (Sennrich et al. 2016, as GPT-2 applies it to bytes) starts
# from the 256 byte values and repeatedly merges the most frequent adjacent pair into a
# new token, until the vocabulary has the size asked for. Frequent words become one
# token, rare ones stay in pieces, and nothing is ever unknown. The `tokenizers` library
# learns 512 tokens from the training text — the same tokenizer the `s11/gpt-bpe` recipe
# trains; the cell times it, with the encoding of both splits, on the machine running it:

# %%
start = time.perf_counter()
bpe_train, bpe_test = text.shakespeare_tokens("shakespeare-bpe", vocab_size=512)
bpe_seconds = time.perf_counter() - start
bpe = bpe_train.tokenizer
ids = bpe.encode(line)
print(f"vocabulary: {bpe.vocab_size} (256 bytes + {bpe.vocab_size - 256} merges), "
      f"learnt and both splits encoded in {bpe_seconds:.1f} s here")
print(" | ".join(bpe.decode([i]) for i in ids.tolist()))
assert bpe.decode(ids) == line                         # nothing lost

# %% tags=["remove-cell"]
assert chars.vocab_size == 65 and bpe.vocab_size == 512
assert round(bpe.vocab_size / chars.vocab_size) == 8

# %%
char_test = chars.encode(test_text)
per_token = len(test_text) / len(bpe_test)
tokenizations = Table(
    ["tokenizer", "vocabulary", "held-out tokens", "characters per token",
     "embedding parameters (width 128)", "characters in a 64-token context"],
    [["characters", chars.vocab_size, f"{len(char_test):,}", 1.0,
      f"{chars.vocab_size * 128:,}", 64],
     ["byte-level BPE", bpe.vocab_size, f"{len(bpe_test):,}", round(per_token, 2),
      f"{bpe.vocab_size * 128:,}", round(64 * per_token)]],
    "the held-out 10 % of Tiny Shakespeare, tokenized both ways")
display(tokenizations)

# %% [markdown]
# What BPE changes: a sequence shrinks by that factor, so the same context window reads
# that many times more text and a step costs the same; the embedding table grows
# eightfold; and every token is now a harder prediction — one of 512 instead of one of
# sixty-five. A loss per token therefore cannot be compared across tokenizations. A
# loss per **character** can: the model's loss summed over a text is the same whatever
# we divide it by, so
#
# $$\text{nats per character} = \frac{\text{nats per token}}
# {\text{characters per token}}, \qquad \text{bits} = \frac{\text{nats}}{\ln 2}.$$
#
# The two recorded models, the same network over the two vocabularies, on the held-out
# text:

# %%
def per_character(name: str, chars_per_token: float) -> list:
    r = recorded(name)
    if r is None:
        return [name, "no record", "", "", ""]
    loss = r.history.test_loss[-1]
    nats = loss / chars_per_token
    return [name, f"{loss:.3f}", round(chars_per_token, 2), f"{nats:.3f}",
            f"{nats / math.log(2):.3f}"]


display(Table(["recipe", "held-out loss (nats per token)", "characters per token",
               "nats per character", "bits per character"],
              [per_character("s11/gpt", 1.0), per_character("s11/gpt-bpe", per_token)],
              "last epoch of each record; BPE converted with the measured characters "
              "per token"))

# %% tags=["remove-input"]
gpt_char, gpt_bpe = recorded("s11/gpt"), recorded("s11/gpt-bpe")
if gpt_char and gpt_bpe:
    c = gpt_char.history.test_loss[-1]
    b = gpt_bpe.history.test_loss[-1] / per_token
    better = "BPE" if b < c else "characters"
    bits = abs(c - b) / math.log(2)
    say(f"Per character, the BPE model's {b:.3f} nats against the character model's "
        f"{c:.3f}: {better} ahead by {bits:.3f} bits per character, with the same "
        f"parameters in the transformer blocks and the same number of training steps — "
        f"but the BPE model saw about {per_token:.1f} times as much text per step and "
        f"per context window.")
else:
    say("*Both records are needed for the comparison; `evakit train s11/gpt --record` "
        "and `evakit train s11/gpt-bpe --record` make them.*")

# %% [markdown]
# (s11-gpt)=
# ## 3. The GPT-style decoder
#
# ### Causal attention, by hand
#
# A decoder predicts token $t+1$ from tokens $\le t$, and it learns that for every
# position of a window at once — which only works if position $t$ cannot look ahead.
# Attention's scores $QK^\top/\sqrt{d}$ are computed for every pair; before the softmax,
# every score above the diagonal (a key later than its query) is set to $-\infty$, whose
# exponential is zero. Each row then spreads its weight over the past only:

# %%
torch.manual_seed(0)
T, d = 6, 8
q, k, v = torch.randn(3, T, d).unbind(0)
scores = q @ k.T / math.sqrt(d)
causal = torch.ones(T, T, dtype=torch.bool).tril()         # True: key j ≤ query i
masked = scores.masked_fill(~causal, float("-inf"))
weights = masked.softmax(dim=-1)
attended = weights @ v

reference = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
print(f"largest difference from F.scaled_dot_product_attention(is_causal=True): "
      f"{(attended - reference).abs().max():.1e}")
assert torch.allclose(attended, reference, atol=1e-6)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
panels = [(scores, "scores QKᵀ/√d", "{:.1f}"), (masked, "masked: −∞ above the diagonal",
                                                "{:.1f}"),
          (weights, "softmax: each row sums to 1", "{:.2f}")]
for ax, (m, title, fmt) in zip(axes, panels):
    shown = m.masked_fill(torch.isinf(m), float("nan"))
    ax.imshow(shown, cmap="viridis")
    for (i, j), value in np.ndenumerate(m.numpy()):
        label = "−∞" if np.isinf(value) else fmt.format(value)
        ax.text(j, i, label, ha="center", va="center", fontsize=8,
                color="black" if np.isinf(value) else "white")
    ax.set_title(title)
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
fig.tight_layout()

# %% [markdown]
# ### The next-token loss
#
# A window of $T+1$ tokens gives $T$ examples: inputs $x_{0..T-1}$, targets $x_{1..T}$.
# The loss is the cross-entropy of each position's scores against its target, averaged.
# An untrained model spreads its probability evenly, so its loss starts near
# $\ln 65 \approx 4.17$ nats:

# %%
gpt = models.create("s11/gpt").eval()
window = char_test[:65]
x, y = window[:-1][None], window[1:][None]
with torch.no_grad():
    logits = gpt(x)                                               # 1 × 64 × 65
log_probs = logits.log_softmax(dim=-1)[0]
by_hand = -log_probs[torch.arange(64), y[0]].mean()
print(f"by hand {by_hand:.4f}, F.cross_entropy {F.cross_entropy(logits[0], y[0]):.4f}, "
      f"ln 65 = {math.log(65):.4f}")
assert torch.isclose(by_hand, F.cross_entropy(logits[0], y[0]))
assert abs(by_hand - math.log(65)) < 0.1

# %% [markdown]
# ### Sampling: temperature and top-k
#
# To write, the model scores every token that could come next, and we draw one. Dividing
# the scores by a **temperature** below 1 sharpens the distribution (towards the best
# token; $\to 0$ is greedy decoding), above 1 flattens it. **Top-k** keeps only the $k$
# best tokens and renormalises, so the long tail of unlikely characters — each
# improbable, but together likely enough to derail a sentence every few words — is never
# drawn. GPT-2's samples used $k = 40$, and so does this page. By hand, checked against
# `evakit.models.language`:

# %%
def top_k_probabilities(scores: torch.Tensor, k: int = 40,
                        temperature: float = 1.0) -> torch.Tensor:
    """What top-k sampling draws from: scores / T, all but the k best set to −∞."""
    scaled = scores / temperature
    kth_best = scaled.topk(k, dim=-1).values[..., -1:]
    return scaled.masked_fill(scaled < kth_best, float("-inf")).softmax(dim=-1)


ranks = torch.arange(1, 66, dtype=torch.float32)
scores = -1.2 * torch.log(ranks)[None]                  # illustrative, Zipf-like scores
g_ours, g_theirs = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
for _ in range(20):                  # the same draws from the same generator state
    ours = torch.multinomial(top_k_probabilities(scores, 40, 0.8), 1, generator=g_ours)
    assert torch.equal(ours, language.sample_top_k(scores, 0.8, 40, generator=g_theirs))
assert (top_k_probabilities(scores, 40)[0, 40:] == 0).all()

fig, axes = plt.subplots(1, 3, figsize=(13, 3), sharey=True)
for ax, temperature in zip(axes, (0.5, 1.0, 2.0)):
    plain = (scores / temperature).softmax(dim=-1)[0]
    ax.bar(np.arange(65), plain.numpy(), color="lightgrey", label="softmax(scores / T)")
    ax.bar(np.arange(65), top_k_probabilities(scores, 40, temperature)[0].numpy(),
           color="C0", alpha=0.8, label="top-40: what is drawn from")
    ax.set_title(f"temperature {temperature}")
    ax.set_xlabel("token, best first")
axes[0].set_ylabel("probability")
axes[0].legend(fontsize=8)
fig.suptitle("Illustrative Zipf-like scores: top-k gives the tail's mass to the best")
fig.tight_layout()

# %% [markdown]
# ### Training it from scratch: `s11/gpt`
#
# The network is the small CPU configuration of nanoGPT's character model (its "baby GPT"
# has 6 blocks of width 384 and a context of 256): 4 blocks, 4 heads, width 128, context
# 64, 0.81 M parameters, pre-norm, the output layer tied to the token embedding. nanoGPT
# trains it for 2 000 batches of 12 windows and reports a loss of **1.88** (its README
# does not say on which split; this page compares held-out loss with it, the stricter
# reading). The
# recipe trains it ten epochs of 250 batches of 64 (10.2 M tokens) with AdamW, a short
# warm-up and a cosine descent, in bf16 where the CPU has it. In FAST mode a one-layer,
# 32-wide copy runs one epoch to show the loop:

# %% tags=["remove-cell"]
_r = recipes.get("s11/gpt")
assert (_r.epochs, _r.steps, _r.batch_size, _r.optimizer) == (10, 250, 64, "adamw")
assert round(_r.epochs * _r.steps * _r.batch_size * 64 / 1e6, 1) == 10.2
assert round(models.count_parameters(_r.build_model()) / 1e6, 2) == 0.81

# %%
gpt_recipe = recipes.get("s11/gpt")
live = runner.run(gpt_recipe)
print(f"{live.label}: held-out loss {live.history.test_loss[-1]:.3f} nats per "
      f"character after {len(live.history)} epoch(s), {live.wall_seconds:.0f} s on "
      f"{live.device} ({live.precision})")

# %%
gpt_record = recorded("s11/gpt")
if gpt_record is None:
    say(records.results_or_missing("s11/gpt"))
else:
    h = gpt_record.history
    loss = h.test_loss[-1]
    below = "below" if loss < 1.88 else "not below"
    say(f"**Results.** Held-out loss after {len(h)} epochs: **{loss:.3f}** nats per "
        f"character ({loss / math.log(2):.2f} bits), against nanoGPT's 1.88 for the "
        f"same network — {below} it; the next character is predicted exactly "
        f"{h.test_acc[-1]:.1f} % of the time. Parameters: {gpt_record.params:,}. "
        f"*{gpt_record.provenance()}.*")
    display(gpt_record.epochs_table())
    viz.curves({"s11/gpt": h}, metrics=("loss",));

# %% [markdown]
# **What it writes.** The record keeps three samples drawn from the final model when it
# was recorded — top-40, temperature 1, each starting from a newline:

# %%
if gpt_record is not None:
    for i, sample in enumerate(gpt_record.outputs["samples"]["texts"], 1):
        print(f"--- sample {i} ---\n{sample[:300]}\n")
else:
    print("No record of s11/gpt yet, so no samples: they come from the recorded model.")

# %% [markdown]
# The recorded weights stay beside the record (the model is small), so the page can also
# sample live from the same model, with a fixed seed, at three temperatures:

# %%
if records.weights_path("s11/gpt").is_file():
    trained_gpt = records.load_model("s11/gpt")
    prompt = chars.encode("ROMEO:\n")[None]
    for temperature in (0.5, 1.0, 1.5):
        out = language.generate(trained_gpt, prompt, 200, temperature=temperature,
                                top_k=40, generator=torch.Generator().manual_seed(0))
        print(f"--- temperature {temperature} ---\n{chars.decode(out[0])}\n")
else:
    print("No recorded weights of s11/gpt yet: `evakit train s11/gpt --record` keeps "
          "them.")

# %% [markdown]
# ## 4. The BERT-style encoder
#
# An encoder sees the whole sequence in both directions — no causal mask — so it cannot
# be trained to predict the next token: it could just look. BERT (Devlin et al. 2019)
# hides tokens instead and asks for them back. It chooses 15 % of the positions; of
# those, 80 % become `[MASK]`, 10 % a random token and 10 % stay as they are, so the
# model cannot learn that only `[MASK]` positions need an answer (at fine-tuning time
# there are none). Only the chosen positions are scored. On a held-out line, with
# `[MASK]` drawn as `▮`:

# %%
mask_chars = text.CharTokenizer(shakespeare, specials=(text.MASK,))
mask_id = mask_chars.token_id(text.MASK)
line_ids = mask_chars.encode(line)
inputs, targets = text.mask_tokens(line_ids, mask_id, mask_chars.vocab_size,
                                   generator=torch.Generator().manual_seed(4))
shown = "".join("▮" if i == mask_id else mask_chars.itos[i] for i in inputs.tolist())
print("original:", repr(line))
print("input:   ", repr(shown))
chosen = (targets != text.IGNORE).nonzero().flatten().tolist()
print("scored positions:", chosen, "→", repr("".join(line[i] for i in chosen)))

# %% [markdown]
# `s11/bert` is the same trunk as the GPT (4 blocks, width 128, context 64) without the
# causal mask, with BERT's prediction head, trained on the same text and steps. A fair
# yardstick for its accuracy is the **unigram baseline**: always answer the character
# most frequent among the masked ones — no context at all. Both numbers come from the
# record, measured on the same held-out batches:

# %%
bert_record = recorded("s11/bert")
if bert_record is None:
    say(records.results_or_missing("s11/bert"))
else:
    acc, base = bert_record.final_test_acc, bert_record.metrics["unigram_baseline_acc"]
    say(f"**Results.** Masked characters recovered: **{acc:.1f} %** of the held-out "
        f"ones, against {base:.1f} % for the unigram baseline ({acc / base:.1f}×). "
        f"Held-out loss {bert_record.history.test_loss[-1]:.3f} nats per masked "
        f"character. *{bert_record.provenance()}.*")

# %% [markdown]
# With the recorded weights, the encoder fills in a held-out line with every fifth
# character hidden — it reads the characters on both sides of each gap:

# %%
if records.weights_path("s11/bert").is_file():
    trained_bert = records.load_model("s11/bert")
    hidden = line_ids.clone()
    gaps = torch.arange(2, len(hidden), 5)
    hidden[gaps] = mask_id
    with torch.no_grad():
        guess = trained_bert(hidden[None])[0].argmax(-1)
    filled = hidden.clone()
    filled[gaps] = guess[gaps]
    right = (guess[gaps] == line_ids[gaps]).float().mean()
    print("hidden:", repr("".join("▮" if i == mask_id else mask_chars.itos[i]
                                  for i in hidden.tolist())))
    print("filled:", repr(mask_chars.decode(filled)))
    print(f"{100 * right:.0f} % of the {len(gaps)} gaps right")
else:
    print("No recorded weights of s11/bert yet: `evakit train s11/bert --record` keeps "
          "them.")

# %% [markdown]
# **The next-sentence task, and why it went.** BERT had a second pre-training task:
# given two segments A and B, say whether B followed A in the text (half the time it
# did; half the time B came from another document), read from a `[CLS]` token, with a
# segment embedding telling A from B. The idea was to teach relations between sentences
# for tasks like question answering and inference. RoBERTa (Liu et al. 2019) trained
# BERT again, carefully, and found that removing next-sentence prediction — feeding
# full-length runs of contiguous sentences and keeping the masked-token loss alone —
# matched or slightly improved downstream performance, while pairs of single sentences
# (shorter than the context) hurt: the model learns long-range structure from long
# contiguous text. Why the task helped so little: a random B from another document
# usually differs in *topic*, so the task can be solved by matching topics, which the
# masked-token task already teaches (ALBERT's authors, Lan et al. 2019, made this
# argument, and replaced it with a harder sentence-*order* task). This page's `BERT` has no segment embeddings
# and no next-sentence head.
#
# (s11-sparse)=
# ## 5. Sparse attention
#
# Dense attention scores every pair: $T^2$ scores per head per layer, which for long
# sequences (images as pixels, audio) is the whole cost. The Sparse Transformer (Child
# et al. 2019) lets each position attend to $O(\sqrt{T})$ others, chosen so that two
# layers still connect every position to every earlier one. Two patterns, with period
# $l$:
#
# - **strided**: the previous $l$ positions, and every $l$-th position before them (for
#   data with a period, like the rows of an image);
# - **fixed**: the positions in one's own block of $l$, and the last $c$ of every
#   earlier block — "summary" cells that later positions read (for text, which has no
#   period).
#
# The paper splits each pattern over two heads; here one mask holds their union. Drawn
# at the recipes' context of 64 with $l = 8$ (white: may attend):

# %%
T = 64
patterns = {"dense causal": torch.ones(T, T, dtype=torch.bool).tril(),
            "strided, l = 8": language.strided_mask(T, 8),
            "fixed, l = 8, c = 1": language.fixed_mask(T, 8, 1)}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
for ax, (name, mask) in zip(axes, patterns.items()):
    ax.imshow(mask, cmap="gray", interpolation="nearest")
    ax.set_title(f"{name}: {int(mask.sum()):,} pairs "
                 f"({100 * mask.sum() / patterns['dense causal'].sum():.0f} %)")
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
fig.tight_layout()

# %% [markdown]
# One sparse layer leaves gaps; two layers fill them. Position $i$ reaches $j$ in two
# hops when some $m$ has $i \to m$ and $m \to j$ — a boolean matrix product:

# %%
for name in ("strided, l = 8", "fixed, l = 8, c = 1"):
    mask = patterns[name].int()
    two_hops = (mask @ mask) > 0
    print(f"{name}: one layer reaches {int(mask.sum()):,} of the {T * (T + 1) // 2:,} "
          f"(query, earlier key) pairs, two layers "
          f"{int((two_hops & patterns['dense causal']).sum()):,}")
for name in ("strided, l = 8", "fixed, l = 8, c = 1"):
    one = patterns[name].int()
    assert torch.equal((one @ one) > 0, patterns["dense causal"])

# %% [markdown]
# A mask alone saves nothing: PyTorch still computes all $T^2$ scores and then discards
# the masked ones. The saving needs kernels that skip the masked blocks (the paper wrote
# its own). What a mask *does* tell us, even here, is the price in quality of seeing
# less. `s11/gpt-sparse` is `s11/gpt` with the strided mask — same network, same data,
# same steps:

# %%
sparse_record = recorded("s11/gpt-sparse")
if gpt_record is not None and sparse_record is not None:
    viz.curves({"dense (s11/gpt)": gpt_record.history,
                "strided (s11/gpt-sparse)": sparse_record.history}, metrics=("loss",));
    dense_loss, sparse_loss = (r.history.test_loss[-1]
                               for r in (gpt_record, sparse_record))
    share = patterns["strided, l = 8"].sum() / patterns["dense causal"].sum()
    say(f"Held-out loss after the last epoch: dense {dense_loss:.3f}, strided "
        f"{sparse_loss:.3f} nats per character ({sparse_loss - dense_loss:+.3f}); the "
        f"strided model reads {100 * share:.0f} % of the pairs in each layer. Wall "
        f"time "
        f"{sparse_record.wall_seconds / 60:.0f} against "
        f"{gpt_record.wall_seconds / 60:.0f} minutes: a dense kernel with a mask is no "
        "faster.")
else:
    say(records.results_or_missing("s11/gpt-sparse"))

# %% [markdown]
# ## 6. Performance: `evakit bench gpt`
#
# nanoGPT's README trains this very network (batch 12, 2 000 iterations, fp32) to a
# held-out loss of 1.88 in about three minutes on a laptop CPU. The exercise here: reach
# the same loss in as little training time as you can on your machine. This page has no
# recorded bench run, so it claims no time for any setting; `evakit bench gpt` measures
# yours. Time goes into two factors — **tokens per second** and **tokens needed** — and
# each has its levers:
#
# - *bf16 autocast* runs the matrix products in bfloat16 on a CPU that has AVX-512 BF16;
# - a *larger batch* gives the matrix products more rows to fill the vector units with,
#   and fewer Python-level steps per token;
# - a larger batch also averages away gradient noise, so it can take a *larger learning
#   rate*, and the schedule (warm-up, cosine to a tenth) can be *squeezed* to the tokens
#   the target needs instead of nanoGPT's fixed 2 000 iterations;
# - fused attention (`F.scaled_dot_product_attention`, which the model already uses) and
#   `torch.compile` attack the per-step overhead.
#
# The first factor, on the machine running this notebook — tokens per second of one
# training step (forward, loss, backward, AdamW), after one warm-up step:

# %%
def token_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.flatten(0, 1), y.flatten())


def tokens_per_second(batch: int, precision: str, steps: int = 3) -> float:
    torch.manual_seed(0)
    model = models.create("s11/gpt").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    mode = train.Precision(precision)
    g = torch.Generator().manual_seed(0)
    batches = [text.lm_batches(char_test, 64, batch, g) for _ in range(steps + 1)]
    train.train_step(model, *batches[0], optimizer, token_loss, mode)     # warm-up
    start = time.perf_counter()
    for xb, yb in batches[1:]:
        train.train_step(model, xb, yb, optimizer, token_loss, mode)
    return steps * batch * 64 / (time.perf_counter() - start)


cpu = torch.device("cpu")
settings = [(12, "fp32"), (48, "fp32")] + ([(12, "bf16"), (48, "bf16")]
                                           if train.bf16_supported(cpu) else [])
rates = [[b, p, f"{tokens_per_second(b, p):,.0f}"] for b, p in settings]
display(Table(["batch", "precision", "tokens / s"], rates,
              f"one training step of the 0.81 M-parameter GPT here, "
              f"{torch.get_num_threads()} torch threads"))

# %% [markdown]
# The second factor needs whole runs. `evakit bench gpt` trains nanoGPT's setting and a
# candidate of evakit's — every lever above pulled at once, a starting point for the
# exercise, not a measured winner — in one process, from the same initial weights and
# seed, and scores both on the same fixed held-out windows (evaluation time is not
# counted): it prints each one's tokens per second, the training time at which its
# held-out loss first reaches 1.88, and the ratio. The settings it compares:

# %%
fields = ["batch_size", "iterations", "lr", "min_lr", "warmup", "precision",
          "attention"]
display(Table(["setting", *fields],
              [[s.name.split(":")[0], *(getattr(s, f) for f in fields)]
               for s in (bench.NANOGPT_BABY, bench.EVAKIT_GPT)],
              "evakit.bench: NANOGPT_BABY and EVAKIT_GPT"))

# %% [markdown]
# In full mode the bench runs here in full; in FAST mode a 20-iteration version shows its
# mechanics only. Where the machine has no native bf16 (a CPU without AVX-512 BF16, an
# older GPU), the candidate runs in fp32 instead, and its printed name says so.

# %%
bench_settings = (bench.NANOGPT_BABY, bench.EVAKIT_GPT)
if S.fast:
    bench_settings = tuple(replace(s, iterations=20, warmup=5, eval_every=10)
                           for s in bench_settings)
results = bench.gpt(bench_settings, eval_windows=64 if S.fast else 1280)
for r in results:
    reached = (f"reached 1.88 after {r.reached[1]:.1f} s" if r.reached
               else f"did not reach 1.88 in {r.seconds:.1f} s")
    print(f"{r.setting.name}: {r.tokens_per_second:,.0f} tokens/s, {reached}, final "
          f"held-out loss {r.final_loss:.3f}"
          + (" (FAST: mechanics only)" if S.fast else ""))

# %% [markdown]
# ## 7. A CLIP of our own
#
# CLIP (Radford et al. 2021) trains an image encoder and a text encoder together on 400
# million (image, caption) pairs from the web. Each encoder ends in a projection to the
# same space, and the embeddings are normalised to unit length, so the similarity of an
# image and a caption is a cosine. For a batch of $N$ pairs the $N \times N$ matrix of
# cosines should be large on the diagonal (the matching pairs) and small elsewhere. Once
# trained, it classifies without a classifier: write a caption for every class, and give
# an image the class whose caption is nearest — **zero-shot**.
#
# Ours is small: MNIST digits, and captions written from their labels by templates. Six
# templates are used for training; four more, which recombine the same words into
# sentences training never sees, are held out — every test number below uses only those:

# %%
display(Table(["used for", "template", "example (digit 7)"],
              [["training", t, clip.caption(t, 7)] for t in clip.TRAIN_TEMPLATES]
              + [["held out", t, clip.caption(t, 7)] for t in clip.HELD_OUT_TEMPLATES],
              "caption templates ({word}: the digit spelled out, {numeral}: the "
              "digit)"))
captions = clip.Captions()
example = captions.encode([clip.caption(clip.HELD_OUT_TEMPLATES[2], 7)])
print(f"word vocabulary of {captions.vocab_size} ([PAD], [EOS] and the training "
      f"words); "
      f"{clip.caption(clip.HELD_OUT_TEMPLATES[2], 7)!r} → {example[0].tolist()}")

# %% [markdown]
# **The encoders** (`evakit.models.clip`): the image encoder is a small CNN — five 3×3
# conv blocks with BN, two max pools, global average pooling, a linear projection to 64
# numbers. The text encoder is a small GPT-style transformer (2 blocks, 4 heads, width
# 64) over the word tokens. Like CLIP's it is causal, so no position up to the
# end-of-text token sees the padding after it. CLIP reads the end-of-text position
# alone; ours averages every position up to it, so that the digit's word reaches the
# embedding directly from the first step of a short run. A learned scalar
# $\log(1/\tau)$ — the **temperature** — scales the cosines before the softmax.

# %%
clip_model = models.create("s11/clip")
print(f"image encoder {models.count_parameters(clip_model.image):,} parameters, text "
      f"encoder {models.count_parameters(clip_model.text):,}, temperature 1 "
      f"(initial scale 1/τ = {clip_model.scale.item():.1f}); "
      f"{models.count_parameters(clip_model):,} in all")

# %% [markdown]
# **The loss.** Row $i$ of the scaled matrix is image $i$ scoring every caption: a
# softmax along the row and a cross-entropy with the right caption is a classification
# of the image among the batch's captions. Column $j$ is caption $j$ scoring every
# image: the same along the column. CLIP's loss is the mean of the two. One change for
# MNIST: with only ten digits, a batch of 256 holds about 25 images of each, and a
# caption naming image $i$'s digit is not a wrong answer for image $i$ just because it
# was written for another seven. So the target of a row (and of a column) spreads evenly
# over every pair of the same digit — which is CLIP's diagonal exactly when all labels
# differ. By hand:

# %%
def symmetric_contrastive(image_emb: torch.Tensor, text_emb: torch.Tensor,
                          scale: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CLIP's loss: cross-entropy along the rows (images) and the columns (captions)."""
    logits = scale * image_emb @ text_emb.T                      # N × N scaled cosines
    same = (labels[:, None] == labels[None, :]).float()
    image_targets = same / same.sum(dim=1, keepdim=True)         # each row sums to 1
    caption_targets = same / same.sum(dim=0, keepdim=True)       # each column sums to 1
    image_loss = -(image_targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    caption_loss = -(caption_targets * logits.log_softmax(dim=0)).sum(dim=0).mean()
    return (image_loss + caption_loss) / 2


torch.manual_seed(0)
emb_i = F.normalize(torch.randn(8, 64), dim=1)
emb_t = F.normalize(torch.randn(8, 64), dim=1)
labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
ours = symmetric_contrastive(emb_i, emb_t, torch.tensor(1 / 0.07), labels)
library = clip.contrastive_loss(emb_i @ emb_t.T / 0.07, labels)
print(f"by hand {ours:.5f}, evakit.clip.contrastive_loss {library:.5f}")
assert torch.isclose(ours, library)

# %% [markdown]
# The temperature matters: cosines lie in $[-1, 1]$, and a softmax over numbers that
# close is nearly uniform whatever the model does. Dividing by $\tau = 0.07$ (CLIP's
# starting value) spreads them over $[-14, 14]$; learning $\log(1/\tau)$ lets training
# set the sharpness it needs (CLIP clips $1/\tau$ at 100, and so does ours).
#
# **Training**: `s11/clip`, six epochs of the 60 000 training images with ±10°
# rotation, AdamW, one-cycle. In FAST mode, one epoch on 1 000 images shows the loop:

# %% tags=["remove-cell"]
_c = recipes.get("s11/clip")
assert (_c.epochs, _c.rotation) == (6, 10.0)
assert (_c.optimizer, _c.scheduler) == ("adamw", "onecycle")
assert (_c.fast.epochs, _c.fast.limit, _c.batch_size) == (1, 1000, 256)
assert len(clip.TRAIN_TEMPLATES) == 6 and len(clip.HELD_OUT_TEMPLATES) == 4
assert clip_model.config.embed_dim == 64 and clip_model.config.text_layers == 2
assert sum(isinstance(m, torch.nn.Conv2d) for m in clip_model.image.modules()) == 5

# %%
live_clip = runner.run("s11/clip")
print(f"{live_clip.label}: zero-shot {live_clip.metrics['zero_shot_acc']:.1f} % on "
      f"{live_clip.data['test'].size:,} test images, {live_clip.wall_seconds:.0f} s")

# %% [markdown]
# **Results of the recorded run.** The history's accuracy is in-batch: the percentage of
# test images whose best caption, among the batch's 1 000 held-out captions, names their
# digit. The zero-shot accuracy gives every one of the 10 000 test images the digit
# whose held-out caption embedding is nearest — each digit's embedding is the mean over
# the four held-out templates (CLIP's prompt ensembling). The goal is 95 %.

# %%
clip_record = recorded("s11/clip")
if clip_record is None:
    say(records.results_or_missing("s11/clip"))
else:
    m = clip_record.metrics
    met = "met" if m["zero_shot_acc"] >= 95 else "not met"
    say(f"**Results.** Zero-shot accuracy with the held-out templates: "
        f"**{m['zero_shot_acc']:.2f} %** on {clip_record.test_set()} (goal 95 %: "
        f"{met}); with the training templates {m['zero_shot_acc_train_templates']:.2f} "
        f"%. Text-to-image retrieval: of the 100 test images nearest each held-out "
        f"caption, {m['retrieval_precision_at_100']:.1f} % show its digit. "
        f"*{clip_record.provenance()}.*")
    viz.curves({"s11/clip": clip_record.history});

# %% [markdown]
# With the recorded weights: ten test images, one of each digit, against their ten
# held-out captions — the $N \times N$ similarity matrix the loss pushes towards its
# diagonal:

# %%
mnist_test = data.load("mnist", "test", fast=S.fast)
have_clip = records.weights_path("s11/clip").is_file()
if have_clip:
    trained_clip = records.load_model("s11/clip")
    firsts = [int((mnist_test.labels == d).nonzero()[0]) for d in range(10)]
    mean, std = mnist_test.mean[0], mnist_test.std[0]
    images = (mnist_test.images[firsts].float() / 255 - mean) / std
    texts = [clip.caption(clip.HELD_OUT_TEMPLATES[d % 4], d) for d in range(10)]
    with torch.no_grad():
        sims = trained_clip.encode_image(images) @ trained_clip.encode_text(
            captions.encode(texts)).T
    fig, ax = plt.subplots(figsize=(9, 8))
    viz.matrix(sims, ax=ax, fmt="{:.2f}", cmap="viridis")
    ax.set_yticks(range(10), [f"image of a {d}" for d in range(10)])
    ax.set_xticks(range(10), texts, rotation=40, ha="right")
    ax.set_title("cosine similarity, recorded s11/clip")
    fig.tight_layout()
else:
    print("No recorded weights of s11/clip yet: `evakit train s11/clip --record` keeps "
          "them.")

# %% [markdown]
# **Retrieval, text → images**: each held-out caption embedded, and the eight test
# images nearest to it:

# %%
if have_clip:
    image_emb, image_labels = clip.embed_images(trained_clip,
                                                data.Loader(mnist_test, 1000))
    queries = ["a photo of the number 3", "an image of the digit eight",
               "7 written by hand"]
    found = clip.retrieve(trained_clip.encode_text(captions.encode(queries)).detach(),
                          image_emb, 8)
    for query, row in zip(queries, found):
        viz.image_grid(mnist_test.images[row], [str(int(image_labels[i])) for i in row],
                       cols=8, size=1.0, suptitle=f"“{query}”")
    say("Titles are the true digits of the images retrieved.")

# %% [markdown]
# And the first test images the recorded model's zero-shot classifier got wrong (kept in
# the record, true / predicted):

# %%
if clip_record is not None and not S.fast:
    viz.misclassified_from_record(clip_record, mnist_test, n=10, cols=5);

# %% [markdown]
# ## 8. The assignment: beat nanoGPT's CPU model
#
# **The task.** Train a GPT on the characters of Tiny Shakespeare to a held-out loss
# **below 1.88 nats per character** — the number nanoGPT's README reports for its small
# CPU configuration — on the last 10 % of the text, nanoGPT's split. The network may be no
# bigger than that model: a causal decoder over the 65 characters, a context of 64, and at
# most the parameters of 4 blocks, 4 heads and width 128. Everything else is yours: the
# optimizer, the schedule, the batch size, the number of steps, the precision, the
# attention pattern. A loss per BPE token does not count: the target is per character.
#
# **The solution** is `s11/gpt`, trained {ref}`above <s11-gpt>`. `evakit check s11`
# rebuilds its network from the record's config to check the structure, and reads the
# last held-out loss from the record:

# %%
if gpt_record is None:
    say(records.results_or_missing("s11/gpt"))
else:
    display(grade("s11", gpt_record))

# %% [markdown]
# The other two GPTs of this page, graded the same way — the
# {ref}`sparse one <s11-sparse>` and the {ref}`BPE one <s11-tokens>`:

# %%
rows = []
for name in ("s11/gpt-sparse", "s11/gpt-bpe"):
    r = recorded(name)
    if r is None:
        rows.append([name, "no record", ""])
        continue
    report = grade("s11", r)
    missed = [f"{v.constraint} ({v.measured})" for v in report.verdicts if not v.passed]
    rows.append([name, "passes" if report.passed else "fails", "; ".join(missed)])
display(Table(["recipe", "evakit check s11", "constraints missed"], rows,
              "the page's other language models against the assignment"))

# %% tags=["remove-cell"]
if gpt_record is not None:
    assert grade("s11", gpt_record).passed
typed = (GPT_TARGET_LOSS, NANOGPT_CPU["vocab_size"], NANOGPT_CPU["block_size"])
assert typed == (1.88, 65, 64), "the assignment's typed numbers"
for name, passes in (("s11/gpt-sparse", True), ("s11/gpt-bpe", False)):
    if recorded(name) is not None:
        assert grade("s11", recorded(name)).passed == passes, name

# %% [markdown]
# ## Exercises
#
# 1. The BPE model's embedding table has 512 rows of 128 numbers, the character model's
#    has 65 rows. How many more parameters does that make, and how does tying the output
#    layer to the embedding change the count?
# 2. A model's held-out loss is 1.50 nats per character. What is it in bits per
#    character, and what perplexity per character does it correspond to?
# 3. In the strided mask with $l = 8$ and $T = 64$, how many keys does the last position
#    (63) attend to? And in the fixed mask with $c = 1$?
# 4. What does top-k sampling become with $k = 1$? With $k$ equal to the vocabulary
#    size?
# 5. Why would CLIP's plain diagonal targets be wrong for a batch of MNIST captions, and
#    what would the model learn from them?
#
# ```{admonition} Answers
# :class: dropdown
# 1. $(512 - 65) \times 128 = 57\,216$ more. Tied, the output layer reuses the
#    embedding, so nothing more is added for it; untied it would add another
#    $V \times 128$.
# 2. $1.50 / \ln 2 = 2.16$ bits; perplexity $e^{1.50} = 4.48$ — as unsure as a uniform
#    choice among about 4.5 characters.
# 3. Strided: the 8 positions 56–63, and 55, 47, 39, 31, 23, 15, 7 — 15 keys. Fixed: its
#    own block 56–63 (8) and the last position of each of the 7 earlier blocks (7, 15,
#    …, 55) — also 15, though not the same ones for every position.
# 4. $k = 1$ always takes the best token: greedy decoding (temperature no longer
#    matters). $k = V$ is plain sampling from the softmax.
# 5. A batch of 256 holds about 25 captions naming each digit; with diagonal targets,
#    the caption "a handwritten seven" written for one image is a *wrong* answer for
#    every other seven. The model would be pushed to tell sevens apart by which caption
#    they happened to get — noise it cannot learn — and its loss could never fall below
#    about $\ln 25$.
# ```

# %% tags=["remove-cell"]
assert (512 - 65) * 128 == 57_216
assert round(1.5 / math.log(2), 2) == 2.16 and round(math.exp(1.5), 2) == 4.48
assert int(language.strided_mask(64, 8)[63].sum()) == 15
assert int(language.fixed_mask(64, 8, 1)[63].sum()) == 15
greedy = language.sample_top_k(scores, 1.0, 1)
assert int(greedy) == int(scores.argmax())

# %% [markdown]
# ## Summary
#
# - A ViT has fewer assumptions built in than a CNN, so the recipe supplies them:
#   augmentation gives the invariances a convolution has built in, warm-up protects
#   attention and Adam at the start, weight decay and label smoothing regularise. Short
#   runs measure what each costs early; only long runs can show a payoff, and one seed
#   resolves only differences of several points.
# - Characters are the simplest tokens; byte-level BPE shortens sequences at the price
#   of a larger vocabulary. Compare language models in bits per character, never per
#   token.
# - A decoder masks the future with −∞ before the softmax and learns every next token of
#   a window at once; top-k and temperature shape what it writes.
# - An encoder sees both sides and learns by filling masked tokens (80/10/10); BERT's
#   next-sentence task added nothing RoBERTa needed.
# - Sparse masks let each position read $O(\sqrt T)$ others and still reach all of the
#   past in two layers; they save compute only with kernels that skip the masked blocks.
# - Time to a loss is the tokens it needs divided by the tokens per second: measure both
#   before choosing bf16, larger batches with a larger learning rate, or a schedule fitted
#   to the run.
# - CLIP aligns two encoders with a symmetric contrastive loss and a learned
#   temperature; captions then act as classifiers, even in words the training never
#   combined that way.
#
# ## References
#
# - Vaswani et al., *Attention Is All You Need*, NeurIPS 2017.
# - Devlin et al., *BERT: Pre-training of Deep Bidirectional Transformers for Language
#   Understanding*, NAACL 2019.
# - Liu et al., *RoBERTa: A Robustly Optimized BERT Pretraining Approach*, 2019.
# - Lan et al., *ALBERT: A Lite BERT for Self-supervised Learning of Language
#   Representations*, 2019 (arXiv:1909.11942).
# - Radford et al., *Language Models are Unsupervised Multitask Learners* (GPT-2), 2019.
# - Child et al., *Generating Long Sequences with Sparse Transformers*, 2019.
# - Dosovitskiy et al., *An Image is Worth 16x16 Words: Transformers for Image
#   Recognition at Scale* (ViT), ICLR 2021.
# - Radford et al., *Learning Transferable Visual Models From Natural Language
#   Supervision* (CLIP), ICML 2021.
# - Sennrich, Haddow & Birch, *Neural Machine Translation of Rare Words with Subword
#   Units* (BPE), ACL 2016.
# - Karpathy, *nanoGPT* (github.com/karpathy/nanoGPT): the Shakespeare character model's
#   small CPU configuration and its 1.88.
