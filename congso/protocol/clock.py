"""Wall-clock time in the office's zone, and whether NTP has synchronised it.

A Pi has no battery-backed clock: after a power cut it boots in the past
until chrony or systemd-timesyncd reaches a time server. Every event
therefore carries ``clock_synced`` so that reports can flag times that may be
wrong. We ask the kernel directly (``adjtimex``), as ``timedatectl`` does:
the clock is synchronised unless the kernel reports ``TIME_ERROR``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
_TIME_ERROR = 5  # adjtimex() return value: clock not synchronised


def zone(name: str = DEFAULT_ZONE) -> ZoneInfo:
    return ZoneInfo(name)


def now(tz: str = DEFAULT_ZONE) -> datetime:
    return datetime.now(ZoneInfo(tz))


def now_iso(tz: str = DEFAULT_ZONE) -> str:
    """RFC 3339 with offset and milliseconds, e.g. ``2026-11-23T07:45:01.250+07:00``."""
    return now(tz).isoformat(timespec="milliseconds")


def kernel_clock_synced() -> bool | None:
    """True/False from the kernel, or None where adjtimex is not available."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    # struct timex is about 208 bytes on 64-bit Linux; modes=0 (first field)
    # makes the call read-only, so a zeroed, generous buffer is enough.
    buf = ctypes.create_string_buffer(512)
    state = adjtimex(buf)
    if state < 0:
        return None
    return state != _TIME_ERROR


class ClockStatus:
    """Answers ``synced()`` per the ``[clock] synced`` setting (auto/yes/no)."""

    def __init__(self, mode: str = "auto"):
        mode = (mode or "auto").strip().lower()
        if mode not in ("auto", "yes", "no", "true", "false"):
            raise ValueError(f"[clock] synced must be auto, yes or no; got {mode!r}")
        self.mode = mode
        self._warned = False

    def synced(self) -> bool:
        if self.mode in ("yes", "true"):
            return True
        if self.mode in ("no", "false"):
            return False
        answer = kernel_clock_synced()
        if answer is None:
            if not self._warned:
                log.warning("cannot ask the kernel whether the clock is synchronised; reporting it as not synchronised")
                self._warned = True
            return False
        return answer
