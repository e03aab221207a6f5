"""Drawing an experiment's figures: the plain-data Figure / Panel / Series of
spurious.experiments.base rendered with matplotlib (matplotlib.figure.Figure directly, no pyplot
state, so it is safe in worker threads; PNG through Agg, SVG through the SVG backend)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MplFigure

from ..experiments.base import Figure, Panel, Series


def _draw(ax, s: Series) -> None:
    x, y = np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float)
    common = {"label": s.label, "alpha": s.alpha}
    if s.color is not None:
        common["color"] = s.color
    if s.kind == "line":
        ax.plot(x, y, linestyle=s.style, marker=s.marker or "", linewidth=s.width, markersize=s.size ** 0.5 * 1.5,
                **common)
    elif s.kind == "scatter":
        ax.scatter(x, y, s=s.size, marker=s.marker or "o", **common)
    elif s.kind == "hline":
        ax.axhline(y[0], linestyle=s.style, linewidth=s.width, **common)
    elif s.kind == "vline":
        ax.axvline(x[0], linestyle=s.style, linewidth=s.width, **common)
    elif s.kind == "band":
        low = np.asarray(s.y_low, dtype=float)
        if len(x) == 2 and len(y) == 1:  # a horizontal band across the panel between two heights
            ax.axhspan(low[0], y[0], linewidth=0, **common)
        else:
            ax.fill_between(x, low, y, linewidth=0, **common)
    else:  # errorbar: markers with bars down to y_low
        low = np.asarray(s.y_low if s.y_low is not None else s.y, dtype=float)
        ax.errorbar(x, y, yerr=[y - low, np.zeros_like(y)], fmt=(s.marker or "o"), capsize=3,
                    linestyle="none", **common)


def _panel(ax, panel: Panel) -> None:
    # a series with nothing to draw (no runs of it, or all diverged) stays off the axes and the legend
    shown = [s for s in panel.series if s.kind in ("hline", "vline") or s.has_data()]
    for s in shown:
        _draw(ax, s)
    for axis, scale in (("x", panel.xscale), ("y", panel.yscale)):
        setter = ax.set_xscale if axis == "x" else ax.set_yscale
        setter(scale, **({"linthresh": panel.linthresh} if scale == "symlog" else {}))
    ax.set_title(panel.title, fontsize=9)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    if panel.xticklabels is not None:
        ax.set_xticks(range(len(panel.xticklabels)), list(panel.xticklabels), fontsize=8)
    if panel.legend and any(s.label for s in shown):
        ax.legend(fontsize=7)


def render(figure: Figure) -> MplFigure:
    """The matplotlib Figure of one plain-data figure (panels side by side)."""
    count = len(figure.panels)
    fig = MplFigure(figsize=(figure.panel_width * count, figure.height), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, count, sharey=figure.sharey))
    for ax, panel in zip(axes, figure.panels):
        _panel(ax, panel)
    if figure.title:
        fig.suptitle(figure.title, fontsize=10)
    return fig


def experiment_figures(figures) -> list[tuple[str, MplFigure]]:
    """(file stem, matplotlib Figure) for each figure of an ExperimentReport."""
    return [(f.stem, render(f)) for f in figures]
