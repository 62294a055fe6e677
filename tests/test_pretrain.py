"""The pretrained stand-ins: held-out split, pinned threads, deterministic builds, measured quality."""

import dataclasses
import json
import math
import os
import random
from pathlib import Path

import pytest
import torch

from course_utils import cache, checkpoints, pretrain
from course_utils.environment import cache_dir

REAL_CACHE = cache_dir()  # where `python -m course_utils.prepare` built the real stand-ins


@pytest.fixture
def tiny_builds(monkeypatch, tmp_path):
    """An empty stand-in cache (sharing the real text) and 2-step recipes: the real build path, in seconds."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    os.symlink(REAL_CACHE / "vader", tmp_path / "cache" / "vader")
    monkeypatch.setattr(pretrain, "GPT2_RECIPE", dataclasses.replace(pretrain.GPT2_RECIPE, steps=2))
    monkeypatch.setattr(pretrain, "BERT_RECIPE", dataclasses.replace(pretrain.BERT_RECIPE, steps=2))
    monkeypatch.setattr(checkpoints, "_hashed", set())
    return tmp_path


def test_heldout_sentences_are_a_fixed_tenth_never_trained_on():
    train = pretrain.training_sentences()
    held = {kind: pretrain.heldout_sentences(kind) for kind in pretrain.TEXT_KINDS}
    total = len(train) + sum(len(h) for h in held.values())
    assert 0.08 < sum(len(h) for h in held.values()) / total < 0.12
    assert len(held["movie"]) > 900  # enough to measure on
    assert not set(train) & set(held["movie"])
    # decided by the text alone: the same sentence is held out wherever it appears
    assert all(pretrain.is_heldout(s) for s in held["movie"])
    assert pretrain.is_heldout(" " + held["movie"][0] + "\n")
    assert pretrain.heldout_sentences("movie") == held["movie"]


def test_pinned_threads_sets_and_restores_threads_and_rng():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    state = torch.random.get_rng_state()
    try:
        with pretrain.pinned_threads(1):
            assert torch.get_num_threads() == 1
            torch.manual_seed(5)
            torch.rand(3)
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), state)
    finally:
        torch.set_num_threads(before)


def _files(folder: Path) -> dict:
    return cache.read_manifest(folder)  # name -> size and SHA-256 of every file


@pytest.mark.parametrize("name", ["gpt2", "bert-base-uncased"])
def test_builds_are_identical_whatever_threads_the_caller_uses(tiny_builds, monkeypatch, name):
    before = torch.get_num_threads()
    built = []
    try:
        for threads, seed in ((2, 1), (1, 999)):
            monkeypatch.setenv("COURSE_CACHE_DIR", str(tiny_builds / "cache"))
            torch.set_num_threads(threads)
            torch.manual_seed(seed)  # nor does the caller's RNG matter
            folder = checkpoints.standin_dir(name)
            built.append(_files(folder))
            cache._remove(folder)  # the next round builds from scratch
        assert built[0] == built[1]
        assert {"model.safetensors", "tokenizer.json", "config.json", "training.json"} <= set(built[0])
    finally:
        torch.set_num_threads(before)


def test_training_lowers_the_loss_in_the_real_stand_ins():
    for name, key in (("gpt2", "loss"), ("bert-base-uncased", "mlm_loss")):
        log = json.loads((checkpoints.standin_dir(name) / pretrain.TRAINING_LOG).read_text())
        assert log["steps"] == len(log["losses"]) > 100
        assert log[f"last_{key}"] < log[f"first_{key}"] - 2


def test_gpt2_standin_has_learned_english():
    from transformers import AutoTokenizer, GPT2LMHeadModel

    folder = checkpoints.standin_dir("gpt2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = GPT2LMHeadModel.from_pretrained(folder)
    held = pretrain.heldout_sentences("movie")[:300]
    learned = pretrain.perplexity(model, tokenizer, held)
    assert learned < 1000  # issue 10's target
    assert abs(learned / checkpoints.GPT2_HELDOUT_PERPLEXITY - 1) < 0.1  # what the offline notice says
    torch.manual_seed(0)
    untrained = pretrain.perplexity(GPT2LMHeadModel(model.config), tokenizer, held[:50])
    assert untrained > 20 * learned  # an untrained model: ~50,000 (uniform over 50,257 tokens)


def test_bert_standin_has_learned_masked_words():
    from transformers import AutoTokenizer, BertForPreTraining

    folder = checkpoints.standin_dir("bert-base-uncased")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForPreTraining.from_pretrained(folder)
    held = pretrain.heldout_sentences("movie")[:300]
    top5 = pretrain.one_mask_accuracy(model, tokenizer, held, k=5)
    assert top5 >= 0.25  # issue 10's target
    assert abs(top5 / checkpoints.BERT_HELDOUT_TOP5 - 1) < 0.1  # what the offline notice says
    torch.manual_seed(0)
    assert pretrain.one_mask_accuracy(BertForPreTraining(model.config), tokenizer, held[:100], k=5) < 0.05


def test_compact_vocabulary_keeps_the_softmax_over_the_full_vocabulary_exact():
    rows = [[5, 7, 7, 9], [7, 5, 2]]  # 7 three times, 5 twice, 9 and 2 once
    vocabulary = pretrain._compact_vocabulary(rows, vocab_size=12, min_count=2, always=[2])
    assert vocabulary.kept.tolist() == [2, 5, 7] and vocabulary.shared == 3 and vocabulary.rows == 4
    assert vocabulary.encode(rows) == [[1, 2, 2, 3], [2, 1, 0]]  # 9 (seen once) shares the row of the unseen ids
    compact = torch.randn(4, 3)
    full = pretrain._expand_rows(compact, vocabulary)
    assert full.shape == (12, 3) and torch.equal(full[[2, 5, 7]], compact[:3])
    assert all(torch.equal(full[i], compact[3]) for i in (0, 1, 3, 4, 6, 8, 9, 10, 11))
    hidden = torch.randn(3)
    # log p(real id) under the full softmax == compact log p, less log(#ids sharing the row) for shared ids
    full_log_probs = (full @ hidden).log_softmax(-1)
    compact_log_probs = (compact @ hidden + vocabulary.offset()).log_softmax(-1)
    assert torch.allclose(full_log_probs[[2, 5, 7]], compact_log_probs[:3], atol=1e-5)
    assert torch.allclose(full_log_probs[9], compact_log_probs[3] - math.log(9), atol=1e-5)


def test_bigram_targets_are_the_texts_next_token_distributions():
    bigrams = pretrain._Bigrams([[0, 1, 2], [0, 1, 3], [0, 2], [1, 3]], size=4)
    targets = bigrams.targets(torch.tensor([0, 1, 3, 0]))
    expected = torch.tensor([[0, 2 / 3, 1 / 3, 0], [0, 0, 1 / 3, 2 / 3], [0, 0, 0, 0], [0, 2 / 3, 1 / 3, 0]])
    assert torch.allclose(targets, expected)  # 3 is never followed by anything: an empty row


def test_batches_cover_every_item_once_per_epoch_with_little_padding():
    lengths = [random.Random(i).randrange(3, 40) for i in range(200)]
    batches = pretrain._batches(lengths, batch_size=8, seed=0, pool=5)
    epoch = [next(batches) for _ in range(25)]
    assert sorted(i for batch in epoch for i in batch) == list(range(200))
    padding = sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in epoch)
    assert padding < 0.2 * sum(lengths)  # sorted runs: batches of similar lengths
    again = pretrain._batches(lengths, batch_size=8, seed=0, pool=5)
    assert [next(again) for _ in range(25)] == epoch  # the same order everywhere


def test_sinusoids_are_notebook_02s_position_encoding():
    table = pretrain._sinusoids(50, 8, scale=0.5)
    position, i = 7, 2  # dimensions 2i and 2i + 1
    angle = position / 10000 ** (2 * i / 8)
    assert torch.allclose(table[position, 2 * i], torch.tensor(0.5 * math.sin(angle)))
    assert torch.allclose(table[position, 2 * i + 1], torch.tensor(0.5 * math.cos(angle)))

