"""Reports from the store alone: verdicts against published numbers, tables, PNG/SVG plots, HTML
(rendered in a real headless browser when Debian's chromium is installed)."""
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from spurious.cli import main
from spurious.experiments import Verdict
from spurious.report.html import render_html, write_report
from spurious.report.plots import report_figures
from spurious.report.study import build_report
from spurious.report.tables import format_report
from spurious.store import Store
from spurious.studies import load_study, plan
from spurious.studies.kinds import merge_families

from study_fakes import landscape_result

CHROMIUM = "/usr/bin/chromium"
#: made-up outcome per (k, n): (runs ending at the spurious minimum, its loss, saddles) out of 100
OUTCOME = {(7, 7): (5, 0.023203, 0), (8, 8): (12, 0.021508, 3), (9, 9): (60, 0.0201, 0)}


def fill(store: Store, config, upto: int | None = None):
    cells = plan(config)[:upto]
    store.register(config.record(), config.problems(), plan(config))
    token = store.acquire(config.key)
    counts = {}
    problems = {p["key"]: p for p in store.problems(config.key)}
    for cell in cells:
        k, n = cell["params"]["teacher"], cell["params"]["student"]
        spurious, loss, saddles = OUTCOME.get((k, n), (0, 0.02, 0))
        part = spurious // 2 if cell["first_run"] == 0 else spurious - spurious // 2
        sad = saddles // 2 if cell["first_run"] == 0 else saddles - saddles // 2
        result = landscape_result(cell, spurious=part, spurious_loss=loss, saddles=sad)
        counts[cell["problem_key"]] = counts.get(cell["problem_key"], 0) + 1
        families = None
        problem = problems[cell["problem_key"]]
        if counts[cell["problem_key"]] == problem["cells_total"]:
            fams = store.cell_families(config.key, cell["problem_key"]) + [
                {**f, "cell": cell["index"], "local": f["id"], "seed": cell["seed"]} for f in result["families"]]
            families = merge_families(problem["name"], problem["params"], problem["tolerances"], fams,
                                      problem["runs_total"])
        store.commit_cell(config.key, token, cell, result, families)
    store.release(config.key, token)


@pytest.fixture(scope="module")
def quick_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    store = Store(folder / "q.db")
    fill(store, load_study("safran-shamir-2018", size="quick"))
    yield store
    store.close()


def test_verdicts_per_published_number(quick_store):
    report = build_report(quick_store, "safran-shamir-2018")  # the bare name finds the stored size
    assert report.key == "safran-shamir-2018@quick" and report.complete
    rows = {(r["params"]["teacher"], r["params"]["student"]): r for r in report.rows}
    assert len(rows) == 8
    assert rows[(7, 7)]["spurious"]["fraction"] == 0.05 and rows[(7, 7)]["verdict"] is Verdict.REPRODUCED
    assert rows[(7, 7)]["verdict_evidence"] == "inside"
    assert rows[(9, 9)]["spurious"]["fraction"] == 0.6 and rows[(9, 9)]["verdict"] is Verdict.NOT_REPRODUCED
    assert rows[(9, 9)]["verdict_evidence"] == "outside"
    assert rows[(9, 9)]["published_fraction"] == pytest.approx(0.218)
    assert rows[(8, 8)]["saddles"]["count"] == 3 and rows[(8, 8)]["minima"]["count"] == 12
    assert rows[(8, 8)]["spurious"]["count"] == 15  # the criterion counts both; the classes are kept apart
    assert rows[(8, 8)]["n_spurious_minimum_families"] == 1 and rows[(8, 8)]["n_saddle_families"] == 1
    assert (rows[(7, 7)]["min_loss_verdict"], rows[(7, 7)]["min_loss_evidence"]) == (Verdict.REPRODUCED, "match")
    assert (rows[(9, 9)]["min_loss_verdict"], rows[(9, 9)]["min_loss_evidence"]) == (Verdict.NOT_REPRODUCED, "higher")
    # no run ended at a spurious point: there is no lowest spurious loss to compare
    assert rows[(6, 6)]["min_loss_verdict"] is Verdict.NOT_TESTED
    assert rows[(6, 6)]["min_loss_evidence"] == "not observed in 100 runs"
    assert rows[(6, 7)]["published_fraction"] == 0.0 and rows[(6, 7)]["verdict"] is Verdict.REPRODUCED
    verdicts = [v for v in report.verdicts() if v["what"] == "fraction"]
    assert sum(v["verdict"] is Verdict.REPRODUCED for v in verdicts) == 7 and len(verdicts) == 8
    assert report.verdict_counts() == {Verdict.REPRODUCED: 7, Verdict.NOT_REPRODUCED: 1, Verdict.NOT_TESTED: 0,
                                       Verdict.INCONCLUSIVE: 0}
    for r in report.rows:  # Wilson intervals contain the measured fraction
        s = r["spurious"]
        assert s["ci_low"] <= s["fraction"] <= s["ci_high"]


