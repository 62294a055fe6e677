import pytest
import torch
import torch.nn.functional as F

import course_utils


@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 8), (2, 3, 5, 8)])
def test_matches_torch_without_mask(shape):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, *shape).unbind(0)
    out, weights = course_utils.attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert weights.shape == (*shape[:-1], shape[-2])
    assert torch.allclose(weights.sum(-1), torch.ones(shape[:-1]))


def test_boolean_mask_blocks_positions():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 2, 4, 6).unbind(0)
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    out, weights = course_utils.attention(q, k, v, mask)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    assert (weights.triu(1) == 0).all()


def test_cross_attention_shapes_and_value_dim():
    q = torch.randn(3, 8)
    k = torch.randn(7, 8)
    v = torch.randn(7, 5)
    out, weights = course_utils.attention(q, k, v)
    assert out.shape == (3, 5) and weights.shape == (3, 7)
