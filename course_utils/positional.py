"""Positional encodings: sinusoidal (absolute), rotary and ALiBi (relative)."""

from __future__ import annotations

import math

import torch


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(n_positions, d_model) sinusoidal encoding of "Attention Is All You Need".

    PE[pos, 2i] = sin(pos / base^(2i/d_model)), PE[pos, 2i+1] = cos(pos / base^(2i/d_model)).
    """
    if n_positions < 1 or d_model < 1:
        raise ValueError(f"need n_positions >= 1 and d_model >= 1, got {n_positions} and {d_model}.")
    positions = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (n_positions, 1)
    even = torch.arange(0, d_model, 2, dtype=torch.float64)  # the 2i of each sin/cos pair
    angles = positions / base ** (even / d_model)  # (n_positions, ceil(d_model / 2))
    encoding = torch.zeros(n_positions, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encoding.float()


def rotary_cos_sin(
    n_positions: int,
    head_dim: int,
    base: float = 10000.0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (n_positions, head_dim), for rotary embeddings (rotate-half layout)."""
    if head_dim % 2:
        raise ValueError(f"rotary embeddings rotate pairs of features, so head_dim must be even, got {head_dim}.")
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (head_dim/2,)
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * inv_freq[None, :]  # (n, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (n, head_dim): feature j and j + head_dim/2 share an angle
    return angles.cos().float().to(device), angles.sin().float().to(device)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Split the last dimension into halves (a, b) and return (-b, a): a 90-degree turn of each pair."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary(
    x: torch.Tensor,
    positions: torch.Tensor | None = None,
    base: float = 10000.0,
) -> torch.Tensor:
    """Rotate queries or keys x of shape (..., seq, head_dim) by their positions (default 0..seq-1).

    Uses the rotate-half layout of GPT-NeoX and Llama: feature j is paired with j + head_dim/2.
    """
    seq_len, head_dim = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(seq_len, device=x.device)
    positions = torch.as_tensor(positions, device=x.device)
    if positions.shape[-1] != seq_len:
        raise ValueError(f"{positions.shape[-1]} positions given for a sequence of length {seq_len}.")
    n_positions = int(positions.max()) + 1 if positions.numel() else 1
    cos, sin = rotary_cos_sin(n_positions, head_dim, base, device=x.device)
    cos, sin = cos[positions].to(x.dtype), sin[positions].to(x.dtype)  # (seq, head_dim) each
    return x * cos + rotate_half(x) * sin


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """(num_heads,) ALiBi slopes: the geometric sequence 2^(-8/n), 2^(-16/n), ... of the paper."""
    if num_heads < 1:
        raise ValueError(f"need at least one head, got {num_heads}.")

    def power_of_two_slopes(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = power_of_two_slopes(closest)
    if closest < num_heads:  # the paper's recipe for a head count that is not a power of 2
        slopes += power_of_two_slopes(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes)


def alibi_bias(num_heads: int, n_queries: int, n_keys: int | None = None) -> torch.Tensor:
    """(num_heads, n_queries, n_keys) ALiBi bias -slope * |i - j|, added to the scores before the softmax."""
    n_keys = n_queries if n_keys is None else n_keys
    distance = (torch.arange(n_queries)[:, None] - torch.arange(n_keys)[None, :]).abs()  # (q, k)
    # negate the integer distance, not the product, so the diagonal is 0.0 and not -0.0
    return alibi_slopes(num_heads)[:, None, None] * (-distance)[None].float()
