"""Terminal tables of a study report (spurious.report.study.StudyReport)."""
from __future__ import annotations

import functools
import json
from fractions import Fraction

from ..experiments.base import Verdict
from .numbers import format_cell, format_loss
from .study import MIN_LOSS_MATCH, ExperimentStudyReport, LandscapeReport, StudyReport, fmt_time, pct


def _settings_line(rows: list[dict]) -> str:
    if not rows:
        return ""
    o = rows[0]["optimizer"]
    steps = sorted({r["optimizer"]["step"] for r in rows})
    step = f"{steps[0]:g}" if len(steps) == 1 else f"{steps[0]:g}..{steps[-1]:g} (per problem)"
    newton = "off" if o["newton_switch"] is None else f"below {o['newton_switch']:g}"
    return (f"gradient descent: step {step}, stop at {o['stop_norm']} <= {o['grad_tol']:g}, "
            f"at most {o['max_steps']} steps, Newton switch {newton}")


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    """Plain text table. columns: (key, header, align '<' or '>')."""
    cells = [[str(r.get(k, "")) for k, _, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h, _) in enumerate(columns)]
    line = lambda values: "  ".join(f"{v:{a}{w}}" for v, (_, _, a), w in zip(values, columns, widths)).rstrip()
    return [line([h for _, h, _ in columns]), line(["-" * w for w in widths])] + [line(c) for c in cells]


def _interval(s: dict) -> str:
    if not s["total"]:
        return "-"
    return f"{pct(s['fraction'])} [{pct(s['ci_low'])}, {pct(s['ci_high'])}]"


def _other(r: dict) -> str:
    parts = []
    for c, n in sorted(r["other"].items()):
        text = f"{c} {n}"
        if c == "not_converged" and r.get("not_converged_max_loss") is not None:
            text += f" (loss <= {r['not_converged_max_loss']:.1e})"
        parts.append(text)
    return ", ".join(parts) or "-"


def verdict_text(verdict: Verdict | None, evidence: str = "") -> str:
    """A verdict as tables show it: the kind in words, then its evidence ("not reproduced (outside)")."""
    if verdict is None:
        return "-"
    return f"{verdict} ({evidence})" if evidence else str(verdict)


def landscape_rows(report: LandscapeReport) -> list[dict]:
    """The main tables' rows as display strings (shared by the terminal and the HTML page)."""
    out = []
    for r in report.rows:
        runs = f"{r['runs_done']}" + ("" if r["runs_done"] == r["runs_total"] else f"/{r['runs_total']}")
        fams = f"{r['n_spurious_minimum_families']}+{r['n_saddle_families']}"
        if r["families_partial"] and r["runs_done"]:
            fams += "*"
        out.append({
            "problem": r["label"], "runs": runs, "measured": _interval(r["spurious"]),
            "published": pct(r["published_fraction"]) if r["published_fraction"] is not None else "-",
            "verdict": verdict_text(r["verdict"], r["verdict_evidence"]),
            "published_p": f"{r['published_p']:.2g}" if r.get("published_p") is not None else "-",
            "global": _interval(r["global"]), "minima": _interval(r["minima"]), "saddles": _interval(r["saddles"]),
            "other": _other(r), "families": fams,
            "published_families": str(r["published_families"]) if r["published_families"] is not None else "-",
            "min_loss": format_loss(r["min_spurious_loss"]),
            "published_min_loss": format_loss(r["published_min_loss"]),
            "min_loss_verdict": verdict_text(r["min_loss_verdict"], r["min_loss_evidence"]),
            "ended": _ended(r),
        })
    return out


#: how the class table names each way a run ended
ENDED_WORDS = (("converged", "grad"), ("global", "global"), ("not_converged", "capped"), ("diverged", "diverged"))


def _ended(r: dict) -> str:
    """'grad 20, global 978, capped 2 (rule 2)': how the problem's runs ended."""
    ended = r.get("ended") or {}
    parts = [f"{word} {ended[status]}" for status, word in ENDED_WORDS if ended.get(status)]
    if r.get("by_rule"):
        parts[-1 if ended.get("diverged") is None else -2] += f" (rule {r['by_rule']})"
    return ", ".join(parts) or "-"


