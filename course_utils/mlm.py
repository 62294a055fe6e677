"""Reference versions of the BERT/BART pretraining data recipes (and the fill-mask helper) of notebook 04.

The notebook builds each of these step by step; the self-checks compare the learner's
version with the one here. Nothing in this module loads a model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

import torch

IGNORE_INDEX = -100  # labels with this value are skipped by torch's cross-entropy loss


def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's MLM corruption: returns (corrupted input_ids, labels with -100 where not selected).

    Each non-special token is selected with probability `mlm_probability`; a selected
    token becomes [MASK] with probability `mask_replace_prob`, a random vocabulary id with
    probability `random_replace_prob`, and stays unchanged otherwise.
    """
    if mask_replace_prob + random_replace_prob > 1:
        raise ValueError("mask_replace_prob + random_replace_prob must not exceed 1.")
    shape, device = input_ids.shape, input_ids.device
    # Draw on the CPU with the (CPU) generator, so results do not depend on the device.
    selected = (torch.rand(shape, generator=generator) < mlm_probability).to(device)
    selected &= ~special_tokens_mask.bool().to(device)
    # One uniform number per token, cut into three intervals [0, .8) [.8, .9) [.9, 1).
    decide = torch.rand(shape, generator=generator).to(device)
    to_mask = selected & (decide < mask_replace_prob)
    to_random = selected & (decide >= mask_replace_prob) & (decide < mask_replace_prob + random_replace_prob)
    random_ids = torch.randint(vocab_size, shape, generator=generator).to(device)

    corrupted = input_ids.clone()
    corrupted[to_mask] = mask_token_id
    corrupted[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return corrupted, labels


def count_outcomes(
    original_ids: torch.Tensor, corrupted_ids: torch.Tensor, labels: torch.Tensor, mask_token_id: int
) -> dict[str, int]:
    """Count the selected tokens (label != -100) and how each was corrupted: masked, random, unchanged."""
    selected = labels != IGNORE_INDEX
    masked = selected & (corrupted_ids == mask_token_id)
    unchanged = selected & (corrupted_ids == original_ids)
    random_ = selected & ~masked & ~unchanged
    return {
        "selected": int(selected.sum()),
        "masked": int(masked.sum()),
        "random": int(random_.sum()),
        "unchanged": int(unchanged.sum()),
    }


def join_wordpieces(tokens: Sequence[str]) -> list[str]:
    """Glue WordPiece continuation pieces ("##...") onto the piece before them: ["nl", "##p"] -> ["nlp"]."""
    words: list[str] = []
    for token in tokens:
        if token.startswith("##") and words:
            words[-1] += token[2:]
        else:
            words.append(token)
    return words


def mask_word(text: str, word: str, tokenizer: Any) -> str:
    """Replace each whole-word `word` in `text` by one mask token per WordPiece of it, for fill-mask."""
    pieces = len(tokenizer.tokenize(word))
    masks = " ".join([tokenizer.mask_token] * pieces)
    # lookarounds instead of \b, so that a word that starts or ends with punctuation works too
    return re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", masks, text)


def segment_ids(input_ids: torch.Tensor, sep_token_id: int) -> torch.Tensor:
    """token_type_ids of a padded [CLS] A [SEP] B [SEP] batch, as the tokenizer gives them: 1 for B and its [SEP], else 0."""
    is_sep = (input_ids == sep_token_id).long()
    seps_before = is_sep.cumsum(dim=-1) - is_sep  # [SEP]s strictly before each position
    # 0 before: [CLS], A and the first [SEP]; 1 before: B and the second [SEP]; 2 before: padding
    return (seps_before == 1).long()


def nsp_pairs(documents: Sequence[Sequence[str]], seed: int = 0) -> list[tuple[str, str, int]]:
    """Next-sentence-prediction pairs (A, B, label) with BERT's labels: 0 = IsNext, 1 = NotNext.

    For each sentence A that has a successor in its document, B is that successor half of
    the time (IsNext) and otherwise a random sentence from a different document (NotNext).
    """
    if len(documents) < 2:
        raise ValueError("nsp_pairs needs at least two documents to draw NotNext sentences from.")
    rng = random.Random(seed)
    pairs: list[tuple[str, str, int]] = []
    for d, document in enumerate(documents):
        others = [s for e, other in enumerate(documents) if e != d for s in other]
        for a, following in zip(document, document[1:]):
            if rng.random() < 0.5:
                pairs.append((a, following, 0))
            else:
                pairs.append((a, rng.choice(others), 1))
    return pairs


def infill_spans(ids: Sequence[int], spans: Sequence[tuple[int, int]], mask_token_id: int) -> list[int]:
    """BART text infilling: replace each (start, length) span of `ids` by ONE mask id.

    A span of length 0 inserts a mask before position `start`. Spans must not overlap.
    """
    result: list[int] = []
    position = 0
    for start, length in sorted(spans):
        if start < position or length < 0 or start + length > len(ids):
            raise ValueError(f"span {(start, length)} overlaps another span or leaves the sequence.")
        result.extend(ids[position:start])
        result.append(mask_token_id)
        position = start + length
    result.extend(ids[position:])
    return result
