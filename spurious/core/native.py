"""Native CPU kernels as XLA FFI targets: a C++ source in the package is built on first use with the
system's C++ compiler (against the FFI headers that ship with jaxlib), kept in the kernel cache
folder under a name that hashes the source, the flags, the compiler and jaxlib, and registered with
XLA once per process. Building is optional: where no compiler is found or the build fails (a
warning says why), or SPURIOUS_NATIVE=off, `ffi_target` returns None and callers keep their JAX path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings

import jax

from . import setup

#: "off" (or 0, no, false) keeps every computation on its JAX path
NATIVE_VARIABLE = "SPURIOUS_NATIVE"
#: -march=native: the library is kept in a folder per processor kind (setup.machine_kind)
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC")

_registered: dict[tuple[str, str], str | None] = {}
_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get(NATIVE_VARIABLE, "").strip().lower() not in ("off", "0", "no", "false")


def compiler() -> list[str] | None:
    """The C++ compiler's command: $CXX (which may hold a launcher, "ccache g++"), else c++, g++ or clang++."""
    chosen = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    return shlex.split(chosen) if chosen else None


def _library(source: str, cxx: list[str]) -> str:
    with open(source, "rb") as handle:
        text = handle.read()
    version = subprocess.run([*cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(b"\0".join([text, " ".join(FLAGS).encode(), version.encode(),
                                     jax.lib.__version__.encode()])).hexdigest()[:16]
    folder = setup.compile_cache_dir()  # per processor kind, as -march=native needs
    folder = (os.path.join(folder, "native") if folder else
              os.path.join(tempfile.gettempdir(), f"spurious-native-{os.getuid()}", setup.machine_kind()))
    os.makedirs(folder, exist_ok=True)
    name = os.path.splitext(os.path.basename(source))[0]
    library = os.path.join(folder, f"{name}-{key}.so")
    if not os.path.exists(library):
        # built under a private name and renamed: processes that build at once never load half a file
        handle, partial = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(handle)
        try:
            built = subprocess.run([*cxx, *FLAGS, "-I", jax.ffi.include_dir(), source, "-o", partial],
                                   capture_output=True, text=True, timeout=600)
            if built.returncode != 0:
                lines = built.stderr.strip().splitlines() or ["no message"]
                first_error = next((line for line in lines if "error" in line), lines[0])
                raise RuntimeError(f"{' '.join(cxx)} failed: {first_error}")
            os.replace(partial, library)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return library


def ffi_target(source: str, symbol: str, name: str) -> str | None:
    """The name of the registered CPU FFI target `name`, whose handler is `symbol` in the C++ file
    `source`; None where native kernels are off or cannot be built here (once per process)."""
    if not enabled():
        return None
    with _lock:
        if (source, symbol) not in _registered:
            _registered[(source, symbol)] = None
            cxx = compiler()
            if cxx is None:
                warnings.warn("no C++ compiler found (set CXX): native kernels are off, the JAX path is used",
                              RuntimeWarning, stacklevel=2)
                return None
            try:
                library = ctypes.cdll.LoadLibrary(_library(source, cxx))
                jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
            except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as error:
                warnings.warn(f"native kernel {os.path.basename(source)} unavailable ({error}): the JAX path is used",
                              RuntimeWarning, stacklevel=2)
                return None
            _registered[(source, symbol)] = name
        return _registered[(source, symbol)]
