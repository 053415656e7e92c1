"""Tiny Shakespeare, its character and byte-level BPE tokenizers, and language-model batches.

The text is read from ``<root>/text/tinyshakespeare.txt`` (``root`` is
:func:`evakit.data.data_root`) after its sha256 is checked, else downloaded from its public
source, checked, and cached there when the root is writable. Tokens are one int64 tensor;
:func:`lm_batches` cuts random windows from it for next-token prediction, :func:`mask_tokens`
hides some of them for BERT's masked-token task, and :class:`TokenLoader` yields either for a
fixed number of steps from its own seeded generator, so a run can checkpoint and resume it.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from evakit.data import DataIdentity, DataUnavailable, _writable, atomic_write, data_root
from evakit.errors import ArgumentError, DataError

SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                   "tinyshakespeare/input.txt")
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_FILE = Path("text") / "tinyshakespeare.txt"
MASK = "[MASK]"
IGNORE = -100  # the target F.cross_entropy skips by default (its ignore_index)
Seq = TypeVar("Seq", str, torch.Tensor)


def shakespeare_path(root: str | Path | None = None) -> Path:
    """Where Tiny Shakespeare lives under a data root (by default :func:`data_root`)."""
    return (Path(root).expanduser() if root is not None else data_root()) / SHAKESPEARE_FILE


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def download(url: str, sha256: str, *, timeout: float = 60.0) -> bytes:
    """Fetch ``url`` whole and check it against ``sha256``.

    Args:
        url: any URL ``urllib`` opens (``https://``, ``http://``, ``file://``).
        sha256: the expected hash, 64 hex digits.
        timeout: seconds to wait for the server.

    Returns:
        The file's bytes.

    Raises:
        OSError: the URL could not be read (offline, not found).
        DataError: the bytes do not have the expected hash.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read()
    got = sha256_hex(data)
    if got != sha256:
        raise DataError(f"{url} has sha256 {got}, expected {sha256}: the file there is not "
                         f"the one evakit knows, so it was not used")
    return data


def tiny_shakespeare(root: str | Path | None = None, *, url: str = SHAKESPEARE_URL) -> str:
    """Karpathy's Tiny Shakespeare (1 115 394 characters), checked against its sha256.

    Args:
        root: data root; defaults to :func:`evakit.data.data_root`.
        url: where to download it from when it is not under ``root``.

    Returns:
        The whole text.

    Raises:
        DataError: the file under ``root`` or the downloaded one has the wrong hash.
        DataUnavailable: it is not under ``root`` and could not be downloaded.
    """
    path = shakespeare_path(root)
    if path.is_file():
        data = path.read_bytes()
        got = sha256_hex(data)
        if got != SHAKESPEARE_SHA256:
            raise DataError(f"{path} has sha256 {got}, expected {SHAKESPEARE_SHA256}: delete "
                             f"it so that evakit downloads the original again")
        return data.decode("utf-8")
    try:
        data = download(url, SHAKESPEARE_SHA256)
    except OSError as err:
        raise DataUnavailable(
            f"Tiny Shakespeare ({SHAKESPEARE_FILE.name}) is not in {path.parent} and could not "
            f"be downloaded from {url} ({err}): connect to the internet once, or set "
            f"EVAKIT_DATA to a folder holding {SHAKESPEARE_FILE}") from err
    # A read-only root (the shared copy in CI) is never written; the text is still returned.
    if _writable(path.parents[1]):
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return data.decode("utf-8")


def split(data: Seq, val_fraction: float = 0.1) -> tuple[Seq, Seq]:
    """Hold out the end of a text or token sequence for validation, as nanoGPT does.

    Args:
        data: a string or a 1-D token tensor.
        val_fraction: the fraction kept for validation, taken from the end.

    Returns:
        ``(train, val)``: the first ``1 - val_fraction`` and the rest.
    """
    if not 0 < val_fraction < 1:
        raise ArgumentError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}")
    n = int(len(data) * (1 - val_fraction))
    return data[:n], data[n:]


