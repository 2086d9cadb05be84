"""Commands to nodes, queued in the gateway database.

The CLI (another process) and the gateway itself queue a command with
``queue``; the running gateway publishes it on ``congso/<site>/cmd/<node>``
within a tick, and the node's reply lands in ``command_replies`` (ingest).
``wait_reply`` polls for it. Keeping the queue in the database means the
CLI needs no broker credentials of its own and a command queued while the
gateway restarts is still sent.

Every command has a *deadline* (``DEFAULT_DEADLINE_S``, longer for some in
``DEADLINE_S``): one not sent by then is never sent and is settled as
``expired`` ("expired, not delivered"), and one sent goes out with MQTT 5
message expiry up to its deadline, so a node that comes back later does not
get it from the broker either. An enrolment that failed at 09:00 must not
start a door blinking at 14:00.

A command is *settled* once: answered (the first reply), expired, or sent
and unanswered long after its deadline (``no reply``). Ingest stores a
reply only for a command that was sent to that node and is not settled, so
made-up or replayed replies are dropped. Settled commands and their replies
are pruned on a schedule (``prune``).

Domain modules react to replies with a hook per command name, listed in
their ``Domain`` record (``state.Domain.reply_hooks``; the gateway passes
``state.reply_hooks(domains.DOMAINS)`` to ``run_reply_hooks``): the hook
runs in the gateway after the reply is committed and may queue further
commands (carrying a finger to the other doors is such a chain).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from datetime import timedelta
from typing import Callable, Mapping, Sequence

import sqlite_utils

from ..protocol import clock, messages, topics
from . import privacy

log = logging.getLogger(__name__)

ReplyHook = Callable[[sqlite_utils.Database, dict, dict], None]

DEFAULT_DEADLINE_S = 120.0
# Commands that need longer. enroll: the door waits up to enroll_timeout_s
# (20 s by default) for each of two placements, and the CLI waits for it
# 3 x enroll_timeout_s + 10 s; the deadline bounds when it may be delivered,
# and its reply is taken until REPLY_GRACE_S after that.
DEADLINE_S = {"enroll": 180.0}
# A command sent but not answered is settled ("no reply") this long after
# its deadline; a reply after that is dropped.
REPLY_GRACE_S = 600.0
# Settled commands' replies (a screenshot is up to 4 MB) are pruned after
# KEEP_REPLIES_S, the commands themselves after KEEP_COMMANDS_S.
KEEP_REPLIES_S = 3600.0
KEEP_COMMANDS_S = 7 * 86400.0
PRUNE_EVERY_S = 60.0

EXPIRED = "expired"  # never sent: past its deadline
ANSWERED = "answered"
REFUSED = "refused"  # answered ok:false
NO_REPLY = "no reply"


class CommandError(Exception):
    """The node answered ok:false, or no answer came in time; ``status`` says which."""

    def __init__(self, message: str, status: str = "failed"):
        super().__init__(message)
        self.status = status  # "refused", "expired", "not sent", "no reply"


def deadline_for(cmd: str) -> float:
    return DEADLINE_S.get(cmd, DEFAULT_DEADLINE_S)


def queue(db: sqlite_utils.Database, node_id: str, cmd: str, args: dict | None = None,
          context: dict | None = None, tz: str = clock.DEFAULT_ZONE, deadline_s: float | None = None) -> str:
    """Queue a command for ``node_id``, to be delivered within ``deadline_s``; return its cmd_id. Commits."""
    topics.check_node_id(node_id)
    deadline_s = deadline_for(cmd) if deadline_s is None else float(deadline_s)
    if not deadline_s > 0:
        raise ValueError(f"a command's deadline must be a positive number of seconds, got {deadline_s!r}")
    cmd_id = str(uuid.uuid4())
    payload = {"v": messages.VERSION, "cmd_id": cmd_id, "cmd": cmd, "args": args or {}}
    messages.validate("cmd", payload)
    # A fingerprint template is stored sealed (privacy.py), opened only when it is published.
    args = privacy.seal_fields(db, args or {})
    now = clock.now(tz)
    with db.conn:
        db.conn.execute(
            "INSERT INTO outgoing_commands(cmd_id, node_id, cmd, args, queued_at, context, deadline) VALUES (?,?,?,?,?,?,?)",
            (cmd_id, node_id, cmd, json.dumps(args or {}, ensure_ascii=False), now.isoformat(timespec="milliseconds"),
             json.dumps(context or {}, ensure_ascii=False),
             (now + timedelta(seconds=deadline_s)).isoformat(timespec="milliseconds")),
        )
    return cmd_id


# julianday() reads our RFC 3339 times with their offset; a command queued by
# 0.1.0 has no deadline and gets the default one from its queue time.
_DEADLINE = f"coalesce(julianday(deadline), julianday(queued_at) + {DEFAULT_DEADLINE_S / 86400!r})"


def expire_overdue(db: sqlite_utils.Database, tz: str) -> int:
    """Settle as expired every unsent command past its deadline (never to be sent); return how many."""
    now = clock.now_iso(tz)
    with db.conn:
        cur = db.conn.execute(
            f"UPDATE outgoing_commands SET settled_at=?, outcome=? WHERE sent_at IS NULL AND settled_at IS NULL "
            f"AND {_DEADLINE} <= julianday(?)",
            (now, EXPIRED, now),
        )
    if cur.rowcount:
        log.warning("%d command(s) expired before they could be sent (not delivered)", cur.rowcount)
    return cur.rowcount


def send_queued(db: sqlite_utils.Database, site: str, publish: Callable[[str, bytes, int], object], tz: str) -> int:
    """Publish every unsent command still within its deadline (the gateway calls this each tick).

    ``publish(topic, payload, expiry_s)`` must publish with MQTT 5 message
    expiry ``expiry_s``. Each command is claimed (``sent_at``) before it is
    published, in the same statement that checks it is not settled, so a
    CLI that gave up on it (and expired it) and the gateway never both win.
    """
    expire_overdue(db, tz)
    rows = db.execute(
        f"SELECT cmd_id, node_id, cmd, args, ({_DEADLINE} - julianday('now')) * 86400.0 FROM outgoing_commands "
        "WHERE sent_at IS NULL AND settled_at IS NULL ORDER BY queued_at LIMIT 100"
    ).fetchall()
    sent = 0
    for cmd_id, node_id, cmd, args, remaining_s in rows:
        if remaining_s is None or remaining_s <= 0:
            continue  # expired by the next round
        with db.conn:
            claimed = db.conn.execute(
                "UPDATE outgoing_commands SET sent_at=? WHERE cmd_id=? AND sent_at IS NULL AND settled_at IS NULL",
                (clock.now_iso(tz), cmd_id),
            ).rowcount
        if not claimed:
            continue
        try:
            opened = privacy.unseal_fields(db, json.loads(args))
        except privacy.PrivacyError as e:
            log.error("not sending %s to %s (%s): %s", cmd, node_id, cmd_id, e)
            with db.conn:
                db.conn.execute("UPDATE outgoing_commands SET settled_at=?, outcome=? WHERE cmd_id=?",
                                (clock.now_iso(tz), EXPIRED, cmd_id))
            continue
        payload = messages.encode("cmd", {"v": messages.VERSION, "cmd_id": cmd_id, "cmd": cmd, "args": opened})
        publish(topics.cmd(site, node_id), payload, max(1, math.ceil(remaining_s)))
        sent += 1
        log.info("sent %s to %s (%s), expires in %.0f s", cmd, node_id, cmd_id, remaining_s)
    return sent


def settle_reply(conn, cmd_id: str, node_id: str, ok: bool, now: str) -> bool:
    """Inside ingest's transaction: settle the command this reply answers; False if it answers nothing.

    Only a command sent to this very node and not yet settled is answered:
    a made-up cmd_id, a reply from another node, a replay or a QoS 1
    redelivery of a reply already handled are all dropped.
    """
    return conn.execute(
        "UPDATE outgoing_commands SET settled_at=?, outcome=? WHERE cmd_id=? AND node_id=? "
        "AND sent_at IS NOT NULL AND settled_at IS NULL",
        (now, ANSWERED if ok else REFUSED, cmd_id, node_id),
    ).rowcount == 1


def prune(db: sqlite_utils.Database, tz: str) -> dict[str, int]:
    """Settle long-unanswered commands; delete old replies and settled commands. Returns the counts."""
    now = clock.now_iso(tz)
    with db.conn:
        c = db.conn
        no_reply = c.execute(
            f"UPDATE outgoing_commands SET settled_at=?, outcome=? WHERE sent_at IS NOT NULL AND settled_at IS NULL "
            f"AND {_DEADLINE} + {REPLY_GRACE_S / 86400!r} <= julianday(?)",
            (now, NO_REPLY, now),
        ).rowcount
        replies = c.execute(
            "DELETE FROM command_replies WHERE cmd_id NOT IN (SELECT cmd_id FROM outgoing_commands "
            f"WHERE settled_at IS NULL OR julianday(settled_at) > julianday(?) - {KEEP_REPLIES_S / 86400!r})",
            (now,),
        ).rowcount
        commands = c.execute(
            f"DELETE FROM outgoing_commands WHERE settled_at IS NOT NULL "
            f"AND julianday(settled_at) <= julianday(?) - {KEEP_COMMANDS_S / 86400!r}",
            (now,),
        ).rowcount
    if replies or commands or no_reply:
        log.info("commands: %d unanswered settled, %d replies and %d settled commands pruned", no_reply, replies, commands)
    return {"no_reply": no_reply, "replies": replies, "commands": commands}


class Sender:
    """The gateway's command round, each tick: expire, send, and now and then prune."""

    def __init__(self, db: sqlite_utils.Database, site: str, tz: str, publish: Callable[[str, bytes, int], object],
                 monotonic: Callable[[], float] = time.monotonic):
        self.db, self.site, self.tz, self.publish = db, site, tz, publish
        self.monotonic = monotonic
        self._pruned_at: float | None = None

    def tick(self) -> None:
        send_queued(self.db, self.site, self.publish, self.tz)
        now = self.monotonic()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            prune(self.db, self.tz)


