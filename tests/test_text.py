import functools
import http.server
import threading

import pytest
import torch
import torch.nn.functional as F

from evakit import text
from evakit.data import DataUnavailable
from evakit.errors import ArgumentError, DataError

needs_shakespeare = pytest.mark.skipif(not text.shakespeare_path().is_file(),
                                       reason=f"Tiny Shakespeare not at {text.shakespeare_path()}")


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return text.tiny_shakespeare()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on localhost, as a download source."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- Tiny Shakespeare: the shared copy, the download and its hash check ---

@needs_shakespeare
def test_real_text_is_the_published_one(shakespeare):
    assert len(shakespeare) == 1_115_394
    assert shakespeare.startswith("First Citizen:")
    assert len(set(shakespeare)) == 65  # nanoGPT's shakespeare_char vocabulary


def test_a_corrupted_copy_is_an_error_not_used(tmp_path):
    path = text.shakespeare_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("First Citizen:\nnot quite\n")
    with pytest.raises(DataError, match="sha256 .* expected 86c4e6aa"):
        text.tiny_shakespeare(tmp_path, url="file:///nowhere/input.txt")


@needs_shakespeare
def test_download_over_http_is_checked_and_cached(tmp_path, served, shakespeare):
    folder, base = served
    (folder / "input.txt").write_text(shakespeare)
    root = tmp_path / "root"
    assert text.tiny_shakespeare(root, url=f"{base}/input.txt") == shakespeare
    assert text.shakespeare_path(root).read_text() == shakespeare
    assert not list(root.rglob("*.part"))
    # The cache is read first: a dead URL no longer matters.
    assert text.tiny_shakespeare(root, url=f"{base}/gone.txt") == shakespeare


def test_a_download_with_the_wrong_hash_is_rejected_and_not_written(tmp_path, served):
    folder, base = served
    (folder / "input.txt").write_text("First Citizen:\nan impostor\n")
    root = tmp_path / "root"
    with pytest.raises(DataError, match="sha256 .* not the one evakit knows"):
        text.tiny_shakespeare(root, url=f"{base}/input.txt")
    assert not any(root.rglob("*.txt*"))


def test_download_checks_a_file_url(tmp_path):
    source = tmp_path / "small.txt"
    source.write_bytes(b"to be or not to be\n")
    digest = text.sha256_hex(source.read_bytes())
    assert text.download(source.as_uri(), digest) == b"to be or not to be\n"
    with pytest.raises(DataError, match="expected 0000"):
        text.download(source.as_uri(), "0" * 64)


def test_offline_and_absent_names_the_file_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DataUnavailable) as err:
        text.tiny_shakespeare(tmp_path, url=(tmp_path / "missing.txt").as_uri())
    message = str(err.value)
    assert "tinyshakespeare.txt" in message and str(tmp_path / "text") in message
    assert "EVAKIT_DATA" in message


@needs_shakespeare
def test_a_read_only_root_is_never_written(tmp_path, shakespeare):
    source = tmp_path / "input.txt"
    source.write_text(shakespeare)
    root = tmp_path / "readonly"
    root.mkdir()
    root.chmod(0o555)
    try:
        assert text.tiny_shakespeare(root, url=source.as_uri()) == shakespeare
        assert list(root.iterdir()) == []
    finally:
        root.chmod(0o755)


# --- split and tokenizers ---

@needs_shakespeare
def test_split_holds_out_the_last_tenth_as_nanogpt_does(shakespeare):
    train, val = text.split(shakespeare)
    assert len(train) == 1_003_854 and train + val == shakespeare
    tokens = torch.arange(10)
    assert [t.tolist() for t in text.split(tokens, 0.2)] == [list(range(8)), [8, 9]]
    with pytest.raises(ValueError, match="val_fraction"):
        text.split(tokens, 1.0)


@needs_shakespeare
def test_char_tokenizer_round_trips_the_real_text(shakespeare):
    tok = text.CharTokenizer(shakespeare, specials=[text.MASK])
    assert tok.vocab_size == 66 and tok.token_id(text.MASK) == 65
    ids = tok.encode(shakespeare)
    assert ids.dtype == torch.int64 and len(ids) == len(shakespeare)
    assert tok.decode(ids) == shakespeare
    assert tok.decode([tok.token_id("a"), 65]) == "a[MASK]"


def test_char_tokenizer_rejects_an_unknown_character():
    tok = text.CharTokenizer("abc")
    assert tok.encode("cab").tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match=r"\['z'\] are not in the vocabulary"):
        tok.encode("abz")


@needs_shakespeare
def test_bpe_round_trips_exactly_and_compresses(shakespeare):
    train, val = shakespeare[:50_000], shakespeare[-50_000:]
    tok = text.BPETokenizer.train(train, vocab_size=400)
    assert tok.vocab_size == 400 and tok.token_id(text.MASK) == 0
    for part in (train, val, "Ünïcode ∑ and  two  spaces\n\n"):
        ids = tok.encode(part)
        assert ids.dtype == torch.int64 and tok.decode(ids) == part
    # Merges learned on one part help on another: over 1.5 characters a token (1.65 measured).
    assert len(tok.encode(val)) < len(val) / 1.5
    again = text.BPETokenizer.from_str(tok.to_str())
    assert torch.equal(again.encode(val), tok.encode(val))
    assert torch.equal(text.BPETokenizer.train(train, vocab_size=400).encode(val),
                       tok.encode(val))


