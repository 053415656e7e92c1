"""Session 11's CLIP of our own: captions from labels, the contrastive loss, zero-shot use.

MNIST has no captions, so they are written from the labels with sentence templates — "a
photo of the digit seven", "a white 7 on a black background", … :data:`TRAIN_TEMPLATES` are
the only ones training ever sees; :data:`HELD_OUT_TEMPLATES` recombine the same words into
sentences it never saw, and the test history, the zero-shot classifier and the retrieval
examples use those alone. :class:`Captions` is the word-level tokenizer (padding, then the
end-of-text token the text encoder reads at); :func:`contrastive_loss` is CLIP's symmetric
cross-entropy; :func:`class_embeddings`, :func:`zero_shot` and :func:`retrieve` use a trained
:class:`evakit.models.clip.CLIP` without training it further. :class:`Contrastive` is the task
a recipe names (``task="contrastive"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from evakit import data, train
from evakit.errors import ArgumentError
from evakit.models.clip import CLIP
from evakit.models.registry import evaluating
from evakit.recipes import Recipe
from evakit.tasks import TASKS, Task

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# {word} is the digit spelled out, {numeral} the digit itself.
TRAIN_TEMPLATES = (
    "a photo of the digit {word}",
    "a handwritten {word}",
    "the number {numeral}",
    "an image of a {numeral}",
    "{word} written by hand",
    "a white {numeral} on a black background",
)
HELD_OUT_TEMPLATES = (
    "a photo of the number {numeral}",
    "an image of the digit {word}",
    "{numeral} written by hand",
    "a handwritten {numeral} on a black background",
)
PAD, EOS = "[PAD]", "[EOS]"


def caption(template: str, label: int) -> str:
    """The caption of digit ``label`` written with ``template``."""
    if not 0 <= label < len(WORDS):
        raise ArgumentError(f"label must be a digit 0–9, got {label!r}")
    return template.format(word=WORDS[label], numeral=str(label))


class Captions:
    """A word-level tokenizer for the captions, its vocabulary taken from training templates.

    Ids: ``[PAD]`` 0, ``[EOS]`` 1, then the words in sorted order. Every caption is encoded
    to the same length — its words, ``[EOS]``, then padding — the longest caption of all
    templates plus one, so held-out templates that use only known words encode too.

    Args:
        templates: the templates whose words (filled with every digit) make the vocabulary.
        length: tokens per encoded caption (default: the longest caption of the training and
            held-out templates, plus the end-of-text token).
    """

    def __init__(self, templates: Sequence[str] = TRAIN_TEMPLATES,
                 length: int | None = None) -> None:
        words = {w for t in templates for d in range(len(WORDS)) for w in caption(t, d).split()}
        self.itos = [PAD, EOS, *sorted(words)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        longest = max(len(caption(t, 0).split())
                      for t in (*templates, *TRAIN_TEMPLATES, *HELD_OUT_TEMPLATES))
        self.length = length or longest + 1

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, captions: Sequence[str]) -> torch.Tensor:
        """int64 N×``length``: each caption's word ids, ``[EOS]``, then ``[PAD]`` (0)."""
        out = torch.zeros(len(captions), self.length, dtype=torch.int64)
        for row, text in enumerate(captions):
            words = text.split()
            unknown = [w for w in words if w not in self.stoi]
            if unknown:
                raise ArgumentError(f"caption {text!r} has words {unknown} outside the "
                                    f"vocabulary of {self.vocab_size}")
            if len(words) + 1 > self.length:
                raise ArgumentError(f"caption {text!r} has {len(words)} words; at most "
                                    f"{self.length - 1} fit")
            out[row, :len(words) + 1] = torch.tensor([self.stoi[w] for w in words]
                                                     + [self.stoi[EOS]])
        return out

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """The captions of N×L token ids (up to each one's end-of-text token)."""
        texts = []
        for row in torch.as_tensor(tokens).tolist():
            end = row.index(self.stoi[EOS]) if self.stoi[EOS] in row else len(row)
            texts.append(" ".join(self.itos[i] for i in row[:end]))
        return texts

    def table(self, templates: Sequence[str]) -> torch.Tensor:
        """The tokens of every (template, digit) caption: int64 templates×10×``length``."""
        return torch.stack([self.encode([caption(t, d) for d in range(len(WORDS))])
                            for t in templates])