def run_reply_hooks(db: sqlite_utils.Database, replies: list[dict],
                    hooks: Mapping[str, Sequence[ReplyHook]]) -> None:
    """After replies are committed: let domain modules act on them (each reply once: ingest settled it).

    ``hooks``: command name -> hooks, from ``state.reply_hooks(domains.DOMAINS)``.
    """
    for reply in replies:
        row = db.execute(
            "SELECT cmd_id, node_id, cmd, args, context FROM outgoing_commands WHERE cmd_id=?", (reply["cmd_id"],)
        ).fetchone()
        if row is None:
            continue
        command = {"cmd_id": row[0], "node_id": row[1], "cmd": row[2], "args": json.loads(row[3]),
                   "context": json.loads(row[4] or "{}")}
        # Hooks get the reply as the node sent it: ok, result (a dict), error.
        stored = reply.get("result")
        reply = {**reply, "ok": bool(reply.get("ok")),
                 "result": (json.loads(stored) if isinstance(stored, str) else stored) or {}}
        for hook in hooks.get(command["cmd"], ()):
            try:
                hook(db, command, reply)
            except Exception:
                log.exception("reply hook %s for %s failed", hook.__name__, command["cmd"])


def get_reply(db: sqlite_utils.Database, cmd_id: str) -> dict | None:
    row = db.execute("SELECT ok, result, error FROM command_replies WHERE cmd_id=?", (cmd_id,)).fetchone()
    if row is None:
        return None
    return {"ok": bool(row[0]), "result": json.loads(row[1]) if row[1] else {}, "error": row[2]}


