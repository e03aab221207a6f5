"""A progress line on stderr (only when stderr is a terminal, or when forced)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.started = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int):
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = now - self.started
        eta = elapsed / done * (total - done) if done else float("nan")
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                          f"{elapsed:.0f}s elapsed" + (f", ~{eta:.0f}s left" if done and done < total else "") + "   ")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
