"""What this machine can hold, and one-line refusals of requests that cannot fit, made before anything
is allocated: an estimate and the limit, never an allocation traceback or a slow swap to death."""
from __future__ import annotations

import os
import shutil

from .errors import SpuriousError

#: the share of the machine's memory a request may plan to use (the rest: Python, JAX, the OS)
MEMORY_SHARE = 0.8


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            if unit == "B":
                return f"{count:.0f} {unit}"
            # an absurd request (a width of 1e9 squared) in a few digits, not thirty
            return f"{count:.1f} {unit}" if abs(count) < 1024 ** 2 else f"{count:.1e} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def device_memory(device) -> int | None:
    """Bytes of memory of a JAX accelerator (None: unknown, or the CPU, whose memory is the machine's)."""
    if device is None or device.platform == "cpu":
        return None
    try:
        return int((device.memory_stats() or {}).get("bytes_limit")) or None
    except (TypeError, ValueError, AttributeError, RuntimeError):
        return None


def require_memory(need: float, what: str, device=None):
    """Refuse `what` (e.g. "--runs 1000000000000 of relu-teacher-student") if it needs more than this
    machine's share of memory, or of the accelerator's (a JAX device) where the work runs on one."""
    total = device_memory(device) or machine_memory()
    where = "this machine" if device_memory(device) is None else f"the {device.platform.upper()}"
    limit = MEMORY_SHARE * total
    if need > limit:
        raise SpuriousError(f"{what} would need about {format_bytes(need)} of memory; {where} allows "
                            f"{format_bytes(limit)} ({MEMORY_SHARE:.0%} of {format_bytes(total)})")


def require_disk(need: float, path: str, what: str):
    """Refuse `what` if the file system holding `path` has less free space than `need`."""
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    if need > free:
        raise SpuriousError(f"{what} would need about {format_bytes(need)} of disk in {folder}; "
                            f"{format_bytes(free)} is free")
