import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import course_utils


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _images(fig: Figure):
    return [ax for ax in fig.axes if ax.images]


def test_single_map_has_labels_on_both_axes_and_a_colour_bar():
    tokens = ["the", "cat", "sat"]
    fig = course_utils.plot_attention(torch.softmax(torch.randn(3, 3), -1), tokens)
    assert isinstance(fig, Figure)
    (ax,) = _images(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    assert len(fig.axes) == 2  # the heatmap and its colour bar


def test_grid_of_heads_has_one_panel_per_head():
    weights = torch.softmax(torch.randn(6, 4, 5), -1)
    fig = course_utils.plot_attention(weights, list("abcde"), list("wxyz"), ncols=4)
    panels = _images(fig)
    assert len(panels) == 6
    assert [p.get_title() for p in panels] == [f"head {i}" for i in range(6)]
    assert len(fig.axes) == 2 * 4 + 1  # 2x4 grid (2 unused, hidden) + colour bar
    assert panels[0].images[0].get_array().shape == (4, 5)


def test_custom_titles_and_non_square_maps():
    fig = course_utils.plot_attention(torch.rand(2, 2, 3), ["k1", "k2", "k3"], ["q1", "q2"], titles=["A", "B"])
    assert [p.get_title() for p in _images(fig)] == ["A", "B"]


@pytest.mark.parametrize(("weights", "labels", "message"), [
    (torch.rand(3, 3), ["a", "b"], "x_labels"),
    (torch.rand(1, 2, 3, 3), None, "select one batch element"),
])
def test_bad_input_is_a_clear_error(weights, labels, message):
    with pytest.raises(ValueError, match=message):
        course_utils.plot_attention(weights, labels)


def test_plot_lines_draws_each_series():
    fig = course_utils.plot_lines({"train": [3, 2, 1], "valid": torch.tensor([3.0, 2.5, 2.0])},
                                  xlabel="epoch", ylabel="loss")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["train", "valid"]
    assert ax.get_xlabel() == "epoch" and ax.get_legend() is not None


def test_plot_matrix_annotates_values():
    fig = course_utils.plot_matrix(torch.tensor([[5, 1], [2, 7]]), annotate=True, x_labels=["neg", "pos"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "5", "7"]
    with pytest.raises(ValueError, match="2-D"):
        course_utils.plot_matrix(torch.rand(2, 2, 2))
