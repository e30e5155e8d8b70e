"""The progress display: a redrawn bar on a terminal, plain lines in logs."""

from __future__ import annotations

import io

from dbt_braze.progress import PLAIN_EVERY_SECONDS, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_terminal_bar_shows_done_total_rate_and_eta() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("braze_users", 1000, stream, tty=True, clock=clock)
    clock.now = 2.0
    progress.advance(250)
    drawn = stream.getvalue()
    assert drawn.startswith("\r") and "250/1,000 objects" in drawn
    assert "125/s" in drawn and "ETA 6s" in drawn
    progress.close()
    assert stream.getvalue().endswith("\r\033[K")


def test_plain_lines_when_not_a_terminal_at_most_every_few_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("braze_users", 100, stream, tty=False, clock=clock)
    clock.now = 1.0
    progress.advance(10)
    assert stream.getvalue() == ""  # too soon for a log line
    clock.now = PLAIN_EVERY_SECONDS + 1
    progress.advance(10)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "20/100 objects" in lines[0] and "\r" not in lines[0]


def test_total_grows_when_the_estimate_was_low() -> None:
    progress = Progress("m", 5, io.StringIO(), tty=True, clock=Clock())
    progress.advance(8)
    assert "8/8 objects" in progress.line(1.0)
