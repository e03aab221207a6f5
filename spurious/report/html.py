"""One self-contained HTML page per study (figures inline as SVG; no external files or scripts)."""
from __future__ import annotations

import functools
import html
import json
import os

from ..core.files import write_atomic
from ..experiments.base import Verdict
from .numbers import format_cell
from .plots import figure_caption, report_figures, save_figure, svg_text
from .study import ExperimentStudyReport, LandscapeReport, StudyReport, fmt_time
from .landscape import transition_figures
from .tables import (TRANSITION_COLUMNS, TRANSITION_NOTES, transition_rows, ANNIHILATION_COLUMNS, CLASS_COLUMNS, FAMILY_COLUMNS, _settings_line, annihilation_notes,
                     annihilation_rows, class_notes, family_rows, isotropy_lines, landscape_rows, measured_columns, measured_notes,
                     verdict_count_text)

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; background: #f6f7f9;
       color: #1d2330; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: white; min-height: 100vh; }
h1 { font-size: 1.55em; margin: 0 0 4px; } h2 { font-size: 1.2em; margin-top: 34px;
     border-bottom: 1px solid #dde1e8; padding-bottom: 4px; }
.key { color: #5b6475; font-family: ui-monospace, monospace; font-size: 0.95em; }
.meta { color: #5b6475; font-size: 0.9em; margin: 6px 0; }
.box { border-radius: 6px; padding: 12px 16px; margin: 16px 0; border: 1px solid; }
.pass { background: #eaf7ee; border-color: #9fd3ae; } .fail { background: #fdecec; border-color: #eea9a9; }
.neutral { background: #eef2f8; border-color: #b9c6da; }
table { border-collapse: collapse; font-size: 0.84em; margin: 10px 0; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e5e8ee; text-align: right; white-space: nowrap; }
th { background: #f0f2f6; position: sticky; top: 0; }
td.l, th.l { text-align: left; } tr:nth-child(even) td { background: #fafbfc; }
td.v-reproduced { color: #17692f; font-weight: 600; }
td.v-not-reproduced { color: #a11d1d; font-weight: 600; }
td.v-inconclusive { color: #8a5a00; font-weight: 600; } td.v-not-tested { color: #5b6475; }
figure { margin: 18px 0; } figcaption { color: #5b6475; font-size: 0.88em; }
svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
code { background: #f0f2f6; padding: 1px 4px; border-radius: 3px; }
"""

LEFT = {"problem", "verdict", "other", "min_loss_verdict", "class", "run", "setting", "value"}
#: the box around an experiment's verdict, by kind
VERDICT_BOX = {Verdict.REPRODUCED: "pass", Verdict.NOT_REPRODUCED: "fail", Verdict.NOT_TESTED: "neutral",
               Verdict.INCONCLUSIVE: "neutral"}


def verdict_class(text: str) -> str:
    """The CSS class of a table cell that starts with a verdict's words ('' for any other text)."""
    for verdict in sorted(Verdict, key=lambda v: -len(v.value)):  # "not reproduced" before "reproduced"
        if str(text).startswith(verdict.value):
            return "v-" + verdict.value.replace(" ", "-")
    return ""


def _esc(value) -> str:
    return html.escape(str(value))


def _table(rows: list[dict], columns: list[tuple[str, str, str]], classes_from: set[str] = frozenset()) -> str:
    head = "".join(f'<th class="{"l" if k in LEFT else ""}">{_esc(h)}</th>' for k, h, _ in columns)
    body = []
    for r in rows:
        cells = []
        for k, _, _ in columns:
            value = r.get(k, "")
            css = ["l"] if k in LEFT else []
            if k in classes_from and verdict_class(value):
                css.append(verdict_class(value))
            cells.append(f'<td class="{" ".join(css)}">{_esc(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _figure(fig, caption: str) -> str:
    return f"<figure>{svg_text(fig)}<figcaption>{_esc(caption)}</figcaption></figure>"


def _header(report: StudyReport) -> str:
    i = report.info
    state = "complete" if report.complete else ("running" if i["running"] else "incomplete (resume to finish)")
    runs = f", {i['runs_done']}/{i['runs_total']} runs" if i["runs_total"] else ""
    parts = [f"<h1>{_esc(report.title)}</h1>", f'<div class="key">{_esc(report.key)}</div>']
    if report.description:
        parts.append(f"<p>{_esc(report.description)}</p>")
    parts.append(f'<div class="meta">{i["cells_done"]}/{i["cells_total"]} cells{runs} \u00b7 {state} \u00b7 '
                 f'spurious {_esc(i["version"])} \u00b7 created {fmt_time(i["created"])}, updated '
                 f'{fmt_time(i["updated"])} \u00b7 store <code>{_esc(os.path.abspath(report.store_path))}</code></div>')
    return "\n".join(parts)


def _notes(notes: list[str]) -> str:
    """A table's caption from its notes (each names a column or a kind of row the table shows)."""
    text = ". ".join(notes).replace(">=", "\u2265")  # notes start with the column they explain: as named
    text = text[:1].upper() + text[1:]
    return f'<p class="meta">{_esc(text)}.</p>'


def _disagreements(lines: list[str]) -> str:
    return f"<ul>{''.join(f'<li>{_esc(text)}</li>' for text in lines)}</ul>" if lines else ""


@functools.singledispatch
def report_body(report: StudyReport, figures) -> str:
    raise TypeError(f"no HTML form for {type(report).__name__}")


@report_body.register
def landscape_body(report: LandscapeReport, figures) -> str:
    parts = []
    verdicts = report.verdicts()
    fractions = [v for v in verdicts if v["what"] == "fraction"]
    if fractions:
        compared = [v for v in fractions if v["verdict"] in (Verdict.REPRODUCED, Verdict.NOT_REPRODUCED)]
        inside = sum(v["verdict"] is Verdict.REPRODUCED for v in compared)
        css = ("pass" if compared and inside == len(fractions) else
               "fail" if inside < len(compared) / 2 else "neutral")
        outside = [v["problem"] for v in compared if v["verdict"] is Verdict.NOT_REPRODUCED]
        counted, rest = verdict_count_text(report)
        parts.append(f'<div class="box {css}"><b>{counted} published fractions lie inside our 95% intervals'
                     + (f"; {_esc(rest)}" if rest else "") + ".</b>"
                     + (f" Outside: {_esc(', '.join(outside))}." if outside else "") +
                     _disagreements(report.explain_disagreements() + report.explain_unconverged()) +
                     (f"<br>Published: {_esc(report.published['source'])}; {report.published['runs']} runs per "
                      f"problem, criterion: {_esc(report.published['criterion'])}." if report.published else "") +
                     "</div>")
    settings = _settings_line(report.rows)
    if settings:
        tol = report.rows[0]["tolerances"]
        parts.append(f'<p class="meta">{_esc(settings)}. Tolerances: '
                     f'{_esc(", ".join(f"{k} {v:g}" for k, v in tol.items()))}.</p>')
    rows = landscape_rows(report)
    parts.append("<h2>Measured against published</h2>" if report.published else "<h2>Measured</h2>")
    columns = measured_columns(report)
    parts.append(_table(rows, columns, classes_from={"verdict", "min_loss_verdict"}))
    parts.append(_notes(measured_notes(columns, rows)))
    parts.append("<h2>Endpoints by class</h2>")
    parts.append(_table(rows, CLASS_COLUMNS))
    parts.append(_notes(class_notes(report)))
    for stem, fig in figures:
        parts.append(_figure(fig, figure_caption(stem, report)))
    fams = family_rows(report)
    parts.append("<h2>Families above the global minimum</h2>")
    parts.append(_table(fams, FAMILY_COLUMNS, classes_from=set()) if fams else "<p>None found.</p>")
    isotropies = isotropy_lines(report)
    if isotropies:
        parts.append("<p class=\"meta\">Isotropy types (the subgroup of S_n &times; S_k fixing each representative, "
                     "k symbolic), families and runs per problem:</p>")
        parts.append(_disagreements(isotropies))
    if any(r["certified"] != "-" for r in fams):
        parts.append("<p class=\"meta\">certified: <code>spurious study certify</code> proved in ball arithmetic "
                     "that a critical point of the stated class and index exists within radius r of the "
                     "representative (re-check the certificates with <code>spurious verify</code>); refused: "
                     "the proof did not go through, for the reason named; -: not tried.</p>")
    if report.annihilations:
        parts.append("<h2>One more neuron: annihilation of the spurious minima</h2>")
        parts.append(_table(annihilation_rows(report), ANNIHILATION_COLUMNS))
        parts.append(_notes(annihilation_notes(report)))
    if report.transitions:
        parts.append("<h2>Transition states and barriers</h2>")
        parts.append(_table(transition_rows(report), TRANSITION_COLUMNS))
        parts.append(_notes(TRANSITION_NOTES))
        for fig, caption in transition_figures(report):
            parts.append(_figure(fig, caption))
    glob = [r for r in family_rows(report, include_global=True) if r["class"] == "global_minimum"]
    if glob:
        parts.append("<h2>Global minima</h2>")
        parts.append(_table(glob, FAMILY_COLUMNS))
    return "\n".join(parts)


@report_body.register
def experiment_body(report: ExperimentStudyReport, figures) -> str:
    e = report.experiment
    if e is None:
        return f'<div class="box neutral">No evaluation yet: {_esc(report.experiment_error)}</div>'
    word = str(e.verdict)
    parts = [f"<h2>Claim</h2><p>{_esc(e.claim)}</p>",
             f'<div class="box {VERDICT_BOX[e.verdict]}"><b>{_esc(word[:1].upper() + word[1:])}.</b> '
             f'{_esc(e.summary)}</div>']
    if e.table:
        keys = list(e.table[0])
        rows = [{k: json.dumps(v) if isinstance(v, (list, dict)) else format_cell(k, v) for k, v in r.items()}
                for r in e.table]
        parts.append("<h2>Evidence</h2>")
        parts.append(_table(rows, [(k, k, ">") for k in keys]))
    for stem, fig in figures:
        parts.append(_figure(fig, stem.replace("_", " ")))
    config = report.config.get("experiment_config") or {}
    rows = [{"setting": k, "value": json.dumps(v)} for k, v in config.items()]
    parts.append("<h2>Configuration</h2>")
    parts.append(_table(rows, [("setting", "setting", "<"), ("value", "value", "<")]))
    return "\n".join(parts)


def render_html(report: StudyReport, figures=None) -> str:
    figures = report_figures(report) if figures is None else figures
    body = report_body(report, figures)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(report.key)} \u2014 spurious'
            f'</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><main>\n{_header(report)}\n{body}\n</main></body></html>\n")


def file_stem(key: str) -> str:
    return key.replace("@", "-").replace("/", "-")


def write_report(report: StudyReport, directory: str) -> str:
    """Write DIRECTORY/<study>.html (self-contained) and the figures as PNG and SVG in
    DIRECTORY/<study>/; returns the HTML path."""
    figures = report_figures(report)
    stem = file_stem(report.key)
    os.makedirs(directory, exist_ok=True)
    for name, fig in figures:
        save_figure(fig, os.path.join(directory, stem), name)
    path = os.path.join(directory, f"{stem}.html")
    write_atomic(path, render_html(report, figures))
    return path
