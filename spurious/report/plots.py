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
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


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
        for what, style in (("minima", "-"), ("saddles", ":")):
            v = [r[what] for r in rows]
            right.fill_between(x, [100 * a["ci_low"] for a in v], [100 * a["ci_high"] for a in v], color=colour,
                               alpha=0.12, linewidth=0)
            right.plot(x, [100 * a["fraction"] for a in v], linestyle=style, marker=MARKERS[i % len(MARKERS)],
                       color=colour, label=f"{name}: {'spurious minima' if what == 'minima' else 'saddles'}")
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


def family_losses_figure(report: LandscapeReport) -> Figure | None:
    points = []
    series_index = {name: i for i, name in enumerate(_series(report))}
    rows = {r["key"]: r for r in report.rows}
    for pkey, families in report.families.items():
        row = rows[pkey]
        for f in families:
            if f["class"] != "global_minimum" and f["loss"] is not None and f["loss"] > 0:
                points.append((row, f))
    if not points:
        return None
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.subplots()
    n_series = max(1, len(series_index))
    seen = set()
    for row, f in points:
        i = series_index.get(row["series"], 0)
        x = row["x"] + (i - (n_series - 1) / 2) * 0.18
        cls = f["class"] if f["class"] in CLASS_COLOURS else "degenerate"
        label = {"spurious_minimum": "spurious minima", "local_minimum": "local minima", "saddle": "saddles",
                 "degenerate": "degenerate points"}[cls] if cls not in seen else None
        seen.add(cls)
        ax.scatter([x], [f["loss"]], s=12 + 120 * math.sqrt(f["fraction"]), color=CLASS_COLOURS[cls],
                   marker=MARKERS[i % len(MARKERS)], alpha=0.75, edgecolors="black", linewidths=0.4, label=label)
    pub = [(r["x"], r["published_min_loss"]) for r in report.rows if r["published_min_loss"] is not None]
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


def spectra_figure(report: LandscapeReport, limit: int = 40) -> Figure | None:
    rows = {r["key"]: r for r in report.rows}
    chosen = []
    for pkey, families in report.families.items():
        for f in families:
            if f["class"] != "global_minimum" and f["spectrum"]:
                chosen.append((rows[pkey], f))
    title = "Hessian spectra of family representatives"
    if not chosen:  # nothing spurious: show the global minima
        title = "Hessian eigenvalues at the global minima"
        for pkey, families in report.families.items():
            chosen += [(rows[pkey], f) for f in families if f["spectrum"]]
    if not chosen:
        return None
    chosen.sort(key=lambda rf: (-rf[1]["count"], rf[0]["x"]))
    chosen = sorted(chosen[:limit], key=lambda rf: (rf[0]["x"], rf[0]["label"], rf[1]["id"]))
    fig = Figure(figsize=(min(14.0, max(7.0, 0.32 * len(chosen) + 2)), 4.6), layout="constrained")
    ax = fig.subplots()
    for j, (row, f) in enumerate(chosen):
        ev = np.array([np.nan if v is None else v for v in f["spectrum"]], dtype=float)
        colour = np.where(ev < -row["tolerances"]["eigenvalue"], "#d62728",
                          np.where(np.abs(ev) <= row["tolerances"]["eigenvalue"], "#7f7f7f",
                                   CLASS_COLOURS.get(f["class"], "#1f77b4")))
        ax.scatter(np.full(len(ev), j), ev, marker="_", s=90, c=list(colour), linewidths=1.2)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(chosen)))
    ax.set_xticklabels([f"{row['label']} #{f['id']}" for row, f in chosen], rotation=70, fontsize=7, ha="right")
    ax.set_ylabel("eigenvalue (symlog, linear below 1e-3)")
    ax.set_title(title + ("; red: negative" if any(f["class"] == "saddle" for _, f in chosen) else ""))
    ax.grid(alpha=0.3, axis="y")
    return fig


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
