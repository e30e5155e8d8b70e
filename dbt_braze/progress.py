"""Progress of a long sync: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 28
PLAIN_EVERY_SECONDS = 10.0
REDRAW_EVERY_SECONDS = 0.2


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Objects done out of an estimated total (the pending users), rate and ETA."""

    def __init__(
        self,
        model: str,
        total: int,
        stream: TextIO,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._model, self._total, self._stream, self._clock = model, max(total, 0), stream, clock
        self._tty = stream.isatty() if tty is None else tty
        self._done = 0
        self._started = self._last_draw = clock()
        self._drawn = False

    def advance(self, objects: int) -> None:
        self._done += objects
        now = self._clock()
        every = REDRAW_EVERY_SECONDS if self._tty else PLAIN_EVERY_SECONDS
        if now - self._last_draw >= every:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        total = max(self._total, self._done)
        share = self._done / total if total else 1.0
        eta = (total - self._done) / rate if rate > 0 else 0.0
        filled = int(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{self._model} [{bar}] {self._done:,}/{total:,} objects  {rate:,.0f}/s  ETA {_duration(eta)}"

    def _draw(self, now: float) -> None:
        self._last_draw = now
        if self._tty:
            self._stream.write("\r" + self.line(now) + "\033[K")
        else:
            self._stream.write(self.line(now) + "\n")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
