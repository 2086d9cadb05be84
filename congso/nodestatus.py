"""A node's own view of itself, read on the node (``congso status``, a local page).

The running node rewrites ``<data dir>/status.json`` every heartbeat,
connected or not; its outbox holds what is not yet acked. A status file
older than three heartbeats means the node program is not running.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import dbcheck, liveness, outbox
from .protocol.node import status_path


class StatusError(Exception):
    """No status to read; the message says where it looked and why."""


@dataclass
class NodeStatus:
    path: Path
    view: dict
    age_s: float  # since status.json was last written
    interval_s: float
    pending: list[dict] = field(default_factory=list)  # the oldest unacked events
    outbox_problem: str | None = None  # the outbox fails its check: what to do

    @property
    def running(self) -> bool:
        # The one rule (protocol.liveness), with the interval the node wrote.
        interval = self.view.get("interval_s") or self.interval_s
        return liveness.judge(liveness.ONLINE, self.age_s, interval) == liveness.ONLINE

    def lines(self) -> list[str]:
        """The view for a terminal, one aspect per line."""
        v = self.view
        lines = [
            f"node      {v.get('node_id')} ({v.get('kind')}), pid {v.get('pid')}",
            f"running   {'yes' if self.running else 'NO'} (status written {self.age_s:.0f} s ago)",
            f"broker    {v.get('broker')}: {'connected' if v.get('connected') else 'NOT connected'}",
            f"outbox    {v.get('outbox')} unacked"
            + (f", oldest {v['outbox_oldest_s']:.0f} s" if v.get("outbox_oldest_s") else ""),
            f"clock     {'synchronised' if v.get('clock_synced') else 'NOT synchronised (check chrony / timedatectl)'}",
            "devices   " + (", ".join(f"{k} {s}" for k, s in sorted((v.get("devices") or {}).items())) or "none"),
        ]
        if v.get("last_frame_age_s") is not None:
            lines.append(f"screen    last frame {v['last_frame_age_s']:.1f} s ago")
        if self.outbox_problem:
            lines.append(f"OUTBOX DAMAGED: {self.outbox_problem}")
        for ev in self.pending:
            what = ev.get("method") or ev.get("level") or ""
            lines.append(f"  unacked #{ev.get('seq')} {ev.get('ts')} {what} {ev.get('event_id')}")
        return lines


def read(settings, pending_limit: int = 5) -> NodeStatus:
    """This node's status from its data dir; raise StatusError when there is none to read."""
    path = status_path(settings)
    try:
        view = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        raise StatusError(f"no {path}: the node has not run with this data dir (CONGSO_DATA_DIR)") from None
    except (OSError, ValueError) as e:
        raise StatusError(f"cannot read {path}: {e}") from None
    if not isinstance(view, dict):
        raise StatusError(f"cannot read {path}: not a JSON object")
    box = settings.data_dir / "outbox.sqlite"
    pending: list[dict] = []
    if pending_limit and box.exists():
        try:
            pending = outbox.peek(box, limit=pending_limit)
        except sqlite3.Error as e:
            # The view still helps when the outbox is damaged; say so instead of a traceback.
            pending = [{"seq": "?", "ts": "", "event_id": f"(outbox {box} unreadable: {e})"}]
    problems = dbcheck.check(box, quick=True) if box.exists() else []
    problem = dbcheck.outbox_advice(box, problems) if problems else None
    return NodeStatus(path, view, age, float(settings.health.interval_s), pending, problem)
