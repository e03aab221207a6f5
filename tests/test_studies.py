"""Studies: configuration, planning, the driver (resume, re-run, executors), SIGKILL safety, CLI."""
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from spurious.cli import main
from spurious.core.errors import SpuriousError
from spurious.store import Store
from spurious.studies import (ConfigError, InProcessExecutor, execute_cell, load_study, merge_families, parse, plan,
                              run_study)
from spurious.studies.published import PUBLISHED

from study_fakes import TinyExperiment, register_tiny_experiment, slow_cells_study

TINY = """
[study]
name = "tiny"
problem = "relu-teacher-student"
runs = 9
runs_per_cell = 3
seeds = [0]
[grid]
teacher = [3]
extra = [0]
[optimizer]
max_steps = 3000
"""


def write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def file_digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# -- configuration ----------------------------------------------------------------------------------
def test_builtin_studies_have_the_papers_grid_and_published_numbers():
    full = load_study("safran-shamir-2018", size="full")
    assert full.key == "safran-shamir-2018@full" and full.runs == 1000
    pairs = [(p["params"]["teacher"], p["params"]["student"]) for p in full.problems()]
    assert pairs == [(k, k + e) for k in range(6, 21) for e in (0, 1)]
    assert all(p["optimizer"]["step"] == 0.1 and p["optimizer"]["grad_tol"] == 1e-9 and
               p["optimizer"]["stop_norm"] == "max_neuron_2pi" for p in full.problems())
    assert full.published["fraction"]["13,13"] == pytest.approx(0.73)
    assert full.published["fraction"]["19,20"] == pytest.approx(0.491)
    assert full.published["min_loss"]["6,6"] == pytest.approx(0.025081)
    quick = load_study("safran-shamir-2018", size="quick")
    assert [p["params"]["teacher"] for p in quick.problems()] == [6, 6, 7, 7, 8, 8, 9, 9]
    assert quick.runs == 100 and len(plan(quick)) == 16
    assert load_study("safran-shamir-2018").size == "cpu"  # the default size
    table = load_study("safran-shamir-2018", size="table")  # the paper's n = k table at full budget
    assert [(p["params"]["teacher"], p["params"]["student"]) for p in table.problems()] == \
        [(k, k) for k in range(6, 21)]
    assert table.runs == 1000 and table.published["replications"][0]["fraction"]["13,13"] == pytest.approx(0.67)
    sys21 = load_study("safran-yehudai-shamir-2021", size="full")
    ks = [p["params"]["teacher"] for p in sys21.problems()]
    assert ks[0] == 6 and ks[-1] == 100 and sys21.runs == 500
    for p in sys21.problems():  # the 2021 protocol: step 5/k, Frobenius 1e-12
        assert p["optimizer"]["step"] == pytest.approx(5 / p["params"]["teacher"])
        assert p["optimizer"]["stop_norm"] == "frobenius" and p["optimizer"]["grad_tol"] == 1e-12
    assert PUBLISHED["safran-yehudai-shamir-2021"]["fraction"]["20,20"] == pytest.approx(0.942)
    assert "ICML 2018" in PUBLISHED["safran-shamir-2018"]["source"]


def test_engine_pool_is_the_devices_choice_unless_the_config_sets_it(tmp_path):
    auto = load_study(write(tmp_path, TINY))
    assert all(p["optimizer"]["pool"] is None for p in auto.problems())
    fixed = load_study(write(tmp_path, TINY + "pool = 64\n", "fixed.toml"))
    assert all(p["optimizer"]["pool"] == 64 for p in fixed.problems())


def test_plan_splits_runs_into_cells_with_stable_keys(tmp_path):
    config = load_study(write(tmp_path, TINY.replace("seeds = [0]", "seeds = [0, 5]").replace("runs = 9", "runs = 8")))
    cells = plan(config)
    assert [(c["seed"], c["first_run"], c["runs"]) for c in cells] == [
        (0, 0, 3), (0, 3, 3), (0, 6, 2), (5, 0, 3), (5, 3, 3), (5, 6, 2)]
    assert [c["index"] for c in cells] == list(range(6))
    assert [c["key"] for c in plan(config)] == [c["key"] for c in cells]
    assert len({c["key"] for c in cells}) == 6
    other = load_study(write(tmp_path, TINY.replace("max_steps = 3000", "max_steps = 4000"), "b.toml"))
    assert other.work_hash() != config.work_hash()


