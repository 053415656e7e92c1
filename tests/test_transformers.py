"""Session 11: CLIP's captions, loss and zero-shot use; the session's recipes through the runner;
the GPT bench's schedule and printout (never its timing)."""

import math
from dataclasses import replace

import pytest
import torch

from evakit import bench, cli, clip, data, evidence, models, recipes, runner, tasks, text
from evakit.errors import ArgumentError
from evakit.models.clip import CAPTION_CONTEXT, CAPTION_VOCAB, CLIP, CLIPConfig
from evakit.models.language import strided_mask

# ------------------------------------------------------------------------- the contrastive loss


def _by_hand(logits: list[list[float]], labels: list[int]) -> float:
    """The symmetric loss written out: each row (image) and each column (caption) is a softmax;
    its target spreads evenly over the pairs of the same label."""
    n = len(logits)
    image_side = caption_side = 0.0
    for i in range(n):
        row = [math.exp(v) for v in logits[i]]
        positives = [j for j in range(n) if labels[j] == labels[i]]
        image_side -= sum(math.log(row[j] / sum(row)) for j in positives) / len(positives)
    for j in range(n):
        column = [math.exp(logits[i][j]) for i in range(n)]
        positives = [i for i in range(n) if labels[i] == labels[j]]
        caption_side -= sum(math.log(column[i] / sum(column)) for i in positives) / len(positives)
    return (image_side / n + caption_side / n) / 2


def test_contrastive_loss_equals_the_hand_computation_on_distinct_pairs():
    logits = [[3.0, -1.0, 0.5], [0.2, 2.0, -0.7], [1.0, 1.5, 0.1]]
    got = clip.contrastive_loss(torch.tensor(logits, dtype=torch.float64))
    assert got.item() == pytest.approx(_by_hand(logits, [0, 1, 2]), abs=1e-12)
    # CLIP's own formulation (Radford et al. 2021, figure 3): targets are the diagonal.
    t = torch.tensor(logits, dtype=torch.float64)
    arange = torch.arange(3)
    clip_paper = (torch.nn.functional.cross_entropy(t, arange)
                  + torch.nn.functional.cross_entropy(t.T, arange)) / 2
    assert got.item() == pytest.approx(clip_paper.item(), abs=1e-12)


def test_contrastive_loss_shares_the_target_among_captions_of_the_same_digit():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 5, generator=g, dtype=torch.float64) * 3
    labels = [7, 2, 7, 7, 4]
    got = clip.contrastive_loss(logits, torch.tensor(labels))
    assert got.item() == pytest.approx(_by_hand(logits.tolist(), labels), abs=1e-12)
    targets = clip.same_caption_targets(torch.tensor(labels))
    assert torch.allclose(targets.sum(1), torch.ones(5, dtype=targets.dtype))
    assert targets[0, 2] == targets[0, 3] == 1 / 3 and targets[0, 1] == 0


def test_contrastive_loss_refuses_a_non_square_matrix():
    with pytest.raises(ArgumentError, match="square N×N"):
        clip.contrastive_loss(torch.zeros(3, 4))


# ---------------------------------------------------------------- zero-shot and retrieval


def test_zero_shot_picks_the_class_whose_caption_embedding_is_nearest():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    s = math.sqrt(0.5)
    images = torch.tensor([[0.8, 0.6], [s, s + 1e-3], [-0.6, -0.8], [0.0, -1.0]])
    # cosines: image 0 → (0.8, 0.6, −0.8); image 1 leans to class 1; image 2 → (−0.6, −0.8,
    # 0.6); image 3 is equidistant from 0 and 2 and far from 1: the first of the tie wins.
    images = torch.nn.functional.normalize(images, dim=1)
    assert clip.zero_shot(images, classes).tolist() == [0, 1, 2, 0]


def test_retrieve_returns_the_nearest_items_best_first():
    gallery = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [0.7, 0.7]]), dim=1)
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert clip.retrieve(query, gallery, 3).tolist() == [[0, 1, 4], [2, 4, 1]]
    with pytest.raises(ArgumentError, match="k must lie in 1..5"):
        clip.retrieve(query, gallery, 6)


def test_class_embeddings_average_the_templates_and_are_unit_vectors():
    torch.manual_seed(0)
    model = CLIP().eval()
    captions = clip.Captions()
    emb = clip.class_embeddings(model, captions, clip.HELD_OUT_TEMPLATES)
    assert emb.shape == (10, model.config.embed_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(10), atol=1e-6)
    seven = model.encode_text(captions.encode([clip.caption(t, 7)
                                               for t in clip.HELD_OUT_TEMPLATES]))
    assert torch.allclose(emb[7], torch.nn.functional.normalize(seven.mean(0), dim=0),
                          atol=1e-6)


# ------------------------------------------------------------------ captions and the model