def same_caption_targets(labels: torch.Tensor,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The contrastive targets of a batch: row i spreads its probability evenly over the
    captions that name image i's digit (a one-hot diagonal when every label differs)."""
    same = (labels[:, None] == labels[None, :]).to(dtype)
    return same / same.sum(1, keepdim=True)


def contrastive_loss(logits: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP's symmetric contrastive loss on an N×N matrix of scaled image–caption similarities.

    Row i of ``logits`` scores image i against every caption; column j scores caption j against
    every image. The loss is the mean of two cross-entropies: each image picking its caption
    among the N (softmax along rows) and each caption picking its image (softmax along
    columns). CLIP's pairs are all distinct, so the right answer is the diagonal. With only ten
    digits a batch repeats classes, and a caption that names image i's digit is no wrong
    answer for image i: given ``labels``, every such caption shares the target evenly (which is
    CLIP's loss exactly when all labels differ).

    Args:
        logits: N×N, ``scale · cos(image i, caption j)``.
        labels: the digit of pair i (image i and caption i name the same one); None means
            every pair is distinct.

    Returns:
        The scalar loss.
    """
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ArgumentError(f"logits must be a square N×N matrix, got {tuple(logits.shape)}")
    if labels is None:
        labels = torch.arange(len(logits), device=logits.device)
    targets = same_caption_targets(labels, logits.dtype)
    # The target matrix is symmetric, so its rows are also the captions' targets.
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def picks_right_caption(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Which images' best-scoring caption of the batch names their digit."""
    return labels[logits.argmax(1)] == labels


@torch.no_grad()
def class_embeddings(model: CLIP, captions: Captions,
                     templates: Sequence[str] = HELD_OUT_TEMPLATES) -> torch.Tensor:
    """One unit vector per digit: the mean of its captions' embeddings over ``templates``
    (CLIP's prompt ensembling), renormalized. Returns 10×D, on the model's device."""
    device = next(model.parameters()).device
    with evaluating(model):
        tokens = captions.table(templates).to(device)             # templates×10×L
        emb = model.encode_text(tokens.flatten(0, 1)).view(len(templates), len(WORDS), -1)
    return F.normalize(emb.mean(0), dim=-1)


def zero_shot(image_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """The class whose caption embedding is nearest (largest cosine) to each image embedding.

    Args:
        image_emb: N×D unit vectors.
        class_emb: C×D unit vectors, one per class.

    Returns:
        int64 N class indices.
    """
    return (image_emb @ class_emb.T).argmax(1)


def retrieve(query_emb: torch.Tensor, gallery_emb: torch.Tensor, k: int = 8) -> torch.Tensor:
    """The ``k`` gallery items nearest each query (e.g. images for a caption), best first.

    Returns:
        int64 Q×k indices into the gallery.
    """
    if not 1 <= k <= len(gallery_emb):
        raise ArgumentError(f"k must lie in 1..{len(gallery_emb)} (the gallery), got {k}")
    return (query_emb @ gallery_emb.T).topk(k, dim=1).indices


@torch.no_grad()
def embed_images(model: CLIP, batches: Iterable,
                 precision: train.Precision = train.FP32) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit image embeddings and labels of every batch ``(images, labels)``, on the CPU."""
    device = next(model.parameters()).device
    embs, labels = [], []
    with evaluating(model):
        for x, y in batches:
            with precision.autocast(device):
                embs.append(model.encode_image(precision.inputs(x.to(device))).float().cpu())
            labels.append(y.cpu())
    return torch.cat(embs), torch.cat(labels)


class CaptionLoader(data.PairedLoader):
    """Image batches, each image paired with a caption of its digit.

    Yields ``((images, tokens), labels)``. Each caption's template is drawn from the loader's
    own seeded generator: fresh every epoch for training, the same every pass for testing
    (``fixed=True``).

    Args:
        loader: a :class:`evakit.data.Loader` over MNIST.
        captions: the tokenizer.
        templates: the templates drawn from.
        seed: seed of the template generator.
        fixed: draw the same templates on every pass (for a test set).
    """

    def __init__(self, loader: data.Loader, captions: Captions, templates: Sequence[str], *,
                 seed: int = 0, fixed: bool = False) -> None:
        super().__init__(loader, seed=seed, fixed=fixed)
        self.captions = captions
        self.templates = tuple(templates)
        self.tokens = captions.table(self.templates)

    def pair(self, x: torch.Tensor, y: torch.Tensor):
        which = torch.randint(len(self.templates), (len(y),), generator=self.generator)
        return (x, self.tokens[which, y.cpu()].to(y.device)), y


class Contrastive(Task):
    """CLIP's task: align images with captions of their digit (session 11).

    Training pairs each image with a caption from :data:`TRAIN_TEMPLATES`; the test batches
    use :data:`HELD_OUT_TEMPLATES` only. Accuracy counts the images whose best caption in the
    batch names their digit. The metrics are zero-shot accuracies on the whole test set —
    each image given the digit whose held-out caption embedding is nearest (and, for
    comparison, with the training templates) — and text-to-image retrieval precision: of the
    100 test images nearest each held-out caption, the percentage showing its digit.
    """

    name: ClassVar[str] = "contrastive"
    captions = Captions()

    def load(self, recipe: Recipe, fast: bool):
        vocab = recipe.build_model_config().get("vocab_size")
        if vocab != self.captions.vocab_size:
            raise ArgumentError(f"recipe {recipe.name}: the model's vocab_size is {vocab} but "
                                f"the captions have {self.captions.vocab_size} tokens")
        return super().load(recipe, fast)

    def batches(self, recipe: Recipe, train_set: data.ImageSet, test_set: data.ImageSet,
                device: torch.device) -> tuple[Iterable, Iterable]:
        images, test_images = super().batches(recipe, train_set, test_set, device)
        return (CaptionLoader(images, self.captions, TRAIN_TEMPLATES, seed=recipe.seed),
                CaptionLoader(test_images, self.captions, HELD_OUT_TEMPLATES,
                              seed=recipe.seed + 1, fixed=True))

    def loss(self, recipe: Recipe):
        if recipe.label_smoothing:
            raise ArgumentError(f"recipe {recipe.name}: the contrastive loss takes no label "
                                "smoothing")
        return contrastive_loss

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return picks_right_caption(out, y)

    def metrics(self, model: nn.Module, test_batches: CaptionLoader,
                precision: train.Precision) -> dict[str, float]:
        images, labels = embed_images(model, test_batches.loader, precision)
        result = {}
        for name, templates in (("zero_shot_acc", HELD_OUT_TEMPLATES),
                                ("zero_shot_acc_train_templates", TRAIN_TEMPLATES)):
            classes = class_embeddings(model, self.captions, templates).cpu()
            result[name] = 100.0 * float((zero_shot(images, classes) == labels).float().mean())
        texts = self.captions.table(HELD_OUT_TEMPLATES).flatten(0, 1)
        with torch.no_grad(), evaluating(model):
            queries = model.encode_text(texts.to(next(model.parameters()).device)).cpu()
        digits = torch.arange(len(WORDS)).repeat(len(HELD_OUT_TEMPLATES))
        found = labels[retrieve(queries, images, min(100, len(images)))]
        result["retrieval_precision_at_100"] = 100.0 * float(
            (found == digits[:, None]).float().mean())
        return result


def evidence(model: CLIP, test_batches: CaptionLoader, precision: train.Precision) -> dict:
    """What a record keeps: every test image's zero-shot digit (held-out templates) and its
    confidence in thousandths — the softmax of the scaled cosines to the ten class embeddings —
    in the format of :func:`evakit.evidence.predictions`."""
    images, _ = embed_images(model, test_batches.loader, precision)
    classes = class_embeddings(model, Contrastive.captions).cpu()
    with torch.no_grad():
        probs = (model.scale.detach().cpu() * images @ classes.T).softmax(1)
    confidence, pred = probs.max(1)
    return {"test_predictions": {"pred": "".join(str(int(p)) for p in pred),
                                 "confidence_permille": [int(c) for c in
                                                         (confidence * 1000).round()],
                                 "how": "zero-shot, held-out templates"}}


TASKS[Contrastive.name] = Contrastive()
