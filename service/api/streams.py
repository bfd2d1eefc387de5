"""Open event streams of one server process, counted per token and in total.

Rules:
- A stream takes a slot before its response starts and gives it back when the response
  ends, however it ends (done, client gone, token revoked, server stopping).
- Over `per_token` slots for one token, or `total` for the process, the stream is refused
  with 429 (TooManyRequests), naming the cap and its setting.
- Counts are per server process (`--http-workers N` processes each count their own), kept
  in memory and touched only from the event loop, so no lock is needed.
"""

from __future__ import annotations

from collections import Counter

from service.errors import TooManyRequests


class StreamSlot:
    """One taken slot; `release` is idempotent."""

    def __init__(self, slots: StreamSlots, token_id: int) -> None:
        self._slots = slots
        self._token_id: int | None = token_id

    def release(self) -> None:
        if self._token_id is not None:
            self._slots.give_back(self._token_id)
            self._token_id = None


class StreamSlots:
    def __init__(self, *, total: int, per_token: int) -> None:
        self.total = total
        self.per_token = per_token
        self._open: Counter[int] = Counter()

    @property
    def open(self) -> int:
        return self._open.total()

    def take(self, token_id: int) -> StreamSlot:
        """A slot for one more stream of `token_id`; raises TooManyRequests at a cap."""
        if self._open[token_id] >= self.per_token:
            raise TooManyRequests(
                f"this token already has {self.per_token} open event streams on this server "
                "process (TUNESMITH_MAX_STREAMS_PER_TOKEN); close one and retry"
            )
        if self.open >= self.total:
            raise TooManyRequests(
                f"this server process already serves {self.total} event streams "
                "(TUNESMITH_MAX_STREAMS); retry later"
            )
        self._open[token_id] += 1
        return StreamSlot(self, token_id)

    def give_back(self, token_id: int) -> None:
        self._open[token_id] -= 1
        if self._open[token_id] <= 0:
            del self._open[token_id]
