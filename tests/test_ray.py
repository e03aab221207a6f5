"""The Ray executor: a local two-node Ray cluster on loopback, a worker SIGKILLed in the middle of a
cell, a study that still ends with the store of the in-process run; retries, errors, clean shutdown."""
import os
import subprocess
import sys
import threading
import time

import pytest

from spurious.cli import main
from spurious.core.errors import SpuriousError
from spurious.store import Store

import ray_fakes
from study_fakes import slow_cells_study

try:
    import ray
except ImportError:  # pragma: no cover  (CI installs spurious[ray])
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'spurious[ray]')")

# A small landscape study: 6 cells of 3 runs, each about a second of pure gradient descent (a small
# step, so every run takes some 110 000 to 160 000 steps to its global minimum).
STUDY = slow_cells_study("ray-kill", 18)
CELLS = 6


def _environment(request) -> dict:
    """For the cluster, its workers and the drivers started here: loopback only (Ray otherwise swaps
    127.0.0.1 for the machine's outward address, which may not be reachable), and JAX's persistent
    compilation cache in pytest's cache folder, so fresh workers load compiled kernels instead of
    compiling them again."""
    cache = request.config.cache.mkdir("jax-compilation-cache") if request.config.cache else None
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # (sic) Ray's switch for "this host only"
           "RAY_USAGE_STATS_ENABLED": "0"}
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


@pytest.fixture(scope="module")
def cluster(request):
    """Two Ray nodes (one CPU each, so two worker processes run cells at once) on 127.0.0.1."""
    if ray is None:
        pytest.skip("Ray is not installed")
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    env = _environment(request)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    loopback = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # the same switch, for this process (ray is imported already)
    ray.cloudpickle.register_pickle_by_value(ray_fakes)  # fake cells travel by value
    started = time.perf_counter()
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                          "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        nodes.wait_for_nodes()
        nodes.startup_seconds = time.perf_counter() - started
        yield nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        nodes.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = loopback
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _executor(cluster, **options):
    from spurious.studies.executors import RayExecutor

    return RayExecutor(device="cpu", address=cluster.address, **options)


# -- the executor, with fake cells -------------------------------------------------------------------------
@needs_ray
def test_a_cell_whose_worker_is_killed_mid_cell_is_run_again_and_comes_back_once(cluster, tmp_path):
    cells = [{"index": i, "dir": str(tmp_path), "sleep": 2.0 if i == 0 else 0.2} for i in range(5)]
    killed = {}
    killer = threading.Thread(
        target=lambda: killed.update(pid=ray_fakes.kill_worker_of(0, os.getpid(), tmp_path, after=0.5)))
    killer.start()
    with _executor(cluster) as executor:
        out = list(executor.map(ray_fakes.slow_square, cells))
    killer.join()
    assert killed["pid"] is not None, "no worker was found running cell 0"
    assert sorted(c["index"] for c, _ in out) == [0, 1, 2, 3, 4]  # each cell exactly once
    assert all(r["square"] == c["index"] ** 2 and r["device"] == "cpu" for c, r in out)
    started, done = ray_fakes.marks(tmp_path), ray_fakes.marks(tmp_path, "done")
    assert killed["pid"] in started[0] and len(started[0]) == 2  # killed mid-cell, then run again
    assert killed["pid"] not in done[0] and len(done[0]) == 1
    assert dict((c["index"], r) for c, r in out)[0]["pid"] != killed["pid"]
    assert all(len(started[i]) == 1 for i in range(1, 5))  # the others ran once
    assert not ray.is_initialized()  # the driver's connection was closed; the cluster runs on
    assert ray_fakes.running_cells(os.getpid()) == {}


@needs_ray
def test_a_cell_lost_more_often_than_max_retries_stops_the_study_with_one_line(cluster, tmp_path):
    cells = [{"index": 0, "dir": str(tmp_path), "sleep": 2.0}]
    killer = threading.Thread(target=ray_fakes.kill_worker_of, args=(0, os.getpid(), tmp_path, 0.3))
    killer.start()
    with _executor(cluster, max_retries=0) as executor:
        with pytest.raises(SpuriousError, match="cell 0: its Ray worker was lost .*no retries left.*resumes it"):
            list(executor.map(ray_fakes.slow_square, cells))
    killer.join()


@needs_ray
def test_an_error_raised_by_a_cell_is_not_retried_and_the_other_cells_are_cancelled(cluster, tmp_path):
    cells = [{"index": i, "dir": str(tmp_path), "sleep": 0.0 if i == 1 else 3.0} for i in range(4)]
    with _executor(cluster) as executor:
        seen = []
        with pytest.raises(SpuriousError, match="^cell 1: this cell is bad$"):
            for cell, result in executor.map(ray_fakes.failing, cells):
                seen.append(cell["index"])
    assert ray_fakes.marks(tmp_path)[1] and len(ray_fakes.marks(tmp_path)[1]) == 1
    deadline = time.time() + 20
    while ray_fakes.running_cells(os.getpid()) and time.time() < deadline:
        time.sleep(0.1)
    assert ray_fakes.running_cells(os.getpid()) == {}  # cancelled, not left running


