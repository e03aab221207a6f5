"""A study's report, built from the store alone (plain data; tables, plots and HTML render it).

For a landscape study, one row per problem of the grid: runs done, counts per class, the share of runs
ending with loss >= 1e-3 (the papers' criterion), the shares of spurious minima and of saddles
(reported separately), the families, and, where the study names published numbers, the published
value and a verdict (spurious.experiments.base.Verdict): reproduced when the published fraction lies in
our 95% Wilson interval ("inside"), not reproduced when it does not ("outside"), not tested while the
problem has no runs, inconclusive when the runs that stopped short at loss >= 1e-3 decide the
comparison (counted either way, they would give different verdicts; runs stopped short below 1e-3 are
settled, since descent only lowers the loss). Because a
published fraction is itself a finite sample, each comparison also carries Fisher's exact two-sample
p-value, and a disagreement is set beside the same authors' other measurement of that number when
they published one (`explain_disagreements`).
For an experiment study, the experiment's own report (claim, verdict, table, figures), evaluated on
the stored cell results.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import SpuriousError
from ..experiments.base import Verdict, describe_norms
from ..stats import chance_of_misses, share, two_sample_p_value
from ..store import Store
from ..studies.config import grid_points

SPURIOUS_LOSS = 1e-3
#: a measured lowest spurious loss "matches" a published one printed to 6 decimals within this
MIN_LOSS_MATCH = 2e-6
#: two-sample p-values below this call a difference real rather than sampling noise
SIGNIFICANCE = 0.05
#: endpoint classes of runs whose optimizer did not converge (stopped by the step cap, or gave up)
UNCONVERGED = ("not_converged", "diverged")
#: how runs whose optimizer stopped short end (a run stopped at max_steps may still get a class by the
#: polish rule: it stopped short all the same)
STOPPED_SHORT = ("not_converged", "diverged")


@dataclass
class StudyReport:
    """What every study's report has; the kind of study decides the rest (a subclass per kind, and
    tables, plots and HTML dispatch on the type)."""
    key: str
    title: str
    description: str
    store_path: str
    info: dict  # version, created, updated, cells/runs done and total, settings
    config: dict

    kind = ""  # the stored study kind this report type renders

    @property
    def complete(self) -> bool:
        return self.info["cells_done"] >= self.info["cells_total"]


@dataclass
class ExperimentStudyReport(StudyReport):
    experiment: Any = None  # ExperimentReport
    experiment_error: str | None = None

    kind = "experiment"

    @classmethod
    def build(cls, store: Store, common: dict) -> "ExperimentStudyReport":
        report = cls(**common)
        _experiment(store, report, report.config)
        return report


@dataclass
class LandscapeReport(StudyReport):
    rows: list[dict] = field(default_factory=list)  # one per problem of the grid
    families: dict[str, list[dict]] = field(default_factory=dict)  # problem key -> families
    #: `spurious study annihilate` outcomes: one per (problem, family, alpha), in the grid's order
    annihilations: list[dict] = field(default_factory=list)
    #: `spurious landscape explore` networks: one per explored problem, {"problem_key", "label", "network"}
    transitions: list[dict] = field(default_factory=list)
    published: dict | None = None
    x_axis: str | None = None  # the grid axis the plots put on x (None: the problem's position)

    kind = "landscape"

    @classmethod
    def build(cls, store: Store, common: dict) -> "LandscapeReport":
        report = cls(**common, published=common["config"].get("published"))
        _landscape(store, report)
        return report

    def verdicts(self) -> list[dict]:
        """One entry per published number compared (fractions and lowest spurious losses): its Verdict
        and the evidence in a word or two ("inside", "outside", "no runs yet", ...)."""
        out = []
        for row in self.rows:
            if row.get("published_fraction") is not None:
                out.append({"what": "fraction", "problem": row["label"], "published": row["published_fraction"],
                            "measured": row["spurious"]["fraction"], "ci_low": row["spurious"]["ci_low"],
                            "ci_high": row["spurious"]["ci_high"], "verdict": row["verdict"],
                            "evidence": row["verdict_evidence"]})
            if row.get("published_min_loss") is not None:
                out.append({"what": "lowest spurious loss", "problem": row["label"],
                            "published": row["published_min_loss"], "measured": row["min_spurious_loss"],
                            "verdict": row["min_loss_verdict"], "evidence": row["min_loss_evidence"]})
        return out

    def verdict_counts(self) -> dict[Verdict, int]:
        """How many published fractions got each kind of verdict."""
        counts = {v: 0 for v in Verdict}
        for v in self.verdicts():
            if v["what"] == "fraction":
                counts[v["verdict"]] += 1
        return counts

    def explain_unconverged(self) -> list[str]:
        """One sentence per compared problem whose verdict is inconclusive: how many runs did not
        converge, their gradient norms and losses."""
        lines = []
        for r in self.rows:
            if Verdict.INCONCLUSIVE not in (r["verdict"], r["min_loss_verdict"]):
                continue
            u = r["unconverged"]
            lines.append(f"{r['label']}: {u['runs']} of {r['runs_done']} runs did not converge (stopped by the step "
                         f"cap or diverged; {describe_norms(u['grad_norms'])}), {u['spurious']} of them at loss >= "
                         f"{SPURIOUS_LOSS:g}, which may still fall below it: "
                         + "; ".join(f"{what} {r[key]}: {r[evidence]}" for what, key, evidence in (
                             ("fraction", "verdict", "verdict_evidence"),
                             ("lowest spurious loss", "min_loss_verdict", "min_loss_evidence"))
                                     if r[key] is Verdict.INCONCLUSIVE) + ".")
        return lines

    def explain_disagreements(self) -> list[str]:
        """One sentence per published fraction outside our interval, from the stored counts alone:
        whether the difference survives a two-sample test, and what the other published measurement
        of the same number (if any) says; last, how likely that many misses are by chance."""
        lines = []
        compared = [r for r in self.rows if r["verdict"] in (Verdict.REPRODUCED, Verdict.NOT_REPRODUCED)]
        outside = [r for r in compared if r["verdict"] is Verdict.NOT_REPRODUCED]
        for r in outside:
            s = r["spurious"]
            text = (f"{r['label']}: published {pct(r['published_fraction'])}% lies outside our "
                    f"[{pct(s['ci_low'])}, {pct(s['ci_high'])}] ({s['count']} of {s['total']} runs). "
                    f"As two samples (theirs {r['published_runs']} runs), Fisher's exact test gives "
                    f"p = {r['published_p']:.2g}: "
                    + ("a real difference." if r["published_p"] < SIGNIFICANCE
                       else "no significant difference; the published value carries sampling error too."))
            for other in r["replications"]:
                text += (f" {other['source']} measured {pct(other['fraction'])}% ({other['runs']} runs; "
                         f"{other['protocol']}): against ours p = {other['p_ours']:.2g}"
                         + (" (consistent)" if other["p_ours"] >= SIGNIFICANCE else " (different)")
                         + f", against the published value p = {other['p_published']:.2g}"
                         + (" (the authors' two measurements disagree)." if other["p_published"] < SIGNIFICANCE
                            else " (consistent)."))
            lines.append(text)
        if outside:
            lines.append(f"By chance alone, {len(outside)} or more of {len(compared)} correct values fall outside "
                         f"their 95% intervals with probability {chance_of_misses(len(outside), len(compared)):.2g}.")
        return lines


#: the report type of each stored study kind
REPORT_KINDS = {kind.kind: kind for kind in (LandscapeReport, ExperimentStudyReport)}


def _symbols(spec: str | None) -> dict[str, str]:
    """The papers' letters for a problem's parameters (k, n, d), where its registry entry gives them."""
    from ..problems import entry

    try:
        found = entry(spec) if spec else None
    except SpuriousError:  # a user's file that is not here: plain names
        return {}
    return {p.name: p.symbol for p in found.parameters + found.shorthands if p.symbol} if found else {}


def _grid_points(config: dict) -> list[dict]:
    """The grid point (swept values, shorthands included) of each problem, in the plan's order."""
    return grid_points(config.get("grid", {}))


