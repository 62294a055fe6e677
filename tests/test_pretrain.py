"""The pretrained stand-ins: held-out split, pinned threads, deterministic builds, measured quality."""

import dataclasses
import json
import os
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


@pytest.mark.xfail(strict=True, reason="issue 10 target not met yet: the 300-step recipe stops at the "
                   "unigram plateau (held-out perplexity ~1,400); the recipe needs tuning")
def test_gpt2_standin_has_learned_english():
    from transformers import AutoTokenizer, GPT2LMHeadModel

    folder = checkpoints.standin_dir("gpt2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = GPT2LMHeadModel.from_pretrained(folder)
    held = pretrain.heldout_sentences("movie")[:300]
    learned = pretrain.perplexity(model, tokenizer, held)
    assert learned < 1000  # an untrained model: ~50,000 (uniform over 50,257 tokens)
    torch.manual_seed(0)
    untrained = pretrain.perplexity(GPT2LMHeadModel(model.config), tokenizer, held[:50])
    assert untrained > 20 * learned


@pytest.mark.xfail(strict=True, reason="issue 10 target not met yet: the 300-step recipe predicts the "
                   "unigram top 5 (20% held-out top-5); the recipe needs tuning")
def test_bert_standin_has_learned_masked_words():
    from transformers import AutoTokenizer, BertForPreTraining

    folder = checkpoints.standin_dir("bert-base-uncased")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForPreTraining.from_pretrained(folder)
    held = pretrain.heldout_sentences("movie")[:300]
    assert pretrain.masked_word_accuracy(model, tokenizer, held, k=5) >= 0.25
    torch.manual_seed(0)
    assert pretrain.masked_word_accuracy(BertForPreTraining(model.config), tokenizer, held[:100], k=5) < 0.05
