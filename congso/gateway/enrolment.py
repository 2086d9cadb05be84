"""Enrolling a finger at a door, from the gateway: the CLI and the console call this.

The flow is the same whoever starts it: the person must be an active staff
member; an ``enroll`` command is queued for the door (the running gateway
sends it); the door guides the person and answers with the slot it used;
the gateway's reply hook (``staff._enrolled``) records the finger and
carries it to every other door (export there, import elsewhere).

``start`` only queues, for a caller that polls (a web page); ``enrol``
queues and waits, for the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlite_utils

from ..protocol import clock, messages
from . import commands
from . import staff as staff_mod


class EnrolmentError(ValueError):
    """The enrolment cannot start, or the door did not complete it; the message says why."""


@dataclass
class Enrolled:
    staff_id: str
    node_id: str
    slot: int
    carried_to: list[str] = field(default_factory=list)  # the other doors the gateway carries it to

    def summary(self) -> str:
        return (f"enrolled {self.staff_id} at {self.node_id} in slot {self.slot}"
                + (f"; carrying it to {', '.join(self.carried_to)}" if self.carried_to else ""))


def default_timeout(enroll_timeout_s: float) -> float:
    """How long to wait for the door: it waits up to ``enroll_timeout_s`` for each of two placements
    (and the lift between), plus the round trip through the gateway."""
    return 3 * float(enroll_timeout_s) + 10


def start(db: sqlite_utils.Database, node_id: str, staff_id: str, slot: int | None = None,
          tz: str = clock.DEFAULT_ZONE, require_consent: bool = False) -> str:
    """Check that ``staff_id`` is active and queue the enrolment at ``node_id``; return the cmd_id.

    ``require_consent``: refuse unless the person's signed consent is recorded
    (``staff.record_consent``); the console always asks for it.
    """
    person = staff_mod.get(db, staff_id)
    if person is None or not person["active"]:
        raise EnrolmentError(f"no active staff member {staff_id!r} (congso staff list)")
    if require_consent and not staff_mod.has_consent(db, staff_id):
        raise EnrolmentError(f"no recorded consent of {staff_id} to keep a fingerprint: record it first")
    if slot is not None and (not isinstance(slot, int) or slot < 0):
        raise EnrolmentError(f"slot must be a whole number from 0, got {slot!r}")
    args = {"staff_id": staff_id, **({"slot": slot} if slot is not None else {})}
    return commands.queue(db, node_id, "enroll", args, {"staff_id": staff_id}, tz)


def finish(db: sqlite_utils.Database, node_id: str, staff_id: str, result: dict) -> Enrolled:
    """What a successful reply means: the slot, and the doors the finger is carried to."""
    slot = result.get("slot")
    if not isinstance(slot, int):
        raise EnrolmentError(f"{node_id} answered without a slot: {result!r}")
    others = [n for n in staff_mod.attendance_doors(db) if n != node_id]
    return Enrolled(staff_id, node_id, slot, others)


def enrol(db: sqlite_utils.Database, node_id: str, staff_id: str, *, slot: int | None = None,
          timeout_s: float, tz: str = clock.DEFAULT_ZONE,
          on_queued: Callable[[str], None] | None = None, require_consent: bool = False) -> Enrolled:
    """Enrol and wait for the door's answer (``timeout_s``); raise EnrolmentError saying what failed.

    ``require_consent``: as in ``start`` (the CLI always asks for it).

    ``on_queued(cmd_id)`` runs once the command is queued (the CLI tells the
    person to watch for the green light).
    """
    cmd_id = start(db, node_id, staff_id, slot, tz, require_consent=require_consent)
    if on_queued:
        on_queued(cmd_id)
    try:
        result = commands.wait_reply(db, cmd_id, timeout_s)
    except commands.CommandError as e:
        raise EnrolmentError(f"enrolment at {node_id} failed: {e}") from None
    return finish(db, node_id, staff_id, result)


def carried(db: sqlite_utils.Database, staff_id: str) -> dict[str, int]:
    """Where the finger of ``staff_id`` is stored now: door -> slot (the console shows the carrying as it goes)."""
    return {node: slot for node, slot in db.execute(
        "SELECT node_id, slot FROM finger_slots WHERE staff_id = ? ORDER BY node_id", (staff_id,))}


@dataclass
class Progress:
    """Where an enrolment is, for a page that polls: the command's state, the door's steps, the outcome."""

    cmd_id: str
    node_id: str
    staff_id: str | None
    state: str                      # queued, sent, answered, refused, expired, no reply
    steps: list[str]                # the door's steps so far, in their order (messages.ENROL_STEPS)
    slot: int | None = None         # once stored
    error: str | None = None        # the door's error, or why it never ran
    queued_at: str | None = None

    def waiting_s(self) -> float:
        """Seconds since the command was queued (a page says when the gateway seems not to send it)."""
        try:
            return (clock.now() - datetime.fromisoformat(self.queued_at)).total_seconds() if self.queued_at else 0.0
        except (TypeError, ValueError):
            return 0.0

    @property
    def finished(self) -> bool:
        return self.state not in ("queued", "sent")


def progress(db: sqlite_utils.Database, cmd_id: str) -> Progress | None:
    """The progress of the enrolment ``cmd_id`` (None if there is no such enrolment)."""
    where = commands.status(db, cmd_id)
    if where is None or where["cmd"] != "enroll":
        return None
    row = db.execute("SELECT args FROM outgoing_commands WHERE cmd_id = ?", (cmd_id,)).fetchone()
    staff_id = _json_obj(row[0]).get("staff_id") if row else None
    order = {step: i for i, step in enumerate(messages.ENROL_STEPS)}
    steps = sorted((r[0] for r in db.execute("SELECT step FROM command_progress WHERE cmd_id = ?", (cmd_id,))
                    if r[0] in order), key=order.get)
    out = Progress(cmd_id, where["node_id"], staff_id, where["state"], steps, queued_at=where["queued_at"])
    if out.state == "queued" and _past(where["deadline"]):
        # Never sent, and now never will be (the gateway settles it so at its next round).
        out.state = commands.EXPIRED
    reply = commands.get_reply(db, cmd_id)
    if reply is not None:
        if reply["ok"]:
            slot = reply["result"].get("slot")
            out.slot = slot if isinstance(slot, int) else None
            if "stored" not in out.steps:
                out.steps.append("stored")
        else:
            out.error = reply["error"] or "the door refused the command"
    elif out.state == commands.EXPIRED:
        out.error = commands.NOT_DELIVERED
    elif out.state == commands.NO_REPLY:
        out.error = f"no reply from {where['node_id']}: is it online (congso nodes)?"
    return out


def _past(when: str | None) -> bool:
    try:
        return when is not None and datetime.fromisoformat(when) <= clock.now()
    except (TypeError, ValueError):
        return False


def _json_obj(text: str | None) -> dict:
    import json

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
