"""The test helpers' own contract: a timed-out wait says what it waited for and shows the
detail (a log tail) as it was when the wait gave up, not as it was when the wait began."""

from __future__ import annotations

import pytest

from tests.support import wait_until


def test_a_timed_out_wait_shows_the_detail_read_after_waiting() -> None:
    log: list[str] = []

    def never() -> bool:
        log.append(f"poll {len(log) + 1}")
        return False

    with pytest.raises(AssertionError) as failure:
        wait_until(never, timeout=0.3, interval=0.05, what="the impossible", detail=lambda: log[-1])
    message = str(failure.value)
    assert "timed out after 0.3 s waiting for the impossible" in message
    assert message.endswith(f"--- {log[-1]}") and log[-1] != "poll 1"


def test_a_wait_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_until(lambda: next(answers), timeout=5, interval=0.01) == "ready"
