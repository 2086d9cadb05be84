"""The node registry seen by a technician: who is online, and what is wrong.

Ingest keeps one row per node in ``nodes`` (status, last health, devices).
This module reads it for ``congso nodes`` and raises *alerts*: a node that
went offline (its last will or a clean stop), a node gone silent (no
message for three heartbeats although its status says online, e.g. a
frozen program or a broker that has not noticed yet), and a device that is
not ``ok``. An alert is logged once when it starts and once when it clears,
and kept on the node's row (``alert``, ``alert_since``) for ``congso nodes``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from ..protocol import messages
from . import state

log = logging.getLogger(__name__)

SILENT_AFTER_S = 90.0  # three default heartbeats (30 s)


@dataclass
class NodeView:
    node_id: str
    kind: str | None
    online: bool
    state: str | None
    last_seen: str | None
    last_seen_s: float | None  # seconds ago
    version: str | None
    outbox: int | None
    clock_synced: bool | None
    devices: dict
    last_frame_age_s: float | None
    rejected: int
    alert: str | None
    alert_since: str | None


def _age(then: str | None, now: datetime) -> float | None:
    if not then:
        return None
    try:
        return max(0.0, (now - messages.parse_ts(then)).total_seconds())
    except ValueError:
        return None


def _silent_after(settings) -> float:
    interval = float(settings.health.interval_s) if settings is not None else 30.0
    return max(3 * interval, 3.0) if interval < 30 else SILENT_AFTER_S


def current_alert(row: dict, now: datetime, silent_after_s: float) -> str | None:
    """The problem with this node right now, in a few words, or None."""
    problems = []
    if row.get("state") == "offline":
        problems.append("offline")
    else:
        age = _age(row.get("last_seen"), now)
        if row.get("state") == "online" and age is not None and age > silent_after_s:
            problems.append(f"silent for {age:.0f} s")
    devices = json.loads(row.get("devices") or "{}")
    bad = [f"{name} {status}" for name, status in sorted(devices.items()) if status != "ok"]
    if bad and row.get("state") != "offline":
        problems.append("device " + ", ".join(bad))
    return "; ".join(problems) or None


def list_nodes(db: sqlite_utils.Database, now: datetime, silent_after_s: float = SILENT_AFTER_S) -> list[NodeView]:
    views = []
    for row in db.query("SELECT * FROM nodes WHERE kind IS NOT NULL ORDER BY kind, node_id"):
        health = json.loads(row.get("last_health") or "{}")
        age = _age(row.get("last_seen"), now)
        online = row.get("state") == "online" and age is not None and age <= silent_after_s
        clock = row.get("clock_synced")
        views.append(
            NodeView(
                node_id=row["node_id"],
                kind=row.get("kind"),
                online=online,
                state=row.get("state"),
                last_seen=row.get("last_seen"),
                last_seen_s=age,
                version=row.get("version"),
                outbox=row.get("outbox"),
                clock_synced=None if clock is None else bool(clock),
                devices=json.loads(row.get("devices") or "{}"),
                last_frame_age_s=health.get("last_frame_age_s"),
                rejected=row.get("rejected") or 0,
                alert=row.get("alert"),
                alert_since=row.get("alert_since"),
            )
        )
    return views


@state.maintenance
def raise_alerts(db: sqlite_utils.Database, ctx: state.Context) -> None:
    """Log each alert when it starts and when it clears; keep it on the node's row."""
    silent_after = _silent_after(ctx.settings)
    for row in db.query("SELECT node_id, state, last_seen, devices, alert FROM nodes WHERE kind IS NOT NULL"):
        alert = current_alert(row, ctx.now, silent_after)
        if alert == row.get("alert"):
            continue
        if alert:
            log.warning("ALERT node %s: %s", row["node_id"], alert)
        else:
            log.warning("RECOVERED node %s (was: %s)", row["node_id"], row.get("alert"))
        db.conn.execute(
            "UPDATE nodes SET alert=?, alert_since=? WHERE node_id=?",
            (alert, ctx.now.isoformat(timespec="seconds") if alert else None, row["node_id"]),
        )
