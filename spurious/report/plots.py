"""Figures of a study report (matplotlib, no display needed: figures are made with
matplotlib.figure.Figure directly, which renders through Agg for PNG and the SVG backend for SVG).

  fractions   share of runs ending with loss >= 1e-3 against k, 95% Wilson bands, published values
              overlaid; next to it, spurious minima and saddles separately
  family_losses   the loss of every family (marker area ~ runs), minima and saddles apart, with the
              published lowest spurious loss
  spectra     Hessian eigenvalues at the family representatives (symmetric-log scale)
"""
from __future__ import annotations

import functools
import io
import math
import os

import numpy as np
from matplotlib.figure import Figure

from ..core.files import write_atomic
from .figures import experiment_figures  # an experiment's figures are plain data, drawn there
from .study import SPURIOUS_LOSS, ExperimentStudyReport, LandscapeReport, StudyReport

CLASS_COLOURS = {"spurious_minimum": "#1f77b4", "local_minimum": "#1f77b4", "saddle": "#d62728",
                 "degenerate": "#7f7f7f", "global_minimum": "#2ca02c"}
#: minima and saddles differ in more than colour (for readers who do not see it, and in print): filled
#: circles on solid lines against open down-triangles on dashed lines; degenerate points are squares
CLASS_MARKERS = {"spurious_minimum": "o", "local_minimum": "o", "saddle": "v", "degenerate": "s",
                 "global_minimum": "o"}
CLASS_HOLLOW = {"saddle"}
CLASS_LINES = {"minima": "-", "saddles": "--"}
CLASS_NAMES = {"spurious_minimum": "spurious minima", "local_minimum": "local minima", "saddle": "saddles",
               "degenerate": "degenerate points"}
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
#: the widest figure the HTML page shows at full size: its content is 1124 px wide (html.CSS: 1180 px
#: less 2 x 28 px padding) and an SVG of w inches is 72 w pt = 96 w px, so 11 in (1056 px) fits with room
#: to spare; a wider figure would be scaled down, and its 8 pt labels with it
MAX_FIGURE_WIDTH = 11.0


def _series(report: LandscapeReport) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in report.rows:
        if row["runs_done"]:
            out.setdefault(row["series"], []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: r["x"])
    return out


def _x_label(report: LandscapeReport) -> str:
    """The swept axis on x, with its description from the problem's registry entry where known."""
    if report.x_axis is None:
        return "problem"
    from ..core.errors import SpuriousError
    from ..problems import entry

    try:
        parameter = entry(report.config.get("problem")).parameter(report.x_axis)
    except SpuriousError:
        parameter = None
    return parameter.doc.split(" (")[0] if parameter is not None and parameter.doc else report.x_axis


def fractions_figure(report: LandscapeReport) -> Figure | None:
    series = _series(report)
    if not series:
        return None
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (name, rows) in enumerate(series.items()):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        x = np.array([r["x"] for r in rows], dtype=float)
        s = [r["spurious"] for r in rows]
        left.fill_between(x, [100 * v["ci_low"] for v in s], [100 * v["ci_high"] for v in s], color=colour, alpha=0.18,
                          linewidth=0)
        left.plot(x, [100 * v["fraction"] for v in s], marker=MARKERS[i % len(MARKERS)], color=colour,
                  label=f"{name}: measured (95% Wilson band)")
        pub = [(r["x"], r["published_fraction"]) for r in rows if r["published_fraction"] is not None]
        if pub:
            px, py = zip(*pub)
            left.plot(px, [100 * v for v in py], linestyle="none", marker="x", markersize=8, markeredgewidth=2,
                      color="black" if i == 0 else colour, label=f"{name}: published")
        for what, cls in (("minima", "spurious_minimum"), ("saddles", "saddle")):
            v = [r[what] for r in rows]
            right.fill_between(x, [100 * a["ci_low"] for a in v], [100 * a["ci_high"] for a in v], color=colour,
                               alpha=0.12, linewidth=0)
            right.plot(x, [100 * a["fraction"] for a in v], linestyle=CLASS_LINES[what], marker=CLASS_MARKERS[cls],
                       markersize=7, markerfacecolor="white" if cls in CLASS_HOLLOW else colour,
                       markeredgewidth=1.4, color=colour, label=f"{name}: {CLASS_NAMES[cls]}")
    left.set_title(f"runs ending with loss \u2265 {SPURIOUS_LOSS:g}")
    right.set_title("spurious minima and saddles (second-order test)")
    for ax in (left, right):
        ax.set_xlabel(_x_label(report))
        ax.set_ylabel("% of runs")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _family_points(report: LandscapeReport) -> list[tuple[dict, dict]]:
    """(row, family) of every family above the global minimum with a loss to plot."""
    rows = {r["key"]: r for r in report.rows}
    return [(rows[pkey], f) for pkey, families in report.families.items() for f in families
            if f["class"] != "global_minimum" and f["loss"] is not None and f["loss"] > 0]