BAD = {
    "unknown key": ("[study]\nname='x'\nproblem='relu-teacher-student'\nruns=5\nrunz=3\n[grid]\nteacher=[3]\nextra=[0]\n",
                    "unknown key 'runz'"),
    "unknown optimizer key": (TINY + "stepsize = 0.1\n", "[optimizer] unknown key 'stepsize'"),
    "wrong type": (TINY.replace("runs = 9", 'runs = "nine"'), "[study] runs must be an integer"),
    "wrong type in grid": (TINY.replace("teacher = [3]", 'teacher = ["3"]'), "[grid] teacher[0] must be an integer"),
    "empty grid": (TINY.replace("teacher = [3]", "teacher = []"), "[grid] teacher is empty"),
    "empty range": (TINY.replace("teacher = [3]", "teacher = {from = 5, to = 3}"), "[grid] teacher is empty"),
    "no grid": ("[study]\nname='x'\nproblem='relu-teacher-student'\nruns=5\n", "[grid] is empty"),
    "negative runs": (TINY.replace("runs = 9", "runs = -5"), "[study] runs must be a positive integer, got -5"),
    "negative seed": (TINY.replace("seeds = [0]", "seeds = [-1]"), "must lie in 0..2^63-1"),
    "bad step": (TINY + "step = -0.1\n", "step must be a positive finite number"),
    "bad pool": (TINY + "pool = 0\n", "pool must be a positive integer, got 0"),
    "pool not an integer": (TINY + "pool = 2.5\n", "[optimizer] pool must be an integer"),
    "unknown problem": (TINY.replace('problem = "relu-teacher-student"', 'problem = "cnn"'), "unknown problem 'cnn'"),
    "unknown size": (TINY, "defines no sizes"),
    "not toml": ("[study\nname=", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_one_line_exit_2_and_leaves_the_store_untouched(tmp_path, capsys, case):
    text, message = BAD[case]
    db = tmp_path / "store.db"
    with Store(db) as store:  # an existing store holding a study
        config = load_study(write(tmp_path, TINY, "good.toml"))
        store.register(config.record(), config.problems(), plan(config))
    args = ["study", "run", write(tmp_path, text), "--store", str(db)]
    before = file_digest(db)
    listing = sorted(os.listdir(tmp_path))
    if case == "unknown size":
        args += ["--size", "quick"]
    capsys.readouterr()
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("spurious: error: ") and message in err, err
    assert out == ""
    assert file_digest(db) == before and sorted(os.listdir(tmp_path)) == listing


def test_unknown_study_and_missing_file(tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["study", "run", "no-such-study", "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown study 'no-such-study'" in err and "safran-shamir-2018" in err
    assert main(["study", "run", str(tmp_path / "missing.toml"), "--store", str(db)]) == 2
    assert "no such study file" in capsys.readouterr().err
    assert not db.exists()
    assert main(["study", "run", "safran-shamir-2018", "--size", "huge", "--store", str(db)]) == 2
    assert "has no size 'huge' (sizes: quick, cpu, full, table, wider)" in capsys.readouterr().err
    assert not db.exists()


def test_bad_config_through_the_real_command(tmp_path):
    path = write(tmp_path, TINY.replace("runs = 9", "runs = -1"))
    proc = subprocess.run([sys.executable, "-m", "spurious", "study", "run", path, "--store", str(tmp_path / "x.db")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "runs must be a positive integer" in proc.stderr
    assert not (tmp_path / "x.db").exists()


# -- families across cells ------------------------------------------------------------------------------
def test_merge_families_joins_symmetric_images_from_different_cells_in_any_order():
    k = 4
    rng = np.random.default_rng(0)
    w = rng.normal(size=(k, k))
    rows, cols = rng.permutation(k), rng.permutation(k)
    image = w[rows][:, cols]  # P W Q^T: the same point up to the ReLU problem's symmetry
    other = rng.normal(size=(k, k))

    def fam(cell, local, rep, loss, cls, count):
        return {"cell": cell, "local": local, "run": 10 * cell + local, "seed": 0, "loss": loss, "class": cls,
                "morse_index": 0, "lambda_min": 0.1, "lambda_max": 1.0, "count": count, "spectrum": [0.1, 1.0],
                "representative": np.asarray(rep).tolist()}

    families = [fam(0, 0, np.eye(k), 0.0, "global_minimum", 5), fam(0, 1, w, 0.03, "spurious_minimum", 2),
                fam(1, 0, np.eye(k), 1e-15, "global_minimum", 4), fam(1, 1, image, 0.03, "spurious_minimum", 3),
                fam(2, 0, other, 0.05, "saddle", 1)]
    params = {"teacher": k, "student": k}
    tol = {"family": 1e-5, "family_loss": 1e-9}
    merged = merge_families("relu-teacher-student", params, tol, families, total_runs=15)
    assert [(f["class"], f["count"]) for f in merged] == [("global_minimum", 9), ("spurious_minimum", 5), ("saddle", 1)]
    assert merged[1]["members"] == [(0, 1), (1, 1)] and merged[1]["run"] == 1
    assert merged[1]["fraction"] == pytest.approx(5 / 15) and merged[1]["ci_low"] < 1 / 3 < merged[1]["ci_high"]
    shuffled = merge_families("relu-teacher-student", params, tol, families[::-1], total_runs=15)
    assert shuffled == merged


# -- the driver, in process -------------------------------------------------------------------------------
class CrashAfter(InProcessExecutor):
    """Stops (like a crash between cells) after yielding `cells` results."""

    def __init__(self, cells):
        super().__init__()
        self.cells = cells

    def map(self, fn, cells, progress=None):
        for i, pair in enumerate(super().map(fn, cells, progress)):
            if i == self.cells:
                raise KeyboardInterrupt
            yield pair


class Reversed(InProcessExecutor):
    """Finishes cells in another order than planned (as a parallel executor may)."""

    def map(self, fn, cells, progress=None):
        yield from super().map(fn, list(cells)[::-1], progress)


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    path = write(folder, TINY)
    config = load_study(path)
    store = Store(folder / "ref.db")
    seen = []
    outcome = run_study(config, store, progress=lambda done, total: seen.append((done, total)))
    assert outcome.cells_run == 3 and outcome.complete
    assert seen[0] == (0, 9) and seen[-1] == (9, 9)
    return config, store


def test_interrupted_study_resumes_to_the_same_store_and_rerun_does_nothing(tmp_path, tiny_reference):
    config, reference = tiny_reference
    store = Store(tmp_path / "s.db")
    with pytest.raises(KeyboardInterrupt):
        run_study(config, store, executor=CrashAfter(1))
    assert store.study("tiny")["cells_done"] == 1 and store.study("tiny")["lock"] is None  # released
    outcome = run_study(config, store)
    assert (outcome.cells_before, outcome.cells_run) == (1, 2)
    assert store.content("tiny") == reference.content("tiny")
    store.close()
    before = file_digest(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as again:
        assert run_study(config, again).cells_run == 0
    assert file_digest(tmp_path / "s.db") == before


def test_cells_finishing_in_any_order_give_the_same_store(tmp_path, tiny_reference):
    config, reference = tiny_reference
    with Store(tmp_path / "r.db") as store:
        run_study(config, store, executor=Reversed())
        assert store.content("tiny") == reference.content("tiny")


def test_cells_are_plain_data_in_and_out(tiny_reference):
    import json

    config, reference = tiny_reference
    cell = plan(config)[1]
    assert json.loads(json.dumps(cell)) == cell
    result = execute_cell(json.loads(json.dumps(cell)))
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["runs"]["run"] == [3, 4, 5]
    stored = reference.runs_frame("tiny")
    stored = stored[stored.cell == 1]
    assert list(stored["loss"]) == result["runs"]["loss"]
    assert list(stored["class"]) == result["runs"]["class"]


def test_a_different_config_under_the_same_name_is_refused(tmp_path, tiny_reference):
    config, reference = tiny_reference
    changed = load_study(write(tmp_path, TINY.replace("max_steps = 3000", "max_steps = 3001")))
    with pytest.raises(SpuriousError, match="different configuration"):
        run_study(changed, reference)


# -- experiments are studies too ----------------------------------------------------------------------------
def test_experiment_study_stores_one_result_per_cell(tmp_path, capsys):
    register_tiny_experiment()
    config = load_study(TinyExperiment.name, size="quick")
    assert config.kind == "experiment" and config.key == f"{TinyExperiment.name}@quick"
    assert load_study(TinyExperiment.name, size="full").size == "gpu"  # full is the experiments' gpu size
    db = str(tmp_path / "e.db")
    html = str(tmp_path / "html")
    assert main(["study", "run", TinyExperiment.name, "--size", "quick", "--store", db, "--html", html]) == 0
    out = capsys.readouterr().out
    assert "verdict: reproduced: largest square 9 vs limit 10.0" in out
    with Store(db) as store:
        results = store.experiment_results(config.key)
        assert [r["square"] for _, r in results] == [1, 4, 9]
        assert [c["value"] for c, _ in results] == [1, 2, 3]
    page = open(os.path.join(html, f"{TinyExperiment.name}-quick.html")).read()
    assert "<svg" in page and TinyExperiment.claim in page and '<div class="box pass"><b>Reproduced.</b>' in page
    assert os.path.exists(os.path.join(html, f"{TinyExperiment.name}-quick", "squares.png"))
    # a TOML experiment study with overrides, and a bad override
    path = write(tmp_path, f'[study]\nname = "mine"\nexperiment = "{TinyExperiment.name}"\n[experiment]\nvalues = [4]\n')
    assert main(["study", "run", path, "--size", "quick", "--store", db, "--no-report"]) == 0
    with Store(db) as store:
        assert [r["square"] for _, r in store.experiment_results("mine@quick")] == [16]
    bad = write(tmp_path, f'[study]\nname = "m"\nexperiment = "{TinyExperiment.name}"\n[experiment]\nvaluez = [4]\n', "b.toml")
    with pytest.raises(ConfigError, match="unknown key 'valuez'"):
        load_study(bad)
    with pytest.raises(ConfigError, match="unknown experiment"):
        parse({"study": {"name": "z", "experiment": "nope"}})


def test_study_list_names_builtin_and_experiment_studies(capsys):
    register_tiny_experiment()
    assert main(["study", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("safran-shamir-2018", "safran-yehudai-shamir-2021", TinyExperiment.name):
        assert name in out
    assert "quick, cpu*, full" in out


# -- SIGKILL at random points ------------------------------------------------------------------------------
KILL = slow_cells_study("kill", 24)  # cells of about a second: kills land inside cells and commits
KILL_CELLS = 8


def _cells_done(db) -> int:
    if not os.path.exists(db):
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def _check_whole_cells(db):
    if not os.path.exists(db):
        return
    con = sqlite3.connect(db)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'cells'").fetchone():
            return  # killed before the schema was committed: nothing there, nothing half-there
        for idx, runs in con.execute("SELECT idx, runs FROM cells"):
            assert con.execute("SELECT COUNT(*) FROM runs WHERE cell = ?", (idx,)).fetchone()[0] == runs
        assert con.execute("SELECT COUNT(*) FROM runs WHERE cell NOT IN (SELECT idx FROM cells)").fetchone()[0] == 0
    finally:
        con.close()


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_store(tmp_path, request):
    path = write(tmp_path, KILL)
    # JAX's persistent compilation cache (kept in pytest's cache folder) spares each restart the compile
    cache = request.config.cache.mkdir("jax-compilation-cache") if request.config.cache else tmp_path / "jax"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    command = [sys.executable, "-m", "spurious", "study", "run", path, "--no-report", "--quiet"]
    reference = str(tmp_path / "reference.db")
    subprocess.run(command + ["--store", reference], env=env, check=True, timeout=300)  # also warms the cache
    db = str(tmp_path / "killed.db")
    rng = random.Random(int(time.time()))
    kills = 0
    for attempt in range(12):
        before = _cells_done(db)
        if before == KILL_CELLS or kills == 3:
            break
        proc = subprocess.Popen(command + ["--store", db], env=env)
        if attempt == 0:
            time.sleep(rng.uniform(0.5, 4.0))  # anywhere: start-up, registration, first cell
        else:  # once it has made progress, at a random moment of the next cell or commit
            deadline = time.time() + 60
            while _cells_done(db) == before and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        _check_whole_cells(db)
    assert kills >= 3
    resume = [sys.executable, "-m", "spurious", "study", "resume", "--store", db, "--no-report", "--quiet"]
    subprocess.run(resume, env=env, check=True, timeout=300)
    _check_whole_cells(db)
    with Store(db) as killed, Store(reference) as ref:
        assert killed.study("kill")["complete"]
        assert killed.content("kill") == ref.content("kill")
        assert killed.study("kill")["lock"] is None


def test_a_grid_of_several_blocks_is_the_union_of_their_products_in_order():
    base = {"study": {"name": "u", "problem": "relu-teacher-student", "runs": 2}}
    config = parse({**base, "grid": [{"teacher": [3, 4], "extra": [1]}, {"teacher": [3], "extra": [2]}]})
    assert [(p["params"]["teacher"], p["params"]["student"]) for p in config.problems()] == [(3, 4), (4, 5), (3, 5)]
    wider = load_study("safran-shamir-2018", size="wider")
    keys = [(p["params"]["teacher"], p["params"]["student"]) for p in wider.problems()]
    assert keys == [(k, k + 1) for k in range(6, 20)] + [(k, k + 2) for k in range(6, 13)]
    # a study stored before grids of blocks existed keeps its hash (this is the hash spurious computed for it
    # before), so its store is still resumed, not refused as changed
    assert load_study("safran-shamir-2018", size="quick").work_hash() == "30c962b91f4e666e"
    with pytest.raises(ConfigError, match="every block must sweep the same parameters"):
        parse({**base, "grid": [{"teacher": [3], "extra": [1]}, {"teacher": [4]}]})
    with pytest.raises(ConfigError, match="empty list of blocks"):
        parse({**base, "grid": []})
    with pytest.raises(ConfigError, match="cannot change a grid of several blocks"):
        parse({**base, "grid": [{"teacher": [3]}], "sizes": {"s": {"grid": {"teacher": [4]}}}}, size="s")