MEASURED_COLUMNS = [
    ("problem", "problem", "<"), ("runs", "runs", ">"),
    ("measured", "loss>=1e-3 % [95% CI]", ">"), ("published", "published %", ">"), ("verdict", "verdict", "<"),
    ("published_p", "p", ">"), ("families", "families min+saddle", ">"), ("published_families", "published", ">"),
    ("min_loss", "lowest loss>=1e-3", ">"), ("published_min_loss", "published", ">"),
    ("min_loss_verdict", "verdict", "<"),
]
PUBLISHED_KEYS = {"published", "verdict", "published_p", "published_families", "published_min_loss", "min_loss_verdict"}

CLASS_COLUMNS = [
    ("problem", "problem", "<"), ("runs", "runs", ">"), ("global", "global minima % [95% CI]", ">"),
    ("minima", "spurious minima %", ">"), ("saddles", "saddles %", ">"), ("other", "other endpoints", "<"),
    ("ended", "how runs ended", "<"),
]


def measured_columns(report: LandscapeReport) -> list[tuple[str, str, str]]:
    has = any(r["published_fraction"] is not None or r["published_min_loss"] is not None for r in report.rows)
    return MEASURED_COLUMNS if has else [c for c in MEASURED_COLUMNS if c[0] not in PUBLISHED_KEYS]


def measured_notes(columns: list[tuple[str, str, str]], rows: list[dict]) -> list[str]:
    """What the measured table's columns mean, for the columns it shows only."""
    keys = {k for k, _, _ in columns}
    notes = ["percentages of all runs of the problem; brackets: 95% Wilson intervals"]
    if "verdict" in keys:
        notes.append(f"verdict: {Verdict.REPRODUCED} when the published value lies inside our interval (lowest "
                     f"loss: within {MIN_LOSS_MATCH:g} of it), {Verdict.NOT_REPRODUCED} when it does not, "
                     f"{Verdict.NOT_TESTED} without runs (lowest loss: without a converged run at loss >= 1e-3), "
                     f"{Verdict.INCONCLUSIVE} when runs stopped short at loss >= 1e-3 decide it")
    if "published_p" in keys:
        notes.append("p: Fisher's exact test of our count against the published one as two samples")
    if "families" in keys:
        notes.append("families: spurious minima + saddles among the families with loss >= 1e-3"
                     + (" (* = problem not finished, families joined so far)"
                        if any(r["families"].endswith("*") for r in rows) else ""))
    return notes


def class_notes(report: LandscapeReport) -> list[str]:
    """What the class table shows, naming only the kinds of endpoint it has."""
    notes = ["second-order test at each polished endpoint: spurious minima (positive definite Hessian, loss above "
             "the global value) and saddles (a negative eigenvalue) are counted separately"]
    other = set().union(*(r["other"] for r in report.rows)) if report.rows else set()
    if "not_converged" in other:
        notes.append("not_converged: stopped by the step cap before the stop tolerance; the bound shown is their "
                     "largest loss (they count as spurious for the loss >= 1e-3 criterion only if it is that large)")
    if "diverged" in other:
        notes.append("diverged: the optimizer gave up after its step halvings")
    if "degenerate" in other:
        notes.append("degenerate: an eigenvalue within the tolerance of 0 (the second-order test cannot decide)")
    if "nonsmooth" in other:
        notes.append("nonsmooth: the loss is not twice differentiable at the endpoint")
    rows = report.rows
    if any((r.get("ended") or {}).get("global") for r in rows):
        stop = rows[0]["optimizer"].get("global_stop")
        notes.append(f"how runs ended: grad = the gradient criterion; global = stopped once the loss came within "
                     f"{stop:g} of the global value with monotone descent (a global minimum, and a final loss below "
                     f"1e-3, decided without the gradient criterion, which for n > k takes up to 10^6 steps)"
                     if stop is not None else "how runs ended: grad = the gradient criterion")
    if any(r.get("by_rule") for r in rows):
        notes.append("capped = stopped at max_steps; rule = of those, the runs whose Newton polish (pseudo-inverse "
                     "steps) reached a critical point within polish_radius: they take its class by its spectrum, and "
                     "count as stopped short for the verdicts")
    recorded = sum(r.get("descent_recorded") or 0 for r in rows)
    if recorded:
        monotone = sum(r.get("monotone") or 0 for r in rows)
        notes.append(f"monotone descent: in {monotone} of {recorded} runs no gradient step raised the loss beyond "
                     f"rounding (monotone_tol x max(1, F(start))); the early decisions rest on it")
    return notes


