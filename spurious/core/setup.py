"""JAX set-up shared by every stage: float64 everywhere, and the choice of device."""
import os

import jax

jax.config.update("jax_enable_x64", True)

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


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
