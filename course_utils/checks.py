"""Self-checks for exercises: print "correct" or a specific hint, return True/False.

Each check prints one line starting with "✅" or "❌" and returns a bool, so an exercise
cell can show the hint and a solutions notebook can `assert` the result.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .mlm import mask_word as _reference_mask_word


def _report(ok: bool, name: str, message: str) -> bool:
    print(f"{'✅' if ok else '❌'} {name}: {message}")
    return ok


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _tensor_hint(answer: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> str | None:
    """None if answer matches expected, else the most specific hint we can give."""
    if tuple(answer.shape) != tuple(expected.shape):
        hint = f"shape is {tuple(answer.shape)} but should be {tuple(expected.shape)}"
        if tuple(answer.shape) == tuple(reversed(expected.shape)) or (
            answer.dim() >= 2 and tuple(answer.transpose(-2, -1).shape) == tuple(expected.shape)
        ):
            hint += " (it looks transposed: check the order of the matmul operands or use .transpose(-2, -1))"
        elif answer.dim() != expected.dim():
            hint += f" ({answer.dim()}-D instead of {expected.dim()}-D: a missing or extra batch/head dimension?)"
        elif answer.numel() == expected.numel():
            hint += " (same number of elements: a reshape/view in the wrong order?)"
        return hint
    if answer.is_floating_point() != expected.is_floating_point() or (
        (answer.dtype == torch.bool) != (expected.dtype == torch.bool)
    ):
        return f"dtype is {answer.dtype} but should be {expected.dtype}"
    # .cpu() before .double(): MPS has no float64
    answer_f, expected_f = answer.detach().cpu().double(), expected.detach().cpu().double()
    if torch.isnan(answer_f).any() and not torch.isnan(expected_f).any():
        return (
            "contains NaN (exp() overflowed to inf: subtract the row max first? a softmax over a row "
            "where every score is -inf? a division by zero?)"
        )
    if torch.allclose(answer_f, expected_f, atol=atol, rtol=rtol, equal_nan=True):
        return None
    if answer_f.dim() >= 2 and answer_f.shape[-1] == answer_f.shape[-2]:
        if torch.allclose(answer_f.transpose(-2, -1), expected_f, atol=atol, rtol=rtol):
            return "the values are right but transposed (rows and columns swapped)"
    nonzero = expected_f.abs() > 1e-6
    if nonzero.any() and torch.isfinite(answer_f).all():
        ratio = answer_f[nonzero] / expected_f[nonzero]
        factor = ratio.mean().item()
        if abs(factor - 1) > 1e-3 and torch.allclose(ratio, torch.full_like(ratio, factor), rtol=1e-3):
            return (
                f"off by a constant factor of {_fmt(factor)} (a missing or extra scale, "
                "such as 1/sqrt(d_k)?)"
            )
    diff = torch.where(answer_f == expected_f, 0.0, (answer_f - expected_f).abs())  # equal infinities agree
    diff = torch.nan_to_num(diff, nan=float("inf"))
    where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    return (
        f"values differ: largest difference {_fmt(diff.max().item())} at index {where} "
        f"(got {_fmt(answer_f[where].item())}, expected {_fmt(expected_f[where].item())})"
    )


def _cloned(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def check_tensor(
    answer: Any,
    expected: torch.Tensor,
    name: str = "your answer",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Compare a tensor answer with the expected one; hint at shape, transpose, scale, NaN."""
    if answer is None:
        return _report(False, name, "not filled in yet (it is None)")
    if not isinstance(answer, torch.Tensor):
        return _report(False, name, f"expected a torch.Tensor, got {type(answer).__name__}")
    hint = _tensor_hint(answer, expected, atol, rtol)
    return _report(hint is None, name, "correct" if hint is None else hint)


