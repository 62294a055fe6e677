"""Scaled dot-product attention, written out the way notebook 01 derives it."""

from __future__ import annotations

import math

import torch


def attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention; returns (output, weights).

    queries: (..., n_queries, d_k), keys: (..., n_keys, d_k), values: (..., n_keys, d_v).
    mask: broadcastable to (..., n_queries, n_keys); True (or 1) where a query MAY attend.
    Same result as torch.nn.functional.scaled_dot_product_attention with a boolean mask,
    but the weights are returned too, so they can be inspected and plotted.
    """
    d_k = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(d_k)  # (..., n_queries, n_keys)
    if mask is not None:
        scores = scores.masked_fill(~mask.bool(), float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # each query's weights over the keys sum to 1
    return weights @ values, weights  # (..., n_queries, d_v), (..., n_queries, n_keys)
