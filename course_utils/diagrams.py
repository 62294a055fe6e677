"""Block diagrams drawn with matplotlib, so they stay editable code: Q/K/V flow, heads, decoder block."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

# one colour per role, the same in every diagram
COLOURS = {
    "input": "#e8e8e8",
    "query": "#f4c7a1",
    "key": "#a9cce3",
    "value": "#b8e0b0",
    "attention": "#f9e79f",
    "norm": "#d7bde2",
    "feed_forward": "#aed6f1",
    "output": "#f5b7b1",
}
HEAD_COLOURS = ["#f4a261", "#2a9d8f", "#e76f51", "#457b9d", "#8ab17d", "#b5838d", "#e9c46a", "#6d6875"]


def _box(ax, x: float, y: float, text: str, colour: str, width: float = 2.2, height: float = 0.6) -> None:
    """A rounded box centred on (x, y)."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                facecolor=colour, edgecolor="black", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "", style: str = "-|>",
           connection: str = "arc3") -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, linewidth=1,
                                 connectionstyle=connection, color="black"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center", va="bottom", fontsize=8)


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def draw_qkv_flow(causal: bool = True) -> Figure:
    """Data flow of scaled dot-product self-attention: X -> Q, K, V -> scores -> weights -> Z, with shapes."""
    fig, ax = _canvas(10, 3.6, (-0.5, 14.5), (-0.6, 4.6))
    _box(ax, 0.9, 2.0, "X\n(T, d_model)", COLOURS["input"], width=1.6, height=0.9)
    rows = {"Q": (3.6, COLOURS["query"]), "K": (2.0, COLOURS["key"]), "V": (0.4, COLOURS["value"])}
    for name, (y, colour) in rows.items():
        _arrow(ax, (1.75, 2.0), (3.3, y), f"$W^{name}$")
        _box(ax, 4.2, y, f"{name}\n(T, d_k)" if name != "V" else "V\n(T, d_v)", colour, width=1.6, height=0.9)
    _arrow(ax, (5.0, 3.6), (6.2, 2.95))
    _arrow(ax, (5.0, 2.0), (6.2, 2.65))
    _box(ax, 7.3, 2.8, "scores\n$QK^T/\\sqrt{d_k}$\n(T, T)", COLOURS["attention"], width=2.0, height=1.1)
    softmax_text = "causal mask\n+ softmax\nweights A (T, T)" if causal else "softmax\nweights A (T, T)"
    _arrow(ax, (8.3, 2.8), (9.1, 2.8))
    _box(ax, 10.2, 2.8, softmax_text, COLOURS["attention"], width=2.0, height=1.1)
    _arrow(ax, (11.2, 2.8), (12.3, 1.6))
    _arrow(ax, (5.0, 0.4), (12.3, 1.2), "values, weighted by A")
    _box(ax, 13.3, 1.4, "Z = A V\n(T, d_v)", COLOURS["output"], width=1.8, height=0.9)
    ax.set_title("self-attention: every token is projected three times, then mixed by the weights", fontsize=10)
    return fig


def _grid(ax, x0: float, y0: float, rows: int, cols: int, colours: list[str], cell: float = 0.3) -> None:
    """A rows x cols grid of cells, lower-left corner at (x0, y0); colours[c] fills column c."""
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(Rectangle((x0 + c * cell, y0 + (rows - 1 - r) * cell), cell, cell,
                                   facecolor=colours[c], edgecolor="white", linewidth=0.8))


