"""JAX set-up shared by every stage: float64 everywhere, the choice of device, and the on-disk cache
of compiled kernels."""
import hashlib
import os
import platform

import jax

jax.config.update("jax_enable_x64", True)

#: where compiled kernels are kept between processes; "off" turns the cache off
CACHE_VARIABLE = "SPURIOUS_COMPILE_CACHE"
#: least-recently used kernels are dropped beyond this size
CACHE_BYTES = 2 ** 30
#: kernels that compile faster than this are not worth a file
CACHE_MIN_COMPILE_SECONDS = 0.2


def machine_kind() -> str:
    """A short fingerprint of the processor's architecture and instruction sets: compiled CPU
    kernels use the host's vector instructions, and a home folder shared by a cluster's machines
    must not hand one machine's kernels to another that lacks them (JAX's cache key does not say)."""
    described = platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            described += "".join(sorted({line for line in info if line.startswith(("flags", "model name"))}))
    except OSError:
        described += platform.processor()
    return hashlib.sha256(described.encode()).hexdigest()[:12]


def compile_cache_dir() -> str | None:
    """The folder of the on-disk kernel cache: $SPURIOUS_COMPILE_CACHE, else the user's cache folder
    ($XDG_CACHE_HOME or ~/.cache)/spurious/xla, in either case in a subfolder per `machine_kind`;
    None where it is turned off ("off") or cannot be made or written (the cache is then left off:
    it only saves time)."""
    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen is not None and chosen.strip().lower() in ("", "off", "0", "none"):
        return None
    if chosen is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "spurious", "xla")
    folder = os.path.join(os.path.abspath(chosen), machine_kind())
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def _use_compile_cache():
    """Kernels compiled once are loaded from disk by every later process (a second run of a study,
    each worker of a cluster on the same machine, each command of a session; what it saves is in
    benchmarks/RESULTS.md). A cache folder set for JAX itself is left as it is."""
    if jax.config.jax_compilation_cache_dir:
        return
    try:
        import filelock  # noqa: F401  (JAX needs it to bound the cache's size)
    except ImportError:
        return
    folder = compile_cache_dir()
    if folder is None:
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", CACHE_BYTES)


_use_compile_cache()

DEVICES = ("auto", "cpu", "gpu")


def resolve_device(device: str = "auto"):
    """The jax.Device to run on: 'auto' takes a GPU when JAX sees one, else the CPU."""
    from .errors import SpuriousError

    if device not in DEVICES:
        raise SpuriousError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device in ("auto", "gpu"):
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        if gpus:
            return gpus[0]
        if device == "gpu":
            raise SpuriousError("device 'gpu' requested but JAX sees no GPU (install jax[cuda12] on a CUDA machine)")
    return jax.devices("cpu")[0]


#: XLA:CPU hands reductions, and dots fused with their neighbours, to the YNNPACK library by default;
#: these options keep single dots there and leave reductions to XLA's own fused loops (a problem
#: names them as its `step_compiler_options` where its step is faster so)
OWN_REDUCTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
_known_options: dict = {}


def known_compiler_options(options: dict | None) -> dict | None:
    """`options` where this jaxlib accepts them (checked once per set, by compiling a sum), else
    None: an XLA without them compiles with its defaults."""
    if not options:
        return None
    key = tuple(sorted(options.items()))
    if key not in _known_options:
        try:
            jax.jit(lambda x: x.sum(axis=-1), compiler_options=dict(options)).lower(
                jax.ShapeDtypeStruct((2, 2), "float64")).compile()
            _known_options[key] = dict(options)
        except Exception:  # noqa: BLE001  (XLA reports an unknown option or value in several ways)
            _known_options[key] = None
    return _known_options[key]


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