@needs_ray
def test_the_executor_shuts_down_only_the_ray_it_started(cluster):
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        with _executor(cluster) as executor:
            executor.start()
        assert ray.is_initialized()  # someone else's connection (a notebook's): left alone
    finally:
        ray.shutdown()
    with _executor(cluster) as executor:
        executor.start()
        assert ray.is_initialized()
    assert not ray.is_initialized()


# -- a real study on the cluster ------------------------------------------------------------------------
def _cells_done(path) -> int:
    import sqlite3

    if not os.path.exists(path):
        return 0
    con = sqlite3.connect(path, timeout=5)
    try:
        return con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@needs_ray
def test_study_on_a_two_node_cluster_survives_a_killed_worker_and_matches_the_in_process_store(cluster, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    env = dict(os.environ)  # with the cluster's loopback switch and compilation cache
    quiet = ["--no-report", "--quiet"]
    reference = tmp_path / "in-process.db"
    subprocess.run([sys.executable, "-m", "spurious", "study", "run", str(path), "--store", str(reference)] + quiet,
                   env=env, check=True, timeout=300)  # also fills the compilation cache for the workers
    db = tmp_path / "ray.db"
    driver = subprocess.Popen([sys.executable, "-m", "spurious", "study", "run", str(path), "--store", str(db),
                               "--executor", "ray", "--address", cluster.address, "--device", "cpu"] + quiet,
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        # the third cell or a later one: its worker has imported JAX and is computing
        victim = ray_fakes.kill_any_worker(range(2, CELLS), os.getpid(), after=0.2, timeout=180,
                                           until=lambda: driver.poll() is not None)
        _, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert victim is not None, "no worker was found running a cell"
    with Store(db) as store, Store(reference) as ref:
        assert store.study("ray-kill")["complete"] and store.study("ray-kill")["lock"] is None
        assert store.content("ray-kill") == ref.content("ray-kill")  # bit for bit, every cell once
        assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 18


@needs_ray
@pytest.mark.slow
def test_a_ray_driver_killed_mid_study_resumes_without_recomputing_finished_cells(cluster, tmp_path):
    import re
    import signal

    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    env = dict(os.environ)
    reference = tmp_path / "in-process.db"
    subprocess.run([sys.executable, "-m", "spurious", "study", "run", str(path), "--store", str(reference),
                    "--no-report", "--quiet"], env=env, check=True, timeout=300)
    db = tmp_path / "ray.db"
    ray_args = ["--executor", "ray", "--address", cluster.address, "--device", "cpu", "--no-report"]
    driver = subprocess.Popen([sys.executable, "-m", "spurious", "study", "run", str(path), "--store", str(db),
                               "--quiet"] + ray_args, env=env)
    deadline = time.time() + 180
    while _cells_done(db) < 2 and driver.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, "the study finished before the driver could be killed"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 60  # Ray ends the dead driver's tasks by itself
    while ray_fakes.running_cells(os.getpid()) and time.time() < deadline:
        time.sleep(0.1)
    assert ray_fakes.running_cells(os.getpid()) == {}
    before = _cells_done(db)
    assert 2 <= before < CELLS
    resume = subprocess.run([sys.executable, "-m", "spurious", "study", "resume", "--store", str(db)] + ray_args,
                            env=env, capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr
    ran = re.search(r"ran (\d+) cells \(ray\) in .* \((\d+) were already stored\)", resume.stderr)
    assert ran and (int(ran[1]), int(ran[2])) == (CELLS - before, before), resume.stderr
    with Store(db) as store, Store(reference) as ref:
        assert store.content("ray-kill") == ref.content("ray-kill")


# -- refusals, without a cluster ---------------------------------------------------------------------------
def _study_file(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    return str(path)


def test_ray_options_without_the_ray_executor_are_refused(tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["study", "run", _study_file(tmp_path), "--store", str(db), "--address", "10.0.0.1:6379"]) == 2
    err = capsys.readouterr().err
    assert err == "spurious: error: --address applies only with --executor ray\n"
    with pytest.raises(SystemExit) as exit_:
        main(["study", "run", _study_file(tmp_path), "--store", str(db), "--executor", "dask"])
    assert exit_.value.code == 2 and "invalid choice: 'dask'" in capsys.readouterr().err
    assert not db.exists()


@needs_ray
def test_an_unreachable_cluster_is_one_line_and_nothing_is_written(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "s.db"
    started = time.perf_counter()
    code = main(["study", "run", _study_file(tmp_path), "--store", str(db), "--executor", "ray",
                 "--address", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"cannot reach a Ray cluster at 127.0.0.1:{port}" in err
    assert time.perf_counter() - started < 30 and not db.exists()
    assert main(["study", "run", _study_file(tmp_path), "--store", str(db), "--executor", "ray",
                 "--address", "nonsense"]) == 2
    assert "bad Ray address 'nonsense'" in capsys.readouterr().err
    assert main(["study", "run", _study_file(tmp_path), "--store", str(db), "--executor", "ray",
                 "--address", f"127.0.0.1:{port}", "--workers", "2"]) == 2
    assert "--workers sets the size of a local Ray instance" in capsys.readouterr().err


def test_without_ray_installed_the_message_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    db = tmp_path / "s.db"
    assert main(["study", "run", _study_file(tmp_path), "--store", str(db), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'spurious[ray]'" in err
    assert not db.exists()
