"""systemd notification: READY, STATUS and the watchdog, without a dependency.

Under a unit with ``Type=notify`` and ``WatchdogSec``, systemd passes
``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``. A role calls ``ready()`` once it
serves and ``ping()`` from its main loop (the render loop for a TV): if the
loop freezes, the pings stop and systemd restarts the service. Outside
systemd every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


def _send(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
        return True
    except OSError:
        return False


def interval_s() -> float | None:
    """How often systemd expects a ping (half its timeout), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None


def ready(status: str = "") -> bool:
    return _send("READY=1" + (f"\nSTATUS={status}" if status else ""))


def status(text: str) -> bool:
    return _send(f"STATUS={text}")


def stopping() -> bool:
    return _send("STOPPING=1")


class Watchdog:
    """``ping()`` as often as you like; it writes to the socket at most every half interval."""

    def __init__(self):
        self.interval = interval_s()
        self._last = 0.0

    def ping(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last >= min(self.interval, 1.0):
            _send("WATCHDOG=1")
            self._last = now
