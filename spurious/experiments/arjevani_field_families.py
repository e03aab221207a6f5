"""Symmetric families of spurious minima continued in k (Arjevani & Field, arXiv 2003.10576, 2107.10370).

Experiment (ours): at each k0 of `search` (k = n = d, V = I), gradient descent from `runs` random starts
(the 2018 protocol); every family above the global value gets its isotropy; a family fixed by a
diagonal group Delta(S_p1 x ... x S_pr) is solved in its fixed-point space (spurious.fixed_points) and
continued in k: down to the smallest k where it still exists (at least `smallest`), and up through
every k to 20, then steps of at most 25% to `largest`, the largest block growing and the others fixed.
At each k of `report` it gets its loss (Arb), every distinct Hessian eigenvalue with its multiplicity
(isotypic blocks) and the Morse index; at each k of `certify` a certificate (spurious.verify_symmetric),
produced and re-checked. One branch found from several k0 (same type, same loss at a common k) counts once.

Predictions (relu-teacher-student.md, "Structure of the spurious minima"): (1) the spurious minima found
by multistart for 6 <= k <= 20 are fixed by diagonal subgroups; (2) the loss of the Delta(S_{k-1} x S_1)
family decays like a/k with a ~ 0.3 (tested: the extrapolated k x loss within `a_tolerance` of 0.3, the
extrapolation's own error estimate below it); (3) the Delta(S_{k-2} x S_2) family is a spurious minimum
for every k >= 9 computed; (4) the Delta(S_{k-1} x S_1) family is a certified spurious minimum at every k
of `certify`.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..core.errors import SpuriousError
from . import register
from ._memory import FLOAT, analysis_bytes, count, multistart_bytes
from .base import (SIZES, Between, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel, Positive,
                   Seed, Series, judge)

MAIN_TYPE = "Δ(S_{k−1} × S_1)"
SECOND_TYPE = "Δ(S_{k−2} × S_2)"
LARGEST = 10 ** 6


class ArjevaniFieldFamilies(Experiment):
    name = "arjevani-field-families"
    title = "Symmetric families of spurious minima, continued in k (Arjevani & Field 2020-2022)"
    claim = ("The spurious minima that gradient descent finds for the ReLU teacher-student loss (V = I, n = d = k) are "
             "fixed by diagonal subgroups of S_k x S_k such as Delta(S_{k-1} x S_1), and each such family continues "
             "in k: the Delta(S_{k-1} x S_1) minima have loss ~ a/k with a ~ 0.3, and Delta(S_{k-2} x S_2) gives "
             "spurious minima for k >= 9. Prediction: every spurious family found at k = 6..20 has a diagonal "
             "isotropy; continued in its fixed-point space to large k, the first family's k x loss tends to about "
             "0.3 and it stays a (certified) spurious minimum; the second is a minimum at every k >= 9.")

    def default_config(self, size: str = "cpu") -> dict:
        base = {"seed": 0, "smallest": 6, "a_expected": 0.3, "a_tolerance": 0.05}
        if size == "quick":
            return dict(base, size=size, search=[10], runs=40, largest=200, report=[10, 20, 100, 200],
                        certify=[20, 200])
        if size == "cpu":
            return dict(base, size=size, search=[8, 12, 16, 20], runs=200, largest=10000,
                        report=[6, 8, 10, 12, 14, 16, 18, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
                        certify=[20, 100, 1000, 10000])
        if size == "gpu":
            return dict(base, size=size, search=[6, 8, 10, 12, 14, 16, 18, 20], runs=1000, largest=100000,
                        report=[6, 10, 20, 50, 100, 1000, 10000, 100000], certify=[20, 100, 1000, 10000, 100000])
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "seed": Seed(), "runs": Count(),
        "search": ListOf(Count(minimum=4, maximum=60, why="the multistart's dense analysis")),
        "smallest": Count(minimum=3), "largest": Count(minimum=4, maximum=LARGEST, why="the continuation's steps"),
        "report": ListOf(Count(minimum=3, maximum=LARGEST)), "certify": ListOf(Count(minimum=3, maximum=LARGEST),
                                                                                empty=True),
        "a_expected": Positive(), "a_tolerance": Between(0, 1, low_open=True),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        for key in ("report", "certify"):
            beyond = [k for k in config[key] if k > config["largest"]]
            if beyond:
                raise SpuriousError(f"{key} has k = {beyond[0]} above largest = {config['largest']}")
        if config["smallest"] > min(config["search"]):
            raise SpuriousError(f"smallest = {config['smallest']} is above the smallest search k {min(config['search'])}")
        return [{"teacher": k0, "runs": config["runs"], "seed": config["seed"], "smallest": config["smallest"],
                 "largest": config["largest"], "report": sorted(config["report"]), "certify": sorted(config["certify"])}
                for k0 in config["search"]]

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        k = cell["teacher"]
        parameters = k * k
        # the engine's own reserve, the state of every run (params, start, gradient, ... 16 floats each),
        # and the analysis of the endpoints; the fixed-point work afterwards is independent of k
        need = multistart_bytes(parameters, 4 * k * k) + cell["runs"] * FLOAT * 16 * parameters \
            + analysis_bytes(parameters, cell["runs"], 4 * k * k)
        return need, f"{cell['runs']} starts of {count(parameters)} parameters and dense Hessians at k = {k}"

    def run_cell(self, cell: dict) -> dict:
        import spurious as sp
        from .. import fixed_points as fp
        from .. import verify_symmetric as vs
        from ..certify import CertificationRefused, certify_symmetric
        from ..problems.symmetry import coordinate_isotropy

        started = time.perf_counter()
        k0 = cell["teacher"]
        result = sp.run(sp.ReLUTeacherStudent(teacher=k0, student=k0), runs=cell["runs"], seed=cell["seed"])
        families = []
        for family in result.analysis.families:
            if family.cls == "global_minimum":
                continue
            found = coordinate_isotropy(family.representative, k0, result.analysis.tolerances.family)
            entry = {"found_at": k0, "runs": family.count, "class": family.cls, "loss": float(family.loss),
                     "isotropy": found.name, "type": found.type, "diagonal": found.diagonal and max(found.sizes) > 1}
            families.append(entry)
            if not entry["diagonal"]:
                continue
            values, _ = vs.from_matrix(found.sizes, family.representative[np.ix_(found.rows, found.columns)])
            point = fp.newton(found.sizes, values)
            small = tuple(found.sizes[1:])
            down = [k for k in range(k0 - 1, cell["smallest"] - 1, -1) if k - sum(small) >= max(small, default=1)]
            below, entry["lost_below"] = _follow(fp, point, down, small)
            above, entry["lost_above"] = _follow(fp, point, fp.ladder(k0, cell["report"] + cell["certify"] + [cell["largest"]]), small)
            branch = below + [point] + above
            entry["rows"] = [self._row(fp, vs, p, cell, certify_symmetric, CertificationRefused)
                             for p in sorted(branch, key=lambda p: p.k) if p.k in cell["report"] or p.k <= 20]
        return {"classes": result.analysis.counts(), "families": families, "seconds": time.perf_counter() - started}

    @staticmethod
    def _row(fp, vs, point, cell, certify_symmetric, refused) -> dict:
        precise = fp.high_precision_newton(point)
        spectrum = fp.symmetric_spectrum(precise.sizes, precise.values)
        row = {"k": point.k, "loss": fp.precise_loss(precise.sizes, precise.values), "lambda_min": spectrum.smallest,
               "morse_index": spectrum.morse_index, "distinct": len(spectrum.distinct())}
        if point.k in cell["report"]:
            row["eigenvalues"] = [[float(v), m] for v, m in spectrum.distinct()]
        if point.k in cell["certify"]:
            began = time.perf_counter()
            try:
                certificate = certify_symmetric(precise)
                produced = time.perf_counter() - began
                began = time.perf_counter()
                verified = vs.verify_certificate(certificate)
                row["certificate"] = {"status": "verified", "kind": verified.kind, "index": verified.morse_index,
                                      "spurious": verified.spurious, "loss_lower": verified.loss_lower,
                                      "loss_upper": verified.loss_upper, "eigenvalue_lower": verified.eigenvalue_lower,
                                      "produce_seconds": produced, "verify_seconds": time.perf_counter() - began}
            except (refused, vs.InvalidCertificate) as error:
                row["certificate"] = {"status": "refused", "why": str(error)}
        return row

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        branches, found = _branches(results)
        spurious_families = [f for _, r in results for f in r["families"]]
        undiagonal = [f for f in spurious_families if not f["diagonal"]]
        main = [b for b in branches if b["type"] == MAIN_TYPE]
        main = min(main, key=lambda b: _loss_at(b, 20) or math.inf) if main else None
        second = [b for b in branches if b["type"] == SECOND_TYPE]
        second = min(second, key=lambda b: _loss_at(b, 20) or math.inf) if second else None

        from ..fixed_points import extrapolate_loss

        checks, notes = [], []
        checks.append(Check("every spurious family found by multistart has a diagonal isotropy",
                            cases=len(spurious_families), against=len(undiagonal), unit="families",
                            evidence="not diagonal: " + ", ".join(f"{f['isotropy']} (k = {f['found_at']})"
                                                                 for f in undiagonal),
                            missing="no spurious family among the runs"))
        limit = None
        if main:
            rows = main["rows"]
            limit = extrapolate_loss([r["k"] for r in rows], [r["loss"] for r in rows])
        if limit:
            off = abs(limit["limit"] - config["a_expected"]) > config["a_tolerance"] or limit["error"] > config["a_tolerance"]
            checks.append(Check(f"k x loss of {MAIN_TYPE} tends to {config['a_expected']} +- {config['a_tolerance']}",
                                cases=1, against=int(off), unit="extrapolations",
                                evidence=f"k x loss -> {limit['limit']:.6f} +- {limit['error']:.1e}"))
        else:
            checks.append(Check(f"k x loss of {MAIN_TYPE} tends to {config['a_expected']}", cases=0, unit="extrapolations",
                                missing=f"{MAIN_TYPE} not found, or continued over too few k to extrapolate"))
        second_rows = [r for r in (second["rows"] if second else []) if r["k"] >= 9]
        not_minima = [r["k"] for r in second_rows if r["morse_index"] != 0]
        checks.append(Check(f"{SECOND_TYPE} is a spurious minimum at every k >= 9", cases=len(second_rows),
                            against=len(not_minima), unit="values of k",
                            evidence=f"not a minimum at k = {not_minima}",
                            missing=f"{SECOND_TYPE} not found by the multistart"))
        certified = [r for r in (main["rows"] if main else []) if "certificate" in r]
        failed = [r["k"] for r in certified if not (r["certificate"]["status"] == "verified" and
                                                  r["certificate"]["kind"] == "minimum" and r["certificate"]["spurious"])]
        checks.append(Check(f"{MAIN_TYPE} is a certified spurious minimum at every k of certify", cases=len(certified),
                            against=len(failed), unit="certificates", evidence=f"not certified at k = {failed}",
                            missing="no certificate asked for (certify is empty) or the family was not found"))
        verdict, decided = judge(checks)

        table = []
        for b in branches:
            for r in b["rows"]:
                if r["k"] not in config["report"] and "certificate" not in r:
                    continue
                c = r.get("certificate")
                table.append({"type": b["type"], "found at k": ", ".join(str(k) for k in b["found_at"]),
                              "k": r["k"], "loss": r["loss"], "k x loss": float(r["loss"]) * r["k"],
                              "lambda_min": r["lambda_min"], "index": r["morse_index"], "distinct": r["distinct"],
                              "certificate": "-" if c is None else (
                                  f"{c['kind']}, loss in [{c['loss_lower']}, {c['loss_upper']}], eigenvalues >= "
                                  f"{c['eigenvalue_lower']} ({c['produce_seconds']:.2f} + {c['verify_seconds']:.2f} s)"
                                  if c["status"] == "verified" else f"refused: {c['why']}")})
        for b in branches:
            rows = b["rows"]
            kinds = [(r["k"], r["morse_index"] == 0) for r in rows]
            changes = [f"{'minimum' if now else 'saddle'} from k = {k}" for (k, now), (_, before)
                       in zip(kinds[1:], kinds[:-1]) if now != before]
            # a family whose loss does not decay like 1/k (k x loss grows tenfold over the range) is
            # extrapolated in its loss itself
            decays = float(rows[-1]["loss"]) * rows[-1]["k"] < 10 * float(rows[0]["loss"]) * rows[0]["k"]
            fit = extrapolate_loss([r["k"] for r in rows], [r["loss"] for r in rows], times_k=decays)
            notes.append(f"{b['type']} (loss {float(_loss_at(b, 20) or rows[-1]['loss']):.6f} at k = "
                         f"{20 if _loss_at(b, 20) else rows[-1]['k']}; found at k = {', '.join(map(str, b['found_at']))}, "
                         f"{b['runs']} run{'' if b['runs'] == 1 else 's'}): k = {rows[0]['k']}..{rows[-1]['k']}, "
                         f"{'a minimum' if kinds[0][1] else 'a saddle'} at k = {rows[0]['k']}"
                         + (", " + ", ".join(changes) if changes else ", no change")
                         + (f"; {fit['of']} -> {fit['limit']:.5f} +- {fit['error']:.0e}" if fit else "")
                         + (f"; lost below k = {b['lost_below'] + 1}" if b.get("lost_below") else "")
                         + (f"; lost at k = {b['lost_above']}" if b.get("lost_above") else ""))
        counts = "; ".join(f"k = {k0}: " + ", ".join(f"{t} x{n}" for t, n in sorted(kinds.items(), key=lambda i: -i[1]))
                           for k0, kinds in sorted(found.items()))
        summary = ((decided + " " if decided else "") + f"Types found (families per search k): {counts}. "
                   + " ".join(f"{n}." for n in notes)).strip()
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=table,
                                figures=_figures(branches, main))


def _follow(fp, point, ks, small) -> tuple[list, int | None]:
    """The family continued through ks in order (up or down), and the k where Newton lost it (None)."""
    out = []
    for k in ks:
        try:
            # each step extrapolates from the last two points (continue_in_k), one k at a time so a loss
            # of the family stops here and keeps what came before
            last = out[-1] if out else point
            before = out[-2] if len(out) >= 2 else (point if out else None)
            out += fp.continue_in_k(last, [k], small, previous=before)
        except SpuriousError:
            return out, k
    return out, None


def _loss_at(branch, k):
    return next((float(r["loss"]) for r in branch["rows"] if r["k"] == k), None)


def _branches(results):
    """One branch per (type, loss at the smallest common k): the same family found at several k0 once."""
    branches, found = [], {}
    for cell, result in sorted(results, key=lambda item: item[0]["teacher"]):
        for f in result["families"]:
            found.setdefault(cell["teacher"], {})
            found[cell["teacher"]][f["type"]] = found[cell["teacher"]].get(f["type"], 0) + 1
            if not f.get("rows"):
                continue
            rows = {r["k"]: r for r in f["rows"]}
            same = None
            for b in branches:
                common = sorted(set(rows) & {r["k"] for r in b["rows"]})
                if b["type"] == f["type"] and common and abs(float(rows[common[0]]["loss"])
                                                             - _loss_at(b, common[0])) < 1e-9:
                    same = b
                    break
            if same is None:
                branches.append({"type": f["type"], "found_at": [cell["teacher"]], "runs": f["runs"],
                                 "rows": f["rows"], "lost_below": f.get("lost_below"), "lost_above": f.get("lost_above")})
            else:
                same["found_at"].append(cell["teacher"])
                same["runs"] += f["runs"]
                if len(f["rows"]) > len(same["rows"]):
                    same["rows"] = f["rows"]
    branches.sort(key=lambda b: (_loss_at(b, 20) or math.inf))
    return branches, found


def _figures(branches, main) -> list[Figure]:
    scaled, smallest = [], []
    for i, b in enumerate(branches):
        ks = [r["k"] for r in b["rows"]]
        marker, style = (".", "-") if i < 10 else ("x", "--")  # ten colours, then the same with crosses
        scaled.append(Series(ks, [float(r["loss"]) * r["k"] for r in b["rows"]], b["type"], color=f"C{i % 10}",
                             marker=marker, style=style))
        smallest.append(Series(ks, [r["lambda_min"] for r in b["rows"]], b["type"], color=f"C{i % 10}",
                               marker=marker, style=style))
    figures = [Figure("families_in_k", (
        # log y: the families whose loss decays like 1/k sit near constants, the others grow like k
        Panel(tuple(scaled), title="k x loss along each family", xlabel="k", ylabel="k x loss", xscale="log",
              yscale="log"),
        Panel(tuple(smallest) + (Series([], [0.0], None, kind="hline", color="k", width=0.8),),
              title="smallest Hessian eigenvalue", xlabel="k", ylabel="lambda_min", xscale="log", yscale="symlog",
              linthresh=1e-3)))]
    if main:
        rows = [r for r in main["rows"] if r.get("eigenvalues")]
        series = []
        if rows:
            count_each = max(len(r["eigenvalues"]) for r in rows)
            for j in range(count_each):
                ks = [r["k"] for r in rows if j < len(r["eigenvalues"])]
                values = [r["eigenvalues"][j][0] for r in rows if j < len(r["eigenvalues"])]
                series.append(Series(ks, values, None, color=f"C{j % 10}", marker="."))
            figures.append(Figure("main_family_spectrum", (Panel(
                tuple(series), title=f"every distinct Hessian eigenvalue of {MAIN_TYPE}", xlabel="k",
                ylabel="eigenvalue", xscale="log", yscale="log", legend=False),)))
    return figures


EXPERIMENT = register(ArjevaniFieldFamilies())
