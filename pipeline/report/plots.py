"""The overview's plots as inline SVG (matplotlib, no display, nothing fetched when the page opens)."""
from __future__ import annotations

import io
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

FIGSIZE = (4.6, 2.6)
BAR_COLOUR = "#3b6ea8"


def _svg(fig: Figure, plot_id: str) -> str:
    # A salt per plot: matplotlib derives element ids from it, so two plots inlined in one page never
    # share an id, and the same data gives the same bytes on every run.
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": plot_id, "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, object]:
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def histogram(plot_id: str, values: Sequence[float], title: str, xlabel: str, bins: int = 20,
              value_range: tuple[float, float] | None = None) -> str:
    """A histogram of `values` (songs per bin) as an SVG string; an empty plot says "no data"."""
    fig, ax = _figure(title, xlabel, "songs")
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if data.size:
        ax.hist(data, bins=bins, range=value_range, color=BAR_COLOUR, edgecolor="white", linewidth=0.5)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    return _svg(fig, plot_id)


def bars(plot_id: str, labels: Sequence[str], values: Sequence[float], title: str, ylabel: str,
         max_bars: int = 20) -> str:
    """Horizontal bars, largest first (at most `max_bars`; the rest summed as "other"), as SVG."""
    pairs = sorted(zip(labels, values), key=lambda p: (-p[1], p[0]))
    if len(pairs) > max_bars:
        pairs = pairs[:max_bars - 1] + [("other", sum(v for _, v in pairs[max_bars - 1:]))]
    fig, ax = _figure(title, ylabel, "")
    if pairs:
        names = [p[0] or "(none)" for p in pairs][::-1]
        ax.barh(range(len(names)), [p[1] for p in pairs][::-1], color=BAR_COLOUR)
        ax.set_yticks(range(len(names)), names)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    fig.set_figheight(max(FIGSIZE[1], 0.9 + 0.22 * len(pairs)))
    return _svg(fig, plot_id)
