"""The SQLite store: schema, atomic cells, one writer per study, readers during a run, data frames."""
import os
import sqlite3
import subprocess
import sys

import pytest

from spurious.cli import main
from spurious.core.errors import SpuriousError
from spurious.store import Store, StudyBusy
from spurious.studies import load_study, plan
from spurious.studies.kinds import merge_families

from study_fakes import landscape_result

CONFIG = """
[study]
name = "fake"
problem = "relu-teacher-student"
runs = 10
runs_per_cell = 5
seeds = [0, 1]
[grid]
teacher = [4, 5]
extra = [0, 1]
"""


@pytest.fixture
def filled(tmp_path):
    """A store holding a complete made-up study (4 problems, 2 seeds, 2 cells each: 16 cells)."""
    path = tmp_path / "study.toml"
    path.write_text(CONFIG)
    config = load_study(str(path))
    store = Store(tmp_path / "store.db")
    cells = plan(config)
    store.register(config.record(), config.problems(), cells)
    token = store.acquire(config.key)
    by_problem = {}
    for cell in cells:
        by_problem.setdefault(cell["problem_key"], []).append(cell)
    for pkey, group in by_problem.items():
        problem = next(p for p in store.problems(config.key) if p["key"] == pkey)
        for i, cell in enumerate(group):
            result = landscape_result(cell, spurious=1 + cell["index"] % 2, saddles=1)
            families = None
            if i == len(group) - 1:
                fams = store.cell_families(config.key, pkey) + [
                    {**f, "cell": cell["index"], "local": f["id"], "seed": cell["seed"]} for f in result["families"]]
                families = merge_families(problem["name"], problem["params"], problem["tolerances"], fams,
                                          problem["runs_total"])
            assert store.commit_cell(config.key, token, cell, result, families)
    store.release(config.key, token)
    yield config, store, cells
    store.close()


def test_store_is_sqlite_in_wal_mode_with_versions_settings_and_tolerances(filled):
    config, store, cells = filled
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    study = store.study("fake")
    assert study["cells_done"] == study["cells_total"] == 16 and study["runs_total"] == 80 and study["complete"]
    assert study["version"] and study["config"]["runs"] == 10
    problems = store.problems("fake")
    assert [p["params"] for p in problems] == [{"teacher": 4, "student": 4}, {"teacher": 4, "student": 5},
                                               {"teacher": 5, "student": 5}, {"teacher": 5, "student": 6}]
    assert problems[0]["optimizer"]["step"] == 0.1 and problems[0]["tolerances"]["family"] == 1e-5


def test_frames_for_notebooks(filled):
    config, store, cells = filled
    runs = store.runs_frame("fake")
    assert len(runs) == 80
    assert {"teacher", "student", "seed", "run", "class", "loss", "grad_norm", "steps", "morse_index", "lambda_min",
            "lambda_max", "family", "cell_family"} <= set(runs.columns)
    assert list(runs.columns[:3]) == ["problem_key", "teacher", "student"]
    assert runs.groupby(["teacher", "student", "seed"]).size().eq(10).all()
    families = store.families_frame("fake")
    # per problem: global minima, one spurious minimum family (joined across 4 cells), one saddle family
    per_problem = families.groupby("problem_key")["class"].apply(list)
    assert all(v == ["global_minimum", "spurious_minimum", "saddle"] for v in per_problem)
    first = families[(families.teacher == 4) & (families.student == 4)]
    assert list(first["count"]) == [20 - 6 - 4, 6, 4]
    assert len(first.iloc[1]["representative"]) == 4
    # every run maps to its problem-level family
    spurious_runs = runs[(runs.teacher == 4) & (runs.student == 4) & (runs["class"] == "spurious_minimum")]
    assert set(spurious_runs["family"]) == {1}
    cells_frame = store.cells_frame("fake")
    assert list(cells_frame["cell"]) == list(range(16)) and cells_frame["result"][0]["counts"]
    studies = store.studies_frame()
    assert list(studies["key"]) == ["fake"] and bool(studies["complete"][0])