class CharTokenizer:
    """One token per character: the vocabulary is the sorted characters of a text.

    Special tokens (e.g. ``"[MASK]"`` for BERT) get the ids after the characters; they are never
    produced by :meth:`encode`, only looked up by :meth:`token_id` and shown by :meth:`decode`.

    Args:
        text: the text whose characters make the vocabulary.
        specials: extra tokens appended to the vocabulary.
    """

    def __init__(self, text: str, specials: Sequence[str] = ()) -> None:
        self.chars = sorted(set(text))
        self.itos = self.chars + list(specials)
        if len(set(self.itos)) != len(self.itos):
            raise ArgumentError(f"specials {list(specials)!r} must be distinct and not single "
                             f"characters of the text")
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        """Number of tokens, specials included."""
        return len(self.itos)

    def token_id(self, token: str) -> int:
        """The id of one token (a character or a special)."""
        if token not in self.stoi:
            raise ArgumentError(f"token {token!r} is not in the vocabulary of {self.vocab_size}")
        return self.stoi[token]

    def encode(self, text: str) -> torch.Tensor:
        """The ids of each character of ``text`` as an int64 tensor."""
        unknown = set(text) - set(self.chars)
        if unknown:
            raise ArgumentError(f"characters {sorted(unknown)!r} are not in the vocabulary: build "
                             f"the tokenizer from a text that contains them")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.int64)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of a sequence of ids."""
        return "".join(self.itos[i] for i in torch.as_tensor(ids).tolist())


class BPETokenizer:
    """Byte-level BPE (GPT-2's scheme) trained here with the ``tokenizers`` library.

    Every string maps to bytes first, so any text encodes and decodes back exactly; merges of
    frequent byte pairs then shorten it. Build one with :meth:`train`.

    Args:
        tokenizer: a trained ``tokenizers.Tokenizer``.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, text: str, vocab_size: int = 512,
              specials: Sequence[str] = (MASK,)) -> BPETokenizer:
        """Learn merges from ``text`` until the vocabulary has ``vocab_size`` tokens.

        Args:
            text: the training text.
            vocab_size: tokens in the vocabulary: specials, the 256 bytes, then merges.
            specials: special tokens, given the first ids.

        Returns:
            The trained tokenizer.
        """
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + len(specials):
            raise ArgumentError(f"vocab_size must be at least {len(alphabet) + len(specials)} "
                             f"(256 bytes and {len(specials)} specials), got {vocab_size}")
        tok = Tokenizer(models.BPE())
        # No prefix space: a leading space would be added on encode and kept on decode.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials),
                                      initial_alphabet=alphabet, show_progress=False)
        tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, specials included."""
        return self.tokenizer.get_vocab_size()

    def token_id(self, token: str) -> int:
        """The id of one token, e.g. ``"[MASK]"``."""
        i = self.tokenizer.token_to_id(token)
        if i is None:
            raise ArgumentError(f"token {token!r} is not in the vocabulary of {self.vocab_size}")
        return i

    def encode(self, text: str) -> torch.Tensor:
        """The ids of ``text`` as an int64 tensor."""
        return torch.tensor(self.tokenizer.encode(text).ids, dtype=torch.int64)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of a sequence of ids (special tokens shown as themselves)."""
        return self.tokenizer.decode(torch.as_tensor(ids).tolist(), skip_special_tokens=False)

    def to_str(self) -> str:
        """The whole tokenizer as JSON, to save beside a checkpoint."""
        return self.tokenizer.to_str()

    @classmethod
    def from_str(cls, json: str) -> BPETokenizer:
        """Rebuild a tokenizer saved by :meth:`to_str`."""
        return cls(Tokenizer.from_str(json))