def test_terminal_report_shows_measured_against_published(quick_store, capsys):
    assert main(["report", "safran-shamir-2018@quick", "--store", quick_store.path]) == 0
    out = capsys.readouterr().out
    assert "published fractions inside our 95% intervals: 7 of 8" in out
    line = next(l for l in out.splitlines() if l.startswith("k=9 n=9 ") and "not reproduced (outside)" in l)
    assert "60.0 [50.2, 69.1]" in line and "21.8" in line
    assert "spurious minima %" in out and "saddles %" in out
    assert "saddle" in out and "0.023203" in out


def test_disagreements_are_explained_from_the_counts(quick_store):
    report = build_report(quick_store, "safran-shamir-2018@quick")
    rows = {(r["params"]["teacher"], r["params"]["student"]): r for r in report.rows}
    assert rows[(9, 9)]["published_p"] < 1e-6  # 60 of 100 against 218 of 1000
    assert rows[(7, 7)]["published_p"] > 0.5  # 5 of 100 against 55 of 1000
    (other,) = rows[(9, 9)]["replications"]
    assert other["runs"] == 500 and other["fraction"] == pytest.approx(0.222)
    assert other["p_ours"] < 1e-6 and other["p_published"] > 0.5  # 218/1000 and 111/500 agree
    assert rows[(6, 7)]["replications"] == []  # the 2021 paper has no n = k + 1 numbers
    (text, chance) = report.explain_disagreements()
    assert text.startswith("k=9 n=9: published 21.8% lies outside") and "a real difference" in text
    assert "Safran, Yehudai & Shamir 2021 measured 22.2%" in text and "(different)" in text
    assert chance.startswith("By chance alone, 1 or more of 8") and f"{1 - 0.95 ** 8:.2g}" in chance


def test_plots_and_self_contained_html(quick_store, tmp_path):
    report = build_report(quick_store, "safran-shamir-2018@quick")
    figures = report_figures(report)
    assert [stem for stem, _ in figures] == ["fractions", "family_losses", "spectra"]
    path = write_report(report, str(tmp_path))
    page = open(path).read()
    assert page.count("<svg") == 3 and "<img" not in page and "http" not in page.split("<main>")[0]
    assert "7 of 8 published fractions lie inside our 95% intervals" in page
    assert "Fisher&#x27;s exact test gives" in page or "Fisher's exact test gives" in page
    assert '<td class="l v-not-reproduced">not reproduced (outside)</td>' in page
    assert '<td class="l v-reproduced">reproduced (inside)</td>' in page
    for stem, _ in figures:
        for ext in ("png", "svg"):
            file = os.path.join(tmp_path, "safran-shamir-2018-quick", f"{stem}.{ext}")
            assert os.path.getsize(file) > 5000
    import matplotlib.image

    image = matplotlib.image.imread(os.path.join(tmp_path, "safran-shamir-2018-quick", "fractions.png"))
    assert image.shape[0] > 300 and np.mean(image[..., :3] < 0.9) > 0.02  # something drawn


