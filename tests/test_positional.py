import math

import pytest
import torch

from course_utils import alibi_bias, alibi_slopes, apply_rotary, rotary_cos_sin, rotate_half, sinusoidal_encoding


def test_sinusoidal_values_follow_the_formula():
    pe = sinusoidal_encoding(10, 6)
    assert pe.shape == (10, 6) and pe.dtype == torch.float32
    pos, i = 7, 1
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 6)), abs_tol=1e-6)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 6)), abs_tol=1e-6)
    assert torch.equal(pe[0, 0::2], torch.zeros(3)) and torch.equal(pe[0, 1::2], torch.ones(3))


def test_sinusoidal_odd_width_and_bad_sizes():
    assert sinusoidal_encoding(4, 5).shape == (4, 5)
    odd = sinusoidal_encoding(4, 5)
    assert math.isclose(odd[3, 4].item(), math.sin(3 / 10000 ** (4 / 5)), abs_tol=1e-6)
    assert math.isclose(odd[3, 3].item(), math.cos(3 / 10000 ** (2 / 5)), abs_tol=1e-6)
    with pytest.raises(ValueError):
        sinusoidal_encoding(0, 4)


def test_rotate_half_is_a_quarter_turn():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rotate_half(x).tolist() == [-3.0, -4.0, 1.0, 2.0]
    assert torch.equal(rotate_half(rotate_half(x)), -x)


def test_rotary_keeps_norm_and_position_zero_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    rotated = apply_rotary(x)
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.allclose(rotated[:, 0], x[:, 0])
    assert not torch.allclose(rotated[:, 1], x[:, 1])


def test_rotary_score_depends_only_on_offset():
    torch.manual_seed(0)
    q, k = torch.randn(2, 1, 16).unbind(0)
    def score(m, n):
        return (apply_rotary(q, torch.tensor([m])) @ apply_rotary(k, torch.tensor([n])).T).item()
    assert math.isclose(score(3, 1), score(10, 8), rel_tol=1e-4, abs_tol=1e-5)
    assert math.isclose(score(0, 5), score(20, 25), rel_tol=1e-4, abs_tol=1e-5)
    assert not math.isclose(score(3, 1), score(3, 2), rel_tol=1e-3)


def test_rotary_matches_explicit_2d_rotation():
    cos, sin = rotary_cos_sin(4, 2)
    x = torch.tensor([[1.0, 0.0]] * 4)
    rotated = apply_rotary(x)
    for pos in range(4):
        assert torch.allclose(rotated[pos], torch.tensor([math.cos(pos), math.sin(pos)]), atol=1e-6)
    assert cos.shape == sin.shape == (4, 2)
    with pytest.raises(ValueError):
        rotary_cos_sin(4, 3)
    with pytest.raises(ValueError):
        apply_rotary(x, torch.arange(3))


def test_alibi_slopes_match_the_paper():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    assert torch.allclose(alibi_slopes(4), torch.tensor([2.0 ** -(2 * (i + 1)) for i in range(4)]))
    six = alibi_slopes(6)
    assert six.shape == (6,) and torch.allclose(six[:4], alibi_slopes(4))
    assert torch.allclose(six[4:], alibi_slopes(8)[0::2][:2])


def test_alibi_bias_is_relative_and_penalises_distance():
    bias = alibi_bias(2, 5)
    assert bias.shape == (2, 5, 5)
    diagonal = bias.diagonal(dim1=-2, dim2=-1)
    assert torch.equal(diagonal, torch.zeros(2, 5)) and not torch.signbit(diagonal).any()  # 0.0, not -0.0
    assert (bias <= 0).all() and bias[1, 0, 4] < bias[1, 0, 3]
    assert bias[0, 4, 1] == bias[0, 3, 0] == -3 * alibi_slopes(2)[0]
    assert alibi_bias(1, 2, 4).shape == (1, 2, 4)