def test_captions_round_trip_and_held_out_templates_use_only_training_words():
    captions = clip.Captions()
    assert captions.vocab_size == CAPTION_VOCAB == recipes.get("s11/clip").build_model_config()[
        "vocab_size"]
    assert captions.length <= CAPTION_CONTEXT
    texts = [clip.caption(t, d) for t in clip.HELD_OUT_TEMPLATES for d in range(10)]
    tokens = captions.encode(texts)
    assert captions.decode(tokens) == texts
    assert set(clip.HELD_OUT_TEMPLATES).isdisjoint(clip.TRAIN_TEMPLATES)
    assert clip.caption("a handwritten {word}", 7) == "a handwritten seven"
    eos = (tokens == CLIP.EOS).int().argmax(1)
    assert eos.tolist() == [len(t.split()) for t in texts]
    assert (tokens.gather(1, eos[:, None]) == CLIP.EOS).all()
    with pytest.raises(ArgumentError, match="outside the vocabulary"):
        captions.encode(["a drawing of a seven"])


def test_padding_after_the_end_of_text_token_changes_nothing():
    torch.manual_seed(0)
    model = CLIP().eval()
    tokens = clip.Captions().encode(["a handwritten seven", "the number 3"])
    noisy = tokens.clone()
    after = torch.arange(tokens.shape[1]) > (tokens == CLIP.EOS).int().argmax(1, keepdim=True)
    noisy[after] = torch.randint(2, CAPTION_VOCAB, (int(after.sum()),))
    with torch.no_grad():
        assert torch.equal(model.encode_text(tokens), model.encode_text(noisy))


def test_clip_scores_are_the_scaled_cosines_and_the_scale_is_clipped_at_100():
    torch.manual_seed(0)
    model = CLIP().eval()
    images = torch.randn(4, 1, 28, 28)
    tokens = clip.Captions().encode([clip.caption(clip.TRAIN_TEMPLATES[0], d) for d in range(4)])
    with torch.no_grad():
        cos = model.encode_image(images) @ model.encode_text(tokens).T
        assert torch.allclose(model(images, tokens), cos / 0.07, atol=1e-5)
        model.logit_scale.fill_(10.0)
        assert model.scale.item() == pytest.approx(100.0)
    with pytest.raises(ArgumentError, match="text_width"):
        CLIPConfig(text_width=30, text_heads=4)


def test_caption_loader_draws_fixed_captions_for_testing_and_resumes_exactly():
    images = data.synthetic("synthetic-mnist", 64)
    captions = clip.Captions()

    def loader(fixed, seed=0):
        return clip.CaptionLoader(data.Loader(images, 16, shuffle=not fixed, seed=seed),
                                  captions, clip.TRAIN_TEMPLATES, seed=seed, fixed=fixed)

    test = loader(fixed=True)
    first = [t for (_, t), _ in test]
    assert all(torch.equal(a, b) for a, b in zip(first, [t for (_, t), _ in test], strict=True))
    for (_, tokens), y in test:   # every caption names its image's digit
        for text_, label in zip(captions.decode(tokens), y.tolist(), strict=True):
            assert clip.WORDS[label] in text_.split() or str(label) in text_.split()
    a = loader(fixed=False)
    list(a)
    state = a.state_dict()
    expected = [t for (_, t), _ in a]
    b = loader(fixed=False, seed=5)
    b.load_state_dict(state)
    assert all(torch.equal(p, q) for p, q in zip(expected, [t for (_, t), _ in b], strict=True))


# ------------------------------------------------------------------ recipes through the runner


def test_clip_recipe_trains_end_to_end_and_reports_zero_shot_metrics():
    train_set = data.synthetic("synthetic-mnist", 512, seed=1)
    test_set = data.synthetic("synthetic-mnist", 200, seed=2, split="test")
    recipe = replace(recipes.get("s11/clip"), batch_size=32, rotation=0.0, precision="fp32")
    done = runner.run(recipe, epochs=6, fast=False, device="cpu", verbose=False,
                      train_set=train_set, test_set=test_set)
    assert isinstance(tasks.get("contrastive"), clip.Contrastive)
    assert set(done.metrics) == {"test_acc", "zero_shot_acc", "zero_shot_acc_train_templates",
                                 "retrieval_precision_at_100"}
    assert all(0 <= v <= 100 for v in done.metrics.values())
    assert done.metrics["zero_shot_acc"] > 50          # chance is 10 %: the set is learnable
    kept = evidence.collect(done, test_set)["test_predictions"]
    assert len(kept["pred"]) == len(kept["confidence_permille"]) == 200
    right = sum(int(p) == int(y) for p, y in zip(kept["pred"], test_set.labels, strict=True))
    assert 100 * right / 200 == pytest.approx(done.metrics["zero_shot_acc"])
    assert models.count_parameters(done.model) <= 900_000     # its weights stay with its record


