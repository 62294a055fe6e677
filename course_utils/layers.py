"""Multi-head attention from scratch, as notebook 02 builds it step by step."""

from __future__ import annotations

import math

import torch
from torch import nn

from .masks import masked_softmax


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, seq, d_model) -> (batch, num_heads, seq, d_model // num_heads)."""
    batch, seq_len, d_model = x.shape
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}.")
    # view: cut each token's d_model features into num_heads chunks; transpose: heads before seq
    return x.view(batch, seq_len, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, num_heads, seq, head_dim) -> (batch, seq, num_heads * head_dim), the inverse of split_heads."""
    batch, num_heads, seq_len, head_dim = x.shape
    # transpose back, then .reshape (not .view): the transposed tensor is no longer contiguous
    return x.transpose(1, 2).reshape(batch, seq_len, num_heads * head_dim)


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, split into heads, attend per head, merge, project.

    forward(query, key=None, value=None, mask=None) returns (output, weights) with
    output (batch, n_queries, d_model) and per-head weights (batch, num_heads, n_queries, n_keys).
    key/value default to query (self-attention); pass the encoder output for cross-attention.
    mask: boolean, True = may attend, broadcastable to (batch, num_heads, n_queries, n_keys),
    e.g. (n_queries, n_keys) or (batch, 1, n_queries, n_keys). A query with no allowed key gets
    all-zero weights (course_utils.masked_softmax), not NaN.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}.")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(d_model, d_model, bias=bias)
        self.W_v = nn.Linear(d_model, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from `query` (batch, n_q, d_model) to `key`/`value` (batch, n_k, d_model)."""
        key = query if key is None else key
        value = key if value is None else value
        q = split_heads(self.W_q(query), self.num_heads)  # (batch, heads, n_q, head_dim)
        k = split_heads(self.W_k(key), self.num_heads)  # (batch, heads, n_k, head_dim)
        v = split_heads(self.W_v(value), self.num_heads)  # (batch, heads, n_k, head_dim)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (batch, heads, n_q, n_k)
        weights = masked_softmax(scores, mask)  # (batch, heads, n_q, n_k)
        heads = weights @ v  # (batch, heads, n_q, head_dim)
        return self.W_o(merge_heads(heads)), weights  # (batch, n_q, d_model)

    @torch.no_grad()
    def load_torch_weights(self, torch_mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a torch.nn.MultiheadAttention of the same size into this module."""
        if torch_mha.embed_dim != self.d_model or torch_mha.num_heads != self.num_heads:
            raise ValueError(
                f"size mismatch: nn.MultiheadAttention has embed_dim={torch_mha.embed_dim}, "
                f"num_heads={torch_mha.num_heads}; this module has d_model={self.d_model}, "
                f"num_heads={self.num_heads}."
            )
        if torch_mha.in_proj_weight is None:
            raise ValueError("nn.MultiheadAttention with kdim/vdim != embed_dim is not supported.")
        if (torch_mha.in_proj_bias is None) != (self.W_q.bias is None):
            raise ValueError("bias mismatch: create both modules with the same bias setting.")
        # nn.MultiheadAttention stacks W_q, W_k, W_v into one (3 * d_model, d_model) matrix
        for linear, weight in zip((self.W_q, self.W_k, self.W_v), torch_mha.in_proj_weight.chunk(3)):
            linear.weight.copy_(weight)
        self.W_o.weight.copy_(torch_mha.out_proj.weight)
        if self.W_q.bias is not None:
            for linear, bias in zip((self.W_q, self.W_k, self.W_v), torch_mha.in_proj_bias.chunk(3)):
                linear.bias.copy_(bias)
            self.W_o.bias.copy_(torch_mha.out_proj.bias)
        return self