def check_attention_weights(weights: Any, name: str = "attention weights", atol: float = 1e-5) -> bool:
    """Check that weights are a valid attention distribution: each row (query) sums to 1 over the keys."""
    if weights is None:
        return _report(False, name, "not filled in yet (it is None)")
    if not isinstance(weights, torch.Tensor) or weights.dim() < 2:
        return _report(False, name, "expected a tensor of shape (..., queries, keys)")
    w = weights.detach().cpu().double()  # MPS has no float64
    if torch.isnan(w).any():
        return _report(False, name, "contains NaN (is a whole row masked with -inf before the softmax?)")
    if (w < -atol).any():
        return _report(False, name, "has negative entries: apply softmax to the scores, not to something else")
    row_sums = w.sum(dim=-1)
    if torch.allclose(row_sums, torch.ones_like(row_sums), atol=atol):
        return _report(True, name, "correct (every row sums to 1)")
    col_sums = w.sum(dim=-2)
    if torch.allclose(col_sums, torch.ones_like(col_sums), atol=atol):
        return _report(
            False, name,
            "normalised over the wrong axis: the columns sum to 1; use softmax(scores, dim=-1) so "
            "each query's weights over the keys sum to 1",
        )
    return _report(False, name, f"rows should sum to 1 but sum to {_fmt(row_sums.min().item())}..{_fmt(row_sums.max().item())}")


