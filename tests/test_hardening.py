"""Bad input, bad paths, foreign files and signals, as a new user meets them: one line and exit 2 before
any work, nothing that is not ours written, stores and outputs unchanged, clean exits on signals.

The property test drives `spurious.cli.main` in-process (a traceback is an exception out of main);
the signal tests start the command as a user does, in a subprocess."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spurious.cli import main
from spurious.store import Store

TINY = """
[study]
name = "tiny"
problem = "relu-teacher-student"
runs = 4
runs_per_cell = 2
seeds = [0]
[params]
teacher = 2
student = 2
[optimizer]
max_steps = 2000
"""


def call(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def tree_digest(folder) -> dict[str, str]:
    """{relative path: sha256} of every file under folder."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def one_error_line(code: int, err: str):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("spurious: error: "), err


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder with what a user has lying around: a spurious store holding a finished study, another
    program's SQLite database, an empty file, a text file, a sub-folder, a study file."""
    folder = tmp_path_factory.mktemp("place")
    (folder / "tiny.toml").write_text(TINY)
    code, _, err = call("study", "run", folder / "tiny.toml", "--store", folder / "ours.db", "--no-report", "-q")
    assert code == 0, err
    foreign = sqlite3.connect(folder / "foreign.db")
    foreign.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    foreign.execute("INSERT INTO contacts VALUES ('ada', '555')")
    foreign.commit()
    foreign.close()
    (folder / "empty.db").write_bytes(b"")
    (folder / "notes.txt").write_text("not a database\n")
    (folder / "adir").mkdir()
    return folder