def _published_min_losses(report: LandscapeReport) -> list[tuple]:
    return [(r["x"], r["published_min_loss"]) for r in report.rows if r["published_min_loss"] is not None]


def family_losses_figure(report: LandscapeReport) -> Figure | None:
    series_index = {name: i for i, name in enumerate(_series(report))}
    points = _family_points(report)
    if not points:
        return None
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.subplots()
    n_series = max(1, len(series_index))
    seen = set()
    for row, f in points:
        i = series_index.get(row["series"], 0)
        x = row["x"] + (i - (n_series - 1) / 2) * 0.18
        cls = f["class"] if f["class"] in CLASS_NAMES else "degenerate"
        label = CLASS_NAMES[cls] if cls not in seen else None
        seen.add(cls)
        hollow = cls in CLASS_HOLLOW
        ax.scatter([x], [f["loss"]], s=16 + 120 * math.sqrt(f["fraction"]), marker=CLASS_MARKERS[cls],
                   facecolors="white" if hollow else CLASS_COLOURS[cls], alpha=0.8,
                   edgecolors=CLASS_COLOURS[cls] if hollow else "black", linewidths=1.4 if hollow else 0.4,
                   label=label)
    pub = _published_min_losses(report)
    if pub:
        px, py = zip(*pub)
        ax.plot(px, py, linestyle="none", marker="_", markersize=16, markeredgewidth=2, color="black",
                label="published lowest spurious loss")
    if min(f["loss"] for _, f in points) < 3 * SPURIOUS_LOSS:
        ax.axhline(SPURIOUS_LOSS, color="gray", linestyle="--", linewidth=0.8, label="loss = 1e-3")
    ax.set_yscale("log")
    ax.set_xlabel(_x_label(report) + ("  (series offset: " + ", ".join(series_index) + ")" if n_series > 1 else ""))
    ax.set_ylabel("loss at the family representative")
    ax.set_title("families above the global minimum (marker area ~ share of runs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


#: eigenvalue colours of the spectra plot: below -tolerance, within it of 0, above it (global minima apart)
EIGENVALUE_COLOURS = {"negative": "#d62728", "zero": "#7f7f7f", "positive": "#1f77b4", "global": "#2ca02c"}


def _spectra_chosen(report: LandscapeReport, limit: int = 40) -> tuple[str, list[tuple[dict, dict]]]:
    """The spectra plot's title and its (row, family) columns: the families above the global minimum
    (the `limit` largest), or the global minima when there are none."""
    rows = {r["key"]: r for r in report.rows}
    chosen = [(rows[pkey], f) for pkey, families in report.families.items() for f in families
              if f["class"] != "global_minimum" and f["spectrum"]]
    title = "Hessian spectra of family representatives"
    if not chosen:  # nothing spurious: show the global minima
        title = "Hessian eigenvalues at the global minima"
        chosen = [(rows[pkey], f) for pkey, families in report.families.items() for f in families if f["spectrum"]]
    chosen.sort(key=lambda rf: (-rf[1]["count"], rf[0]["x"]))
    return title, sorted(chosen[:limit], key=lambda rf: (rf[0]["x"], rf[0]["label"], rf[1]["id"]))


def _eigenvalue_kinds(row: dict, family: dict) -> np.ndarray:
    """Each eigenvalue's key in EIGENVALUE_COLOURS."""
    ev = np.array([np.nan if v is None else v for v in family["spectrum"]], dtype=float)
    tol = row["tolerances"]["eigenvalue"]
    positive = "global" if family["class"] == "global_minimum" else "positive"
    return np.where(ev < -tol, "negative", np.where(np.abs(ev) <= tol, "zero", positive))


def spectra_figure(report: LandscapeReport, limit: int = 40) -> Figure | None:
    title, chosen = _spectra_chosen(report, limit)
    if not chosen:
        return None
    # at most the page's width, so the HTML shows it at full size: labels stay 8 pt on the page
    fig = Figure(figsize=(min(MAX_FIGURE_WIDTH, max(7.0, 0.3 * len(chosen) + 2)), 4.8), layout="constrained")
    ax = fig.subplots()
    for j, (row, f) in enumerate(chosen):
        ev = np.array([np.nan if v is None else v for v in f["spectrum"]], dtype=float)
        colour = [EIGENVALUE_COLOURS[k] for k in _eigenvalue_kinds(row, f)]
        ax.scatter(np.full(len(ev), j), ev, marker="_", s=110, c=colour, linewidths=1.4)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(chosen)))
    # upright labels read across columns when slanted ones would run into their neighbours: a column is
    # at least 0.25 in (18 pt) wide at 40 families, an 8 pt label turned on its side about 10 pt
    ax.set_xticklabels([f"{row['label']} #{f['id']}" for row, f in chosen], rotation=90, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlim(-0.7, len(chosen) - 0.3)
    ax.set_xlabel("family (problem #id)", fontsize=9)
    ax.set_ylabel("eigenvalue (symlog, linear below 1e-3)", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return fig


def figure_caption(stem: str, report: LandscapeReport) -> str:
    """The caption of a landscape report's figure, naming only what that figure draws."""
    if stem == "fractions":
        series = _series(report)
        published = any(r["published_fraction"] is not None for rows in series.values() for r in rows)
        return ("Left: share of runs ending with loss \u2265 1e-3 (the papers' criterion), with 95% Wilson bands"
                + ("; crosses: the published values" if published else "")
                + ". Right: the same runs split by the second-order test into spurious local minima (filled circles, "
                  "solid lines) and saddles (open triangles, dashed lines)"
                + (f"; colours: {', '.join(series)}" if len(series) > 1 else "") + ".")
    if stem == "family_losses":
        points = _family_points(report)
        classes = [c for c in CLASS_NAMES if any((f["class"] if f["class"] in CLASS_NAMES else "degenerate") == c
                                                 for _, f in points)]
        shapes = {"spurious_minimum": "filled circles", "local_minimum": "filled circles", "saddle": "open triangles",
                  "degenerate": "squares"}
        drawn = [f"{shapes[c]}: {CLASS_NAMES[c]}" for c in classes]
        if _published_min_losses(report):
            drawn.append("dashes: published lowest spurious loss")
        if points and min(f["loss"] for _, f in points) < 3 * SPURIOUS_LOSS:
            drawn.append("dashed line: loss = 1e-3")
        return ("Loss at each family's representative (families = endpoints equal up to the problem's symmetry); "
                "marker area grows with the share of runs; " + "; ".join(drawn) + ".")
    if stem == "spectra":
        title, chosen = _spectra_chosen(report)
        kinds = set().union(*(set(_eigenvalue_kinds(row, f)) for row, f in chosen)) if chosen else set()
        words = {"negative": "red: negative (below -tolerance)", "zero": "grey: within the tolerance of 0",
                 "positive": "blue: positive", "global": "green: positive, at a global minimum"}
        return (f"{title}, one column per family (symmetric log scale, linear below 1e-3); "
                + ", ".join(words[k] for k in words if k in kinds) + ".")
    return stem.replace("_", " ")


@functools.singledispatch
def report_figures(report: StudyReport) -> list[tuple[str, Figure]]:
    """(file stem, Figure) pairs for a report."""
    raise TypeError(f"no figures for {type(report).__name__}")


@report_figures.register
def _(report: ExperimentStudyReport) -> list[tuple[str, Figure]]:
    return experiment_figures(report.experiment.figures) if report.experiment is not None else []


@report_figures.register
def _(report: LandscapeReport) -> list[tuple[str, Figure]]:
    out = []
    for stem, make in (("fractions", fractions_figure), ("family_losses", family_losses_figure),
                       ("spectra", spectra_figure)):
        fig = make(report)
        if fig is not None:
            out.append((stem, fig))
    return out


def save_figure(fig, directory: str, stem: str) -> list[str]:
    """Write stem.png and stem.svg into directory; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = os.path.join(directory, f"{stem}.{ext}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=110)
        write_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths


def svg_text(fig) -> str:
    """The figure as an inline <svg> element (no XML prolog, so it can sit inside HTML)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]
