"""Say what was tested: each of the four verdict kinds from a real small configuration (real cells, the
experiments' own evaluation, no stand-ins), printed in words with its evidence, and the published-table
verdict of a landscape study whose runs did not converge. (How losses and the class plots are shown:
tests/test_report.py.)"""
from __future__ import annotations

import pytest

from spurious.cli import main
from spurious.core.jsonable import canonical_json
from spurious.experiments import Check, Verdict, judge, load_all
from spurious.report.html import render_html
from spurious.report.study import ExperimentStudyReport
from spurious.report.tables import format_report

#: width-scaling-2021 at its quick settings on one seed, one width per N: m*(16) = 4, m*(32) = 8, so the
#: fitted slope of log m* against log N is 1 (the claim: below 2)
SMALL = {"samples": [16, 32], "widths": {"16": [4], "32": [8]}, "seeds": 1}
#: the same grid with N = 16 alone: a slope needs two N, so nothing of the claim is in the grid
ONE_N = {"samples": [16], "widths": {"16": [4]}, "seeds": 1}
#: width 2 at N = 32: gradient descent is still descending after the 500 steps, so m*(32) is unknown
NARROW = {"samples": [16, 32], "widths": {"16": [4], "32": [2]}, "seeds": 1}


@pytest.fixture(scope="module")
def width_scaling():
    """The experiment and the results of the cells a configuration above needs (each computed once)."""
    experiment = load_all()["width-scaling-2021"]
    computed = {}

    def results(override: dict):
        config = {**experiment.default_config("quick"), **override}
        out = []
        for cell in experiment.cells(config):
            key = canonical_json(cell)
            if key not in computed:
                computed[key] = experiment.run_cell(cell)
            out.append((cell, computed[key]))
        return config, out

    return experiment, results


def _printed(config: dict, report) -> tuple[str, str]:
    """The terminal report and the HTML page of an experiment study with this evaluation."""
    study = ExperimentStudyReport(key="w@quick", title="w", description="", store_path="s.db",
                                  info={"version": "test", "created": None, "updated": None, "cells_done": 1,
                                        "cells_total": 1, "runs_done": 0, "runs_total": 0, "running": False},
                                  config={"experiment": "width-scaling-2021", "experiment_config": config},
                                  experiment=report)
    return format_report(study), render_html(study, figures=[])


def test_reproduced(width_scaling):
    experiment, results = width_scaling
    config, cells = results(SMALL)
    report = experiment.evaluate(config, cells)
    assert report.verdict is Verdict.REPRODUCED, report.summary
    printed, page = _printed(config, report)
    assert f"verdict: reproduced: {report.summary}" in printed and '<div class="box pass"><b>Reproduced.</b>' in page
    assert "N=16: 4" in report.summary and "N=32: 8" in report.summary
    assert "fitted slope of log m* vs log N = 1.000" in report.summary


def test_not_reproduced_with_the_evidence_against(width_scaling):
    """The same cells judged against a claim they contradict (slope below 0.5): the evidence is the
    measured slope."""
    experiment, results = width_scaling
    config, cells = results({**SMALL, "max_slope": 0.5})
    assert [c for c, _ in cells] == [c for c, _ in results(SMALL)[1]]  # the same runs, another claim
    report = experiment.evaluate(config, cells)
    assert report.verdict is Verdict.NOT_REPRODUCED, report.summary
    assert report.summary.startswith("not reproduced: m*(N) grows like N^s with fitted slope s < 0.5: "
                                     "2 of 2 sample sizes N against it (slope 1.000")
    printed, page = _printed(config, report)
    assert f"verdict: not reproduced: {report.summary}" in printed
    assert '<div class="box fail"><b>Not reproduced.</b>' in page


def test_not_tested_says_what_the_grid_lacks(width_scaling):
    """An override that leaves nothing of the claim in the grid: not tested, saying what is missing,
    printed and on the page so, never 'NOT REPRODUCED ... 0/0 runs'."""
    experiment, results = width_scaling
    config, cells = results(ONE_N)
    report = experiment.evaluate(config, cells)
    assert report.verdict is Verdict.NOT_TESTED, report.summary
    assert "a slope needs two or more N, the grid has N = 16" in report.summary
    printed, page = _printed(config, report)
    assert f"verdict: not tested: {report.summary}" in printed
    assert "0/0" not in printed and "not reproduced" not in printed.lower()
    assert '<div class="box neutral"><b>Not tested.</b>' in page
    # every built-in experiment, given a grid with no cells at all: not tested, naming what is missing
    built_in = {name: each for name, each in load_all().items() if type(each).__module__.startswith("spurious.")}
    assert len(built_in) == 9
    for name, each in built_in.items():
        empty = each.evaluate(each.default_config("quick"), [])
        assert empty.verdict is Verdict.NOT_TESTED, name
        assert "the grid has no case of it" in empty.summary, (name, empty.summary)
        assert not any(word in empty.summary for word in ("0/0", "nan", "FAIL")), (name, empty.summary)