def lm_batches(tokens: torch.Tensor, block: int, batch: int,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a token sequence and their next-token targets.

    Args:
        tokens: 1-D int64 token sequence, longer than ``block``.
        block: tokens per window (T).
        batch: windows per batch (B).
        generator: draws the window starts.

    Returns:
        ``(x, y)``, int64 B×T each, with ``y[:, t] == x[:, t + 1]`` inside the window and
        ``y[:, -1]`` the token after it.
    """
    if tokens.ndim != 1 or len(tokens) <= block:
        raise ArgumentError(f"tokens must be 1-D and longer than block={block}, got shape "
                         f"{tuple(tokens.shape)}")
    if block < 1 or batch < 1:
        raise ArgumentError(f"block and batch must be positive, got block={block}, batch={batch}")
    starts = torch.randint(len(tokens) - block, (batch,), generator=generator)
    idx = starts[:, None] + torch.arange(block)
    return tokens[idx].long(), tokens[idx + 1].long()


def mask_tokens(x: torch.Tensor, mask_id: int, vocab: int, prob: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose ``prob`` of the tokens to predict and hide most of them.

    Of the chosen tokens 80 % become ``mask_id``, 10 % a random token of the vocabulary and
    10 % stay as they are, so the model cannot learn that only ``[MASK]`` needs predicting.

    Args:
        x: int64 token ids, any shape.
        mask_id: the id of ``[MASK]``.
        vocab: vocabulary size; random replacements are drawn from ``0 .. vocab - 1``.
        prob: the fraction of tokens chosen.
        generator: draws every choice; must live on ``x``'s device.

    Returns:
        ``(inputs, targets)``: ``x`` with the replacements, and the original ids at the chosen
        positions with ``-100`` elsewhere (``F.cross_entropy``'s ``ignore_index``).
    """
    if not 0 < prob <= 1:
        raise ArgumentError(f"prob must lie in (0, 1], got {prob!r}")
    if not 0 <= mask_id < vocab:
        raise ArgumentError(f"mask_id must be a token id below vocab={vocab}, got {mask_id}")
    chosen = torch.rand(x.shape, generator=generator, device=x.device) < prob
    fate = torch.rand(x.shape, generator=generator, device=x.device)
    randoms = torch.randint(vocab, x.shape, generator=generator, device=x.device)
    inputs = torch.where(chosen & (fate < 0.8), mask_id, x)
    inputs = torch.where(chosen & (fate >= 0.8) & (fate < 0.9), randoms, inputs)
    return inputs, torch.where(chosen, x, IGNORE)


@dataclass(frozen=True)
class Masking:
    """What :class:`TokenLoader` needs to make masked-token batches (see :func:`mask_tokens`)."""

    mask_id: int
    vocab: int
    prob: float = 0.15


class TokenLoader:
    """Random-window batches over one token sequence, a fixed number of steps per epoch.

    Each step draws ``batch_size`` windows with :func:`lm_batches` and yields ``(x, y)`` for
    next-token prediction, or, given ``masking``, ``mask_tokens(x)`` for BERT. All draws come
    from the loader's own generator, so the batches depend on ``seed`` and the steps taken
    alone, and :meth:`state_dict` lets a resumed run draw exactly the batches that were next.

    Args:
        tokens: 1-D int64 token sequence.
        block: tokens per window.
        batch_size: windows per batch.
        steps: batches per epoch.
        seed: seed of the generator.
        device: where batches are sent (they are drawn on the CPU).
        masking: make masked-token batches instead of next-token ones.
    """

    def __init__(self, tokens: torch.Tensor, block: int, batch_size: int, steps: int, *,
                 seed: int = 0, device: str | torch.device = "cpu",
                 masking: Masking | None = None) -> None:
        if steps < 1:
            raise ArgumentError(f"steps must be a positive integer, got {steps!r}")
        lm_batches(tokens, block, 1)  # fail now, not at the first batch, on a bad shape
        self.tokens = tokens
        self.block = block
        self.batch_size = batch_size
        self.steps = steps
        self.device = torch.device(device)
        self.masking = masking
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            x, y = lm_batches(self.tokens, self.block, self.batch_size, self.generator)
            if self.masking is not None:
                m = self.masking
                x, y = mask_tokens(x, m.mask_id, m.vocab, m.prob, self.generator)
            yield x.to(self.device), y.to(self.device)

    def state_dict(self) -> dict:
        """The generator's state, so a resumed run draws the same batches."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


@dataclass
class TokenSet:
    """One split of a tokenized text, held in memory (the text counterpart of an ImageSet).

    Attributes:
        tokens: 1-D int64 token ids.
        name: the dataset and its tokenization, e.g. ``"shakespeare-char"``.
        split: ``"train"`` or ``"test"`` (the held-out end of the text).
        tokenizer: what turns text into these ids and back.
        note: what a record must say about it (e.g. a FAST slice).
    """

    tokens: torch.Tensor
    name: str
    split: str
    tokenizer: CharTokenizer | BPETokenizer
    note: str = ""

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, n: int) -> TokenSet:
        """The first ``n`` tokens (all of them when ``n`` is larger)."""
        if n >= len(self):
            return self
        return TokenSet(self.tokens[:n], self.name, self.split, self.tokenizer,
                        f"first {n:,} of {len(self):,} tokens")

    def identity(self) -> DataIdentity:
        """Dataset, split, size (tokens) and content hash (of the int64 ids)."""
        digest = hashlib.md5(self.tokens.numpy().astype("int64").tobytes()).hexdigest()
        return DataIdentity(self.name, self.split, len(self), digest, "", self.note, "tokens")


TOKENIZATIONS = ("shakespeare-char", "shakespeare-bpe")
FAST_TOKENS = {"train": 100_000, "test": 20_000}


def shakespeare_tokens(name: str, *, vocab_size: int | None = None, mask: bool = False,
                       fast: bool = False) -> tuple[TokenSet, TokenSet]:
    """Tiny Shakespeare tokenized, split 90/10 as nanoGPT does: (train, test).

    Args:
        name: ``"shakespeare-char"`` (one token per character) or ``"shakespeare-bpe"``
            (byte-level BPE trained here on the training split).
        vocab_size: the BPE vocabulary (ignored for characters).
        mask: add a ``[MASK]`` token to the vocabulary (for masked-token training).
        fast: keep only the first 100,000 training and 20,000 test tokens.
    """
    if name not in TOKENIZATIONS:
        raise ArgumentError(f"unknown text dataset {name!r}: expected one of {TOKENIZATIONS}")
    text = tiny_shakespeare()
    train_text, test_text = split(text)
    specials = (MASK,) if mask else ()
    if name == "shakespeare-char":
        tokenizer = CharTokenizer(text, specials=specials)
    else:
        tokenizer = BPETokenizer.train(train_text, vocab_size=vocab_size or 512,
                                       specials=specials)
    sets = tuple(TokenSet(tokenizer.encode(part), name, split_name, tokenizer)
                 for part, split_name in ((train_text, "train"), (test_text, "test")))
    if fast:
        sets = tuple(s.subset(FAST_TOKENS[s.split]) for s in sets)
    return sets