def _series(point: dict, x_axis: str | None, varying: set[str], symbols: dict[str, str]) -> str:
    parts = [f"{symbols.get(a, a)} = {point[a]}" for a in point if a in varying and a != x_axis]
    return ", ".join(parts) or "all"


def _label(params: dict, symbols: dict[str, str]) -> str:
    return " ".join(f"{symbols.get(k, k)}={v}" for k, v in params.items())


def _published_key(published: dict, params: dict) -> str | None:
    """Where a problem's numbers are in the published tables; None where they do not apply to it."""
    for a, b in published.get("equal", []):
        if params.get(a, params.get(b)) != params.get(b):
            return None
    names = published.get("key", [])
    if not names or any(n not in params for n in names):
        return None
    return ",".join(str(params[n]) for n in names)


def _inside(published: float, s: dict) -> bool:
    return s["ci_low"] - 1e-12 <= published <= s["ci_high"] + 1e-12


def _fraction_verdict(published: float | None, s: dict, unconverged: dict) -> tuple[Verdict | None, str]:
    """The verdict on a published fraction and its evidence in words (None: nothing published)."""
    if published is None:
        return None, ""
    total = s["total"]
    if not total:
        return Verdict.NOT_TESTED, "no runs yet"
    inside = _inside(published, s)
    # Runs that stopped short below 1e-3 are settled (descent only lowers the loss); runs that stopped
    # short at loss >= 1e-3 count as spurious, yet may still have fallen below it: inconclusive when
    # they decide the verdict.
    if unconverged["spurious"] and _inside(published, share(s["count"] - unconverged["spurious"], total)) != inside:
        return Verdict.INCONCLUSIVE, f"decided by {unconverged['spurious']} unconverged runs"
    return (Verdict.REPRODUCED, "inside") if inside else (Verdict.NOT_REPRODUCED, "outside")