def test_a_cell_is_committed_whole_or_not_at_all(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(CONFIG)
    config = load_study(str(path))
    with Store(tmp_path / "s.db") as store:
        cells = plan(config)
        store.register(config.record(), config.problems(), cells)
        token = store.acquire(config.key)
        result = landscape_result(cells[0], spurious=1)
        broken = {**result, "runs": {**result["runs"], "loss": result["runs"]["loss"][:-1]}}
        broken["families"] = broken["families"] + [{"id": 9}]  # fails after the runs were inserted
        with pytest.raises(Exception):
            store.commit_cell(config.key, token, cells[0], broken)
        assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        assert store.db.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 0
        assert store.commit_cell(config.key, token, cells[0], result)
        assert not store.commit_cell(config.key, token, cells[0], result)  # already there: nothing written
        assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 5


def test_one_writer_per_study(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(CONFIG)
    config = load_study(str(path))
    db = tmp_path / "s.db"
    with Store(db) as store:
        store.register(config.record(), config.problems(), plan(config))
        token = store.acquire("fake", command="test")
        with pytest.raises(StudyBusy, match=f"being run by process {os.getpid()}"):
            Store(db).acquire("fake")
        # the CLI refuses with one line and exit 2, and readers still work
        assert main(["study", "run", str(path), "--store", str(db)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is being run by process" in err
        assert main(["study", "status", "--store", str(db)]) == 0
        assert f"running (pid {os.getpid()})" in capsys.readouterr().out
        # --break-lock refuses while the holder is alive on this machine
        other = Store(db)
        with pytest.raises(StudyBusy, match="alive on this machine"):
            other.acquire("fake", break_lock=True)
        assert main(["study", "run", str(path), "--store", str(db), "--break-lock"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "alive on this machine" in err
        # a lock held on another host (where liveness cannot be told) can be taken over, and that
        # invalidates the old holder's commits
        store.db.execute("UPDATE locks SET host = 'another-host' WHERE study = 'fake'")
        new_token = other.acquire("fake", break_lock=True)
        cell = plan(config)[0]
        with pytest.raises(StudyBusy, match="no longer holds its lock"):
            store.commit_cell("fake", token, cell, landscape_result(cell, spurious=0))
        other.release("fake", new_token)
        other.close()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    with Store(tmp_path / "s.db") as store:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        store.db.execute("INSERT INTO locks VALUES ('fake', 'old', ?, ?, NULL, 0, 'x')",
                         (dead.pid, __import__("socket").gethostname()))
        token = store.acquire("fake")
        assert store.db.execute("SELECT token FROM locks WHERE study='fake'").fetchone()[0] == token


def test_the_hard_exit_after_a_signal_releases_the_locks_the_process_holds(tmp_path):
    # the CLI's grace timer exits with os._exit when the main thread cannot unwind (stuck in a compiled
    # kernel on a loaded machine); it must not leave the study locked
    path = tmp_path / "s.db"
    Store(path).close()
    code = ("import sys; from spurious.store import Store; from spurious.cli import _exit_now; "
            f"store = Store({str(path)!r}); store.acquire('fake'); store.acquire('other'); _exit_now(143)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 143 and done.stderr.strip() == "spurious: terminated"
    with Store(path, read_only=True, create=False) as store:
        assert store.db.execute("SELECT COUNT(*) FROM locks").fetchone()[0] == 0


def test_readers_work_while_a_writer_holds_a_transaction(filled):
    config, store, cells = filled
    store.db.execute("BEGIN IMMEDIATE")
    store.db.execute("UPDATE studies SET title = 'changing' WHERE key = 'fake'")
    try:
        reader = Store(store.path, create=False)
        assert reader.study("fake")["cells_done"] == 16 and reader.study("fake")["title"] != "changing"
        assert len(reader.runs_frame("fake")) == 80
        reader.close()
    finally:
        store.db.execute("ROLLBACK")


def test_missing_store_and_not_a_store(tmp_path, capsys):
    assert main(["study", "status", "--store", str(tmp_path / "none.db")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(SpuriousError, match="not a spurious store"):
        Store(junk)
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(SpuriousError, match="not a spurious store"):
        Store(plain, create=False)
    assert main(["report", "nothing", "--store", str(tmp_path / "none.db")]) == 2
