"""Fake cells for the Ray executor tests, and helpers to find and kill the Ray worker running a cell.

The cell functions are shipped to Ray workers by value (ray.cloudpickle.register_pickle_by_value),
so the workers need not import this test module. Each call leaves a file `<index>.<pid>.started` in
cell["dir"] when it starts and `<index>.<pid>.done` when it returns, so a test can see which worker
process ran which cell, and how often."""
from __future__ import annotations

import os
import time


def _mark(cell, what):
    with open(os.path.join(cell["dir"], f"{cell['index']}.{os.getpid()}.{what}"), "w"):
        pass


def slow_square(cell, device="cpu", progress=None):
    _mark(cell, "started")
    time.sleep(cell.get("sleep", 0.0))
    _mark(cell, "done")
    return {"square": cell["index"] ** 2, "pid": os.getpid(), "device": device}


def failing(cell, device="cpu", progress=None):
    from spurious.core.errors import SpuriousError

    _mark(cell, "started")
    if cell["index"] == 1:
        raise SpuriousError("this cell is bad")
    time.sleep(cell.get("sleep", 0.0))
    return {"square": cell["index"] ** 2}


def marks(folder, what="started") -> dict[int, list[int]]:
    """{cell index: [pids of the processes that left a `what` mark]}"""
    out: dict[int, list[int]] = {}
    for name in os.listdir(folder):
        index, pid, kind = name.split(".")
        if kind == what:
            out.setdefault(int(index), []).append(int(pid))
    return out


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(32):
        pid = _parent(pid)
        if pid is None or pid <= 1:
            return False
        if pid == ancestor:
            return True
    return False


def running_cells(ancestor: int) -> dict[int, int]:
    """{pid: cell index} of the Ray workers, started by `ancestor` (this test's cluster, not someone
    else's), that are executing a cell right now (Ray titles such a process `ray::spurious-cell-<index>`)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                title = fh.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::spurious-cell-") and _descends_from(int(entry), ancestor):
            index = title[len("ray::spurious-cell-"):].split("(")[0].strip()
            if index.isdigit():
                out[int(entry)] = int(index)
    return out


def kill_worker_of(index: int, ancestor: int, folder, after: float = 0.5, timeout: float = 120.0) -> int | None:
    """Wait until a worker has started the fake cell `index` (its mark in `folder`), let it work `after`
    seconds, SIGKILL it while it still runs the cell; its pid, or None if that did not happen."""
    import signal

    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [pid for pid, i in running_cells(ancestor).items() if i == index]
        started = set(marks(folder).get(index, []))
        found = [pid for pid in pids if pid in started]
        if found:
            pid = found[0]
            time.sleep(after)
            if running_cells(ancestor).get(pid) != index:
                return None  # finished in the meantime
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    return None


def kill_any_worker(indices, ancestor: int, after: float = 0.3, timeout: float = 120.0,
                    until=lambda: False) -> tuple[int, int] | None:
    """SIGKILL the first worker seen running one of the cells `indices` for at least `after` seconds
    (and still running it); (pid, cell index), or None if none was caught before `timeout` or
    before `until()` turns true."""
    import signal

    wanted = set(indices)
    seen: dict[tuple[int, int], float] = {}
    deadline = time.time() + timeout
    while time.time() < deadline and not until():
        now = time.time()
        running = {(pid, i) for pid, i in running_cells(ancestor).items() if i in wanted}
        seen = {key: since for key, since in seen.items() if key in running}
        for key in running:
            seen.setdefault(key, now)
            if now - seen[key] >= after:
                os.kill(key[0], signal.SIGKILL)
                return key
        time.sleep(0.02)
    return None
