"""Attention masks for notebook 02 and later: causal, padding, and their combination.

Convention (the same as course_utils.attention and torch's boolean `attn_mask`):
a mask is a boolean tensor, True where a query MAY attend to a key.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(size, size) boolean mask, True on and below the diagonal: query i may attend to keys 0..i."""
    if size < 1:
        raise ValueError(f"causal_mask needs a sequence length of at least 1, got {size}.")
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def padding_mask(
    lengths_or_attention_mask: torch.Tensor | Sequence[int],
    max_len: int | None = None,
) -> torch.Tensor:
    """(batch, max_len) boolean key mask, True at real tokens and False at padding.

    Accepts either the true lengths of the sequences (1-D, e.g. [3, 5]; padding is on the
    right) or a tokenizer's 0/1 `attention_mask` (2-D, padding may be on either side).
    Index it as mask[:, None, :] to broadcast over the queries of (batch, queries, keys) scores.
    """
    values = torch.as_tensor(lengths_or_attention_mask)
    if values.dim() == 2:
        if max_len is not None and max_len != values.shape[1]:
            raise ValueError(f"max_len={max_len} does not match the attention_mask width {values.shape[1]}.")
        return values.bool()
    if values.dim() != 1:
        raise ValueError(
            "padding_mask expects 1-D lengths or a 2-D (batch, seq_len) attention_mask, "
            f"got shape {tuple(values.shape)}."
        )
    longest = int(values.max()) if values.numel() else 0
    max_len = longest if max_len is None else max_len
    if longest > max_len:
        raise ValueError(f"a sequence of length {longest} does not fit in max_len={max_len}.")
    positions = torch.arange(max_len, device=values.device)  # (max_len,)
    return positions[None, :] < values[:, None]  # (batch, max_len)


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of broadcastable boolean masks (None entries are skipped; all None gives None)."""
    combined = None
    for mask in masks:
        if mask is None:
            continue
        mask = mask.bool()
        combined = mask if combined is None else combined & mask
    return combined


def decoder_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, 1, seq, seq) mask for decoder self-attention: causal AND not padding (broadcasts over heads)."""
    keys = padding_mask(attention_mask)  # (batch, seq)
    causal = causal_mask(keys.shape[1], device=keys.device)  # (seq, seq)
    return combine_masks(causal[None, None, :, :], keys[:, None, None, :])


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Softmax over `dim` that ignores masked (False) scores; a fully masked row gives zeros, not NaN."""
    if mask is None:
        return torch.softmax(scores, dim=dim)
    mask = mask.bool()
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=dim)
    # A row with no allowed key is softmax(-inf, ..., -inf) = 0/0 = NaN; every entry of such a
    # row is masked, so zeroing the masked entries turns it into zeros (other rows are unchanged).
    return weights.masked_fill(~mask, 0.0)
