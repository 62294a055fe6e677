import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from course_utils import diagrams


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> str:
    return " | ".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])


def test_qkv_flow_names_every_tensor_with_its_shape():
    text = _texts(diagrams.draw_qkv_flow())
    for part in ("X\n(T, d_model)", "Q\n(T, d_k)", "K\n(T, d_k)", "V\n(T, d_v)", "causal mask", "Z = A V"):
        assert part in text
    assert "causal mask" not in _texts(diagrams.draw_qkv_flow(causal=False))


def test_head_split_draws_one_coloured_grid_per_head():
    fig = diagrams.draw_head_split(seq_len=3, d_model=6, num_heads=3)
    text = _texts(fig)
    assert all(f"head {h}" in text for h in range(3)) and "head 3" not in text
    assert "(heads=3, seq, head_dim=2)" in text
    cells = [p for p in fig.axes[0].patches if type(p).__name__ == "Rectangle"]
    assert len(cells) == 3 * 6 + 3 * (3 * 2) + 3 * 6  # input grid, one grid per head, merged grid
    with pytest.raises(ValueError, match="divisible"):
        diagrams.draw_head_split(d_model=7, num_heads=2)


@pytest.mark.parametrize("cross_attention", [True, False])
@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_has_the_right_sublayers(cross_attention, norm_first):
    text = _texts(diagrams.draw_decoder_block(cross_attention=cross_attention, norm_first=norm_first))
    assert "masked multi-head\nself-attention" in text and "feed-forward" in text
    assert ("cross-attention" in text) == cross_attention and ("encoder output" in text) == cross_attention
    assert ("final LayerNorm" in text) == norm_first
    assert text.count("+") >= (3 if cross_attention else 2)  # one residual sum per sub-layer
    assert ("pre-LN" if norm_first else "post-LN") in text