ANNIHILATION_COLUMNS = [("problem", "problem", "<"), ("family", "family", ">"), ("loss", "loss", ">"),
                        ("neuron", "split neuron", ">"), ("criterion", "2021 criterion", ">"),
                        ("agree", "(n+1)-Hessian agrees", "<"), ("bound", "certified a^T S a <=", ">"),
                        ("curvature", "curvature at alpha <=", ">"), ("status", "certificate", "<"),
                        ("descent", "descent from the split (n+1)", "<")]


def annihilation_rows(report: LandscapeReport) -> list[dict]:
    out = []
    for a in report.annihilations:
        summary = a["summary"]
        families = summary.get("descent", {}).get("families", [])
        descent = "; ".join(f"{f['class'].replace('_', ' ')} {format_loss(f['loss'])}: {f['count']}" for f in families)
        out.append({"problem": a["label"], "family": a["family"]["id"], "loss": format_loss(a["family"]["loss"]),
                    "neuron": summary["neuron"], "criterion": f"{summary['criterion']:.4g}",
                    "agree": "yes" if summary["agrees"] else "NO",
                    "bound": summary.get("splitting_curvature_upper", "-"),
                    "curvature": summary.get("curvature_upper", "-"),
                    "status": "verified claim" if a["status"] == "certified" else f"refused: {summary['refusal']}",
                    "descent": descent or "-"})
    return out


def annihilation_notes(report: LandscapeReport) -> list[str]:
    alphas = sorted({a["alpha"] for a in report.annihilations})
    return [f"each spurious minimum of width n split at alpha = {', '.join(alphas)}: its neuron w replaced by alpha w "
            "and (1 - alpha) w, a critical point of width n + 1 with the same loss; 2021 criterion: the smallest "
            "eigenvalue of H_ww - I/2 off w (Safran, Yehudai & Shamir), negative = the split is a saddle; the "
            "(n+1)-Hessian along the split direction gives the same number divided by alpha (1 - alpha); certified: "
            "ball arithmetic bounds a^T S a below 0 over a ball holding the exact critical point, so the split is not "
            "a local minimum for any alpha (spurious verify re-checks the certificate); descent: gradient descent of "
            "n + 1 from 8 points at distance 1e-3 from the split (+- the split direction, 6 random directions)"]


TRANSITION_COLUMNS = [("problem", "problem", "<"), ("minimum", "minimum", "<"), ("loss", "loss", ">"),
                      ("barrier", "barrier to global", ">"), ("saddle", "saddle loss", ">"), ("index", "index", ">"),
                      ("certified", "certified saddle loss in", "<")]


def lowest_barriers(network: dict) -> dict[int, tuple[float, dict] | None]:
    """For each minimum of a stored network but the target (minimum 0): the lowest barrier to the
    target over its saddles and the search (band) whose saddle sets it; None without a path."""
    from ..core.disconnectivity import disconnectivity, lowest_levels

    minima = network["minima"]
    edges = [(e["a"], e["b"], network["searches"][e["search"]]["saddle_loss"]) for e in network["edges"]]
    levels = lowest_levels(len(minima), disconnectivity([m["loss"] for m in minima], edges), 0)
    out = {}
    for i, level in levels.items():
        if i == 0:
            continue
        search = None if level is None else next(network["searches"][e["search"]] for e in network["edges"]
                                                 if network["searches"][e["search"]]["saddle_loss"] == level)
        out[i] = None if level is None else (level - minima[i]["loss"], search)
    return out


def transition_rows(report: LandscapeReport) -> list[dict]:
    out = []
    for t in report.transitions:
        minima = t["network"]["minima"]
        for i, found in lowest_barriers(t["network"]).items():
            row = {"problem": t["label"], "minimum": minima[i]["label"], "loss": format_loss(minima[i]["loss"]),
                   "barrier": "no path found", "saddle": "-", "index": "-", "certified": "-"}
            if found is not None:
                barrier, search = found
                row.update(barrier=f"{barrier:.4e}", saddle=f"{search['saddle_loss']:.10f}", index=search["morse_index"])
                if search["certified"]:
                    row["certified"] = (f"[{float(Fraction(search['loss_lower'])):.13f}, "
                                        f"{float(Fraction(search['loss_upper'])):.13f}], index {search['certified_index']}")
                elif search["certified"] is False:
                    row["certified"] = "refused"
            out.append(row)
    return out