def test_partial_study_report(tmp_path):
    with Store(tmp_path / "p.db") as store:
        fill(store, load_study("safran-shamir-2018", size="quick"), upto=5)
        report = build_report(store, "safran-shamir-2018")
        assert not report.complete and report.info["cells_done"] == 5
        rows = {(r["params"]["teacher"], r["params"]["student"]): r for r in report.rows}
        assert rows[(7, 7)]["runs_done"] == 50 and rows[(7, 7)]["families_partial"]
        assert rows[(9, 9)]["runs_done"] == 0 and rows[(9, 9)]["verdict"] is Verdict.NOT_TESTED
        assert rows[(9, 9)]["verdict_evidence"] == "no runs yet"
        text = format_report(report)
        assert "(incomplete)" in text and "50/100" in text
        assert "<svg" in render_html(report)


def _screenshot(html_path: str, png: str):
    profile = tempfile.mkdtemp()
    try:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,2000",
                        "file://" + os.path.abspath(html_path)], capture_output=True, timeout=120, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_html_renders_in_a_headless_browser(quick_store, tmp_path):
    import matplotlib.image

    assert main(["report", "safran-shamir-2018", "--store", quick_store.path, "--html", str(tmp_path)]) == 0
    html_path = os.path.join(tmp_path, "safran-shamir-2018-quick.html")
    png = str(tmp_path / "shot.png")
    _screenshot(html_path, png)
    image = matplotlib.image.imread(png)[..., :3]
    assert image.shape[:2] == (2000, 1200)
    dark = np.mean(image.sum(axis=2) < 1.5)  # text, lines
    colours = len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert dark > 0.01 and colours > 100, (dark, colours)
    # the figures are drawn: the lower half (plots) is not blank either
    assert np.mean(image[1000:].sum(axis=2) < 2.9) > 0.02


# -- how losses, classes and captions are shown ------------------------------------------------------------
def test_losses_show_round_off_as_zero_and_keep_stored_values(quick_store):
    from spurious.report.numbers import format_cell, format_loss
    from spurious.report.summary import format_run_summary
    from spurious.report.tables import family_rows

    assert format_loss(-8.9e-16) == "0" and format_loss(3e-17) == "0" and format_loss(0.0) == "0"
    assert format_loss(0.023203) == "0.023203" and format_loss(3.2e-5) == "3.2e-05" and format_loss(None) == "-"
    assert format_loss(-8.9e-16, digits=4) == "0" and format_loss(1.23456e-3, digits=4) == "0.001235"
    assert format_cell("final loss max", -8.9e-16) == "0" and format_cell("excess", -8.9e-16) == "-8.9e-16"
    report = build_report(quick_store, "safran-shamir-2018@quick")
    key = report.rows[0]["key"]
    family = report.families[key][0]
    assert family["class"] == "global_minimum"
    family["loss"] = -8.9e-16  # as a closed-form population loss can come out at a global minimum
    (row,) = [r for r in family_rows(report, include_global=True)
              if r["id"] == family["id"] and r["problem"] == report.rows[0]["label"]]
    assert row["loss"] == "0" and family["loss"] == -8.9e-16  # shown as 0, kept as computed
    share = {"count": 0, "fraction": 0.0, "ci_low": 0.0, "ci_high": 0.5}
    summary = {"problem": {"name": "p"}, "runs": 2, "seed": 0, "device": "cpu",
               "seconds": {"optimize": 0.1, "analyze": 0.1}, "steps": {"mean": 10}, "counts": {"global_minimum": 2},
               "spurious_minima": share, "saddles": share, "spurious_loss_1e-3": share,
               "families": [{"id": 0, "class": "global_minimum", "morse_index": 0, "loss": -8.9e-16,
                             "lambda_min": 0.1, "lambda_max": 2.0, "count": 2, "fraction": 1.0, "ci_low": 0.3,
                             "ci_high": 1.0}]}
    family_line = format_run_summary(summary).splitlines()[-1]
    assert family_line.split()[:4] == ["0", "global_minimum", "0", "0"]


