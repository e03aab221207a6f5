"""`spurious landscape explore` on a small stored study (k = 8): the barrier line with its certified
saddle, the network in the store and its DataFrame, resuming, and bad input refused in one line with
nothing stored changed."""
import contextlib
import hashlib
import io
from fractions import Fraction

import pytest

from spurious.cli import main
from spurious.store import Store

STUDY = """
[study]
name = "k8-landscape"
problem = "relu-teacher-student"
runs = 60
runs_per_cell = 60
seeds = [0]
[grid]
teacher = [{teachers}]
extra = [0]
[optimizer]
protocol = "2018"
"""


def call(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("landscape")
    (folder / "k8.toml").write_text(STUDY.format(teachers="8"))
    store = folder / "k8.db"
    assert call("study", "run", folder / "k8.toml", "--store", store, "--no-report", "-q")[0] == 0
    code, out, err = call("landscape", "explore", "k8-landscape", "--store", store, "--out", folder / "graphs")
    return folder, store, code, out, err


def test_exploring_a_study_prints_each_barrier_with_its_certified_saddle(explored):
    folder, store, code, out, err = explored
    assert code == 0, err
    assert "barrier to the global minimum" in out and "saddle certified, index 1, loss in [" in out
    assert (folder / "graphs" / "relu-teacher-student_teacher=8,student=8_.png").stat().st_size > 0
    with Store(store, create=False, read_only=True) as opened:
        frame = opened.transitions_frame("k8-landscape")
    assert len(frame) >= 1 and set(frame["morse_index"]) == {1} and frame["certified"].all()
    assert (frame["barrier_a"] > 0).all() and (frame["barrier_b"] > 0).all()
    for low, value, high in zip(frame["loss_lower"], frame["saddle_loss"], frame["loss_upper"]):
        assert Fraction(low) <= Fraction(value) <= Fraction(high)  # exact rationals of the certificate


def test_a_second_exploration_skips_what_is_stored(explored):
    _, store, _, _, _ = explored
    before = digest(store)
    code, out, _ = call("landscape", "explore", "k8-landscape", "--store", store)
    assert code == 0 and "0 problems explored, 1 already in the store" in out
    assert digest(store) == before


@pytest.mark.parametrize("argv, message", [
    (["--images", "2"], "at least 3 images"),
    (["--images", "-4"], "at least 3 images"),
    (["--single-ended", "-1"], "ascent modes must be a positive integer"),
    (["--study", "nope"], "no study"),
])
def test_bad_input_is_refused_in_one_line_and_the_store_is_unchanged(explored, argv, message):
    _, store, _, _, _ = explored
    before = digest(store)
    study = argv[1] if argv[0] == "--study" else "k8-landscape"
    options = [] if argv[0] == "--study" else argv
    code, out, err = call("landscape", "explore", study, "--store", store, *options)
    assert code == 2 and err.count("\n") == 1 and err.startswith("spurious: error: ") and message in err, err
    assert digest(store) == before


def test_a_study_without_spurious_minima_has_nothing_to_explore(tmp_path):
    (tmp_path / "k6.toml").write_text(STUDY.format(teachers="6").replace("runs = 60", "runs = 8")
                                      .replace("runs_per_cell = 60", "runs_per_cell = 8"))
    store = tmp_path / "k6.db"
    assert call("study", "run", tmp_path / "k6.toml", "--store", store, "--no-report", "-q")[0] == 0
    before = digest(store)
    code, _, err = call("landscape", "explore", "k8-landscape", "--store", store)
    assert code == 2 and "nothing to explore" in err, err
    assert digest(store) == before


def test_the_study_report_shows_the_barriers_and_the_graphs(explored):
    folder, store, _, out, _ = explored
    code, text, err = call("report", "--store", store, "--html", folder / "html")
    assert code == 0, err
    assert "transition states (spurious landscape explore):" in text
    barrier = next(line for line in out.splitlines() if "barrier to the global minimum" in line)
    value = barrier.split("barrier to the global minimum ")[1].split()[0]
    assert value in text  # the report's barrier is the exploration's
    page = (folder / "html" / "k8-landscape.html").read_text()
    assert "Transition states and barriers" in page and "disconnectivity graph" in page and page.count("<svg") >= 2