def read_only_folder(tmp_path):
    """A folder this process cannot write into, or None: a chmod'ed folder for a normal user; for root
    (whom permissions do not stop) /sys, where making a file fails, if it does here."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        with open("/sys/spurious-probe", "w"):
            pass
    except OSError:
        return "/sys"
    os.unlink("/sys/spurious-probe")
    return None


# -- the property: any malformed command line -----------------------------------------------------
BAD_NUMBERS = ["-1", "0", "-0", "1e3", "nan", "inf", "abc", "", "99999999999999999999999", "1000000000000", "3.5", "0x10"]
NAMES = ["relu-teacher-student", "no-such-problem", "tiny", "tiny@nope", "safran-shamir-2018", "", "x:y", "a.py:B"]


def _paths(place):
    return [place / "adir", place / "missing" / "deeper" / "f.json", place / "foreign.db", place / "empty.db",
            place / "notes.txt", "/proc/spurious/x", "", place / "ours.db"]


def commands(place):
    paths = st.sampled_from(_paths(place)).map(str)
    numbers = st.sampled_from(BAD_NUMBERS)
    names = st.sampled_from(NAMES)
    anything = st.one_of(paths, numbers, names, st.text(max_size=8))
    store_reader = st.sampled_from(["status", "report", "export"])

    def option(name, values):
        return st.tuples(st.just(name), values).map(list)

    # every subcommand with at least one malformed part; the others drawn from good and bad values
    run_like = st.tuples(
        st.sampled_from([["run"], ["certify", "--from-run", "-o", str(place / "adir" / "c.json")],
                         ["annihilate", "--runs", "5", "-o", str(place / "adir" / "a.json")]]),
        st.lists(st.one_of(option("--runs", numbers), option("--seed", numbers), option("-k", numbers),
                           option("-n", numbers), option("--step", numbers), option("--max-steps", numbers),
                           option("--problem", names), option("--param", st.sampled_from(["teacher=-3", "x=1", "=",
                                                                                           "student=1e400"])),
                           option("--json", paths), option("--device", st.sampled_from(["tpu", "", "gpu0"])),
                           option("--protocol", st.sampled_from(["1999", ""])), option("--bogus", anything),
                           option("--alpha", st.sampled_from(["1.5", "0", "nan", "-1", "x", "0.3333333333333333333333333333333"]))),
                 min_size=1, max_size=4)).map(lambda t: t[0] + sum(t[1], []))
    study_like = st.tuples(
        st.sampled_from([["study", "run"], ["study", "resume"], ["study", "certify"], ["study", "annihilate"],
                         ["study", "status"],
                         ["report"], ["export", "tiny", "--format", "json"], ["study", "list", "extra"]]),
        st.lists(st.one_of(names, paths), max_size=1),
        st.lists(st.one_of(option("--store", paths), option("--html", paths), option("--out", paths),
                           option("--size", names), option("--executor", st.sampled_from(["ray2", ""])),
                           option("--workers", numbers), option("--classes", names),
                           option("--format", st.sampled_from(["xml", ""]))),
                 min_size=1, max_size=3)).map(lambda t: t[0] + t[1] + sum(t[2], []))
    readers = st.tuples(store_reader, option("--store", paths)).map(
        lambda t: ([t[0]] if t[0] != "export" else ["export", "tiny", "--format", "csv", "--out",
                                                    str(place / "missing" / "x")]) + t[1])
    plain = st.lists(anything, min_size=1, max_size=3)
    return st.one_of(run_like, study_like, readers, plain)


def _with(key: str, value: str) -> str:
    """TINY with `key = value` under [study] (replacing the key's line, or added)."""
    lines = [line for line in TINY.splitlines() if not line.startswith(f"{key} = ")]
    at = lines.index("[study]") + 1
    return "\n".join(lines[:at] + [f"{key} = {value}"] + lines[at:]) + "\n"


def study_files():
    """Broken TOML, wrong types, absurd numbers, unknown names."""
    broken = st.sampled_from(["[study", "name = ", "[study]\nname = 'x'\nruns = [1, 'a'", "\x00\x01", "= 3", ""])
    values = st.sampled_from(["-1", "0", "1e400", "1000000000000", "'ten'", "[]", "{}", "true", "nan", "3.5",
                              "99999999999999999999999", "[-1]", "[1, 1]", "'no-such-problem'", "'x.py:Y'"])
    keys = st.sampled_from(["runs", "runs_per_cell", "seeds", "problem", "device", "name", "colour"])
    grid = st.sampled_from(["\n[grid]\nteacher = {from = 1, to = 1000000000000}\n", "\n[grid]\nteacher = []\n",
                            "\n[grid]\nwidth = [1]\n", "\n[grid]\nteacher = [-2]\n", "\n[grid]\nteacher = ['a']\n",
                            "\n[grid]\nteacher = [100000]\nstudent = [100000]\n", "\n[optimizer]\nstep = -1\n"])
    return st.one_of(broken, st.tuples(keys, values).map(lambda kv: _with(*kv)),
                     grid.map(lambda g: TINY.replace("[params]\nteacher = 2\nstudent = 2\n", "") + g))


def experiment_study_files():
    """An experiment study with one drawn override of its [experiment] table: the key one of its own
    (or not), the value of a wrong type, out of range or absurd."""
    from spurious.studies.experiment_catalogue import experiment_studies

    experiments = experiment_studies()
    values = st.sampled_from(["-1", "0", "-0.5", "1e400", "nan", "1000000000", "1000000000000", "[1000000000]",
                              "[-1]", "[]", "'x'", "true", "[0.5, -2]", "{ a = 1 }", "99999999999999999999999"])

    def study(name, key, value):
        return f"[study]\nname = 'e'\nexperiment = '{name}'\n[experiment]\n{key} = {value}\n"

    return st.sampled_from(sorted(experiments)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(sorted(experiments[name].default_config("quick"))
                                                             + ["colour"]), values)).map(lambda t: study(*t))


class WorkStarted(Exception):
    """A drawn command line that was valid up to the work (the work itself is not what is tested)."""


