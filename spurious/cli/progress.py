"""Progress of a long command, on stderr: a tqdm bar on a terminal; elsewhere (a log file, CI, a
notebook's captured stderr) one plain line every `interval` seconds and one at the end, since a bar's
carriage returns make one unreadable line in a log."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, stream=None, interval: float = 10.0, terminal: bool | None = None):
        self.stream = stream or sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)()) if terminal is None else terminal
        self.label = label
        self.interval = interval
        self.started = time.perf_counter()
        self._last_line = self.started
        self._bar = None

    def __call__(self, done: int, total: int):
        if self.terminal:
            self._draw(done, total)
            return
        now = time.perf_counter()
        if (done >= total and total) or now - self._last_line >= self.interval:
            self._last_line = now
            elapsed = now - self.started
            left = f", about {elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
            self.stream.write(f"{self.label}: {done}/{total} ({100 * done / max(total, 1):.0f}%), "
                              f"{elapsed:.0f} s{left}\n")
            self.stream.flush()

    def _draw(self, done: int, total: int):
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, desc=self.label, unit=self.label.rstrip("s") or "it", file=self.stream,
                             dynamic_ncols=True, leave=True)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)
        if done >= total:
            self.close()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
