"""After a restore (or any replaced database): ask each node for what we lack.

Nodes keep acked events for ``[outbox] keep_acked_days``. At every start
the gateway notes the highest ``seq`` it holds from each node, and the first
time a node shows up alive (a health, an event, a reply or an ``online``
status) it queues the command ``resend {"after_seq": N}`` for it. The node
re-publishes every kept event after N; those we already hold are duplicates,
a no-op. Asking at every start costs one small command per node and needs
no "was this a restore?" detection; asking when the node shows up, not at
start, reaches a node that was off at the time.

N is read once at start, before anything is stored: a node's unacked
events arrive first after a restart, and a maximum read after them would
skip the acked ones in between.
"""

from __future__ import annotations

import json
import logging

import sqlite_utils

from ..protocol import topics
from ..protocol.link import Incoming
from . import commands, state

log = logging.getLogger(__name__)

COMMAND = "resend"
_ALIVE_LEAVES = ("health", "attendance", "rating", "reply")


def held_seqs(db: sqlite_utils.Database) -> dict[str, int]:
    """The highest seq stored from each node (the (node_id, seq) indexes make each a lookup)."""
    nodes = {row[0] for row in db.execute("SELECT node_id FROM nodes")}
    held = {}
    for node in nodes:
        seqs = [db.execute(f"SELECT max(seq) FROM {table} WHERE node_id=?", (node,)).fetchone()[0]
                for table in ("attendance_events", "rating_events")]
        held[node] = max((s for s in seqs if s is not None), default=0)
    return held


class ResendAsker:
    def __init__(self, db: sqlite_utils.Database, tz: str):
        self.tz = tz
        self.held = held_seqs(db)
        self.asked: set[str] = {topics.GATEWAY_ID}

    def seen(self, db: sqlite_utils.Database, batch: list[Incoming]) -> list[str]:
        """After a batch is stored: ask the nodes in it that are not asked yet; return their ids."""
        asked = []
        for item in batch:
            parts = item.topic.split("/")
            if len(parts) != 5 or parts[2] != "node" or parts[3] in self.asked:
                continue
            node, leaf = parts[3], parts[4]
            if leaf not in _ALIVE_LEAVES and not (leaf == "status" and _online(item.payload)):
                continue
            try:
                commands.queue(db, node, COMMAND, {"after_seq": self.held.get(node, 0)}, tz=self.tz)
            except ValueError:
                continue  # not a node id; ingest has rejected the message
            self.asked.add(node)
            asked.append(node)
            log.info("asked %s for every event after seq %d (the nodes keep acked events for a while)",
                     node, self.held.get(node, 0))
        return asked


def _online(payload: bytes) -> bool:
    try:
        return json.loads(payload).get("state") == "online"
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False


def _after_reply(db: sqlite_utils.Database, command: dict, reply: dict) -> None:
    node, after = command["node_id"], command["args"].get("after_seq", 0)
    if not reply["ok"]:
        log.warning("%s could not re-send its events after seq %d: %s", node, after, reply.get("error"))
        return
    result = reply["result"]
    oldest, last = result.get("oldest_kept_seq"), result.get("last_seq") or 0
    log.info("%s re-sends %s acked events after seq %d (its last seq is %s)", node, result.get("acked_kept"), after, last)
    if last > after and isinstance(oldest, int) and oldest > after + 1:
        log.warning("%s no longer keeps events %d..%d (older than [outbox] keep_acked_days): "
                    "they are not in this database", node, after + 1, oldest - 1)


DOMAIN = state.Domain("resend", reply_hooks={COMMAND: _after_reply})
