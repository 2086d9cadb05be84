"""Commands to nodes, queued in the gateway database.

The CLI (another process) and the gateway itself queue a command with
``queue``; the running gateway publishes it on ``congso/<site>/cmd/<node>``
within a tick, and the node's reply lands in ``command_replies`` (ingest).
``wait_reply`` polls for it. Keeping the queue in the database means the
CLI needs no broker credentials of its own and a command queued while the
gateway restarts is still sent.

Domain modules react to replies by registering a hook per command name
(``@on_reply("enroll")``): the hook runs in the gateway after the reply is
committed and may queue further commands (carrying a finger to the other
doors is such a chain).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Callable

import sqlite_utils

from ..protocol import clock, messages, topics

log = logging.getLogger(__name__)

ReplyHook = Callable[[sqlite_utils.Database, dict, dict], None]
REPLY_HOOKS: dict[str, list[ReplyHook]] = {}

# A command nobody sent within this long (no gateway running) is given up.
SEND_DEADLINE_S = 24 * 3600


class CommandError(Exception):
    """The node answered ok:false, or no answer came in time."""


def on_reply(cmd: str) -> Callable[[ReplyHook], ReplyHook]:
    def register(fn: ReplyHook) -> ReplyHook:
        REPLY_HOOKS.setdefault(cmd, []).append(fn)
        return fn

    return register


def queue(db: sqlite_utils.Database, node_id: str, cmd: str, args: dict | None = None,
          context: dict | None = None, tz: str = clock.DEFAULT_ZONE) -> str:
    """Queue a command for ``node_id``; return its cmd_id. Commits."""
    topics.check_node_id(node_id)
    cmd_id = str(uuid.uuid4())
    payload = {"v": messages.VERSION, "cmd_id": cmd_id, "cmd": cmd, "args": args or {}}
    messages.validate("cmd", payload)
    with db.conn:
        db.conn.execute(
            "INSERT INTO outgoing_commands(cmd_id, node_id, cmd, args, queued_at, context) VALUES (?,?,?,?,?,?)",
            (cmd_id, node_id, cmd, json.dumps(args or {}, ensure_ascii=False), clock.now_iso(tz),
             json.dumps(context or {}, ensure_ascii=False)),
        )
    return cmd_id


def send_queued(db: sqlite_utils.Database, site: str, publish: Callable[[str, bytes, bool], object], tz: str) -> int:
    """Publish every command not yet sent (the gateway calls this each tick)."""
    rows = db.execute(
        "SELECT cmd_id, node_id, cmd, args FROM outgoing_commands WHERE sent_at IS NULL ORDER BY queued_at LIMIT 100"
    ).fetchall()
    for cmd_id, node_id, cmd, args in rows:
        payload = messages.encode("cmd", {"v": messages.VERSION, "cmd_id": cmd_id, "cmd": cmd, "args": json.loads(args)})
        publish(topics.cmd(site, node_id), payload, False)
        with db.conn:
            db.conn.execute("UPDATE outgoing_commands SET sent_at=? WHERE cmd_id=?", (clock.now_iso(tz), cmd_id))
        log.info("sent %s to %s (%s)", cmd, node_id, cmd_id)
    return len(rows)


def run_reply_hooks(db: sqlite_utils.Database, replies: list[dict]) -> None:
    """After replies are committed: let domain modules act on them."""
    for reply in replies:
        row = db.execute(
            "SELECT cmd_id, node_id, cmd, args, context FROM outgoing_commands WHERE cmd_id=?", (reply["cmd_id"],)
        ).fetchone()
        if row is None:
            continue  # a command someone else sent (a test, mosquitto_pub)
        command = {"cmd_id": row[0], "node_id": row[1], "cmd": row[2], "args": json.loads(row[3]),
                   "context": json.loads(row[4] or "{}")}
        # Hooks get the reply as the node sent it: ok, result (a dict), error.
        stored = reply.get("result")
        reply = {**reply, "ok": bool(reply.get("ok")),
                 "result": (json.loads(stored) if isinstance(stored, str) else stored) or {}}
        for hook in REPLY_HOOKS.get(command["cmd"], []):
            try:
                hook(db, command, reply)
            except Exception:
                log.exception("reply hook %s for %s failed", hook.__name__, command["cmd"])


def get_reply(db: sqlite_utils.Database, cmd_id: str) -> dict | None:
    row = db.execute("SELECT ok, result, error FROM command_replies WHERE cmd_id=?", (cmd_id,)).fetchone()
    if row is None:
        return None
    return {"ok": bool(row[0]), "result": json.loads(row[1]) if row[1] else {}, "error": row[2]}


def wait_reply(db: sqlite_utils.Database, cmd_id: str, timeout_s: float, poll_s: float = 0.1) -> dict:
    """Wait for the node's answer; return ``result`` or raise CommandError saying what happened."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = get_reply(db, cmd_id)
        if reply is not None:
            if not reply["ok"]:
                raise CommandError(reply["error"] or "the node refused the command")
            return reply["result"]
        if time.monotonic() >= deadline:
            sent = db.execute("SELECT sent_at, node_id FROM outgoing_commands WHERE cmd_id=?", (cmd_id,)).fetchone()
            if sent and sent[0] is None:
                raise CommandError("the command was not sent: is the gateway running (congso gateway run)?")
            node = sent[1] if sent else "the node"
            raise CommandError(f"no reply from {node} within {timeout_s:g} s: is it online (congso nodes)?")
        time.sleep(poll_s)
