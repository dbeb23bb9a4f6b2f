"""Progress of a long notebook, from the grid executors to the runner's line.

The executors (:mod:`kgcl_lib.experiments.executors`) call :func:`report` as runs finish; when the runner
set ``$KGCL_PROGRESS_FILE`` (a file in its own temporary folder, so two runners never read each
other's), that writes ``{"done", "total", "what", "time"}`` there atomically.  The runner's
:class:`ProgressLine` polls the file while papermill executes the notebook and shows
``runs 3/12, ETA 1.5 min``: refreshed in place (``\\r``) on a terminal, one line per update at
most every ``interval`` seconds in a log.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .storage import write_json

PROGRESS_ENV = "KGCL_PROGRESS_FILE"
#: Seconds between two progress lines when the output is not a terminal (a log file).
INTERVAL_ENV = "KGCL_PROGRESS_INTERVAL"


def report(done: int, total: int, what: str = "runs") -> None:
    """Record that ``done`` of ``total`` units are finished (no-op unless ``$KGCL_PROGRESS_FILE`` is set)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    try:
        write_json(path, {"done": int(done), "total": int(total), "what": what, "time": time.time()})
    except OSError:  # progress is a convenience: never fail a run for it
        pass


def read(path: str | os.PathLike) -> dict | None:
    """The last :func:`report` in ``path``, or ``None`` (absent, or not written yet)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and {"done", "total"} <= set(data) else None


def format_eta(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressLine:
    """Polls ``path`` in a thread and prints ``label: runs done/total, ETA`` to ``out``.

    ``tty``: rewrite one line in place (``\\r``); else print a new line when the count changed
    and ``interval`` seconds passed since the last one.  ``ETA`` = remaining units × the mean time
    per unit finished since the watcher started (units finished before it, e.g. stored by an
    earlier run, do not count).  :meth:`stop` returns how many lines (or refreshes) it printed.
    """

    def __init__(self, path, out, label: str, *, tty: bool, interval: float | None = None, poll: float = 1.0):
        self.path, self.out, self.label, self.tty, self.poll = Path(path), out, label, tty, poll
        self.interval = float(os.environ.get(INTERVAL_ENV) or 60.0) if interval is None else float(interval)
        self.printed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._first: tuple[float, int] | None = None
        self._last_line = (-1.0, None)

    def text(self, data: dict, now: float) -> str:
        done, total = int(data["done"]), int(data["total"])
        if self._first is None:
            self._first = (now, done)
        t0, d0 = self._first
        eta = ""
        if done >= total:
            eta = ", finishing"
        elif done > d0:
            eta = f", ETA {format_eta((now - t0) / (done - d0) * (total - done))}"
        return f"{data.get('what', 'runs')} {done}/{total}{eta}"

    def update(self, now: float | None = None) -> None:
        """Read the file once and print if due (the thread's body; callable directly in tests)."""
        now = time.monotonic() if now is None else now
        data = read(self.path)
        if data is None:
            return
        text = self.text(data, now)
        last_t, last_done = self._last_line
        if self.tty:
            print(f"\r\033[K[kgcl] {self.label} {text}", end="", file=self.out, flush=True)
            self.printed += 1
        elif data["done"] != last_done and (last_t < 0 or now - last_t >= self.interval):
            print(f"{'' if self.printed else chr(10)}[kgcl]   {self.label}: {text}", file=self.out, flush=True)
            self.printed += 1
            self._last_line = (now, data["done"])

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            self.update()

    def start(self) -> "ProgressLine":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.printed
