"""The on-disk cache of compiled kernels: where it goes, when it is off, and that a second process
loads its kernels from it and gets the same numbers."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spurious as sp
from spurious.core import setup
from spurious.core.setup import CACHE_VARIABLE, compile_cache_dir, machine_kind

# a fresh process: multistart and analysis at k = 4, reporting the losses and how many kernels were
# loaded from the cache instead of compiled
SCRIPT = """
import json, jax
from jax import monitoring
hits = []
monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
import spurious as sp
result = sp.run(sp.ReLUTeacherStudent(4, 4), 6, seed=3)
print(json.dumps({"cache": jax.config.jax_compilation_cache_dir, "hits": len(hits),
                  "loss": result.analysis.loss.tolist(), "cls": result.analysis.cls.tolist()}))
"""


def fresh_process(env):
    environment = {key: value for key, value in os.environ.items()
                   if key not in (CACHE_VARIABLE, "JAX_COMPILATION_CACHE_DIR")} | env
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_its_kernels_from_the_cache_and_gets_the_same_numbers(tmp_path):
    first = fresh_process({CACHE_VARIABLE: str(tmp_path / "kernels")})
    folder = tmp_path / "kernels" / machine_kind()
    assert first["cache"] == str(folder)
    kernels = [p for p in folder.iterdir() if p.name.endswith("-cache")]
    assert len(kernels) >= 2
    second = fresh_process({CACHE_VARIABLE: str(tmp_path / "kernels")})
    # every kernel the first process wrote is read back (and one the first read back itself, if any)
    assert second["hits"] >= len(kernels) + first["hits"] - 1 and second["hits"] > first["hits"]
    assert second["loss"] == first["loss"] and second["cls"] == first["cls"]
    # turned off: nothing is written anywhere, the numbers are the same
    home = tmp_path / "home"
    off = fresh_process({CACHE_VARIABLE: "off", "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
    assert off["cache"] is None and off["hits"] == 0 and not home.exists()
    assert off["loss"] == first["loss"]


def test_the_cache_goes_to_the_user_cache_folder_and_is_left_off_where_it_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == str(tmp_path / "xdg" / "spurious" / "xla" / machine_kind())
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compile_cache_dir() == str(tmp_path / "home" / ".cache" / "spurious" / "xla" / machine_kind())
    for off in ("off", "OFF", ""):
        monkeypatch.setenv(CACHE_VARIABLE, off)
        assert compile_cache_dir() is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_VARIABLE, str(blocker / "xla"))
    assert compile_cache_dir() is None and blocker.read_text() == "not a folder"
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        monkeypatch.setenv(CACHE_VARIABLE, str(read_only))
        assert compile_cache_dir() is None or os.geteuid() == 0  # root writes anywhere
    finally:
        read_only.chmod(0o700)


def test_a_problem_s_step_compiler_options_change_rounding_only_and_unknown_ones_are_dropped():
    problem = sp.ReLUTeacherStudent(7, 7)  # the difference form's step names them
    assert problem.step_compiler_options == setup.OWN_REDUCTIONS
    assert sp.ReLUTeacherStudent(16, 16).step_compiler_options is None  # the Gram form's: XLA's defaults
    options = setup.known_compiler_options(problem.step_compiler_options)
    if options is None:
        pytest.skip("this jaxlib has no YNN fusion option: the engine compiles with XLA's defaults")
    points = jnp.asarray(sp.starts(problem, 1, np.arange(64)))
    step = jax.vmap(problem.loss_and_grad)
    tuned = jax.jit(step, compiler_options=options)(points)
    default = jax.jit(step)(points)
    for a, b in zip(tuned, default):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-13)
    assert setup.known_compiler_options({"xla_cpu_experimental_ynn_fusion_type": "NO_SUCH_TYPE"}) is None
    assert setup.known_compiler_options({"xla_no_such_option": True}) is None
    assert setup.known_compiler_options(None) is None
