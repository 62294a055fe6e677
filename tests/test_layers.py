import pytest
import torch
from torch import nn

import course_utils
from course_utils import MultiHeadAttention, causal_mask, merge_heads, split_heads


def test_split_heads_shapes_and_content():
    x = torch.arange(2 * 3 * 8).float().view(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])  # head 2 of token 0 holds features 4..5
    assert torch.equal(merge_heads(heads), x)
    with pytest.raises(ValueError):
        split_heads(x, 3)


def _pair(bias=True, seed=0):
    torch.manual_seed(seed)
    torch_mha = nn.MultiheadAttention(8, 2, batch_first=True, bias=bias).eval()
    ours = MultiHeadAttention(8, 2, bias=bias).load_torch_weights(torch_mha).eval()
    return torch_mha, ours


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_multihead_attention(bias):
    torch_mha, ours = _pair(bias)
    x = torch.randn(3, 5, 8)
    expected, expected_weights = torch_mha(x, x, x, need_weights=True, average_attn_weights=False)
    got, weights = ours(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)


def test_matches_torch_with_causal_mask_and_cross_attention():
    torch_mha, ours = _pair()
    x, memory = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    mask = causal_mask(4)
    expected, _ = torch_mha(x, x, x, attn_mask=~mask)  # torch's boolean attn_mask: True = NOT allowed
    assert torch.allclose(ours(x, mask=mask)[0], expected, atol=1e-5)
    expected, expected_weights = torch_mha(x, memory, memory, average_attn_weights=False)
    got, weights = ours(x, memory)
    assert weights.shape == (2, 2, 4, 6)
    assert torch.allclose(got, expected, atol=1e-5)


def test_fully_masked_query_gives_zeros_not_nan():
    _, ours = _pair()
    x = torch.randn(1, 3, 8)
    mask = course_utils.decoder_mask(torch.tensor([[0, 1, 1]]))  # left padding: query 0 sees nothing
    out, weights = ours(x, mask=mask)
    assert not torch.isnan(out).any()
    assert torch.equal(weights[0, :, 0], torch.zeros(2, 3))


def test_load_rejects_other_sizes():
    with pytest.raises(ValueError):
        MultiHeadAttention(8, 4).load_torch_weights(nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError):
        MultiHeadAttention(8, 2, bias=False).load_torch_weights(nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError):
        MultiHeadAttention(6, 4)