TRANSITION_NOTES = ["spurious landscape explore: nudged elastic bands (climbing image) from each minimum family to the "
                    "global minimum's, highest image refined by eigenvector following to an index-1 saddle (index reduction "
                    "below a higher-index peak; gentlest ascent from minima no band joined), confirmed by descent along "
                    "+- its negative eigenvector; barrier: the lowest saddle level joining the minimum to the global minimum "
                    "over the saddles found, minus its loss; certified: ball arithmetic proves a critical point of that "
                    "index within the certificate's radius, its loss in the interval shown (exact rationals rounded)"]


def verdict_count_text(report: LandscapeReport) -> tuple[str, str]:
    """How many published fractions lie inside our intervals, of those compared ('7 of 8'), and what
    the others were ('1 inconclusive, 2 not tested'; '' when every one was compared)."""
    counts = report.verdict_counts()
    compared = counts[Verdict.REPRODUCED] + counts[Verdict.NOT_REPRODUCED]
    rest = [f"{counts[v]} {v}" for v in (Verdict.INCONCLUSIVE, Verdict.NOT_TESTED) if counts[v]]
    return f"{counts[Verdict.REPRODUCED]} of {compared}", ", ".join(rest)


FAMILY_COLUMNS = [("problem", "problem", "<"), ("id", "family", ">"), ("class", "class", "<"),
                  ("morse_index", "index", ">"), ("loss", "loss", ">"), ("lambda_min", "lambda_min", ">"),
                  ("lambda_max", "lambda_max", ">"), ("count", "runs", ">"), ("fraction", "% [95% CI]", ">"),
                  ("run", "representative", ">"), ("isotropy", "isotropy", "<"), ("certified", "certified", "<")]


def _certified(record: dict | None) -> str:
    """How `spurious study certify` ended for a family: '-' when not tried."""
    if record is None:
        return "-"
    summary = record["summary"]
    if record["status"] != "certified":
        return f"refused ({summary['refusal']})"
    return f"yes, r={float(summary['radius']):.0e}"


def isotropy_lines(report: LandscapeReport) -> list[str]:
    """Per problem: the isotropy types of its non-global families, each with its families and runs."""
    labels = {r["key"]: r["label"] for r in report.rows}
    lines = []
    for pkey, families in report.families.items():
        types: dict[str, list[int]] = {}
        for f in families:
            if f["class"] == "global_minimum" or not f.get("isotropy_type"):
                continue
            entry = types.setdefault(f["isotropy_type"], [0, 0])
            entry[0] += 1
            entry[1] += f["count"]
        if types:
            parts = [f"{t} {n} famil{'y' if n == 1 else 'ies'}, {runs} run{'' if runs == 1 else 's'}"
                     for t, (n, runs) in sorted(types.items(), key=lambda item: -item[1][1])]
            lines.append(f"{labels.get(pkey, pkey)}: " + "; ".join(parts))
    return lines


def family_rows(report: LandscapeReport, include_global: bool = False, limit: int | None = None) -> list[dict]:
    out = []
    labels = {r["key"]: r["label"] for r in report.rows}
    for pkey, families in report.families.items():
        for f in families:
            if f["class"] == "global_minimum" and not include_global:
                continue
            out.append({"problem": labels.get(pkey, pkey), "id": f["id"], "class": f["class"], "morse_index": f["morse_index"],
                        "loss": format_loss(f["loss"]),
                        "lambda_min": f"{f['lambda_min']:.3e}" if f["lambda_min"] is not None else "-",
                        "lambda_max": f"{f['lambda_max']:.3e}" if f["lambda_max"] is not None else "-",
                        "count": f["count"],
                        "fraction": f"{pct(f['fraction'])} [{pct(f['ci_low'])}, {pct(f['ci_high'])}]",
                        "run": f"seed {f['seed']} run {f['run']}",
                        "isotropy": f.get("isotropy") or "-",
                        "certified": _certified(f.get("certification"))})
    return out[:limit] if limit else out