def test_sparse_gpt_recipe_blocks_the_future_and_reads_only_its_pattern():
    recipe = recipes.get("s11/gpt-sparse")
    torch.manual_seed(0)
    model = recipe.build_model().eval()
    assert torch.equal(model.transformer.blocks[0].attn.mask, strided_mask(64, 8))
    x = torch.randint(0, 65, (1, 64))
    changed = x.clone()
    changed[0, 40:] = (changed[0, 40:] + 1) % 65
    with torch.no_grad():
        assert torch.equal(model(x)[0, :40], model(changed)[0, :40])
    dense = recipes.get("s11/gpt")
    assert recipe.differences(dense).keys() == {"name", "summary", "model_kwargs"}


def test_text_recipes_run_end_to_end_on_a_fast_slice():
    gpt = runner.run(replace(recipes.get("s11/gpt"), steps=5), fast=True, device="cpu",
                     verbose=False)
    assert gpt.data["train"].size == text.FAST_TOKENS["train"] and len(gpt.history) == 1
    assert gpt.model.config.n_layer == 1 and gpt.label.startswith("FAST run")
    kept = evidence.collect(gpt, gpt.test_set)["samples"]
    assert len(kept["texts"]) == 3 and kept["top_k"] == 40
    bert = runner.run(replace(recipes.get("s11/bert"), steps=5), fast=True, device="cpu",
                      verbose=False)
    assert set(bert.metrics) == {"test_acc", "unigram_baseline_acc"}
    assert bert.model.config.vocab_size == 66 and not bert.model.config.causal


def test_vit_ablation_switches_on_one_ingredient_per_step():
    steps = ["plain", "aug", "warmup", "wd", "ls"]
    changed = []
    for before, after in zip(steps, steps[1:], strict=False):
        diff = recipes.get(f"s11/vit-{after}").differences(recipes.get(f"s11/vit-{before}"))
        changed.append(sorted(set(diff) - {"name", "summary"}))
    assert changed == [["crop_padding", "flip"], ["lr_start"], ["weight_decay"],
                       ["label_smoothing"]]
    final = recipes.get("s11/vit").differences(recipes.get("s11/vit-ls"))
    assert set(final) - {"name", "summary"} == {"epochs"}
    assert recipes.get("s11/vit-ls").differences(recipes.get("s10/vit")).keys() <= {
        "name", "session", "summary", "epochs"}


# --------------------------------------------------------------------------- the GPT bench


def test_bench_schedule_is_nanogpts_warm_up_then_cosine():
    s = bench.NANOGPT_BABY
    assert s.lr_at(0) == pytest.approx(1e-3 / 101)
    assert s.lr_at(99) == pytest.approx(1e-3 * 100 / 101)
    assert s.lr_at(100) == pytest.approx(1e-3)
    assert s.lr_at(1050) == pytest.approx((1e-3 + 1e-4) / 2)
    assert s.lr_at(2000) == pytest.approx(1e-4)


def test_bench_trains_and_scores_every_setting_alike():
    tokens = torch.arange(2000) % 7                       # a periodic text: learnable
    batches = [text.lm_batches(tokens, 64, 8, torch.Generator().manual_seed(0))]
    setting = bench.GPTSetting("tiny", 8, 30, 3e-3, 3e-4, 5, eval_every=10)
    result = bench.train_gpt(setting, tokens, batches, 7, target=1.0, device=torch.device("cpu"))
    assert [it for it, _, _ in result.evals] == [10, 20, 30]
    assert result.tokens == 30 * 8 * 64 and result.final_loss < result.evals[0][2]
    assert result.reached is not None and result.reached[0] in (10, 20, 30)


def test_cli_bench_gpt_prints_both_settings_and_the_ratio(monkeypatch, capsys):
    def fake(device=None):
        evals = [(100, 10.0, 2.0), (200, 20.0, 1.8)]
        return [bench.GPTResult(bench.NANOGPT_BABY, 100.0, 1_000_000, evals, 1.88),
                bench.GPTResult(bench.EVAKIT_GPT, 25.0, 1_000_000,
                                [(50, 5.0, 1.9), (100, 10.0, 1.85)], 1.88)]
    monkeypatch.setattr(bench, "gpt", fake)
    assert cli.main(["bench", "gpt"]) == 0
    out = capsys.readouterr().out
    assert "10,000 tokens/s" in out and "40,000 tokens/s" in out
    assert "after  20.0 s" in out and "after  10.0 s" in out
    assert "2.0× as long to reach 1.88" in out and "4.0× the baseline's" in out


def test_bench_gpt_runs_a_bf16_setting_in_fp32_where_the_device_has_no_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(bench.train, "bf16_supported", lambda device: False)
    fallback = bench._runnable(bench.EVAKIT_GPT, cpu)
    assert fallback.precision == "fp32" and "fp32 (no bf16 here)" in fallback.name
    assert bench._runnable(bench.NANOGPT_BABY, cpu) == bench.NANOGPT_BABY       # fp32 already
    plain = replace(bench.EVAKIT_GPT, name="candidate")
    assert bench._runnable(plain, cpu).name == "candidate (fp32: no bf16 here)"
    monkeypatch.setattr(bench.train, "bf16_supported", lambda device: True)
    assert bench._runnable(bench.EVAKIT_GPT, cpu) == bench.EVAKIT_GPT
