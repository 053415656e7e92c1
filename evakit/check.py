"""Grade a model or a recorded run against a session's assignment constraints.

``grade("s03", record)`` rebuilds the record's model from its recipe config, measures it
(parameters, receptive field, layer types) and reads the accuracy and epoch count from the
record. Each constraint gives one :class:`Verdict`; a :class:`Report` passes when all do.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn

from evakit import models, rf
from evakit.errors import ArgumentError
from evakit.models import vit
from evakit.records import Record

GAP_TYPES = (nn.AdaptiveAvgPool2d, nn.AvgPool2d)
DIGIT_BOX = 20


@dataclass
class Verdict:
    """One constraint: what it asks, what was measured, and whether it holds."""

    constraint: str
    measured: str
    passed: bool


@dataclass
class Report:
    """All verdicts for one session's assignment."""

    session: str
    subject: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def __str__(self) -> str:
        lines = [f"{self.subject} against the session {self.session} assignment:"]
        lines += [f"  [{'PASS' if v.passed else 'FAIL'}] {v.constraint}: {v.measured}"
                  for v in self.verdicts]
        failed = [v.constraint for v in self.verdicts if not v.passed]
        lines.append("  all constraints met" if not failed else f"  failed: {'; '.join(failed)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self) + "</pre>"


def _count(model: nn.Module, kinds) -> int:
    return sum(isinstance(m, kinds) for m in model.modules())


def _structure(model: nn.Module, input_size, *, max_params: int, layers: bool) -> list[Verdict]:
    params = models.count_parameters(model)
    verdicts = [Verdict(f"parameters < {max_params:,}", f"{params:,}", params < max_params)]
    if layers:
        bn, drop = _count(model, nn.BatchNorm2d), _count(model, nn.Dropout)
        gap, fc = _count(model, GAP_TYPES), _count(model, nn.Linear)
        verdicts += [Verdict("uses batch normalization", f"{bn} BatchNorm2d", bn > 0),
                     Verdict("uses dropout", f"{drop} Dropout", drop > 0),
                     Verdict("uses global average pooling", f"{gap} GAP", gap > 0),
                     Verdict("exactly one fully connected layer", f"{fc} Linear", fc == 1)]
    layer, seen = rf.receptive_field_before_pool(model, input_size)
    verdicts.append(Verdict(f"receptive field before global pooling covers the digit (≥ "
                            f"{DIGIT_BOX}: MNIST centres each digit in a {DIGIT_BOX}×{DIGIT_BOX} "
                            "box)", f"RF {seen} entering {layer}",
                            min(_pair(seen)) >= DIGIT_BOX))
    return verdicts


def _pair(rf_value) -> tuple:
    return rf_value if isinstance(rf_value, tuple) else (rf_value, rf_value)


def _s03(model, record) -> list[Verdict]:
    verdicts = _structure(model, (1, 28, 28), max_params=20_000, layers=True)
    if record is not None:
        epoch, best = record.history.best()
        verdicts += [
            Verdict("fewer than 20 epochs", f"{record.epochs_run}", record.epochs_run < 20),
            Verdict("test accuracy ≥ 99.4 %", f"best {best:.2f} % (epoch {epoch})",
                    best >= 99.4),
        ]
    return verdicts


def _s04(model, record) -> list[Verdict]:
    verdicts = _structure(model, (1, 28, 28), max_params=8_000, layers=False)
    if record is not None:
        last3 = record.history.test_acc[-3:]
        verdicts += [
            Verdict("at most 15 epochs", f"{record.epochs_run}", record.epochs_run <= 15),
            Verdict("test accuracy ≥ 99.4 % in each of the last 3 epochs",
                    ", ".join(f"{a:.2f}" for a in last3),
                    len(last3) == 3 and min(last3) >= 99.4),
        ]
    return verdicts


def _s06(model, record) -> list[Verdict]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [c for c in convs if c.groups > 1 and c.groups == c.in_channels]
    dilated = [c for c in convs if max(c.dilation) > 1]
    pools = _count(model, (nn.MaxPool2d, nn.AdaptiveMaxPool2d))
    gap = _count(model, GAP_TYPES)
    layer, seen = rf.receptive_field_before_pool(model, (3, 32, 32))
    params = models.count_parameters(model)
    verdicts = [
        Verdict("parameters < 200,000", f"{params:,}", params < 200_000),
        Verdict("receptive field > 44 (before global pooling)", f"RF {seen} entering {layer}",
                min(_pair(seen)) > 44),
        Verdict("no max pooling", f"{pools} max-pool layers", pools == 0),
        Verdict("a depthwise-separable convolution", f"{len(depthwise)} depthwise convs",
                len(depthwise) > 0),
        Verdict("a dilated convolution", f"{len(dilated)} dilated convs", len(dilated) > 0),
        Verdict("global average pooling", f"{gap} GAP", gap > 0),
    ]
    if record is not None:
        acc = record.final_test_acc
        verdicts.append(Verdict("test accuracy ≥ 85 %", f"{acc:.2f} % after epoch "
                                f"{record.epochs_run} on {record.test_set()}", acc >= 85))
    return verdicts


def _residual_adds(model: nn.Module) -> int | None:
    """How many tensor additions the forward pass makes (None when it cannot be traced)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 — any untraceable model is reported, not raised
        return None
    return sum(n.op == "call_function" and n.target in (operator.add, torch.add)
               for n in graph.nodes)


def _s08(model, record) -> list[Verdict]:
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    stages = [w for i, w in enumerate(widths) if i == 0 or w != widths[i - 1]]
    adds = _residual_adds(model)
    pool4 = [m for m in model.modules() if isinstance(m, nn.MaxPool2d) and m.kernel_size == 4]
    with torch.no_grad(), models.evaluating(model):     # eval: one image is no batch for BN
        out = model(torch.zeros(1, 3, 32, 32))
    verdicts = [
        Verdict("channels prep 64 → 128 → 256 → 512", " → ".join(map(str, stages)),
                stages == [64, 128, 256, 512]),
        Verdict("two residual additions (layer 1 and layer 3)",
                "not traceable" if adds is None else f"{adds}", adds == 2),
        Verdict("MaxPool(4) before the classifier", f"{len(pool4)}", len(pool4) == 1),
        Verdict("10 outputs for a 32×32 image", f"{tuple(out.shape)}", tuple(out.shape) == (1, 10)),
    ]
    if record is not None:
        acc = record.final_test_acc
        stretch = "met" if acc >= 93.8 else "not met"
        verdicts += [
            Verdict("24 epochs", f"{record.epochs_run}", record.epochs_run == 24),
            Verdict("test accuracy ≥ 90 %", f"{acc:.2f} % on {record.test_set()} (stretch "
                    f"≥ 93.8 %: {stretch})", acc >= 90),
        ]
    return verdicts


def _ultimus_blocks(model: nn.Module) -> list[nn.Module]:
    """The ULTIMUS blocks of a model, whatever their class: modules with linear layers named
    k, q, v and out."""
    return [m for m in model.modules()
            if all(isinstance(getattr(m, n, None), nn.Linear) for n in ("k", "q", "v", "out"))]


def _fc(layer: nn.Linear) -> str:
    return f"{layer.in_features} → {layer.out_features}"


def _s09(model, record) -> list[Verdict]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    channels = [convs[0].in_channels, *(c.out_channels for c in convs)] if convs else []
    blocks = _ultimus_blocks(model)
    shapes = {f"K {_fc(b.k)}, Q {_fc(b.q)}, V {_fc(b.v)}, out {_fc(b.out)}" for b in blocks}
    wanted = "K 48 → 8, Q 48 → 8, V 48 → 8, out 8 → 48"
    in_blocks = {id(m) for b in blocks for m in b.modules()}
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in in_blocks]
    conv_units = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    parts = {"the convolutions (with their norms)":
             sum(map(models.count_parameters, conv_units)),
             f"{len(blocks)} ULTIMUS blocks": sum(map(models.count_parameters, blocks)),
             "the final FC": sum(map(models.count_parameters, heads))}
    params = models.count_parameters(model)
    with torch.no_grad(), models.evaluating(model):     # eval: one image is no batch for BN
        out = model(torch.zeros(1, 3, 32, 32))
    verdicts = [
        Verdict("three convolutions, 3 → … → 48 channels", " → ".join(map(str, channels)),
                len(convs) == 3 and channels[0] == 3 and channels[-1] == 48),
        Verdict("four ULTIMUS blocks", f"{len(blocks)}", len(blocks) == 4),
        Verdict(f"every block: {wanted}",
                f"all {len(blocks)}: {wanted}" if shapes == {wanted}
                else "; ".join(sorted(shapes)) or "no blocks", shapes == {wanted}),
        Verdict("one final FC 48 → 10", ", ".join(map(_fc, heads)) or "none",
                [_fc(h) for h in heads] == ["48 → 10"]),
        Verdict("parameters: all in the convolutions, the blocks and the final FC",
                f"{params:,} = " + " + ".join(f"{n:,} in {what}" for what, n in parts.items()),
                params == sum(parts.values())),
        Verdict("10 outputs for a 32×32 image", f"{tuple(out.shape)}", tuple(out.shape) == (1, 10)),
    ]
    if record is not None:
        config = record.config
        verdicts += [
            Verdict("24 epochs", f"{record.epochs_run}", record.epochs_run == 24),
            Verdict("one-cycle schedule", f"{config['scheduler']}",
                    config["scheduler"] == "onecycle"),
            Verdict("Adam optimizer", f"{config['optimizer']}", config["optimizer"] == "adam"),
        ]
    return verdicts


CIFAR_TRAIN = 50_000


def _s10(model, record) -> list[Verdict]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    found = vit.embedding_parts(model)
    dim = found.patch[0][1].out_channels if found.patch else None
    tokens = (32 // found.patch[0][1].stride[0]) ** 2 + 1 if found.patch else None
    blocks = vit.encoder_blocks(model)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), models.evaluating(model):
        out = model(images)
        reference, heads, gap, why = _closest_reference(model, images, out, dim)
    if reference is not None:
        n_ours, n_ref = models.count_parameters(model), models.count_parameters(reference)
    convs_seen = ", ".join(f"{c.in_channels}→{c.out_channels} k{c.kernel_size[0]} "
                           f"s{c.stride[0]}" for c in convs[:2]) or "no Conv2d"
    if len(convs) > 2:
        convs_seen = f"{len(convs)} Conv2d: {convs_seen}, …"
    verdicts = [
        Verdict("a patch embedding: one convolution whose stride is its kernel",
                convs_seen, len(convs) == 1 and len(found.patch) == 1),
        Verdict("a learned CLS token (1×1×D)", ", ".join(n for n, _ in found.cls) or "none",
                len(found.cls) == 1),
        Verdict("learned position embeddings, one per token (1×(patches + 1)×D)",
                ", ".join(f"{n} {tuple(p.shape)}" for n, p in found.pos) or "none",
                sum(p.shape[1] == tokens for _, p in found.pos) == 1),
        Verdict("encoder blocks (two LayerNorms and an attention each)", f"{len(blocks)}",
                len(blocks) > 0),
        Verdict("a head with 10 outputs for a 32×32 image", f"{tuple(out.shape[1:])}",
                tuple(out.shape[1:]) == (10,)),
    ]
    if reference is None:
        verdicts += [Verdict("same parameter count as the nn.TransformerEncoderLayer "
                             "formulation", why, False),
                     Verdict("same outputs once the weights are copied", why, False)]
    else:
        verdicts += [
            Verdict("same parameter count as the nn.TransformerEncoderLayer formulation",
                    f"{n_ours:,} and {n_ref:,}", n_ours == n_ref),
            Verdict("same outputs once the weights are copied",
                    f"largest difference of the logits of 4 images {gap:.1e} "
                    f"({'with' if gap < 1e-5 else 'closest:'} {heads} heads)", gap < 1e-5),
        ]
    if record is not None:
        train_set = record.data.get("train")
        size = train_set.size if train_set is not None else 0
        dataset = record.config["dataset"]
        verdicts += [
            Verdict(f"trained on CIFAR-10 ({CIFAR_TRAIN:,} training images)",
                    f"{dataset}, {size:,} training images",
                    dataset == "cifar10" and size == CIFAR_TRAIN),
            Verdict("the training run finished",
                    f"{record.epochs_run} of {record.epochs_planned} epochs; final test "
                    f"accuracy {record.final_test_acc:.2f} % on {record.test_set()} (the "
                    "assignment sets no target)", record.epochs_run == record.epochs_planned),
        ]
    return verdicts


def _closest_reference(model: nn.Module, images: torch.Tensor, out: torch.Tensor,
                       dim: int | None) -> tuple[nn.Module | None, int, float, str]:
    """The nn.TransformerEncoderLayer formulation of ``model``, found by structure, whose
    logits on ``images`` come nearest to ``out`` over every head count that divides the width
    (a head count is not in the weights). Returns (reference, heads, largest logit
    difference, why there is no reference)."""
    if dim is None:
        return None, 0, math.inf, "no nn.TransformerEncoderLayer formulation: no patch embedding"
    best = (None, 0, math.inf, "no nn.TransformerEncoderLayer formulation: no head count "
            "gives finite logits")
    for heads in (h for h in range(1, dim + 1) if dim % h == 0):
        try:
            reference = vit.reference_like(model, heads).eval()
        except (ArgumentError, RuntimeError) as err:
            return None, 0, math.inf, f"no nn.TransformerEncoderLayer formulation: {err}"
        gap = float((reference(images) - out).abs().max())
        if gap < best[2]:
            best = (reference, heads, gap, "")
    return best


NANOGPT_CPU = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
GPT_TARGET_LOSS = 1.88   # the loss nanoGPT's README reports for this small CPU configuration


def _s11(model, record) -> list[Verdict]:
    from evakit.models import language

    config = getattr(model, "config", None)
    gpt = isinstance(model, language.GPT) and bool(getattr(config, "causal", False))
    vocab = getattr(config, "vocab_size", None)
    context = getattr(config, "block_size", None)
    params = models.count_parameters(model)
    limit = models.count_parameters(language.GPT(language.TransformerConfig(**NANOGPT_CPU)))
    verdicts = [
        Verdict("a causal decoder (GPT)", type(model).__name__ + (" (causal)" if gpt else ""),
                gpt),
        Verdict("character tokens: a vocabulary of 65, so the loss is per character",
                f"{vocab}", vocab == NANOGPT_CPU["vocab_size"]),
        Verdict("context of 64 characters", f"{context}", context == NANOGPT_CPU["block_size"]),
        Verdict(f"parameters ≤ {limit:,} (nanoGPT's small CPU configuration: 4 layers, "
                "4 heads, width 128)", f"{params:,}", params <= limit),
    ]
    if record is not None:
        test = record.data.get("test")
        by_char = test is not None and test.dataset == "shakespeare-char"
        loss = record.history.test_loss[-1] if len(record.history) else float("inf")
        unit = "" if by_char else f" per token of {test.dataset if test else 'no test set'}"
        verdicts += [
            Verdict("held out: the last 10 % of Tiny Shakespeare, by characters",
                    record.test_set() if test is not None else "no test set", by_char),
            Verdict(f"held-out loss < {GPT_TARGET_LOSS} nats per character (nanoGPT's small "
                    "CPU configuration)", f"{loss:.3f}{unit} after epoch {record.epochs_run}",
                    by_char and loss < GPT_TARGET_LOSS),
        ]
    return verdicts


LT_BASELINE = "s12/lt-ce"   # session 12's plain cross-entropy on CIFAR-10-LT
LT_RATIO, LT_EPOCHS, LT_RARE_GAIN, LT_BALANCED_LOSS = 100, 30, 10.0, 5.0


def _recalls(record) -> torch.Tensor:
    """Per-class test recall of a record, from its stored predictions and the rebuilt test set."""
    from evakit import practice

    truth = practice.recorded_data(record, "test").labels
    pred = practice.recorded_predictions(record)
    # Every class by its index, so that the rare classes' positions hold even where a test
    # set lacks one (its recall is then NaN, and the comparison fails).
    return torch.stack([(pred[truth == c] == c).float().mean() for c in range(10)])


def _s12(model, record) -> list[Verdict]:
    from evakit import losses, records

    params = models.count_parameters(model)
    verdicts = [Verdict("parameters < 200,000 (session 6's budget)", f"{params:,}",
                        params < 200_000)]
    if record is None:
        return verdicts
    ratio = (record.config.get("practice") or {}).get("imbalance")
    verdicts += [
        Verdict(f"trained on CIFAR-10-LT, imbalance ratio {LT_RATIO}",
                f"{record.config['dataset']}, ratio {ratio}",
                record.config["dataset"] == "cifar10" and ratio == LT_RATIO),
        Verdict(f"at most {LT_EPOCHS} epochs (the cross-entropy baseline's)",
                f"{record.epochs_run}", record.epochs_run <= LT_EPOCHS),
    ]
    baseline = records.load(LT_BASELINE)
    verdicts += [
        Verdict(f"session 6's network, as in {LT_BASELINE}", record.config["model"],
                record.config["model"] == baseline.config["model"]),
        Verdict(f"the long-tailed training images of {LT_BASELINE}",
                record.data["train"].describe() if "train" in record.data
                else "no training set",
                record.data.get("train") == baseline.data["train"]),
    ]
    same_test = record.data.get("test") == baseline.data["test"]
    verdicts.append(Verdict(f"scored on the test images of the baseline {LT_BASELINE}",
                            record.test_set() if "test" in record.data else "no test set",
                            same_test))
    if not same_test:
        return verdicts
    ours, base = 100 * _recalls(record), 100 * _recalls(baseline)
    counts = torch.tensor(losses.long_tailed_counts(5000, 10, LT_RATIO))
    rare = counts.argsort()[:3]
    gain = float(ours[rare].mean() - base[rare].mean())
    drop = float(base.mean() - ours.mean())
    verdicts += [
        Verdict(f"mean recall of the 3 rarest classes ≥ {LT_BASELINE}'s + "
                f"{LT_RARE_GAIN:.0f} points",
                f"{float(ours[rare].mean()):.1f} % against {float(base[rare].mean()):.1f} % "
                f"({gain:+.1f})", gain >= LT_RARE_GAIN),
        Verdict(f"balanced accuracy ≥ {LT_BASELINE}'s − {LT_BALANCED_LOSS:.0f} points",
                f"{float(ours.mean()):.1f} % against {float(base.mean()):.1f} % "
                f"({-drop:+.1f})", drop <= LT_BALANCED_LOSS),
    ]
    return verdicts


SESSIONS: dict[str, Callable] = {"s03": _s03, "s04": _s04, "s06": _s06, "s08": _s08,
                                "s09": _s09, "s10": _s10, "s11": _s11, "s12": _s12}


def grade(session: str, record: Record | None = None, model: nn.Module | None = None) -> Report:
    """Grade a record (and the model its recipe builds), or a bare model.

    Args:
        session: ``"s03"``, ``"s04"``, ``"s06"``, ``"s08"``, ``"s09"``, ``"s10"``, ``"s11"``
            or ``"s12"``.
        record: a record from :mod:`evakit.records`; its model is rebuilt from its config.
        model: grade this model's structure instead (no accuracy constraints without a record).
    """
    if session not in SESSIONS:
        raise ArgumentError(f"no assignment constraints for session {session!r}: expected one of "
                         f"{sorted(SESSIONS)}")
    if record is None and model is None:
        raise ArgumentError("grade() needs a record or a model")
    if model is None:
        model = models.create(record.config["model"], **record.config["model_kwargs"])
    subject = record.recipe if record is not None else type(model).__name__
    return Report(session, subject, SESSIONS[session](model, record))
