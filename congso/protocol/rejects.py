"""Counting and rate-limited logging of rejected messages.

The contract: a receiver rejects a bad message, counts it, logs it at most
once per minute per sender, and never crashes. A node that floods garbage
must not flood the journal too, yet the technician must see that it happens
and why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter


class RejectLog:
    def __init__(self, logger: logging.Logger, interval_s: float = 60.0):
        self.log = logger
        self.interval_s = interval_s
        self.counts: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reject(self, sender: str, topic: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.counts[sender] += 1
            last = self._last_logged.get(sender)
            if last is not None and now - last < self.interval_s:
                self._suppressed[sender] += 1
                return
            suppressed = self._suppressed.pop(sender, 0)
            self._last_logged[sender] = now
        more = f" ({suppressed} more from this sender not logged in the last minute)" if suppressed else ""
        self.log.warning("rejected message from %s on %s: %s%s", sender, topic, reason, more)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())