def _min_loss_verdict(published: float | None, measured: float | None, total: int,
                      unconverged: dict) -> tuple[Verdict | None, str]:
    """The verdict on a published lowest spurious loss; measured: the lowest loss >= 1e-3 among the
    converged runs."""
    if published is None:
        return None, ""
    if not total:
        return Verdict.NOT_TESTED, "no runs yet"
    # only runs stopped short at loss >= 1e-3 can still end at a spurious minimum, below their loss now
    if unconverged["spurious"] and (measured is None or measured - published > MIN_LOSS_MATCH):
        return Verdict.INCONCLUSIVE, (f"{unconverged['spurious']} of {total} runs stopped short at loss >= "
                                      f"{SPURIOUS_LOSS:g}")
    if measured is None:
        return Verdict.NOT_TESTED, f"not observed in {total} runs"
    if abs(measured - published) <= MIN_LOSS_MATCH:
        return Verdict.REPRODUCED, "match"
    return Verdict.NOT_REPRODUCED, "higher" if measured > published else "lower"


def _unconverged_runs(store: Store, key: str, problem_key: str) -> tuple[dict, float | None]:
    """The runs of a problem whose optimizer did not converge (stopped by the step cap, also those the
    polish rule classified, or diverged): how many, how many of them end with loss >= 1e-3 (or a
    non-finite loss), their gradient norms; and the lowest loss >= 1e-3 among the converged runs (None
    if there is none)."""
    marks = ", ".join("?" * len(UNCONVERGED))
    stopped = ", ".join("?" * len(STOPPED_SHORT))
    rows = store.db.execute(
        f"SELECT r.loss, r.grad_norm FROM runs r JOIN studies s ON s.id = r.study_id "
        f"WHERE s.key = ? AND r.problem_key = ? AND (r.class IN ({marks}) OR r.status IN ({stopped}))",
        (key, problem_key, *UNCONVERGED, *STOPPED_SHORT)).fetchall()
    lowest = store.db.execute(
        f"SELECT MIN(r.loss) FROM runs r JOIN studies s ON s.id = r.study_id WHERE s.key = ? AND r.problem_key = ? "
        f"AND r.loss >= ? AND r.class NOT IN ({marks}) AND r.status NOT IN ({stopped})",
        (key, problem_key, SPURIOUS_LOSS, *UNCONVERGED, *STOPPED_SHORT)).fetchone()[0]
    spurious = sum(1 for loss, _ in rows if loss is None or not math.isfinite(loss) or loss >= SPURIOUS_LOSS)
    return {"runs": len(rows), "spurious": spurious, "grad_norms": [g for _, g in rows]}, lowest


