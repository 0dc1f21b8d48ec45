"""The one progress reporter of long work (metrics, projection, training): items done, rate, ETA.

  progress = Progress("generator features", total=50000)
  for batch in ...:
      ...
      progress.update(done)            # prints at most every `interval` seconds, and at the end
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional


def format_duration(seconds: float) -> str:
    """'42s', '3m 07s', '5h 02m', '2d 04h': two units at most, as stylegan2-ada's format_time."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds // 60 % 60:02d}m"
    return f"{seconds // 86400}d {seconds // 3600 % 24:02d}h"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Progress:
    """Reports ``<label>: <done>/<total> <unit> (<pct>%)  <rate> <unit>/s  ETA <time>`` lines.

    Lines go to ``log`` (stderr by default, so that a program's results on stdout stay clean), at
    most one per ``interval`` seconds, plus one when ``done`` reaches ``total``. The rate is the
    average since the first update, so the time to set up (tracing, loading) before it is not
    counted as work.
    """

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "img",
        interval: float = 10.0,
        log: Optional[Callable[[str], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.total, self.unit, self.interval = label, int(total), unit, float(interval)
        self.log = log or _stderr
        self.clock = clock
        self.done = 0
        self._start: Optional[float] = None
        self._start_done = 0
        self._last_print: Optional[float] = None

    def update(self, done: int) -> None:
        """Records that ``done`` items (a running total) are finished."""
        now = self.clock()
        self.done = min(int(done), self.total)
        if self._start is None:  # the first batch: the clock starts now
            self._start, self._start_done, self._last_print = now, self.done, now
            if self.done < self.total:
                return
        finished = self.done >= self.total
        if finished or now - self._last_print >= self.interval:
            self._last_print = now
            self.log(self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        now = self.clock() if now is None else now
        elapsed = now - (self._start if self._start is not None else now)
        counted = self.done - self._start_done
        rate = counted / elapsed if elapsed > 0 and counted > 0 else 0.0
        parts = [f"{self.label}: {self.done}/{self.total} {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.done / self.total:.0f}%)"
        if rate:
            parts.append(f"{rate:.1f} {self.unit}/s")
        if self.done >= self.total:
            parts.append(f"done in {format_duration(elapsed)}")
        elif rate:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate)}")
        return "  ".join(parts)
