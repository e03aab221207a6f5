"""Executors: where cells run. The driver (spurious.studies.runner) hands an executor plain-data cells
and gets plain-data results back, and alone writes them to the store.

Contract for an executor:

    executor.map(fn, cells, progress=None) -> iterator of (cell, result)
    executor.close()

`fn` is a module-level function (spurious.studies.kinds.execute_cell), picklable, called as
`fn(cell, device=..., progress=...)`; results may come back in any order, one pair per cell, as
soon as each cell finishes (so the driver commits it at once). `progress(cell, done, total)`, when
given, may be called with runs finished inside a cell; executors that cannot report that simply
never call it. An exception in a cell propagates out of `map` (cells already yielded stay stored).
`close()` gives back what the executor took (a Ray instance it started); executors are also context
managers.

  in-process  cells one after the other in this process (the default)
  ray         each cell one Ray task on a Ray cluster (a local one, or an existing multi-node one):
              a CPU or a GPU per task, a task whose worker dies is run again, results as they finish
"""
from __future__ import annotations

import os
import socket
from typing import Callable, Iterable, Iterator

from ..core.errors import SpuriousError


class Executor:
    name = "executor"

    def map(self, fn: Callable, cells: Iterable[dict],
            progress: Callable[[dict, int, int], None] | None = None) -> Iterator[tuple[dict, dict]]:
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcessExecutor(Executor):
    """Cells one after the other in this process (JAX uses the machine's cores inside each cell)."""

    name = "in-process"

    def __init__(self, device: str = "auto"):
        self.device = device

    def map(self, fn, cells, progress=None):
        for cell in cells:
            hook = None
            if progress is not None:
                hook = lambda done, total, cell=cell: progress(cell, done, total)
            yield cell, fn(cell, device=self.device, progress=hook)


# -- Ray -------------------------------------------------------------------------------------------------
RAY_MISSING = "the Ray executor needs Ray on this machine and on every node: pip install 'spurious[ray]'"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SpuriousError(RAY_MISSING) from None
    return ray


def _ray_cell(fn, cell: dict, device: str):
    """Runs inside a Ray worker: one cell, plus who computed it (checked by the driver)."""
    from ..core.version import __version__

    result = fn(cell, device=device)
    return result, {"version": __version__, "host": socket.gethostname(), "pid": os.getpid()}


def _probe(address: str, timeout: float = 5.0):
    """Raise SpuriousError at once when nothing listens at a host:port Ray address (ray.init itself
    would retry for minutes)."""
    if address == "auto":
        return
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SpuriousError(f"bad Ray address {address!r}: give HOST:PORT of the head node (e.g. 10.0.0.1:6379), "
                            f"ray://HOST:PORT, or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise SpuriousError(f"cannot reach a Ray cluster at {address} ({error.strerror or error}); start one with "
                            f"`ray start --head` on the head node, or check --address") from None