def build_report(store: Store, study: str) -> StudyReport:
    key = store.resolve(study)
    row = store.study(key)
    config = row["config"]
    info = {k: row[k] for k in ("version", "created", "updated", "cells_done", "cells_total", "runs_done",
                                "runs_total", "running")}
    common = dict(key=key, title=row["title"] or config.get("title") or key,
                  description=config.get("description", ""), store_path=store.path, info=info, config=config)
    try:
        kind = REPORT_KINDS[row["kind"]]
    except KeyError:
        raise SpuriousError(f"study {key!r} is of kind {row['kind']!r}, which this version of spurious "
                            f"cannot report (known: {', '.join(REPORT_KINDS)})") from None
    return kind.build(store, common)


def _experiment(store: Store, report: ExperimentStudyReport, config: dict):
    from ..studies.experiment_catalogue import find_experiment

    name = config["experiment"]
    experiment = find_experiment(name)
    if experiment is None:
        report.experiment_error = f"experiment {name!r} is not installed in this version of spurious"
        return
    results = store.experiment_results(report.key)
    if not results and not report.complete:  # a complete study without cells has nothing to test: evaluated
        report.experiment_error = "no cells finished yet"
        return
    try:
        report.experiment = experiment.evaluate(config["experiment_config"], results)
    except Exception as error:  # a partial study may not be evaluable yet
        if report.complete:
            raise
        report.experiment_error = (f"cannot evaluate {len(results)} of {report.info['cells_total']} cells yet "
                                   f"({type(error).__name__}: {error})")


def _isotropies(problem: dict, families: list[dict]) -> dict:
    """{family id: (isotropy, type)} of the stored representatives, where the problem's group names one."""
    from ..analyze import Tolerances, isotropy_of
    from ..problems import build_shared

    if not families:
        return {}
    try:
        landscape = build_shared(problem["name"], problem["params"])
    except SpuriousError:
        return {}
    if getattr(landscape.symmetry, "isotropy", None) is None:
        return {}
    tolerances = Tolerances(**problem["tolerances"])
    out = {}
    for f in families:
        if f.get("representative") is None:
            continue
        found = isotropy_of(landscape, f["representative"], tolerances)
        if found is not None:
            out[f["id"]] = (found.name, found.type)
    return out


