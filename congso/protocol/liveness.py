"""Is a node alive? One rule for `congso nodes`, `congso status` and the gateway's alerts.

Each node says in its health how often it sends it (``interval_s``, an added
field, docs/protocol.md): a TV may report every 60 s and a door every 30 s,
so the gateway cannot judge them by its own heartbeat. A node is

- ``offline`` when its retained status says so (a clean stop, or the last
  will the broker sends when the connection dies), or nothing was ever heard;
- ``silent`` when its status says online but nothing came from it for more
  than ``MISSED`` of its own intervals (plus ``GRACE_S`` for the trip): a
  frozen program, or a dead link the broker has not noticed yet;
- ``online`` otherwise.
"""

from __future__ import annotations

ONLINE, SILENT, OFFLINE = "online", "silent", "offline"

DEFAULT_INTERVAL_S = 30.0  # the contract's default, for nodes that do not say theirs
MISSED = 3
GRACE_S = 5.0


def silent_after_s(interval_s: float | None) -> float:
    """Seconds without a message after which a node that says it is online is silent."""
    interval = DEFAULT_INTERVAL_S if not interval_s or interval_s <= 0 else float(interval_s)
    return MISSED * interval + GRACE_S


def judge(state: str | None, age_s: float | None, interval_s: float | None) -> str:
    """``online``, ``silent`` or ``offline`` from the status state, the seconds since it was last heard, its interval."""
    if state != ONLINE or age_s is None:
        return OFFLINE
    return SILENT if age_s > silent_after_s(interval_s) else ONLINE