def test_bpe_rejects_a_vocabulary_smaller_than_the_bytes():
    with pytest.raises(ValueError, match="at least 257"):
        text.BPETokenizer.train("abc", vocab_size=100)


# --- batches ---

def test_lm_batches_are_windows_with_next_token_targets():
    tokens = torch.arange(1000) * 7
    x, y = text.lm_batches(tokens, block=16, batch=5, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 7)
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.full((5, 15), 7))  # contiguous windows
    x2, _ = text.lm_batches(tokens, 16, 5, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="longer than block=16"):
        text.lm_batches(torch.arange(16), 16, 5)


def test_masking_follows_berts_80_10_10_rule():
    vocab, mask_id = 1000, 999
    x = torch.randint(0, 999, (400, 2500), generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    inputs, targets = text.mask_tokens(x, mask_id, vocab, generator=g)
    chosen = targets != -100
    n = chosen.sum().item()
    assert n / x.numel() == pytest.approx(0.15, abs=0.002)
    masked = (inputs[chosen] == mask_id).float().mean().item()
    kept = (inputs[chosen] == x[chosen]).float().mean().item()
    # A random replacement equals the original 1 time in `vocab`; it is "kept" then.
    # A random replacement equals the mask 1 time in `vocab`; it is "masked" then.
    assert masked == pytest.approx(0.8 + 0.1 / vocab, abs=0.004)
    assert kept == pytest.approx(0.1 + 0.1 / vocab, abs=0.003)
    assert 1 - masked - kept == pytest.approx(0.1 * (1 - 2 / vocab), abs=0.003)
    replaced = inputs[chosen & (inputs != mask_id) & (inputs != x)]
    assert replaced.min() >= 0 and replaced.max() < vocab
    assert replaced.float().mean().item() == pytest.approx((vocab - 1) / 2, rel=0.02)


def test_targets_are_minus_100_exactly_where_nothing_was_chosen():
    x = torch.randint(0, 50, (64, 64), generator=torch.Generator().manual_seed(0))
    inputs, targets = text.mask_tokens(x, 50, 51, generator=torch.Generator().manual_seed(3))
    chosen = targets != -100
    assert torch.equal(inputs[~chosen], x[~chosen])  # unchosen tokens are never touched
    assert torch.equal(targets[chosen], x[chosen])
    assert ((inputs != x) & ~chosen).sum() == 0
    logits = torch.randn(64, 64, 51, generator=torch.Generator().manual_seed(4))
    loss = F.cross_entropy(logits.view(-1, 51), targets.view(-1), ignore_index=-100)
    assert loss.item() == pytest.approx(F.cross_entropy(logits[chosen], x[chosen]).item())
    _, all_targets = text.mask_tokens(x, 50, 51, prob=1.0)
    assert torch.equal(all_targets, x)


def test_masking_is_deterministic_for_a_seed():
    x = torch.randint(0, 50, (8, 64), generator=torch.Generator().manual_seed(0))
    a = text.mask_tokens(x, 50, 51, generator=torch.Generator().manual_seed(5))
    b = text.mask_tokens(x, 50, 51, generator=torch.Generator().manual_seed(5))
    c = text.mask_tokens(x, 50, 51, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    with pytest.raises(ValueError, match="mask_id must be a token id below vocab=50"):
        text.mask_tokens(x, 50, 50)


def test_loader_resumes_exactly_from_its_state(tmp_path):
    tokens = torch.randint(0, 65, (5000,), generator=torch.Generator().manual_seed(0))
    loader = text.TokenLoader(tokens, block=32, batch_size=4, steps=5, seed=7)
    assert len(loader) == 5 and len(list(loader)) == 5
    batches = iter(loader)
    for _ in range(2):
        next(batches)
    torch.save(loader.state_dict(), tmp_path / "loader.pt")
    rest = list(batches) + list(loader)

    resumed = text.TokenLoader(tokens, block=32, batch_size=4, steps=3, seed=0)
    resumed.load_state_dict(torch.load(tmp_path / "loader.pt", weights_only=True))
    resumed_batches = list(resumed)
    resumed.steps = 5
    resumed_batches += list(resumed)
    assert len(rest) == len(resumed_batches) == 8
    for (x, y), (rx, ry) in zip(rest, resumed_batches, strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    first = next(iter(text.TokenLoader(tokens, 32, 4, 5, seed=7)))
    assert not torch.equal(first[0], rest[0][0])  # the epochs differ: the generator moves on


def test_loader_makes_masked_batches():
    tokens = torch.randint(0, 65, (5000,), generator=torch.Generator().manual_seed(0))
    masking = text.Masking(mask_id=65, vocab=66)
    loader = text.TokenLoader(tokens, block=64, batch_size=32, steps=2, seed=1, masking=masking)
    for inputs, targets in loader:
        assert inputs.shape == targets.shape == (32, 64)
        chosen = targets != -100
        assert 0.1 < chosen.float().mean() < 0.2
        assert (inputs == 65).sum() > 0 and (inputs[~chosen] != 65).all()
    with pytest.raises(ArgumentError, match="steps must be a positive integer"):
        text.TokenLoader(tokens, 64, 32, 0)