def check_function(
    fn: Callable,
    reference: Callable,
    examples: Sequence[tuple],
    name: str | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Call `fn` and `reference` on each tuple of arguments in `examples` and compare the results."""
    name = name or getattr(fn, "__name__", "your function")
    if fn is None or not callable(fn):
        return _report(False, name, "not a function yet")
    for number, args in enumerate(examples, start=1):
        expected = reference(*_cloned(args))  # before fn, in case fn changes its inputs in place
        try:
            got = fn(*_cloned(args))
        except NotImplementedError:
            return _report(False, name, "not implemented yet (it raises NotImplementedError)")
        except Exception as error:  # show the learner what their code raised
            return _report(False, name, f"raised {type(error).__name__} on example {number}: {error}")
        if got is None:
            return _report(False, name, "returned None: fill in the body of the function")
        if isinstance(expected, torch.Tensor) and not isinstance(got, torch.Tensor):
            return _report(False, name, f"example {number}: expected a torch.Tensor, got {type(got).__name__}")
        if not isinstance(got, torch.Tensor):
            if got == expected:
                continue
            return _report(False, name, f"example {number}: got {got!r}, expected {expected!r}")
        hint = _tensor_hint(got, expected, atol, rtol)
        if hint is not None:
            return _report(False, name, f"example {number}: {hint}")
    return _report(True, name, f"correct on all {len(examples)} examples")


def check_answer(answer: Any, expected: Any, name: str = "your answer", hint: str = "") -> bool:
    """Compare a plain Python answer (a number, a shape tuple, a string) with the expected one."""
    if answer is None:
        return _report(False, name, "not filled in yet (it is None)")
    if isinstance(answer, (torch.Size, list)) and isinstance(expected, tuple):
        answer = tuple(answer)
    if isinstance(expected, float) and isinstance(answer, (int, float)):
        ok = math.isclose(answer, expected, rel_tol=1e-4, abs_tol=1e-8)
    else:
        ok = answer == expected
    if ok:
        return _report(True, name, "correct")
    if isinstance(expected, tuple) and len(expected) == 1 and answer == expected[0]:
        return _report(False, name, f"got {answer!r}, an int: a 1-element tuple is written ({answer},)")
    return _report(False, name, f"got {answer!r}, which is not right" + (f"; hint: {hint}" if hint else ""))


def _normalised(value: Any) -> Any:
    if isinstance(value, (torch.Size, list)):
        return tuple(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 6564.0 and 6564 are the same answer
    if hasattr(value, "__index__") and not isinstance(value, bool):
        return int(value)  # numpy integers
    return value


def answer_digest(value: Any) -> str:
    """SHA-256 of an answer, for check_hidden_answer: lets a notebook check without showing the answer."""
    return hashlib.sha256(repr(_normalised(value)).encode("utf-8")).hexdigest()


def check_hidden_answer(answer: Any, digest: str, name: str = "your answer", hint: str = "") -> bool:
    """Like check_answer, but the expected value is given only as answer_digest(expected)."""
    if answer is None:
        return _report(False, name, "not filled in yet (it is None)")
    if answer_digest(answer) == digest:
        return _report(True, name, "correct")
    return _report(False, name, f"got {answer!r}, which is not right" + (f"; hint: {hint}" if hint else ""))


# (text, word) pairs for check_mask_word: pieces 1, 2 and 4, whole words only, repeats, no match
MASK_WORD_EXAMPLES = [
    ("The film was wonderful.", "film"),
    ("I love NLP.", "NLP"),
    ("Embeddings map tokens to vectors; embeddings are learned.", "embeddings"),
    ("The cat sat on the category list.", "cat"),
    ("A word, then another word.", "word"),
    ("Nothing to hide here.", "missing"),
]


def check_mask_word(fn: Callable, tokenizer: Any, name: str = "mask_word") -> bool:
    """Check a fill-mask helper: each whole-word `word` -> one mask token per WordPiece of it."""
    if fn is None or not callable(fn):
        return _report(False, name, "not a function yet")
    mask = tokenizer.mask_token
    for number, (text, word) in enumerate(MASK_WORD_EXAMPLES, start=1):
        try:
            got = fn(text, word, tokenizer)
        except NotImplementedError:
            return _report(False, name, "not implemented yet (it raises NotImplementedError)")
        except Exception as error:  # show the learner what their code raised
            return _report(False, name, f"raised {type(error).__name__} on example {number}: {error}")
        if not isinstance(got, str):
            return _report(False, name, f"example {number}: expected the masked text (a str), got {type(got).__name__}")
        # compare what BERT reads, so "[MASK][MASK]" and "[MASK] [MASK]" are the same answer
        got_tokens, expected_tokens = tokenizer.tokenize(got), tokenizer.tokenize(_reference_mask_word(text, word, tokenizer))
        if got_tokens == expected_tokens:
            continue
        pieces = tokenizer.tokenize(word)
        whole = rf"(?<!\w){re.escape(word)}(?!\w)"
        if got_tokens == tokenizer.tokenize(re.sub(whole, mask, text)):
            hint = (f"one {mask} per word, but a {mask} stands for one WordPiece: {word!r} is "
                    f"{len(pieces)} pieces {pieces}, so it needs {len(pieces)}")
        elif got_tokens == tokenizer.tokenize(text.replace(word, " ".join([mask] * len(pieces)))):
            hint = (f"{word!r} was also replaced inside a longer word: replace whole words only "
                    "(re.sub with lookarounds or \\b, and re.escape(word))")
        elif got_tokens == tokenizer.tokenize(re.sub(whole, " ".join([mask] * len(word)), text)):
            hint = f"one {mask} per character; it should be one per WordPiece (tokenizer.tokenize(word))"
        elif got_tokens == tokenizer.tokenize(re.sub(whole, " ".join([mask] * len(pieces)), text, count=1)):
            hint = f"only the first {word!r} was replaced; replace every occurrence"
        else:
            hint = f"BERT would read {got_tokens} instead of {expected_tokens}"
        return _report(False, name, f"example {number} ({text!r}, word {word!r}): {hint}")
    return _report(True, name, f"correct on all {len(MASK_WORD_EXAMPLES)} examples")


def _per_sentence_perplexity(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(log_probs * weights).sum(dim=1) / weights.sum(dim=1))


def check_perplexity(
    fn: Callable, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, name: str = "perplexity"
) -> bool:
    """Check a per-sentence perplexity on a right-padded batch; name the usual wrong answers."""
    if fn is None or not callable(fn):
        return _report(False, name, "not a function yet")
    try:
        got = fn(model, input_ids.clone(), attention_mask.clone())
    except NotImplementedError:
        return _report(False, name, "not implemented yet (it raises NotImplementedError)")
    except Exception as error:  # show the learner what their code raised
        return _report(False, name, f"raised {type(error).__name__}: {error}")
    if got is None:
        return _report(False, name, "returned None: fill in the body of the function")
    if not isinstance(got, torch.Tensor):
        return _report(False, name, f"expected a torch.Tensor, got {type(got).__name__}")
    with torch.no_grad():
        # right padding + causal attention: the mask changes no logit of a real position, and without
        # it the padding-included variant below is exactly what labels=input_ids scores
        logits = model(input_ids).logits[:, :-1].float()
    targets = input_ids[:, 1:]
    log_probs = logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).detach().cpu().double()
    real = attention_mask[:, 1:].detach().cpu().double()  # 1 where the next token is a real one
    expected = _per_sentence_perplexity(log_probs, real)
    answer = got.detach().cpu().double()
    if answer.numel() == 1 and expected.numel() > 1:
        return _report(
            False, name,
            "one number for the whole batch. exp(model(ids, labels=ids).loss) is wrong here: the loss is one "
            "average over every position of every sentence, padding included; return one perplexity per "
            f"sentence, shape ({expected.numel()},), averaging only where attention_mask[:, 1:] is 1",
        )
    rtol = 1e-3  # the learner may sum in another order or use cross_entropy
    if answer.shape == expected.shape and not torch.allclose(answer, expected, rtol=rtol):
        with_padding = _per_sentence_perplexity(log_probs, torch.ones_like(real))
        if torch.allclose(answer, with_padding, rtol=rtol):
            return _report(
                False, name,
                "the padding positions are counted as targets (this is what labels=input_ids does on a padded "
                "batch): average only over positions where attention_mask[:, 1:] is 1",
            )
    hint = _tensor_hint(answer, expected, atol=1e-6, rtol=rtol)
    if hint is None:
        return _report(True, name, f"correct ({expected.numel()} sentences)")
    if answer.shape == expected.shape:
        hint += " (the logits at position t predict the token at t + 1: did you shift by one?)"
    return _report(False, name, hint)


def check_position_shift(fn: Callable, name: str = "shift_encoding") -> bool:
    """Exercise: fn(pe_rows, k) must turn sinusoidal encodings PE[p] into PE[p + k] without knowing p."""
    from .positional import sinusoidal_encoding  # here, not at the top: checks stays importable on its own

    if fn is None or not callable(fn):
        return _report(False, name, "not a function yet")
    examples = [(16, (0, 3, 17), 1), (16, (2, 9, 30), 5), (32, (4, 40, 7), 13), (32, (20, 33), -6)]
    for number, (d_model, positions, k) in enumerate(examples, start=1):
        table = sinusoidal_encoding(64, d_model).double()
        rows, expected = table[list(positions)], table[[p + k for p in positions]]
        try:
            got = fn(rows.clone(), k)
        except NotImplementedError:
            return _report(False, name, "not implemented yet (it raises NotImplementedError)")
        except Exception as error:  # show the learner what their code raised
            return _report(False, name, f"raised {type(error).__name__} on example {number}: {error}")
        if got is None:
            return _report(False, name, "returned None: fill in the body of the function")
        if not isinstance(got, torch.Tensor):
            return _report(False, name, f"example {number}: expected a torch.Tensor, got {type(got).__name__}")
        got_d = got.detach().cpu().double()
        if got_d.shape == expected.shape and torch.allclose(got_d, expected, atol=1e-5):
            continue
        where = f"example {number} (d_model={d_model}, k={k})"
        if got_d.shape == expected.shape:
            omega = 1.0 / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            back_angles = torch.tensor([p - k for p in positions], dtype=torch.float64)[:, None] * omega
            backwards = torch.stack([back_angles.sin(), back_angles.cos()], dim=-1).flatten(-2)  # PE[p - k]
            if torch.allclose(got_d, backwards, atol=1e-5):
                return _report(False, name, f"{where}: you rotated the wrong way, this is PE[p - k]; "
                                            "check the signs of the sin terms")
            if torch.allclose(got_d, rows + table[abs(k)], atol=1e-5):
                return _report(False, name, f"{where}: adding PE[k] is not a shift; sin(a + b) is not "
                                            "sin(a) + sin(b): rotate each (sin, cos) pair instead")
        hint = _tensor_hint(got_d, expected, atol=1e-5, rtol=0.0)
        return _report(False, name, f"{where}: {hint} (each pair 2i, 2i+1 turns by its own angle "
                                    "k / 10000^(2i/d_model))")
    return _report(True, name, f"correct on all {len(examples)} examples")


def check_left_padding_attention(fn: Callable, name: str = "left_padded_attention") -> bool:
    """Exercise: fn(q, k, v, attention_mask) on a LEFT-padded batch; real tokens right, no NaN anywhere."""
    from .masks import causal_mask, masked_softmax, padding_mask

    if fn is None or not callable(fn):
        return _report(False, name, "not a function yet")
    generator = torch.Generator().manual_seed(0)
    attention_mask = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    q, k, v = torch.randn(3, 3, 6, 4, generator=generator).unbind(0)  # (batch, seq, d) each
    allowed = causal_mask(6)[None] & padding_mask(attention_mask)[:, None, :]  # (batch, seq, seq)
    expected = masked_softmax(q @ k.transpose(-2, -1) / 2.0, allowed) @ v  # 2.0 = sqrt(d)
    try:
        got = fn(q.clone(), k.clone(), v.clone(), attention_mask.clone())
    except NotImplementedError:
        return _report(False, name, "not implemented yet (it raises NotImplementedError)")
    except Exception as error:  # show the learner what their code raised
        return _report(False, name, f"raised {type(error).__name__}: {error}")
    if isinstance(got, tuple) and got:
        got = got[0]  # (output, weights) is fine too
    if got is None:
        return _report(False, name, "returned None: fill in the body of the function")
    if not isinstance(got, torch.Tensor):
        return _report(False, name, f"expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        return _report(False, name, f"shape is {tuple(got.shape)} but should be {tuple(expected.shape)}")
    got = got.detach().cpu().double()
    if torch.isnan(got).any():
        return _report(False, name, "contains NaN: the padding queries at the start may attend to nothing, and a "
                                    "softmax over a row of -inf is 0/0; give such rows zero weights (masked_softmax) "
                                    "or use a large finite negative number instead of -inf")
    real = attention_mask.bool()  # only the real queries' outputs matter; padding rows may be 0 or uniform
    if torch.allclose(got[real], expected.double()[real], atol=1e-5):
        return _report(True, name, "correct: real tokens attend to earlier real tokens only, and no NaN")
    lengths = attention_mask.sum(dim=-1)
    right = causal_mask(6)[None] & padding_mask(lengths, max_len=6)[:, None, :]
    as_if_right = masked_softmax(q @ k.transpose(-2, -1) / 2.0, right) @ v
    causal_only = masked_softmax(q @ k.transpose(-2, -1) / 2.0, causal_mask(6)) @ v
    padding_only = masked_softmax(q @ k.transpose(-2, -1) / 2.0, padding_mask(attention_mask)[:, None, :]) @ v
    if torch.allclose(got[real], as_if_right.double()[real], atol=1e-5):
        hint = ("your padding mask assumes right padding (built from the lengths?): here the padding is on the "
                "LEFT; build it from attention_mask itself")
    elif torch.allclose(got[real], causal_only.double()[real], atol=1e-5):
        hint = "the real tokens still attend to the padding keys: combine the causal mask with the padding mask"
    elif torch.allclose(got[real], padding_only.double()[real], atol=1e-5):
        hint = "the real tokens see the future: combine the padding mask with the causal mask"
    else:
        hint = _tensor_hint(got[real], expected.double()[real], atol=1e-5, rtol=1e-4) or "values differ"
        hint = f"outputs of the real tokens: {hint} (scaled by 1/sqrt(d_k)?)"
    return _report(False, name, hint)