def _lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_class_plots_tell_saddles_from_minima_by_more_than_colour(quick_store):
    from matplotlib.colors import to_rgba

    report = build_report(quick_store, "safran-shamir-2018@quick")
    figures = dict(report_figures(report))
    left, right = figures["fractions"].axes
    lines = _lines_by_label(right)
    names = [label[:-len(": saddles")] for label in lines if label.endswith(": saddles")]
    assert len(names) >= 2
    for name in names:
        minima, saddles = lines[f"{name}: spurious minima"], lines[f"{name}: saddles"]
        assert minima.get_color() == saddles.get_color()  # one colour per series: the class is told otherwise
        assert minima.get_marker() != saddles.get_marker()
        assert minima.get_linestyle() != saddles.get_linestyle()
        assert to_rgba(saddles.get_markerfacecolor()) == to_rgba("white")  # open against filled
        assert to_rgba(minima.get_markerfacecolor()) == to_rgba(minima.get_color())
    ax = figures["family_losses"].axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    minima, saddles = by_label["spurious minima"], by_label["saddles"]
    assert minima.get_paths()[0].vertices.shape != saddles.get_paths()[0].vertices.shape  # circle vs triangle
    assert tuple(saddles.get_facecolor()[0][:3]) == (1, 1, 1) != tuple(minima.get_facecolor()[0][:3])


def test_spectra_plot_fits_the_page_and_its_labels_do_not_overlap(quick_store):
    import copy

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from spurious.report.plots import spectra_figure

    report = build_report(quick_store, "safran-shamir-2018@quick")
    # forty families (the plot's limit): the widest the figure gets
    families = [f for fams in report.families.values() for f in fams if f["class"] != "global_minimum"]
    for i in range(40 - len(families)):
        extra = copy.deepcopy(families[i % len(families)])
        extra["id"] += 10 + i
        report.families[extra["problem_key"]].append(extra)
    fig = spectra_figure(report)
    content_px = 1180 - 2 * 28  # html.CSS: main's max-width less its padding
    assert fig.get_figwidth() * 96 <= content_px  # the SVG's inches are 96 px: shown at full size
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert len(labels) == 40 and all(t.get_fontsize() >= 8 for t in labels)
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    assert all(fig.bbox.contains(b.x0, b.y0) for b in boxes)  # nothing cut off at the edge


def test_captions_describe_only_what_is_on_the_page(tmp_path, quick_store):
    from spurious.report.plots import figure_caption
    from spurious.report.tables import measured_columns

    text = open(os.path.join(os.path.dirname(__file__), "..", "spurious", "studies", "safran-shamir-2018.toml")).read()
    unpublished = tmp_path / "unpublished.toml"
    unpublished.write_text(text.replace('published = "safran-shamir-2018"\n', "").replace(
        'name = "safran-shamir-2018"', 'name = "unpublished"'))
    stems = ("fractions", "family_losses", "spectra")
    with Store(tmp_path / "u.db") as store:
        fill(store, load_study(str(unpublished), size="quick"))
        report = build_report(store, "unpublished@quick")
    assert "published" not in {key for key, _, _ in measured_columns(report)}
    page = render_html(report, figures=[]) + " ".join(figure_caption(stem, report) for stem in stems)
    out = format_report(report)
    for words in ("verdict:", "Verdict:", "Fisher", "crosses", "published lowest spurious loss", "not_converged:"):
        assert words not in page and words not in out, words
    assert "filled circles: spurious minima" in page and "open triangles: saddles" in page
    # the published study's page explains its verdict columns and the published values it draws
    report = build_report(quick_store, "safran-shamir-2018@quick")
    page = render_html(report, figures=[]) + " ".join(figure_caption(stem, report) for stem in stems)
    assert "verdict: reproduced when the published value lies inside our interval" in page
    assert "crosses: the published values" in page and "dashes: published lowest spurious loss" in page