def _landscape(store: Store, report: LandscapeReport):
    from ..studies.kinds import merge_families

    published = report.published or {}
    problems = store.problem_counts(report.key)
    points = _grid_points(report.config)
    axes = list(points[0]) if points else []
    values = {a: {repr(p[a]) for p in points} for a in axes}
    varying = {a for a in axes if len(values[a]) > 1}
    # the x axis of the plots: the first swept axis, when it is numeric
    x_axis = next((a for a in axes if all(isinstance(p[a], (int, float)) and not isinstance(p[a], bool)
                                          for p in points)), None)
    symbols = _symbols(report.config.get("problem"))
    report.x_axis = x_axis
    certifications = store.certifications(report.key)
    annihilations = store.annihilations(report.key)
    landscapes = store.landscapes(report.key)
    for p in problems:
        params = p["params"]
        point = points[p["position"]] if p["position"] < len(points) else {}
        total = p["runs_done"]
        counts = p["counts"]
        if p["cells_done"] >= p["cells_total"]:
            families = store.families(report.key, p["key"])
            partial = False
        elif total:
            families = merge_families(p["name"], p["params"], p["tolerances"],
                                      store.cell_families(report.key, p["key"]), total)
            partial = True
        else:
            families, partial = [], True
        named = _isotropies(p, families)
        for f in families:
            f["problem_key"] = p["key"]
            f["certification"] = None if partial else certifications.get((p["key"], f["id"]))
            f["isotropy"], f["isotropy_type"] = named.get(f["id"], ("", ""))
        report.families[p["key"]] = families
        if not partial and p["key"] in landscapes:
            report.transitions.append({"problem_key": p["key"], "label": _label(params, symbols),
                                       "network": landscapes[p["key"]]["network"]})
        if not partial:
            by_id = {f["id"]: f for f in families}
            for (pkey, family_id, alpha), record in sorted(annihilations.items(), key=lambda item: item[0][1:]):
                if pkey == p["key"] and family_id in by_id:
                    report.annihilations.append({"problem_key": pkey, "label": _label(params, symbols),
                                                 "family": by_id[family_id], "alpha": alpha, **record})
        spurious_families = [f for f in families if f["class"] != "global_minimum" and f["loss"] is not None
                             and f["loss"] >= SPURIOUS_LOSS]
        unconverged, min_loss = _unconverged_runs(store, report.key, p["key"])
        pub_key = _published_key(published, params)
        pub_fraction = published.get("fraction", {}).get(pub_key)
        pub_families = published.get("families", {}).get(pub_key)
        pub_min = published.get("min_loss", {}).get(pub_key)
        spurious = share(p["loss_ge_1e-3"], total)
        fraction_verdict, fraction_evidence = _fraction_verdict(pub_fraction, spurious, unconverged)
        min_loss_verdict, min_loss_evidence = _min_loss_verdict(pub_min, min_loss, total, unconverged)
        pub_runs = published.get("runs")
        published_p, replications = None, []
        if pub_fraction is not None and total and pub_runs:
            pub_count = round(pub_fraction * pub_runs)
            published_p = two_sample_p_value(spurious["count"], total, pub_count, pub_runs)
            for other in published.get("replications", []):
                value = other["fraction"].get(pub_key)
                if value is None:
                    continue
                count = round(value * other["runs"])
                replications.append({
                    "source": other["source"], "protocol": other["protocol"], "runs": other["runs"],
                    "fraction": value,
                    "p_ours": two_sample_p_value(spurious["count"], total, count, other["runs"]),
                    "p_published": two_sample_p_value(pub_count, pub_runs, count, other["runs"])})
        minima = share(counts.get("spurious_minimum", 0) + counts.get("local_minimum", 0), total)
        global_minima = share(counts.get("global_minimum", 0), total)
        saddles = share(counts.get("saddle", 0), total)
        other = {c: n for c, n in counts.items()
                 if c not in ("global_minimum", "spurious_minimum", "local_minimum", "saddle")}
        report.rows.append({
            "key": p["key"], "params": params, "label": _label(params, symbols),
            "series": _series(point, x_axis, varying, symbols),
            "x": point.get(x_axis, p["position"]) if x_axis else p["position"], "runs_done": total, "runs_total": p["runs_total"],
            "cells_done": p["cells_done"], "cells_total": p["cells_total"], "counts": counts,
            "optimizer": p["optimizer"], "tolerances": p["tolerances"],
            "spurious": spurious, "global": global_minima, "minima": minima, "saddles": saddles, "other": other,
            "not_converged_max_loss": p["not_converged_max_loss"],
            "ended": p["ended"], "by_rule": p["by_rule"], "monotone": p["monotone"],
            "descent_recorded": p["descent_recorded"],
            "families_partial": partial, "n_families": len(families),
            "n_spurious_families": len(spurious_families),
            "n_spurious_minimum_families": sum(f["class"] in ("spurious_minimum", "local_minimum")
                                               for f in spurious_families),
            "n_saddle_families": sum(f["class"] == "saddle" for f in spurious_families),
            "min_spurious_loss": min_loss,
            "unconverged": unconverged,
            "published_fraction": pub_fraction, "verdict": fraction_verdict, "verdict_evidence": fraction_evidence,
            "published_runs": pub_runs, "published_p": published_p, "replications": replications,
            "published_families": pub_families,
            "published_min_loss": pub_min, "min_loss_verdict": min_loss_verdict, "min_loss_evidence": min_loss_evidence,
        })


def fmt_time(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.{digits}f}"