def test_inconclusive_with_the_gradient_norms(width_scaling):
    """No width of N = 32 reached the tolerance, and its run was still descending: m*(32) is unknown,
    which is no evidence against the claim."""
    experiment, results = width_scaling
    config, cells = results(NARROW)
    (narrow,) = [r for c, r in cells if c["samples"] == 32]
    assert narrow["success"] == [False] and narrow["final_grad_norm"][0] > 1e-3
    report = experiment.evaluate(config, cells)
    assert report.verdict is Verdict.INCONCLUSIVE, report.summary
    assert report.summary.startswith("inconclusive: m*(N) grows like N^s with fitted slope s < 2: 1 of 2 sample "
                                     f"sizes N fail it where the optimizer had not converged (gradient norm "
                                     f"{narrow['final_grad_norm'][0]:.1e}; no width reached")
    assert "at N = 32, so m* is unknown there" in report.summary
    printed, page = _printed(config, report)
    assert f"verdict: inconclusive: {report.summary}" in printed
    assert '<div class="box neutral"><b>Inconclusive.</b>' in page


def test_judge_orders_the_kinds():
    """Evidence against wins over non-convergence, which wins over a prediction the grid missed."""
    held = Check("a", cases=3)
    against = Check("b", cases=3, against=1, evidence="x = 2")
    moving = Check("c", cases=3, unconverged=2, gradient_norms=[0.1, 0.3])
    missing = Check("d", cases=0, missing="no d")
    assert judge([held])[0] is Verdict.REPRODUCED and judge([held]) == (Verdict.REPRODUCED, "")
    assert judge([held, missing])[0] is Verdict.NOT_TESTED
    assert judge([missing, missing])[0] is Verdict.NOT_TESTED and judge([])[0] is Verdict.NOT_TESTED
    assert judge([held, missing, moving])[0] is Verdict.INCONCLUSIVE
    verdict, words = judge([missing, moving, against, held])
    assert verdict is Verdict.NOT_REPRODUCED
    assert words == ("not reproduced: b: 1 of 3 runs against it (x = 2); inconclusive: c: 2 of 3 runs fail it where "
                     "the optimizer had not converged (gradient norms max 3.0e-01, median 2.0e-01); not tested: d "
                     "(the grid has no case of it: no d).")
    with pytest.raises(Exception, match="2 against and 2 unconverged out of 3"):
        Check("e", cases=3, against=2, unconverged=2)


LANDSCAPE = """
[study]
name = "capped"
problem = "relu-teacher-student"
runs = 4
runs_per_cell = 4
seeds = [0]
published = "safran-shamir-2018"
[grid]
teacher = [6]
extra = [0]
[optimizer]
max_steps = 1
"""


def test_landscape_verdict_is_inconclusive_when_the_runs_did_not_converge(tmp_path, capsys):
    """One gradient step per run: every run ends at loss >= 1e-3 only because it was stopped, so the
    published 0.3% is neither reproduced nor contradicted (it used to read 'outside')."""
    path = tmp_path / "capped.toml"
    path.write_text(LANDSCAPE)
    assert main(["study", "run", str(path), "--store", str(tmp_path / "s.db"), "--html", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("k=6 n=6 "))
    assert "100.0 [51.0, 100.0]" in line and "inconclusive (decided by 4 unconverged runs)" in line
    assert "inconclusive (4 of 4 runs stopped short at loss >= 0.001)" in line
    assert "outside" not in out and "published fractions inside our 95% intervals: 0 of 0; 1 inconclusive" in out
    assert "k=6 n=6: 4 of 4 runs did not converge (stopped by the step cap or diverged; gradient norms max " in out
    page = (tmp_path / "capped.html").read_text()
    assert '<td class="l v-inconclusive">inconclusive (decided by 4 unconverged runs)</td>' in page


def test_verdict_words_are_the_kinds():
    assert [str(v) for v in Verdict] == ["reproduced", "not reproduced", "not tested", "inconclusive"]
    assert [f"{v}" for v in Verdict] == [v.value for v in Verdict]