def _local_cluster_address() -> str:
    """The address of the cluster `ray start` runs on this machine (what address="auto" connects to)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # pragma: no cover  (a Ray that moved it: let ray.init find it)
        return "auto"
    try:
        return canonicalize_bootstrap_address_or_die("auto")
    except ConnectionError:
        raise SpuriousError("--address auto: no Ray cluster runs on this machine (start one with "
                            "`ray start --head`, or give --address HOST:PORT)") from None


class RayExecutor(Executor):
    """Each cell one Ray task, on a Ray cluster; the driver (this process) alone writes the store.

    address      None: the cluster in $RAY_ADDRESS if set, else a private local Ray instance started
                 here (and stopped by close()); "auto": the cluster started with `ray start` on this
                 machine; "HOST:PORT" or "ray://HOST:PORT": an existing (multi-node) cluster.
    cpus_per_cell   the CPU resource each task asks for (default 1).
    gpus_per_cell   the GPU resource each task asks for (fractions share a GPU); default: 1 when
                 device is "gpu", or "auto" and the cluster has GPUs; otherwise 0 (cells then run on
                 the CPU, even on a node with GPUs).
    workers      with a private local instance: how many cells run at once (default: the cores).
    max_retries  how often a cell whose worker process or node died is run again (default 3); an
                 exception raised by the cell itself is not retried.
    init_options passed on to ray.init (e.g. runtime_env).

    Results come back as each task finishes. A cell is only ever committed by the driver, once; a
    task killed mid-cell is simply run again (cells are pure functions of their plain-data spec, so
    the retry gives the same result), and cells already in the store are never submitted.
    """

    name = "ray"

    def __init__(self, device: str = "auto", address: str | None = None, cpus_per_cell: float = 1.0,
                 gpus_per_cell: float | None = None, workers: int | None = None, max_retries: int = 3,
                 init_options: dict | None = None):
        from ..core.setup import DEVICES

        if device not in DEVICES:
            raise SpuriousError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
        if not cpus_per_cell >= 0:
            raise SpuriousError(f"cpus per cell must be >= 0, got {cpus_per_cell}")
        if gpus_per_cell is not None and not gpus_per_cell >= 0:
            raise SpuriousError(f"gpus per cell must be >= 0, got {gpus_per_cell}")
        if gpus_per_cell and device == "cpu":
            raise SpuriousError("--gpus-per-cell with --device cpu: cells would hold GPUs they do not use")
        if workers is not None and workers < 1:
            raise SpuriousError(f"workers must be at least 1, got {workers}")
        if max_retries < 0:
            raise SpuriousError(f"max retries must be >= 0, got {max_retries}")
        if address == "":
            address = None
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or None
        if workers is not None and address not in (None, "local"):
            raise SpuriousError("--workers sets the size of a local Ray instance; with --address the cluster's "
                                "resources decide how many cells run at once")
        _import_ray()
        if address == "auto":
            _probe(_local_cluster_address())
        elif address not in (None, "local"):
            _probe(address)
        self.device = device
        self.address = address
        self.cpus_per_cell = float(cpus_per_cell)
        self.gpus_per_cell = gpus_per_cell
        self.workers = workers
        self.max_retries = int(max_retries)
        self.init_options = dict(init_options or {})
        self._ray = None
        self._started = False  # this executor called ray.init (so close() calls ray.shutdown)
        self._remote = None

    # -- connection ---------------------------------------------------------------------------------
    def start(self):
        """Connect to (or start) Ray; idempotent. Called by map() on first use."""
        if self._ray is not None:
            return self._ray
        import logging

        ray = _import_ray()
        if not ray.is_initialized():
            options = {"logging_level": logging.WARNING, **self.init_options}
            if self.address in (None, "local"):
                options.setdefault("include_dashboard", False)
                if self.workers is not None:
                    options.setdefault("num_cpus", self.workers * max(self.cpus_per_cell, 1e-3))
            try:
                ray.init(address=self.address or "local", **options)
            except (ConnectionError, TimeoutError, RuntimeError) as error:
                where = self.address or "a new local instance"
                why = str(error).splitlines()[0] if str(error) else type(error).__name__
                hint = ("" if self.address in (None, "local") else
                        " (a cluster with token authentication, the default of recent Ray versions, also needs "
                        "RAY_AUTH_MODE=token and its token on this machine: see docs/ray.md)")
                raise SpuriousError(f"cannot connect to a Ray cluster at {where}: {why}{hint}") from None
            self._started = True
        self._ray = ray
        self._remote = ray.remote(_ray_cell)
        self._resources()
        return ray

    def _resources(self):
        total = self._ray.cluster_resources()
        gpus_in_cluster = total.get("GPU", 0)
        gpus = self.gpus_per_cell
        if gpus is None:
            gpus = 1.0 if self.device == "gpu" or (self.device == "auto" and gpus_in_cluster > 0) else 0.0
        if gpus > 0 and gpus_in_cluster <= 0:
            self.close()
            raise SpuriousError("cells ask for a GPU but the Ray cluster has none (its resources: "
                                + ", ".join(f"{k} {v:g}" for k, v in sorted(total.items()) if k in ("CPU", "GPU"))
                                + "); use --device cpu or add GPU nodes")
        if gpus > gpus_in_cluster > 0:
            self.close()
            raise SpuriousError(f"cells ask for {gpus:g} GPUs each but the Ray cluster has {gpus_in_cluster:g} in all")
        if self.cpus_per_cell > total.get("CPU", 0):
            self.close()
            raise SpuriousError(f"cells ask for {self.cpus_per_cell:g} CPUs each but the Ray cluster has "
                                f"{total.get('CPU', 0):g}")
        self.task_gpus = float(gpus)
        # A cell holding no GPU runs on the CPU; one holding a GPU must use it.
        self.cell_device = "cpu" if gpus == 0 else "gpu"

    def close(self):
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._started = False
        self._ray = None

    # -- cells ----------------------------------------------------------------------------------------
    def map(self, fn, cells, progress=None):
        from ..core.version import __version__

        cells = list(cells)
        if not cells:
            return
        ray = self.start()
        options = {"num_cpus": self.cpus_per_cell, "num_gpus": self.task_gpus, "max_retries": self.max_retries,
                   "retry_exceptions": False}
        if 0 < self.task_gpus < 1:  # cells share a GPU: JAX must not take 75% of its memory up front
            options["runtime_env"] = {"env_vars": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}}
        owner = {}
        for cell in cells:
            ref = self._remote.options(name=f"spurious-cell-{cell['index']}", **options).remote(
                fn, cell, self.cell_device)
            owner[ref] = cell
        pending = list(owner)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                if pending:  # take every other finished task too
                    more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                    ready += more
                for ref in ready:
                    cell = owner.pop(ref)
                    result, meta = self._get(ray, ref, cell)
                    if meta["version"] != __version__:
                        raise SpuriousError(
                            f"a Ray worker on {meta['host']} runs spurious {meta['version']}, this driver runs "
                            f"{__version__}: install the same version on every node")
                    yield cell, result
        finally:
            for ref in owner:  # stopped early (an error, Ctrl-C): do not leave cells running
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001  (already finished or gone)
                    pass

    def _get(self, ray, ref, cell):
        from ray import exceptions

        try:
            return ray.get(ref)
        except exceptions.RayTaskError as error:  # the cell itself raised: same on any retry
            cause = getattr(error, "cause", None)
            if isinstance(cause, SpuriousError):
                raise SpuriousError(f"cell {cell['index']}: {cause}") from None
            raise
        except exceptions.RayError as error:  # its worker or node died more often than max_retries
            first = (str(error).strip().splitlines() or [""])[0]
            raise SpuriousError(f"cell {cell['index']}: its Ray worker was lost ({type(error).__name__}: {first}) "
                                f"with no retries left (max retries {self.max_retries}); running the study again "
                                f"resumes it") from None


EXECUTORS = {"in-process": InProcessExecutor, "ray": RayExecutor}


def make_executor(name: str = "in-process", **options) -> Executor:
    if name not in EXECUTORS:
        raise SpuriousError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](**options)