def header_lines(report: StudyReport) -> list[str]:
    i = report.info
    state = "complete" if report.complete else ("running" if i["running"] else "incomplete")
    lines = [f"{report.key}: {report.title}" if report.title != report.key else report.key]
    if report.description:
        lines.append(report.description)
    lines.append(f"store {report.store_path}: {i['cells_done']}/{i['cells_total']} cells"
                 + (f", {i['runs_done']}/{i['runs_total']} runs" if i["runs_total"] else "")
                 + f" ({state}), spurious {i['version']}, updated {fmt_time(i['updated'])}")
    return lines


@functools.singledispatch
def format_report(report: StudyReport, max_families: int = 30) -> str:
    raise TypeError(f"no text form for {type(report).__name__}")


@format_report.register
def _(report: ExperimentStudyReport, max_families: int = 30) -> str:
    return "\n".join(header_lines(report) + [""] + experiment_lines(report))


@format_report.register
def _(report: LandscapeReport, max_families: int = 30) -> str:
    lines = header_lines(report)
    settings = _settings_line(report.rows)
    if settings:
        lines.append(settings)
    if report.published:
        lines.append(f"published: {report.published['source']} ({report.published['runs']} runs per problem, "
                     f"{report.published['criterion']})")
    rows = landscape_rows(report)
    lines.append("")
    lines += format_table(rows, measured_columns(report))
    lines.append("; ".join(measured_notes(measured_columns(report), rows)))
    lines += ["", "endpoints by class:"]
    lines += format_table(rows, CLASS_COLUMNS)
    lines.append("; ".join(class_notes(report)))
    if any(report.verdict_counts().values()):
        inside, rest = verdict_count_text(report)
        lines.append(f"published fractions inside our 95% intervals: {inside}" + (f"; {rest}" if rest else ""))
        lines += ["  " + text for text in report.explain_disagreements() + report.explain_unconverged()]
    if report.annihilations:
        lines += ["", "one more neuron (spurious study annihilate):"]
        lines += format_table(annihilation_rows(report), ANNIHILATION_COLUMNS)
        lines.append("; ".join(annihilation_notes(report)))
    if report.transitions:
        lines += ["", "transition states (spurious landscape explore):"]
        lines += format_table(transition_rows(report), TRANSITION_COLUMNS)
        lines.append("; ".join(TRANSITION_NOTES))
    fams = family_rows(report)
    if fams:
        lines += ["", "families of endpoints with loss above the global value (representatives' Hessians):"]
        lines += format_table(fams[:max_families], FAMILY_COLUMNS)
        if len(fams) > max_families:
            lines.append(f"... {len(fams) - max_families} more (see the HTML report or Store.families_frame)")
    isotropies = isotropy_lines(report)
    if isotropies:
        lines += ["", "isotropy types of the families above the global value (the subgroup of S_n x S_k fixing "
                      "each representative; k symbolic):"]
        lines += ["  " + line for line in isotropies]
    return "\n".join(lines)


def experiment_lines(report: ExperimentStudyReport) -> list[str]:
    if report.experiment is None:
        return [f"no evaluation: {report.experiment_error}"]
    e = report.experiment
    lines = ["claim: " + e.claim, "", f"verdict: {e.verdict}: {e.summary}"]
    if e.table:
        keys = list(e.table[0])
        rows = [{k: _short(k, v) for k, v in r.items()} for r in e.table]
        lines += [""] + format_table(rows, [(k, k, ">") for k in keys])
    return lines


def _short(column: str, value) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)[:40]
    return format_cell(column, value)


def format_status(studies: list[dict], path: str) -> str:
    if not studies:
        return f"{path}: no studies yet"
    rows = []
    for s in studies:
        if s["complete"]:
            state = "complete"
        elif s["running"]:
            state = f"running (pid {s['lock']['pid']})"
        else:
            state = "stopped: spurious study resume " + s["key"]
        rows.append({"study": s["key"], "kind": s["kind"], "cells": f"{s['cells_done']}/{s['cells_total']}",
                     "runs": f"{s['runs_done']}/{s['runs_total']}" if s["runs_total"] else "-",
                     "updated": fmt_time(s["updated"]), "state": state})
    cols = [("study", "study", "<"), ("kind", "kind", "<"), ("cells", "cells", ">"), ("runs", "runs", ">"),
            ("updated", "updated", "<"), ("state", "state", "<")]
    return "\n".join([f"store {path}"] + format_table(rows, cols))
