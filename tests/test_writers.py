"""Concurrent writers on one store: a second driver of the same study is refused with one clear line
(whoever wins the race), readers (status, report) work while a study runs, and two drivers of
different studies share one store without harm."""
import os
import sqlite3
import subprocess
import sys
import threading
import time

from spurious.store import Store, StudyBusy

from study_fakes import slow_cells_study


def _env(request) -> dict:
    cache = request.config.cache.mkdir("jax-compilation-cache") if request.config.cache else None
    env = dict(os.environ)
    if cache is not None:  # fresh processes load compiled kernels instead of compiling them
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def _spurious(*args):
    return [sys.executable, "-m", "spurious", *map(str, args)]


def _check_store(db, key, runs):
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        study_id = con.execute("SELECT id FROM studies WHERE key = ?", (key,)).fetchone()[0]
        cells = con.execute("SELECT idx, runs FROM cells WHERE study_id = ?", (study_id,)).fetchall()
        for idx, n in cells:  # every cell whole, once
            assert con.execute("SELECT COUNT(*) FROM runs WHERE study_id = ? AND cell = ?",
                               (study_id, idx)).fetchone()[0] == n
        assert con.execute("SELECT COUNT(*) FROM runs WHERE study_id = ?", (study_id,)).fetchone()[0] == runs
        assert con.execute("SELECT COUNT(*) FROM locks").fetchone()[0] == 0
    finally:
        con.close()


def test_racing_acquires_have_exactly_one_winner(tmp_path):
    db = tmp_path / "s.db"
    Store(db).close()
    contenders = 16  # a race in the switch to WAL showed in 4 of 25 runs with 16 (and once in CI with 8)
    barrier = threading.Barrier(contenders)
    outcome = []

    def contender():
        with Store(db) as store:
            barrier.wait()
            try:
                outcome.append(store.acquire("x"))
            except StudyBusy as error:
                outcome.append(error)

    threads = [threading.Thread(target=contender) for _ in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcome if isinstance(o, str)]
    assert len(winners) == 1 and len(outcome) == contenders
    assert all("is being run by process" in str(o) for o in outcome if not isinstance(o, str))


def test_two_writers_of_one_study_one_refused_with_one_line_readers_work_store_intact(tmp_path, request):
    path = tmp_path / "study.toml"
    path.write_text(slow_cells_study("race", 24))  # 8 cells of ~1 s: long enough to read during
    db = tmp_path / "s.db"
    env = _env(request)
    run = _spurious("study", "run", path, "--store", db, "--no-report", "--quiet")
    # both started at the same moment: whichever takes the lock first runs the study
    writers = [subprocess.Popen(run, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        deadline = time.time() + 120
        while time.time() < deadline and all(w.poll() is None for w in writers):
            time.sleep(0.05)
        loser = next(w for w in writers if w.poll() is not None)
        winner = next(w for w in writers if w is not loser)
        err = loser.stderr.read()
        assert loser.returncode == 2, err
        assert err.count("\n") == 1 and err.startswith("spurious: error: study 'race' is being run by process "
                                                       f"{winner.pid} on ")
        assert "--break-lock" in err
        # readers, while the winner writes
        assert winner.poll() is None, "the study finished before the readers ran; make it longer"
        readers = [subprocess.Popen(_spurious(*args, "--store", db), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for args in (("study", "status"),
                                                                                     ("report", "race"))]
        (status, status_err), (report, report_err) = (r.communicate(timeout=120) for r in readers)
        assert readers[0].returncode == 0 and f"running (pid {winner.pid})" in status, status + status_err
        assert readers[1].returncode == 0 and "race" in report, report_err
        assert winner.wait(timeout=300) == 0, winner.stderr.read()
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
            w.wait()
    _check_store(db, "race", 24)
    with Store(db) as store:
        assert store.study("race")["complete"]
    # the refused writer, run again now, finds nothing to do and writes nothing
    before = open(db, "rb").read()
    assert subprocess.run(run, env=env, timeout=120).returncode == 0
    assert open(db, "rb").read() == before


def test_two_studies_written_at_once_share_one_store(tmp_path, request):
    db = tmp_path / "s.db"
    env = _env(request)
    procs = []
    for name in ("left", "right"):
        path = tmp_path / f"{name}.toml"
        path.write_text(slow_cells_study(name, 12))
        procs.append(subprocess.Popen(_spurious("study", "run", path, "--store", db, "--no-report", "--quiet"),
                                      env=env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    _check_store(db, "left", 12)
    _check_store(db, "right", 12)
    with Store(db) as store:
        left, right = store.content("left"), store.content("right")
    for table in ("runs", "cell_families", "families", "family_members"):
        assert left[table] == right[table]  # same settings, same seeds: the same numbers