@settings(max_examples=int(os.environ.get("SPURIOUS_FUZZ_EXAMPLES", "200")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_command_lines_and_study_files_are_refused_cleanly(place, tmp_path, monkeypatch, data):
    """Exit 0 or 2, never a traceback (an exception out of main), at most one error line, and every
    store and file that was there unchanged, with no new file among them. A drawn command that is
    valid stops where its work would start."""
    import spurious.optimize
    import spurious.studies.runner

    def work(*args, **kwargs):
        raise WorkStarted()

    monkeypatch.setattr(spurious.optimize, "_descend", work)
    monkeypatch.setattr(spurious.studies.runner, "run_study", work)
    monkeypatch.chdir(tmp_path)  # where default outputs (export's ".") of a valid drawn command go
    if data.draw(st.booleans()):
        argv = data.draw(commands(place))
    else:
        study = tmp_path / "drawn.toml"
        study.write_text(data.draw(st.one_of(study_files(), experiment_study_files())))
        argv = ["study", "run", str(study), "--store", str(tmp_path / "new.db"), "--no-report", "-q"]
    before = tree_digest(place)
    try:
        code, out, err = call(*argv)
    except SystemExit as stop:  # argparse: --help/--version (0) or usage (2)
        code, err = stop.code, ""
    except WorkStarted:
        code, err = 0, ""
        event("valid up to the work")
    event(f"{argv[0] if argv else '(empty)'}: exit {code}")
    assert code in (0, 2), (argv, code, err)
    if code == 2 and err:
        assert err.count("\n") == 1 and err.startswith("spurious: error: "), (argv, err)
    assert "Traceback" not in err
    assert tree_digest(place) == before, argv


# -- each class -------------------------------------------------------------------------------------
@pytest.fixture
def no_work(monkeypatch):
    """Any optimization or study cell started fails the test: refusals must come first."""
    import spurious.optimize
    import spurious.studies.runner

    def started(*args, **kwargs):
        raise AssertionError("the work started before the refusal")

    monkeypatch.setattr(spurious.optimize, "_descend", started)
    monkeypatch.setattr(spurious.studies.runner, "run_study", started)


@pytest.mark.parametrize("argv, estimate", [
    (["run", "-k", "3", "-n", "3", "--runs", "1000000000000"], "would need about 429"),
    (["run", "-k", "4000", "-n", "4000", "--runs", "1"], "for the Krylov vectors"),
    (["run", "-k", "100000", "-n", "100000"], "Unable to allocate 74.5 GiB"),
])
def test_requests_that_cannot_fit_are_refused_with_estimate_and_limit(argv, estimate, no_work):
    code, out, err = call(*argv)
    one_error_line(code, err)
    assert estimate in err and ("allows" in err or "this machine has" in err), err


def test_a_study_that_cannot_fit_is_refused_with_estimate_and_limit(tmp_path, no_work):
    for text, expect in [(TINY.replace("runs = 4", "runs = 1000000000000"), "500,000,000,000 cells would need about 931.3 TiB"),
                         (TINY.replace("runs = 4\nruns_per_cell = 2", "runs = 2000000000\nruns_per_cell = 2000000000"),
                          "runs of relu-teacher-student")]:
        path = tmp_path / "big.toml"
        path.write_text(text)
        code, out, err = call("study", "run", path, "--store", tmp_path / "s.db")
        one_error_line(code, err)
        assert expect in err and "allows" in err, err
        assert not (tmp_path / "s.db").exists()


def _output_cases(place, tmp_path):
    """(argv with {target}, kind of target) for every output option."""
    store = place / "ours.db"
    return [
        (["run", "-k", "3", "-n", "3", "--runs", "50000", "--json", "{target}"], "file"),
        (["certify", "--from-run", "-k", "3", "-n", "3", "-o", "{target}"], "file"),
        (["study", "run", place / "tiny.toml", "--store", "{target}"], "file"),
        (["study", "run", place / "tiny.toml", "--store", tmp_path / "fresh.db", "--html", "{target}"], "folder"),
        (["report", "--store", store, "--html", "{target}"], "folder"),
        (["study", "certify", "tiny", "--store", tmp_path / "copy.db", "--out", "{target}"], "folder"),
        (["export", "tiny", "--store", store, "--format", "csv", "--out", "{target}"], "folder"),
    ]


@pytest.mark.parametrize("case", range(7))
@pytest.mark.parametrize("target", ["wrong kind", "missing folder", "read-only"])
def test_every_output_option_is_checked_before_the_work(place, tmp_path, case, target, no_work):
    shutil.copy(place / "ours.db", tmp_path / "copy.db")
    argv, kind = _output_cases(place, tmp_path)[case]
    if target == "wrong kind":  # a folder where a file goes, a file where a folder goes
        path = place / "adir" if kind == "file" else place / "notes.txt"
        expect = "is a folder, not" if kind == "file" else "is a file, not a folder"
    elif target == "missing folder":
        path = tmp_path / "missing" / "deeper" / ("out.json" if kind == "file" else "out")
        expect = "does not exist"
    else:
        folder = read_only_folder(tmp_path)
        if folder is None:
            pytest.skip("no read-only location here (root, and /sys is writable)")
        path = os.path.join(folder, "out.json" if kind == "file" else "out")
        expect = "cannot"
    before, scratch = tree_digest(place), sorted(os.listdir(tmp_path))
    code, out, err = call(*[str(a).replace("{target}", str(path)) for a in argv])
    one_error_line(code, err)
    assert expect in err, err
    assert tree_digest(place) == before and sorted(os.listdir(tmp_path)) == scratch


STORE_COMMANDS = [
    ["study", "run", "{place}/tiny.toml"], ["study", "resume"], ["study", "status"], ["study", "certify", "tiny"],
    ["report"], ["export", "tiny", "--format", "json", "--out", "{tmp}"],
]


@pytest.mark.parametrize("command", range(len(STORE_COMMANDS)))
@pytest.mark.parametrize("which", ["foreign.db", "empty.db", "notes.txt"])
def test_a_file_that_is_not_a_store_is_left_byte_for_byte(place, tmp_path, command, which, no_work):
    before = tree_digest(place)
    argv = [a.replace("{place}", str(place)).replace("{tmp}", str(tmp_path)) for a in STORE_COMMANDS[command]]
    code, out, err = call(*argv, "--store", place / which)
    one_error_line(code, err)
    assert "not a spurious store" in err, err
    assert tree_digest(place) == before  # no byte changed, no -wal or -shm file made beside it


def test_the_store_carries_a_format_marker_and_version(place):
    with open(place / "ours.db", "rb") as fh:
        header = fh.read(100)
    assert header[68:72] == b"Spur"
    db = sqlite3.connect(f"file:{place / 'ours.db'}?mode=ro", uri=True)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    db.close()
    assert meta["format"] == "spurious-store" and meta["schema"] == "1"


def test_a_store_of_another_schema_is_refused(place, tmp_path):
    path = tmp_path / "future.db"
    shutil.copy(place / "ours.db", path)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '9' WHERE key = 'schema'")
    db.commit()
    db.close()
    before = tree_digest(tmp_path)
    code, out, err = call("study", "status", "--store", path)
    one_error_line(code, err)
    assert "schema 9" in err and tree_digest(tmp_path) == before


READ_ONLY_SCRIPT = r"""
set -e
mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"
"$2" -m spurious study status --store "$1/ours.db"; echo "status=$?"
"$2" -m spurious report tiny --store "$1/ours.db" > /dev/null; echo "report=$?"
"$2" -m spurious study run "$1/tiny.toml" --store "$1/ours.db" 2> "$3/err" || echo "run=$?"
cat "$3/err"
"""


def test_a_read_only_store_is_read_by_status_and_report_and_refused_by_writers(place, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(place / "ours.db", folder / "ours.db")
    shutil.copy(place / "tiny.toml", folder / "tiny.toml")
    before = tree_digest(folder)
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare: no read-only mount to test in")
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("root cannot make a mount namespace here")
        result = subprocess.run(["unshare", "-m", "sh", "-c", READ_ONLY_SCRIPT, "sh", str(folder), sys.executable,
                                 str(tmp_path)], capture_output=True, text=True, timeout=300)
        text = result.stdout + result.stderr
    else:
        (folder / "ours.db").chmod(0o444)
        folder.chmod(0o555)
        outputs = []
        for argv in (["study", "status"], ["report", "tiny"]):
            code, out, err = call(*argv, "--store", folder / "ours.db")
            outputs.append(f"{argv[-1]}={code}\n{out}{err}")
        code, out, err = call("study", "run", folder / "tiny.toml", "--store", folder / "ours.db")
        text = "\n".join(outputs) + f"\nrun={code}\n{err}"
        folder.chmod(0o755)
    assert "status=0" in text and "report=0" in text and "run=2" in text, text
    assert "tiny" in text and "is read-only" in text and "Traceback" not in text, text
    assert tree_digest(folder) == before


# -- signals ----------------------------------------------------------------------------------------
def _start(argv, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "spurious", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _store_is_whole(path):
    """Every committed cell has all its runs, and the database is intact."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for idx, runs, have in db.execute("SELECT c.idx, c.runs, (SELECT COUNT(*) FROM runs r WHERE "
                                          "r.study_id = c.study_id AND r.cell = c.idx) FROM cells c"):
            assert runs == have, (idx, runs, have)
        return db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("delay", [0.5, 2.0])
def test_ctrl_c_while_starting_exits_130_and_writes_nothing(tmp_path, delay):
    # runs followed to the gradient criterion (no stop at the global value): the work outlasts both delays
    process = _start(["run", "-k", "4", "-n", "4", "--runs", "400", "--no-global-stop", "--json", tmp_path / "out.json"],
                     tmp_path)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "spurious: interrupted" and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("sig, code, message", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated")])
def test_a_signal_mid_study_leaves_whole_cells_and_releases_the_lock(tmp_path, sig, code, message):
    study = tmp_path / "s.toml"
    study.write_text(TINY.replace("runs = 4\nruns_per_cell = 2", "runs = 400\nruns_per_cell = 20")
                     .replace("teacher = 2\nstudent = 2", "teacher = 4\nstudent = 4"))
    process = _start(["study", "run", study, "--store", tmp_path / "s.db", "--no-report"], tmp_path)
    for line in process.stderr:  # wait for the first committed cell: mid-run
        if line.startswith("cell "):
            break
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == f"spurious: {message}" and "Traceback" not in err, err
    cells = _store_is_whole(tmp_path / "s.db")
    assert 1 <= cells < 20
    assert sorted(os.listdir(tmp_path)) == ["s.db", "s.toml"] or set(os.listdir(tmp_path)) <= {
        "s.db", "s.toml", "s.db-wal", "s.db-shm"}
    with Store(tmp_path / "s.db", read_only=True, create=False) as store:
        assert store.study("tiny")["lock"] is None  # released on the way out


def test_a_closed_pipe_ends_quietly():
    """`spurious study list | head -1`, with the reader gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    process = subprocess.Popen([sys.executable, "-m", "spurious", "study", "list"], stdout=write_end,
                               stderr=subprocess.PIPE)
    os.close(write_end)
    err = process.communicate(timeout=60)[1].decode()
    assert err == "" and process.returncode == 141


# -- progress ---------------------------------------------------------------------------------------
def test_progress_is_a_bar_on_a_terminal_and_periodic_lines_elsewhere():
    from spurious.cli.progress import Progress

    log = io.StringIO()
    every_call = Progress("runs", stream=log, terminal=False, interval=0.0)
    for done in (0, 5, 10):
        every_call(done, 10)
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["runs: 0/10 (0%)", "runs: 5/10 (50%)", "runs: 10/10 (100%)"]
    assert "\r" not in log.getvalue()
    quiet = io.StringIO()
    rare = Progress("runs", stream=quiet, terminal=False, interval=3600.0)
    for done in range(11):
        rare(done, 10)
    assert quiet.getvalue().count("\n") == 1 and quiet.getvalue().startswith("runs: 10/10")
    screen = io.StringIO()
    bar = Progress("runs", stream=screen, terminal=True)
    for done in (0, 5, 10):
        bar(done, 10)
    assert "\r" in screen.getvalue() and "10/10" in screen.getvalue() and "100%" in screen.getvalue()


def test_run_prints_progress_unless_quiet():
    argv = ["run", "-k", "2", "-n", "2", "--runs", "3", "--max-steps", "500"]
    code, out, err = call(*argv)
    assert code == 0 and "runs: 3/3 (100%)" in err, err
    code, out, err = call(*argv, "-q")
    assert code == 0 and err == "", err


def test_a_certificate_that_cannot_fit_is_refused_before_it_starts():
    import numpy as np

    import spurious as sp
    from spurious.certify import certify

    problem = sp.ReLUTeacherStudent(teacher=300, student=300)
    with pytest.raises(sp.SpuriousError, match="certifying a point of 90,000 parameters .* would need about 1.5 TiB"):
        certify(problem, np.eye(300))


def test_fifos_devices_and_links_as_paths(tmp_path):
    """A FIFO as a store or an output would block or be replaced: refused; /dev/null is written
    directly, never replaced; an output given as a symbolic link writes the file it names."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, out, err = call("study", "status", "--store", fifo)
    one_error_line(code, err)
    assert "not a regular file" in err
    code, out, err = call("run", "-k", "2", "-n", "2", "--runs", "2", "--json", fifo)
    one_error_line(code, err)
    assert "is a FIFO with no reader" in err
    from spurious.core.files import check_output_file, write_atomic

    check_output_file(os.devnull, "--json")
    write_atomic(os.devnull, "discarded")
    assert not os.path.isfile(os.devnull)  # still the device
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    link.symlink_to(target)
    check_output_file(str(link), "--json")
    write_atomic(link, "through the link")
    assert link.is_symlink() and target.read_text() == "through the link"


def test_a_pipe_with_a_reader_is_written_straight_into(tmp_path):
    """`--json >(cat > f)`: the shell passes /dev/fd/N, a FIFO with a reader."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    time.sleep(0.2)
    from spurious.core.files import check_output_file, write_atomic

    check_output_file(str(fifo), "--json")
    write_atomic(fifo, "through the pipe")
    assert reader.communicate(timeout=30)[0] == b"through the pipe"


@pytest.mark.parametrize("argv, expect", [
    (["run", "-k", "2", "-n", "2", "--json", "{tmp}/" + "a" * 300 + ".json"], "is too long"),
    (["study", "run", "{tmp}/tiny.toml", "--store", ""], "--store: empty path"),
    (["study", "run", "{tmp}/tiny.toml", "--store", "{tmp}/new.db/"], "names a folder"),
    (["study", "run", "{tmp}/tiny.toml", "--store", "{tmp}/q.db", "--html", "{tmp}/q.db"], "is the store's own path"),
    (["problems", "{tmp}/tiny.toml:X"], "is not a Python file"),
])
def test_odd_paths_are_refused_before_the_work(tmp_path, argv, expect, no_work):
    (tmp_path / "tiny.toml").write_text(TINY)
    before = sorted(os.listdir(tmp_path))
    code, out, err = call(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    one_error_line(code, err)
    assert expect in err, err
    assert sorted(os.listdir(tmp_path)) == before


def test_a_long_study_name_is_refused(tmp_path, no_work):
    path = tmp_path / "long.toml"
    path.write_text(TINY.replace('name = "tiny"', 'name = "' + "n" * 300 + '"'))
    code, out, err = call("study", "run", path, "--store", tmp_path / "s.db")
    one_error_line(code, err)
    assert "at most 100" in err and not (tmp_path / "s.db").exists()


def test_verify_refuses_what_it_cannot_hold_and_deep_json(tmp_path):
    from spurious.verify import FORMAT, THEOREM, VERSION, TooLargeToCheck, digest, verify_certificate

    huge = {"format": FORMAT, "version": VERSION, "theorem": THEOREM, "settings": {}, "bounds": {}, "claim": {},
            "problem": {"name": "relu-teacher-student", "teacher": 2000, "student": 2000, "dim": 2000,
                        "teacher_weights": []}, "point": []}
    huge["digest"] = digest(huge)  # a well-formed header, as an attacker or a typo at k = 2000 would give

    with pytest.raises(TooLargeToCheck, match="would need about"):
        verify_certificate(huge)
    (tmp_path / "deep.json").write_text("[" * 100000)
    code, out, err = call("verify", tmp_path / "deep.json")
    assert code == 1 and "nested too deeply" in err and err.count("\n") == 1, err