def draw_head_split(seq_len: int = 6, d_model: int = 8, num_heads: int = 2) -> Figure:
    """How split_heads cuts (seq, d_model) into (heads, seq, head_dim) and merge_heads glues it back."""
    if d_model % num_heads or num_heads > len(HEAD_COLOURS):
        raise ValueError(f"need d_model divisible by num_heads and at most {len(HEAD_COLOURS)} heads, "
                         f"got d_model={d_model}, num_heads={num_heads}.")
    head_dim, cell = d_model // num_heads, 0.3
    column_colours = [HEAD_COLOURS[c // head_dim] for c in range(d_model)]
    width = d_model * cell
    height = seq_len * cell
    gap = 1.6
    head_x = width + gap
    merged_x = head_x + head_dim * cell + 2.4
    heads_height = num_heads * height + (num_heads - 1) * 0.35
    fig, ax = _canvas(10, 0.9 + heads_height * 0.9, (-0.4, merged_x + width + 0.4), (-0.7, heads_height + 0.6))
    y_full = (heads_height - height) / 2
    _grid(ax, 0, y_full, seq_len, d_model, column_colours, cell)
    ax.text(width / 2, y_full - 0.35, f"Q: (seq={seq_len}, d_model={d_model})", ha="center", fontsize=9)
    for h in range(num_heads):
        y = heads_height - (h + 1) * height - h * 0.35
        _grid(ax, head_x, y, seq_len, head_dim, [HEAD_COLOURS[h]] * head_dim, cell)
        ax.text(head_x + head_dim * cell + 0.15, y + height / 2, f"head {h}", va="center", fontsize=9)
        _arrow(ax, (width + 0.1, y_full + height / 2), (head_x - 0.1, y + height / 2))
        _arrow(ax, (head_x + head_dim * cell + 1.1, y + height / 2), (merged_x - 0.1, y_full + height / 2))
    ax.text(width + gap / 2, heads_height + 0.25, "split_heads\nview + transpose(1, 2)", ha="center", fontsize=9)
    ax.text(merged_x - 0.9, heads_height + 0.25, "attend per head,\nthen merge_heads\ntranspose + reshape",
            ha="center", fontsize=9)
    ax.text(head_x + head_dim * cell / 2, -0.45, f"(heads={num_heads}, seq, head_dim={head_dim})",
            ha="center", fontsize=9)
    _grid(ax, merged_x, y_full, seq_len, d_model, column_colours, cell)
    ax.text(merged_x + width / 2, y_full - 0.35, f"merged: (seq, d_model={d_model})", ha="center", fontsize=9)
    return fig


def draw_decoder_block(cross_attention: bool = True, norm_first: bool = False) -> Figure:
    """The decoder block, bottom to top: masked self-attention, cross-attention, feed-forward, residuals, norms."""
    sublayers = [("masked multi-head\nself-attention", COLOURS["attention"])]
    if cross_attention:
        sublayers.append(("multi-head cross-attention\n(queries from below)", COLOURS["key"]))
    sublayers.append(("feed-forward\n(per position)", COLOURS["feed_forward"]))
    unit = 2.7  # height of one sub-layer with its norm and sum
    top = 1.0 + unit * len(sublayers) + (0.8 if norm_first else 0.0) + 0.9
    fig, ax = _canvas(5.6, 0.9 + 0.6 * top, (-3.4, 6.0), (-0.5, top + 0.3))
    _box(ax, 0, 0, "token embedding + positional encoding", COLOURS["input"], width=4.6)
    y = 0.35  # where the residual stream currently is
    for index, (text, colour) in enumerate(sublayers):
        base = y + 0.35  # the residual branches off here
        ax.plot([0, 0], [y, base], color="black", linewidth=1)
        order = ["norm", "sub", "sum"] if norm_first else ["sub", "sum", "norm"]
        positions = {name: base + 0.5 + 0.8 * i for i, name in enumerate(order)}
        _box(ax, 0, positions["sub"], text, colour, width=3.6, height=0.55)
        _box(ax, 0, positions["norm"], "LayerNorm", COLOURS["norm"], width=1.8, height=0.35)
        ax.add_patch(plt.Circle((0, positions["sum"]), 0.16, facecolor="white", edgecolor="black"))
        ax.text(0, positions["sum"], "+", ha="center", va="center", fontsize=11)
        previous = base
        for name in order:
            height = {"norm": 0.175, "sub": 0.275, "sum": 0.16}[name]
            _arrow(ax, (0, previous), (0, positions[name] - height - 0.03))
            previous = positions[name] + height
        # the residual connection: from below the sub-layer, around it, into the sum
        ax.plot([0, -2.1, -2.1], [base, base, positions["sum"]], color="grey", linewidth=1.2)
        ax.add_patch(FancyArrowPatch((-2.1, positions["sum"]), (-0.17, positions["sum"]), arrowstyle="-|>",
                                     mutation_scale=12, color="grey", linewidth=1.2))
        if cross_attention and index == 1:
            _box(ax, 4.4, positions["sub"], "encoder output\n(keys, values)", COLOURS["input"], width=2.4, height=0.6)
            _arrow(ax, (3.2, positions["sub"]), (1.85, positions["sub"]))
        y = previous
    if norm_first:
        final = y + 0.5
        _box(ax, 0, final, "final LayerNorm", COLOURS["norm"], width=2.4, height=0.35)
        _arrow(ax, (0, y), (0, final - 0.2))
        y = final + 0.175
    head = y + 0.75
    _box(ax, 0, head, "linear + softmax over the vocabulary", COLOURS["output"], width=4.6)
    _arrow(ax, (0, y), (0, head - 0.33))
    ax.text(-3.2, 0.7 + unit * len(sublayers) / 2, "repeated N times", rotation=90, va="center", fontsize=9)
    kind = "pre-LN" if norm_first else "post-LN"
    ax.set_title(f"{'decoder' if cross_attention else 'decoder-only'} block ({kind}); grey: residual connections",
                 fontsize=10)
    return fig
