import pytest
import torch
import torch.nn.functional as F

import course_utils
from course_utils import causal_mask, combine_masks, decoder_mask, masked_softmax, padding_mask


def test_causal_mask_is_lower_triangular_bool():
    mask = causal_mask(4)
    assert mask.dtype == torch.bool and mask.shape == (4, 4)
    for i in range(4):
        for j in range(4):
            assert bool(mask[i, j]) == (j <= i)


def test_causal_mask_rejects_empty():
    with pytest.raises(ValueError):
        causal_mask(0)


def test_causal_mask_matches_sdpa_is_causal():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8).unbind(0)
    out, weights = course_utils.attention(q, k, v, causal_mask(5))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(weights[0].triu(1), torch.zeros(5, 5))


def test_padding_mask_from_lengths():
    mask = padding_mask([2, 4])
    assert mask.tolist() == [[True, True, False, False], [True, True, True, True]]
    assert padding_mask(torch.tensor([1]), max_len=3).tolist() == [[True, False, False]]
    with pytest.raises(ValueError):
        padding_mask([5], max_len=3)


def test_padding_mask_from_attention_mask_keeps_left_padding():
    attention_mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert padding_mask(attention_mask).tolist() == [[False, True, True], [True, True, True]]
    with pytest.raises(ValueError):
        padding_mask(torch.zeros(1, 2, 3))


def test_combine_masks_is_broadcast_and_skips_none():
    causal = causal_mask(3)
    keys = padding_mask([2, 3])
    combined = combine_masks(causal, None, keys[:, None, :])
    assert combined.shape == (2, 3, 3)
    assert combined[0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert torch.equal(combined[1], causal)
    assert combine_masks(None, None) is None


def test_decoder_mask_shape_and_content():
    mask = decoder_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert mask.shape == (2, 1, 3, 3)
    assert mask[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert torch.equal(mask[1, 0], causal_mask(3))


def test_masked_softmax_zero_rows_instead_of_nan():
    scores = torch.randn(3, 3)
    mask = torch.tensor([[False, False, False], [True, True, False], [True, True, True]])
    weights = masked_softmax(scores, mask)
    assert not torch.isnan(weights).any()
    assert weights[0].tolist() == [0.0, 0.0, 0.0]
    assert torch.allclose(weights[1:].sum(-1), torch.ones(2))
    assert weights[1, 2] == 0
    reference = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    assert torch.isnan(reference[0]).all()  # the plain softmax gives NaN there
    assert torch.allclose(weights[1:], reference[1:])


def test_masked_softmax_without_mask_is_softmax():
    scores = torch.randn(2, 4)
    assert torch.allclose(masked_softmax(scores), torch.softmax(scores, -1))


def test_masked_softmax_matches_sdpa_on_fully_masked_rows():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 1, 3, 4).unbind(0)
    mask = torch.tensor([[False, False, False], [True, False, False], [True, True, True]])
    weights = masked_softmax(q @ k.transpose(-2, -1) / 2.0, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(weights @ v, expected, atol=1e-6)