def status(db: sqlite_utils.Database, cmd_id: str) -> dict | None:
    """Where a command is: ``{"state": "queued"|"sent"|"answered"|"refused"|"expired"|"no reply", ...}``."""
    row = db.execute(
        "SELECT node_id, cmd, queued_at, sent_at, deadline, settled_at, outcome FROM outgoing_commands WHERE cmd_id=?",
        (cmd_id,),
    ).fetchone()
    if row is None:
        return None
    node_id, cmd, queued_at, sent_at, deadline, settled_at, outcome = row
    state = outcome or ("sent" if sent_at else "queued")
    return {"cmd_id": cmd_id, "node_id": node_id, "cmd": cmd, "state": state, "queued_at": queued_at,
            "sent_at": sent_at, "deadline": deadline, "settled_at": settled_at}


def _give_up(db: sqlite_utils.Database, cmd_id: str) -> bool:
    """The caller stops waiting: an unsent command is expired now, never to be sent later."""
    with db.conn:
        return db.conn.execute(
            "UPDATE outgoing_commands SET settled_at=?, outcome=? WHERE cmd_id=? AND sent_at IS NULL AND settled_at IS NULL",
            (clock.now_iso(), EXPIRED, cmd_id),
        ).rowcount == 1


NOT_DELIVERED = ("expired, not delivered: the gateway did not send it in time, and never will "
                 "(is the gateway running? congso gateway run)")


def wait_reply(db: sqlite_utils.Database, cmd_id: str, timeout_s: float, poll_s: float = 0.1) -> dict:
    """Wait for the node's answer; return ``result`` or raise CommandError saying what happened.

    When the wait ends with the command still unsent, it is expired there
    and then: whoever gave up on it never sees it start later.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        reply = get_reply(db, cmd_id)
        if reply is not None:
            if not reply["ok"]:
                raise CommandError(reply["error"] or "the node refused the command", REFUSED)
            return reply["result"]
        where = status(db, cmd_id)
        if where is not None and where["state"] == EXPIRED:
            raise CommandError(NOT_DELIVERED, EXPIRED)
        if time.monotonic() >= deadline:
            if where is not None and where["sent_at"] is None and _give_up(db, cmd_id):
                raise CommandError(NOT_DELIVERED, EXPIRED)
            where = status(db, cmd_id) or where
            if where is not None and where["state"] == EXPIRED:
                raise CommandError(NOT_DELIVERED, EXPIRED)
            node = where["node_id"] if where else "the node"
            raise CommandError(f"no reply from {node} within {timeout_s:g} s: is it online (congso nodes)?", NO_REPLY)
        time.sleep(poll_s)
